//! Zone correlation: conditions from two or more distinct sources in one zone within a
//! window fuse into one incident (docs/ARCHITECTURE.md#correlation-and-incidents: fence vibration +
//! motion in the sterile zone = intrusion).
//!
//! Pure state, driven by the alert manager with the alerts it raises and clears:
//!
//! - An *activation* is an alert raised (or raised again) by a condition that has a zone. The
//!   correlator keeps a zone's recent activations: those of the last [`CORRELATION_WINDOW`]
//!   (by condition time) and those still active, however old.
//! - When a zone's recent activations come from at least two distinct sources and the zone
//!   has no incident, they fuse: the correlator answers an active `incident` condition
//!   (source `zone:<zone>`, severity the members' greatest escalated one step, a message
//!   naming the members, value the member count) and the members to mark `correlated`.
//! - While the incident holds, every new activation in the zone joins it.
//! - When every member has cleared, the incident clears; the next fusion in the zone starts
//!   a new membership (the manager reuses the incident's alert while it is open, like any
//!   re-raise).
//!
//! Equipment-health conditions ([`NOT_CORRELATED`]: communication loss, stale data,
//! flatline) do not take part: a failing device must not fuse with itself into an
//! "incident" through its own points.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use vigil_core::{AlertId, Condition, ConditionKind, Severity, Timestamp, Value};

use crate::detect::{condition_kind, millis};

/// How close in time activations in one zone must be to fuse.
pub const CORRELATION_WINDOW: Duration = Duration::from_secs(60);

/// Condition kinds that never fuse into incidents.
pub const NOT_CORRELATED: [&str; 4] = [
    ConditionKind::COMM_LOSS,
    ConditionKind::STALE,
    ConditionKind::FLATLINE,
    ConditionKind::INCIDENT,
];

/// The incident source of a zone: `zone:<zone>`.
pub fn incident_source(zone: &str) -> String {
    format!("zone:{zone}")
}

/// Whether a condition takes part in correlation: it has a zone and a kind not in
/// [`NOT_CORRELATED`].
pub fn correlates(c: &Condition) -> bool {
    c.zone.is_some() && !NOT_CORRELATED.contains(&c.kind.as_str())
}

/// An alert as a (candidate) member of an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member alert.
    pub alert: AlertId,
    /// Its condition's source.
    pub source: String,
    /// Its condition's severity.
    pub severity: Severity,
    /// Its condition's message.
    pub message: String,
    /// When it last activated.
    pub at: Timestamp,
    /// Whether its condition holds.
    pub active: bool,
}

/// What the manager must do after an activation or a clear.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChange {
    /// The zone's `incident` condition, active (raise or update) or clear.
    pub condition: Condition,
    /// Alerts that have just joined the incident.
    pub new_members: Vec<AlertId>,
}

#[derive(Debug, Clone, Default)]
struct Zone {
    recent: Vec<Member>,
    /// The members of the zone's active incident, if it has one.
    incident: Option<BTreeMap<AlertId, Member>>,
}

/// The correlation state of every zone.
#[derive(Debug, Clone)]
pub struct Correlator {
    window_ms: i64,
    zones: BTreeMap<String, Zone>,
    zone_of: HashMap<AlertId, String>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator::new(CORRELATION_WINDOW)
    }
}

impl Correlator {
    /// A correlator fusing activations at most `window` apart.
    pub fn new(window: Duration) -> Self {
        Correlator {
            window_ms: millis(window),
            zones: BTreeMap::new(),
            zone_of: HashMap::new(),
        }
    }

    /// Notes that `alert` was raised (or raised again) by `c`. Conditions that do not
    /// [`correlates`] are ignored.
    pub fn on_raise(&mut self, alert: AlertId, c: &Condition) -> Option<IncidentChange> {
        if !correlates(c) {
            return None;
        }
        let zone_name = c.zone.clone()?;
        self.zone_of.insert(alert, zone_name.clone());
        let member = Member {
            alert,
            source: c.source.clone(),
            severity: c.severity,
            message: c.message.clone(),
            at: c.ts,
            active: true,
        };
        let window_ms = self.window_ms;
        let zone = self.zones.entry(zone_name.clone()).or_default();
        let horizon = c.ts.plus_millis(-window_ms);
        zone.recent
            .retain(|m| m.alert != alert && (m.active || m.at >= horizon));
        zone.recent.push(member.clone());
        if let Some(members) = &mut zone.incident {
            let joined = members.insert(alert, member).is_none();
            let condition = incident_condition(&zone_name, members, c.ts, true);
            return Some(IncidentChange {
                condition,
                new_members: if joined { vec![alert] } else { Vec::new() },
            });
        }
        let mut sources: Vec<&str> = zone.recent.iter().map(|m| m.source.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        if sources.len() < 2 {
            return None;
        }
        let members: BTreeMap<AlertId, Member> =
            zone.recent.iter().map(|m| (m.alert, m.clone())).collect();
        let new_members = members.keys().copied().collect();
        let condition = incident_condition(&zone_name, &members, c.ts, true);
        zone.incident = Some(members);
        Some(IncidentChange {
            condition,
            new_members,
        })
    }

    /// Notes that `alert` cleared (or closed) at `ts`; answers the incident's clear when it
    /// was the last active member.
    pub fn on_clear(&mut self, alert: AlertId, ts: Timestamp) -> Option<IncidentChange> {
        let zone_name = self.zone_of.get(&alert)?.clone();
        let zone = self.zones.get_mut(&zone_name)?;
        for m in &mut zone.recent {
            if m.alert == alert {
                m.active = false;
            }
        }
        let members = zone.incident.as_mut()?;
        let member = members.get_mut(&alert)?;
        member.active = false;
        if members.values().any(|m| m.active) {
            return None;
        }
        let condition = incident_condition(&zone_name, members, ts, false);
        zone.incident = None;
        self.forget_inactive();
        Some(IncidentChange {
            condition,
            new_members: Vec::new(),
        })
    }

    /// Restores, after a restart, an alert that is still open: as a member of the zone's
    /// incident when `in_incident`, and as a recent activation while it is active.
    pub fn restore(&mut self, zone_name: &str, member: Member, in_incident: bool) {
        self.zone_of.insert(member.alert, zone_name.to_owned());
        let zone = self.zones.entry(zone_name.to_owned()).or_default();
        if member.active {
            zone.recent.retain(|m| m.alert != member.alert);
            zone.recent.push(member.clone());
        }
        if in_incident {
            zone.incident
                .get_or_insert_with(BTreeMap::new)
                .insert(member.alert, member);
        }
    }

    /// Zones whose restored incident has no active member: their incident must clear.
    /// Each returned zone's incident state is dropped.
    pub fn take_spent_incidents(&mut self, now: Timestamp) -> Vec<IncidentChange> {
        let mut out = Vec::new();
        for (name, zone) in &mut self.zones {
            if let Some(members) = &zone.incident {
                if !members.values().any(|m| m.active) {
                    out.push(IncidentChange {
                        condition: incident_condition(name, members, now, false),
                        new_members: Vec::new(),
                    });
                    zone.incident = None;
                }
            }
        }
        out
    }

    /// Whether `zone` has an active incident.
    pub fn has_incident(&self, zone: &str) -> bool {
        self.zones.get(zone).is_some_and(|z| z.incident.is_some())
    }

    /// Drops the bookkeeping of alerts that are neither active nor in an incident.
    fn forget_inactive(&mut self) {
        let zones = &self.zones;
        self.zone_of.retain(|alert, zone| {
            zones.get(zone).is_some_and(|z| {
                z.recent.iter().any(|m| m.alert == *alert)
                    || z.incident.as_ref().is_some_and(|i| i.contains_key(alert))
            })
        });
    }
}

/// The zone's incident condition over `members`.
fn incident_condition(
    zone: &str,
    members: &BTreeMap<AlertId, Member>,
    ts: Timestamp,
    active: bool,
) -> Condition {
    let severity = members
        .values()
        .map(|m| m.severity)
        .max()
        .unwrap_or(Severity::Info)
        .escalated();
    let mut ordered: Vec<&Member> = members.values().collect();
    ordered.sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
    let names: Vec<String> = ordered
        .iter()
        .map(|m| format!("{} ({})", m.source, m.message))
        .collect();
    let message = format!(
        "Incident in zone {zone}: {} conditions: {}",
        members.len(),
        names.join("; ")
    );
    Condition {
        source: incident_source(zone),
        kind: condition_kind(ConditionKind::INCIDENT),
        active,
        severity,
        value: Some(Value::Int(i64::try_from(members.len()).unwrap_or(i64::MAX))),
        message,
        ts,
        zone: Some(zone.to_owned()),
        latching: false,
        evidence: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(source: &str, kind: &'static str, zone: &str, sev: Severity, t: i64) -> Condition {
        Condition {
            source: source.into(),
            kind: condition_kind(kind),
            active: true,
            severity: sev,
            value: None,
            message: format!("{source} alarm"),
            ts: Timestamp::from_millis(t * 1000),
            zone: Some(zone.into()),
            latching: false,
            evidence: Vec::new(),
        }
    }

    fn id(n: u8) -> AlertId {
        AlertId::from_bytes([n; 16])
    }

    #[test]
    fn two_sources_in_a_zone_within_the_window_fuse() {
        let mut c = Correlator::default();
        let fence = cond(
            "fence/zone1_alarm",
            ConditionKind::STATE,
            "north",
            Severity::Major,
            0,
        );
        assert_eq!(c.on_raise(id(1), &fence), None);
        // Another zone, and the same source again: no fusion.
        assert_eq!(
            c.on_raise(
                id(2),
                &cond(
                    "cam/motion",
                    ConditionKind::MOTION,
                    "south",
                    Severity::Minor,
                    1
                )
            ),
            None
        );
        assert_eq!(c.on_raise(id(1), &fence), None);
        let motion = cond(
            "cam-n/motion",
            ConditionKind::MOTION,
            "north",
            Severity::Minor,
            30,
        );
        let fused = c.on_raise(id(3), &motion).expect("fused");
        let i = &fused.condition;
        assert!(i.active);
        assert_eq!(i.source, "zone:north");
        assert_eq!(i.kind.as_str(), "incident");
        assert_eq!(i.severity, Severity::Critical, "major escalated");
        assert_eq!(i.value, Some(Value::Int(2)));
        assert_eq!(
            i.message,
            "Incident in zone north: 2 conditions: fence/zone1_alarm (fence/zone1_alarm alarm); cam-n/motion (cam-n/motion alarm)"
        );
        assert_eq!(fused.new_members, [id(1), id(3)]);
        assert!(c.has_incident("north"));
        // A third source joins.
        let door = cond(
            "door/forced",
            ConditionKind::STATE,
            "north",
            Severity::Minor,
            40,
        );
        let joined = c.on_raise(id(4), &door).expect("joins");
        assert_eq!(joined.new_members, [id(4)]);
        assert_eq!(joined.condition.value, Some(Value::Int(3)));
        // The incident clears when all members have.
        assert_eq!(c.on_clear(id(1), Timestamp::from_millis(50_000)), None);
        assert_eq!(c.on_clear(id(3), Timestamp::from_millis(51_000)), None);
        let cleared = c
            .on_clear(id(4), Timestamp::from_millis(52_000))
            .expect("clears");
        assert!(!cleared.condition.active);
        assert_eq!(cleared.condition.source, "zone:north");
        assert!(!c.has_incident("north"));
    }

    #[test]
    fn activations_outside_the_window_do_not_fuse_unless_still_active() {
        let mut c = Correlator::default();
        let a = cond("a/p", ConditionKind::STATE, "z", Severity::Minor, 0);
        assert_eq!(c.on_raise(id(1), &a), None);
        assert_eq!(c.on_clear(id(1), Timestamp::from_millis(1000)), None);
        // Cleared 61 s before: out of the window.
        let b = cond("b/p", ConditionKind::STATE, "z", Severity::Minor, 61);
        assert_eq!(c.on_raise(id(2), &b), None);
        // b is still active 10 minutes later: it fuses with a new activation.
        let d = cond("d/p", ConditionKind::STATE, "z", Severity::Minor, 661);
        let fused = c.on_raise(id(3), &d).expect("fused");
        assert_eq!(fused.condition.severity, Severity::Major);
        assert_eq!(fused.new_members.len(), 2);
        // A cleared activation within the window still counts.
        let mut c = Correlator::default();
        assert_eq!(c.on_raise(id(1), &a), None);
        assert_eq!(c.on_clear(id(1), Timestamp::from_millis(2000)), None);
        let e = cond("e/p", ConditionKind::STATE, "z", Severity::Minor, 59);
        let fused = c.on_raise(id(5), &e).expect("fused");
        assert_eq!(fused.new_members.len(), 2);
        // …and the incident clears once the active member clears.
        assert!(
            !c.on_clear(id(5), Timestamp::from_millis(70_000))
                .expect("clears")
                .condition
                .active
        );
    }

    #[test]
    fn health_conditions_and_zoneless_ones_do_not_correlate() {
        let mut c = Correlator::default();
        for (n, kind) in [
            ConditionKind::COMM_LOSS,
            ConditionKind::STALE,
            ConditionKind::FLATLINE,
        ]
        .into_iter()
        .enumerate()
        {
            let cond = cond(&format!("dev/p{n}"), kind, "z", Severity::Major, 0);
            assert_eq!(c.on_raise(id(10 + n as u8), &cond), None);
        }
        let mut zoneless = cond("x/p", ConditionKind::STATE, "z", Severity::Major, 0);
        zoneless.zone = None;
        assert!(!correlates(&zoneless));
        assert_eq!(c.on_raise(id(20), &zoneless), None);
        assert_eq!(
            c.on_raise(
                id(21),
                &cond("y/p", ConditionKind::STATE, "z", Severity::Major, 1)
            ),
            None
        );
    }

    #[test]
    fn restored_incidents_continue_or_clear() {
        let mut c = Correlator::default();
        let member = |n: u8, active: bool| Member {
            alert: id(n),
            source: format!("s{n}"),
            severity: Severity::Minor,
            message: "m".into(),
            at: Timestamp::from_millis(0),
            active,
        };
        c.restore("z", member(1, true), true);
        c.restore("z", member(2, false), true);
        c.restore("y", member(3, false), true);
        let spent = c.take_spent_incidents(Timestamp::from_millis(5));
        assert_eq!(spent.len(), 1);
        assert_eq!(spent[0].condition.source, "zone:y");
        assert!(c.has_incident("z"));
        let cleared = c
            .on_clear(id(1), Timestamp::from_millis(9))
            .expect("last member");
        assert!(!cleared.condition.active);
    }
}
