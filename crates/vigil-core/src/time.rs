//! Wall-clock instants as UTC milliseconds since the Unix epoch.
//!
//! Every timestamp Vigil stores or sends is a [`Timestamp`]: an `i64` of milliseconds, which
//! orders and compares cheaply and fits SQLite's integer column. On the wire it is written
//! as RFC 3339 with millisecond precision (`2026-11-29T12:00:00.123Z`), which every
//! command-centre system reads.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A timestamp that is not RFC 3339 or is outside the representable range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected RFC 3339 such as 2026-11-29T12:00:00.000Z")]
pub struct TimestampError {
    input: String,
}

impl Timestamp {
    /// The earliest instant Vigil accepts (the Unix epoch).
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant from milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time. The only place this crate reads the clock; pure code
    /// takes a `Timestamp` argument instead.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// This instant plus `ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_millis(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Timestamp(dt.timestamp_millis()))
            .map_err(|_| TimestampError {
                input: s.to_owned(),
            })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        let s = t.to_string();
        assert_eq!(s, "2026-11-18T11:06:40.123Z");
        assert_eq!(s.parse::<Timestamp>(), Ok(t));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t: Timestamp = "2026-11-29T20:00:00.000+08:00".parse().expect("valid");
        assert_eq!(t.to_string(), "2026-11-29T12:00:00.000Z");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }
}
