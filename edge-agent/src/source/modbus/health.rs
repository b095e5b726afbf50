//! A device's communication health: online, lost, restored — and how long to wait before
//! the next attempt. Pure state, driven by scan outcomes, tested without I/O.
//!
//! A scan in which the device answered nothing (every read timed out, or the connection
//! failed) makes the device *lost*; the next scan it answers makes it *restored*. While lost,
//! the device is probed with a single read, at intervals that back off exponentially from its
//! poll interval up to [`MAX_BACKOFF`], so a dead device neither floods the network nor
//! stalls the other devices on its bus.

use std::time::Duration;

use vigil_runtime::backoff::BackoffConfig;

/// The longest wait between probes of a lost device.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A change worth raising or clearing a communication-loss condition for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Lost,
    Restored,
}

/// The health of one device.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// `None` until the first scan.
    online: Option<bool>,
    /// Consecutive scans without an answer.
    dead_scans: u32,
}

impl Health {
    /// Folds one scan's outcome; returns the transition it caused, if any.
    pub fn on_scan(&mut self, answered: bool) -> Option<Transition> {
        let before = self.online;
        if answered {
            self.dead_scans = 0;
            self.online = Some(true);
            (before == Some(false)).then_some(Transition::Restored)
        } else {
            self.dead_scans = self.dead_scans.saturating_add(1);
            self.online = Some(false);
            (before != Some(false)).then_some(Transition::Lost)
        }
    }

    /// Whether the device is in communication loss.
    pub fn is_lost(&self) -> bool {
        self.online == Some(false)
    }

    /// Whether the device answered its last scan.
    pub fn is_online(&self) -> bool {
        self.online == Some(true)
    }

    /// The wait before the next scan: the poll interval while online, then doubling per dead
    /// scan up to [`MAX_BACKOFF`] (never below the poll interval).
    ///
    /// The steps are the shared backoff's ([`vigil_runtime::backoff`]) from the poll
    /// interval, whole (without jitter): the poller retries one device alone.
    pub fn next_delay(&self, poll: Duration) -> Duration {
        match self.dead_scans.checked_sub(1) {
            None => poll,
            Some(failures) => BackoffConfig {
                initial: poll,
                max: MAX_BACKOFF.max(poll),
            }
            .step(failures),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_and_restored_once_each() {
        let mut h = Health::default();
        assert_eq!(h.on_scan(true), None, "first contact is not a restoration");
        assert_eq!(h.on_scan(false), Some(Transition::Lost));
        assert_eq!(h.on_scan(false), None, "still lost: no second raise");
        assert!(h.is_lost());
        assert_eq!(h.on_scan(true), Some(Transition::Restored));
        assert_eq!(h.on_scan(true), None);
    }

    #[test]
    fn a_device_dead_from_the_start_is_lost() {
        let mut h = Health::default();
        assert_eq!(h.on_scan(false), Some(Transition::Lost));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let poll = Duration::from_millis(500);
        let mut h = Health::default();
        assert_eq!(h.next_delay(poll), poll);
        let delays: Vec<Duration> = (0..10)
            .map(|_| {
                h.on_scan(false);
                h.next_delay(poll)
            })
            .collect();
        assert_eq!(delays[0], poll);
        assert_eq!(delays[1], poll * 2);
        assert_eq!(delays[2], poll * 4);
        assert_eq!(*delays.last().expect("ten"), MAX_BACKOFF);
        h.on_scan(true);
        assert_eq!(h.next_delay(poll), poll);
        let slow = Duration::from_secs(60);
        h.on_scan(false);
        h.on_scan(false);
        assert_eq!(
            h.next_delay(slow),
            slow,
            "never faster than the poll interval"
        );
    }
}
