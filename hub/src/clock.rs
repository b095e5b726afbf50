//! [`HubClock`]: the hub's hybrid logical clock, shared by everything that stamps events here.
//!
//! The clock resumes after the greatest stamp in the store on start, so a restart never
//! issues a stamp twice. An operator action must fold *after* the events it acts on, whatever
//! the gateways' clocks say: [`HubClock::stamp_after`] observes the alert's last stamp first
//! (docs/ARCHITECTURE.md#hybrid-logical-clock: "an acknowledgement at a hub always folds after the
//! raise it acknowledges").
//!
//! A stamp further ahead than the clock's skew bound (a gateway whose clock runs far fast) is
//! not merged into the clock — that would drag every later stamp of this hub into the future.
//! The action still gets a stamp just after the alert's last one, so it folds in its place,
//! and the skew is logged for the installer to fix the gateway's time.

use std::sync::{Arc, Mutex, PoisonError};

use vigil_core::{Hlc, HlcClock, Timestamp};

/// The hub's clock, shared.
#[derive(Debug, Clone)]
pub struct HubClock(Arc<Mutex<HlcClock>>);

impl HubClock {
    /// A clock that resumes after `last` (the store's greatest stamp), with the default skew
    /// bound.
    pub fn resume(last: Option<Hlc>) -> Self {
        HubClock(Arc::new(Mutex::new(HlcClock::resume(
            last.unwrap_or_default(),
            HlcClock::DEFAULT_MAX_SKEW_MS,
        ))))
    }

    /// A stamp for a local event at `now`, greater than `after` (the last stamp of what the
    /// event acts on) and than every stamp this clock issued.
    pub fn stamp_after(&self, after: Option<Hlc>, now: Timestamp) -> Hlc {
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
        let mut clock = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(after) = after else {
            return clock.now(now_ms);
        };
        match clock.observe(after, now_ms) {
            Ok(stamp) => stamp,
            Err(skew) => {
                tracing::warn!(
                    remote = %skew.remote, ahead_ms = skew.ahead_ms, max_ms = skew.max_ms,
                    "an alert's last event is stamped far in the future (a gateway clock is \
                     wrong); stamping the action just after it without moving the hub's clock"
                );
                let local = clock.now(now_ms);
                local.max(successor(after))
            }
        }
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).last()
    }
}

/// The smallest stamp greater than `hlc`.
fn successor(hlc: Hlc) -> Hlc {
    match hlc.logical.checked_add(1) {
        Some(logical) => Hlc::new(hlc.wall, logical),
        None => Hlc::new(hlc.wall.saturating_add(1), 0),
    }
}

#[cfg(test)]
mod tests {
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
    fn resumes_after_the_store() {
        let clock = HubClock::resume(Some(Hlc::new(9_000, 7)));
        assert_eq!(
            clock.stamp_after(None, Timestamp::from_millis(1_000)),
            Hlc::new(9_000, 8)
        );
    }
}
