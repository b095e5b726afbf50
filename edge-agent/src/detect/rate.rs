//! Rate-of-change alarms (kind `rate_of_change`): `|Δvalue / Δt|` between two consecutive
//! usable readings above `max_per_s`.
//!
//! The alarm raises on the first pair of readings whose rate exceeds the limit and clears on
//! the first pair whose rate is back at or under it. A bad reading breaks the chain (no rate
//! is computed across a gap of unknown values); a reading not later than the previous one is
//! ignored.

use vigil_core::{Condition, ConditionKind, Quality, Reading, Severity, Timestamp};
use vigil_profile::RateRule;

use super::{number, usable_number, Detector, PointInfo};

/// A rate-of-change alarm on one point.
#[derive(Debug, Clone)]
pub struct RateDetector {
    point: PointInfo,
    max_per_s: f64,
    severity: Severity,
    /// The previous usable reading.
    prev: Option<(f64, Timestamp)>,
    /// The verdict last emitted; `None` until the first.
    active: Option<bool>,
}

impl RateDetector {
    /// A detector of `rule` on `point`.
    pub fn new(point: PointInfo, rule: &RateRule) -> Self {
        RateDetector {
            point,
            max_per_s: rule.max_per_s,
            severity: rule.severity,
            prev: None,
            active: None,
        }
    }

    fn per_second(&self, v: f64) -> String {
        match &self.point.unit {
            Some(unit) => format!("{} {unit}/s", number(v)),
            None => format!("{}/s", number(v)),
        }
    }
}

impl Detector for RateDetector {
    fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        let Some(v) = usable_number(r) else {
            if r.quality == Quality::Bad {
                self.prev = None;
            }
            return Vec::new();
        };
        let Some((pv, pts)) = self.prev else {
            self.prev = Some((v, r.ts));
            return Vec::new();
        };
        if r.ts <= pts {
            return Vec::new();
        }
        self.prev = Some((v, r.ts));
        #[allow(clippy::cast_precision_loss)]
        let dt = (r.ts.as_millis() - pts.as_millis()) as f64 / 1000.0;
        let rate = ((v - pv) / dt).abs();
        let exceeded = rate > self.max_per_s;
        if self.active == Some(exceeded) {
            return Vec::new();
        }
        self.active = Some(exceeded);
        let name = self.point.id.point();
        let message = if exceeded {
            format!(
                "{name} changing at {} (limit {})",
                self.per_second(rate),
                self.per_second(self.max_per_s)
            )
        } else {
            format!(
                "{name} rate of change back to {} (limit {})",
                self.per_second(rate),
                self.per_second(self.max_per_s)
            )
        };
        vec![self.point.condition(
            ConditionKind::RATE_OF_CHANGE,
            exceeded,
            self.severity,
            Some(r.value.clone()),
            message,
            r.ts,
        )]
    }

    fn on_tick(&mut self, _now: Timestamp) -> Vec<Condition> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::Value;

    use super::super::test_support::*;
    use super::*;

    fn detector() -> RateDetector {
        RateDetector::new(
            point(),
            &RateRule {
                max_per_s: 50.0,
                severity: Severity::Warning,
            },
        )
    }

    #[test]
    fn raises_above_the_rate_and_clears_when_it_falls_back() {
        let mut d = detector();
        assert!(
            d.on_reading(&num(0.0, 10.0)).is_empty(),
            "one reading is no rate"
        );
        assert_eq!(
            verdicts(&d.on_reading(&num(1.0, 40.0))),
            [("rate_of_change".to_owned(), false)]
        );
        // 40 → 100 in 0.5 s = 120/s.
        let raised = d.on_reading(&num(1.5, 100.0));
        assert_eq!(verdicts(&raised), [("rate_of_change".to_owned(), true)]);
        assert_eq!(raised[0].severity, Severity::Warning);
        assert_eq!(raised[0].message, "p changing at 120 V/s (limit 50 V/s)");
        // Falling fast counts too (|Δv|): still active, no repeat.
        assert!(d.on_reading(&num(2.0, 20.0)).is_empty());
        let cleared = d.on_reading(&num(3.0, 30.0));
        assert_eq!(verdicts(&cleared), [("rate_of_change".to_owned(), false)]);
        assert_eq!(
            cleared[0].message,
            "p rate of change back to 10 V/s (limit 50 V/s)"
        );
        // Exactly at the limit is not above it.
        assert!(d.on_reading(&num(4.0, 80.0)).is_empty());
    }

    #[test]
    fn bad_readings_break_the_chain_and_time_must_advance() {
        let mut d = detector();
        assert!(d.on_reading(&num(0.0, 0.0)).is_empty());
        assert!(d
            .on_reading(&at(0.5, Value::Float(0.0), Quality::Bad))
            .is_empty());
        // No rate from 0 (before the gap) to 1000.
        assert!(d.on_reading(&num(1.0, 1000.0)).is_empty());
        // Same or earlier time: ignored.
        assert!(d.on_reading(&num(1.0, 0.0)).is_empty());
        assert!(d.on_reading(&num(0.9, 0.0)).is_empty());
        assert_eq!(
            verdicts(&d.on_reading(&num(2.0, 1000.0))),
            [("rate_of_change".to_owned(), false)]
        );
        assert!(d.on_tick(secs(100.0)).is_empty());
    }
}
