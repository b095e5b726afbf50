//! Identifiers: UUIDv7 for events and alerts.
//!
//! UUIDv7 puts a millisecond timestamp in the high bits, so ids sort roughly by creation time
//! (good index locality in SQLite) and are unique without coordination between nodes. The
//! fold orders events by (HLC, event id); the id is the tie-break that makes the order total.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh UUIDv7 from the system clock and random bits, monotonic within this
            /// process.
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }

            /// Wraps an existing UUID (from storage or the wire).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            /// A UUID from its 16 bytes, as stored in SQLite.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The 16 bytes, big-endian, which sort like the id.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// The id of one immutable [`AlertEvent`](crate::AlertEvent). Applying an event whose id
    /// is already known is a no-op, which turns at-least-once delivery into exactly-once
    /// effect.
    EventId
);

uuid_id!(
    /// The id of one alert: one episode of a condition on one source, from its raise to its
    /// close. A condition that re-raises while the alert is open reuses the id.
    AlertId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_increase() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(b > a, "UUIDv7 from one process must increase");
    }

    #[test]
    fn text_round_trip() {
        let a = AlertId::generate();
        assert_eq!(a.to_string().parse::<AlertId>().expect("parses"), a);
        assert!("not-a-uuid".parse::<AlertId>().is_err());
    }
}
