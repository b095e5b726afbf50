//! Sending this node's audit log up its link, so that the parent holds the trail (README,
//! "Audit log": the parent's copy is the anchor a cut tail is detected against).
//!
//! The setting lives in the store (`audit_forward`, one row), set by each binary when it
//! starts ([`Store::set_audit_forward`]): an agent always forwards to `parent`, a hub only with
//! `[parent]`. Because [`crate::audit::append_in`] — the one function every audit append goes
//! through (operator actions, sign-ins, enrollment, the CLI, an agent's bundle updates) —
//! calls [`queue_pending_in`] in its own transaction, every record is queued on the link's
//! `normal` lane **together with** its append: a record is never in the log without being
//! queued, and the link engine then gives it an alert event's guarantees (resent until the
//! parent has committed it, acknowledged only after the commit, safe across SIGKILL).
//!
//! The row also keeps a high-water mark, `queued_upto`: every record up to it is queued.
//! Records appended while no link was set (before the node had an uplink) are above it and are
//! queued, in order, by the next [`Store::set_audit_forward`] that names a link — so the
//! parent gets the whole trail, from record 1.

use rusqlite::{params, Connection};
use vigil_core::{Lane, NodeId, Timestamp};
use vigil_wire::{AuditEvent, AuditHash, LinkEvent};

use crate::audit::read_raw_at;
use crate::error::{Result, SqlContext, StoreError};
use crate::outbox::append_in;
use crate::store::Store;

/// Where this node's audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditForward {
    /// The outbox link (`parent`).
    pub link: String,
    /// This node's id: the `origin` its records carry.
    pub origin: NodeId,
}

/// The setting row.
struct Setting {
    forward: Option<AuditForward>,
    queued_upto: u64,
}

fn load(conn: &Connection) -> Result<Setting> {
    let (link, origin, queued): (Option<String>, Option<String>, i64) = conn
        .prepare_cached("SELECT link, origin, queued_upto FROM audit_forward WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .op("read the audit forwarding setting")?;
    let corrupt = |detail: String| StoreError::CorruptValue {
        table: "audit_forward",
        row: "1".into(),
        detail,
    };
    let forward = match (link, origin) {
        (Some(link), Some(origin)) => Some(AuditForward {
            link,
            origin: NodeId::new(origin).map_err(|e| corrupt(e.to_string()))?,
        }),
        _ => None,
    };
    Ok(Setting {
        forward,
        queued_upto: u64::try_from(queued)
            .map_err(|_| corrupt("queued_upto is negative".into()))?,
    })
}

/// Queues every record above the high-water mark on the forwarding link, in order, inside
/// the caller's transaction; returns how many. Nothing when no link is set.
pub(crate) fn queue_pending_in(conn: &Connection) -> Result<u64> {
    let setting = load(conn)?;
    let Some(forward) = setting.forward else {
        return Ok(0);
    };
    let after = i64::try_from(setting.queued_upto).unwrap_or(i64::MAX);
    let mut payloads = Vec::new();
    let mut last = setting.queued_upto;
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, at, node, actor, action, target, details, prev_hash, hash
                 FROM audit WHERE seq > ?1 ORDER BY seq",
            )
            .op("read audit records to forward")?;
        let mut rows = stmt.query([after]).op("read audit records to forward")?;
        while let Some(row) = rows.next().op("read audit records to forward")? {
            let raw = read_raw_at(row, 0)
                .op("read audit records to forward")?
                .map_err(|fault| StoreError::CorruptValue {
                    table: "audit",
                    row: format!("after seq {after}"),
                    detail: fault.to_string(),
                })?;
            let seq = u64::try_from(raw.seq).unwrap_or(0);
            let event = LinkEvent::Audit(AuditEvent {
                origin: forward.origin.clone(),
                seq,
                at: Timestamp::from_millis(raw.at),
                node: raw.node,
                actor: raw.actor,
                action: raw.action,
                target: raw.target,
                details: raw.details,
                prev_hash: AuditHash(raw.prev_hash),
                hash: AuditHash(raw.hash),
            });
            let bytes = serde_json::to_vec(&event).map_err(|source| StoreError::Encode {
                what: "an audit link event",
                source,
            })?;
            payloads.push((Lane::Normal, bytes));
            last = seq;
        }
    }
    if payloads.is_empty() {
        return Ok(0);
    }
    let count = payloads.len() as u64;
    append_in(conn, &forward.link, payloads)?;
    conn.prepare_cached("UPDATE audit_forward SET queued_upto = ?1 WHERE id = 1")
        .and_then(|mut stmt| stmt.execute(params![i64::try_from(last).unwrap_or(i64::MAX)]))
        .op("advance the audit forwarding mark")?;
    Ok(count)
}

impl Store {
    /// Sets where this node's audit records go (`None`: nowhere) and, with a link, queues
    /// every record not queued yet, in one durable transaction; returns how many were queued.
    /// Each binary calls it when it starts: an agent with `parent`, a hub with `parent` only
    /// when it has one.
    pub fn set_audit_forward(&mut self, forward: Option<&AuditForward>) -> Result<u64> {
        let tx = self.write_tx("begin setting audit forwarding")?;
        tx.execute(
            "UPDATE audit_forward SET link = ?1, origin = ?2 WHERE id = 1",
            params![
                forward.map(|f| f.link.as_str()),
                forward.map(|f| f.origin.as_str())
            ],
        )
        .op("set audit forwarding")?;
        let queued = queue_pending_in(&tx)?;
        tx.commit().op("commit audit forwarding")?;
        Ok(queued)
    }

    /// Where this node's audit records go, and the highest record number queued so far.
    pub fn audit_forward(&self) -> Result<(Option<AuditForward>, u64)> {
        let setting = load(&self.conn)?;
        Ok((setting.forward, setting.queued_upto))
    }
}
