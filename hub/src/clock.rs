//! [`HubClock`]: the hub's hybrid logical clock, shared by everything that stamps events here.
//!
//! The clock resumes after the greatest stamp in the store on start, so a restart never
//! issues a stamp twice — but only from stamps within `[link] max_clock_skew` of the hub's
//! wall clock ([`resume_point`]): a stamp stored further ahead (before this hub clamped its
//! children's stamps, docs/ARCHITECTURE.md#clocks-and-skew) would otherwise carry every later
//! stamp of this hub into the future. What it passes over is logged.
//!
//! An operator action must fold *after* the events it acts on, whatever the gateways' clocks
//! say: [`HubClock::try_stamp_after`] observes the alert's last stamp first
//! (docs/ARCHITECTURE.md#hybrid-logical-clock: "an acknowledgement at a hub always folds after
//! the raise it acknowledges").
//!
//! A stamp further ahead than the clock's skew bound is not merged into the clock — that
//! would drag every later stamp of this hub into the future. The action still gets a stamp
//! just after the alert's last one, so it folds in its place, and the skew is logged. After
//! a stamp at the top of the range ([`Hlc::MAX`]) nothing can be stamped: that is a
//! [`StampError`], which the API answers as a conflict naming the alert, never a failure
//! of the store.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vigil_core::{Hlc, HlcClock, Timestamp};
use vigil_store::{Store, StoreError};

/// The hub's clock, shared.
#[derive(Debug, Clone)]
pub struct HubClock {
    clock: Arc<Mutex<HlcClock>>,
    max_skew: Duration,
}

/// Nothing can be stamped after an event: it is stamped at the top of the clock's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "its last event is stamped {after}, at the top of the clock's range, so nothing can be \
     stamped after it: the stamp came from a node whose clock was far ahead before this hub \
     clamped such stamps; fix that node's time (its next raise opens a new alert)"
)]
pub struct StampError {
    /// The stamp nothing follows.
    pub after: Hlc,
}

impl HubClock {
    /// A clock that resumes after `last` (the store's greatest stamp), with the default skew
    /// bound.
    pub fn resume(last: Option<Hlc>) -> Self {
        Self::resume_with(last, Duration::from_millis(HlcClock::DEFAULT_MAX_SKEW_MS))
    }

    /// A clock that resumes after `last` ([`resume_point`]) and merges stamps up to
    /// `max_skew` ahead of the wall clock (`[link] max_clock_skew`).
    pub fn resume_with(last: Option<Hlc>, max_skew: Duration) -> Self {
        let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
        HubClock {
            clock: Arc::new(Mutex::new(HlcClock::resume(
                last.unwrap_or_default(),
                max_skew_ms,
            ))),
            max_skew,
        }
    }

    /// How far ahead of the wall clock a stamp may be (`[link] max_clock_skew`): further
    /// ahead, a child's event is clamped and the clock does not follow it.
    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }

    /// A stamp for a local event at `now`, greater than `after` (the last stamp of what the
    /// event acts on) and than every stamp this clock issued; [`StampError`] when `after`
    /// is at the top of the range.
    pub fn try_stamp_after(&self, after: Option<Hlc>, now: Timestamp) -> Result<Hlc, StampError> {
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(after) = after else {
            return Ok(clock.now(now_ms));
        };
        match clock.observe(after, now_ms) {
            Ok(stamp) if stamp.in_range() => Ok(stamp),
            Ok(_) => Err(StampError { after }),
            Err(skew) => {
                let next = after.checked_successor().ok_or(StampError { after })?;
                tracing::warn!(
                    remote = %skew.remote, ahead_ms = skew.ahead_ms, max_ms = skew.max_ms,
                    "an alert's last event is stamped far in the future (a node's clock was \
                     wrong); stamping the action just after it without moving the hub's clock"
                );
                Ok(clock.now(now_ms).max(next))
            }
        }
    }

    /// [`HubClock::try_stamp_after`] for a caller with no way to refuse: at the top of the
    /// range it returns [`Hlc::MAX`] (which then folds no later than `after`).
    pub fn stamp_after(&self, after: Option<Hlc>, now: Timestamp) -> Hlc {
        self.try_stamp_after(after, now).unwrap_or(Hlc::MAX)
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
    }
}

/// The stamp the hub's clock resumes after at `now`: the greatest in `store` not ahead of
/// `now` by more than `max_skew` (`Store::clock_resume_point`). Alerts whose last stamp is
/// beyond are logged and passed over; an action on one still folds after it
/// ([`HubClock::try_stamp_after`]).
pub fn resume_point(
    store: &Store,
    max_skew: Duration,
    now: Timestamp,
) -> Result<Option<Hlc>, StoreError> {
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
    let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    let bound = Hlc::new(now_ms.saturating_add(max_skew_ms), u16::MAX).min(Hlc::MAX);
    let point = store.clock_resume_point(bound)?;
    if let Some(greatest) = point.ignored_max {
        tracing::warn!(
            alerts = point.ignored, %greatest, %bound, resume_after = ?point.last.map(|h| h.to_string()),
            "the store holds stamps further ahead of this hub's clock than [link] max_clock_skew \
             (from a node whose clock was wrong, or this hub's clock went back): the clock does \
             not resume from them"
        );
    }
    Ok(point.last)
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEvent, AlertEventBody, AlertId, EventId, NodeId};

    use super::*;

    #[test]
    fn an_action_folds_after_what_it_acts_on() {
        let clock = HubClock::resume(None);
        let raise = Hlc::new(50_000, 3); // a gateway clock ahead of the hub's
        let ack = clock.stamp_after(Some(raise), Timestamp::from_millis(40_000));
        assert!(ack > raise);
        assert!(clock.stamp_after(None, Timestamp::from_millis(40_000)) > ack);
    }

    #[test]
    fn a_far_future_stamp_is_passed_without_moving_the_clock() {
        let clock = HubClock::resume(Some(Hlc::new(1_000, 0)));
        let future = Hlc::new(10_000_000_000, u16::MAX);
        let ack = clock.stamp_after(Some(future), Timestamp::from_millis(2_000));
        assert_eq!(ack, Hlc::new(10_000_000_001, 0));
        assert!(clock.last() < future, "the clock was not dragged forward");
    }

    #[test]
    fn nothing_is_stamped_after_the_top_of_the_range() {
        let clock = HubClock::resume(Some(Hlc::new(1_000, 0)));
        let now = Timestamp::from_millis(2_000);
        for top in [
            Hlc::MAX,
            Hlc::new(u64::MAX, u16::MAX),
            Hlc::new(u64::MAX, 0),
        ] {
            assert_eq!(
                clock.try_stamp_after(Some(top), now),
                Err(StampError { after: top })
            );
            assert_eq!(clock.stamp_after(Some(top), now), Hlc::MAX, "no panic");
        }
        // Just below the top there is room, and the clock is not dragged up there.
        let below = Hlc::new(Hlc::MAX.wall, 7);
        assert_eq!(
            clock.try_stamp_after(Some(below), now),
            Ok(Hlc::new(Hlc::MAX.wall, 8))
        );
        assert!(clock.last().wall <= 2_000);
        let text = StampError { after: Hlc::MAX }.to_string();
        assert!(text.contains("top of the clock's range"), "{text}");
    }

    #[test]
    fn resumes_after_the_store() {
        let clock = HubClock::resume(Some(Hlc::new(9_000, 7)));
        assert_eq!(
            clock.stamp_after(None, Timestamp::from_millis(1_000)),
            Hlc::new(9_000, 8)
        );
    }

    #[test]
    fn resumes_from_no_stamp_beyond_the_skew() {
        let mut store = Store::open_in_memory().expect("store");
        let now = Timestamp::from_millis(1_795_000_000_000);
        let event = |n: u8, wall: u64| AlertEvent {
            id: EventId::from_bytes([n; 16]),
            alert: AlertId::from_bytes([n; 16]),
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(wall, 0),
            actor: Actor::System,
            body: AlertEventBody::Reset,
            clamped_from: None,
        };
        let within = event(1, 1_795_000_060_000); // a minute ahead
        let forged = event(2, 1_795_036_000_000); // ten hours ahead
        store
            .apply_events(&[within.clone(), forged])
            .expect("stored");
        let skew = Duration::from_secs(300);
        let last = resume_point(&store, skew, now).expect("read");
        assert_eq!(last, Some(within.hlc));
        let clock = HubClock::resume_with(last, skew);
        let next = clock.stamp_after(None, now);
        assert_eq!(next, Hlc::new(within.hlc.wall, 1));
    }
}
