//! The outbox: a durable, append-only queue per link with cumulative acknowledgement.
//!
//! Each link (`"parent"`, `"child:county-baiyun"`, …) has two lanes, [`Lane::Critical`] and
//! [`Lane::Normal`]. Every record appended to a lane gets the next sequence number of that
//! lane, starting at 1. Numbers are never reused: the lane's counter lives in its own row
//! (`outbox_lanes`), which outlives the records, so deleting acknowledged records — even all of
//! them — cannot bring a number back.
//!
//! The protocol this serves (docs/ARCHITECTURE.md#outbox-and-lanes):
//!
//! - the link engine reads a batch after its in-flight cursors with
//!   [`Store::outbox_next_batch`], which always drains the critical lane before the normal
//!   one, so a critical alarm never waits behind a backlog;
//! - the peer answers `Ack { lane, upto_seq }` once the events are in *its* store;
//!   [`Store::outbox_ack`] then deletes everything up to `upto_seq` in that lane. Acks are
//!   cumulative: a repeated or older ack is a harmless no-op ([`AckOutcome::Stale`]); an ack
//!   beyond the last appended number is a protocol error and deletes nothing;
//! - the in-flight cursors are memory only. After a restart the engine starts again from the
//!   acknowledged positions ([`Store::outbox_acked`]) and resends what was not acknowledged:
//!   at-least-once, made exactly-once by the receiver's idempotent apply.
//!
//! Invariant: the records of a lane are exactly the numbers `acked_upto + 1 ..= head_seq`.

use rusqlite::{params, Connection, OptionalExtension};
use tracing::{debug, warn};
use vigil_core::Lane;

use crate::convert::{count_to_sql, lane_from_sql, seq_bound_to_sql, seq_to_sql, u64_from_sql};
use crate::error::{Result, SqlContext, StoreError};
use crate::store::Store;

/// One record read from an outbox lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The record's sequence number in its lane.
    pub seq: u64,
    /// The bytes appended (an encoded event, a directive, …).
    pub payload: Vec<u8>,
}

/// Consecutive records of one lane, ready to send as one `Batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    /// The lane the records come from.
    pub lane: Lane,
    /// The sequence number of the first record.
    pub first_seq: u64,
    /// The records, in sequence order without gaps; never empty.
    pub records: Vec<OutboxRecord>,
}

impl OutboxBatch {
    /// The sequence number of the last record: what the peer's ack of this batch names.
    pub fn last_seq(&self) -> u64 {
        self.records.last().map_or(self.first_seq, |r| r.seq)
    }

    /// The total size of the payloads.
    pub fn payload_bytes(&self) -> usize {
        self.records.iter().map(|r| r.payload.len()).sum()
    }
}

/// A position in each lane: "everything up to here is sent (or acknowledged)".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LaneCursors {
    /// The position in the critical lane.
    pub critical: u64,
    /// The position in the normal lane.
    pub normal: u64,
}

impl LaneCursors {
    /// The position in `lane`.
    pub const fn get(&self, lane: Lane) -> u64 {
        match lane {
            Lane::Critical => self.critical,
            Lane::Normal => self.normal,
        }
    }

    /// Sets the position in `lane`.
    pub fn set(&mut self, lane: Lane, seq: u64) {
        match lane {
            Lane::Critical => self.critical = seq,
            Lane::Normal => self.normal = seq,
        }
    }
}

/// The state of one outbox lane, as a status report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LaneState {
    /// Everything up to here is acknowledged (and deleted); 0 before the first ack.
    pub acked_upto: u64,
    /// The last sequence number appended; 0 before the first append.
    pub head_seq: u64,
    /// Records appended and not yet acknowledged (`head_seq - acked_upto`).
    pub backlog_records: u64,
    /// The total payload size of those records.
    pub backlog_bytes: u64,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckOutcome {
    /// The acknowledged position moved forward and the records up to it were deleted.
    Advanced {
        /// The acknowledged position before.
        previous: u64,
        /// The acknowledged position now.
        acked_upto: u64,
        /// How many records were deleted.
        deleted_records: u64,
        /// Their total payload size.
        deleted_bytes: u64,
    },
    /// The ack was at or below the acknowledged position (a duplicate or reordered ack):
    /// nothing changed.
    Stale {
        /// The acknowledged position, unchanged.
        acked_upto: u64,
    },
}

impl AckOutcome {
    /// The lane's acknowledged position after the ack.
    pub const fn acked_upto(&self) -> u64 {
        match *self {
            AckOutcome::Advanced { acked_upto, .. } | AckOutcome::Stale { acked_upto } => {
                acked_upto
            }
        }
    }
}

/// A lane's row in `outbox_lanes`.
#[derive(Debug, Clone, Copy)]
struct LaneRow {
    id: i64,
    head: u64,
    acked: u64,
    records: u64,
    bytes: u64,
}

impl LaneRow {
    fn state(&self) -> LaneState {
        LaneState {
            acked_upto: self.acked,
            head_seq: self.head,
            backlog_records: self.records,
            backlog_bytes: self.bytes,
        }
    }
}

const fn lane_slot(lane: Lane) -> usize {
    match lane {
        Lane::Critical => 0,
        Lane::Normal => 1,
    }
}

fn load_lane(conn: &Connection, link: &str, lane: Lane) -> Result<Option<LaneRow>> {
    let raw = conn
        .prepare_cached(
            "SELECT id, head_seq, acked_upto, backlog_records, backlog_bytes
             FROM outbox_lanes WHERE link = ?1 AND lane = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![link, lane.as_i64()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .optional()
        })
        .op("read an outbox lane")?;
    let Some((id, head, acked, records, bytes)) = raw else {
        return Ok(None);
    };
    let row = || format!("link {link:?} lane {lane}");
    Ok(Some(LaneRow {
        id,
        head: u64_from_sql(head, "outbox_lanes", row)?,
        acked: u64_from_sql(acked, "outbox_lanes", row)?,
        records: u64_from_sql(records, "outbox_lanes", row)?,
        bytes: u64_from_sql(bytes, "outbox_lanes", row)?,
    }))
}

fn load_or_create_lane(conn: &Connection, link: &str, lane: Lane) -> Result<LaneRow> {
    if let Some(row) = load_lane(conn, link, lane)? {
        return Ok(row);
    }
    conn.prepare_cached("INSERT INTO outbox_lanes (link, lane) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![link, lane.as_i64()]))
        .op("create an outbox lane")?;
    Ok(LaneRow {
        id: conn.last_insert_rowid(),
        head: 0,
        acked: 0,
        records: 0,
        bytes: 0,
    })
}

fn save_lane(conn: &Connection, row: &LaneRow) -> Result<()> {
    // The counters come from the row (fits i64) plus checked additions of i64 values.
    let to_sql = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE outbox_lanes
         SET head_seq = ?2, acked_upto = ?3, backlog_records = ?4, backlog_bytes = ?5
         WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.id,
            to_sql(row.head),
            to_sql(row.acked),
            to_sql(row.records),
            to_sql(row.bytes)
        ])
    })
    .op("update an outbox lane")?;
    Ok(())
}

/// Counts a lane's records from the records themselves (used to repair counters that
/// disagree with them).
fn recount(conn: &Connection, lane_id: i64) -> Result<(u64, u64)> {
    let (n, bytes): (i64, i64) = conn
        .query_row(
            "SELECT count(*), coalesce(sum(length(payload)), 0)
             FROM outbox_records WHERE lane_id = ?1",
            [lane_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .op("count outbox records")?;
    Ok((n.unsigned_abs(), bytes.unsigned_abs()))
}

/// Appends records to `link`'s outbox inside an open transaction; the caller commits.
pub(crate) fn append_in<I, P>(tx: &rusqlite::Connection, link: &str, items: I) -> Result<Vec<u64>>
where
    I: IntoIterator<Item = (Lane, P)>,
    P: AsRef<[u8]>,
{
    let items = items.into_iter();
    let mut lanes: [Option<LaneRow>; 2] = [None, None];
    let mut seqs = Vec::with_capacity(items.size_hint().0);
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO outbox_records (lane_id, seq, payload) VALUES (?1, ?2, ?3)",
            )
            .op("prepare an outbox append")?;
        for (lane, payload) in items {
            let payload = payload.as_ref();
            let row = match &mut lanes[lane_slot(lane)] {
                Some(row) => row,
                slot @ None => slot.insert(load_or_create_lane(tx, link, lane)?),
            };
            let exhausted = || StoreError::SeqExhausted {
                link: link.to_owned(),
                lane,
            };
            let seq = row.head.checked_add(1).ok_or_else(exhausted)?;
            let seq_sql = seq_to_sql(seq).ok_or_else(exhausted)?;
            insert
                .execute(params![row.id, seq_sql, payload])
                .op("append to the outbox")?;
            row.head = seq;
            row.records += 1;
            row.bytes += payload.len() as u64;
            seqs.push(seq);
        }
    }
    for row in lanes.iter().flatten() {
        save_lane(tx, row)?;
    }
    Ok(seqs)
}

impl Store {
    /// Appends one record to `lane` of `link`'s outbox in one durable transaction; returns
    /// its sequence number.
    pub fn outbox_append(&mut self, link: &str, lane: Lane, payload: &[u8]) -> Result<u64> {
        let seqs = self.outbox_append_many(link, [(lane, payload)])?;
        // One item in, one sequence number out.
        seqs.first().copied().ok_or(StoreError::SeqExhausted {
            link: link.to_owned(),
            lane,
        })
    }

    /// Appends records (each to its lane) to `link`'s outbox in one durable transaction: all
    /// of them or, on error, none. Returns their sequence numbers in the order given.
    pub fn outbox_append_many<I, P>(&mut self, link: &str, items: I) -> Result<Vec<u64>>
    where
        I: IntoIterator<Item = (Lane, P)>,
        P: AsRef<[u8]>,
    {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            return Ok(Vec::new());
        }
        let tx = self.write_tx("begin an outbox append")?;
        let seqs = append_in(&tx, link, items)?;
        tx.commit().op("commit an outbox append")?;
        Ok(seqs)
    }

    /// Reads up to `max_items` consecutive records of `lane` after `after_seq`, stopping
    /// before the record that would take the payloads past `max_bytes`.
    ///
    /// Returns at least one record whenever one exists after `after_seq`, even if it alone
    /// is larger than `max_bytes` (a `max_items` of 0 counts as 1): an oversized record is
    /// sent alone rather than blocking the lane forever.
    pub fn outbox_read(
        &self,
        link: &str,
        lane: Lane,
        after_seq: u64,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.seq, r.payload
                 FROM outbox_lanes l JOIN outbox_records r ON r.lane_id = l.id
                 WHERE l.link = ?1 AND l.lane = ?2 AND r.seq > ?3
                 ORDER BY r.seq
                 LIMIT ?4",
            )
            .op("prepare an outbox read")?;
        let mut rows = stmt
            .query(params![
                link,
                lane.as_i64(),
                seq_bound_to_sql(after_seq),
                count_to_sql(max_items.max(1))
            ])
            .op("read the outbox")?;
        let mut records = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next().op("read the outbox")? {
            let seq_raw: i64 = row.get(0).op("read an outbox sequence number")?;
            let where_ = || format!("link {link:?} lane {lane} seq {seq_raw}");
            let seq = u64_from_sql(seq_raw, "outbox_records", where_)?;
            let payload = row
                .get_ref(1)
                .op("read an outbox payload")?
                .as_blob()
                .map_err(|e| StoreError::CorruptValue {
                    table: "outbox_records",
                    row: where_(),
                    detail: format!("payload is not a BLOB: {e}"),
                })?;
            if !records.is_empty() && bytes.saturating_add(payload.len()) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(payload.len());
            records.push(OutboxRecord {
                seq,
                payload: payload.to_vec(),
            });
        }
        Ok(records)
    }

    /// The next batch to send on `link` after the in-flight cursors `after`: from the
    /// critical lane if it has anything after `after.critical`, otherwise from the normal
    /// lane; `None` when both are drained. Limits as in [`Store::outbox_read`].
    pub fn outbox_next_batch(
        &self,
        link: &str,
        after: LaneCursors,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Option<OutboxBatch>> {
        for lane in Lane::ALL {
            let records = self.outbox_read(link, lane, after.get(lane), max_items, max_bytes)?;
            if let Some(first) = records.first() {
                return Ok(Some(OutboxBatch {
                    lane,
                    first_seq: first.seq,
                    records,
                }));
            }
        }
        Ok(None)
    }

    /// Acknowledges `lane` of `link` up to `upto_seq`: deletes every record with a sequence
    /// number at or below it, in one durable transaction.
    ///
    /// Cumulative: an ack at or below the acknowledged position changes nothing and is
    /// [`AckOutcome::Stale`]. An ack beyond the last appended sequence number is
    /// [`StoreError::AckBeyondHead`] and changes nothing.
    pub fn outbox_ack(&mut self, link: &str, lane: Lane, upto_seq: u64) -> Result<AckOutcome> {
        let tx = self.write_tx("begin an outbox acknowledgement")?;
        let mut row = match load_lane(&tx, link, lane)? {
            Some(row) => row,
            None if upto_seq == 0 => return Ok(AckOutcome::Stale { acked_upto: 0 }),
            None => {
                return Err(StoreError::AckBeyondHead {
                    link: link.to_owned(),
                    lane,
                    upto: upto_seq,
                    head: 0,
                })
            }
        };
        if upto_seq <= row.acked {
            return Ok(AckOutcome::Stale {
                acked_upto: row.acked,
            });
        }
        if upto_seq > row.head {
            return Err(StoreError::AckBeyondHead {
                link: link.to_owned(),
                lane,
                upto: upto_seq,
                head: row.head,
            });
        }
        // upto_seq <= head, which was stored, so it fits.
        let upto_sql = seq_bound_to_sql(upto_seq);
        let deleted_bytes: i64 = tx
            .prepare_cached(
                "SELECT coalesce(sum(length(payload)), 0)
                 FROM outbox_records WHERE lane_id = ?1 AND seq <= ?2",
            )
            .and_then(|mut stmt| stmt.query_row(params![row.id, upto_sql], |r| r.get(0)))
            .op("measure acknowledged outbox records")?;
        let deleted_records = tx
            .prepare_cached("DELETE FROM outbox_records WHERE lane_id = ?1 AND seq <= ?2")
            .and_then(|mut stmt| stmt.execute(params![row.id, upto_sql]))
            .op("delete acknowledged outbox records")? as u64;
        let deleted_bytes = deleted_bytes.unsigned_abs();
        let previous = row.acked;
        row.acked = upto_seq;
        match (
            row.records.checked_sub(deleted_records),
            row.bytes.checked_sub(deleted_bytes),
        ) {
            (Some(records), Some(bytes)) => {
                row.records = records;
                row.bytes = bytes;
            }
            _ => {
                warn!(link, %lane, "outbox backlog counters disagree with the records; recounting");
                (row.records, row.bytes) = recount(&tx, row.id)?;
            }
        }
        save_lane(&tx, &row)?;
        tx.commit().op("commit an outbox acknowledgement")?;
        debug!(link, %lane, previous, acked_upto = upto_seq, deleted_records, "outbox acknowledged");
        Ok(AckOutcome::Advanced {
            previous,
            acked_upto: upto_seq,
            deleted_records,
            deleted_bytes,
        })
    }

    /// The state of `lane` of `link`: acknowledged position, head and backlog. A lane that
    /// was never appended to is all zeros.
    pub fn outbox_lane_state(&self, link: &str, lane: Lane) -> Result<LaneState> {
        Ok(load_lane(&self.conn, link, lane)?
            .map(|row| row.state())
            .unwrap_or_default())
    }

    /// The acknowledged position of both lanes of `link`: where a link engine starts after a
    /// restart.
    pub fn outbox_acked(&self, link: &str) -> Result<LaneCursors> {
        let mut cursors = LaneCursors::default();
        for lane in Lane::ALL {
            cursors.set(lane, self.outbox_lane_state(link, lane)?.acked_upto);
        }
        Ok(cursors)
    }

    /// Every link that has an outbox, with the state of each of its lanes, ordered by link
    /// then lane (critical first): the backlog part of a status report.
    pub fn outbox_lanes(&self) -> Result<Vec<(String, Lane, LaneState)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT link, lane FROM outbox_lanes ORDER BY link, lane")
            .op("prepare the outbox lane list")?;
        let keys = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .op("list outbox lanes")?;
        let mut out = Vec::with_capacity(keys.len());
        for (link, lane) in keys {
            let lane = lane_from_sql(lane, "outbox_lanes", || format!("link {link:?}"))?;
            let state = self.outbox_lane_state(&link, lane)?;
            out.push((link, lane, state));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "parent";

    fn store() -> Store {
        Store::open_in_memory().expect("open")
    }

    #[test]
    fn sequence_numbers_start_at_one_per_link_and_lane() {
        let mut s = store();
        assert_eq!(
            s.outbox_append(LINK, Lane::Normal, b"a").expect("append"),
            1
        );
        assert_eq!(
            s.outbox_append(LINK, Lane::Normal, b"b").expect("append"),
            2
        );
        assert_eq!(
            s.outbox_append(LINK, Lane::Critical, b"c").expect("append"),
            1
        );
        assert_eq!(
            s.outbox_append("child:x", Lane::Normal, b"d")
                .expect("append"),
            1
        );
        let seqs = s
            .outbox_append_many(
                LINK,
                [
                    (Lane::Critical, &b"e"[..]),
                    (Lane::Normal, b"f"),
                    (Lane::Critical, b"g"),
                ],
            )
            .expect("append many");
        assert_eq!(seqs, [2, 3, 3]);
        assert!(s
            .outbox_append_many(LINK, Vec::<(Lane, Vec<u8>)>::new())
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn numbers_are_not_reused_after_everything_is_acknowledged() {
        let mut s = store();
        for _ in 0..3 {
            s.outbox_append(LINK, Lane::Normal, b"xx").expect("append");
        }
        let outcome = s.outbox_ack(LINK, Lane::Normal, 3).expect("ack");
        assert_eq!(
            outcome,
            AckOutcome::Advanced {
                previous: 0,
                acked_upto: 3,
                deleted_records: 3,
                deleted_bytes: 6
            }
        );
        assert_eq!(
            s.outbox_lane_state(LINK, Lane::Normal).expect("state"),
            LaneState {
                acked_upto: 3,
                head_seq: 3,
                backlog_records: 0,
                backlog_bytes: 0
            }
        );
        assert_eq!(
            s.outbox_append(LINK, Lane::Normal, b"y").expect("append"),
            4
        );
    }

    #[test]
    fn acks_are_cumulative_stale_acks_are_no_ops_and_acks_beyond_head_are_errors() {
        let mut s = store();
        for i in 0..5u8 {
            s.outbox_append(LINK, Lane::Critical, &[i; 10])
                .expect("append");
        }
        assert!(matches!(
            s.outbox_ack(LINK, Lane::Critical, 2).expect("ack"),
            AckOutcome::Advanced {
                deleted_records: 2,
                deleted_bytes: 20,
                ..
            }
        ));
        assert_eq!(
            s.outbox_ack(LINK, Lane::Critical, 2).expect("repeat"),
            AckOutcome::Stale { acked_upto: 2 }
        );
        assert_eq!(
            s.outbox_ack(LINK, Lane::Critical, 1).expect("older"),
            AckOutcome::Stale { acked_upto: 2 }
        );
        let err = s
            .outbox_ack(LINK, Lane::Critical, 6)
            .expect_err("beyond head");
        assert!(
            matches!(
                err,
                StoreError::AckBeyondHead {
                    upto: 6,
                    head: 5,
                    ..
                }
            ),
            "{err}"
        );
        let state = s.outbox_lane_state(LINK, Lane::Critical).expect("state");
        assert_eq!(
            (state.acked_upto, state.backlog_records, state.backlog_bytes),
            (2, 3, 30)
        );
        // Lanes and links that never saw an append.
        assert_eq!(
            s.outbox_ack(LINK, Lane::Normal, 0).expect("zero"),
            AckOutcome::Stale { acked_upto: 0 }
        );
        assert!(s.outbox_ack("nowhere", Lane::Normal, 1).is_err());
        assert_eq!(
            s.outbox_lane_state("nowhere", Lane::Normal).expect("state"),
            LaneState::default()
        );
    }

    #[test]
    fn reads_respect_limits_but_always_return_one_record() {
        let mut s = store();
        for len in [100usize, 100, 500, 10] {
            s.outbox_append(LINK, Lane::Normal, &vec![7; len])
                .expect("append");
        }
        let seqs = |r: Vec<OutboxRecord>| r.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(s.outbox_read(LINK, Lane::Normal, 0, 10, 250).expect("read")),
            [1, 2]
        );
        assert_eq!(
            seqs(s.outbox_read(LINK, Lane::Normal, 2, 10, 250).expect("read")),
            [3],
            "oversized alone"
        );
        assert_eq!(
            seqs(s.outbox_read(LINK, Lane::Normal, 0, 0, 0).expect("read")),
            [1]
        );
        assert_eq!(
            seqs(
                s.outbox_read(LINK, Lane::Normal, 1, 2, 10_000)
                    .expect("read")
            ),
            [2, 3]
        );
        assert!(s
            .outbox_read(LINK, Lane::Normal, 4, 10, 10_000)
            .expect("read")
            .is_empty());
        assert!(s
            .outbox_read(LINK, Lane::Normal, u64::MAX, 10, 10)
            .expect("read")
            .is_empty());
        assert!(s
            .outbox_read(LINK, Lane::Critical, 0, 10, 10)
            .expect("read")
            .is_empty());
    }

    #[test]
    fn the_critical_lane_is_drained_first() {
        let mut s = store();
        s.outbox_append(LINK, Lane::Normal, b"n1").expect("append");
        s.outbox_append(LINK, Lane::Normal, b"n2").expect("append");
        s.outbox_append(LINK, Lane::Critical, b"c1")
            .expect("append");
        let mut cursors = s.outbox_acked(LINK).expect("acked");
        let mut sent = Vec::new();
        while let Some(batch) = s.outbox_next_batch(LINK, cursors, 1, 1024).expect("batch") {
            assert_eq!(batch.first_seq, batch.records[0].seq);
            cursors.set(batch.lane, batch.last_seq());
            sent.push((batch.lane, batch.records[0].payload.clone()));
        }
        assert_eq!(
            sent,
            [
                (Lane::Critical, b"c1".to_vec()),
                (Lane::Normal, b"n1".to_vec()),
                (Lane::Normal, b"n2".to_vec())
            ]
        );
        // A critical record appended mid-drain jumps the queue.
        s.outbox_append(LINK, Lane::Normal, b"n3").expect("append");
        s.outbox_append(LINK, Lane::Critical, b"c2")
            .expect("append");
        let batch = s
            .outbox_next_batch(LINK, cursors, 10, 1024)
            .expect("batch")
            .expect("some");
        assert_eq!((batch.lane, batch.first_seq), (Lane::Critical, 2));
        // After a restart, sending resumes after the acknowledged positions.
        assert_eq!(s.outbox_acked(LINK).expect("acked"), LaneCursors::default());
        s.outbox_ack(LINK, Lane::Critical, 2).expect("ack");
        s.outbox_ack(LINK, Lane::Normal, 1).expect("ack");
        let resumed = s.outbox_acked(LINK).expect("acked");
        assert_eq!(
            resumed,
            LaneCursors {
                critical: 2,
                normal: 1
            }
        );
        let batch = s
            .outbox_next_batch(LINK, resumed, 10, 1024)
            .expect("batch")
            .expect("some");
        assert_eq!(
            (batch.lane, batch.first_seq, batch.last_seq()),
            (Lane::Normal, 2, 3)
        );
        assert_eq!(batch.payload_bytes(), 4);
    }

    #[test]
    fn lanes_are_listed_for_status_reports() {
        let mut s = store();
        s.outbox_append("parent", Lane::Normal, b"abc")
            .expect("append");
        s.outbox_append("child:a", Lane::Critical, b"d")
            .expect("append");
        let lanes = s.outbox_lanes().expect("lanes");
        assert_eq!(lanes.len(), 2);
        assert_eq!(
            (lanes[0].0.as_str(), lanes[0].1),
            ("child:a", Lane::Critical)
        );
        assert_eq!(lanes[1].2.backlog_bytes, 3);
    }

    #[test]
    fn empty_payloads_are_records_too() {
        let mut s = store();
        assert_eq!(s.outbox_append(LINK, Lane::Normal, b"").expect("append"), 1);
        let read = s.outbox_read(LINK, Lane::Normal, 0, 10, 10).expect("read");
        assert_eq!(
            read,
            [OutboxRecord {
                seq: 1,
                payload: Vec::new()
            }]
        );
    }
}
