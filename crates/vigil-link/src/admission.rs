//! What a parent accepts from a child: the site binding is the rule
//! (docs/ARCHITECTURE.md#site-bindings-and-admission).
//!
//! A child speaks only for its subtree. A **gateway** child (enrolled by `vigil-agent
//! enroll`, or `[[child]]` without `kind = "hub"`) has no subtree: every event's origin and
//! raise key origin and every audit record's origin must be `C` itself, and it reports no
//! bindings. From a **hub** child `C`, a hub admits:
//!
//! - a **raise** whose `site` lies inside `C`'s binding (and inside its origin's, when the
//!   origin is a node reported below `C`), whose event origin and alert-key origin are each
//!   `C` or a node below it, on an alert that did not come through another child;
//! - **any other event** (ack, clear, shelve, out of service, …) whose origin is `C` or below
//!   it, on an alert that came through `C` — an alert not held here is tied to `C` by it; one
//!   held here that came through no child (this hub's own, or held from before bindings) only
//!   when its key's origin is `C` or below it;
//! - an **audit record** whose origin is `C` or a node reported through `C`, never this
//!   hub's own id or a node bound elsewhere here; one of a node not bound here at all
//!   **waits** for its binding (it travels up with `C`'s status, which may come after the
//!   batch): the batch is held back whole ([`Verdict::Wait`], not applied, not
//!   acknowledged) for at most [`AUDIT_WAIT`], then the record is refused;
//! - a **reported binding** (in `C`'s status) inside `C`'s own binding, naming a node not
//!   bound elsewhere here, enrolled with `C` or a node `C` reports.
//!
//! No child speaks as this hub's **ancestors** (its `[parent]` node and the hubs above it,
//! from the store): an event, key or audit record in their name is refused
//! (`ancestor_origin`), even from a hub child for which an unknown id is otherwise below it.
//!
//! "Below `C`": a node whose binding here was reported through `C`, or a node not bound here
//! at all (its binding travels up with its parent's next status; until then it is taken as
//! below the child that sent it — still confined to that child's sites). A node bound
//! elsewhere here — a direct child of this hub, a node reported through another child, this
//! hub itself — is never below `C`. A child with no binding here gets nothing admitted.
//!
//! The decisions are pure ([`Judge`]); the store's transaction supplies the bindings and
//! each alert's child ([`AlertVia`]) and records the ties
//! (`vigil_store::Store::apply_batches_admitted_and_forward`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_core::{AlertEvent, AlertEventBody, AlertId, AlertKey, NodeId, SitePath};
pub use vigil_store::AlertVia;
use vigil_store::{
    AdmitTx, Admitted, InboundBatch, NodeBinding, NodeKind, ReportedBinding, StoreError,
};
use vigil_wire::{AuditEvent, BindingStatus};

use crate::findings::{aggregate, Finding, FindingReason};

/// What to do with one event or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it; `tie`: record that its alert came through the child.
    Admit {
        /// Record the alert's child (it has none yet).
        tie: bool,
    },
    /// Do not apply it: why, and what (for the finding).
    Refuse(FindingReason, String),
    /// Not decidable yet: an audit record of a node not bound here at all, from a hub
    /// child — its binding may still be on its way up with the child's next status. The
    /// batch waits ([`GroupAdmission`] holds it back, for at most [`AUDIT_WAIT`]); what, in
    /// words.
    Wait(String),
}

impl Verdict {
    /// Whether it is admitted.
    pub fn admitted(&self) -> bool {
        matches!(self, Verdict::Admit { .. })
    }
}

/// One child's batch judged against this hub's bindings: `this` hub, its `ancestors`, the
/// sending `child`, its binding (`None`: unbound) and the bindings of the nodes the batch
/// names (absent from the map: not bound here).
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// This hub.
    pub this: &'a NodeId,
    /// This hub's `[parent]` node and the hubs above it: never an origin from a child.
    pub ancestors: &'a [NodeId],
    /// The direct child that sent the batch.
    pub child: &'a NodeId,
    /// The child's site binding; `None` when it has none.
    pub child_site: Option<&'a SitePath>,
    /// The bindings held here of the nodes the batch names.
    pub bindings: &'a HashMap<NodeId, NodeBinding>,
}

/// The kind of the direct child `child` as `held` binds it: a gateway unless it is bound
/// here directly as a hub.
fn kind_of(held: &HashMap<NodeId, NodeBinding>, child: &NodeId) -> NodeKind {
    held.get(child)
        .filter(|b| b.via.is_none())
        .and_then(|b| b.kind)
        .unwrap_or(NodeKind::Gateway)
}

impl Judge<'_> {
    /// Whether `origin` may speak through the child: `Ok(Some(site))` with the origin's own
    /// binding when it was reported through the child, `Ok(None)` for the child itself or a
    /// node not bound here; the reason otherwise. A gateway child speaks only as itself.
    fn origin(&self, origin: &NodeId) -> Result<Option<&SitePath>, String> {
        if origin == self.this {
            return Err(format!("origin {origin} is this hub"));
        }
        if let Some(why) = self.ancestor(origin) {
            return Err(why);
        }
        if origin == self.child {
            return Ok(None);
        }
        if kind_of(self.bindings, self.child) == NodeKind::Gateway {
            return Err(format!(
                "origin {origin}: {} is a gateway and speaks only as itself",
                self.child
            ));
        }
        match self.bindings.get(origin) {
            None => Ok(None),
            Some(b) if b.direct_child() == self.child => Ok(Some(&b.site)),
            Some(b) if b.via.is_none() => {
                Err(format!("origin {origin} is a direct child of this hub"))
            }
            Some(b) => Err(format!(
                "origin {origin} is bound through {}",
                b.direct_child()
            )),
        }
    }

    /// Why `origin` is one of this hub's ancestors, if it is.
    fn ancestor(&self, origin: &NodeId) -> Option<String> {
        let depth = self.ancestors.iter().position(|a| a == origin)?;
        Some(match depth {
            0 => format!("origin {origin} is this hub's parent"),
            n => format!(
                "origin {origin} is a hub {} level(s) above this one's parent",
                n
            ),
        })
    }

    /// The verdict on `event`, whose alert came through `through`.
    pub fn event(&self, event: &AlertEvent, through: &AlertVia) -> Verdict {
        let Some(child_site) = self.child_site else {
            return Verdict::Refuse(
                FindingReason::Unbound,
                format!("{} has no site binding here", self.child),
            );
        };
        let what = || {
            format!(
                "event {} ({}) on alert {}",
                event.id,
                event.body.name(),
                event.alert
            )
        };
        let key_origin = match &event.body {
            AlertEventBody::Raised { key, .. } => Some(&key.origin),
            _ => None,
        };
        if let Some(why) = std::iter::once(&event.origin)
            .chain(key_origin)
            .find_map(|o| self.ancestor(o))
        {
            return Verdict::Refuse(FindingReason::AncestorOrigin, format!("{}: {why}", what()));
        }
        let origin_site = match self.origin(&event.origin) {
            Ok(site) => site,
            Err(why) => {
                return Verdict::Refuse(FindingReason::ForeignOrigin, format!("{}: {why}", what()))
            }
        };
        if let AlertEventBody::Raised { key, site, .. } = &event.body {
            if let Err(why) = self.origin(&key.origin) {
                return Verdict::Refuse(
                    FindingReason::ForeignOrigin,
                    format!("{}: key {key}: {why}", what()),
                );
            }
            if !site.is_within(child_site) {
                return Verdict::Refuse(
                    FindingReason::SiteOutsideBinding,
                    format!("{}: site {site} is outside {child_site}", what()),
                );
            }
            if let Some(own) = origin_site.filter(|own| !site.is_within(own)) {
                return Verdict::Refuse(
                    FindingReason::SiteOutsideBinding,
                    format!(
                        "{}: site {site} is outside {own}, {}'s binding",
                        what(),
                        event.origin
                    ),
                );
            }
        }
        match through {
            AlertVia::Child(via) if via == self.child => Verdict::Admit { tie: false },
            AlertVia::Child(via) => Verdict::Refuse(
                FindingReason::AlertNotThroughChild,
                format!("{}: the alert came through {via}", what()),
            ),
            AlertVia::Untied(key_origin) => match key_origin {
                Some(o) if self.origin(o).is_ok() => Verdict::Admit { tie: true },
                Some(o) => Verdict::Refuse(
                    FindingReason::AlertNotThroughChild,
                    format!("{}: the alert is {o}'s, held here", what()),
                ),
                None => Verdict::Refuse(
                    FindingReason::AlertNotThroughChild,
                    format!(
                        "{}: the alert is held here and came through no child",
                        what()
                    ),
                ),
            },
            AlertVia::Unknown => Verdict::Admit { tie: true },
        }
    }

    /// The verdict on an audit record.
    pub fn audit(&self, record: &AuditEvent) -> Verdict {
        if self.child_site.is_none() {
            return Verdict::Refuse(
                FindingReason::Unbound,
                format!("{} has no site binding here", self.child),
            );
        }
        if let Some(why) = self.ancestor(&record.origin) {
            return Verdict::Refuse(
                FindingReason::AncestorOrigin,
                format!("audit record {}#{}: {why}", record.origin, record.seq),
            );
        }
        // No "unknown here means below": an audit record names a node reported through
        // the child, or the child itself; one of a node not bound here at all, from a hub
        // child, waits for its binding (it travels up with the child's status, which may
        // come after the batch).
        if &record.origin != self.child
            && !self.bindings.contains_key(&record.origin)
            && self.origin(&record.origin).is_ok()
        {
            return Verdict::Wait(format!(
                "audit record {}#{}: origin {} is not bound here (yet)",
                record.origin, record.seq, record.origin
            ));
        }
        let known = &record.origin == self.child
            || self
                .bindings
                .get(&record.origin)
                .is_some_and(|b| b.via.as_ref() == Some(self.child));
        match self.origin(&record.origin).and_then(|_| {
            if known {
                Ok(())
            } else {
                Err(format!(
                    "origin {} is not bound here through {}",
                    record.origin, self.child
                ))
            }
        }) {
            Ok(()) => Verdict::Admit { tie: false },
            Err(why) => Verdict::Refuse(
                FindingReason::ForeignAudit,
                format!("audit record {}#{}: {why}", record.origin, record.seq),
            ),
        }
    }
}

/// The nodes a batch names, whose bindings a [`Judge`] needs: the events' origins
/// and raises' key origins, the audit records' origins.
pub fn named_nodes<'a>(
    events: &'a [AlertEvent],
    audit: &'a [AuditEvent],
) -> impl Iterator<Item = &'a NodeId> + 'a {
    events
        .iter()
        .flat_map(|e| {
            let key: Option<&AlertKey> = match &e.body {
                AlertEventBody::Raised { key, .. } => Some(key),
                _ => None,
            };
            std::iter::once(&e.origin).chain(key.map(|k| &k.origin))
        })
        .chain(audit.iter().map(|a| &a.origin))
}

/// The most bindings one status may report. A status is at most 4 MiB, some 60,000
/// entries; a subtree larger than this is refused whole as one finding rather than judged
/// entry by entry on the link's loop.
pub const MAX_REPORTED_BINDINGS: usize = 20_000;

/// Judges the bindings `child` reports in its status against those held here (`held`,
/// every binding of this hub) and `child`'s own (`child_site`; `None`: unbound, all
/// refused): the ones to record, and the refusals. Linear in the report's length.
pub fn judge_reported(
    this: &NodeId,
    child: &NodeId,
    child_site: Option<&SitePath>,
    held: &HashMap<NodeId, NodeBinding>,
    reported: &[BindingStatus],
) -> (Vec<ReportedBinding>, Vec<(FindingReason, String)>) {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let Some(child_site) = child_site else {
        if !reported.is_empty() {
            refused.push((
                FindingReason::Unbound,
                format!(
                    "{child} reports {} binding(s) but has no site binding here",
                    reported.len()
                ),
            ));
        }
        return (accepted, refused);
    };
    if !reported.is_empty() && kind_of(held, child) == NodeKind::Gateway {
        refused.push((
            FindingReason::ForeignBinding,
            format!(
                "{child} is a gateway and reports {} binding(s) (first: {} at {}): none taken; \
                 only a hub child reports the nodes enrolled below it",
                reported.len(),
                reported[0].node,
                reported[0].site
            ),
        ));
        return (accepted, refused);
    }
    if reported.len() > MAX_REPORTED_BINDINGS {
        refused.push((
            FindingReason::ForeignBinding,
            format!(
                "{child} reports {} bindings, more than {MAX_REPORTED_BINDINGS}: none taken",
                reported.len()
            ),
        ));
        return (accepted, refused);
    }
    let in_report: std::collections::HashSet<&NodeId> = reported.iter().map(|r| &r.node).collect();
    for r in reported {
        let what = || {
            format!(
                "binding of {} to {} (enrolled with {})",
                r.node, r.site, r.parent
            )
        };
        let why = if &r.node == this || &r.node == child {
            Some(format!("{}: names {}", what(), r.node))
        } else if !r.site.is_within(child_site) {
            Some(format!(
                "{}: outside {child}'s binding {child_site}",
                what()
            ))
        } else if let Some(b) = held.get(&r.node).filter(|b| b.direct_child() != child) {
            Some(format!(
                "{}: {} is bound here {}",
                what(),
                r.node,
                match &b.via {
                    None => "as a direct child".to_owned(),
                    Some(via) => format!("through {via}"),
                }
            ))
        } else if &r.parent != child && !in_report.contains(&r.parent) {
            Some(format!(
                "{}: {} is not in {child}'s subtree",
                what(),
                r.parent
            ))
        } else {
            None
        };
        match why {
            Some(why) => refused.push((FindingReason::ForeignBinding, why)),
            None => accepted.push(ReportedBinding {
                node: r.node.clone(),
                site: r.site.clone(),
                parent: r.parent.clone(),
            }),
        }
    }
    (accepted, refused)
}

/// Every binding held here as this hub reports it up, for its own status: a node enrolled
/// or configured here is enrolled with `this`.
pub fn report(this: &NodeId, held: &[NodeBinding]) -> Vec<BindingStatus> {
    held.iter()
        .map(|b| BindingStatus {
            node: b.node.clone(),
            site: b.site.clone(),
            parent: b.parent.clone().unwrap_or_else(|| this.clone()),
        })
        .collect()
}

/// The most alerts [`KnownVias`] remembers; past it, it starts over (the store has them).
pub const MAX_KNOWN_VIAS: usize = 200_000;

/// How long a child's batch waits, at most, for the binding of a node whose audit record
/// it carries and that is not bound here ([`Verdict::Wait`]); past it the record is refused
/// for good (`foreign_audit`) and the batch applied without it.
pub const AUDIT_WAIT: Duration = Duration::from_secs(60);

/// The most (child, node) waits [`KnownVias`] remembers; past it, it starts over.
pub const MAX_AUDIT_WAITS: usize = 10_000;

/// What the admission remembers across group commits: the child each alert came through,
/// as committed, so an alert's later events are judged without reading it again (only
/// committed ties go in: a tie never changes once made, the first child wins); and since
/// when each child's batches have waited for the binding of a node their audit records
/// name ([`AUDIT_WAIT`]). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct KnownVias(Arc<Mutex<Memory>>);

#[derive(Debug, Default)]
struct Memory {
    vias: HashMap<AlertId, NodeId>,
    waits: HashMap<(NodeId, NodeId), Instant>,
}

impl KnownVias {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, alert: &AlertId) -> Option<NodeId> {
        self.memory().vias.get(alert).cloned()
    }

    /// Remembers what a group that committed learned ([`GroupAdmission::learned`]).
    pub fn commit(&self, learned: Vec<(AlertId, NodeId)>) {
        if learned.is_empty() {
            return;
        }
        let mut memory = self.memory();
        if memory.vias.len() + learned.len() > MAX_KNOWN_VIAS {
            memory.vias.clear();
        }
        memory.vias.extend(learned);
    }

    /// How long `child`'s batches have waited for `node`'s binding, counting from `now`
    /// when they start to.
    fn waited(&self, child: &NodeId, node: &NodeId, now: Instant) -> Duration {
        let mut memory = self.memory();
        if memory.waits.len() >= MAX_AUDIT_WAITS {
            memory.waits.clear();
        }
        let since = *memory
            .waits
            .entry((child.clone(), node.clone()))
            .or_insert(now);
        now.saturating_duration_since(since)
    }

    /// `child`'s batches no longer wait for `node`'s binding (it is bound).
    fn waited_enough(&self, child: &NodeId, node: &NodeId) {
        let mut memory = self.memory();
        if !memory.waits.is_empty() {
            memory.waits.remove(&(child.clone(), node.clone()));
        }
    }
}

/// The admission of one group commit at a parent (the thin I/O shell around [`Judge`]):
/// looks up, on the transaction, the bindings of the nodes each batch names and the child
/// each event's alert came through (remembered for the group), records the ties, and
/// collects the refusals of the batches that bring news as [`Finding`]s (a whole resend is
/// judged alike, and not reported again).
#[derive(Debug)]
pub struct GroupAdmission {
    this: NodeId,
    /// This hub's ancestors, read once per group.
    ancestors: Option<Vec<NodeId>>,
    known: KnownVias,
    bound: HashMap<NodeId, NodeBinding>,
    looked: HashSet<NodeId>,
    vias: HashMap<AlertId, AlertVia>,
    /// The findings so far: hand them over only once the group is committed.
    pub findings: Vec<Finding>,
    /// The alerts' children read or tied in this group: for [`KnownVias::commit`] once the
    /// group is committed.
    pub learned: Vec<(AlertId, NodeId)>,
}

impl GroupAdmission {
    /// The admission of a group at hub `this`, with the alerts' children committed before
    /// (`known`).
    pub fn new(this: NodeId, known: KnownVias) -> Self {
        GroupAdmission {
            this,
            ancestors: None,
            known,
            bound: HashMap::new(),
            looked: HashSet::new(),
            vias: HashMap::new(),
            findings: Vec::new(),
            learned: Vec::new(),
        }
    }

    fn look_up(&mut self, atx: &AdmitTx<'_>, node: &NodeId) -> Result<(), StoreError> {
        if !self.looked.contains(node) {
            self.looked.insert(node.clone());
            if let Some(b) = atx.binding(node)? {
                self.bound.insert(node.clone(), b);
            }
        }
        Ok(())
    }

    /// Judges `batch` (the store's [`Admit`](vigil_store::Admit) hook): `None` when all of
    /// it is admitted.
    pub fn admit(
        &mut self,
        atx: &AdmitTx<'_>,
        batch: &InboundBatch<'_>,
        news: bool,
    ) -> Result<Option<Admitted>, StoreError> {
        let child = batch.peer;
        if self.ancestors.is_none() {
            self.ancestors = Some(atx.ancestors()?);
        }
        self.look_up(atx, child)?;
        for node in named_nodes(batch.events, batch.audit) {
            self.look_up(atx, node)?;
        }
        let GroupAdmission {
            this,
            ancestors,
            known,
            bound,
            vias,
            findings,
            learned,
            ..
        } = self;
        // A direct child speaks under its own binding here (enrolled or configured); a node
        // bound through another child that connects here directly has none.
        let child_site = bound
            .get(child)
            .filter(|b| b.via.is_none())
            .map(|b| &b.site);
        if child_site.is_none() {
            // Unbound since the link last read the bindings (`vigil-hub unbind`, a
            // `[[child]]` removed): held back, as the link holds an unbound child's batches
            // (`DownlinksTask::hold_unbound`), not refused for good.
            if news {
                let records = batch.events.len() + batch.audit.len();
                findings.push(Finding {
                    child: child.clone(),
                    reason: FindingReason::Unbound,
                    detail: format!(
                        "{child} has no site binding here: its batch of {records} record(s) ({} lane, from seq {}) is held back, not applied and not acknowledged",
                        batch.lane, batch.first_seq
                    ),
                    count: u64::try_from(records).unwrap_or(u64::MAX),
                });
            }
            return Ok(Some(Admitted {
                hold: true,
                ..Admitted::default()
            }));
        }
        let judge = Judge {
            this,
            ancestors: ancestors.as_deref().unwrap_or_default(),
            child,
            child_site,
            bindings: bound,
        };
        let mut refusals = Vec::new();
        // The audit records first: a batch that waits for a binding is held back whole,
        // before any of its events ties an alert.
        let mut audit = Vec::with_capacity(batch.audit.len());
        let now = Instant::now();
        for record in batch.audit {
            match judge.audit(record) {
                Verdict::Admit { .. } => {
                    known.waited_enough(child, &record.origin);
                    audit.push(true);
                }
                Verdict::Refuse(reason, detail) => {
                    refusals.push((reason, detail));
                    audit.push(false);
                }
                Verdict::Wait(what) => {
                    let waited = known.waited(child, &record.origin, now);
                    if waited < AUDIT_WAIT {
                        tracing::debug!(%child, node = %record.origin, waited_ms = waited.as_millis() as u64,
                            "a batch waits for the binding of a node its audit records name");
                        return Ok(Some(Admitted {
                            hold: true,
                            ..Admitted::default()
                        }));
                    }
                    // Waited long enough: refused, and so is every later record of that
                    // node from this child until it is bound (the wait does not start
                    // over, so the child's lane is held up once, not at every record).
                    refusals.push((
                        FindingReason::ForeignAudit,
                        format!(
                            "{what}: {child} has not reported its binding in {} s",
                            waited.as_secs()
                        ),
                    ));
                    audit.push(false);
                }
            }
        }
        let mut events = Vec::with_capacity(batch.events.len());
        for event in batch.events {
            // An unbound child's events are all refused whatever their alert: nothing is
            // looked up (nor remembered for the group's other batches).
            if child_site.is_some() && !vias.contains_key(&event.alert) {
                let via = match known.get(&event.alert) {
                    Some(via) => AlertVia::Child(via),
                    None => {
                        let via = atx.alert_via(&event.alert)?;
                        if let AlertVia::Child(c) = &via {
                            learned.push((event.alert, c.clone()));
                        }
                        via
                    }
                };
                vias.insert(event.alert, via);
            }
            let verdict = match vias.get(&event.alert) {
                Some(via) => judge.event(event, via),
                None => judge.event(event, &AlertVia::Unknown),
            };
            match verdict {
                Verdict::Admit { tie } => {
                    if tie {
                        atx.tie(&event.alert, child)?;
                        vias.insert(event.alert, AlertVia::Child(child.clone()));
                        learned.push((event.alert, child.clone()));
                    }
                    events.push(true);
                }
                Verdict::Refuse(reason, detail) => {
                    refusals.push((reason, detail));
                    events.push(false);
                }
                // Events never wait; were one to, it is not applied.
                Verdict::Wait(_) => events.push(false),
            }
        }
        if refusals.is_empty() {
            return Ok(None);
        }
        if news {
            findings.extend(aggregate(child, refusals));
        }
        Ok(Some(Admitted {
            events,
            audit,
            hold: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertId, ConditionKind, EventId, Hlc, Severity, Timestamp};
    use vigil_store::BindingSource;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("node")
    }

    fn site(s: &str) -> SitePath {
        SitePath::new(s).expect("site")
    }

    fn bound(node: &str, s: &str, via: Option<&str>) -> (NodeId, NodeBinding) {
        (
            id(node),
            NodeBinding {
                node: id(node),
                site: site(s),
                source: if via.is_some() {
                    BindingSource::Reported
                } else {
                    BindingSource::Enrolled
                },
                via: via.map(id),
                parent: via.map(id),
                kind: match via {
                    Some(_) => None,
                    None if node.starts_with("hub") => Some(NodeKind::Hub),
                    None => Some(NodeKind::Gateway),
                },
                updated_at: Timestamp::from_millis(0),
            },
        )
    }

    /// This county hub: gateways X and Y enrolled here; city-like child H with gw-h1 below.
    fn held() -> HashMap<NodeId, NodeBinding> {
        [
            bound("gw-x", "m/p/fx", None),
            bound("gw-y", "m/p/fy", None),
            bound("hub-h", "m/p/h", None),
            bound("gw-h1", "m/p/h/f1", Some("hub-h")),
        ]
        .into_iter()
        .collect()
    }

    fn raise(origin: &str, key_origin: &str, at: &str) -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([1; 16]),
            alert: AlertId::from_bytes([2; 16]),
            origin: id(origin),
            hlc: Hlc::new(1, 0),
            actor: Actor::System,
            body: AlertEventBody::Raised {
                key: AlertKey::new(
                    id(key_origin),
                    "fence",
                    ConditionKind::new("alarm").expect("kind"),
                )
                .expect("key"),
                site: site(at),
                severity: Severity::Critical,
                message: "m".into(),
                value: None,
                at: Timestamp::from_millis(1),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
            clamped_from: None,
        }
    }

    fn ack(origin: &str) -> AlertEvent {
        AlertEvent {
            body: AlertEventBody::Acknowledged { comment: None },
            ..raise(origin, origin, "m")
        }
    }

    fn reason(v: Verdict) -> FindingReason {
        match v {
            Verdict::Refuse(reason, _) => reason,
            Verdict::Admit { .. } => panic!("admitted"),
            Verdict::Wait(what) => panic!("waits: {what}"),
        }
    }

    #[test]
    fn a_child_raises_only_at_its_sites_as_itself_or_below() {
        let held = held();
        let this = id("county");
        let x = id("gw-x");
        let judge = Judge {
            this: &this,
            ancestors: &[],
            child: &x,
            child_site: Some(&site("m/p/fx")),
            bindings: &held,
        };
        let new = AlertVia::Unknown;
        assert_eq!(
            judge.event(&raise("gw-x", "gw-x", "m/p/fx/zone"), &new),
            Verdict::Admit { tie: true }
        );
        assert_eq!(
            reason(judge.event(&raise("gw-x", "gw-x", "m/p/fy"), &new)),
            FindingReason::SiteOutsideBinding
        );
        assert_eq!(
            reason(judge.event(&raise("gw-x", "gw-x", "m/p"), &new)),
            FindingReason::SiteOutsideBinding
        );
        // Another direct child's id, this hub's own, a node bound through another child.
        for other in ["gw-y", "county", "gw-h1"] {
            assert_eq!(
                reason(judge.event(&raise(other, other, "m/p/fx"), &new)),
                FindingReason::ForeignOrigin,
                "{other}"
            );
            assert_eq!(
                reason(judge.event(&raise("gw-x", other, "m/p/fx"), &new)),
                FindingReason::ForeignOrigin,
                "{other}"
            );
        }
        // A node not bound here, an ancestor of this hub: a gateway speaks only as itself.
        for other in ["gw-new", "ministry"] {
            assert_eq!(
                reason(judge.event(&raise(other, other, "m/p/fx"), &new)),
                FindingReason::ForeignOrigin,
                "{other}"
            );
            assert_eq!(
                reason(judge.event(&raise("gw-x", other, "m/p/fx"), &new)),
                FindingReason::ForeignOrigin,
                "{other}"
            );
            assert_eq!(
                reason(judge.event(&ack(other), &AlertVia::Child(x.clone()))),
                FindingReason::ForeignOrigin,
                "{other}"
            );
        }
        // An alert that came through another child.
        let ys = AlertVia::Child(id("gw-y"));
        assert_eq!(
            reason(judge.event(&raise("gw-x", "gw-x", "m/p/fx"), &ys)),
            FindingReason::AlertNotThroughChild
        );
    }

    #[test]
    fn a_hub_child_speaks_for_the_nodes_reported_through_it_within_their_sites() {
        let held = held();
        let this = id("county");
        let h = id("hub-h");
        let judge = Judge {
            this: &this,
            ancestors: &[],
            child: &h,
            child_site: Some(&site("m/p/h")),
            bindings: &held,
        };
        let new = AlertVia::Unknown;
        assert!(judge
            .event(&raise("gw-h1", "gw-h1", "m/p/h/f1"), &new)
            .admitted());
        // Inside the child's binding but outside the origin's own.
        assert_eq!(
            reason(judge.event(&raise("gw-h1", "gw-h1", "m/p/h/f2"), &new)),
            FindingReason::SiteOutsideBinding
        );
        assert!(judge
            .event(&raise("hub-h", "hub-h", "m/p/h/f2"), &new)
            .admitted());
        // A node not bound here yet: below the hub child, within its sites.
        assert!(judge
            .event(&raise("gw-new", "gw-new", "m/p/h/f3"), &new)
            .admitted());
    }

    /// The county's parent and the hub above it are never below a hub child, though not
    /// bound here: no raise, action, key or audit record in their name.
    #[test]
    fn no_child_speaks_as_an_ancestor_of_this_hub() {
        let held = held();
        let this = id("county");
        let h = id("hub-h");
        let ancestors = [id("city"), id("ministry")];
        let judge = Judge {
            this: &this,
            ancestors: &ancestors,
            child: &h,
            child_site: Some(&site("m/p/h")),
            bindings: &held,
        };
        let new = AlertVia::Unknown;
        for ancestor in ["city", "ministry"] {
            assert_eq!(
                reason(judge.event(&raise(ancestor, ancestor, "m/p/h/f3"), &new)),
                FindingReason::AncestorOrigin,
                "{ancestor}"
            );
            // The child's own event on an alert keyed to the ancestor.
            assert_eq!(
                reason(judge.event(&raise("hub-h", ancestor, "m/p/h/f3"), &new)),
                FindingReason::AncestorOrigin
            );
            assert_eq!(
                reason(judge.event(&ack(ancestor), &AlertVia::Child(h.clone()))),
                FindingReason::AncestorOrigin
            );
            assert_eq!(
                reason(judge.audit(&audit(ancestor))),
                FindingReason::AncestorOrigin
            );
            // An alert held here, keyed to the ancestor: not the child's to act on.
            assert_eq!(
                reason(judge.event(&ack("hub-h"), &AlertVia::Untied(Some(id(ancestor))))),
                FindingReason::AlertNotThroughChild
            );
        }
        // Any other node not bound here still is below the hub child.
        assert!(judge
            .event(&raise("gw-new", "gw-new", "m/p/h/f3"), &new)
            .admitted());
    }

    fn audit(origin: &str) -> AuditEvent {
        AuditEvent {
            origin: id(origin),
            seq: 1,
            at: Timestamp::from_millis(1),
            node: origin.into(),
            actor: "cli:root".into(),
            action: "user.add".into(),
            target: "u".into(),
            details: "{}".into(),
            prev_hash: vigil_wire::AuditHash([0; 32]),
            hash: vigil_wire::AuditHash([1; 32]),
        }
    }

    #[test]
    fn audit_records_only_of_the_child_or_nodes_reported_through_it() {
        let held = held();
        let this = id("county");
        let (x, h) = (id("gw-x"), id("hub-h"));
        let gateway = Judge {
            this: &this,
            ancestors: &[],
            child: &x,
            child_site: Some(&site("m/p/fx")),
            bindings: &held,
        };
        assert!(gateway.audit(&audit("gw-x")).admitted());
        for other in ["gw-z", "ministry", "city", "county", "gw-y", "gw-h1"] {
            assert_eq!(
                reason(gateway.audit(&audit(other))),
                FindingReason::ForeignAudit,
                "{other}"
            );
        }
        let hub = Judge {
            this: &this,
            ancestors: &[],
            child: &h,
            child_site: Some(&site("m/p/h")),
            bindings: &held,
        };
        assert!(hub.audit(&audit("hub-h")).admitted());
        assert!(hub.audit(&audit("gw-h1")).admitted());
        // This hub, a node bound elsewhere here: refused for good.
        for other in ["county", "gw-x"] {
            assert_eq!(
                reason(hub.audit(&audit(other))),
                FindingReason::ForeignAudit,
                "{other}"
            );
        }
        // Not bound here at all: it waits for a binding through the hub child (the
        // group holds the batch back, for at most AUDIT_WAIT).
        assert!(matches!(hub.audit(&audit("gw-new")), Verdict::Wait(_)));
        // An ancestor never waits.
        let ancestors = [id("ministry")];
        let hub = Judge {
            ancestors: &ancestors,
            ..hub
        };
        assert_eq!(
            reason(hub.audit(&audit("ministry"))),
            FindingReason::AncestorOrigin
        );
    }

    /// The shell on a real store: a hub child's batch with an audit record of a node not
    /// bound here is held back (not applied, not acknowledged) until the node's binding is
    /// there, then applied; one that still is not bound after AUDIT_WAIT is refused for
    /// good and the rest of its batch applied.
    #[test]
    fn a_batch_waits_for_the_binding_of_a_node_its_audit_records_name_for_a_while() {
        let mut store = vigil_store::Store::open_in_memory().expect("store");
        store
            .bindings_sync_config_kinds(
                &[(id("hub-h"), site("m/p/h"), NodeKind::Hub)],
                Timestamp::from_millis(0),
            )
            .expect("bind");
        let h = id("hub-h");
        let known = KnownVias::default();
        let records = [audit("gw-new")];
        let events = [raise("hub-h", "hub-h", "m/p/h/f1")];
        let batch = vigil_store::InboundBatch {
            peer: &h,
            lane: vigil_core::Lane::Normal,
            first_seq: 1,
            events: &events,
            audit: &records,
            bodies: None,
            directives: vigil_store::InboundDirectives::None,
        };
        let run = |store: &mut vigil_store::Store| {
            let mut admission = GroupAdmission::new(id("county"), known.clone());
            let mut admit =
                |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| admission.admit(atx, b, news);
            let out = store
                .apply_batches_admitted_and_forward(&[batch], None, |_, _| None, Some(&mut admit))
                .expect("applied");
            (out, admission.findings)
        };
        let (out, findings) = run(&mut store);
        assert_eq!((out[0].batch.applied, out[0].batch.ack_upto), (0, 0));
        assert!(findings.is_empty(), "waiting is no finding: {findings:?}");
        // The binding arrives with the child's status: the resend is applied whole.
        store
            .bindings_replace_reported(
                &h,
                &[ReportedBinding {
                    node: id("gw-new"),
                    site: site("m/p/h/f2"),
                    parent: h.clone(),
                }],
                Timestamp::from_millis(1),
            )
            .expect("report");
        let (out, findings) = run(&mut store);
        assert_eq!((out[0].batch.applied, out[0].batch.ack_upto), (1, 2));
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(out[0].audit.applied, 1);

        // Another node, never reported: it waits, and past AUDIT_WAIT it is refused.
        let records = [audit("gw-never")];
        let events = [ack("hub-h")];
        let batch = vigil_store::InboundBatch {
            first_seq: 3,
            events: &events,
            audit: &records,
            ..batch
        };
        let run = |store: &mut vigil_store::Store| {
            let mut admission = GroupAdmission::new(id("county"), known.clone());
            let mut admit =
                |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| admission.admit(atx, b, news);
            let out = store
                .apply_batches_admitted_and_forward(&[batch], None, |_, _| None, Some(&mut admit))
                .expect("applied");
            (out, admission.findings)
        };
        let (out, _) = run(&mut store);
        assert_eq!(out[0].batch.ack_upto, 2, "held back");
        if let Some(long_ago) = Instant::now().checked_sub(AUDIT_WAIT) {
            known
                .memory()
                .waits
                .insert((h.clone(), id("gw-never")), long_ago);
            let (out, findings) = run(&mut store);
            assert_eq!(out[0].batch.ack_upto, 4, "applied without the record");
            assert_eq!(out[0].audit.applied, 0);
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].reason, FindingReason::ForeignAudit);
            assert!(
                findings[0].detail.contains("gw-never"),
                "{}",
                findings[0].detail
            );
            // A later record of it is refused at once: the lane is held up once.
            let mut later = audit("gw-never");
            later.seq = 2;
            let records = [later];
            let batch = vigil_store::InboundBatch {
                first_seq: 5,
                events: &[],
                audit: &records,
                ..batch
            };
            let mut admission = GroupAdmission::new(id("county"), known.clone());
            let mut admit =
                |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| admission.admit(atx, b, news);
            let out = store
                .apply_batches_admitted_and_forward(&[batch], None, |_, _| None, Some(&mut admit))
                .expect("applied");
            assert_eq!(out[0].batch.ack_upto, 5);
            assert_eq!(admission.findings[0].reason, FindingReason::ForeignAudit);
        }
    }

    #[test]
    fn a_gateway_child_reports_no_bindings() {
        let held = held();
        let this = id("county");
        let x = id("gw-x");
        let (ok, refused) = judge_reported(
            &this,
            &x,
            Some(&site("m/p/fx")),
            &held,
            &[BindingStatus {
                node: id("gw-z"),
                site: site("m/p/fx/z"),
                parent: id("gw-x"),
            }],
        );
        assert!(ok.is_empty());
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, FindingReason::ForeignBinding);
        // An empty report from a gateway is no finding.
        let (ok, refused) = judge_reported(&this, &x, Some(&site("m/p/fx")), &held, &[]);
        assert!(ok.is_empty() && refused.is_empty());
    }

    #[test]
    fn actions_only_on_alerts_that_came_through_the_child() {
        let held = held();
        let this = id("county");
        let x = id("gw-x");
        let judge = Judge {
            this: &this,
            ancestors: &[],
            child: &x,
            child_site: Some(&site("m/p/fx")),
            bindings: &held,
        };
        let mine = AlertVia::Child(id("gw-x"));
        assert_eq!(
            judge.event(&ack("gw-x"), &mine),
            Verdict::Admit { tie: false }
        );
        assert_eq!(
            reason(judge.event(&ack("gw-x"), &AlertVia::Child(id("gw-y")))),
            FindingReason::AlertNotThroughChild
        );
        assert_eq!(
            reason(judge.event(&ack("gw-y"), &mine)),
            FindingReason::ForeignOrigin
        );
        // Not held here: accepted and tied to the child.
        assert_eq!(
            judge.event(&ack("gw-x"), &AlertVia::Unknown),
            Verdict::Admit { tie: true }
        );
        // Held here through no child: only when its key's origin is the child's.
        assert_eq!(
            judge.event(&ack("gw-x"), &AlertVia::Untied(Some(id("gw-x")))),
            Verdict::Admit { tie: true }
        );
        for untied in [
            AlertVia::Untied(Some(id("county"))),
            AlertVia::Untied(Some(id("gw-y"))),
            AlertVia::Untied(None),
        ] {
            assert_eq!(
                reason(judge.event(&ack("gw-x"), &untied)),
                FindingReason::AlertNotThroughChild
            );
        }
    }

    #[test]
    fn an_unbound_child_gets_nothing_admitted() {
        let held = held();
        let this = id("county");
        let z = id("gw-z");
        let judge = Judge {
            this: &this,
            ancestors: &[],
            child: &z,
            child_site: None,
            bindings: &held,
        };
        assert_eq!(
            reason(judge.event(&raise("gw-z", "gw-z", "m"), &AlertVia::Unknown)),
            FindingReason::Unbound
        );
        let (ok, refused) = judge_reported(
            &this,
            &z,
            None,
            &held,
            &[BindingStatus {
                node: id("a"),
                site: site("m"),
                parent: id("gw-z"),
            }],
        );
        assert!(ok.is_empty());
        assert_eq!(refused[0].0, FindingReason::Unbound);
    }

    #[test]
    fn reported_bindings_must_lie_inside_the_childs_and_name_no_node_bound_elsewhere() {
        let held = held();
        let this = id("county");
        let h = id("hub-h");
        let b = |node: &str, s: &str, parent: &str| BindingStatus {
            node: id(node),
            site: site(s),
            parent: id(parent),
        };
        let (ok, refused) = judge_reported(
            &this,
            &h,
            Some(&site("m/p/h")),
            &held,
            &[
                b("gw-h1", "m/p/h/f1", "hub-h"),
                b("sub", "m/p/h/s", "hub-h"),
                b("gw-s1", "m/p/h/s/f", "sub"),
                b("gw-out", "m/p/fz", "hub-h"),
                b("gw-x", "m/p/h/f9", "hub-h"),
                b("county", "m/p/h/f8", "hub-h"),
                b("gw-orphan", "m/p/h/f7", "nobody"),
            ],
        );
        let names: Vec<&str> = ok.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(names, ["gw-h1", "sub", "gw-s1"]);
        assert_eq!(refused.len(), 4);
        assert!(refused
            .iter()
            .all(|(r, _)| *r == FindingReason::ForeignBinding));
    }

    #[test]
    fn a_report_past_the_cap_is_refused_whole_and_a_large_one_is_judged_linearly() {
        let held = held();
        let (this, h) = (id("county"), id("hub-h"));
        let entries = |n: usize| -> Vec<BindingStatus> {
            (0..n)
                .map(|i| BindingStatus {
                    node: id(&format!("gw-{i}")),
                    site: site(&format!("m/p/h/f{i}")),
                    // Each enrolled with the one before it: every parent lookup is a hit
                    // in the report itself (quadratic before the set).
                    parent: if i == 0 {
                        h.clone()
                    } else {
                        id(&format!("gw-{}", i - 1))
                    },
                })
                .collect()
        };
        let (ok, refused) = judge_reported(
            &this,
            &h,
            Some(&site("m/p/h")),
            &held,
            &entries(MAX_REPORTED_BINDINGS),
        );
        assert_eq!((ok.len(), refused.len()), (MAX_REPORTED_BINDINGS, 0));
        let (ok, refused) = judge_reported(
            &this,
            &h,
            Some(&site("m/p/h")),
            &held,
            &entries(MAX_REPORTED_BINDINGS + 1),
        );
        assert!(ok.is_empty());
        assert_eq!(refused.len(), 1, "one finding, not one per entry");
        assert_eq!(refused[0].0, FindingReason::ForeignBinding);
    }

    /// The shell on a real store: a group with an unbound child's raise (held back) and a
    /// bound child's raise of the same alert; the next group, another child's ack of it.
    #[test]
    fn a_group_ties_each_alert_to_the_child_it_came_through() {
        let mut store = vigil_store::Store::open_in_memory().expect("store");
        store
            .bindings_sync_config(
                &[(id("gw-x"), site("m/p/fx")), (id("gw-y"), site("m/p/fy"))],
                Timestamp::from_millis(0),
            )
            .expect("bind");
        let (z, x, y) = (id("gw-z"), id("gw-x"), id("gw-y"));
        let from_z = [raise("gw-z", "gw-z", "m/p/fx")];
        let mut from_x = [raise("gw-x", "gw-x", "m/p/fx")];
        from_x[0].id = EventId::from_bytes([9; 16]);
        let batch = |peer, events| vigil_store::InboundBatch {
            peer,
            lane: vigil_core::Lane::Critical,
            first_seq: 1,
            events,
            audit: &[],
            bodies: None,
            directives: vigil_store::InboundDirectives::None,
        };
        let mut run = |batches: &[vigil_store::InboundBatch<'_>]| {
            let mut admission = GroupAdmission::new(id("county"), KnownVias::default());
            let mut admit =
                |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| admission.admit(atx, b, news);
            let out = store
                .apply_batches_admitted_and_forward(batches, None, |_, _| None, Some(&mut admit))
                .expect("applied");
            (out, admission.findings)
        };
        let (out, findings) = run(&[batch(&z, &from_z[..]), batch(&x, &from_x[..])]);
        // The unbound child's batch is held back: not applied, not acknowledged.
        assert_eq!((out[0].batch.applied, out[0].batch.ack_upto), (0, 0));
        assert_eq!(out[1].batch.applied, 1);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].reason, FindingReason::Unbound);
        let mut ack = ack("gw-y");
        ack.id = EventId::from_bytes([8; 16]);
        let from_y = [ack];
        let (out, findings) = run(&[batch(&y, &from_y[..])]);
        assert_eq!((out[0].batch.applied, out[0].batch.ack_upto), (0, 1));
        assert_eq!(findings[0].reason, FindingReason::AlertNotThroughChild);
        assert_eq!(
            store.alert_via(&from_x[0].alert).expect("read"),
            Some(id("gw-x"))
        );
    }

    #[test]
    fn audit_records_only_of_the_child_and_below_never_this_hubs() {
        let held = held();
        let this = id("county");
        let x = id("gw-x");
        let judge = Judge {
            this: &this,
            ancestors: &[],
            child: &x,
            child_site: Some(&site("m/p/fx")),
            bindings: &held,
        };
        let record = |origin: &str| AuditEvent {
            origin: id(origin),
            seq: 1,
            at: Timestamp::from_millis(0),
            node: origin.into(),
            actor: "a".into(),
            action: "x".into(),
            target: "t".into(),
            details: "{}".into(),
            prev_hash: vigil_wire::AuditHash([0; 32]),
            hash: vigil_wire::AuditHash([0; 32]),
        };
        assert!(judge.audit(&record("gw-x")).admitted());
        assert_eq!(
            reason(judge.audit(&record("gw-y"))),
            FindingReason::ForeignAudit
        );
        assert_eq!(
            reason(judge.audit(&record("county"))),
            FindingReason::ForeignAudit
        );
    }
}
