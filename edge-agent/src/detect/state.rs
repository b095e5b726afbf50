//! Digital-state alarms (kind `state`): door forced, fence alarm, tamper, fire.
//!
//! The alarm is active while the point's value equals the rule's `state`, once it has held
//! that state for the on-delay (`delay`, default 0); it clears as soon as the value leaves
//! the state (profiles give digital alarms no off-delay). The message is the profile's; the
//! rule's `latching` flag travels on every condition, so the alert manager can keep a
//! latching alarm `latched` after it clears until an operator resets it.
//!
//! Values: booleans as they are; numbers are `true` when non-zero; text is ignored.

use std::time::Duration;

use vigil_core::{Condition, ConditionKind, Quality, Reading, Severity, Timestamp, Value};
use vigil_profile::AlarmRule;

use super::{elapsed, millis, Detector, PointInfo};

/// A digital-state alarm on one point.
#[derive(Debug, Clone)]
pub struct StateDetector {
    point: PointInfo,
    state: bool,
    severity: Severity,
    message: String,
    latching: bool,
    delay: Duration,
    /// The verdict last emitted; `None` until the first.
    active: Option<bool>,
    /// Since when the value has been in the alarm state, while the delay runs.
    pending: Option<Timestamp>,
    last: Option<Value>,
}

/// The reading's value as a state, unless its quality is bad or it is text.
fn usable_state(r: &Reading) -> Option<bool> {
    if r.quality == Quality::Bad {
        return None;
    }
    match &r.value {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Float(f) if f.is_finite() => Some(*f != 0.0),
        Value::Float(_) | Value::Text(_) => None,
    }
}

impl StateDetector {
    /// A detector of `rule` on `point`.
    pub fn new(point: PointInfo, rule: &AlarmRule) -> Self {
        StateDetector {
            point,
            state: rule.state,
            severity: rule.severity,
            message: rule.message.clone(),
            latching: rule.latching,
            delay: rule.delay.unwrap_or_default(),
            active: None,
            pending: None,
            last: None,
        }
    }

    fn verdict(&mut self, active: bool, value: Option<Value>, ts: Timestamp) -> Condition {
        self.active = Some(active);
        self.pending = None;
        let message = if active {
            self.message.clone()
        } else {
            format!("{}: returned to normal", self.message)
        };
        let mut c = self.point.condition(
            ConditionKind::STATE,
            active,
            self.severity,
            value,
            message,
            ts,
        );
        c.latching = self.latching;
        c
    }
}

impl Detector for StateDetector {
    fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        let Some(state) = usable_state(r) else {
            if r.quality == Quality::Bad {
                self.pending = None;
            }
            return Vec::new();
        };
        self.last = Some(r.value.clone());
        if state != self.state {
            self.pending = None;
            if self.active == Some(false) {
                return Vec::new();
            }
            return vec![self.verdict(false, Some(r.value.clone()), r.ts)];
        }
        if self.active == Some(true) {
            return Vec::new();
        }
        let since = *self.pending.get_or_insert(r.ts);
        if elapsed(since, r.ts) >= millis(self.delay) {
            vec![self.verdict(true, Some(r.value.clone()), r.ts)]
        } else {
            Vec::new()
        }
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Condition> {
        match self.pending {
            Some(since) if elapsed(since, now) >= millis(self.delay) => {
                let at = since.plus_millis(millis(self.delay));
                let value = self.last.clone();
                vec![self.verdict(true, value, at)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn rule(state: bool, latching: bool, delay: u64) -> AlarmRule {
        AlarmRule {
            state,
            severity: Severity::Critical,
            message: "Door 1 forced open".into(),
            latching,
            delay: (delay > 0).then(|| Duration::from_secs(delay)),
        }
    }

    fn b(t: f64, v: bool) -> Reading {
        at(t, Value::Bool(v), Quality::Good)
    }

    #[test]
    fn raises_while_the_value_equals_the_state_and_carries_latching() {
        let mut d = StateDetector::new(point(), &rule(true, true, 0));
        let first = d.on_reading(&b(0.0, false));
        assert_eq!(verdicts(&first), [("state".to_owned(), false)]);
        let raised = d.on_reading(&b(1.0, true));
        assert_eq!(verdicts(&raised), [("state".to_owned(), true)]);
        let c = &raised[0];
        assert_eq!(c.severity, Severity::Critical);
        assert_eq!(c.message, "Door 1 forced open");
        assert!(c.latching);
        assert_eq!(c.value, Some(Value::Bool(true)));
        assert!(d.on_reading(&b(2.0, true)).is_empty(), "no repeats");
        let cleared = d.on_reading(&b(3.0, false));
        assert_eq!(verdicts(&cleared), [("state".to_owned(), false)]);
        assert!(cleared[0].latching, "the flag travels on the clear too");
        assert_eq!(cleared[0].message, "Door 1 forced open: returned to normal");
    }

    #[test]
    fn an_alarm_on_false_and_numeric_values() {
        let mut d = StateDetector::new(point(), &rule(false, false, 0));
        let raised = d.on_reading(&at(0.0, Value::Int(0), Quality::Good));
        assert_eq!(verdicts(&raised), [("state".to_owned(), true)]);
        assert!(!raised[0].latching);
        assert_eq!(
            verdicts(&d.on_reading(&at(1.0, Value::Int(1), Quality::Good))),
            [("state".to_owned(), false)]
        );
        assert!(d
            .on_reading(&at(2.0, Value::Text("x".into()), Quality::Good))
            .is_empty());
    }

    #[test]
    fn the_delay_needs_the_state_to_hold() {
        let mut d = StateDetector::new(point(), &rule(true, false, 2));
        assert_eq!(d.on_reading(&b(0.0, false)).len(), 1);
        assert!(d.on_reading(&b(1.0, true)).is_empty());
        assert!(d.on_reading(&b(2.5, false)).is_empty(), "already clear");
        assert!(d.on_reading(&b(3.0, true)).is_empty());
        assert!(d.on_tick(secs(4.9)).is_empty());
        let raised = d.on_tick(secs(5.2));
        assert_eq!(verdicts(&raised), [("state".to_owned(), true)]);
        assert_eq!(raised[0].ts, secs(5.0));
        assert!(d.on_reading(&b(6.0, true)).is_empty());
        // Or by a reading after the delay.
        let mut d = StateDetector::new(point(), &rule(true, false, 2));
        assert!(d.on_reading(&b(0.0, true)).is_empty());
        assert_eq!(d.on_reading(&b(2.0, true)).len(), 1);
    }

    #[test]
    fn bad_readings_are_ignored_and_stop_the_delay() {
        let mut d = StateDetector::new(point(), &rule(true, false, 2));
        assert!(d.on_reading(&b(0.0, true)).is_empty());
        assert!(d
            .on_reading(&at(1.0, Value::Bool(true), Quality::Bad))
            .is_empty());
        assert!(d.on_tick(secs(5.0)).is_empty());
        let mut d = StateDetector::new(point(), &rule(true, false, 0));
        assert!(d
            .on_reading(&at(1.0, Value::Bool(true), Quality::Bad))
            .is_empty());
    }
}
