//! Directives down the tree (docs/ARCHITECTURE.md#directives): what this node issued or
//! received from its parent, what it did with each, and the acknowledgements of its subtree.
//!
//! - [`Store::directive_issue`]: an operator at this hub issues a directive (audited in the
//!   same transaction). It is then *pending* here like one received from the parent.
//! - [`apply_in`] (called by the inbox in the transaction that commits a batch and advances the
//!   cursor, so the batch's ack still means "committed"): a directive from the parent is stored
//!   (pending); an acknowledgement from a child is stored if the directive was passed to that
//!   child, and queued up (`critical` lane of `forward_link`) unless this node issued it.
//!   Records travelling the wrong way are refused (not stored, logged).
//! - [`Store::directive_handle`]: the owner's part, in one transaction: the directive passed
//!   on to the children given (their downlink outboxes, `critical` lane), this node's own
//!   acknowledgement stored and queued up, the directive marked handled, and audited. A crash
//!   before it leaves the directive pending: the owner does it again after a restart.
//! - [`Store::directives`] and [`Store::directive`]: what the API shows, with each node's
//!   acknowledgement and the nodes still expected ([`DirectiveView::missing`]).

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};
use tracing::warn;
use vigil_core::{EventId, Lane, NodeId, SitePath, Timestamp};
use vigil_wire::{Directive, DirectiveAck, DirectiveOutcome, DirectiveRecord, LinkEvent};

use crate::audit::{append_in as audit_append_in, AuditEntry};
use crate::error::{Result, SqlContext, StoreError};
use crate::outbox::append_in;
use crate::store::Store;

/// The directive records of one inbound batch, with the side of the link they came from:
/// directives are taken only from the parent, acknowledgements only from a child.
#[derive(Debug, Clone, Copy, Default)]
pub enum InboundDirectives<'a> {
    /// The batch holds none.
    #[default]
    None,
    /// From this node's parent (a downlink batch).
    FromParent(&'a [DirectiveRecord]),
    /// From a child (an uplink batch).
    FromChild(&'a [DirectiveRecord]),
}

impl InboundDirectives<'_> {
    /// How many records (they take sequence numbers like the batch's other records).
    pub fn len(&self) -> usize {
        match self {
            InboundDirectives::None => 0,
            InboundDirectives::FromParent(r) | InboundDirectives::FromChild(r) => r.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`apply_in`] did with a batch's directive records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DirectivesApplied {
    /// Records new here.
    pub stored: usize,
    /// Records already here (a resend).
    pub duplicates: usize,
    /// Records refused: the wrong way, or an acknowledgement of a directive not passed to
    /// that child (or for a node it did not pass it to).
    pub refused: usize,
    /// What the first refused record was and why, in words.
    pub refused_detail: Option<String>,
}

impl DirectivesApplied {
    fn refuse(&mut self, detail: impl FnOnce() -> String) {
        if self.refused_detail.is_none() {
            self.refused_detail = Some(detail());
        }
        self.refused += 1;
    }
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

fn link_event(record: LinkEvent) -> Result<Vec<u8>> {
    serde_json::to_vec(&record).map_err(|source| StoreError::Encode {
        what: "a directive link event",
        source,
    })
}

fn insert_directive(
    tx: &Connection,
    directive: &Directive,
    local: bool,
    from: Option<&NodeId>,
    now: Timestamp,
) -> Result<bool> {
    let record = encode(directive, "a directive")?;
    let n = tx
        .prepare_cached(
            "INSERT INTO directives (id, origin, target, kind, issued_at, deadline, record, local,
                                     received_from, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                directive.id.as_bytes(),
                directive.origin.as_str(),
                directive.target.as_str(),
                directive.body.kind(),
                directive.issued_at.as_millis(),
                directive.deadline.as_millis(),
                record,
                local,
                from.map(NodeId::as_str),
                now.as_millis(),
            ])
        })
        .op("store a directive")?;
    Ok(n == 1)
}

fn insert_ack(
    tx: &Connection,
    ack: &DirectiveAck,
    via: Option<&NodeId>,
    now: Timestamp,
) -> Result<bool> {
    let relayed = encode(&ack.relayed_to, "a directive acknowledgement's children")?;
    let n = tx
        .prepare_cached(
            "INSERT INTO directive_acks (directive, node, via, outcome, reason, at, received_at,
                                         relayed_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (directive, node) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                ack.directive.as_bytes(),
                ack.node.as_str(),
                via.map(NodeId::as_str),
                ack.outcome.as_str(),
                ack.reason,
                ack.at.as_millis(),
                now.as_millis(),
                relayed,
            ])
        })
        .op("store a directive acknowledgement")?;
    Ok(n == 1)
}

/// The most nodes one acknowledgement may say it passed a directive to; a longer list is
/// refused whole.
pub const MAX_RELAYED_TO: usize = 10_000;

/// Whether `node`'s binding here was reported through the direct child `peer` (a node in
/// `peer`'s subtree, docs/ARCHITECTURE.md#site-bindings-and-admission). A gateway child
/// reports none, so it passes a directive to no one.
fn reported_through(tx: &Connection, node: &NodeId, peer: &NodeId) -> Result<bool> {
    // A gateway child passes a directive to nobody; a hub child to the nodes reported
    // through it, or to a node not bound here at all (its binding travels up with the
    // child's next status and may not be here yet — as for events, docs/ARCHITECTURE.md#site-bindings-and-admission),
    // never to a node bound here otherwise (a direct child, one reported through another
    // child).
    let peer_is_hub = tx
        .prepare_cached(
            "SELECT 1 FROM node_bindings WHERE node = ?1 AND via IS NULL AND kind = 'hub'",
        )
        .and_then(|mut stmt| stmt.query_row([peer.as_str()], |_| Ok(())).optional())
        .op("look up a child's kind")?
        .is_some();
    if !peer_is_hub {
        return Ok(false);
    }
    let via: Option<Option<String>> = tx
        .prepare_cached("SELECT via FROM node_bindings WHERE node = ?1")
        .and_then(|mut stmt| stmt.query_row([node.as_str()], |r| r.get(0)).optional())
        .op("look up a node's binding through a child")?;
    Ok(match via {
        None => true,
        Some(via) => via.as_deref() == Some(peer.as_str()),
    })
}

/// Whether a node below `peer` was passed the directive `ack` acknowledges: named in the
/// `relayed_to` of an acknowledgement that came through `peer` (a child speaks only for the
/// nodes it passed the directive to, and theirs, hop by hop).
fn relayed_by(tx: &Connection, ack: &DirectiveAck, peer: &NodeId) -> Result<bool> {
    let lists: Vec<String> = tx
        .prepare_cached(
            "SELECT relayed_to FROM directive_acks
             WHERE directive = ?1 AND via = ?2 AND relayed_to != '[]'",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![ack.directive.as_bytes(), peer.as_str()], |r| {
                r.get(0)
            })?
            .collect()
        })
        .op("read the nodes a directive was passed to")?;
    Ok(lists.iter().any(|list| {
        serde_json::from_str::<Vec<NodeId>>(list).is_ok_and(|nodes| nodes.contains(&ack.node))
    }))
}

/// Applies a batch's directive records from `peer` inside the inbox's transaction (see the
/// module docs). `forward_link` is where acknowledgements from the subtree go up (`parent`),
/// when this node has one; returns the sequence numbers they got there (`critical` lane).
pub(crate) fn apply_in(
    tx: &Connection,
    peer: &NodeId,
    records: InboundDirectives<'_>,
    forward_link: Option<&str>,
) -> Result<(DirectivesApplied, Vec<u64>)> {
    let mut out = DirectivesApplied::default();
    let now = Timestamp::now();
    let (records, from_parent) = match records {
        InboundDirectives::None => return Ok((out, Vec::new())),
        InboundDirectives::FromParent(r) => (r, true),
        InboundDirectives::FromChild(r) => (r, false),
    };
    let mut forward = Vec::new();
    for record in records {
        match (record, from_parent) {
            (DirectiveRecord::Directive(directive), true) => {
                if insert_directive(tx, directive, false, Some(peer), now)? {
                    out.stored += 1;
                } else {
                    out.duplicates += 1;
                }
            }
            (DirectiveRecord::Ack(ack), false) => {
                let row: Option<bool> = tx
                    .prepare_cached(
                        "SELECT d.local FROM directives d JOIN directive_deliveries v
                           ON v.directive = d.id AND v.child = ?2 WHERE d.id = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![ack.directive.as_bytes(), peer.as_str()], |r| {
                            r.get(0)
                        })
                        .optional()
                    })
                    .op("look up a directive's delivery")?;
                let Some(local) = row else {
                    warn!(%peer, directive = %ack.directive, node = %ack.node,
                          "acknowledgement of a directive not passed to this child; refused");
                    out.refuse(|| {
                        format!(
                            "an acknowledgement (node {}) of directive {}, which was not passed to this child",
                            ack.node, ack.directive
                        )
                    });
                    continue;
                };
                if ack.node != *peer && !relayed_by(tx, ack, peer)? {
                    warn!(%peer, directive = %ack.directive, node = %ack.node,
                          "acknowledgement for a node the child did not pass the directive to; refused");
                    out.refuse(|| {
                        format!(
                            "an acknowledgement of directive {} for node {}, which the child did not pass it to",
                            ack.directive, ack.node
                        )
                    });
                    continue;
                }
                // The nodes it says it passed the directive to: only nodes of its own subtree
                // (reported through it here); the others are dropped from the list.
                if ack.relayed_to.len() > MAX_RELAYED_TO {
                    warn!(%peer, directive = %ack.directive, node = %ack.node,
                          relayed_to = ack.relayed_to.len(),
                          "acknowledgement naming too many nodes it passed the directive to; refused");
                    out.refuse(|| {
                        format!(
                            "an acknowledgement of directive {} for node {} naming {} nodes it passed it to (at most {MAX_RELAYED_TO})",
                            ack.directive, ack.node, ack.relayed_to.len()
                        )
                    });
                    continue;
                }
                let (mut inside, mut foreign) = (Vec::new(), Vec::new());
                for n in &ack.relayed_to {
                    if reported_through(tx, n, peer)? {
                        inside.push(n.clone());
                    } else {
                        foreign.push(n);
                    }
                }
                let kept;
                let ack = if foreign.is_empty() {
                    ack
                } else {
                    warn!(%peer, directive = %ack.directive, node = %ack.node,
                          foreign = foreign.len(),
                          "acknowledgement naming nodes outside the child's subtree as passed the directive; those refused");
                    out.refuse(|| {
                        format!(
                            "an acknowledgement of directive {} for node {} says it was passed to {} node(s) not bound here through this child (first: {})",
                            ack.directive, ack.node, foreign.len(), foreign[0]
                        )
                    });
                    kept = DirectiveAck {
                        relayed_to: inside,
                        ..ack.clone()
                    };
                    &kept
                };
                if !insert_ack(tx, ack, Some(peer), now)? {
                    out.duplicates += 1;
                    continue;
                }
                out.stored += 1;
                if !local {
                    forward.push((
                        Lane::Critical,
                        link_event(LinkEvent::DirectiveAck(ack.clone()))?,
                    ));
                }
            }
            (record, _) => {
                let kind = match record {
                    DirectiveRecord::Directive(_) => "directive",
                    DirectiveRecord::Ack(_) => "directive_ack",
                };
                warn!(%peer, kind, from_parent,
                      "a directive record travelling the wrong way on the link; refused");
                out.refuse(|| {
                    let way = if from_parent { "down" } else { "up" };
                    format!("a {kind} record sent {way} (it travels the other way)")
                });
            }
        }
    }
    let seqs = match forward_link {
        Some(link) if !forward.is_empty() => append_in(tx, link, forward)?,
        _ => Vec::new(),
    };
    Ok((out, seqs))
}

/// A directive as this node holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectiveView {
    /// The directive.
    pub directive: Directive,
    /// Issued here.
    pub local: bool,
    /// The parent it came from (`None` when issued here).
    pub received_from: Option<NodeId>,
    /// When it was stored here.
    pub received_at: Timestamp,
    /// Whether this node has done its part (passed it on, applied it).
    pub handled: bool,
    /// The children it was passed to.
    pub delivered_to: Vec<NodeId>,
    /// Every acknowledgement held here, by node.
    pub acks: Vec<StoredAck>,
}

/// One acknowledgement as stored here.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAck {
    /// The acknowledgement.
    pub ack: DirectiveAck,
    /// The child it came through (`None`: this node's own).
    pub via: Option<NodeId>,
    /// When it arrived here.
    pub received_at: Timestamp,
}

impl DirectiveView {
    /// The nodes whose acknowledgements are expected here and not in: the children it was
    /// passed to and the children each acknowledging hub passed it to, less those that
    /// acknowledged. Flag them as missing once the deadline has passed.
    pub fn missing(&self) -> Vec<NodeId> {
        let acked: BTreeSet<&NodeId> = self.acks.iter().map(|a| &a.ack.node).collect();
        let expected: BTreeSet<&NodeId> = self
            .delivered_to
            .iter()
            .chain(self.acks.iter().flat_map(|a| a.ack.relayed_to.iter()))
            .collect();
        expected
            .into_iter()
            .filter(|n| !acked.contains(n))
            .cloned()
            .collect()
    }

    /// Whether `scope` sees it: its target and the scope intersect.
    pub fn in_scope(&self, scope: &SitePath) -> bool {
        self.directive.target.is_within(scope) || scope.is_within(&self.directive.target)
    }
}

/// What this node did with a directive ([`Store::directive_handle`]).
#[derive(Debug, Clone)]
pub struct Handling<'a> {
    /// The children to pass it on to, each with its downlink outbox.
    pub children: &'a [(NodeId, String)],
    /// This node's acknowledgement (`None` at the hub that issued it).
    pub ack: Option<DirectiveAck>,
    /// The outbox it goes up on (`parent`), when this node has a parent.
    pub ack_link: Option<&'a str>,
    /// The audit record of it.
    pub audit: AuditEntry,
}

fn corrupt(id: &[u8], detail: String) -> StoreError {
    StoreError::CorruptValue {
        table: "directives",
        row: format!("{id:02x?}"),
        detail,
    }
}

impl Store {
    /// Stores `directive`, issued here by an operator, with its audit record, in one
    /// transaction. It is then pending ([`Store::directives_pending`]). Issuing the same id
    /// twice stores it once (the second call returns `false`).
    pub fn directive_issue(&mut self, directive: &Directive, audit: &AuditEntry) -> Result<bool> {
        let tx = self.write_tx("begin issuing a directive")?;
        let new = insert_directive(&tx, directive, true, None, Timestamp::now())?;
        if new {
            audit_append_in(&tx, audit)?;
        }
        tx.commit().op("commit a directive")?;
        Ok(new)
    }

    /// The directives this node has not yet handled, oldest first.
    pub fn directives_pending(&self) -> Result<Vec<Directive>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, record FROM directives WHERE handled = 0 ORDER BY received_at, id",
            )
            .op("list pending directives")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .op("list pending directives")?;
        let mut out = Vec::new();
        for row in rows {
            let (id, record) = row.op("read a pending directive")?;
            out.push(serde_json::from_str(&record).map_err(|e| corrupt(&id, e.to_string()))?);
        }
        Ok(out)
    }

    /// Does this node's part for `directive`, in one transaction (see [`Handling`] and the
    /// module docs); nothing if it is unknown or already handled (returns `false`).
    pub fn directive_handle(
        &mut self,
        directive: &Directive,
        handling: &Handling<'_>,
    ) -> Result<bool> {
        let tx = self.write_tx("begin handling a directive")?;
        let handled: Option<bool> = tx
            .prepare_cached("SELECT handled FROM directives WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([directive.id.as_bytes()], |r| r.get(0))
                    .optional()
            })
            .op("read a directive")?;
        if handled != Some(false) {
            return Ok(false);
        }
        let payload = link_event(LinkEvent::Directive(directive.clone()))?;
        for (child, link) in handling.children {
            append_in(&tx, link, [(Lane::Critical, &payload)])?;
            tx.prepare_cached(
                "INSERT INTO directive_deliveries (directive, child) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![directive.id.as_bytes(), child.as_str()]))
            .op("record a directive's delivery")?;
        }
        if let Some(ack) = &handling.ack {
            insert_ack(&tx, ack, None, Timestamp::now())?;
            if let Some(link) = handling.ack_link {
                let payload = link_event(LinkEvent::DirectiveAck(ack.clone()))?;
                append_in(&tx, link, [(Lane::Critical, payload)])?;
            }
        }
        tx.prepare_cached("UPDATE directives SET handled = 1, own_outcome = ?2 WHERE id = ?1")
            .and_then(|mut s| {
                s.execute(params![
                    directive.id.as_bytes(),
                    handling.ack.as_ref().map(|a| a.outcome.as_str())
                ])
            })
            .op("mark a directive handled")?;
        audit_append_in(&tx, &handling.audit)?;
        tx.commit().op("commit a directive's handling")?;
        Ok(true)
    }

    /// One directive with its deliveries and acknowledgements.
    pub fn directive(&self, id: &EventId) -> Result<Option<DirectiveView>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT record, local, received_from, received_at, handled FROM directives
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id.as_bytes()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })
                .optional()
            })
            .op("read a directive")?;
        let Some((record, local, from, received_at, handled)) = row else {
            return Ok(None);
        };
        let bad = |e: String| corrupt(id.as_bytes(), e);
        let directive: Directive = serde_json::from_str(&record).map_err(|e| bad(e.to_string()))?;
        let received_from = from
            .map(NodeId::new)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let mut delivered_to = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT child FROM directive_deliveries WHERE directive = ?1 ORDER BY child",
                )
                .op("read a directive's deliveries")?;
            let rows = stmt
                .query_map([id.as_bytes()], |r| r.get::<_, String>(0))
                .op("read a directive's deliveries")?;
            for row in rows {
                let child = row.op("read a directive's delivery")?;
                delivered_to.push(NodeId::new(child).map_err(|e| bad(e.to_string()))?);
            }
        }
        let mut acks = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT node, via, outcome, reason, at, received_at, relayed_to
                     FROM directive_acks WHERE directive = ?1 ORDER BY node",
                )
                .op("read a directive's acknowledgements")?;
            let rows = stmt
                .query_map([id.as_bytes()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .op("read a directive's acknowledgements")?;
            for row in rows {
                let (node, via, outcome, reason, at, received, relayed) =
                    row.op("read a directive acknowledgement")?;
                let ack = DirectiveAck {
                    directive: *id,
                    node: NodeId::new(node).map_err(|e| bad(e.to_string()))?,
                    outcome: DirectiveOutcome::from_name(&outcome)
                        .ok_or_else(|| bad(format!("unknown outcome {outcome:?}")))?,
                    reason,
                    at: Timestamp::from_millis(at),
                    relayed_to: serde_json::from_str(&relayed).map_err(|e| bad(e.to_string()))?,
                };
                acks.push(StoredAck {
                    ack,
                    via: via
                        .map(NodeId::new)
                        .transpose()
                        .map_err(|e| bad(e.to_string()))?,
                    received_at: Timestamp::from_millis(received),
                });
            }
        }
        Ok(Some(DirectiveView {
            directive,
            local,
            received_from,
            received_at: Timestamp::from_millis(received_at),
            handled,
            delivered_to,
            acks,
        }))
    }

    /// The most recent directives (by issue time, newest first), at most `limit`, that
    /// `keep` selects (e.g. by the reader's scope).
    pub fn directives(
        &self,
        limit: usize,
        keep: impl Fn(&DirectiveView) -> bool,
    ) -> Result<Vec<DirectiveView>> {
        let ids: Vec<Vec<u8>> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM directives ORDER BY issued_at DESC, id DESC")
                .op("list directives")?;
            let rows = stmt
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .op("list directives")?;
            rows.collect::<rusqlite::Result<_>>()
                .op("list directives")?
        };
        let mut out = Vec::new();
        for id in ids {
            if out.len() >= limit {
                break;
            }
            let bytes: [u8; 16] = id
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(&id, "id is not 16 bytes".into()))?;
            if let Some(view) = self.directive(&EventId::from_bytes(bytes))? {
                if keep(&view) {
                    out.push(view);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use vigil_wire::DirectiveBody;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    fn directive() -> Directive {
        Directive {
            id: EventId::from_bytes([7; 16]),
            origin: node("county"),
            target: SitePath::new("m/p/c/county").expect("valid"),
            actor: "sup".into(),
            issued_at: Timestamp::from_millis(1_000),
            deadline: Timestamp::from_millis(61_000),
            body: DirectiveBody::Posture {
                until: Timestamp::from_millis(3_600_000),
            },
        }
    }

    fn audit(action: &str) -> AuditEntry {
        AuditEntry {
            at: Timestamp::from_millis(1_000),
            node: "county".into(),
            actor: "sup".into(),
            action: action.into(),
            target: "d".into(),
            details: serde_json::Value::Null,
        }
    }

    fn ack(of: &str, outcome: DirectiveOutcome, relayed: &[&str]) -> DirectiveAck {
        DirectiveAck {
            directive: directive().id,
            node: node(of),
            outcome,
            reason: None,
            at: Timestamp::from_millis(2_000),
            relayed_to: relayed.iter().map(|n| node(n)).collect(),
        }
    }

    fn apply(store: &mut Store, peer: &str, records: InboundDirectives<'_>) -> DirectivesApplied {
        let tx = store.write_tx("test").expect("tx");
        let (out, _) = apply_in(&tx, &node(peer), records, Some("parent")).expect("apply");
        tx.commit().expect("commit");
        out
    }

    #[test]
    fn issue_hand_down_and_collect_acknowledgements() {
        let mut store = Store::open_in_memory().expect("open");
        // city-hub, a hub child, reports gw-1 below it: it may say it passed gw-1 the
        // directive.
        let site = |s: &str| SitePath::new(s).expect("valid");
        store
            .bindings_sync_config_kinds(
                &[(node("city-hub"), site("m/p/c"), crate::NodeKind::Hub)],
                Timestamp::from_millis(1),
            )
            .expect("config");
        store
            .bindings_replace_reported(
                &node("city-hub"),
                &[crate::ReportedBinding {
                    node: node("gw-1"),
                    site: site("m/p/c/k"),
                    parent: node("city-hub"),
                }],
                Timestamp::from_millis(1),
            )
            .expect("reported");
        let d = directive();
        assert!(store
            .directive_issue(&d, &audit("directive.issue"))
            .expect("issue"));
        assert!(!store
            .directive_issue(&d, &audit("directive.issue"))
            .expect("again"));
        assert_eq!(
            store.directives_pending().expect("pending"),
            vec![d.clone()]
        );
        let children = [(node("city-hub"), "child:city-hub".to_owned())];
        let handling = Handling {
            children: &children,
            ack: None,
            ack_link: None,
            audit: audit("directive.send"),
        };
        assert!(store.directive_handle(&d, &handling).expect("handle"));
        assert!(!store.directive_handle(&d, &handling).expect("handled once"));
        assert!(store.directives_pending().expect("pending").is_empty());
        let queued = store
            .outbox_read("child:city-hub", Lane::Critical, 0, 10, 1 << 20)
            .expect("read");
        assert_eq!(queued.len(), 1);
        let sent: LinkEvent = serde_json::from_slice(&queued[0].payload).expect("link event");
        assert_eq!(sent, LinkEvent::Directive(d.clone()));

        let view = store.directive(&d.id).expect("read").expect("there");
        assert_eq!(view.missing(), vec![node("city-hub")]);

        // The child hub acknowledges and names its child; that one is then expected.
        let records = [DirectiveRecord::Ack(ack(
            "city-hub",
            DirectiveOutcome::Applied,
            &["gw-1"],
        ))];
        let out = apply(
            &mut store,
            "city-hub",
            InboundDirectives::FromChild(&records),
        );
        assert_eq!(out.stored, 1);
        let view = store.directive(&d.id).expect("read").expect("there");
        assert_eq!(view.missing(), vec![node("gw-1")]);
        // Issued here: acknowledgements stop here, nothing goes up.
        assert!(store
            .outbox_read("parent", Lane::Critical, 0, 10, 1 << 20)
            .expect("read")
            .is_empty());

        // A node the child did not pass it to cannot be acknowledged through it.
        let forged = [DirectiveRecord::Ack(ack(
            "gw-9",
            DirectiveOutcome::Applied,
            &[],
        ))];
        let out = apply(
            &mut store,
            "city-hub",
            InboundDirectives::FromChild(&forged),
        );
        assert_eq!(out.refused, 1);
        let records = [DirectiveRecord::Ack(ack(
            "gw-1",
            DirectiveOutcome::NotApplicable,
            &[],
        ))];
        apply(
            &mut store,
            "city-hub",
            InboundDirectives::FromChild(&records),
        );
        let again = apply(
            &mut store,
            "city-hub",
            InboundDirectives::FromChild(&records),
        );
        assert_eq!(again.duplicates, 1);
        let view = store.directive(&d.id).expect("read").expect("there");
        assert!(view.missing().is_empty());
        assert_eq!(view.acks.len(), 2);
        assert_eq!(view.acks[1].via, Some(node("city-hub")));
        assert_eq!(
            store.audit_head().expect("head").seq,
            2,
            "issue and send audited"
        );
    }

    #[test]
    fn records_the_wrong_way_or_from_elsewhere_are_refused() {
        let mut store = Store::open_in_memory().expect("open");
        let d = directive();
        // A directive from a child is refused.
        let records = [DirectiveRecord::Directive(d.clone())];
        let out = apply(&mut store, "gw-1", InboundDirectives::FromChild(&records));
        assert_eq!(out.refused, 1);
        assert!(store.directives_pending().expect("pending").is_empty());
        // From the parent it is stored, pending.
        let out = apply(
            &mut store,
            "city-hub",
            InboundDirectives::FromParent(&records),
        );
        assert_eq!(out.stored, 1);
        assert_eq!(store.directives_pending().expect("pending").len(), 1);
        // An ack from the parent, or from a child it was never passed to, is refused.
        let acks = [DirectiveRecord::Ack(ack(
            "gw-1",
            DirectiveOutcome::Applied,
            &[],
        ))];
        assert_eq!(
            apply(&mut store, "city-hub", InboundDirectives::FromParent(&acks)).refused,
            1
        );
        assert_eq!(
            apply(&mut store, "gw-1", InboundDirectives::FromChild(&acks)).refused,
            1
        );
        // Passed to gw-1, its ack is stored and — not issued here — goes up.
        let children = [(node("gw-1"), "child:gw-1".to_owned())];
        let own = ack("county", DirectiveOutcome::Applied, &["gw-1"]);
        store
            .directive_handle(
                &d,
                &Handling {
                    children: &children,
                    ack: Some(own.clone()),
                    ack_link: Some("parent"),
                    audit: audit("directive.receive"),
                },
            )
            .expect("handle");
        assert_eq!(
            apply(&mut store, "gw-1", InboundDirectives::FromChild(&acks)).stored,
            1
        );
        let up: Vec<LinkEvent> = store
            .outbox_read("parent", Lane::Critical, 0, 10, 1 << 20)
            .expect("read")
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("link event"))
            .collect();
        assert_eq!(
            up,
            vec![
                LinkEvent::DirectiveAck(own),
                LinkEvent::DirectiveAck(ack("gw-1", DirectiveOutcome::Applied, &[]))
            ]
        );
        let scope = SitePath::new("m/p/c/county/prison-3").expect("valid");
        let view = store.directive(&d.id).expect("read").expect("there");
        assert!(view.in_scope(&scope));
        assert!(!view.in_scope(&SitePath::new("m/p/other").expect("valid")));
        assert_eq!(store.directives(10, |_| true).expect("list").len(), 1);
    }
}
