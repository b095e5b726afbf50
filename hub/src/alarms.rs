//! [`HubAlarms`]: the alerts a hub raises itself about the nodes below it — a child offline
//! (`node_offline`), a child's link backlog (`link_backlog`), a security finding about a
//! child (`security`: a refused publish, a failed handshake, a forged event) and a child's
//! clock running ahead (`clock_skew`) (docs/ARCHITECTURE.md#node-health-alarms).
//!
//! **What they are.** Ordinary alerts, so an operator sees them where every alert is
//! (`GET /api/v1/alerts`, the live stream) and they go up by the escalation policy:
//!
//! - origin: this hub's node id; key `{hub}/node/{subject}/{kind}` (source `node/{subject}`);
//! - site: the subject's bound site (`Store::node_binding`: enrolled, declared in
//!   `[[child]]` or reported by a child hub; [`AlarmContext::site_of`]), else this hub's own
//!   `[node] site` (else a one-segment site named after the hub: set `[node] site`) — so
//!   an operator scoped to a prison sees its gateway's alarms, and escalation rules by site
//!   apply to them;
//! - severity by kind ([`AlarmKind::severity`]): `security` and `node_offline` are `major`
//!   (a forged event or a dead link is something a command centre acts on now, but it is not
//!   itself an intrusion, which keeps `critical` for the field); `link_backlog` and
//!   `clock_skew` are `minor` (a degradation to fix, nothing lost yet);
//! - at most one open alert per (subject, kind): while it is open a repeat updates it — a
//!   `value_updated` whose value is the count of reports — instead of raising a new one; a
//!   clear is a `cleared` event; a report after the clear re-raises the same alert (a new
//!   activation) until an operator closes it. The open alert of a key is looked up in the
//!   store on every write, so after a restart the hub finds its open alerts again and never
//!   duplicates them, and an alert an operator closed is never written to again;
//! - `node_offline` and `link_backlog` are conditions: reporting one that is already active
//!   writes nothing ([`Report::Condition`]). `security` and `clock_skew` are occurrences:
//!   each report counts ([`Report::Occurrence`]).
//!
//! **How they are recorded**: exactly like an operator action at this hub
//! (`crate::action::record`): the event, its place in the `parent` outbox when the hub has a
//! parent and the escalation policy passes the alert, and an audit record (actor `system`,
//! action `alarm.raised` / `alarm.updated` / `alarm.cleared`, target the alert, details the
//! subject, kind, count, message and event id) commit in one transaction
//! (`Store::record_action`); then the live stream hears of it and the uplink is poked.
//!
//! **Cost under attack.** [`HubAlarms`] is a cheap, synchronous handle: it puts a report on
//! a bounded channel ([`QUEUE`]) and returns; a full channel drops the report and counts it
//! (`vigil_hub_alarm_reports_dropped_total`). One task ([`run_alarms`]) writes. Repeats of
//! an open occurrence are coalesced ([`Coalescer`]): at most one write per (subject, kind)
//! per [`UPDATE_INTERVAL`], carrying every report since, so a child that sends thousands of
//! forged events a second costs one event (and one audit record) every 10 s, here and at
//! every level above.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, AlertView, ConditionKind, EventId,
    NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_link::SharedStore;
use vigil_store::{AlertContext, AuditEntry, Store, StoreError};

use crate::children::PARENT_LINK;
use crate::clock::HubClock;
use crate::escalation::EscalationSection;
use crate::link::OutboxPokes;
use crate::live::LiveStream;
use crate::metrics::HubMetrics;

/// Reports waiting for the alarm task before new ones are dropped (and counted).
pub const QUEUE: usize = 1024;

/// The least time between two writes of one open occurrence alert: repeats in between are
/// counted and written together.
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(10);

/// The most (subject, kind) pairs the coalescer tracks at once; reports of a new pair past
/// it are dropped and counted. Pairs leave once idle for [`UPDATE_INTERVAL`].
pub const MAX_TRACKED: usize = 10_000;

/// The longest alarm message kept; longer ones are cut (ending in `…`).
pub const MAX_MESSAGE: usize = 512;

/// The audit record's actor for what the hub does by itself.
pub const SYSTEM_ACTOR: &str = "system";

/// What a hub alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlarmKind {
    /// A child is offline: its last will, or silent for `[link] offline_after`.
    NodeOffline,
    /// A child's reported backlog reached `[link] backlog_alarm`.
    LinkBacklog,
    /// A child did something the hub refused (a publish, a handshake, a forged event).
    Security,
    /// A child stamped events too far ahead of this hub's clock.
    ClockSkew,
}

impl AlarmKind {
    /// Every kind.
    pub const ALL: [AlarmKind; 4] = [
        AlarmKind::NodeOffline,
        AlarmKind::LinkBacklog,
        AlarmKind::Security,
        AlarmKind::ClockSkew,
    ];

    /// The condition kind of the alert (`node_offline`, `link_backlog`, `security`,
    /// `clock_skew`), also the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmKind::NodeOffline => "node_offline",
            AlarmKind::LinkBacklog => "link_backlog",
            AlarmKind::Security => "security",
            AlarmKind::ClockSkew => "clock_skew",
        }
    }

    /// The kind named `kind`, if it is one of the hub's.
    pub fn parse(kind: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The alert's severity; see the module docs for why.
    pub const fn severity(self) -> Severity {
        match self {
            AlarmKind::NodeOffline | AlarmKind::Security => Severity::Major,
            AlarmKind::LinkBacklog | AlarmKind::ClockSkew => Severity::Minor,
        }
    }

    /// Whether reports are occurrences (each counts) rather than a condition's state.
    pub const fn counts(self) -> bool {
        matches!(self, AlarmKind::Security | AlarmKind::ClockSkew)
    }
}

impl std::fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of the hub `hub`'s alarm of `kind` about `subject`: `{hub}/node/{subject}/{kind}`.
pub fn alarm_key(hub: &NodeId, subject: &NodeId, kind: AlarmKind) -> AlertKey {
    AlertKey {
        origin: hub.clone(),
        source: format!("node/{subject}"),
        // Every `as_str` is a valid condition kind (tested).
        kind: ConditionKind::new(kind.as_str())
            .unwrap_or_else(|_| unreachable!("the hub's alarm kinds are valid condition kinds")),
    }
}

/// One report, as the alarm task writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A condition holds (or, with `false`, no longer holds).
    Condition {
        /// What it is about.
        subject: NodeId,
        /// Which condition.
        kind: AlarmKind,
        /// Raised (`true`) or cleared.
        active: bool,
        /// What the operator reads.
        message: String,
    },
    /// Something happened `count` times (since the last write).
    Occurrence {
        /// What it is about.
        subject: NodeId,
        /// What happened.
        kind: AlarmKind,
        /// How many reports this write stands for.
        count: u64,
        /// The latest report's message.
        message: String,
    },
}

/// What the sync handle sends to the task.
#[derive(Debug)]
enum Request {
    Report(Report),
    /// Clears `kind` about `subject` (any kind: an occurrence alert is cleared this way too).
    Clear {
        subject: NodeId,
        kind: AlarmKind,
    },
}

/// The hub's alarms: cheap to clone, shared by the link side (gate denials, findings, node
/// health) and whoever else finds something wrong with a child. See the module docs.
#[derive(Debug, Clone)]
pub struct HubAlarms {
    tx: mpsc::Sender<Request>,
    metrics: HubMetrics,
}

/// The receiving end of the alarms' queue, consumed by [`run_alarms`].
#[derive(Debug)]
pub struct AlarmQueue(mpsc::Receiver<Request>);

impl HubAlarms {
    /// The handle and the queue its task drains.
    pub fn new(metrics: HubMetrics) -> (HubAlarms, AlarmQueue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (HubAlarms { tx, metrics }, AlarmQueue(rx))
    }

    /// A `security` alert about `child`, e.g. reason `foreign_origin`, with what was refused
    /// in `detail`. Repeats while it is open update it (count), they do not raise new alerts.
    pub fn security(&self, child: &NodeId, reason: &str, detail: String) {
        self.security_counted(child, reason, detail, 1);
    }

    /// [`HubAlarms::security`] for a report that stands for `count` refusals (an aggregated
    /// gate denial or finding).
    pub fn security_counted(&self, child: &NodeId, reason: &str, detail: String, count: u64) {
        let message = if detail.is_empty() {
            format!("security: {reason}")
        } else {
            format!("security: {reason}: {detail}")
        };
        self.occurred(child, AlarmKind::Security, message, count);
    }

    /// A `clock_skew` alert about `child`: it stamped events `ahead` in the future.
    pub fn clock_skew(&self, child: &NodeId, ahead: Duration) {
        let message = format!(
            "clock skew: {child} stamped events {} ahead of this hub's clock; fix its time (NTP)",
            humantime_serde::re::humantime::format_duration(Duration::from_millis(
                u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX)
            ))
        );
        self.occurred(child, AlarmKind::ClockSkew, message, 1);
    }

    /// Clears the open alert of `kind` about `subject`, if any (`kind` one of
    /// [`AlarmKind::as_str`]; another is logged and ignored).
    pub fn clear(&self, subject: &NodeId, kind: &str) {
        match AlarmKind::parse(kind) {
            Some(kind) => self.send(Request::Clear {
                subject: subject.clone(),
                kind,
            }),
            None => tracing::warn!(%subject, kind, "clear of an alarm kind the hub does not raise"),
        }
    }

    /// `count` occurrences of `kind` about `subject`.
    pub fn occurred(&self, subject: &NodeId, kind: AlarmKind, message: String, count: u64) {
        self.send(Request::Report(Report::Occurrence {
            subject: subject.clone(),
            kind,
            count: count.max(1),
            message: cut(message),
        }));
    }

    /// The condition `kind` about `subject` holds (`active`) or not. Waits for room in the
    /// queue: a condition's change is never dropped (node health calls this).
    pub async fn condition(
        &self,
        subject: &NodeId,
        kind: AlarmKind,
        active: bool,
        message: String,
    ) {
        let request = Request::Report(Report::Condition {
            subject: subject.clone(),
            kind,
            active,
            message: cut(message),
        });
        if self.tx.send(request).await.is_err() {
            tracing::debug!(%subject, %kind, "alarm task stopped: condition not recorded");
        }
    }

    fn send(&self, request: Request) {
        match self.tx.try_send(request) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(request)) => {
                self.metrics.alarm_reports_dropped.inc();
                tracing::debug!(?request, "alarm queue full: report dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("alarm task stopped: report not recorded");
            }
        }
    }
}

/// `message` cut to [`MAX_MESSAGE`] bytes on a character boundary.
fn cut(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// A tracked (subject, kind) pair of the coalescer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    /// When the pair was last written (ms).
    written: i64,
    /// Reports since, not written yet.
    pending: u64,
    /// The latest pending report's message.
    message: String,
}

/// What the coalescer made of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coalesced {
    /// Write this now.
    Write(Report),
    /// Counted; written with the pair's next write.
    Held,
    /// Too many pairs tracked: dropped.
    Full,
}

/// The pure core of the alarm task's timing: repeats of an occurrence within
/// [`UPDATE_INTERVAL`] of the pair's last write are held and written together. No I/O;
/// times in milliseconds.
#[derive(Debug, Clone)]
pub struct Coalescer {
    interval: i64,
    max: usize,
    slots: BTreeMap<(NodeId, AlarmKind), Slot>,
}

impl Coalescer {
    /// Writes at most once per `interval` per pair, tracking at most `max` pairs.
    pub fn new(interval: Duration, max: usize) -> Self {
        Coalescer {
            interval: i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
            max,
            slots: BTreeMap::new(),
        }
    }

    /// `count` occurrences reported at `now`.
    pub fn report(
        &mut self,
        subject: &NodeId,
        kind: AlarmKind,
        count: u64,
        message: String,
        now: i64,
    ) -> Coalesced {
        let key = (subject.clone(), kind);
        let full = self.slots.len() >= self.max;
        match self.slots.get_mut(&key) {
            Some(slot) if now.saturating_sub(slot.written) < self.interval => {
                slot.pending = slot.pending.saturating_add(count);
                slot.message = message;
                Coalesced::Held
            }
            Some(slot) => {
                let count = slot.pending.saturating_add(count);
                *slot = Slot {
                    written: now,
                    pending: 0,
                    message: String::new(),
                };
                Coalesced::Write(Report::Occurrence {
                    subject: subject.clone(),
                    kind,
                    count,
                    message,
                })
            }
            None if full => Coalesced::Full,
            None => {
                self.slots.insert(
                    key,
                    Slot {
                        written: now,
                        pending: 0,
                        message: String::new(),
                    },
                );
                Coalesced::Write(Report::Occurrence {
                    subject: subject.clone(),
                    kind,
                    count,
                    message,
                })
            }
        }
    }

    /// A clear of the pair: what it still holds is written first (so the count is right),
    /// and the pair is forgotten, so the next report re-raises at once.
    pub fn clear(&mut self, subject: &NodeId, kind: AlarmKind) -> Option<Report> {
        let slot = self.slots.remove(&(subject.clone(), kind))?;
        (slot.pending > 0).then(|| Report::Occurrence {
            subject: subject.clone(),
            kind,
            count: slot.pending,
            message: slot.message,
        })
    }

    /// The held reports due at `now` (their pair's last write is `interval` old), to write
    /// now; pairs idle that long are forgotten.
    pub fn due(&mut self, now: i64) -> Vec<Report> {
        let interval = self.interval;
        let mut out = Vec::new();
        self.slots.retain(|(subject, kind), slot| {
            if now.saturating_sub(slot.written) < interval {
                return true;
            }
            if slot.pending == 0 {
                return false;
            }
            out.push(Report::Occurrence {
                subject: subject.clone(),
                kind: *kind,
                count: slot.pending,
                message: std::mem::take(&mut slot.message),
            });
            slot.pending = 0;
            slot.written = now;
            true
        });
        out
    }

    /// When the next held report falls due (ms), if any is held.
    pub fn next_due(&self) -> Option<i64> {
        self.slots
            .values()
            .filter(|s| s.pending > 0)
            .map(|s| s.written.saturating_add(self.interval))
            .min()
    }

    /// How many pairs are tracked.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// The event a report makes of the key's open alert (`open`: its context, `None` when no
/// alert of the key is open), with the audit action naming it; `None` when there is nothing
/// to write (a clear of what is not active, a condition already active). Pure.
pub fn decide(
    key: &AlertKey,
    site: &SitePath,
    open: Option<&AlertContext>,
    report: &Report,
    now: Timestamp,
) -> Option<(AlertId, AlertEventBody, &'static str)> {
    let (kind, active, count, message) = match report {
        Report::Condition {
            kind,
            active,
            message,
            ..
        } => (*kind, *active, None, message),
        Report::Occurrence {
            kind,
            count,
            message,
            ..
        } => (*kind, true, Some(*count), message),
    };
    let raise = |alert: AlertId, count: Option<u64>| {
        (
            alert,
            AlertEventBody::Raised {
                key: key.clone(),
                site: site.clone(),
                severity: kind.severity(),
                message: message.clone(),
                value: count.map(count_value),
                at: now,
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
            "alarm.raised",
        )
    };
    match (open.map(|c| &c.view), active) {
        (None, false) => None,
        (Some(view), false) => view.active.then_some((
            view.id,
            AlertEventBody::Cleared {
                value: None,
                at: now,
            },
            "alarm.cleared",
        )),
        (None, true) => Some(raise(AlertId::generate(), count)),
        (Some(view), true) if !view.active => Some(raise(view.id, count)),
        (Some(view), true) => {
            let count = count?;
            let total = stored_count(view).saturating_add(count);
            Some((
                view.id,
                AlertEventBody::ValueUpdated {
                    value: Some(count_value(total)),
                    severity: None,
                    message: Some(message.clone()),
                    at: now,
                },
                "alarm.updated",
            ))
        }
    }
}

fn count_value(count: u64) -> Value {
    Value::Int(i64::try_from(count).unwrap_or(i64::MAX))
}

/// The count an open occurrence alert holds (its value), 0 without one.
fn stored_count(view: &AlertView) -> u64 {
    match view.value {
        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

/// What the alarm task needs of the hub.
#[derive(Debug, Clone)]
pub struct AlarmContext {
    /// This hub: the origin of its alarms.
    pub node: NodeId,
    /// This hub's `[node] site`, the site of an alarm about a node without a binding.
    pub site: Option<SitePath>,
    /// Whether the hub has a parent to tell.
    pub has_parent: bool,
    /// What goes up.
    pub escalation: EscalationSection,
    /// The hub's clock.
    pub clock: HubClock,
    /// The live stream.
    pub live: LiveStream,
    /// Wakes the uplink after an alarm is queued for the parent.
    pub pokes: OutboxPokes,
    /// The hub's metrics.
    pub metrics: HubMetrics,
}

impl AlarmContext {
    /// The site of an alarm about `subject`: its bound site when the store has one, else
    /// this hub's `[node] site`, else a one-segment site named after this hub.
    pub fn site_of(&self, store: &Store, subject: &NodeId) -> SitePath {
        match store.node_binding(subject) {
            Ok(Some(binding)) => return binding.site,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%subject, %error, "cannot read a node's binding: its alarm is at this hub's site");
            }
        }
        self.site.clone().unwrap_or_else(|| {
            SitePath::new(self.node.as_str())
                .unwrap_or_else(|_| unreachable!("a node id is a valid site segment"))
        })
    }
}

/// What one write did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The event.
    pub event: AlertEvent,
    /// Its alert, the event folded in.
    pub view: AlertView,
    /// The outboxes it was queued in (`parent`, or none).
    pub links: Vec<String>,
}

/// Writes `report` at `now` in one transaction, as an operator action is written (see the
/// module docs); `None` when there was nothing to write.
pub fn write(
    store: &mut Store,
    ctx: &AlarmContext,
    report: &Report,
    now: Timestamp,
) -> Result<Option<Written>, StoreError> {
    let (subject, kind) = match report {
        Report::Condition { subject, kind, .. } | Report::Occurrence { subject, kind, .. } => {
            (subject, *kind)
        }
    };
    let key = alarm_key(&ctx.node, subject, kind);
    let open = match store.open_alert_for_key(&key)? {
        Some(id) => store.alert_context(id)?,
        None => None,
    };
    let site = ctx.site_of(store, subject);
    let Some((alert, body, action)) = decide(&key, &site, open.as_ref(), report, now) else {
        return Ok(None);
    };
    let event = AlertEvent {
        id: EventId::generate(),
        alert,
        origin: ctx.node.clone(),
        hlc: ctx.clock.stamp_after(
            open.as_ref().and_then(|c| c.view.last.map(|(hlc, _)| hlc)),
            now,
        ),
        actor: Actor::System,
        body,
        clamped_from: None,
    };
    let (mut after, peak) = match open {
        Some(c) => (c.view, c.peak_severity),
        None => (AlertView::empty(alert), None),
    };
    if after.apply(&event).is_err() {
        // The stamp is after the alert's last event, so this does not happen; fold anyway.
        after = AlertView::fold(alert, &store.alert_events(alert)?);
    }
    let peak = Some(peak.map_or(after.severity, |p| p.max(after.severity)));
    let mut links = Vec::new();
    if ctx.has_parent && ctx.escalation.escalates_history(&after, peak) {
        links.push(PARENT_LINK.to_owned());
    }
    let audit = AuditEntry {
        at: now,
        node: ctx.node.to_string(),
        actor: SYSTEM_ACTOR.to_owned(),
        action: action.to_owned(),
        target: alert.to_string(),
        details: serde_json::json!({
            "subject": subject.to_string(),
            "kind": kind.as_str(),
            "count": after.value.as_ref().map(ToString::to_string),
            "message": after.message,
            "event": event.id.to_string(),
            "escalated": !links.is_empty(),
        }),
    };
    let lane = after.severity.lane();
    let items: Vec<(&str, _)> = links.iter().map(|l| (l.as_str(), lane)).collect();
    store.record_action(&event, &items, &audit)?;
    let view = store.alert(alert)?.unwrap_or(after);
    tracing::info!(
        %alert, %subject, kind = kind.as_str(), event = event.body.name(), hlc = %event.hlc,
        links = ?links, "hub alarm recorded"
    );
    Ok(Some(Written { event, view, links }))
}

/// The alarm task: takes the reports from `queue`, coalesces repeats and writes them,
/// until `shutdown`.
pub async fn run_alarms(
    mut queue: AlarmQueue,
    store: SharedStore,
    ctx: AlarmContext,
    shutdown: CancellationToken,
) {
    let mut coalescer = Coalescer::new(UPDATE_INTERVAL, MAX_TRACKED);
    loop {
        let now = Timestamp::now().as_millis();
        let due = coalescer.next_due().map(|at| {
            tokio::time::Instant::now()
                + Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
        });
        let request = tokio::select! {
            () = shutdown.cancelled() => return,
            () = sleep_until(due) => None,
            next = queue.0.recv() => match next {
                Some(request) => Some(request),
                None => return,
            },
        };
        let now = Timestamp::now();
        let mut writes = coalescer.due(now.as_millis());
        match request {
            None => {}
            Some(Request::Report(report @ Report::Condition { .. })) => writes.push(report),
            Some(Request::Report(Report::Occurrence {
                subject,
                kind,
                count,
                message,
            })) => match coalescer.report(&subject, kind, count, message, now.as_millis()) {
                Coalesced::Write(report) => writes.push(report),
                Coalesced::Held => {}
                Coalesced::Full => {
                    ctx.metrics.alarm_reports_dropped.inc();
                    tracing::warn!(%subject, %kind, "too many alarms tracked: report dropped");
                }
            },
            Some(Request::Clear { subject, kind }) => {
                writes.extend(coalescer.clear(&subject, kind));
                writes.push(Report::Condition {
                    subject,
                    kind,
                    active: false,
                    message: String::new(),
                });
            }
        }
        for report in writes {
            record(&store, &ctx, report, now).await;
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes one report and tells the live stream and the uplink.
async fn record(store: &SharedStore, ctx: &AlarmContext, report: Report, now: Timestamp) {
    let task_ctx = ctx.clone();
    let written = store.call(move |s| write(s, &task_ctx, &report, now)).await;
    match written {
        Ok(Some(written)) => {
            ctx.metrics
                .alarms
                .with_label_values(&[
                    written
                        .view
                        .key
                        .as_ref()
                        .map_or("unknown", |k| k.kind.as_str()),
                    written.event.body.name(),
                ])
                .inc();
            ctx.live.publish(&written.event, &written.view, now);
            if !written.links.is_empty() {
                ctx.pokes.poke(PARENT_LINK);
            }
        }
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "cannot record a hub alarm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("node")
    }

    const NOW: Timestamp = Timestamp::from_millis(1_795_000_000_000);

    fn ctx(has_parent: bool) -> AlarmContext {
        let metrics = HubMetrics::new();
        let (live, _) = LiveStream::new(metrics.clone());
        AlarmContext {
            node: node("county-baiyun"),
            site: Some(SitePath::new("ministry/gd/gz/baiyun").expect("site")),
            has_parent,
            escalation: EscalationSection::default(),
            clock: HubClock::resume(None),
            live,
            pokes: OutboxPokes::default(),
            metrics,
        }
    }

    fn occurrence(subject: &str, kind: AlarmKind, count: u64) -> Report {
        Report::Occurrence {
            subject: node(subject),
            kind,
            count,
            message: format!("{kind} x{count}"),
        }
    }

    fn condition(subject: &str, kind: AlarmKind, active: bool) -> Report {
        Report::Condition {
            subject: node(subject),
            kind,
            active,
            message: format!("{kind} {active}"),
        }
    }

    #[test]
    fn kinds_are_condition_kinds_and_keys_name_the_subject() {
        for kind in AlarmKind::ALL {
            assert!(ConditionKind::new(kind.as_str()).is_ok(), "{kind}");
            assert_eq!(AlarmKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AlarmKind::parse("state"), None);
        let key = alarm_key(
            &node("county-baiyun"),
            &node("gw-1"),
            AlarmKind::NodeOffline,
        );
        assert_eq!(key.to_string(), "county-baiyun/node/gw-1/node_offline");
        assert_eq!(
            key.to_string().parse::<AlertKey>().expect("round trip"),
            key
        );
    }

    #[test]
    fn one_open_alert_per_subject_and_kind_repeats_update_it() {
        let mut store = Store::open_in_memory().expect("store");
        let ctx = ctx(true);
        let first = write(
            &mut store,
            &ctx,
            &occurrence("gw-1", AlarmKind::Security, 1),
            NOW,
        )
        .expect("write")
        .expect("raised");
        assert_eq!(first.event.body.name(), "raised");
        assert_eq!(first.view.value, Some(Value::Int(1)));
        assert_eq!(first.view.severity, Severity::Major);
        assert_eq!(first.links, [PARENT_LINK], "security escalates by default");
        let later = NOW.plus_millis(1);
        let again = write(
            &mut store,
            &ctx,
            &occurrence("gw-1", AlarmKind::Security, 4),
            later,
        )
        .expect("write")
        .expect("updated");
        assert_eq!(again.event.alert, first.event.alert, "the same alert");
        assert_eq!(again.event.body.name(), "value_updated");
        assert_eq!(again.view.value, Some(Value::Int(5)), "counts add up");
        // Another kind, another subject: other alerts.
        let skew = write(
            &mut store,
            &ctx,
            &occurrence("gw-1", AlarmKind::ClockSkew, 1),
            later,
        )
        .expect("write")
        .expect("raised");
        assert_ne!(skew.event.alert, first.event.alert);
        assert_eq!(skew.view.severity, Severity::Minor);
        let other = write(
            &mut store,
            &ctx,
            &occurrence("gw-2", AlarmKind::Security, 1),
            later,
        )
        .expect("write")
        .expect("raised");
        assert_ne!(other.event.alert, first.event.alert);
        assert_eq!(store.alert_count().expect("count"), 3);
        // Audited as the hub's system actor.
        let audit = store.audit_records(0, 100).expect("audit");
        assert!(audit
            .iter()
            .all(|r| r.entry.actor == SYSTEM_ACTOR && r.entry.node == "county-baiyun"));
        assert_eq!(audit.len(), 4);
    }

    #[test]
    fn a_clear_then_a_report_reactivates_the_same_alert_until_it_is_closed() {
        let mut store = Store::open_in_memory().expect("store");
        let ctx = ctx(false);
        let raised = write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, true),
            NOW,
        )
        .expect("write")
        .expect("raised");
        assert!(raised.links.is_empty(), "no parent: nothing goes up");
        // A condition already active writes nothing; a clear of it clears.
        let t = |ms| NOW.plus_millis(ms);
        assert!(write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, true),
            t(1)
        )
        .expect("write")
        .is_none());
        let cleared = write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, false),
            t(2),
        )
        .expect("write")
        .expect("cleared");
        assert_eq!(cleared.event.body.name(), "cleared");
        assert!(!cleared.view.active);
        assert!(
            write(
                &mut store,
                &ctx,
                &condition("gw-1", AlarmKind::NodeOffline, false),
                t(3)
            )
            .expect("write")
            .is_none(),
            "nothing active to clear"
        );
        let again = write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, true),
            t(4),
        )
        .expect("write")
        .expect("re-raised");
        assert_eq!(again.event.alert, raised.event.alert);
        assert_eq!(again.event.body.name(), "raised");
        // An operator closes it: the next report opens a new alert.
        let closed = AlertEvent {
            id: EventId::generate(),
            alert: raised.event.alert,
            origin: node("county-baiyun"),
            hlc: ctx.clock.stamp_after(None, t(5)),
            actor: Actor::User("op".into()),
            body: AlertEventBody::Closed { reason: None },
            clamped_from: None,
        };
        store.apply_events(&[closed]).expect("close");
        assert!(
            write(
                &mut store,
                &ctx,
                &condition("gw-1", AlarmKind::NodeOffline, false),
                t(6)
            )
            .expect("write")
            .is_none(),
            "a closed alert is not written to"
        );
        let new = write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, true),
            t(7),
        )
        .expect("write")
        .expect("raised");
        assert_ne!(new.event.alert, raised.event.alert);
    }

    #[test]
    fn the_alarm_is_at_the_subjects_bound_site() {
        let mut store = Store::open_in_memory().expect("store");
        let prison = SitePath::new("ministry/gd/gz/baiyun/prison-3").expect("site");
        store
            .bindings_sync_config(&[(node("gw-1"), prison.clone())], NOW)
            .expect("bind");
        let ctx = ctx(false);
        let bound = write(
            &mut store,
            &ctx,
            &condition("gw-1", AlarmKind::NodeOffline, true),
            NOW,
        )
        .expect("write")
        .expect("raised");
        assert_eq!(bound.view.site, Some(prison));
        let unbound = write(
            &mut store,
            &ctx,
            &condition("gw-2", AlarmKind::NodeOffline, true),
            NOW,
        )
        .expect("write")
        .expect("raised");
        assert_eq!(
            unbound.view.site, ctx.site,
            "no binding: the hub's own site"
        );
    }

    #[test]
    fn a_restarted_hub_finds_its_open_alert_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("hub.db");
        let first = {
            let mut store = Store::open(&path).expect("store");
            write(
                &mut store,
                &ctx(true),
                &occurrence("gw-1", AlarmKind::Security, 2),
                NOW,
            )
            .expect("write")
            .expect("raised")
        };
        let mut store = Store::open(&path).expect("reopen");
        let ctx = AlarmContext {
            clock: HubClock::resume(store.max_hlc().expect("hlc")),
            ..ctx(true)
        };
        let again = write(
            &mut store,
            &ctx,
            &occurrence("gw-1", AlarmKind::Security, 1),
            NOW,
        )
        .expect("write")
        .expect("updated");
        assert_eq!(again.event.alert, first.event.alert);
        assert_eq!(again.view.value, Some(Value::Int(3)));
        assert_eq!(store.alert_count().expect("count"), 1);
    }

    #[test]
    fn repeats_are_coalesced_per_pair_and_interval() {
        let mut c = Coalescer::new(Duration::from_millis(100), 2);
        let gw1 = node("gw-1");
        let sec = AlarmKind::Security;
        assert_eq!(
            c.report(&gw1, sec, 1, "a".into(), 0),
            Coalesced::Write(occurrence_msg("gw-1", sec, 1, "a"))
        );
        assert_eq!(c.report(&gw1, sec, 1, "b".into(), 10), Coalesced::Held);
        assert_eq!(c.report(&gw1, sec, 1, "c".into(), 20), Coalesced::Held);
        assert_eq!(c.next_due(), Some(100));
        assert_eq!(c.due(99), Vec::new());
        assert_eq!(c.due(100), vec![occurrence_msg("gw-1", sec, 2, "c")]);
        assert_eq!(c.next_due(), None);
        // Past the interval a report is written at once, with nothing held before it.
        assert_eq!(
            c.report(&gw1, sec, 1, "d".into(), 250),
            Coalesced::Write(occurrence_msg("gw-1", sec, 1, "d"))
        );
        // Bounded: a third pair is refused while two are tracked.
        assert!(matches!(
            c.report(&node("gw-2"), sec, 1, "x".into(), 251),
            Coalesced::Write(_)
        ));
        assert_eq!(
            c.report(&node("gw-3"), sec, 1, "x".into(), 252),
            Coalesced::Full
        );
        // Idle pairs are forgotten.
        assert_eq!(c.due(1_000), Vec::new());
        assert!(c.is_empty());
    }

    #[test]
    fn a_clear_writes_what_is_held_first_and_forgets_the_pair() {
        let mut c = Coalescer::new(Duration::from_millis(100), 10);
        let gw1 = node("gw-1");
        let skew = AlarmKind::ClockSkew;
        assert!(matches!(
            c.report(&gw1, skew, 1, "a".into(), 0),
            Coalesced::Write(_)
        ));
        assert_eq!(c.report(&gw1, skew, 1, "b".into(), 1), Coalesced::Held);
        assert_eq!(
            c.clear(&gw1, skew),
            Some(occurrence_msg("gw-1", skew, 1, "b"))
        );
        assert_eq!(c.len(), 0);
        assert_eq!(c.clear(&gw1, skew), None);
        assert!(
            matches!(c.report(&gw1, skew, 1, "c".into(), 2), Coalesced::Write(_)),
            "a report after a clear re-raises at once"
        );
    }

    fn occurrence_msg(subject: &str, kind: AlarmKind, count: u64, message: &str) -> Report {
        Report::Occurrence {
            subject: node(subject),
            kind,
            count,
            message: message.into(),
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = cut(long);
        assert!(cut.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[tokio::test]
    async fn the_task_records_reports_and_the_handle_never_blocks() {
        let store = SharedStore::new(Store::open_in_memory().expect("store"));
        let ctx = ctx(true);
        let (alarms, queue) = HubAlarms::new(ctx.metrics.clone());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_alarms(
            queue,
            store.clone(),
            ctx.clone(),
            shutdown.clone(),
        ));
        let gw = node("gw-1");
        alarms.security(&gw, "foreign_origin", "origin gw-9".into());
        alarms.security(&gw, "foreign_origin", "origin gw-9".into());
        alarms.clock_skew(&gw, Duration::from_secs(600));
        alarms
            .condition(&gw, AlarmKind::NodeOffline, true, "gone".into())
            .await;
        alarms.clear(&gw, "security");
        alarms.clear(&gw, "no_such_kind");
        // The queue is FIFO and the task writes in order: wait for the last write.
        let key = alarm_key(&ctx.node, &gw, AlarmKind::Security);
        let mut cleared = None;
        for _ in 0..200 {
            let key = key.clone();
            let view = store
                .call(move |s| match s.open_alert_for_key(&key)? {
                    Some(id) => s.alert(id),
                    None => Ok(None),
                })
                .await
                .expect("read");
            if view.as_ref().is_some_and(|v| !v.active) {
                cleared = view;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cleared = cleared.expect("the security alert was cleared in time");
        assert_eq!(
            cleared.value,
            Some(Value::Int(2)),
            "the held repeat was written before the clear"
        );
        assert_eq!(store.call(|s| s.alert_count()).await.expect("count"), 3);
        shutdown.cancel();
        task.await.expect("task");
    }
}
