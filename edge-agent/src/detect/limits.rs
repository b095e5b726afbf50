//! Analog limits HH/H/L/LL, ISA-18.2 style: each limit is its own alarm (kinds `limit_hh`,
//! `limit_h`, `limit_l`, `limit_ll`), with a deadband and on/off delays.
//!
//! For a high limit (HH, H) — low limits (L, LL) mirror it:
//!
//! - the value is **beyond** when `value > limit`; the alarm raises once the value has been
//!   beyond continuously for the on-delay (`delay`, default 0);
//! - the value is **back inside** when `value <= limit - deadband`; the alarm clears once the
//!   value has been back inside continuously for the off-delay (`off_delay`, default 0);
//! - between the two (within the deadband) nothing changes and pending delays restart: a
//!   value hovering at the limit does not chatter.
//!
//! Delays are measured in reading time; [`Detector::on_tick`] completes a delay when no
//! further reading comes (a sensor that reports on change only), completing the transition
//! at the moment the delay ran out. Severities (profiles carry none for limits): HH and LL
//! `major`, H and L `minor`.

use std::time::Duration;

use vigil_core::{Condition, ConditionKind, Quality, Reading, Severity, Timestamp, Value};
use vigil_profile::Limits;

use super::{elapsed, millis, number, usable_number, Detector, PointInfo};

/// One of the four limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// High-high.
    HH,
    /// High.
    H,
    /// Low.
    L,
    /// Low-low.
    LL,
}

impl Level {
    /// The condition kind of the limit's alarm.
    pub const fn kind(self) -> &'static str {
        match self {
            Level::HH => ConditionKind::LIMIT_HH,
            Level::H => ConditionKind::LIMIT_H,
            Level::L => ConditionKind::LIMIT_L,
            Level::LL => ConditionKind::LIMIT_LL,
        }
    }

    /// `HH`, `H`, `L`, `LL`, for messages.
    pub const fn label(self) -> &'static str {
        match self {
            Level::HH => "HH",
            Level::H => "H",
            Level::L => "L",
            Level::LL => "LL",
        }
    }

    /// The alarm's severity: HH and LL `major`, H and L `minor`.
    pub const fn severity(self) -> Severity {
        match self {
            Level::HH | Level::LL => Severity::Major,
            Level::H | Level::L => Severity::Minor,
        }
    }

    /// Whether the limit is an upper one.
    pub const fn is_high(self) -> bool {
        matches!(self, Level::HH | Level::H)
    }
}

/// The state of one limit's alarm.
#[derive(Debug, Clone)]
struct LimitAlarm {
    level: Level,
    limit: f64,
    /// The verdict last emitted; `None` until the first.
    active: Option<bool>,
    /// A verdict the value points to and since when, waiting for its delay.
    pending: Option<(bool, Timestamp)>,
}

impl LimitAlarm {
    fn beyond(&self, v: f64) -> bool {
        if self.level.is_high() {
            v > self.limit
        } else {
            v < self.limit
        }
    }

    fn inside(&self, v: f64, deadband: f64) -> bool {
        if self.level.is_high() {
            v <= self.limit - deadband
        } else {
            v >= self.limit + deadband
        }
    }
}

/// HH/H/L/LL alarms of one point.
#[derive(Debug, Clone)]
pub struct LimitsDetector {
    point: PointInfo,
    alarms: Vec<LimitAlarm>,
    deadband: f64,
    on_delay: Duration,
    off_delay: Duration,
    /// The last usable value, for conditions completed by a tick.
    last: Option<Value>,
}

impl LimitsDetector {
    /// A detector of `limits` on `point`.
    pub fn new(point: PointInfo, limits: &Limits) -> Self {
        let alarms = [
            (Level::HH, limits.hh),
            (Level::H, limits.h),
            (Level::L, limits.l),
            (Level::LL, limits.ll),
        ]
        .into_iter()
        .filter_map(|(level, limit)| {
            limit.filter(|l| l.is_finite()).map(|limit| LimitAlarm {
                level,
                limit,
                active: None,
                pending: None,
            })
        })
        .collect();
        LimitsDetector {
            point,
            alarms,
            deadband: if limits.deadband.is_finite() {
                limits.deadband.max(0.0)
            } else {
                0.0
            },
            on_delay: limits.delay.unwrap_or_default(),
            off_delay: limits.off_delay.unwrap_or_default(),
            last: None,
        }
    }

    fn verdict(
        &self,
        alarm: &LimitAlarm,
        active: bool,
        value: Option<Value>,
        ts: Timestamp,
    ) -> Condition {
        let name = self.point.id.point();
        let level = alarm.level;
        let shown = value
            .as_ref()
            .and_then(Value::as_f64)
            .map_or_else(|| "?".to_owned(), |v| self.point.quantity(v));
        let limit = self.point.quantity(alarm.limit);
        let message = match (active, level.is_high()) {
            (true, true) => format!("{name} {shown} above {} {limit}", level.label()),
            (true, false) => format!("{name} {shown} below {} {limit}", level.label()),
            (false, _) => format!(
                "{name} {shown} back within {} {limit} (deadband {})",
                level.label(),
                number(self.deadband)
            ),
        };
        self.point
            .condition(level.kind(), active, level.severity(), value, message, ts)
    }

    fn delay_of(&self, to_active: bool) -> i64 {
        millis(if to_active {
            self.on_delay
        } else {
            self.off_delay
        })
    }
}

impl Detector for LimitsDetector {
    fn on_reading(&mut self, r: &Reading) -> Vec<Condition> {
        let Some(v) = usable_number(r) else {
            if r.quality == Quality::Bad {
                // The value is unknown: it cannot have stayed beyond or inside.
                for a in &mut self.alarms {
                    a.pending = None;
                }
            }
            return Vec::new();
        };
        self.last = Some(r.value.clone());
        let mut out = Vec::new();
        for i in 0..self.alarms.len() {
            let alarm = &self.alarms[i];
            let wanted = if alarm.beyond(v) {
                Some(true)
            } else if alarm.inside(v, self.deadband) {
                Some(false)
            } else {
                None
            };
            let wanted = match wanted {
                Some(w) if alarm.active != Some(w) => w,
                // Within the deadband, or already there: nothing pending.
                _ => {
                    self.alarms[i].pending = None;
                    continue;
                }
            };
            let since = match alarm.pending {
                Some((p, since)) if p == wanted => since,
                _ => r.ts,
            };
            if elapsed(since, r.ts) >= self.delay_of(wanted) {
                let c = self.verdict(alarm, wanted, Some(r.value.clone()), r.ts);
                let alarm = &mut self.alarms[i];
                alarm.active = Some(wanted);
                alarm.pending = None;
                out.push(c);
            } else {
                self.alarms[i].pending = Some((wanted, since));
            }
        }
        out
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Condition> {
        let mut out = Vec::new();
        for i in 0..self.alarms.len() {
            let Some((wanted, since)) = self.alarms[i].pending else {
                continue;
            };
            let delay = self.delay_of(wanted);
            if elapsed(since, now) >= delay {
                let at = since.plus_millis(delay);
                let c = self.verdict(&self.alarms[i], wanted, self.last.clone(), at);
                let alarm = &mut self.alarms[i];
                alarm.active = Some(wanted);
                alarm.pending = None;
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn limits(hh: f64, h: f64, l: f64, ll: f64, deadband: f64) -> Limits {
        Limits {
            hh: Some(hh),
            h: Some(h),
            l: Some(l),
            ll: Some(ll),
            deadband,
            delay: None,
            off_delay: None,
        }
    }

    fn run(d: &mut LimitsDetector, values: &[(f64, f64)]) -> Vec<(String, bool)> {
        values
            .iter()
            .flat_map(|&(t, v)| verdicts(&d.on_reading(&num(t, v))))
            .collect()
    }

    fn v(kind: &str, active: bool) -> (String, bool) {
        (kind.to_owned(), active)
    }

    #[test]
    fn each_limit_is_its_own_alarm_with_its_severity_and_message() {
        let mut d = LimitsDetector::new(point(), &limits(30.0, 28.0, 22.0, 20.0, 0.5));
        // First verdict: every limit is clear.
        let first = d.on_reading(&num(0.0, 25.0));
        assert_eq!(
            verdicts(&first),
            [
                v("limit_hh", false),
                v("limit_h", false),
                v("limit_l", false),
                v("limit_ll", false)
            ]
        );
        let up = d.on_reading(&num(1.0, f64::from(31.2f32)));
        assert_eq!(verdicts(&up), [v("limit_hh", true), v("limit_h", true)]);
        assert_eq!(up[0].severity, Severity::Major);
        assert_eq!(up[1].severity, Severity::Minor);
        assert_eq!(up[0].message, "p 31.2 V above HH 30 V");
        assert_eq!(up[0].source, "dev/p");
        assert_eq!(up[0].zone.as_deref(), Some("z"));
        assert_eq!(up[0].ts, secs(1.0));
        assert_eq!(up[0].value, Some(Value::Float(f64::from(31.2f32))));
        assert!(d.on_reading(&num(2.0, 35.0)).is_empty(), "no repeats");
        let down = d.on_reading(&num(3.0, 19.0));
        assert_eq!(
            verdicts(&down),
            [
                v("limit_hh", false),
                v("limit_h", false),
                v("limit_l", true),
                v("limit_ll", true)
            ]
        );
        assert_eq!(down[3].message, "p 19 V below LL 20 V");
        assert_eq!(down[3].severity, Severity::Major);
        assert_eq!(down[0].message, "p 19 V back within HH 30 V (deadband 0.5)");
    }

    #[test]
    fn the_deadband_stops_chatter_at_the_limit() {
        let mut d = LimitsDetector::new(
            point(),
            &Limits {
                h: None,
                l: None,
                ll: None,
                ..limits(30.0, 0.0, 0.0, 0.0, 0.5)
            },
        );
        assert_eq!(run(&mut d, &[(0.0, 29.0)]), [v("limit_hh", false)]);
        assert_eq!(run(&mut d, &[(1.0, 30.1)]), [v("limit_hh", true)]);
        // Noise around the limit, never 0.5 below it: no clear, no re-raise.
        let noise = [
            (2.0, 29.8),
            (3.0, 30.2),
            (4.0, 29.6),
            (5.0, 30.05),
            (6.0, 29.51),
        ];
        assert!(run(&mut d, &noise).is_empty());
        assert_eq!(run(&mut d, &[(7.0, 29.5)]), [v("limit_hh", false)]);
        // Exactly at the limit is not beyond it.
        assert!(run(&mut d, &[(8.0, 30.0)]).is_empty());
        assert_eq!(run(&mut d, &[(9.0, 30.01)]), [v("limit_hh", true)]);
    }

    fn hh_with_delays(on: u64, off: u64) -> LimitsDetector {
        LimitsDetector::new(
            point(),
            &Limits {
                hh: Some(30.0),
                h: None,
                l: None,
                ll: None,
                deadband: 1.0,
                delay: Some(Duration::from_secs(on)),
                off_delay: Some(Duration::from_secs(off)),
            },
        )
    }

    #[test]
    fn the_on_delay_needs_the_value_beyond_for_its_whole_length() {
        let mut d = hh_with_delays(5, 0);
        assert_eq!(run(&mut d, &[(0.0, 20.0)]), [v("limit_hh", false)]);
        // Beyond for 4 s, then back within the deadband band: the delay restarts.
        assert!(run(
            &mut d,
            &[(10.0, 31.0), (12.0, 31.0), (14.0, 31.0), (15.0, 29.5)]
        )
        .is_empty());
        assert!(run(&mut d, &[(16.0, 31.0), (20.0, 32.0)]).is_empty());
        let raised = d.on_reading(&num(21.0, 33.0));
        assert_eq!(verdicts(&raised), [v("limit_hh", true)]);
        assert_eq!(raised[0].ts, secs(21.0));
    }

    #[test]
    fn a_tick_completes_a_delay_when_no_reading_comes() {
        let mut d = hh_with_delays(5, 3);
        // At start the verdict is unknown: "inside" must last the off-delay too.
        assert!(run(&mut d, &[(0.0, 20.0)]).is_empty());
        assert_eq!(verdicts(&d.on_tick(secs(3.0))), [v("limit_hh", false)]);
        assert!(run(&mut d, &[(10.0, 31.0)]).is_empty());
        assert!(d.on_tick(secs(14.9)).is_empty());
        let raised = d.on_tick(secs(16.0));
        assert_eq!(verdicts(&raised), [v("limit_hh", true)]);
        assert_eq!(raised[0].ts, secs(15.0), "at the moment the delay ran out");
        assert_eq!(raised[0].value, Some(Value::Float(31.0)));
        assert!(d.on_tick(secs(17.0)).is_empty());
        // Off-delay: back inside for 3 s.
        assert!(run(&mut d, &[(20.0, 28.0)]).is_empty());
        assert!(d.on_tick(secs(22.0)).is_empty());
        assert_eq!(verdicts(&d.on_tick(secs(23.0))), [v("limit_hh", false)]);
    }

    #[test]
    fn the_off_delay_needs_the_value_inside_for_its_whole_length() {
        let mut d = hh_with_delays(0, 10);
        assert_eq!(run(&mut d, &[(0.0, 31.0)]), [v("limit_hh", true)]);
        // Inside for 9 s then beyond again: stays active, no clear.
        assert!(run(&mut d, &[(1.0, 28.0), (10.0, 28.0), (10.5, 31.0)]).is_empty());
        assert!(run(&mut d, &[(11.0, 28.0), (20.0, 27.0)]).is_empty());
        assert_eq!(run(&mut d, &[(21.0, 27.0)]), [v("limit_hh", false)]);
    }

    #[test]
    fn bad_readings_drive_nothing_and_restart_delays() {
        let mut d = hh_with_delays(5, 0);
        assert_eq!(run(&mut d, &[(0.0, 20.0)]), [v("limit_hh", false)]);
        assert!(run(&mut d, &[(1.0, 31.0)]).is_empty());
        assert!(d
            .on_reading(&at(3.0, Value::Float(99.0), Quality::Bad))
            .is_empty());
        assert!(
            d.on_tick(secs(10.0)).is_empty(),
            "the pending raise was dropped"
        );
        assert!(run(&mut d, &[(11.0, 31.0), (15.0, 31.0)]).is_empty());
        assert_eq!(run(&mut d, &[(16.0, 31.0)]), [v("limit_hh", true)]);
        // Uncertain readings count; text is ignored.
        let mut d = hh_with_delays(0, 0);
        assert_eq!(
            verdicts(&d.on_reading(&at(0.0, Value::Float(31.0), Quality::Uncertain))),
            [v("limit_hh", true)]
        );
        assert!(d
            .on_reading(&at(1.0, Value::Text("n/a".into()), Quality::Good))
            .is_empty());
    }

    #[test]
    fn a_value_in_the_deadband_at_start_decides_nothing() {
        let mut d = hh_with_delays(0, 0);
        assert!(run(&mut d, &[(0.0, 29.5)]).is_empty());
        assert_eq!(run(&mut d, &[(1.0, 28.0)]), [v("limit_hh", false)]);
    }
}
