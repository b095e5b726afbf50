//! Scenarios: what a simulated point's value is at a given time.
//!
//! A scenario is a pure function of the time since the simulator started (and of a per-point
//! noise key derived from the seed): the same config and seed give the same values at the same
//! offsets, on every run, with no state and no I/O. Modbus registers, JSON telemetry and
//! Sparkplug metrics are all driven by this one machinery.
//!
//! Kinds (`kind = "…"` in `sim.toml`):
//!
//! | kind | value |
//! |---|---|
//! | `constant` | `value` forever |
//! | `noise` | `mean ± amplitude`, a new uniform draw every millisecond |
//! | `drift` | `start + rate · t` (`rate` per second) |
//! | `step` | `before` until `at`, then `after` |
//! | `sine` | `mean + amplitude · sin(2π t / period)` |
//! | `ramp` | `from` → `to` linearly over `over`, then holds `to` (or starts again with `repeat`) |
//! | `event` | `normal` until `at`, then `value`; back to `normal` after `duration` when given (door forced, fence alarm) |
//! | `pulse` | `value` for `width` every `every` from `start`, `normal` in between |
//! | `schedule` | piecewise constant: each step's `value` from its `at` on |
//!
//! Every kind takes `stuck_at = "10m"`: from then on the value stops changing (a stuck
//! sensor: noise freezes too). The analog kinds take `noise = 0.2`: a uniform ± that
//! amplitude added on top.

use std::time::Duration;

use serde::Deserialize;
use vigil_core::Value;

/// The script of one point (or one MQTT field).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scenario {
    /// A fixed value.
    Constant {
        /// The value: a number, `true`/`false`, or a string for string points.
        value: Value,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// Steady with noise: `mean ± amplitude`.
    Noise {
        /// The value the noise is centred on.
        mean: f64,
        /// Half the peak-to-peak noise.
        amplitude: f64,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// A linear drift: `start + rate · seconds`.
    Drift {
        /// The value at the simulator's start.
        start: f64,
        /// The change per second (negative to fall).
        rate: f64,
        /// Uniform noise amplitude added on top.
        #[serde(default)]
        noise: f64,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// A step from one value to another at a time.
    Step {
        /// The value before `at`.
        before: f64,
        /// The value from `at` on.
        after: f64,
        /// When the step happens, from the simulator's start ("30s").
        #[serde(with = "humantime_serde")]
        at: Duration,
        /// Uniform noise amplitude added on top.
        #[serde(default)]
        noise: f64,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// A sine wave.
    Sine {
        /// The centre of the wave.
        mean: f64,
        /// Half the peak-to-peak swing.
        amplitude: f64,
        /// One full cycle ("1m").
        #[serde(with = "humantime_serde")]
        period: Duration,
        /// Uniform noise amplitude added on top.
        #[serde(default)]
        noise: f64,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// A linear ramp from one value to another.
    Ramp {
        /// The value at the start.
        from: f64,
        /// The value reached after `over`.
        to: f64,
        /// How long the ramp takes.
        #[serde(with = "humantime_serde")]
        over: Duration,
        /// Start again from `from` after each ramp (a sawtooth) instead of holding `to`.
        #[serde(default)]
        repeat: bool,
        /// Uniform noise amplitude added on top.
        #[serde(default)]
        noise: f64,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// A digital event: `value` from `at` (for `duration`, when given), `normal` otherwise.
    Event {
        /// When the event happens ("door forced at 45s").
        #[serde(with = "humantime_serde")]
        at: Duration,
        /// The value during the event (default `true`).
        #[serde(default = "default_event_value")]
        value: Value,
        /// The value outside the event (default: the opposite of a bool `value`, else 0).
        #[serde(default)]
        normal: Option<Value>,
        /// How long the event lasts; absent: it stays.
        #[serde(default, with = "humantime_serde")]
        duration: Option<Duration>,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// Periodic pulses, for demos: `value` for `width` out of every `every`.
    Pulse {
        /// The period of the pulses.
        #[serde(with = "humantime_serde")]
        every: Duration,
        /// How long each pulse lasts.
        #[serde(with = "humantime_serde")]
        width: Duration,
        /// When the first pulse starts (default: at the simulator's start).
        #[serde(default, with = "humantime_serde")]
        start: Duration,
        /// The value during a pulse (default `true`).
        #[serde(default = "default_event_value")]
        value: Value,
        /// The value between pulses (default: the opposite of a bool `value`, else 0).
        #[serde(default)]
        normal: Option<Value>,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
    /// Piecewise constant: each step's value from its time on.
    Schedule {
        /// The value before the first step.
        initial: Value,
        /// The steps, in any order.
        steps: Vec<ScheduleStep>,
        /// From this offset on the value stops changing.
        #[serde(default, with = "humantime_serde")]
        stuck_at: Option<Duration>,
    },
}

/// One step of a [`Scenario::Schedule`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleStep {
    /// When the value changes, from the simulator's start.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// The value from then on.
    pub value: Value,
}

const fn default_event_value() -> Value {
    Value::Bool(true)
}

/// What kind of values a scenario yields, for checking it against a point's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yields {
    /// Numbers (or bools, which read as 0/1).
    Number,
    /// Text.
    Text,
}

impl Scenario {
    /// The value at `t` after the simulator's start; `key` seeds the noise of this point.
    pub fn value_at(&self, t: Duration, key: u64) -> Value {
        let t = match self.stuck_at() {
            Some(s) if t > s => s,
            _ => t,
        };
        let secs = t.as_secs_f64();
        let noisy = |x: f64, amplitude: f64| Value::Float(x + amplitude * noise(key, t));
        match self {
            Scenario::Constant { value, .. } => value.clone(),
            Scenario::Noise {
                mean, amplitude, ..
            } => noisy(*mean, *amplitude),
            Scenario::Drift {
                start, rate, noise, ..
            } => noisy(start + rate * secs, *noise),
            Scenario::Step {
                before,
                after,
                at,
                noise,
                ..
            } => noisy(if t >= *at { *after } else { *before }, *noise),
            Scenario::Sine {
                mean,
                amplitude,
                period,
                noise,
                ..
            } => {
                let phase = if period.is_zero() {
                    0.0
                } else {
                    secs / period.as_secs_f64()
                };
                noisy(
                    mean + amplitude * (std::f64::consts::TAU * phase).sin(),
                    *noise,
                )
            }
            Scenario::Ramp {
                from,
                to,
                over,
                repeat,
                noise,
                ..
            } => {
                let span = over.as_secs_f64();
                let frac = if span <= 0.0 {
                    1.0
                } else if *repeat {
                    (secs % span) / span
                } else {
                    (secs / span).min(1.0)
                };
                noisy(from + (to - from) * frac, *noise)
            }
            Scenario::Event {
                at,
                value,
                normal,
                duration,
                ..
            } => {
                let on = t >= *at && duration.is_none_or(|d| t < at.saturating_add(d));
                if on {
                    value.clone()
                } else {
                    normal_of(value, normal.as_ref())
                }
            }
            Scenario::Pulse {
                every,
                width,
                start,
                value,
                normal,
                ..
            } => {
                let on = t >= *start && {
                    let since = t - *start;
                    let every = every.as_nanos().max(1);
                    since.as_nanos() % every < width.as_nanos()
                };
                if on {
                    value.clone()
                } else {
                    normal_of(value, normal.as_ref())
                }
            }
            Scenario::Schedule { initial, steps, .. } => steps
                .iter()
                .filter(|s| s.at <= t)
                .max_by_key(|s| s.at)
                .map_or_else(|| initial.clone(), |s| s.value.clone()),
        }
    }

    /// From when the value stops changing, if ever.
    pub fn stuck_at(&self) -> Option<Duration> {
        match self {
            Scenario::Constant { stuck_at, .. }
            | Scenario::Noise { stuck_at, .. }
            | Scenario::Drift { stuck_at, .. }
            | Scenario::Step { stuck_at, .. }
            | Scenario::Sine { stuck_at, .. }
            | Scenario::Ramp { stuck_at, .. }
            | Scenario::Event { stuck_at, .. }
            | Scenario::Pulse { stuck_at, .. }
            | Scenario::Schedule { stuck_at, .. } => *stuck_at,
        }
    }

    /// Whether the scenario is an analog signal (always a float) rather than a sequence of
    /// declared values.
    pub const fn is_analog(&self) -> bool {
        matches!(
            self,
            Scenario::Noise { .. }
                | Scenario::Drift { .. }
                | Scenario::Step { .. }
                | Scenario::Sine { .. }
                | Scenario::Ramp { .. }
        )
    }

    /// The values the scenario declares (empty for analog scenarios).
    pub fn declared_values(&self) -> Vec<&Value> {
        match self {
            Scenario::Constant { value, .. } => vec![value],
            Scenario::Event { value, normal, .. } | Scenario::Pulse { value, normal, .. } => {
                std::iter::once(value).chain(normal.as_ref()).collect()
            }
            Scenario::Schedule { initial, steps, .. } => std::iter::once(initial)
                .chain(steps.iter().map(|s| &s.value))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the scenario yields text anywhere (only string points take text).
    pub fn yields(&self) -> Yields {
        if self
            .declared_values()
            .iter()
            .any(|v| matches!(v, Value::Text(_)))
        {
            Yields::Text
        } else {
            Yields::Number
        }
    }

    /// The semantic problems of the scenario, as `(key under the scenario, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let finite = |out: &mut Vec<_>, key: &'static str, x: f64| {
            if !x.is_finite() {
                out.push((key, format!("{x} is not a finite number")));
            }
        };
        match self {
            Scenario::Noise {
                mean, amplitude, ..
            } => {
                finite(&mut out, "mean", *mean);
                finite(&mut out, "amplitude", *amplitude);
            }
            Scenario::Drift {
                start, rate, noise, ..
            } => {
                finite(&mut out, "start", *start);
                finite(&mut out, "rate", *rate);
                finite(&mut out, "noise", *noise);
            }
            Scenario::Step {
                before,
                after,
                noise,
                ..
            } => {
                finite(&mut out, "before", *before);
                finite(&mut out, "after", *after);
                finite(&mut out, "noise", *noise);
            }
            Scenario::Sine {
                mean,
                amplitude,
                period,
                noise,
                ..
            } => {
                finite(&mut out, "mean", *mean);
                finite(&mut out, "amplitude", *amplitude);
                finite(&mut out, "noise", *noise);
                if period.is_zero() {
                    out.push(("period", "must be longer than 0s".into()));
                }
            }
            Scenario::Ramp {
                from,
                to,
                over,
                noise,
                ..
            } => {
                finite(&mut out, "from", *from);
                finite(&mut out, "to", *to);
                finite(&mut out, "noise", *noise);
                if over.is_zero() {
                    out.push(("over", "must be longer than 0s".into()));
                }
            }
            Scenario::Pulse { every, width, .. } => {
                if every.is_zero() {
                    out.push(("every", "must be longer than 0s".into()));
                } else if width >= every {
                    out.push((
                        "width",
                        "must be shorter than `every` (or the pulse never ends)".into(),
                    ));
                }
                if width.is_zero() {
                    out.push(("width", "must be longer than 0s".into()));
                }
            }
            Scenario::Event { duration, .. } => {
                if duration.is_some_and(|d| d.is_zero()) {
                    out.push(("duration", "must be longer than 0s (or left out)".into()));
                }
            }
            Scenario::Schedule { steps, .. } => {
                if steps.is_empty() {
                    out.push(("steps", "give at least one step".into()));
                }
            }
            Scenario::Constant { .. } => {}
        }
        out
    }
}

/// The value outside an event or pulse: given, or the opposite of a bool, or zero.
fn normal_of(value: &Value, normal: Option<&Value>) -> Value {
    match (normal, value) {
        (Some(n), _) => n.clone(),
        (None, Value::Bool(b)) => Value::Bool(!b),
        (None, Value::Int(_)) => Value::Int(0),
        (None, Value::Float(_)) => Value::Float(0.0),
        (None, Value::Text(_)) => Value::Text(String::new()),
    }
}

/// The noise key of one point: a stable hash of the seed and the point's full name, so each
/// point has its own noise and the same seed gives the same noise.
pub fn noise_key(seed: u64, device: &str, point: &str) -> u64 {
    // FNV-1a over "device/point", then mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device.bytes().chain([b'/']).chain(point.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(h ^ splitmix64(seed))
}

/// Uniform noise in [-1, 1], a pure function of the key and the millisecond.
fn noise(key: u64, t: Duration) -> f64 {
    let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
    let bits = splitmix64(key ^ ms.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11;
    // 53 random bits → [0, 1) → [-1, 1).
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1u64 << 53) as f64;
    unit * 2.0 - 1.0
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
pub(crate) const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn f(v: Value) -> f64 {
        v.as_f64().expect("a number")
    }

    fn parse(text: &str) -> Scenario {
        vigil_config::parse::<Wrapper>(std::path::Path::new("t.toml"), text)
            .expect("parses")
            .s
    }

    #[test]
    fn noise_stays_within_its_amplitude_and_is_deterministic() {
        let s = Scenario::Noise {
            mean: 21.5,
            amplitude: 0.5,
            stuck_at: None,
        };
        let key = noise_key(7, "env-1", "temp");
        let mut distinct = std::collections::HashSet::new();
        for ms in 0..2000 {
            let t = Duration::from_millis(ms);
            let v = f(s.value_at(t, key));
            assert!((21.0..=22.0).contains(&v), "{v}");
            assert_eq!(s.value_at(t, key), s.value_at(t, key));
            distinct.insert(v.to_bits());
        }
        assert!(distinct.len() > 1900, "noise varies: {}", distinct.len());
        assert_ne!(
            s.value_at(secs(1.0), key),
            s.value_at(secs(1.0), noise_key(8, "env-1", "temp")),
            "another seed, other noise"
        );
        assert_ne!(
            s.value_at(secs(1.0), key),
            s.value_at(secs(1.0), noise_key(7, "env-1", "rh")),
            "another point, other noise"
        );
    }

    #[test]
    fn drift_step_sine_ramp() {
        let drift = Scenario::Drift {
            start: 20.0,
            rate: 0.5,
            noise: 0.0,
            stuck_at: None,
        };
        assert_eq!(f(drift.value_at(secs(10.0), 1)), 25.0);
        let step = Scenario::Step {
            before: 230.0,
            after: 190.0,
            at: secs(30.0),
            noise: 0.0,
            stuck_at: None,
        };
        assert_eq!(f(step.value_at(secs(29.999), 1)), 230.0);
        assert_eq!(f(step.value_at(secs(30.0), 1)), 190.0);
        let sine = Scenario::Sine {
            mean: 10.0,
            amplitude: 2.0,
            period: secs(60.0),
            noise: 0.0,
            stuck_at: None,
        };
        assert!((f(sine.value_at(secs(15.0), 1)) - 12.0).abs() < 1e-9);
        assert!((f(sine.value_at(secs(45.0), 1)) - 8.0).abs() < 1e-9);
        let ramp = Scenario::Ramp {
            from: 0.0,
            to: 100.0,
            over: secs(10.0),
            repeat: false,
            noise: 0.0,
            stuck_at: None,
        };
        assert_eq!(f(ramp.value_at(secs(5.0), 1)), 50.0);
        assert_eq!(f(ramp.value_at(secs(50.0), 1)), 100.0);
        let saw = Scenario::Ramp {
            from: 0.0,
            to: 100.0,
            over: secs(10.0),
            repeat: true,
            noise: 0.0,
            stuck_at: None,
        };
        assert_eq!(f(saw.value_at(secs(12.5), 1)), 25.0);
    }

    #[test]
    fn stuck_at_freezes_the_value_noise_included() {
        let s = Scenario::Noise {
            mean: 5.0,
            amplitude: 1.0,
            stuck_at: Some(secs(60.0)),
        };
        let frozen = s.value_at(secs(60.0), 3);
        for t in [61.0, 100.0, 3600.0] {
            assert_eq!(s.value_at(secs(t), 3), frozen);
        }
        assert_ne!(s.value_at(secs(59.0), 3), frozen);
    }

    #[test]
    fn events_and_pulses() {
        let forced = Scenario::Event {
            at: secs(45.0),
            value: Value::Bool(true),
            normal: None,
            duration: Some(secs(10.0)),
            stuck_at: None,
        };
        assert_eq!(forced.value_at(secs(44.9), 0), Value::Bool(false));
        assert_eq!(forced.value_at(secs(45.0), 0), Value::Bool(true));
        assert_eq!(forced.value_at(secs(54.9), 0), Value::Bool(true));
        assert_eq!(forced.value_at(secs(55.0), 0), Value::Bool(false));
        let latched = Scenario::Event {
            at: secs(45.0),
            value: Value::Bool(true),
            normal: None,
            duration: None,
            stuck_at: None,
        };
        assert_eq!(latched.value_at(secs(1e6), 0), Value::Bool(true));
        let pulse = Scenario::Pulse {
            every: secs(10.0),
            width: secs(2.0),
            start: secs(5.0),
            value: Value::Int(3),
            normal: None,
            stuck_at: None,
        };
        assert_eq!(pulse.value_at(secs(4.0), 0), Value::Int(0));
        assert_eq!(pulse.value_at(secs(6.0), 0), Value::Int(3));
        assert_eq!(pulse.value_at(secs(8.0), 0), Value::Int(0));
        assert_eq!(pulse.value_at(secs(16.5), 0), Value::Int(3));
    }

    #[test]
    fn schedules_take_the_latest_step() {
        let s = Scenario::Schedule {
            initial: Value::Int(1),
            steps: vec![
                ScheduleStep {
                    at: secs(20.0),
                    value: Value::Int(3),
                },
                ScheduleStep {
                    at: secs(10.0),
                    value: Value::Int(2),
                },
            ],
            stuck_at: None,
        };
        assert_eq!(s.value_at(secs(5.0), 0), Value::Int(1));
        assert_eq!(s.value_at(secs(15.0), 0), Value::Int(2));
        assert_eq!(s.value_at(secs(25.0), 0), Value::Int(3));
    }

    #[test]
    fn scenarios_parse_from_toml() {
        let s = parse("[s]\nkind = \"event\"\nat = \"30s\"\nduration = \"5s\"\n");
        assert_eq!(
            s,
            Scenario::Event {
                at: secs(30.0),
                value: Value::Bool(true),
                normal: None,
                duration: Some(secs(5.0)),
                stuck_at: None
            }
        );
        let s = parse("s = { kind = \"noise\", mean = 21, amplitude = 0.2, stuck_at = \"5m\" }\n");
        assert_eq!(s.stuck_at(), Some(secs(300.0)));
        let e = vigil_config::parse::<Wrapper>(
            std::path::Path::new("t.toml"),
            "[s]\nkind = \"noise\"\nmean = 1\namplitud = 2\n",
        )
        .expect_err("typo");
        assert!(e.to_string().contains("amplitud"), "{e}");
    }

    #[derive(Debug, Deserialize)]
    struct Wrapper {
        s: Scenario,
    }
    impl vigil_config::Validate for Wrapper {
        fn validate(&self) -> Vec<vigil_config::Problem> {
            Vec::new()
        }
    }

    #[test]
    fn problems_are_named() {
        let s = Scenario::Pulse {
            every: secs(1.0),
            width: secs(2.0),
            start: Duration::ZERO,
            value: Value::Bool(true),
            normal: None,
            stuck_at: None,
        };
        assert_eq!(s.problems()[0].0, "width");
        assert_eq!(
            Scenario::Constant {
                value: Value::Text("x".into()),
                stuck_at: None
            }
            .yields(),
            Yields::Text
        );
    }
}
