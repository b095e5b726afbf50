//! The rule book: which rules each point runs, from the device profiles and the `[[rule]]`
//! overrides of `agent.toml`.
//!
//! Merge order for one point (also documented in [`crate::config::rule`]):
//!
//! 1. the profile point's rules, in its site zone: its device's `zones` mapping of the
//!    point's profile zone, else the device's `zone`, else the profile zone (the installer's
//!    topology wins: [`crate::config::modbus`]);
//! 2. every `[[rule]]` with a `device/*` pattern that matches, in file order;
//! 3. every `[[rule]]` naming the point exactly, in file order.
//!
//! Each step replaces the rule kinds it sets (`limits`, `alarm`, `rate`, `stale`,
//! `flatline`) and the zone, and `enabled` switches all of the point's rules off or back on.
//! Points no profile names (MQTT) start from no rules and no zone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vigil_core::PointId;
use vigil_profile::{AlarmRule, FlatlineRule, Limits, Profile, RateRule, StaleRule};

use super::{Detector, PointInfo, Rule};
use crate::config::{AgentConfig, PointPattern, RuleOverride};

/// The rules of one point, after the merge.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRules {
    /// The point, with its unit and zone.
    pub point: PointInfo,
    /// Its rules, at most one of each kind.
    pub rules: Vec<Rule>,
}

impl PointRules {
    /// A fresh detector for each rule.
    pub fn build(&self) -> Vec<Box<dyn Detector>> {
        self.rules.iter().map(|r| r.build(&self.point)).collect()
    }
}

/// One rule of each kind, or none, and the switches a merge step can change.
#[derive(Debug, Clone, PartialEq)]
struct Slots {
    enabled: bool,
    zone: Option<String>,
    alarm: Option<AlarmRule>,
    limits: Option<Limits>,
    rate: Option<RateRule>,
    stale: Option<StaleRule>,
    flatline: Option<FlatlineRule>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            enabled: true,
            zone: None,
            alarm: None,
            limits: None,
            rate: None,
            stale: None,
            flatline: None,
        }
    }
}

impl Slots {
    fn apply(&mut self, o: &RuleOverride) {
        if let Some(enabled) = o.enabled {
            self.enabled = enabled;
        }
        if o.zone.is_some() {
            self.zone.clone_from(&o.zone);
        }
        if o.alarm.is_some() {
            self.alarm.clone_from(&o.alarm);
        }
        if o.limits.is_some() {
            self.limits.clone_from(&o.limits);
        }
        if o.rate.is_some() {
            self.rate.clone_from(&o.rate);
        }
        if o.stale.is_some() {
            self.stale.clone_from(&o.stale);
        }
        if o.flatline.is_some() {
            self.flatline.clone_from(&o.flatline);
        }
    }

    fn rules(self) -> Vec<Rule> {
        if !self.enabled {
            return Vec::new();
        }
        let mut rules = Vec::new();
        rules.extend(self.alarm.map(Rule::State));
        rules.extend(self.limits.map(Rule::Limits));
        rules.extend(self.rate.map(Rule::Rate));
        rules.extend(self.stale.map(Rule::Stale));
        rules.extend(self.flatline.map(Rule::Flatline));
        rules
    }
}

/// A profile point's unit and rules.
#[derive(Debug, Clone, PartialEq)]
struct Base {
    unit: Option<String>,
    slots: Slots,
}

/// Every point's rules: the profiles' defaults and the `[[rule]]` overrides.
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    profile_points: BTreeMap<PointId, Base>,
    device_zones: HashMap<String, Option<String>>,
    overrides: Vec<(Vec<PointPattern>, RuleOverride)>,
}

impl RuleBook {
    /// The rule book of a config; `profiles` are its Modbus devices' profiles in config
    /// order (as `check_cmd::load_checked` returns them).
    pub fn new(config: &AgentConfig, profiles: &[Profile]) -> Self {
        let mut profile_points = BTreeMap::new();
        let mut device_zones = HashMap::new();
        for (device, profile) in config.modbus.device.iter().zip(profiles) {
            device_zones.insert(device.id.clone(), device.zone.clone());
            for p in &profile.points {
                let Ok(id) = PointId::new(&device.id, &p.name) else {
                    continue;
                };
                let slots = Slots {
                    enabled: true,
                    zone: device.site_zone(p.zone.as_deref()).map(str::to_owned),
                    alarm: p.alarm.clone(),
                    limits: p.limits.clone(),
                    rate: p.rate.clone(),
                    stale: p.stale.clone(),
                    flatline: p.flatline.clone(),
                };
                profile_points.insert(
                    id,
                    Base {
                        unit: p.unit.clone(),
                        slots,
                    },
                );
            }
        }
        let overrides = config
            .rule
            .iter()
            .map(|o| (o.patterns().collect(), o.clone()))
            .collect();
        RuleBook {
            profile_points,
            device_zones,
            overrides,
        }
    }

    /// The merged rules of `point`, or `None` when it runs no rule.
    pub fn resolve(&self, point: &PointId) -> Option<PointRules> {
        let (unit, mut slots) = match self.profile_points.get(point) {
            Some(base) => (base.unit.clone(), base.slots.clone()),
            None => (
                None,
                Slots {
                    zone: self.device_zones.get(point.device()).cloned().flatten(),
                    ..Slots::default()
                },
            ),
        };
        for exact in [false, true] {
            for (patterns, o) in &self.overrides {
                if patterns
                    .iter()
                    .any(|p| p.is_exact() == exact && p.matches(point))
                {
                    slots.apply(o);
                }
            }
        }
        let zone = slots.zone.clone();
        let rules = slots.rules();
        (!rules.is_empty()).then(|| PointRules {
            point: PointInfo {
                id: point.clone(),
                unit,
                zone,
            },
            rules,
        })
    }

    /// The merged rules of every point known before any reading: the profiles' points and
    /// the points `[[rule]]` names exactly. (Points matched only by `device/*` of a device
    /// without a profile are resolved when their first reading arrives.)
    pub fn known_points(&self) -> Vec<PointRules> {
        let mut ids: BTreeSet<&PointId> = self.profile_points.keys().collect();
        for (patterns, _) in &self.overrides {
            for p in patterns {
                if let PointPattern::Point(id) = p {
                    ids.insert(id);
                }
            }
        }
        ids.into_iter().filter_map(|id| self.resolve(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use vigil_core::Severity;

    use super::*;

    const PROFILE: &str = r#"
name: fence
manufacturer: x
model: y
points:
  - { name: zone1_alarm, table: discrete_input, address: 0, type: bool, zone: fence-zone-1, alarm: { state: true, severity: critical, message: "Fence zone 1 alarm", latching: true } }
  - name: supply_voltage
    table: input
    address: 10
    type: f32
    unit: V
    limits: { hh: 30, h: 28, deadband: 0.5, delay: 5s }
    stale: { after: 30s, severity: minor }
  - { name: sensitivity, table: holding, address: 0, type: u16 }
"#;

    fn book(rules: &str) -> RuleBook {
        book_with_device("zone = \"north\"", rules)
    }

    /// A rule book whose fence device has the zone lines `device` (`zone`, `zones`).
    fn book_with_device(device: &str, rules: &str) -> RuleBook {
        let text = format!(
            r#"
[node]
id = "gw-1"
site = "ministry/p"
[uplink]
url = "mqtt://127.0.0.1:1883"
[store]
path = "/tmp/a.db"
[[modbus.device]]
id = "fence-north"
profile = "fence"
transport = "tcp"
address = "127.0.0.1:502"
{device}
[[mqtt.subscription]]
url = "mqtt://127.0.0.1:1883"
topic = "env/+"
decoder = "number"
device = "env-{{1}}"
point = "temperature"
{rules}"#
        );
        let config: AgentConfig =
            vigil_config::parse(Path::new("agent.toml"), &text).expect("valid config");
        let profile =
            vigil_profile::parse_profile(Path::new("fence.yaml"), PROFILE).expect("valid profile");
        RuleBook::new(&config, &[profile])
    }

    fn id(s: &str) -> PointId {
        s.parse().expect("valid")
    }

    fn names(r: &PointRules) -> Vec<&'static str> {
        r.rules.iter().map(Rule::name).collect()
    }

    fn zone(b: &RuleBook, point: &str) -> Option<String> {
        b.resolve(&id(point)).expect("rules").point.zone
    }

    #[test]
    fn profile_rules_are_the_defaults_and_the_device_zone_covers_every_point() {
        let b = book("");
        let alarm = b.resolve(&id("fence-north/zone1_alarm")).expect("rules");
        assert_eq!(names(&alarm), ["state"]);
        assert_eq!(
            alarm.point.zone.as_deref(),
            Some("north"),
            "the device's zone wins over the profile's fence-zone-1"
        );
        let volts = b.resolve(&id("fence-north/supply_voltage")).expect("rules");
        assert_eq!(names(&volts), ["limits", "stale"]);
        assert_eq!(
            volts.point.zone.as_deref(),
            Some("north"),
            "the device's zone"
        );
        assert_eq!(volts.point.unit.as_deref(), Some("V"));
        assert_eq!(b.resolve(&id("fence-north/sensitivity")), None);
        assert_eq!(b.resolve(&id("env-1/temperature")), None);
        assert_eq!(b.known_points().len(), 2);
    }

    #[test]
    fn overrides_replace_kind_by_kind_and_exact_ids_win() {
        let b = book(
            r#"
[[rule]]
points = ["fence-north/supply_voltage"]
limits = { hh = 29, delay = "1s" }

[[rule]]
points = ["fence-north/*"]
limits = { hh = 40 }
rate = { max_per_s = 5, severity = "warning" }
zone = "perimeter"
"#,
        );
        let volts = b.resolve(&id("fence-north/supply_voltage")).expect("rules");
        assert_eq!(names(&volts), ["limits", "rate", "stale"]);
        let Rule::Limits(l) = &volts.rules[0] else {
            panic!("limits first")
        };
        assert_eq!(
            l.hh,
            Some(29.0),
            "the exact id wins over the later wildcard"
        );
        assert_eq!(l.h, None, "a rule kind is replaced whole");
        assert_eq!(l.delay, Some(Duration::from_secs(1)));
        assert_eq!(volts.point.zone.as_deref(), Some("perimeter"));
        // The wildcard gives the rule-less point rules too.
        let sens = b.resolve(&id("fence-north/sensitivity")).expect("rules");
        assert_eq!(names(&sens), ["limits", "rate"]);
    }

    #[test]
    fn enabled_false_disables_and_true_re_enables() {
        let b = book(
            r#"
[[rule]]
points = ["fence-north/*"]
enabled = false

[[rule]]
points = ["fence-north/zone1_alarm"]
enabled = true
"#,
        );
        assert_eq!(b.resolve(&id("fence-north/supply_voltage")), None);
        let alarm = b
            .resolve(&id("fence-north/zone1_alarm"))
            .expect("re-enabled");
        let Rule::State(a) = &alarm.rules[0] else {
            panic!("state")
        };
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.latching);
    }

    #[test]
    fn mqtt_points_get_rules_only_from_rule_entries() {
        let b = book(
            r#"
[[rule]]
points = ["env-1/temperature"]
limits = { hh = 40, h = 32 }
zone = "block-a"

[[rule]]
points = ["env-2/*"]
stale = { after = "2m", severity = "minor" }
"#,
        );
        let t = b.resolve(&id("env-1/temperature")).expect("rules");
        assert_eq!(names(&t), ["limits"]);
        assert_eq!(t.point.zone.as_deref(), Some("block-a"));
        assert_eq!(t.point.unit, None);
        assert_eq!(
            names(&b.resolve(&id("env-2/humidity")).expect("rules")),
            ["stale"]
        );
        let known: Vec<String> = b
            .known_points()
            .iter()
            .map(|r| r.point.id.to_string())
            .collect();
        assert!(known.contains(&"env-1/temperature".to_owned()), "{known:?}");
        assert!(!known.iter().any(|k| k.starts_with("env-2")), "{known:?}");
    }

    #[test]
    fn profile_zones_are_defaults_only_for_a_device_without_zone_or_mapping() {
        let b = book_with_device("", "");
        assert_eq!(
            zone(&b, "fence-north/zone1_alarm").as_deref(),
            Some("fence-zone-1")
        );
        assert_eq!(zone(&b, "fence-north/supply_voltage"), None);
    }

    #[test]
    fn a_zones_mapping_wins_for_its_profile_zones_and_zone_covers_the_rest() {
        let b = book_with_device(
            "zone = \"north\"\nzones = { fence-zone-1 = \"north-east\" }",
            "",
        );
        assert_eq!(
            zone(&b, "fence-north/zone1_alarm").as_deref(),
            Some("north-east")
        );
        assert_eq!(
            zone(&b, "fence-north/supply_voltage").as_deref(),
            Some("north")
        );
        // A mapping alone: unmapped profile zones stay the defaults, unzoned points have none.
        let b = book_with_device("zones = { fence-zone-1 = \"north-east\" }", "");
        assert_eq!(
            zone(&b, "fence-north/zone1_alarm").as_deref(),
            Some("north-east")
        );
        assert_eq!(zone(&b, "fence-north/supply_voltage"), None);
    }

    #[test]
    fn a_rule_zone_overrides_one_point_over_zone_and_mapping() {
        let b = book_with_device(
            "zone = \"north\"\nzones = { fence-zone-1 = \"north-east\" }",
            r#"
[[rule]]
points = ["fence-north/zone1_alarm"]
zone = "gatehouse"
"#,
        );
        assert_eq!(
            zone(&b, "fence-north/zone1_alarm").as_deref(),
            Some("gatehouse")
        );
        assert_eq!(
            zone(&b, "fence-north/supply_voltage").as_deref(),
            Some("north"),
            "the other points keep the device's zone"
        );
    }
}
