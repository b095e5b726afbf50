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
    /// The greatest stamp a node stores and issues: its packed form ([`Hlc::pack`]) must fit
    /// a non-negative `i64` (the stores' column), so `wall` stops at 2^47 - 1 ms (the year
    /// 6429). A stamp above it comes only from a broken or hostile clock: receivers clamp it
    /// (docs/ARCHITECTURE.md#clocks-and-skew) and nothing is stamped after it.
    pub const MAX: Hlc = Hlc {
        wall: (1 << 47) - 1,
        logical: u16::MAX,
    };

    /// A stamp from its parts.
    pub const fn new(wall: u64, logical: u16) -> Self {
        Hlc { wall, logical }
    }

    /// The stamp packed in 64 bits (`wall << 16 | logical`), which orders like the stamp:
    /// the form SQLite stores and indexes. Only for a stamp within range (`wall` below
    /// 2^48; see [`Hlc::checked_pack`]): above it the top bits of `wall` are lost.
    pub const fn pack(self) -> u64 {
        (self.wall << 16) | self.logical as u64
    }

    /// [`Hlc::pack`], or `None` when the stamp is above [`Hlc::MAX`] (its packed form would
    /// not fit a non-negative `i64`, or lose bits).
    pub const fn checked_pack(self) -> Option<u64> {
        if self.wall > Hlc::MAX.wall {
            return None;
        }
        Some(self.pack())
    }

    /// Whether the stamp is within range: at most [`Hlc::MAX`].
    pub const fn in_range(self) -> bool {
        self.wall <= Hlc::MAX.wall
    }

    /// The smallest stamp strictly greater than `self`, or `None` when that would be above
    /// [`Hlc::MAX`]: nothing can be stamped after `self`.
    pub const fn checked_successor(self) -> Option<Hlc> {
        let next = self.successor();
        if next.wall > Hlc::MAX.wall || next.wall < self.wall {
            return None;
        }
        Some(next)
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
            // Saturating: a clock at the very end of `u64` stays there rather than wrap
            // (`checked_successor` says so; no clock resumes from such a stamp).
            None => Hlc {
                wall: self.wall.saturating_add(1),
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

/// Where a receiver puts a stamp further ahead of its wall clock (`now_ms`) than it accepts
/// (`max_skew_ms`): `None` when `stamp` is within the bound and stays as it is; else the
/// receiver's clock, `now_ms`, or just after `after` (the greatest stamp of the event's
/// alert the receiver holds) when that is later and still within the bound — so an event
/// clamped keeps its place after what it followed (docs/ARCHITECTURE.md#clocks-and-skew).
/// A stamp above [`Hlc::MAX`] is always ahead; the result is never above it.
pub fn clamp_ahead(stamp: Hlc, now_ms: u64, max_skew_ms: u64, after: Option<Hlc>) -> Option<Hlc> {
    let bound = now_ms.saturating_add(max_skew_ms).min(Hlc::MAX.wall);
    if stamp.wall <= bound {
        return None;
    }
    let base = Hlc::new(now_ms.min(Hlc::MAX.wall), 0);
    let after = after
        .and_then(Hlc::checked_successor)
        .filter(|a| a.wall <= bound);
    Some(after.map_or(base, |a| a.max(base)))
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
    fn the_top_of_the_range_is_a_handled_error() {
        assert_eq!(Hlc::MAX.checked_successor(), None);
        assert_eq!(Hlc::new(u64::MAX, u16::MAX).checked_successor(), None);
        assert_eq!(
            Hlc::new(Hlc::MAX.wall, 7).checked_successor(),
            Some(Hlc::new(Hlc::MAX.wall, 8))
        );
        assert_eq!(
            Hlc::new(Hlc::MAX.wall - 1, u16::MAX).checked_successor(),
            Some(Hlc::new(Hlc::MAX.wall, 0))
        );
        assert!(Hlc::MAX
            .checked_pack()
            .is_some_and(|p| i64::try_from(p).is_ok()));
        assert_eq!(Hlc::new(Hlc::MAX.wall + 1, 0).checked_pack(), None);
        assert_eq!(Hlc::new(u64::MAX, 0).checked_pack(), None);
        assert!(!Hlc::new(u64::MAX, 0).in_range());
        // A clock resumed at the very end neither panics nor wraps.
        let mut c = HlcClock::resume(Hlc::new(u64::MAX, u16::MAX), 1000);
        assert_eq!(c.now(5).wall, u64::MAX);
    }

    #[test]
    fn clamping_keeps_stamps_within_the_bound_and_after_what_they_follow() {
        let (now, skew) = (1_000_000, 300_000);
        // Within the bound (ahead by the skew exactly, or behind): untouched.
        assert_eq!(clamp_ahead(Hlc::new(now + skew, 9), now, skew, None), None);
        assert_eq!(clamp_ahead(Hlc::new(5, 0), now, skew, None), None);
        // An hour ahead: the receiver's clock.
        let hour = Hlc::new(now + 3_600_000, 3);
        assert_eq!(clamp_ahead(hour, now, skew, None), Some(Hlc::new(now, 0)));
        // After the alert's last stamp when that is later than now (but within the bound).
        let last = Hlc::new(now + 60_000, 4);
        assert_eq!(
            clamp_ahead(hour, now, skew, Some(last)),
            Some(Hlc::new(now + 60_000, 5))
        );
        // An earlier last stamp does not pull it back; one beyond the bound is not followed.
        assert_eq!(
            clamp_ahead(hour, now, skew, Some(Hlc::new(10, 0))),
            Some(Hlc::new(now, 0))
        );
        assert_eq!(
            clamp_ahead(hour, now, skew, Some(Hlc::new(now + 2 * skew, 0))),
            Some(Hlc::new(now, 0))
        );
        // The top of the range, and beyond it.
        for top in [Hlc::MAX, Hlc::new(u64::MAX, u16::MAX)] {
            assert_eq!(clamp_ahead(top, now, skew, None), Some(Hlc::new(now, 0)));
        }
        // A receiver whose own bound passes the range still clamps what is out of range.
        assert_eq!(
            clamp_ahead(Hlc::new(u64::MAX, 0), now, u64::MAX, None),
            Some(Hlc::new(now, 0))
        );
    }

    proptest! {
        #[test]
        fn a_clamped_stamp_is_within_the_bound(stamp in any::<u64>(), logical in any::<u16>(), now in 0u64..(1 << 46), skew in 0u64..10_000_000, after in proptest::option::of((0u64..(1 << 47), any::<u16>()))) {
            let after = after.map(|(w, l)| Hlc::new(w, l));
            let stamp = Hlc::new(stamp, logical);
            match clamp_ahead(stamp, now, skew, after) {
                None => prop_assert!(stamp.wall <= now + skew),
                Some(clamped) => {
                    prop_assert!(stamp.wall > now + skew);
                    prop_assert!(clamped < stamp);
                    prop_assert!(clamped.wall >= now);
                    prop_assert!(clamped.wall <= now + skew);
                    prop_assert!(clamped.in_range());
                    if let Some(after) = after.filter(|a| a.checked_successor().is_some_and(|s| s.wall <= now + skew)) {
                        prop_assert!(clamped > after);
                    }
                }
            }
        }
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
