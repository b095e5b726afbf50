//! Stale-data alarms (kind `stale`): no fresh reading of the point for `after`.
//!
//! Checked on ticks: the alarm raises at the first tick `after` or more past the last fresh
//! reading (or past the first tick, for a point that has not reported since the agent
//! started) and clears on the next fresh reading. A fresh reading is one of good or
//! uncertain quality: a bad reading carries the last known value, not a new one, so it does
//! not refresh the point (a device in communication loss makes its points stale too).

use std::time::Duration;

use vigil_core::{Condition, ConditionKind, Quality, Reading, Severity, Timestamp, Value};
use vigil_profile::StaleRule;

use super::{duration_text, elapsed, millis, Detector, PointInfo};

/// A stale-data alarm on one point.
#[derive(Debug, Clone)]
pub struct StaleDetector {
    point: PointInfo,
    after: Duration,
    severity: Severity,
    /// The last fresh reading's time, or the first tick's before any reading.
    last: Option<Timestamp>,
    last_value: Option<Value>,
    /// The verdict last emitted; `None` until the first.
    active: Option<bool>,
}

impl StaleDetector {
    /// A detector of `rule` on `point`.
    pub fn new(point: PointInfo, rule: &StaleRule) -> Self {
        StaleDetector {
            point,
            after: rule.after,
            severity: rule.severity,
            last: None,
            last_value: None,
            active: None,
        }
    }
}

impl Detector for StaleDetector {
    fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        if r.quality == Quality::Bad {
            return Vec::new();
        }
        self.last = Some(self.last.map_or(r.ts, |l| l.max(r.ts)));
        self.last_value = Some(r.value.clone());
        if self.active == Some(false) {
            return Vec::new();
        }
        self.active = Some(false);
        vec![self.point.condition(
            ConditionKind::STALE,
            false,
            self.severity,
            Some(r.value.clone()),
            format!("{} reporting again", self.point.id.point()),
            r.ts,
        )]
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Condition> {
        let Some(last) = self.last else {
            // The watch starts now.
            self.last = Some(now);
            return Vec::new();
        };
        if self.active == Some(true) || elapsed(last, now) < millis(self.after) {
            return Vec::new();
        }
        self.active = Some(true);
        let message = if self.last_value.is_some() {
            format!(
                "{}: no new value for {} (last at {last})",
                self.point.id.point(),
                duration_text(self.after)
            )
        } else {
            format!(
                "{}: no value for {} since the agent started",
                self.point.id.point(),
                duration_text(self.after)
            )
        };
        vec![self.point.condition(
            ConditionKind::STALE,
            true,
            self.severity,
            self.last_value.clone(),
            message,
            now,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn detector() -> StaleDetector {
        StaleDetector::new(
            point(),
            &StaleRule {
                after: Duration::from_secs(30),
                severity: Severity::Minor,
            },
        )
    }

    #[test]
    fn raises_on_a_tick_after_the_silence_and_clears_on_the_next_reading() {
        let mut d = detector();
        assert_eq!(
            verdicts(&d.on_reading(&num(0.0, 24.0))),
            [("stale".to_owned(), false)]
        );
        assert!(d.on_reading(&num(10.0, 24.0)).is_empty());
        assert!(d.on_tick(secs(39.9)).is_empty());
        let raised = d.on_tick(secs(40.0));
        assert_eq!(verdicts(&raised), [("stale".to_owned(), true)]);
        assert_eq!(raised[0].severity, Severity::Minor);
        assert_eq!(raised[0].ts, secs(40.0));
        assert_eq!(raised[0].value, Some(Value::Float(24.0)));
        assert!(
            raised[0].message.starts_with("p: no new value for 30s"),
            "{}",
            raised[0].message
        );
        assert!(d.on_tick(secs(80.0)).is_empty(), "no repeats");
        let cleared = d.on_reading(&num(81.0, 25.0));
        assert_eq!(verdicts(&cleared), [("stale".to_owned(), false)]);
        assert_eq!(cleared[0].ts, secs(81.0));
    }

    #[test]
    fn a_point_that_never_reports_goes_stale_after_start() {
        let mut d = detector();
        assert!(d.on_tick(secs(100.0)).is_empty(), "the watch starts");
        assert!(d.on_tick(secs(129.0)).is_empty());
        let raised = d.on_tick(secs(130.0));
        assert_eq!(verdicts(&raised), [("stale".to_owned(), true)]);
        assert_eq!(raised[0].value, None);
    }

    #[test]
    fn bad_readings_do_not_refresh_the_point() {
        let mut d = detector();
        assert_eq!(d.on_reading(&num(0.0, 1.0)).len(), 1);
        for t in 1..=30 {
            assert!(d
                .on_reading(&at(f64::from(t), Value::Float(1.0), Quality::Bad))
                .is_empty());
        }
        assert_eq!(
            verdicts(&d.on_tick(secs(30.0))),
            [("stale".to_owned(), true)]
        );
        assert!(d
            .on_reading(&at(31.0, Value::Float(1.0), Quality::Bad))
            .is_empty());
        assert_eq!(
            verdicts(&d.on_reading(&at(32.0, Value::Float(1.0), Quality::Uncertain))),
            [("stale".to_owned(), false)]
        );
    }
}
