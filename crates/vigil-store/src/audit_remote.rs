//! The audit trails this node holds of other nodes: its children's audit records (and,
//! relayed by hubs below, theirs), received over the link protocol as `audit` link events
//! and kept in `audit_remote`, one row per `(origin, seq)` (migration 8).
//!
//! - **Receiving** ([`apply_in`], called by the inbox in the transaction that commits a
//!   batch): a record already held is a duplicate and changes nothing — the first copy
//!   stays, and a different record under the same number is counted as a conflict. A new
//!   record is stored even when it does not chain (its hash does not match its fields, or its
//!   `prev_hash` is not the hash of the origin's record before it held here, or the next
//!   record held does not name it): that is evidence, counted as a chain break, and
//!   [`Store::audit_remote_verify`] names it. With a forwarding link, the new records are
//!   queued on it (`normal` lane) in the same transaction, so a hub with a parent passes its
//!   children's trails up and the ministry holds every trail.
//! - **Verifying** ([`Store::audit_remote_verify`]): each origin's trail is walked like the
//!   node's own log (`crate::audit`): hashes, gaps, `prev_hash` links, first bad record named.
//! - **The anchor**: a child that cuts the tail of its own log leaves a shorter chain that
//!   verifies on its own; the parent's copy still holds the cut records, so comparing the two
//!   heads shows it (README, "Audit log").
//! - **The automatic comparison** ([`Store::audit_remote_check`]): each node reports the tail
//!   of its own chain in its status; the parent compares it with its copy
//!   ([`compare_trail`]) and counts a node whose log is behind the copy or differs from it.
//! - **Reading** ([`Store::audit_list`]): this node's records and the held ones, newest first,
//!   keyset-paged.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use tracing::warn;
use vigil_core::{Lane, NodeId, Timestamp};
use vigil_wire::{AuditEvent, AuditHash, LinkEvent};

use crate::audit::{read_raw_at, record_hash, verify_rows, AuditReport, GENESIS_HASH};
use crate::error::{Result, SqlContext, StoreError};
use crate::outbox::append_in;
use crate::store::Store;

/// What applying a batch's audit records did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AuditApplied {
    /// Records new here, now stored.
    pub applied: usize,
    /// Records already held (a resend): ignored.
    pub duplicates: usize,
    /// New records that do not chain to what is held (stored anyway, named by verify).
    pub chain_breaks: usize,
    /// Records under a number already held with a different hash (the first copy stays).
    pub conflicts: usize,
}

fn hash_of(conn: &Connection, origin: &str, seq: i64, column: &str) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached(&format!(
        "SELECT {column} FROM audit_remote WHERE origin = ?1 AND seq = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![origin, seq], |r| r.get(0))
            .optional()
    })
    .op("read a held audit record")
}

/// Whether the record held under `record`'s number is the very same record (`None`: none
/// is held).
fn held_same(conn: &Connection, seq: i64, record: &AuditEvent) -> Result<Option<bool>> {
    type Row = (
        i64,
        String,
        String,
        String,
        String,
        String,
        Vec<u8>,
        Vec<u8>,
    );
    let held: Option<Row> = conn
        .prepare_cached(
            "SELECT at, node, actor, action, target, details, prev_hash, hash
             FROM audit_remote WHERE origin = ?1 AND seq = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![record.origin.as_str(), seq], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()
        })
        .op("read a held audit record")?;
    Ok(
        held.map(|(at, node, actor, action, target, details, prev, hash)| {
            at == record.at.as_millis()
                && node == record.node
                && actor == record.actor
                && action == record.action
                && target == record.target
                && details == record.details
                && prev[..] == record.prev_hash.0[..]
                && hash[..] == record.hash.0[..]
        }),
    )
}

/// Stores `records` (sent by `via`) idempotently inside the caller's transaction and, with
/// `forward_link`, queues the new ones on it; returns the counts and the forwarded records'
/// sequence numbers (all in the `normal` lane).
pub(crate) fn apply_in(
    conn: &Connection,
    via: &NodeId,
    records: &[AuditEvent],
    forward_link: Option<&str>,
) -> Result<(AuditApplied, Vec<u64>)> {
    let mut out = AuditApplied::default();
    let mut forward = Vec::new();
    for record in records {
        let origin = record.origin.as_str();
        let invalid = || StoreError::CorruptValue {
            table: "audit_remote",
            row: format!("{origin} seq {}", record.seq),
            detail: "seq does not fit a column".into(),
        };
        let seq = i64::try_from(record.seq).map_err(|_| invalid())?;
        if let Some(same) = held_same(conn, seq, record)? {
            out.duplicates += 1;
            if !same {
                out.conflicts += 1;
                warn!(%origin, seq, via = %via,
                      "audit record conflicts with the copy held here; keeping the held one");
            }
            continue;
        }
        let computed = record_hash(
            record.seq,
            record.at.as_millis(),
            &record.node,
            &record.actor,
            &record.action,
            &record.target,
            &record.details,
            &record.prev_hash.0,
        );
        let mut chain_ok = computed == record.hash.0;
        if record.seq == 1 {
            chain_ok &= record.prev_hash.0 == GENESIS_HASH;
        } else if let Some(prev) = hash_of(conn, origin, seq - 1, "hash")? {
            chain_ok &= prev[..] == record.prev_hash.0[..];
        }
        if let Some(next_prev) = hash_of(conn, origin, seq.saturating_add(1), "prev_hash")? {
            chain_ok &= next_prev[..] == record.hash.0[..];
        }
        conn.prepare_cached(
            "INSERT INTO audit_remote (origin, seq, at, node, actor, action, target, details,
                                       prev_hash, hash, via, received, chain_ok)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                origin,
                seq,
                record.at.as_millis(),
                record.node,
                record.actor,
                record.action,
                record.target,
                record.details,
                &record.prev_hash.0[..],
                &record.hash.0[..],
                via.as_str(),
                Timestamp::now().as_millis(),
                chain_ok,
            ])
        })
        .op("store a held audit record")?;
        out.applied += 1;
        if !chain_ok {
            out.chain_breaks += 1;
            warn!(%origin, seq, via = %via, "audit record does not chain to the trail held here");
        }
        if forward_link.is_some() {
            let bytes =
                serde_json::to_vec(&LinkEvent::Audit(record.clone())).map_err(|source| {
                    StoreError::Encode {
                        what: "an audit link event",
                        source,
                    }
                })?;
            forward.push((Lane::Normal, bytes));
        }
    }
    let seqs = match forward_link {
        Some(link) if !forward.is_empty() => append_in(conn, link, forward)?,
        _ => Vec::new(),
    };
    Ok((out, seqs))
}

/// Where a page of [`Store::audit_list`] ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditListCursor {
    /// The last record's time (milliseconds).
    pub at: i64,
    /// Its origin.
    pub origin: String,
    /// Its number.
    pub seq: u64,
}

impl std::fmt::Display for AuditListCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.at, self.seq, self.origin)
    }
}

impl std::str::FromStr for AuditListCursor {
    type Err = String;

    /// `AT.SEQ.ORIGIN`, as [`Display`](std::fmt::Display) writes it.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("cursor {s:?} is not one a previous page returned");
        let (at, rest) = s.split_once('.').ok_or_else(bad)?;
        let (seq, origin) = rest.split_once('.').ok_or_else(bad)?;
        let at = at.parse().map_err(|_| bad())?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        NodeId::new(origin).map_err(|_| bad())?;
        if seq == 0 || i64::try_from(seq).is_err() {
            return Err(bad());
        }
        Ok(AuditListCursor {
            at,
            origin: origin.to_owned(),
            seq,
        })
    }
}

/// How the tail of a node's own audit chain, as the node reports it, compares with the copy
/// of its trail held here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailCheck {
    /// Nothing held contradicts the node's log: the copy ends at or before the node's tail
    /// and holds the same record under the tail's number (or none).
    Consistent,
    /// The copy holds records past the node's tail that the node had written before it
    /// reported the tail: its log lost them (cut, or restored from an older backup).
    Behind {
        /// The last record held here.
        held: u64,
        /// The node's tail.
        reported: u64,
    },
    /// The copy holds another record under the tail's number: the node's log was rewritten.
    Forked {
        /// The tail's number.
        seq: u64,
    },
}

/// Compares a node's reported tail (`seq`, `hash`, reported at `reported_at`, the node's
/// clock) with the copy held here: its last record (`held_head`: number and the node's
/// time on it) and the hash it holds under `seq` (`held_at_tail`). Records the node wrote
/// after it reported are not held against it: a status can arrive late (a retained one
/// after a reconnect), after the records that followed it.
pub fn compare_trail(
    seq: u64,
    hash: &[u8; 32],
    reported_at: Timestamp,
    held_head: Option<(u64, Timestamp)>,
    held_at_tail: Option<[u8; 32]>,
) -> TrailCheck {
    if held_at_tail.is_some_and(|held| &held != hash) {
        return TrailCheck::Forked { seq };
    }
    match held_head {
        Some((held, at)) if held > seq && at < reported_at => TrailCheck::Behind {
            held,
            reported: seq,
        },
        _ => TrailCheck::Consistent,
    }
}

impl Store {
    /// Compares the tail of `origin`'s own chain (`seq` and `hash`, as it reported them at
    /// `reported_at`) with the copy of its trail held here ([`compare_trail`]). Only the
    /// records `origin` sent itself count (`via = origin`: it is a direct child reporting its
    /// own tail): records another child sent under its name say nothing of its log.
    pub fn audit_remote_check(
        &self,
        origin: &str,
        seq: u64,
        hash: &[u8; 32],
        reported_at: Timestamp,
    ) -> Result<TrailCheck> {
        let head: Option<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT seq, at FROM audit_remote WHERE origin = ?1 AND via = ?1
                 ORDER BY seq DESC LIMIT 1",
            )
            .op("read a held audit trail's head")?
            .query_row([origin], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .op("read a held audit trail's head")?;
        let at_tail: Option<Vec<u8>> = match i64::try_from(seq) {
            Ok(seq) if seq >= 1 => self
                .conn
                .prepare_cached(
                    "SELECT hash FROM audit_remote WHERE origin = ?1 AND via = ?1 AND seq = ?2",
                )
                .op("read a held audit record")?
                .query_row(params![origin, seq], |r| r.get(0))
                .optional()
                .op("read a held audit record")?,
            _ => None,
        };
        let held_head = head.map(|(seq, at)| (seq.unsigned_abs(), Timestamp::from_millis(at)));
        let held_at_tail = at_tail.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
        Ok(compare_trail(
            seq,
            hash,
            reported_at,
            held_head,
            held_at_tail,
        ))
    }

    /// Every origin whose records this node holds, in order.
    pub fn audit_remote_origins(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT origin FROM audit_remote ORDER BY origin")
            .op("list held audit trails")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .op("list held audit trails")?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .op("list held audit trails")
    }

    /// Walks the trail of `origin` held here, like [`Store::audit_verify`] walks this node's
    /// own log, and names its first bad record. An origin with nothing held is an empty,
    /// intact chain.
    pub fn audit_remote_verify(&self, origin: &str) -> Result<AuditReport> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at, node, actor, action, target, details, prev_hash, hash
                 FROM audit_remote WHERE origin = ?1 ORDER BY seq",
            )
            .op("read a held audit trail")?;
        let rows = stmt.query([origin]).op("read a held audit trail")?;
        verify_rows(rows)
    }

    /// The held records that did not chain when they arrived (see the module docs).
    pub fn audit_remote_breaks(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM audit_remote WHERE chain_ok = 0",
                [],
                |r| r.get(0),
            )
            .op("count held audit chain breaks")?;
        Ok(n.unsigned_abs())
    }

    /// Up to `limit` audit records — this node's own (as `own`) and the ones it holds of
    /// other nodes — newest first by `(at, origin, seq)`, after `cursor` (the last record of
    /// the previous page); only `node`'s when given. Records are returned as stored, without
    /// checking (see [`Store::audit_verify`], [`Store::audit_remote_verify`]).
    pub fn audit_list(
        &self,
        own: &NodeId,
        node: Option<&str>,
        cursor: Option<&AuditListCursor>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (c_at, c_origin, c_seq) = match cursor {
            Some(c) => (
                SqlValue::Integer(c.at),
                SqlValue::Text(c.origin.clone()),
                SqlValue::Integer(i64::try_from(c.seq).unwrap_or(i64::MAX)),
            ),
            None => (SqlValue::Null, SqlValue::Null, SqlValue::Null),
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT origin, seq, at, node, actor, action, target, details, prev_hash, hash
                 FROM (SELECT ?1 AS origin, seq, at, node, actor, action, target, details,
                              prev_hash, hash FROM audit
                       UNION ALL
                       SELECT origin, seq, at, node, actor, action, target, details,
                              prev_hash, hash FROM audit_remote)
                 WHERE (?2 IS NULL OR origin = ?2)
                   AND (?3 IS NULL OR (at, origin, seq) < (?3, ?4, ?5))
                 ORDER BY at DESC, origin DESC, seq DESC
                 LIMIT ?6",
            )
            .op("list audit records")?;
        let mut rows = stmt
            .query(params![own.as_str(), node, c_at, c_origin, c_seq, limit])
            .op("list audit records")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().op("list audit records")? {
            let origin: String = row.get(0).op("list audit records")?;
            let corrupt = |detail: String| StoreError::CorruptValue {
                table: "audit_remote",
                row: format!("origin {origin}"),
                detail,
            };
            let raw = read_raw_at(row, 1)
                .op("list audit records")?
                .map_err(|fault| corrupt(fault.to_string()))?;
            out.push(AuditEvent {
                origin: NodeId::new(origin.clone()).map_err(|e| corrupt(e.to_string()))?,
                seq: u64::try_from(raw.seq).map_err(|_| corrupt("seq is negative".into()))?,
                at: Timestamp::from_millis(raw.at),
                node: raw.node,
                actor: raw.actor,
                action: raw.action,
                target: raw.target,
                details: raw.details,
                prev_hash: AuditHash(raw.prev_hash),
                hash: AuditHash(raw.hash),
            });
        }
        Ok(out)
    }
}
