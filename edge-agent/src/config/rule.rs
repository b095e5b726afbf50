//! `[[rule]]`: per-point overrides of the detection rules that device profiles give.
//!
//! A device profile carries the default rules of its model's points (`alarm`, `limits`,
//! `rate`, `stale`, `flatline`). A facility often needs other values (a tighter limit, a
//! longer delay), and MQTT-fed points have no profile at all: `[[rule]]` entries in
//! `agent.toml` set or replace rules per point.
//!
//! ```toml
//! [[rule]]
//! points = ["fence-north/supply_voltage", "env-1/*"]   # exact ids, or every point of a device
//! limits = { hh = 29, h = 27.5, l = 22, ll = 20, deadband = 0.5, delay = "2s", off_delay = "5s" }
//! stale = { after = "1m", severity = "minor" }
//! zone = "north-perimeter"                               # optional: the points' zone
//!
//! [[rule]]
//! points = ["ups-1/*"]
//! enabled = false                                        # no rules at all for these points
//! ```
//!
//! Each of `limits`, `alarm`, `rate`, `stale`, `flatline` takes the same keys as in a
//! profile and **replaces** the profile's rule of that kind for the matched points (kinds a
//! `[[rule]]` does not name are kept). `enabled = false` disables every rule of the matched
//! points; `enabled = true` re-enables points an earlier entry disabled.
//!
//! Merge order, for one point: the profile's rules first, in the point's site zone (the
//! device's `zones` mapping of the point's profile zone, else the device's `zone`, else the
//! profile zone: see [`super::modbus`]); then every `[[rule]]` whose pattern is `device/*`,
//! in file order; then every `[[rule]]` naming the point exactly, in file order. Later
//! entries win, kind by kind and for the zone, so an exact id always beats a device wildcard
//! whatever their order in the file.
//!
//! Communication loss is raised by the source itself and is not a rule: `enabled = false`
//! does not silence it.

use std::fmt;

use serde::Deserialize;
use vigil_config::Problem;
use vigil_core::PointId;
use vigil_profile::{AlarmRule, FlatlineRule, Limits, Profile, RateRule, StaleRule};

use super::{AgentConfig, Decoder};

/// One `[[rule]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// The points this entry applies to: exact ids (`fence-north/supply_voltage`) or every
    /// point of a device (`env-1/*`).
    pub points: Vec<String>,
    /// `false` disables every rule of the points; `true` re-enables points an earlier entry
    /// disabled. Absent: unchanged.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The site zone of the points, for correlation (replaces the device's `zone`, its
    /// `zones` mapping and the profile's zone).
    #[serde(default)]
    pub zone: Option<String>,
    /// A digital-state alarm (bool points).
    #[serde(default)]
    pub alarm: Option<AlarmRule>,
    /// Analog limits HH/H/L/LL.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Rate of change.
    #[serde(default)]
    pub rate: Option<RateRule>,
    /// No new value for too long.
    #[serde(default)]
    pub stale: Option<StaleRule>,
    /// The value has not moved for too long (stuck sensor).
    #[serde(default)]
    pub flatline: Option<FlatlineRule>,
}

impl RuleOverride {
    /// Whether the entry sets any rule kind.
    pub fn has_rules(&self) -> bool {
        self.alarm.is_some()
            || self.limits.is_some()
            || self.rate.is_some()
            || self.stale.is_some()
            || self.flatline.is_some()
    }

    /// The entry's patterns that parse.
    pub fn patterns(&self) -> impl Iterator<Item = PointPattern> + '_ {
        self.points
            .iter()
            .filter_map(|p| PointPattern::parse(p).ok())
    }
}

/// What a `points` entry names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PointPattern {
    /// One point, `device/point`.
    Point(PointId),
    /// Every point of a device, `device/*`.
    Device(String),
}

/// A `points` entry that is neither `device/point` nor `device/*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} must be \"device/point\" or \"device/*\"")]
pub struct PatternError(String);

impl PointPattern {
    /// Parses `device/point` or `device/*`.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if let Some(device) = s.strip_suffix("/*") {
            if super::valid_device_name(device) {
                return Ok(PointPattern::Device(device.to_owned()));
            }
            return Err(PatternError(s.to_owned()));
        }
        s.parse::<PointId>()
            .map(PointPattern::Point)
            .map_err(|_| PatternError(s.to_owned()))
    }

    /// The device the pattern is about.
    pub fn device(&self) -> &str {
        match self {
            PointPattern::Point(p) => p.device(),
            PointPattern::Device(d) => d,
        }
    }

    /// Whether `point` is matched.
    pub fn matches(&self, point: &PointId) -> bool {
        match self {
            PointPattern::Point(p) => p == point,
            PointPattern::Device(d) => point.device() == d,
        }
    }

    /// Whether the pattern names one point exactly.
    pub const fn is_exact(&self) -> bool {
        matches!(self, PointPattern::Point(_))
    }
}

impl fmt::Display for PointPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointPattern::Point(p) => write!(f, "{p}"),
            PointPattern::Device(d) => write!(f, "{d}/*"),
        }
    }
}

/// Whether a zone name can be used (it becomes part of the incident source `zone:<zone>`).
pub fn valid_zone(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 64
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Whether an MQTT subscription could name a device `device`.
///
/// Sparkplug B names devices by their Sparkplug ids and a subscription without a `device`
/// template names them after the whole topic, so those could name any device; a template
/// such as `env-{1}` names devices that match it with each `{n}` standing for one or more
/// characters.
fn mqtt_could_name(config: &AgentConfig, device: &str) -> bool {
    config.mqtt.subscription.iter().any(|s| {
        if s.decoder == Decoder::SparkplugB {
            return true;
        }
        s.device
            .as_deref()
            .is_none_or(|template| template_matches(template, device))
    })
}

/// Matches a device template (`env-{1}`, `{1}-{2}`) against a device name: literal text must
/// match, each `{n}` matches one or more characters.
fn template_matches(template: &str, device: &str) -> bool {
    // Split into literals and wildcards; an unclosed '{' is a literal (the template's own
    // check reports it).
    let mut parts: Vec<Option<&str>> = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(open) => {
                let Some(close) = rest[open..].find('}') else {
                    parts.push(Some(rest));
                    break;
                };
                if open > 0 {
                    parts.push(Some(&rest[..open]));
                }
                parts.push(None);
                rest = &rest[open + close + 1..];
            }
            None => {
                parts.push(Some(rest));
                break;
            }
        }
    }
    glob(&parts, device)
}

fn glob(parts: &[Option<&str>], s: &str) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Some(lit), rest)) => s.strip_prefix(lit).is_some_and(|tail| glob(rest, tail)),
        Some((None, rest)) => s
            .char_indices()
            .skip(1)
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .filter(|&i| i > 0)
            .any(|i| glob(rest, &s[i..])),
    }
}

/// The checks of every `[[rule]]` against the rest of the config (pure; the profiles'
/// points are checked by [`check_points`] once profiles are loaded).
pub fn validate_rules(config: &AgentConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, rule) in config.rule.iter().enumerate() {
        let at = |k: &str| format!("rule[{i}].{k}");
        if rule.points.is_empty() {
            out.push(Problem::new(
                at("points"),
                "list the points this rule applies to, e.g. points = [\"fence-north/supply_voltage\", \"env-1/*\"]",
            ));
        }
        for p in &rule.points {
            let pattern = match PointPattern::parse(p) {
                Ok(pattern) => pattern,
                Err(e) => {
                    out.push(Problem::new(at("points"), e.to_string()));
                    continue;
                }
            };
            let device = pattern.device();
            let modbus = config.modbus.device.iter().any(|d| d.id == device);
            if !modbus && !mqtt_could_name(config, device) {
                let known: Vec<&str> = config.modbus.device.iter().map(|d| d.id.as_str()).collect();
                out.push(Problem::new(
                    at("points"),
                    format!(
                        "\"{pattern}\" matches no configured device: no [[modbus.device]] has id {device:?} (known: {}) and no [[mqtt.subscription]] can name it",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
        }
        match rule.enabled {
            Some(false) if rule.has_rules() => out.push(Problem::new(
                at("enabled"),
                "enabled = false disables every rule of these points: remove it, or the rules this entry also sets",
            )),
            None if !rule.has_rules() && rule.zone.is_none() => out.push(Problem::new(
                format!("rule[{i}]"),
                "this rule changes nothing: set limits, alarm, rate, stale, flatline or zone, or enabled = false",
            )),
            _ => {}
        }
        if let Some(zone) = &rule.zone {
            if !valid_zone(zone) {
                out.push(Problem::new(
                    at("zone"),
                    format!("{zone:?}: use 1-64 letters, digits, '-', '_' and '.'"),
                ));
            }
        }
        out.extend(check_rule_values(rule, &format!("rule[{i}]")));
    }
    out
}

/// The value checks a profile applies to its rules, for a `[[rule]]`'s rules.
fn check_rule_values(rule: &RuleOverride, at: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let key = |k: &str| format!("{at}.{k}");
    if let Some(limits) = &rule.limits {
        let set: Vec<(&str, f64)> = [
            ("ll", limits.ll),
            ("l", limits.l),
            ("h", limits.h),
            ("hh", limits.hh),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        if set.is_empty() {
            out.push(Problem::new(
                key("limits"),
                "give at least one of hh, h, l, ll",
            ));
        }
        for (k, v) in &set {
            if !v.is_finite() {
                out.push(Problem::new(
                    key(&format!("limits.{k}")),
                    "must be a finite number",
                ));
            }
        }
        for pair in set.windows(2) {
            if pair[1].1 <= pair[0].1 {
                out.push(Problem::new(
                    key(&format!("limits.{}", pair[1].0)),
                    format!(
                        "limits must increase ll < l < h < hh, but {} = {} is not above {} = {}",
                        pair[1].0, pair[1].1, pair[0].0, pair[0].1
                    ),
                ));
            }
        }
        if !(limits.deadband.is_finite() && limits.deadband >= 0.0) {
            out.push(Problem::new(
                key("limits.deadband"),
                "deadband must be a number ≥ 0",
            ));
        }
    }
    if let Some(rate) = &rule.rate {
        if !(rate.max_per_s.is_finite() && rate.max_per_s > 0.0) {
            out.push(Problem::new(key("rate.max_per_s"), "must be a number > 0"));
        }
    }
    if let Some(stale) = &rule.stale {
        if stale.after.is_zero() {
            out.push(Problem::new(key("stale.after"), "must be longer than 0s"));
        }
    }
    if let Some(f) = &rule.flatline {
        if f.after.is_zero() {
            out.push(Problem::new(
                key("flatline.after"),
                "must be longer than 0s",
            ));
        }
        if !(f.tolerance.is_finite() && f.tolerance >= 0.0) {
            out.push(Problem::new(
                key("flatline.tolerance"),
                "must be a number ≥ 0",
            ));
        }
    }
    out
}

/// The checks of `[[rule]]` entries against the loaded profiles: an exact point id on a
/// Modbus device must be a point of the device's profile. `profiles` are the devices'
/// profiles in config order (as `check_cmd::load_checked` returns them).
pub fn check_points(config: &AgentConfig, profiles: &[Profile]) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, rule) in config.rule.iter().enumerate() {
        for pattern in rule.patterns() {
            let PointPattern::Point(point) = &pattern else {
                continue;
            };
            let Some((device, profile)) = config
                .modbus
                .device
                .iter()
                .zip(profiles)
                .find(|(d, _)| d.id == point.device())
            else {
                continue;
            };
            if !profile.points.iter().any(|p| p.name == point.point()) {
                out.push(Problem::new(
                    format!("rule[{i}].points"),
                    format!(
                        "\"{point}\": profile {:?} of device {:?} has no point {:?}",
                        profile.name,
                        device.id,
                        point.point()
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use vigil_config::ConfigErrors;

    use super::*;

    const BASE: &str = r#"
[node]
id = "gw-1"
site = "ministry/p/c/county/prison-3"

[uplink]
url = "mqtt://127.0.0.1:1883"

[store]
path = "/tmp/agent.db"

[[modbus.device]]
id = "fence-north"
profile = "perimeter-fence-controller"
transport = "tcp"
address = "127.0.0.1:502"
zone = "north"

[[mqtt.subscription]]
url = "mqtt://127.0.0.1:1883"
topic = "facility/env/+/telemetry"
decoder = "json"
device = "env-{1}"
"#;

    fn load(rules: &str) -> Result<AgentConfig, ConfigErrors> {
        vigil_config::parse(Path::new("agent.toml"), &format!("{BASE}{rules}"))
    }

    #[test]
    fn the_documented_example_loads() {
        let config = load(
            r#"
[[rule]]
points = ["fence-north/supply_voltage", "env-1/*"]
limits = { hh = 29, h = 27.5, l = 22, ll = 20, deadband = 0.5, delay = "2s", off_delay = "5s" }
stale = { after = "1m", severity = "minor" }
zone = "north-perimeter"

[[rule]]
points = ["fence-north/*"]
enabled = false
"#,
        )
        .expect("valid");
        assert_eq!(config.rule.len(), 2);
        let limits = config.rule[0].limits.as_ref().expect("limits");
        assert_eq!(limits.hh, Some(29.0));
        assert_eq!(limits.delay, Some(Duration::from_secs(2)));
        assert_eq!(limits.off_delay, Some(Duration::from_secs(5)));
        assert_eq!(
            config.rule[0].patterns().collect::<Vec<_>>(),
            vec![
                PointPattern::Point("fence-north/supply_voltage".parse().expect("id")),
                PointPattern::Device("env-1".into())
            ]
        );
        assert_eq!(config.rule[1].enabled, Some(false));
    }

    fn problems(rules: &str) -> Vec<String> {
        match load(rules) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_rule_for_no_configured_device_names_its_key_and_line() {
        let got = problems("\n[[rule]]\npoints = [\"fence-south/supply_voltage\"]\nrate = { max_per_s = 1, severity = \"minor\" }\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("agent.toml:26: rule[0].points: \"fence-south/supply_voltage\" matches no configured device"),
            "{got:?}"
        );
        // The MQTT template env-{1} can name env-7, not door-7.
        assert!(problems("\n[[rule]]\npoints = [\"env-7/*\"]\nzone = \"z\"\n").is_empty());
        let got = problems("\n[[rule]]\npoints = [\"door-7/*\"]\nzone = \"z\"\n");
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn bad_rules_are_named() {
        let cases = [
            ("points = []\nzone = \"z\"", "rule[0].points: list the points"),
            ("points = [\"fence-north\"]\nzone = \"z\"", "rule[0].points: \"fence-north\" must be"),
            ("points = [\"fence-north/*\"]", "rule[0]: this rule changes nothing"),
            (
                "points = [\"fence-north/*\"]\nenabled = false\nrate = { max_per_s = 1, severity = \"minor\" }",
                "rule[0].enabled: enabled = false disables",
            ),
            ("points = [\"fence-north/*\"]\nzone = \"a b\"", "rule[0].zone: "),
            ("points = [\"fence-north/*\"]\nlimits = { h = 30, hh = 20 }", "rule[0].limits.hh: limits must increase"),
            ("points = [\"fence-north/*\"]\nlimits = { deadband = 1 }", "rule[0].limits: give at least one"),
            ("points = [\"fence-north/*\"]\nlimits = { h = 1, deadband = -1 }", "rule[0].limits.deadband: "),
            ("points = [\"fence-north/*\"]\nrate = { max_per_s = 0, severity = \"minor\" }", "rule[0].rate.max_per_s: "),
            ("points = [\"fence-north/*\"]\nstale = { after = \"0s\", severity = \"minor\" }", "rule[0].stale.after: "),
            ("points = [\"fence-north/*\"]\nflatline = { after = \"1h\", tolerance = -1, severity = \"minor\" }", "rule[0].flatline.tolerance: "),
            ("points = [\"fence-north/*\"]\nlimits = { h = 1, hyst = 2 }", "unknown field `hyst`"),
            ("points = [\"fence-north/*\"]\nthreshold = 3", "unknown field `threshold`"),
        ];
        for (body, want) in cases {
            let got = problems(&format!("\n[[rule]]\n{body}\n"));
            assert_eq!(got.len(), 1, "{body}: {got:?}");
            assert!(
                got[0].contains(want),
                "{body}: {got:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn templates_match_device_names() {
        assert!(template_matches("env-{1}", "env-3"));
        assert!(!template_matches("env-{1}", "env-"));
        assert!(!template_matches("env-{1}", "door-3"));
        assert!(template_matches("{1}-{2}", "a-b-c"));
        assert!(!template_matches("{1}-{2}", "ab"));
        assert!(template_matches("plain", "plain"));
        assert!(!template_matches("plain", "plains"));
    }

    #[test]
    fn exact_points_are_checked_against_the_profile() {
        let config = load(
            "\n[[rule]]\npoints = [\"fence-north/supply_voltag\", \"fence-north/supply_voltage\"]\nzone = \"z\"\n",
        )
        .expect("valid");
        let profile = vigil_profile::parse_profile(
            Path::new("perimeter-fence-controller.yaml"),
            "name: perimeter-fence-controller\nmanufacturer: x\nmodel: y\npoints:\n  - { name: supply_voltage, table: input, address: 0, type: u16 }\n",
        )
        .expect("profile");
        let got = check_points(&config, &[profile]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].key, "rule[0].points");
        assert!(
            got[0].message.contains("no point \"supply_voltag\""),
            "{got:?}"
        );
    }
}
