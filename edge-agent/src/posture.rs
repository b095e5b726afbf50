//! The raised alert posture and the directives that set it (docs/ARCHITECTURE.md#directives).
//!
//! - [`PostureWindow`]: until when a `posture` directive holds (shared by the directive task
//!   that sets it and the detectors that read it; never read from the clock by them).
//! - [`PostureDetector`]: one point's `[[posture]]` limits (`crate::config::posture`) as a
//!   [`Detector`]: the limits run on every reading, their verdicts count only inside the
//!   window. Its alarms are `posture_hh` … `posture_ll`: raised by a reading beyond a posture
//!   limit inside the window, cleared when the value returns or the window ends.
//! - [`PostureBook`]: which points get posture detectors.
//! - [`run`]: the agent's part of every directive from the hub — apply what it can (a posture
//!   arms the window when `[[posture]]` entries exist; a snapshot is not applicable, as this
//!   agent has no cameras; a drill and an order are noted), store and acknowledge it up in one
//!   transaction (`Store::directive_handle`, audited as `directive.apply`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_core::{Condition, ConditionKind, NodeId, PointId, Reading, SitePath, Timestamp};
use vigil_link::{OutboxPoke, SharedStore};
use vigil_store::{AuditEntry, Handling, Store, StoreError};
use vigil_wire::{Directive, DirectiveAck, DirectiveBody, DirectiveOutcome};

use crate::config::posture::PostureEntry;
use crate::config::PointPattern;
use crate::detect::limits::LimitsDetector;
use crate::detect::{Detector, PointInfo};

/// Until when the raised posture holds; shared. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct PostureWindow(Arc<AtomicI64>);

impl PostureWindow {
    /// Raises the posture until `until` (a later end extends it; an earlier one does not
    /// shorten it).
    pub fn raise_until(&self, until: Timestamp) {
        self.0.fetch_max(until.as_millis(), Ordering::Relaxed);
    }

    /// Whether the raised posture holds at `at`.
    pub fn active_at(&self, at: Timestamp) -> bool {
        at.as_millis() < self.0.load(Ordering::Relaxed)
    }

    /// The end of the raised posture, if one was ever set.
    pub fn until(&self) -> Option<Timestamp> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Timestamp::from_millis(ms)),
        }
    }
}

/// The posture kind of a limit kind: `limit_h` → `posture_h`.
fn posture_kind(kind: &ConditionKind) -> ConditionKind {
    let name = kind.as_str().replacen("limit_", "posture_", 1);
    ConditionKind::new(name).unwrap_or_else(|_| kind.clone())
}

/// One point's posture limits, counted only inside the window.
#[derive(Debug)]
pub struct PostureDetector {
    inner: LimitsDetector,
    window: PostureWindow,
    /// The inner detector's last verdict per kind (the posture kind's condition).
    verdicts: BTreeMap<String, Condition>,
    /// What was last emitted per kind (`None` before the first).
    shown: BTreeMap<String, bool>,
}

impl PostureDetector {
    /// A detector of `entry`'s limits on `point`, gated by `window`.
    pub fn new(point: PointInfo, entry: &PostureEntry, window: PostureWindow) -> Self {
        PostureDetector {
            inner: LimitsDetector::new(point, &entry.limits),
            window,
            verdicts: BTreeMap::new(),
            shown: BTreeMap::new(),
        }
    }

    /// Takes the inner detector's changes and emits what the window makes of them at `at`.
    fn gate(&mut self, changes: Vec<Condition>, at: Timestamp) -> Vec<Condition> {
        for mut c in changes {
            c.kind = posture_kind(&c.kind);
            if c.active {
                c.message = format!("{} (raised posture)", c.message);
            }
            self.verdicts.insert(c.kind.as_str().to_owned(), c);
        }
        let inside = self.window.active_at(at);
        let mut out = Vec::new();
        for (kind, verdict) in &self.verdicts {
            let want = verdict.active && inside;
            // Only changes are emitted; a first verdict only when it raises (a clear of a
            // posture alarm that never raised tells the manager nothing).
            let shown = self.shown.get(kind).copied().unwrap_or(false);
            if want != shown {
                let mut c = verdict.clone();
                c.active = want;
                c.ts = at.max(verdict.ts);
                if !want && verdict.active {
                    c.message = format!("raised posture ended: {}", verdict.message);
                }
                self.shown.insert(kind.clone(), want);
                out.push(c);
            }
        }
        out
    }
}

impl Detector for PostureDetector {
    fn on_reading(&mut self, reading: &Reading) -> Vec<Condition> {
        let changes = self.inner.on_reading(reading);
        self.gate(changes, reading.ts)
    }

    fn on_tick(&mut self, now: Timestamp) -> Vec<Condition> {
        let changes = self.inner.on_tick(now);
        self.gate(changes, now)
    }
}

/// Which points run which posture limits.
#[derive(Debug, Clone, Default)]
pub struct PostureBook {
    entries: Vec<(Vec<PointPattern>, PostureEntry)>,
    window: PostureWindow,
}

impl PostureBook {
    /// The book of `entries`, gated by `window`.
    pub fn new(entries: &[PostureEntry], window: PostureWindow) -> Self {
        PostureBook {
            entries: entries.iter().map(|e| (e.patterns(), e.clone())).collect(),
            window,
        }
    }

    /// Whether any point has posture limits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The posture detector of `point`: the last entry that names it exactly, else the
    /// last that matches its device; none when no entry matches.
    pub fn detector_for(&self, point: &PointInfo) -> Option<PostureDetector> {
        let id: &PointId = &point.id;
        let find = |exact: bool| {
            self.entries.iter().rev().find(|(patterns, _)| {
                patterns
                    .iter()
                    .any(|p| p.is_exact() == exact && p.matches(id))
            })
        };
        find(true)
            .or_else(|| find(false))
            .map(|(_, entry)| PostureDetector::new(point.clone(), entry, self.window.clone()))
    }
}

/// What this agent at `site` does with `directive` at `now`: its acknowledgement. A posture
/// raises `window` when `has_posture`; a directive whose target does not hold `site` (the
/// hub should not have sent it) is not applicable.
pub fn apply(
    (node, site): (&NodeId, &SitePath),
    directive: &Directive,
    has_posture: bool,
    window: &PostureWindow,
    now: Timestamp,
) -> DirectiveAck {
    let outside = !site.is_within(&directive.target) && !directive.target.is_within(site);
    let (outcome, reason) = match &directive.body {
        _ if outside => (
            DirectiveOutcome::NotApplicable,
            Some(format!(
                "the target {} does not hold this gateway's site {site}",
                directive.target
            )),
        ),
        DirectiveBody::Posture { until } if !has_posture => (
            DirectiveOutcome::NotApplicable,
            Some(format!(
                "no [[posture]] entries in agent.toml: nothing to raise until {until}"
            )),
        ),
        DirectiveBody::Posture { until } if *until <= now => (
            DirectiveOutcome::NotApplicable,
            Some(format!("the raised posture already ended at {until}")),
        ),
        DirectiveBody::Posture { until } => {
            window.raise_until(*until);
            (DirectiveOutcome::Applied, None)
        }
        DirectiveBody::Snapshot { zone } => (
            DirectiveOutcome::NotApplicable,
            Some(format!("this gateway has no cameras (zone {zone})")),
        ),
        DirectiveBody::Drill { .. } | DirectiveBody::Order { .. } => {
            (DirectiveOutcome::Applied, None)
        }
    };
    DirectiveAck {
        directive: directive.id,
        node: node.clone(),
        outcome,
        reason,
        at: now,
        relayed_to: Vec::new(),
    }
}

/// Re-arms `window` from the posture directives this agent applied before a restart.
pub fn restore(store: &Store, window: &PostureWindow) -> Result<(), StoreError> {
    let applied = store.directives(1000, |v| {
        v.handled
            && v.acks
                .iter()
                .any(|a| a.via.is_none() && a.ack.outcome == DirectiveOutcome::Applied)
    })?;
    for view in applied {
        if let DirectiveBody::Posture { until } = view.directive.body {
            window.raise_until(until);
        }
    }
    Ok(())
}

/// Handles every pending directive; returns how many.
pub fn handle_pending(
    store: &mut Store,
    (node, site): (&NodeId, &SitePath),
    has_posture: bool,
    window: &PostureWindow,
) -> Result<usize, StoreError> {
    let mut done = 0;
    for directive in store.directives_pending()? {
        let now = Timestamp::now();
        let ack = apply((node, site), &directive, has_posture, window, now);
        let audit = AuditEntry {
            at: now,
            node: node.to_string(),
            actor: "system".to_owned(),
            action: "directive.apply".to_owned(),
            target: directive.id.to_string(),
            details: serde_json::json!({
                "kind": directive.body.kind(),
                "body": directive.body,
                "origin": directive.origin.as_str(),
                "actor": directive.actor,
                "outcome": ack.outcome.as_str(),
                "reason": ack.reason,
            }),
        };
        tracing::info!(directive = %directive.id, kind = directive.body.kind(),
                       outcome = ack.outcome.as_str(), "directive from the hub");
        let handling = Handling {
            children: &[],
            ack: Some(ack),
            ack_link: Some(vigil_link::PARENT_LINK),
            audit,
        };
        if store.directive_handle(&directive, &handling)? {
            done += 1;
        }
    }
    Ok(done)
}

/// How often pending directives are looked for.
pub const POLL: Duration = Duration::from_millis(250);

/// Handles the hub's directives every [`POLL`] until `shutdown`, poking the uplink after.
pub async fn run(
    store: SharedStore,
    (node, site): (NodeId, SitePath),
    has_posture: bool,
    window: PostureWindow,
    poke: OutboxPoke,
    shutdown: CancellationToken,
) {
    let restore_window = window.clone();
    if let Err(error) = store.call(move |s| restore(s, &restore_window)).await {
        tracing::error!(%error, "cannot re-arm the raised posture from the store");
    }
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (node, site, window) = (node.clone(), site.clone(), window.clone());
        match store
            .call(move |s| handle_pending(s, (&node, &site), has_posture, &window))
            .await
        {
            Ok(0) => {}
            Ok(_) => poke.poke(),
            Err(error) => tracing::error!(%error, "cannot apply the hub's directives"),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{EventId, Quality, Value};

    use super::*;

    fn entry() -> PostureEntry {
        serde_json::from_str(r#"{"points": ["env-1/*"], "limits": {"h": 26.0}}"#).expect("valid")
    }

    fn reading(v: f64, ms: i64) -> Reading {
        Reading {
            point: "env-1/temp".parse().expect("point"),
            value: Value::Float(v),
            quality: Quality::Good,
            ts: Timestamp::from_millis(ms),
        }
    }

    fn detector(window: &PostureWindow) -> PostureDetector {
        let point = PointInfo::new("env-1/temp".parse().expect("point"));
        PostureBook::new(&[entry()], window.clone())
            .detector_for(&point)
            .expect("matched")
    }

    fn verdicts(out: &[Condition]) -> Vec<(String, bool)> {
        out.iter()
            .map(|c| (c.kind.as_str().to_owned(), c.active))
            .collect()
    }

    #[test]
    fn a_reading_above_the_posture_limit_alarms_only_inside_the_window() {
        let window = PostureWindow::default();
        let mut d = detector(&window);
        // Normal posture: 27 (above the posture limit 26) raises nothing.
        assert!(d.on_reading(&reading(27.0, 1_000)).is_empty());
        // Raised until t=10s: the same value now alarms.
        window.raise_until(Timestamp::from_millis(10_000));
        let out = d.on_reading(&reading(27.0, 2_000));
        assert_eq!(verdicts(&out), [("posture_h".to_owned(), true)]);
        assert!(
            out[0].message.contains("raised posture"),
            "{}",
            out[0].message
        );
        // Unchanged inside the window: nothing new.
        assert!(d.on_reading(&reading(27.5, 3_000)).is_empty());
        // The window ends: the alarm clears at the next tick, though the value is still high.
        let out = d.on_tick(Timestamp::from_millis(10_000));
        assert_eq!(verdicts(&out), [("posture_h".to_owned(), false)]);
        assert!(d.on_reading(&reading(27.0, 11_000)).is_empty());
    }

    #[test]
    fn inside_the_window_the_value_returning_clears_it() {
        let window = PostureWindow::default();
        window.raise_until(Timestamp::from_millis(60_000));
        let mut d = detector(&window);
        assert!(
            d.on_reading(&reading(25.0, 1_000)).is_empty(),
            "below: no first clear"
        );
        let out = d.on_reading(&reading(26.5, 2_000));
        assert_eq!(verdicts(&out), [("posture_h".to_owned(), true)]);
        let out = d.on_reading(&reading(25.0, 3_000));
        assert_eq!(verdicts(&out), [("posture_h".to_owned(), false)]);
    }

    #[test]
    fn the_detectors_of_a_point_first_read_include_its_posture_limits() {
        let window = PostureWindow::default();
        let book = PostureBook::new(&[entry()], window.clone());
        let mut detectors =
            crate::detect::Detectors::new(crate::detect::RuleBook::default()).with_posture(book);
        window.raise_until(Timestamp::from_millis(60_000));
        let out = detectors.on_reading(&reading(27.0, 1_000));
        assert!(
            out.iter()
                .any(|c| c.kind.as_str() == "posture_h" && c.active && c.source == "env-1/temp"),
            "{out:?}"
        );
    }

    #[test]
    fn only_matched_points_get_a_detector() {
        let book = PostureBook::new(&[entry()], PostureWindow::default());
        let other = PointInfo::new("env-2/temp".parse().expect("point"));
        assert!(book.detector_for(&other).is_none());
        assert!(PostureBook::default().is_empty());
    }

    #[test]
    fn what_an_agent_acknowledges() {
        let node = NodeId::new("gw-1").expect("valid");
        let site = SitePath::new("m/p/c/by/prison-3").expect("valid");
        let node = (&node, &site);
        let window = PostureWindow::default();
        let now = Timestamp::from_millis(1_000);
        let mut d = Directive {
            id: EventId::from_bytes([1; 16]),
            origin: NodeId::new("county").expect("valid"),
            target: SitePath::new("m/p/c/by").expect("valid"),
            actor: "sup".into(),
            issued_at: now,
            deadline: now,
            body: DirectiveBody::Posture {
                until: Timestamp::from_millis(5_000),
            },
        };
        let ack = apply(node, &d, false, &window, now);
        assert_eq!(ack.outcome, DirectiveOutcome::NotApplicable);
        assert_eq!(window.until(), None);
        let ack = apply(node, &d, true, &window, now);
        assert_eq!(ack.outcome, DirectiveOutcome::Applied);
        assert_eq!(window.until(), Some(Timestamp::from_millis(5_000)));
        d.body = DirectiveBody::Snapshot {
            zone: "east".into(),
        };
        let ack = apply(node, &d, true, &window, now);
        assert_eq!(ack.outcome, DirectiveOutcome::NotApplicable);
        assert!(ack.reason.expect("reason").contains("no cameras"));
        d.body = DirectiveBody::Drill {
            start: now,
            end: Timestamp::from_millis(2_000),
            note: None,
        };
        assert_eq!(
            apply(node, &d, true, &window, now).outcome,
            DirectiveOutcome::Applied
        );
        d.target = SitePath::new("m/p/c/other").expect("valid");
        assert_eq!(
            apply(node, &d, true, &window, now).outcome,
            DirectiveOutcome::NotApplicable
        );
    }
}
