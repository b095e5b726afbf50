//! Rule detectors: readings in, conditions out (docs/ARCHITECTURE.md#detectors).
//!
//! Each rule kind is one pure state machine in its own file — [`limits`] (HH/H/L/LL with
//! deadband and on/off delays), [`state`] (digital states, latching), [`rate`] (rate of
//! change), [`stale`] (no new value) and [`flatline`] (stuck sensor) — behind the one
//! [`Detector`] trait. No detector does I/O or reads the clock: readings carry their time and
//! the time-based rules are advanced by [`Detector::on_tick`] with the time passed in, so
//! every rule is tested as plain functions. The closed [`Rule`] enum selects the kind
//! (adding a detector is one file and one arm).
//!
//! Semantics shared by every detector:
//!
//! - A detector emits a [`Condition`] only when its verdict changes. It starts *unknown*
//!   (after a restart the agent cannot know what it last said), so its first verdict is
//!   emitted whichever way it goes: a first "clear" tells the alert manager that a condition
//!   left active before the restart is gone (the manager ignores clears of keys with no
//!   active alert).
//! - Quality: `bad` readings (the source could not read the point; the value is the last
//!   known one) drive no rule. They reset pending on/off delays (the value is unknown, so it
//!   cannot have "stayed" anywhere) and do not count as fresh data for [`stale`].
//!   `uncertain` readings are used like `good` ones. Readings whose value is not a finite
//!   number (text) are ignored by the numeric rules.
//! - A condition carries the point's id as `source` (`device/point`), the reading's value
//!   and time, the point's site zone ([`resolve`]: a `[[rule]]` zone, else the device's
//!   `zones` mapping of the profile zone, else the device's `zone`, else the profile zone)
//!   and a message.
//!
//! [`Detectors`] holds the detectors of every point, built from the profiles and `[[rule]]`
//! overrides ([`resolve::RuleBook`]); points that no profile names (MQTT) get theirs when
//! their first reading arrives.

pub mod flatline;
pub mod limits;
pub mod rate;
pub mod resolve;
pub mod stale;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::{Condition, ConditionKind, PointId, Quality, Reading, Severity, Timestamp, Value};
use vigil_profile::{AlarmRule, FlatlineRule, Limits, RateRule, StaleRule};

pub use resolve::{PointRules, RuleBook};

/// One pipeline stage: a rule on one point, as a state machine.
pub trait Detector: fmt::Debug + Send {
    /// Folds one reading of the detector's point; returns the conditions whose verdict
    /// changed (usually none).
    fn on_reading(&mut self, reading: &Reading) -> Vec<Condition>;

    /// Advances time-based parts of the rule (on/off delays, stale data) to `now`.
    fn on_tick(&mut self, now: Timestamp) -> Vec<Condition>;
}

/// A rule, as configured in a profile or `[[rule]]`; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// HH/H/L/LL limits.
    Limits(Limits),
    /// A digital-state alarm.
    State(AlarmRule),
    /// Rate of change.
    Rate(RateRule),
    /// No new value for too long.
    Stale(StaleRule),
    /// The value has not moved for too long.
    Flatline(FlatlineRule),
}

impl Rule {
    /// The rule kind's name (`limits`, `state`, `rate`, `stale`, `flatline`).
    pub const fn name(&self) -> &'static str {
        match self {
            Rule::Limits(_) => "limits",
            Rule::State(_) => "state",
            Rule::Rate(_) => "rate",
            Rule::Stale(_) => "stale",
            Rule::Flatline(_) => "flatline",
        }
    }

    /// A fresh detector of this rule for `point`.
    pub fn build(&self, point: &PointInfo) -> Box<dyn Detector> {
        match self {
            Rule::Limits(r) => Box::new(limits::LimitsDetector::new(point.clone(), r)),
            Rule::State(r) => Box::new(state::StateDetector::new(point.clone(), r)),
            Rule::Rate(r) => Box::new(rate::RateDetector::new(point.clone(), r)),
            Rule::Stale(r) => Box::new(stale::StaleDetector::new(point.clone(), r)),
            Rule::Flatline(r) => Box::new(flatline::FlatlineDetector::new(point.clone(), r)),
        }
    }
}

/// What a detector knows of its point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInfo {
    /// `device/point`: the conditions' source.
    pub id: PointId,
    /// The engineering unit, for messages.
    pub unit: Option<String>,
    /// The zone, for correlation.
    pub zone: Option<String>,
}

impl PointInfo {
    /// A point with no unit and no zone.
    pub fn new(id: PointId) -> Self {
        PointInfo {
            id,
            unit: None,
            zone: None,
        }
    }

    /// A condition about this point.
    fn condition(
        &self,
        kind: &'static str,
        active: bool,
        severity: Severity,
        value: Option<Value>,
        message: String,
        ts: Timestamp,
    ) -> Condition {
        Condition {
            source: self.id.as_str().to_owned(),
            kind: condition_kind(kind),
            active,
            severity,
            value,
            message,
            ts,
            zone: self.zone.clone(),
            latching: false,
            evidence: Vec::new(),
        }
    }

    /// `31.2 V`, or `31.2` without a unit.
    fn quantity(&self, v: f64) -> String {
        match &self.unit {
            Some(unit) => format!("{} {unit}", number(v)),
            None => number(v),
        }
    }
}

/// A kind from one of [`ConditionKind`]'s constants.
pub(crate) fn condition_kind(kind: &'static str) -> ConditionKind {
    ConditionKind::new(kind).expect("the ConditionKind constants are valid kinds")
}

/// A number for a message: at most three decimals, trailing zeros dropped (`31.2`, `30`).
pub(crate) fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A duration for a message: `30s`, `5m`, `6h`, `1500ms`.
pub(crate) fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds from `since` to `now` (negative if `now` is earlier).
pub(crate) fn elapsed(since: Timestamp, now: Timestamp) -> i64 {
    now.as_millis().saturating_sub(since.as_millis())
}

/// The reading's value as a finite number, unless its quality is bad.
pub(crate) fn usable_number(r: &Reading) -> Option<f64> {
    if r.quality == Quality::Bad {
        return None;
    }
    r.value.as_f64().filter(|v| v.is_finite())
}

/// The detectors of every point, and the first-contact bookkeeping of devices.
#[derive(Debug)]
pub struct Detectors {
    book: RuleBook,
    points: HashMap<PointId, Vec<Box<dyn Detector>>>,
    /// Devices whose communication state is known since start (a reading or a source
    /// condition arrived).
    devices_known: HashSet<String>,
    /// The `[[posture]]` limits each point also runs ([`crate::posture`]).
    posture: crate::posture::PostureBook,
}

impl Detectors {
    /// Builds the detectors of every point the rule book knows; other points get theirs on
    /// their first reading.
    pub fn new(book: RuleBook) -> Self {
        let mut points = HashMap::new();
        for rules in book.known_points() {
            let detectors = rules.build();
            points.insert(rules.point.id, detectors);
        }
        Detectors {
            book,
            points,
            devices_known: HashSet::new(),
            posture: crate::posture::PostureBook::default(),
        }
    }

    /// Adds the `[[posture]]` detectors of `posture` to every point it matches (the known
    /// points now, the others on their first reading).
    pub fn with_posture(mut self, posture: crate::posture::PostureBook) -> Self {
        for rules in self.book.known_points() {
            if let (Some(d), Some(detectors)) = (
                posture.detector_for(&rules.point),
                self.points.get_mut(&rules.point.id),
            ) {
                detectors.push(Box::new(d));
            }
        }
        self.posture = posture;
        self
    }

    /// How many points have at least one detector.
    pub fn point_count(&self) -> usize {
        self.points.values().filter(|d| !d.is_empty()).count()
    }

    /// How many detectors run.
    pub fn detector_count(&self) -> usize {
        self.points.values().map(Vec::len).sum()
    }

    /// Runs one reading through its point's detectors.
    ///
    /// The first usable reading of a device since start also yields a `comm_loss` clear for
    /// the device (it answered), unless the source already reported on it: a communication
    /// loss alert left active before a restart is cleared once the device is heard again.
    pub fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        let mut out = Vec::new();
        let device = r.point.device();
        if r.quality != Quality::Bad && !self.devices_known.contains(device) {
            self.devices_known.insert(device.to_owned());
            out.push(Condition {
                source: device.to_owned(),
                kind: condition_kind(ConditionKind::COMM_LOSS),
                active: false,
                severity: Severity::Major,
                value: Some(Value::Bool(true)),
                message: format!("{device} answers"),
                ts: r.ts,
                zone: None,
                latching: false,
                evidence: Vec::new(),
            });
        }
        if !self.points.contains_key(&r.point) {
            let rules = self.book.resolve(&r.point);
            let mut detectors = rules.as_ref().map(PointRules::build).unwrap_or_default();
            let info = rules.map_or_else(|| PointInfo::new(r.point.clone()), |r| r.point);
            if let Some(d) = self.posture.detector_for(&info) {
                detectors.push(Box::new(d));
            }
            self.points.insert(r.point.clone(), detectors);
        }
        if let Some(detectors) = self.points.get_mut(&r.point) {
            for d in detectors {
                out.extend(d.on_reading(r));
            }
        }
        out
    }

    /// Notes a condition a source raised itself (communication loss), so that the device's
    /// first reading does not contradict it.
    pub fn on_source_condition(&mut self, c: &Condition) {
        if c.kind.as_str() == ConditionKind::COMM_LOSS {
            self.devices_known.insert(c.source.clone());
        }
    }

    /// Advances every detector's time-based rules to `now`.
    pub fn on_tick(&mut self, now: Timestamp) -> Vec<Condition> {
        let mut out = Vec::new();
        for detectors in self.points.values_mut() {
            for d in detectors {
                out.extend(d.on_tick(now));
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the detectors' unit tests.

    use super::*;

    /// `dev/p`, unit `V`, zone `z`.
    pub fn point() -> PointInfo {
        PointInfo {
            id: "dev/p".parse().expect("valid"),
            unit: Some("V".into()),
            zone: Some("z".into()),
        }
    }

    /// A reading of `dev/p` at `t` seconds.
    pub fn at(t: f64, value: Value, quality: Quality) -> Reading {
        #[allow(clippy::cast_possible_truncation)]
        let ms = (t * 1000.0) as i64;
        Reading {
            point: "dev/p".parse().expect("valid"),
            ts: Timestamp::from_millis(ms),
            value,
            quality,
        }
    }

    /// A good numeric reading at `t` seconds.
    pub fn num(t: f64, v: f64) -> Reading {
        at(t, Value::Float(v), Quality::Good)
    }

    /// `t` seconds as a timestamp.
    pub fn secs(t: f64) -> Timestamp {
        #[allow(clippy::cast_possible_truncation)]
        Timestamp::from_millis((t * 1000.0) as i64)
    }

    /// `(kind, active)` of each condition.
    pub fn verdicts(cs: &[Condition]) -> Vec<(String, bool)> {
        cs.iter()
            .map(|c| (c.kind.as_str().to_owned(), c.active))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(number(f64::from(31.2f32)), "31.2");
        assert_eq!(number(30.0), "30");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(0.125), "0.125");
        assert_eq!(duration_text(Duration::from_secs(30)), "30s");
        assert_eq!(duration_text(Duration::from_secs(360)), "6m");
        assert_eq!(duration_text(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn rules_are_a_closed_tagged_enum() {
        let rule: Rule =
            serde_json::from_str(r#"{"type": "stale", "after": "30s", "severity": "minor"}"#)
                .expect("valid");
        assert_eq!(rule.name(), "stale");
        let json = serde_json::to_value(&rule).expect("encodes");
        assert_eq!(json["type"], "stale");
        assert_eq!(json["after"], "30s");
        assert!(serde_json::from_str::<Rule>(r#"{"type": "magic"}"#).is_err());
        assert!(serde_json::from_str::<Rule>(
            r#"{"type": "rate", "max_per_s": 1, "severity": "minor", "extra": 1}"#
        )
        .is_err());
    }

    #[test]
    fn the_first_reading_of_a_device_clears_its_comm_loss_once() {
        let mut d = Detectors::new(RuleBook::default());
        let out = d.on_reading(&num(1.0, 3.0));
        assert_eq!(verdicts(&out), [("comm_loss".to_owned(), false)]);
        assert_eq!(out[0].source, "dev");
        assert!(d.on_reading(&num(2.0, 3.0)).is_empty());

        // A source report first: the device's readings say nothing about communication.
        let mut d = Detectors::new(RuleBook::default());
        let lost = Condition {
            source: "dev".into(),
            kind: condition_kind(ConditionKind::COMM_LOSS),
            active: true,
            severity: Severity::Major,
            value: None,
            message: "lost".into(),
            ts: secs(1.0),
            zone: None,
            latching: false,
            evidence: Vec::new(),
        };
        d.on_source_condition(&lost);
        assert!(d.on_reading(&num(0.5, 3.0)).is_empty());
        // Bad readings are no sign of life.
        let mut d = Detectors::new(RuleBook::default());
        assert!(d
            .on_reading(&at(1.0, Value::Float(1.0), Quality::Bad))
            .is_empty());
    }
}
