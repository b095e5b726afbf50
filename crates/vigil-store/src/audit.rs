//! The audit log: every operator and admin action, one record each, in a hash chain that
//! `vigil-hub audit verify` checks (docs/ARCHITECTURE.md#audit-log).
//!
//! Records are numbered 1, 2, … without gaps (`seq`). A record's `hash` is SHA-256 over the
//! canonical encoding of its fields ([`record_hash`]), and its `prev_hash` is the `hash` of
//! the record before it ([`GENESIS_HASH`], 32 zero bytes, for record 1). [`Store::audit_verify`]
//! walks the chain from the start and names the first record that breaks it:
//!
//! - **edited** (any field, the hash included): its hash does not match its contents;
//! - **removed**: the numbers have a gap, named by the first missing number;
//! - **reordered** (or replaced by a record with a recomputed hash): its `prev_hash` is not
//!   the hash of the record before it.
//!
//! The trap: **removing records from the end leaves a shorter chain that is intact.** The
//! chain alone cannot tell "record 7 was deleted" from "there were only 6 records". That is
//! detectable only against an anchor kept somewhere the attacker cannot write — the last
//! [`AuditHead`] reported up the link, printed in a report, written on paper: a chain whose
//! head is behind a head seen earlier, or whose record at that number has a different hash,
//! has lost its tail. [`Store::audit_head`] is what to report.
//!
//! The table also refuses `UPDATE` and `DELETE` with triggers (migration 5), but that is a
//! guard against mistakes only: whoever can write the file can drop a trigger.
//!
//! Appending reads the current head and writes the next record, so it must run inside a
//! write transaction ([`append_in`]); [`Store::audit_append`] is the one-record transaction,
//! and [`Store::record_action`](crate::Store::record_action) commits an operator action's
//! events and its audit record together.

use std::fmt;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use vigil_core::Timestamp;

use crate::error::{Result, SqlContext, StoreError};
use crate::store::Store;

/// The `prev_hash` of record 1.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// What the encoding hashed for each record starts with; a new encoding gets a new tag.
const DOMAIN: &[u8] = b"vigil-audit-v1\0";

/// One action to record: who did what to which thing, where and when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When the action was taken.
    pub at: Timestamp,
    /// The node it was taken on.
    pub node: String,
    /// Who took it (a user name).
    pub actor: String,
    /// What was done (`ack`, `shelve`, …).
    pub action: String,
    /// What it was done to (an alert id, a user, a bundle).
    pub target: String,
    /// The request's salient fields (a comment's text, a shelf's end, an assignee).
    pub details: serde_json::Value,
}

/// One stored audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its number, from 1.
    pub seq: u64,
    /// What was recorded.
    pub entry: AuditEntry,
    /// The hash of the record before it ([`GENESIS_HASH`] for record 1).
    pub prev_hash: [u8; 32],
    /// SHA-256 over the canonical encoding of this record ([`record_hash`]).
    pub hash: [u8; 32],
}

/// The end of the chain: the last record's number and hash (0 and [`GENESIS_HASH`] when the
/// log is empty). Kept elsewhere, it is the anchor that makes a cut tail detectable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// The last record's number.
    pub seq: u64,
    /// The last record's hash.
    pub hash: [u8; 32],
}

impl AuditHead {
    /// The hash in lower-case hex.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }
}

/// What is wrong with the first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFault {
    /// The record is missing: the numbers jump past it (a record was removed).
    Missing {
        /// The number of the next record that is there.
        next: u64,
    },
    /// Its `prev_hash` is not the hash of the record before it (records reordered, or one
    /// replaced with a recomputed hash).
    PrevHashMismatch,
    /// Its hash does not match its contents (a field was edited).
    HashMismatch,
    /// A column holds a value of the wrong kind (text where a number belongs, a hash that is
    /// not 32 bytes): the record was edited.
    Malformed {
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl fmt::Display for AuditFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditFault::Missing { next } => write!(
                f,
                "it is missing (the next record present is {next}): records were removed"
            ),
            AuditFault::PrevHashMismatch => f.write_str(
                "its prev_hash is not the hash of the record before it: records were \
                 reordered or replaced",
            ),
            AuditFault::HashMismatch => {
                f.write_str("its hash does not match its contents: the record was edited")
            }
            AuditFault::Malformed { column, detail } => {
                write!(f, "column {column} {detail}: the record was edited")
            }
        }
    }
}

/// The outcome of [`Store::audit_verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditReport {
    /// Every record chains to the one before it.
    Intact {
        /// How many records there are.
        records: u64,
        /// The last one (compare with an anchor kept elsewhere to detect a cut tail).
        head: AuditHead,
    },
    /// The chain breaks at `seq`; every record before it is intact.
    Broken {
        /// The first bad record.
        seq: u64,
        /// What is wrong with it.
        fault: AuditFault,
    },
}

impl AuditReport {
    /// Whether every record chains to the one before it.
    pub const fn is_intact(&self) -> bool {
        matches!(self, AuditReport::Intact { .. })
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditReport::Intact { records, head } => write!(
                f,
                "audit chain ok: {records} records, head {}",
                head.hash_hex()
            ),
            AuditReport::Broken { seq, fault } => {
                write!(f, "audit chain broken at record {seq}: {fault}")
            }
        }
    }
}

/// SHA-256 over the canonical encoding of a record: the domain tag, `seq` and `at` as 8-byte
/// big-endian integers, `node`, `actor`, `action`, `target` and `details` (the JSON text as
/// stored) each as an 8-byte big-endian length and its UTF-8 bytes, then `prev_hash`.
/// Length prefixes keep field boundaries unambiguous ("ab" + "c" ≠ "a" + "bc").
#[allow(clippy::too_many_arguments)]
pub fn record_hash(
    seq: u64,
    at: i64,
    node: &str,
    actor: &str,
    action: &str,
    target: &str,
    details: &str,
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for text in [node, actor, action, target, details] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.update(prev_hash);
    h.finalize().into()
}

/// Appends `entry` as the next record. Must run inside a write transaction (the caller's,
/// which commits it together with whatever else it wrote): the head is read and the next
/// record written under the same lock.
pub fn append_in(conn: &Connection, entry: &AuditEntry) -> Result<AuditRecord> {
    let head = head_in(conn)?;
    let seq = head.seq + 1;
    let details = serde_json::to_string(&entry.details).map_err(|source| StoreError::Encode {
        what: "audit details",
        source,
    })?;
    let at = entry.at.as_millis();
    let hash = record_hash(
        seq,
        at,
        &entry.node,
        &entry.actor,
        &entry.action,
        &entry.target,
        &details,
        &head.hash,
    );
    let seq_sql = i64::try_from(seq).map_err(|_| StoreError::CorruptValue {
        table: "audit",
        row: format!("seq {}", head.seq),
        detail: "sequence numbers are exhausted".into(),
    })?;
    conn.execute(
        "INSERT INTO audit (seq, at, node, actor, action, target, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            seq_sql,
            at,
            entry.node,
            entry.actor,
            entry.action,
            entry.target,
            details,
            &head.hash[..],
            &hash[..],
        ],
    )
    .op("append to the audit log")?;
    // Up the link with it, when this node forwards its audit log (same transaction).
    crate::audit_forward::queue_pending_in(conn)?;
    Ok(AuditRecord {
        seq,
        entry: entry.clone(),
        prev_hash: head.hash,
        hash,
    })
}

fn head_in(conn: &Connection) -> Result<AuditHead> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .op("read the audit head")?;
    let Some((seq, hash)) = row else {
        return Ok(AuditHead {
            seq: 0,
            hash: GENESIS_HASH,
        });
    };
    let corrupt = |detail: &str| StoreError::CorruptValue {
        table: "audit",
        row: format!("seq {seq}"),
        detail: detail.to_owned(),
    };
    Ok(AuditHead {
        seq: u64::try_from(seq).map_err(|_| corrupt("seq is negative"))?,
        hash: hash
            .try_into()
            .map_err(|_| corrupt("hash is not 32 bytes"))?,
    })
}

/// The columns of one row as SQLite holds them, checked for kind.
pub(crate) struct RawRecord {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) node: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) details: String,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

fn malformed(column: &'static str, detail: impl Into<String>) -> AuditFault {
    AuditFault::Malformed {
        column,
        detail: detail.into(),
    }
}

fn int_col(v: ValueRef<'_>, column: &'static str) -> Result<i64, AuditFault> {
    match v {
        ValueRef::Integer(i) => Ok(i),
        other => Err(malformed(
            column,
            format!("is {:?}, not an integer", other.data_type()),
        )),
    }
}

fn text_col(v: ValueRef<'_>, column: &'static str) -> Result<String, AuditFault> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(str::to_owned)
            .map_err(|_| malformed(column, "is not UTF-8")),
        other => Err(malformed(
            column,
            format!("is {:?}, not text", other.data_type()),
        )),
    }
}

fn hash_col(v: ValueRef<'_>, column: &'static str) -> Result<[u8; 32], AuditFault> {
    match v {
        ValueRef::Blob(b) => b
            .try_into()
            .map_err(|_| malformed(column, format!("is {} bytes, not 32", b.len()))),
        other => Err(malformed(
            column,
            format!("is {:?}, not a blob", other.data_type()),
        )),
    }
}

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RawRecord, AuditFault>> {
    read_raw_at(row, 0)
}

/// [`read_raw`] of the nine record columns starting at column `first`.
pub(crate) fn read_raw_at(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Result<RawRecord, AuditFault>> {
    let col = |i: usize| row.get_ref(first + i);
    let (seq, at, node, actor, action, target, details, prev, hash) = (
        col(0)?,
        col(1)?,
        col(2)?,
        col(3)?,
        col(4)?,
        col(5)?,
        col(6)?,
        col(7)?,
        col(8)?,
    );
    Ok((|| {
        Ok(RawRecord {
            seq: int_col(seq, "seq")?,
            at: int_col(at, "at")?,
            node: text_col(node, "node")?,
            actor: text_col(actor, "actor")?,
            action: text_col(action, "action")?,
            target: text_col(target, "target")?,
            details: text_col(details, "details")?,
            prev_hash: hash_col(prev, "prev_hash")?,
            hash: hash_col(hash, "hash")?,
        })
    })())
}

const SELECT_RECORDS: &str =
    "SELECT seq, at, node, actor, action, target, details, prev_hash, hash FROM audit";

impl Store {
    /// Appends `entry` to the audit log in its own durable transaction.
    pub fn audit_append(&mut self, entry: &AuditEntry) -> Result<AuditRecord> {
        let tx = self.write_tx("begin an audit append")?;
        let record = append_in(&tx, entry)?;
        tx.commit().op("commit an audit append")?;
        Ok(record)
    }

    /// The last record's number and hash, to report to somewhere the log's writer cannot
    /// rewrite (see the module docs: a cut tail is visible only against such an anchor).
    pub fn audit_head(&self) -> Result<AuditHead> {
        head_in(&self.conn)
    }

    /// Recomputes the whole chain and names its first bad record; see the module docs for
    /// what is and is not detectable. `Err` only when the store cannot be read.
    pub fn audit_verify(&self) -> Result<AuditReport> {
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT_RECORDS} ORDER BY seq"))
            .op("read the audit log")?;
        let rows = stmt.query([]).op("read the audit log")?;
        verify_rows(rows)
    }

    /// Up to `limit` records numbered above `after`, in order (no checking: see
    /// [`Store::audit_verify`]).
    pub fn audit_records(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{SELECT_RECORDS} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .op("read audit records")?;
        let mut rows = stmt.query(params![after, limit]).op("read audit records")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().op("read audit records")? {
            let raw = read_raw(row).op("read audit records")?.map_err(|fault| {
                StoreError::CorruptValue {
                    table: "audit",
                    row: format!("after seq {after}"),
                    detail: fault.to_string(),
                }
            })?;
            let row_name = || format!("seq {}", raw.seq);
            let details =
                serde_json::from_str(&raw.details).map_err(|source| StoreError::CorruptJson {
                    table: "audit",
                    row: row_name(),
                    source,
                })?;
            out.push(AuditRecord {
                seq: u64::try_from(raw.seq).map_err(|_| StoreError::CorruptValue {
                    table: "audit",
                    row: row_name(),
                    detail: "seq is negative".into(),
                })?,
                entry: AuditEntry {
                    at: Timestamp::from_millis(raw.at),
                    node: raw.node,
                    actor: raw.actor,
                    action: raw.action,
                    target: raw.target,
                    details,
                },
                prev_hash: raw.prev_hash,
                hash: raw.hash,
            });
        }
        Ok(out)
    }
}

/// Walks the rows of one chain (the nine record columns, in `seq` order) and names its first
/// bad record. Shared by this node's own log and the trails it holds of other nodes.
pub(crate) fn verify_rows(mut rows: rusqlite::Rows<'_>) -> Result<AuditReport> {
    let mut expected: u64 = 1;
    let mut prev = GENESIS_HASH;
    while let Some(row) = rows.next().op("read the audit log")? {
        let raw = match read_raw(row).op("read the audit log")? {
            Ok(raw) => raw,
            Err(fault) => {
                return Ok(AuditReport::Broken {
                    seq: expected,
                    fault,
                })
            }
        };
        // `seq` is the rowid: rows come in ascending order, so a number above the
        // expected one means the expected one is gone (the CHECK keeps it above 0).
        let seq = u64::try_from(raw.seq).unwrap_or(0);
        if seq != expected {
            return Ok(AuditReport::Broken {
                seq: expected,
                fault: AuditFault::Missing { next: seq },
            });
        }
        if raw.prev_hash != prev {
            return Ok(AuditReport::Broken {
                seq,
                fault: AuditFault::PrevHashMismatch,
            });
        }
        let computed = record_hash(
            seq,
            raw.at,
            &raw.node,
            &raw.actor,
            &raw.action,
            &raw.target,
            &raw.details,
            &raw.prev_hash,
        );
        if computed != raw.hash {
            return Ok(AuditReport::Broken {
                seq,
                fault: AuditFault::HashMismatch,
            });
        }
        prev = raw.hash;
        expected += 1;
    }
    Ok(AuditReport::Intact {
        records: expected - 1,
        head: AuditHead {
            seq: expected - 1,
            hash: prev,
        },
    })
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(n: i64) -> AuditEntry {
        AuditEntry {
            at: Timestamp::from_millis(1_795_000_000_000 + n),
            node: "county-baiyun".into(),
            actor: format!("user-{n}"),
            action: "comment".into(),
            target: format!("alert-{n}"),
            details: json!({ "text": format!("note {n}") }),
        }
    }

    /// A store with records 1..=n.
    fn store(n: i64) -> Store {
        let mut store = Store::open_in_memory().expect("open");
        for i in 1..=n {
            let rec = store.audit_append(&entry(i)).expect("append");
            assert_eq!(rec.seq, i as u64);
        }
        store
    }

    /// Raw SQL from someone who can write the file: the append-only triggers go first.
    fn tamper(store: &Store, sql: &str) {
        store
            .conn
            .execute_batch(&format!(
                "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}"
            ))
            .expect("tamper");
    }

    fn broken(store: &Store) -> (u64, AuditFault) {
        match store.audit_verify().expect("verify") {
            AuditReport::Broken { seq, fault } => (seq, fault),
            intact => panic!("expected a broken chain, got {intact}"),
        }
    }

    #[test]
    fn an_appended_chain_verifies_and_reads_back() {
        let empty = store(0);
        assert_eq!(
            empty.audit_verify().expect("verify"),
            AuditReport::Intact {
                records: 0,
                head: AuditHead {
                    seq: 0,
                    hash: GENESIS_HASH
                }
            }
        );
        let store = store(5);
        let head = store.audit_head().expect("head");
        assert_eq!(head.seq, 5);
        let report = store.audit_verify().expect("verify");
        assert_eq!(report, AuditReport::Intact { records: 5, head });
        assert_eq!(
            report.to_string(),
            format!("audit chain ok: 5 records, head {}", head.hash_hex())
        );

        let all = store.audit_records(0, 100).expect("records");
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        for pair in all.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        assert_eq!(all[2].entry, entry(3));
        let page = store.audit_records(2, 2).expect("page");
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn the_table_refuses_updates_and_deletes() {
        let store = store(2);
        for sql in [
            "UPDATE audit SET actor = 'mallory' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 2",
        ] {
            let err = store.conn.execute(sql, []).expect_err(sql);
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        assert!(matches!(
            store.audit_verify().expect("verify"),
            AuditReport::Intact { records: 2, .. }
        ));
    }

    #[test]
    fn editing_any_field_is_found_and_named() {
        for set in [
            "at = at + 1",
            "node = 'elsewhere'",
            "actor = 'mallory'",
            "action = 'ack'",
            "target = 'alert-9'",
            r#"details = '{"text":"nothing to see"}'"#,
            "hash = zeroblob(32)",
        ] {
            let store = store(5);
            tamper(&store, &format!("UPDATE audit SET {set} WHERE seq = 3"));
            let (seq, fault) = broken(&store);
            assert_eq!((seq, &fault), (3, &AuditFault::HashMismatch), "{set}");
            assert!(
                store
                    .audit_verify()
                    .expect("verify")
                    .to_string()
                    .starts_with("audit chain broken at record 3: its hash does not match"),
                "{set}"
            );
        }
        // Editing prev_hash breaks the link to the record before.
        let store3 = store(5);
        tamper(
            &store3,
            "UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = 3",
        );
        assert_eq!(broken(&store3), (3, AuditFault::PrevHashMismatch));
        // A value of the wrong kind is named by its column.
        let store4 = store(5);
        tamper(&store4, "UPDATE audit SET at = 'yesterday' WHERE seq = 4");
        let (seq, fault) = broken(&store4);
        assert_eq!(seq, 4);
        assert!(
            matches!(fault, AuditFault::Malformed { column: "at", .. }),
            "{fault:?}"
        );
        // Renumbering a record leaves a gap where it was.
        let store5 = store(5);
        tamper(&store5, "UPDATE audit SET seq = 9 WHERE seq = 2");
        assert_eq!(broken(&store5), (2, AuditFault::Missing { next: 3 }));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let store = store(5);
        let rec = &store.audit_records(2, 1).expect("record 3")[0];
        let hash = record_hash(
            3,
            rec.entry.at.as_millis(),
            &rec.entry.node,
            "mallory",
            &rec.entry.action,
            &rec.entry.target,
            &serde_json::to_string(&rec.entry.details).expect("json"),
            &rec.prev_hash,
        );
        tamper(
            &store,
            &format!(
                "UPDATE audit SET actor = 'mallory', hash = x'{}' WHERE seq = 3",
                hex(&hash)
            ),
        );
        assert_eq!(broken(&store), (4, AuditFault::PrevHashMismatch));
    }

    #[test]
    fn a_removed_record_is_a_gap() {
        let store = store(5);
        tamper(&store, "DELETE FROM audit WHERE seq = 3");
        assert_eq!(broken(&store), (3, AuditFault::Missing { next: 4 }));
        let store = store_without_first();
        assert_eq!(broken(&store), (1, AuditFault::Missing { next: 2 }));
    }

    fn store_without_first() -> Store {
        let store = store(3);
        tamper(&store, "DELETE FROM audit WHERE seq = 1");
        store
    }

    #[test]
    fn swapped_records_are_found() {
        let store = store(5);
        tamper(
            &store,
            "UPDATE audit SET seq = 100 WHERE seq = 2;
             UPDATE audit SET seq = 2 WHERE seq = 4;
             UPDATE audit SET seq = 4 WHERE seq = 100;",
        );
        assert_eq!(broken(&store), (2, AuditFault::PrevHashMismatch));
    }

    /// The documented limit: a cut tail leaves an intact, shorter chain. Only an anchor kept
    /// elsewhere (the head reported earlier) shows it.
    #[test]
    fn a_cut_tail_is_visible_only_against_an_anchor() {
        let store = store(5);
        let anchor = store.audit_head().expect("head");
        tamper(&store, "DELETE FROM audit WHERE seq = 5");
        let report = store.audit_verify().expect("verify");
        let AuditReport::Intact { records, head } = report else {
            panic!("a cut tail still chains: {report}");
        };
        assert_eq!(records, 4);
        assert!(head.seq < anchor.seq, "behind the anchor: the tail was cut");
    }

    #[test]
    fn the_encoding_keeps_field_boundaries() {
        let a = record_hash(1, 0, "ab", "c", "x", "y", "{}", &GENESIS_HASH);
        let b = record_hash(1, 0, "a", "bc", "x", "y", "{}", &GENESIS_HASH);
        assert_ne!(a, b);
    }
}
