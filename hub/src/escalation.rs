//! Escalation, in one place: what this hub sends up to its parent of what its children
//! send and of its operators' actions (docs/ARCHITECTURE.md#escalation: "each node decides
//! what goes up") — the `[escalation]` section ([`EscalationSection`]) and the `vigil_link`
//! alert policy built from it ([`policy`]).
//!
//! A raise says its severity; an acknowledgement, a clear, a shelve or a comment does
//! not. So the policy judges each event by **its alert**, as it stands with the batch
//! committed ([`AlertContext`]: the alert folded from every event stored here and in the
//! batch, with its peak severity, as the transaction that commits the batch and queues what
//! goes up leaves it — the store keeps both per alert, so no alert's history is re-read):
//!
//! - an event goes up when its alert's raise is here and the alert's severity **at its
//!   highest so far** reaches `min_severity` ([`EscalationSection::escalates_history`]).
//!   So every event of an alert whose raise qualified follows it up — value updates,
//!   clears, operator actions taken below — and an alert whose severity later drops keeps
//!   going up, so the parent's copy does not freeze in a state the child has left. An
//!   alert that rises above the threshold goes up from the event that raised it (the
//!   parent gets the raise with it only if both arrive in the same batch; a later raise or
//!   value update carries the key and severity anyway);
//! - an event whose alert's raise has not arrived here stays here (the parent would have
//!   no alert to fold it into);
//! - it travels in the lane of the alert's current severity (critical and major:
//!   `critical`), like the hub's own operator actions.
//!
//! **Which alerts qualify** is the `[escalation]` section: rules by condition kind and site,
//! tried in order (the first that matches decides), then the built-in rule, then the
//! default (`min_severity`):
//!
//! ```toml
//! [escalation]
//! min_severity = "minor"                 # the default: what no rule matches goes up from minor
//!
//! [[escalation.rule]]                    # a prison's alerts stay at the county...
//! site = "ministry/gd/gz/by/prison-3"    # this site and every site below it
//! escalate = false
//!
//! [[escalation.rule]]                    # ...every intrusion goes up, even a warning
//! kind = "state"
//! min_severity = "warning"
//!
//! [[escalation.rule]]                    # a site and a kind: both must match
//! site = "ministry/gd/gz/by"
//! kind = "limit_hh"
//! min_severity = "critical"
//! ```
//!
//! A rule matches an alert when each of its `kind` (the alert's condition kind) and `site`
//! (the alert's site at or below it, whole segments) that it gives matches; a rule with
//! neither matches every alert. It then decides: `escalate = false` keeps the alert here
//! whatever its severity; otherwise the alert goes up when its (peak) severity reaches the
//! rule's `min_severity` (the default's when the rule gives none). Without a matching rule,
//! the **built-in rule** sends up every alert of kind `security`, `node_offline` and
//! `clock_skew` whatever its severity — a ministry must see forged events and dead links
//! (docs/ARCHITECTURE.md#node-health-alarms) — and the **default** sends up what reaches
//! `min_severity`. A rule placed before the built-in one can still keep such alerts here
//! (`site = "…" escalate = false` keeps a site's node alarms too).
//!
//! Whether an alert went up is shown in `GET /api/v1/alerts/{id}` (`escalation`):
//! [`EscalationSection::explain`] names the rule that decided and the first event that
//! passed it.
//!
//! Operator actions taken at this hub follow the same rule (`action::record`). Health
//! summaries always go up, in the uplink's retained status, whatever the policy.

use serde::{Deserialize, Serialize};
use vigil_config::Problem;
use vigil_core::{AlertEvent, AlertView, ConditionKind, Lane, Severity, SitePath, Timestamp};
use vigil_link::AlertContext;

/// The condition kinds the built-in rule sends up whatever their severity (the hub's own
/// alarms about forged events, dead links and clocks: `crate::alarms`).
pub const ALWAYS_UP: [&str; 3] = ["security", "node_offline", "clock_skew"];

/// `[escalation]`: the policy of what goes up (docs/ARCHITECTURE.md#escalation).
/// Health summaries always go up; alerts and the actions on them go up when they pass it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// The default rule: the least severity of an alert that the parent sees (`critical`,
    /// `major`, `minor`, `warning`, `info`), for alerts no rule matches.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// `[[escalation.rule]]`: rules by kind and site, tried in order before the built-in
    /// rule and the default; the first that matches decides.
    #[serde(default, rename = "rule")]
    pub rules: Vec<EscalationRule>,
}

/// `[[escalation.rule]]`: which alerts it is about, and whether they go up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    /// Matches alerts of this condition kind (`state`, `limit_hh`, `security`,
    /// `node_offline`, …); any kind when absent.
    #[serde(default)]
    pub kind: Option<ConditionKind>,
    /// Matches alerts at this site or below it (whole segments); any site when absent.
    #[serde(default)]
    pub site: Option<SitePath>,
    /// A matched alert goes up when its severity at its highest reaches this; absent: the
    /// section's `min_severity`.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// `false`: a matched alert stays here, whatever its severity.
    #[serde(default = "yes")]
    pub escalate: bool,
}

const fn yes() -> bool {
    true
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            min_severity: default_min_severity(),
            rules: Vec::new(),
        }
    }
}

const fn default_min_severity() -> Severity {
    Severity::Minor
}

/// Which rule decided for an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// `[[escalation.rule]]` number `n` (from 0, in file order).
    Rule(usize),
    /// The built-in rule for the hub's own alarms ([`ALWAYS_UP`]).
    BuiltIn,
    /// `[escalation] min_severity`.
    Default,
}

impl std::fmt::Display for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decider::Rule(n) => write!(f, "escalation.rule[{n}]"),
            Decider::BuiltIn => f.write_str("built-in: security, node_offline, clock_skew go up"),
            Decider::Default => f.write_str("escalation.min_severity"),
        }
    }
}

/// What the policy says of one alert: the rule that decided and the least severity that
/// goes up under it (`None`: nothing goes up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The rule that matched.
    pub by: Decider,
    /// The least severity that goes up; `None` for `escalate = false`.
    pub min_severity: Option<Severity>,
}

/// Whether an alert went up, as `GET /api/v1/alerts/{id}` shows it (`escalation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationJson {
    /// Whether this hub has a parent at all.
    pub parent: bool,
    /// Whether the alert's events go up to the parent (under the policy in force).
    pub escalated: bool,
    /// The stamp of the first of its events that passed the policy, if one did.
    pub since: Option<Timestamp>,
    /// The rule that decided: `escalation.rule[N]`, the built-in rule or
    /// `escalation.min_severity`.
    pub rule: String,
}

impl EscalationSection {
    /// The verdict for an alert of `kind` at `site` (either unknown before its raise).
    pub fn verdict(&self, kind: Option<&ConditionKind>, site: Option<&SitePath>) -> Verdict {
        for (n, rule) in self.rules.iter().enumerate() {
            let kind_ok = rule.kind.as_ref().is_none_or(|k| Some(k) == kind);
            let site_ok = rule
                .site
                .as_ref()
                .is_none_or(|scope| site.is_some_and(|s| s.is_within(scope)));
            if kind_ok && site_ok {
                return Verdict {
                    by: Decider::Rule(n),
                    min_severity: rule
                        .escalate
                        .then_some(rule.min_severity.unwrap_or(self.min_severity)),
                };
            }
        }
        if kind.is_some_and(|k| ALWAYS_UP.contains(&k.as_str())) {
            return Verdict {
                by: Decider::BuiltIn,
                min_severity: Some(Severity::Info),
            };
        }
        Verdict {
            by: Decider::Default,
            min_severity: Some(self.min_severity),
        }
    }

    /// Whether an alert of `severity` that no rule matches goes up (the default rule).
    pub fn escalates(&self, severity: Severity) -> bool {
        severity >= self.min_severity
    }

    fn passes(&self, view: &AlertView, severity: Severity) -> bool {
        let Some(key) = &view.key else {
            return false;
        };
        self.verdict(Some(&key.kind), view.site.as_ref())
            .min_severity
            .is_some_and(|min| severity >= min)
    }

    /// Whether events of this alert go up: its raise has arrived and its severity now
    /// passes the rule that matches it.
    pub fn escalates_alert(&self, view: &AlertView) -> bool {
        self.passes(view, view.severity)
    }

    /// Whether events of this alert go up, judged on its whole history: its raise has
    /// arrived and its severity at its highest (`peak`, see
    /// [`vigil_link::escalation::peak_severity`]) or now passes the rule that matches it.
    /// An alert that went up once keeps going up when its severity drops, so the parent's
    /// copy is cleared, acknowledged and closed like the child's. The policy the hub relays
    /// its children's events, its operators' actions and its own alarms by.
    pub fn escalates_history(&self, view: &AlertView, peak: Option<Severity>) -> bool {
        self.passes(view, peak.map_or(view.severity, |p| p.max(view.severity)))
    }

    /// Whether the alert folded from `events` (its events here, in fold order) went up
    /// from a hub with a parent (`has_parent`): the rule that decides for it and the first
    /// event that passed, replaying the policy over its history as the relay judged it.
    /// The policy in force now: a changed `[escalation]` is not history.
    pub fn explain(
        &self,
        has_parent: bool,
        view: &AlertView,
        events: &[AlertEvent],
    ) -> EscalationJson {
        let verdict = view
            .key
            .as_ref()
            .map(|k| self.verdict(Some(&k.kind), view.site.as_ref()));
        let mut since = None;
        if has_parent {
            let mut so_far = AlertView::empty(view.id);
            let mut peak: Option<Severity> = None;
            for event in events {
                let _ = so_far.apply(event);
                if let Some(severity) = event_severity(event) {
                    peak = Some(peak.map_or(severity, |p| p.max(severity)));
                }
                if self.escalates_history(&so_far, peak) {
                    since = Some(event.hlc.timestamp());
                    break;
                }
            }
        }
        EscalationJson {
            parent: has_parent,
            escalated: since.is_some(),
            since,
            rule: verdict.map_or_else(|| "no raise here yet".to_owned(), |v| v.by.to_string()),
        }
    }

    /// What is wrong with `[escalation]`, each problem naming its key.
    pub fn problems(&self, out: &mut Vec<Problem>) {
        for (n, rule) in self.rules.iter().enumerate() {
            if !rule.escalate && rule.min_severity.is_some() {
                out.push(Problem::new(
                    format!("escalation.rule[{n}].min_severity"),
                    "means nothing with escalate = false (nothing matched goes up): remove one of them",
                ));
            }
            if let Some(earlier) = self.rules[..n]
                .iter()
                .position(|r| r.kind.is_none() && r.site.is_none())
            {
                out.push(Problem::new(
                    format!("escalation.rule[{n}]"),
                    format!(
                        "is never used: escalation.rule[{earlier}] has neither kind nor site and matches every alert first"
                    ),
                ));
            }
        }
    }
}

/// The severity an event gives its alert (a raise's, an update's), if any.
fn event_severity(event: &AlertEvent) -> Option<Severity> {
    match &event.body {
        vigil_core::AlertEventBody::Raised { severity, .. } => Some(*severity),
        vigil_core::AlertEventBody::ValueUpdated { severity, .. } => *severity,
        _ => None,
    }
}

/// The policy for relaying children's events up, by `escalation`; see the module docs.
pub fn policy(
    escalation: EscalationSection,
) -> impl Fn(&AlertEvent, &AlertContext) -> Option<Lane> + Send + Sync + 'static {
    move |_event, ctx| {
        escalation
            .escalates_history(&ctx.view, ctx.peak_severity)
            .then(|| ctx.view.severity.lane())
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, NodeId, Severity,
        SitePath, Timestamp,
    };

    use super::*;

    fn event(alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(1_795_000_000_000 + wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    fn raise(alert: AlertId, wall: u64, severity: Severity) -> AlertEvent {
        event(
            alert,
            wall,
            AlertEventBody::Raised {
                key: AlertKey::new(
                    NodeId::new("gw-1").expect("node"),
                    "fence-1/zone1",
                    ConditionKind::new("state").expect("kind"),
                )
                .expect("key"),
                site: SitePath::new("ministry/gd/gz/by/p1").expect("site"),
                severity,
                message: "fence".into(),
                value: None,
                at: Timestamp::from_millis(1_795_000_000_000),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
        )
    }

    fn decide(policy: &EscalationSection, events: &[AlertEvent]) -> Option<Lane> {
        let last = events.last().expect("an event");
        let ctx = AlertContext::from_events(last.alert, events);
        super::policy(policy.clone())(last, &ctx)
    }

    #[test]
    fn events_follow_an_alert_whose_severity_qualified() {
        let minor = EscalationSection {
            min_severity: Severity::Minor,
            ..EscalationSection::default()
        };
        let a = AlertId::generate();
        let ack = |wall| event(a, wall, AlertEventBody::Acknowledged { comment: None });
        let critical = raise(a, 1, Severity::Critical);
        assert_eq!(
            decide(&minor, std::slice::from_ref(&critical)),
            Some(Lane::Critical)
        );
        assert_eq!(
            decide(&minor, &[critical.clone(), ack(2)]),
            Some(Lane::Critical)
        );
        // Dropped to a warning: it still goes up, in the normal lane.
        let lower = event(
            a,
            3,
            AlertEventBody::ValueUpdated {
                value: None,
                severity: Some(Severity::Warning),
                message: None,
                at: Timestamp::from_millis(1_795_000_000_000),
            },
        );
        assert_eq!(
            decide(&minor, &[critical, lower, ack(4)]),
            Some(Lane::Normal)
        );
        // Below the threshold, or without its raise: it stays.
        let b = AlertId::generate();
        assert_eq!(decide(&minor, &[raise(b, 1, Severity::Warning)]), None);
        assert_eq!(decide(&minor, &[ack(5)]), None);
    }

    #[test]
    fn escalation_follows_an_alert_that_went_up() {
        let policy = EscalationSection::default();
        let mut view = AlertView::empty(AlertId::generate());
        view.severity = Severity::Critical;
        assert!(
            !policy.escalates_history(&view, Some(Severity::Critical)),
            "no raise here yet"
        );
        view.key = Some(
            vigil_core::AlertKey::new(
                NodeId::new("gw-1").expect("node"),
                "fence-1/zone1",
                vigil_core::ConditionKind::new("state").expect("kind"),
            )
            .expect("key"),
        );
        assert!(policy.escalates_history(&view, Some(Severity::Critical)));
        view.severity = Severity::Warning;
        assert!(!policy.escalates_alert(&view));
        assert!(
            policy.escalates_history(&view, Some(Severity::Critical)),
            "it went up as critical: it keeps going up"
        );
        assert!(!policy.escalates_history(&view, Some(Severity::Warning)));
        assert!(!policy.escalates_history(&view, None));
    }

    fn parse(text: &str) -> EscalationSection {
        let file: toml_file::File =
            vigil_config::parse(std::path::Path::new("hub.toml"), text).expect("valid");
        file.escalation
    }

    fn alert(kind: &str, site: &str, severity: Severity) -> AlertView {
        let a = AlertId::generate();
        let mut r = raise(a, 1, severity);
        if let AlertEventBody::Raised { key, site: s, .. } = &mut r.body {
            key.kind = ConditionKind::new(kind).expect("kind");
            *s = SitePath::new(site).expect("site");
        }
        AlertView::fold(a, [&r])
    }

    const RULES: &str = r#"
[escalation]
min_severity = "major"

[[escalation.rule]]
site = "ministry/gd/gz/by/prison-3"
escalate = false

[[escalation.rule]]
kind = "state"
min_severity = "warning"

[[escalation.rule]]
site = "ministry/gd/gz/by"
kind = "limit_hh"
min_severity = "critical"
"#;

    #[test]
    fn rules_by_kind_and_site_first_match_wins_then_the_default() {
        let policy = parse(RULES);
        assert_eq!(policy.rules.len(), 3);
        let up = |kind, site, severity| policy.escalates_alert(&alert(kind, site, severity));
        // Rule 0: the prison's alerts stay, however severe, its node alarms too.
        assert!(!up(
            "state",
            "ministry/gd/gz/by/prison-3",
            Severity::Critical
        ));
        assert!(!up(
            "node_offline",
            "ministry/gd/gz/by/prison-3",
            Severity::Major
        ));
        // Rule 1: a state alarm elsewhere goes up from a warning.
        assert!(up("state", "ministry/gd/gz/by/prison-4", Severity::Warning));
        assert!(!up("state", "ministry/gd/gz/by/prison-4", Severity::Info));
        // Rule 2: both its kind and its site must match.
        assert!(!up(
            "limit_hh",
            "ministry/gd/gz/by/prison-4",
            Severity::Major
        ));
        assert!(up(
            "limit_hh",
            "ministry/gd/gz/by/prison-4",
            Severity::Critical
        ));
        assert!(
            up("limit_hh", "ministry/gd/gz/other/p", Severity::Major),
            "another site: the default (major)"
        );
        // The built-in rule: the hub's own alarms go up whatever their severity.
        assert!(up("security", "ministry/gd/gz/by", Severity::Info));
        assert!(up(
            "clock_skew",
            "ministry/gd/gz/by/prison-4",
            Severity::Minor
        ));
        assert!(!up(
            "link_backlog",
            "ministry/gd/gz/by/prison-4",
            Severity::Minor
        ));
        assert_eq!(
            policy.verdict(Some(&ConditionKind::new("motion").expect("kind")), None),
            Verdict {
                by: Decider::Default,
                min_severity: Some(Severity::Major)
            }
        );
        // A whole segment: prison-30 is not inside prison-3.
        assert!(up(
            "state",
            "ministry/gd/gz/by/prison-30",
            Severity::Warning
        ));
    }

    #[test]
    fn min_severity_alone_is_the_default_rule_as_before() {
        let policy = parse("[escalation]\nmin_severity = \"critical\"\n");
        assert!(policy.rules.is_empty());
        assert!(policy.escalates(Severity::Critical) && !policy.escalates(Severity::Major));
        assert!(!policy.escalates_alert(&alert("state", "ministry/gd", Severity::Major)));
        assert!(
            policy.escalates_alert(&alert("node_offline", "ministry/gd", Severity::Major)),
            "node alarms go up even under a stricter default"
        );
        let mut problems = Vec::new();
        policy.problems(&mut problems);
        assert!(problems.is_empty());
    }

    #[test]
    fn contradictory_or_unreachable_rules_are_problems() {
        let policy = parse(
            "[escalation]\n[[escalation.rule]]\nescalate = false\nmin_severity = \"info\"\n\
             [[escalation.rule]]\nkind = \"state\"\n",
        );
        let mut problems = Vec::new();
        policy.problems(&mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["escalation.rule[0].min_severity", "escalation.rule[1]"]
        );
        let bad: Result<toml_file::File, _> = vigil_config::parse(
            std::path::Path::new("hub.toml"),
            "[escalation]\n[[escalation.rule]]\nsite = \"a//b\"\n",
        );
        let err = bad.expect_err("a bad site");
        assert_eq!(err.0[0].key, "escalation.rule[0].site", "{err:?}");
    }

    mod toml_file {
        #[derive(Debug, serde::Deserialize)]
        pub struct File {
            pub escalation: super::EscalationSection,
        }

        impl vigil_config::Validate for File {
            fn validate(&self) -> Vec<vigil_config::Problem> {
                Vec::new()
            }
        }
    }

    #[test]
    fn explain_names_the_rule_and_the_first_event_that_went_up() {
        let policy = parse(RULES);
        let a = AlertId::generate();
        let info = raise(a, 1, Severity::Info);
        let worse = event(
            a,
            5,
            AlertEventBody::ValueUpdated {
                value: None,
                severity: Some(Severity::Critical),
                message: None,
                at: Timestamp::from_millis(1_795_000_000_000),
            },
        );
        let events = [info, worse.clone()];
        let view = AlertView::fold(a, &events);
        let shown = policy.explain(true, &view, &events);
        assert_eq!(
            shown,
            EscalationJson {
                parent: true,
                escalated: true,
                since: Some(worse.hlc.timestamp()),
                rule: "escalation.rule[1]".into(),
            }
        );
        assert!(
            !policy.explain(false, &view, &events).escalated,
            "no parent"
        );
        let stays = alert("state", "ministry/gd/gz/by/prison-3", Severity::Critical);
        let json = serde_json::to_value(policy.explain(true, &stays, &[])).expect("json");
        assert_eq!(json["escalated"], false);
        assert_eq!(json["rule"], "escalation.rule[0]");
    }
}
