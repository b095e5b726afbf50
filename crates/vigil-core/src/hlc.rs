//! The hybrid logical clock (Kulkarni et al., 2014) that stamps every alert event.
//!
//! An HLC stamp is `(wall, logical)`: `wall` tracks physical time in milliseconds, `logical`
//! breaks ties and carries causality when clocks disagree. If event B was created by a node
//! that had seen event A, B's stamp is greater than A's, even when B's node has a clock that
//! runs behind — so an acknowledgement at a hub always folds after the raise it acknowledges,
//! whatever the gateways' clocks say. Stamps stay within the clock skew of physical time.
//!
//! The clock is pure: the physical time is an argument, so tests drive it directly.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// One HLC stamp. Ordered by `wall`, then `logical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (at least the physical time that produced it).
    pub wall: u64,
    /// Counter among stamps with the same `wall`.
    pub logical: u16,
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.wall, self.logical).cmp(&(other.wall, other.logical))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hlc {
    /// A stamp from its parts.
    pub const fn new(wall: u64, logical: u16) -> Self {
        Hlc { wall, logical }
    }

    /// The stamp packed in 64 bits (`wall << 16 | logical`), which orders like the stamp:
    /// the form SQLite stores and indexes.
    pub const fn pack(self) -> u64 {
        (self.wall << 16) | self.logical as u64
    }

    /// The inverse of [`Hlc::pack`].
    pub const fn unpack(packed: u64) -> Self {
        Hlc {
            wall: packed >> 16,
            logical: (packed & 0xffff) as u16,
        }
    }

    /// The stamp's wall time as a timestamp.
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_millis(i64::try_from(self.wall).unwrap_or(i64::MAX))
    }

    /// The smallest stamp strictly greater than `self`.
    const fn successor(self) -> Hlc {
        match self.logical.checked_add(1) {
            Some(logical) => Hlc {
                wall: self.wall,
                logical,
            },
            // 65,536 events in one millisecond: borrow the next millisecond. Order and
            // uniqueness hold; wall runs ahead of physical time by at most that borrow.
            None => Hlc {
                wall: self.wall + 1,
                logical: 0,
            },
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:05}", self.wall, self.logical)
    }
}

/// A stamp received from another node that is further ahead of our physical clock than the
/// configured bound: taking it would drag our clock into the future.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote clock stamp {remote} is {ahead_ms} ms ahead of local time (limit {max_ms} ms): check the node's time synchronisation")]
pub struct ClockSkewError {
    pub remote: Hlc,
    pub ahead_ms: u64,
    pub max_ms: u64,
}

/// A node's clock: hands out strictly increasing stamps and merges stamps it receives.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
    max_skew_ms: u64,
}

impl HlcClock {
    /// The default bound on how far ahead a received stamp may be: five minutes.
    pub const DEFAULT_MAX_SKEW_MS: u64 = 5 * 60 * 1000;

    /// A clock that has issued nothing yet.
    pub const fn new(max_skew_ms: u64) -> Self {
        HlcClock {
            last: Hlc::new(0, 0),
            max_skew_ms,
        }
    }

    /// A clock that resumes after `last` (e.g. the greatest stamp in a node's store), so a
    /// restart never issues a stamp it already issued.
    pub const fn resume(last: Hlc, max_skew_ms: u64) -> Self {
        HlcClock { last, max_skew_ms }
    }

    /// The last stamp issued or observed.
    pub const fn last(&self) -> Hlc {
        self.last
    }

    /// A stamp for a local event at physical time `now_ms`: greater than every stamp issued
    /// or observed before.
    pub fn now(&mut self, now_ms: u64) -> Hlc {
        self.last = if now_ms > self.last.wall {
            Hlc::new(now_ms, 0)
        } else {
            self.last.successor()
        };
        self.last
    }

    /// Merges a stamp received from another node at physical time `now_ms`, and returns a
    /// stamp greater than both it and every stamp before. Refuses stamps further ahead of
    /// `now_ms` than the skew bound, leaving the clock unchanged.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, ClockSkewError> {
        let ahead_ms = remote.wall.saturating_sub(now_ms);
        if ahead_ms > self.max_skew_ms {
            return Err(ClockSkewError {
                remote,
                ahead_ms,
                max_ms: self.max_skew_ms,
            });
        }
        let base = self.last.max(remote);
        self.last = if now_ms > base.wall {
            Hlc::new(now_ms, 0)
        } else {
            base.successor()
        };
        Ok(self.last)
    }
}

impl Default for HlcClock {
    fn default() -> Self {
        HlcClock::new(Self::DEFAULT_MAX_SKEW_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn local_stamps_increase_even_when_time_stands_still_or_goes_back() {
        let mut c = HlcClock::default();
        let a = c.now(1000);
        let b = c.now(1000);
        let d = c.now(900);
        assert_eq!(a, Hlc::new(1000, 0));
        assert_eq!(b, Hlc::new(1000, 1));
        assert_eq!(d, Hlc::new(1000, 2));
        assert_eq!(c.now(1001), Hlc::new(1001, 0));
    }

    #[test]
    fn receive_orders_after_remote_even_with_a_slow_local_clock() {
        let mut hub = HlcClock::default();
        let raise = Hlc::new(50_000, 7); // gateway clock ahead of the hub's
        let ack = hub.observe(raise, 40_000).expect("within skew");
        assert!(ack > raise);
        assert!(hub.now(40_001) > ack);
    }

    #[test]
    fn far_future_stamps_are_refused() {
        let mut c = HlcClock::new(1000);
        let before = c.now(10_000);
        let err = c
            .observe(Hlc::new(20_000, 0), 10_000)
            .expect_err("too far ahead");
        assert_eq!(err.ahead_ms, 10_000);
        assert_eq!(c.last(), before, "a refused stamp leaves the clock alone");
    }

    #[test]
    fn logical_overflow_borrows_a_millisecond() {
        let mut c = HlcClock::resume(Hlc::new(5, u16::MAX), 1000);
        assert_eq!(c.now(5), Hlc::new(6, 0));
    }

    #[test]
    fn pack_orders_like_the_stamp() {
        let a = Hlc::new(1_795_000_000_000, 65_535);
        let b = Hlc::new(1_795_000_000_001, 0);
        assert!(a.pack() < b.pack());
        assert_eq!(Hlc::unpack(a.pack()), a);
    }

    proptest! {
        #[test]
        fn stamps_strictly_increase(ops in prop::collection::vec((any::<bool>(), 0u64..2000, 0u64..2000, any::<u16>()), 1..200)) {
            let mut c = HlcClock::new(10_000);
            let mut prev = c.last();
            for (local, now, remote_wall, remote_logical) in ops {
                let remote = Hlc::new(remote_wall, remote_logical);
                let next = if local { c.now(now) } else { c.observe(remote, now).expect("within skew") };
                prop_assert!(next > prev);
                if !local { prop_assert!(next > remote); }
                prop_assert!(next.wall >= now);
                prev = next;
            }
        }
    }
}
