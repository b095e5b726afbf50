//! Rate-limited warnings: a stream of bad messages logs its first one and then at most one a
//! period per reason, with the count of those left out, so a broken sensor cannot flood the
//! gateway's log (the counters still count every one).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one reason of one subscription is logged at most.
pub const PERIOD: Duration = Duration::from_secs(10);

/// The logging budget of one subscription.
#[derive(Debug, Default)]
pub struct WarnLimiter {
    /// By reason: when it was last logged, and how many were left out since.
    last: HashMap<&'static str, (Instant, u64)>,
}

impl WarnLimiter {
    /// Whether to log a `reason` at `now`: `Some(left out since the last one logged)` or
    /// `None` to stay quiet.
    pub fn allow(&mut self, reason: &'static str, now: Instant) -> Option<u64> {
        match self.last.get_mut(reason) {
            Some((at, skipped)) if now.duration_since(*at) < PERIOD => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                let n = *skipped;
                *at = now;
                *skipped = 0;
                Some(n)
            }
            None => {
                self.last.insert(reason, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_once_a_period_per_reason() {
        let mut w = WarnLimiter::default();
        let t = Instant::now();
        assert_eq!(w.allow("not_json", t), Some(0));
        assert_eq!(w.allow("not_json", t + Duration::from_secs(1)), None);
        assert_eq!(w.allow("not_json", t + Duration::from_secs(2)), None);
        assert_eq!(
            w.allow("field_missing", t + Duration::from_secs(2)),
            Some(0)
        );
        assert_eq!(w.allow("not_json", t + PERIOD), Some(2));
        assert_eq!(w.allow("not_json", t + PERIOD), None);
    }
}
