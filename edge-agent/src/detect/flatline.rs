//! Flatline alarms (kind `flatline`): a stuck sensor whose value stays within `tolerance`
//! for `after`.
//!
//! The detector follows the current flat stretch: the band (min, max) of the usable values
//! since the stretch began. A value that widens the band beyond `tolerance` starts a new
//! stretch and clears the alarm; a stretch that lasts `after` raises it. The verdict needs
//! readings (a point that stops reporting is [`stale`](super::stale), not flat), so ticks do
//! nothing; bad readings are ignored.

use std::time::Duration;

use vigil_core::{Condition, ConditionKind, Reading, Severity, Timestamp};
use vigil_profile::FlatlineRule;

use super::{duration_text, elapsed, millis, number, usable_number, Detector, PointInfo};

/// The current flat stretch.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    min: f64,
    max: f64,
    since: Timestamp,
}

/// A flatline alarm on one point.
#[derive(Debug, Clone)]
pub struct FlatlineDetector {
    point: PointInfo,
    after: Duration,
    tolerance: f64,
    severity: Severity,
    stretch: Option<Stretch>,
    /// The verdict last emitted; `None` until the first.
    active: Option<bool>,
}

impl FlatlineDetector {
    /// A detector of `rule` on `point`.
    pub fn new(point: PointInfo, rule: &FlatlineRule) -> Self {
        FlatlineDetector {
            point,
            after: rule.after,
            tolerance: if rule.tolerance.is_finite() {
                rule.tolerance.max(0.0)
            } else {
                0.0
            },
            severity: rule.severity,
            stretch: None,
            active: None,
        }
    }
}

impl Detector for FlatlineDetector {
    fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        let Some(v) = usable_number(r) else {
            return Vec::new();
        };
        let Some(s) = self.stretch else {
            self.stretch = Some(Stretch {
                min: v,
                max: v,
                since: r.ts,
            });
            return Vec::new();
        };
        let (min, max) = (s.min.min(v), s.max.max(v));
        let name = self.point.id.point();
        // A relative slack keeps decimal tolerances exact (21.05 - 20.95 is not > 0.1).
        let slack = 1e-9 * (1.0 + min.abs().max(max.abs()));
        if max - min > self.tolerance + slack {
            self.stretch = Some(Stretch {
                min: v,
                max: v,
                since: r.ts,
            });
            if self.active == Some(false) {
                return Vec::new();
            }
            self.active = Some(false);
            return vec![self.point.condition(
                ConditionKind::FLATLINE,
                false,
                self.severity,
                Some(r.value.clone()),
                format!("{name} moving again ({})", self.point.quantity(v)),
                r.ts,
            )];
        }
        self.stretch = Some(Stretch { min, max, ..s });
        if self.active == Some(true) || elapsed(s.since, r.ts) < millis(self.after) {
            return Vec::new();
        }
        self.active = Some(true);
        vec![self.point.condition(
            ConditionKind::FLATLINE,
            true,
            self.severity,
            Some(r.value.clone()),
            format!(
                "{name} stuck at {} for {} (within {})",
                self.point.quantity(v),
                duration_text(self.after),
                number(self.tolerance)
            ),
            r.ts,
        )]
    }

    fn on_tick(&mut self, _now: Timestamp) -> Vec<Condition> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Quality, Value};

    use super::super::test_support::*;
    use super::*;

    fn detector(tolerance: f64) -> FlatlineDetector {
        FlatlineDetector::new(
            point(),
            &FlatlineRule {
                after: Duration::from_secs(60),
                tolerance,
                severity: Severity::Warning,
            },
        )
    }

    #[test]
    fn a_value_within_tolerance_for_long_enough_is_a_flatline() {
        let mut d = detector(0.1);
        // Wiggles within a 0.1 band for 59 s: not yet.
        for (t, v) in [(0.0, 21.0), (20.0, 21.05), (40.0, 20.95), (59.0, 21.0)] {
            assert!(d.on_reading(&num(t, v)).is_empty(), "{t}");
        }
        let raised = d.on_reading(&num(60.0, 21.02));
        assert_eq!(verdicts(&raised), [("flatline".to_owned(), true)]);
        assert_eq!(raised[0].severity, Severity::Warning);
        assert_eq!(raised[0].message, "p stuck at 21.02 V for 1m (within 0.1)");
        assert!(d.on_reading(&num(120.0, 21.0)).is_empty(), "no repeats");
        let cleared = d.on_reading(&num(121.0, 21.5));
        assert_eq!(verdicts(&cleared), [("flatline".to_owned(), false)]);
        // A new stretch starts at the moving value.
        assert!(d.on_reading(&num(170.0, 21.5)).is_empty());
        assert_eq!(d.on_reading(&num(181.0, 21.5)).len(), 1);
    }

    #[test]
    fn the_band_not_the_first_value_decides() {
        let mut d = detector(0.1);
        assert!(d.on_reading(&num(0.0, 20.0)).is_empty());
        assert!(d.on_reading(&num(10.0, 20.08)).is_empty());
        // 19.95 is within 0.1 of 20.0 but widens the band to 0.13: moved.
        assert_eq!(
            verdicts(&d.on_reading(&num(20.0, 19.95))),
            [("flatline".to_owned(), false)]
        );
    }

    #[test]
    fn zero_tolerance_bad_readings_and_ticks() {
        let mut d = detector(0.0);
        assert!(d.on_reading(&num(0.0, 5.0)).is_empty());
        assert!(d
            .on_reading(&at(30.0, Value::Float(9.0), Quality::Bad))
            .is_empty());
        assert!(d.on_tick(secs(1000.0)).is_empty(), "ticks decide nothing");
        assert_eq!(
            verdicts(&d.on_reading(&num(61.0, 5.0))),
            [("flatline".to_owned(), true)]
        );
    }
}
