//! The inbox: the receiving side of a link, where a peer's batches become stored events.
//!
//! For each sending peer and lane the store keeps a cursor: the highest sequence number
//! whose events are committed here. [`Store::apply_batch`] applies a batch's events (through
//! the same idempotent path as [`Store::apply_events`]) and advances the cursor **in one
//! transaction**, and returns the cumulative ack to send. So an `Ack { upto_seq }` is only ever
//! sent for events that are durable here, and a crash between commit and ack only makes the
//! sender resend what is then counted as duplicates.
//!
//! A batch is accepted when it starts at or before `cursor + 1`: a resend overlapping what
//! is already here is applied idempotently (its old events count as duplicates). A batch that
//! starts after `cursor + 1` leaves a gap (an earlier batch was lost): it is not applied, and
//! the returned ack repeats the cursor, which tells the sender to resend from there.
//!
//! A hub relays what its children send on to its own parent:
//! [`Store::apply_batch_and_forward`] does what [`Store::apply_batch`] does and, in the same
//! transaction, appends the events that were new here — and that the node's escalation
//! policy sends up — to the forwarding link's outbox. So an event acknowledged to a child is
//! already queued for the parent: a crash cannot lose it between the two links, and a resent
//! batch is not relayed twice. [`Store::apply_batch_and_forward_by_alert`] does the same with
//! a policy that judges each event by its alert ([`AlertContext`]), as the transaction leaves
//! it.

use rusqlite::{params, Connection, OptionalExtension};
use tracing::debug;
use vigil_core::{AlertEvent, Lane, NodeId};
use vigil_wire::AuditEvent;

use crate::audit_remote::AuditApplied;
use crate::bindings::AdmitTx;
use crate::context::AlertContext;
use crate::convert::{seq_to_sql, u64_from_sql};
use crate::directives::InboundDirectives;
use crate::error::{Result, SqlContext, StoreError};
use crate::events::{apply_in_tracked, link_payload_from_body};
use crate::outbox::append_in;
use crate::store::Store;
use crate::views::TxViews;

/// What applying a batch did, and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BatchOutcome {
    /// The cumulative ack to send: every sequence number up to here is committed.
    pub ack_upto: u64,
    /// Events that were new here.
    pub applied: usize,
    /// Events that were already stored (a resend).
    pub duplicates: usize,
    /// The batch started after `cursor + 1` and was not applied: the sender must resend
    /// from `ack_upto + 1`.
    pub gap: bool,
}

/// What [`Store::apply_batch_and_forward`] did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ForwardOutcome {
    /// The batch's outcome, as [`Store::apply_batch`] reports it: the ack to send.
    pub batch: BatchOutcome,
    /// The indexes (into the batch's events, ascending) of the events that were new here:
    /// what the receiver hands on to its owner. Empty for a resend and for a gap.
    pub fresh: Vec<usize>,
    /// For each new event the policy sent up, in batch order: its lane and its sequence
    /// number in the forwarding link's outbox; then each new audit record, which always goes
    /// up (`normal` lane) when there is a forwarding link.
    pub forwarded: Vec<(Lane, u64)>,
    /// What the batch's audit records did ([`crate::audit_remote`]).
    pub audit: AuditApplied,
    /// The new events this node clamped, stamped too far ahead of its clock
    /// ([`crate::clamp`]): stored, relayed and sent back with their clamped stamps.
    pub clamped: Vec<crate::clamp::Clamped>,
    /// What the batch's directive records did ([`crate::directives`]); refused ones are a
    /// finding about the sender.
    pub directives: crate::directives::DirectivesApplied,
}

/// One batch a peer sent, for [`Store::apply_batches_and_forward`].
#[derive(Debug, Clone, Copy)]
pub struct InboundBatch<'a> {
    /// The sending peer.
    pub peer: &'a NodeId,
    /// The lane the batch was sent in.
    pub lane: Lane,
    /// The sequence number of its first event.
    pub first_seq: u64,
    /// Its alert events, in sequence order.
    pub events: &'a [AlertEvent],
    /// Its audit records (`vigil_wire::AuditEvent`). A batch's sequence numbers count its
    /// alert events and its audit records together; neither kind depends on its place in the
    /// batch when applied (both are keyed by id), so they are passed apart.
    pub audit: &'a [AuditEvent],
    /// Each alert event's JSON, exactly as `serde_json::to_string(&events[i])` writes it,
    /// when the caller encoded them before (off the store's thread, e.g. as it decoded the
    /// batch): stored and forwarded as they are. `None` (or a slice of another length) and
    /// the store encodes them itself.
    pub bodies: Option<&'a [String]>,
    /// Its directive records (directives from the parent, acknowledgements from a child;
    /// [`crate::directives`]): they take sequence numbers like the other kinds.
    pub directives: InboundDirectives<'a>,
}

impl InboundBatch<'_> {
    /// The sequence number of the last event as a column value, `None` for an empty batch;
    /// [`StoreError::InvalidBatch`] for one numbered from 0 or past 2^63 - 1.
    fn last_seq(&self) -> Result<Option<i64>> {
        let len = self.events.len() + self.audit.len() + self.directives.len();
        if len == 0 {
            return Ok(None);
        }
        let invalid = || StoreError::InvalidBatch {
            peer: self.peer.clone(),
            lane: self.lane,
            first_seq: self.first_seq,
            len,
        };
        if self.first_seq == 0 {
            return Err(invalid());
        }
        let last = self
            .first_seq
            .checked_add(len as u64 - 1)
            .ok_or_else(invalid)?;
        seq_to_sql(last).ok_or_else(invalid).map(Some)
    }
}

/// Applies `batch` (whose last sequence number is `last`, `None` when it is empty) inside
/// the caller's transaction: the events, the forwarded records, the cursor.
fn apply_in_tx<P>(
    tx: &Connection,
    views: &mut TxViews<'_>,
    batch: &InboundBatch<'_>,
    last: Option<i64>,
    forward_link: Option<&str>,
    policy: P,
) -> Result<ForwardOutcome>
where
    P: Fn(&AlertEvent, Option<&AlertContext>) -> Option<Lane>,
{
    let InboundBatch {
        peer,
        lane,
        first_seq,
        events,
        audit,
        bodies,
        directives,
    } = *batch;
    let bodies = bodies.filter(|b| b.len() == events.len());
    let cursor = load_cursor(tx, peer, lane)?;
    let Some(last_sql) = last else {
        return Ok(ForwardOutcome {
            batch: BatchOutcome {
                ack_upto: cursor,
                ..BatchOutcome::default()
            },
            ..ForwardOutcome::default()
        });
    };
    if first_seq > cursor.saturating_add(1) {
        debug!(%peer, %lane, cursor, first_seq, "batch after a gap: not applied, asking for a resend");
        return Ok(ForwardOutcome {
            batch: BatchOutcome {
                ack_upto: cursor,
                gap: true,
                ..BatchOutcome::default()
            },
            ..ForwardOutcome::default()
        });
    }
    let applied = apply_in_tracked(tx, views, events, bodies)?;
    let mut forwarded = Vec::new();
    if let Some(link) = forward_link {
        let mut payloads = Vec::new();
        for &index in &applied.fresh {
            let body = match bodies {
                Some(bodies) => bodies.get(index).map(String::as_str),
                None => applied.bodies.get(index).and_then(|b| b.as_deref()),
            };
            let (Some(event), Some(body)) = (events.get(index), body) else {
                continue;
            };
            if let Some(up_lane) = policy(event, views.staged(&event.alert)) {
                payloads.push((up_lane, link_payload_from_body(body)));
            }
        }
        let lanes: Vec<Lane> = payloads.iter().map(|(l, _)| *l).collect();
        let seqs = append_in(tx, link, payloads)?;
        forwarded = lanes.into_iter().zip(seqs).collect();
    }
    let (audit, audit_seqs) = crate::audit_remote::apply_in(tx, peer, audit, forward_link)?;
    forwarded.extend(audit_seqs.into_iter().map(|seq| (Lane::Normal, seq)));
    let (directives, directive_seqs) =
        crate::directives::apply_in(tx, peer, directives, forward_link)?;
    forwarded.extend(directive_seqs.into_iter().map(|seq| (Lane::Critical, seq)));
    // `last_sql` is `last_seq` checked to fit: it converts back.
    let last_seq = u64::try_from(last_sql).unwrap_or(u64::MAX);
    let ack_upto = cursor.max(last_seq);
    if ack_upto > cursor {
        tx.prepare_cached(
            "INSERT INTO inbox_cursors (peer, lane, applied_upto) VALUES (?1, ?2, ?3)
             ON CONFLICT (peer, lane) DO UPDATE SET applied_upto = excluded.applied_upto",
        )
        .and_then(|mut stmt| stmt.execute(params![peer.as_str(), lane.as_i64(), last_sql]))
        .op("advance an inbox cursor")?;
    }
    if !forwarded.is_empty() {
        debug!(%peer, %lane, forwarded = forwarded.len(), link = forward_link, "batch forwarded");
    }
    Ok(ForwardOutcome {
        batch: BatchOutcome {
            ack_upto,
            applied: applied.stats.applied,
            duplicates: applied.stats.duplicates,
            gap: false,
        },
        fresh: applied.fresh,
        forwarded,
        audit,
        clamped: Vec::new(),
        directives,
    })
}

/// Which of a batch's events and audit records an admission lets through (`true`: apply),
/// one flag per event and per record, in the batch's order; or, with `hold`, none of it
/// for now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admitted {
    /// One flag per alert event.
    pub events: Vec<bool>,
    /// One flag per audit record.
    pub audit: Vec<bool>,
    /// Hold the whole batch back: nothing of it is applied and the cursor stays, so it is
    /// not acknowledged and its peer sends it again (the flags are not looked at): what
    /// decides it may change before then (docs/ARCHITECTURE.md#site-bindings-and-admission).
    pub hold: bool,
}

/// An admission ([`Store::apply_batches_admitted_and_forward`]): judges a batch inside the
/// transaction that applies it; `true` when some of the batch is beyond the peer's cursor.
pub type Admit<'a> =
    dyn FnMut(&AdmitTx<'_>, &InboundBatch<'_>, bool) -> Result<Option<Admitted>> + 'a;

/// Judges `batch` with `admit` (when there is one, and the batch does not follow a gap),
/// then applies what it lets through with `apply` — the cursor still advancing over the
/// whole batch — and gives the outcome's event indexes back in the batch's own numbering.
fn apply_admitted<F>(
    tx: &Connection,
    admit: Option<&mut Admit<'_>>,
    batch: &InboundBatch<'_>,
    apply: F,
) -> Result<ForwardOutcome>
where
    F: FnOnce(&InboundBatch<'_>) -> Result<ForwardOutcome>,
{
    let Some(admit) = admit else {
        return apply(batch);
    };
    let len = (batch.events.len() + batch.audit.len() + batch.directives.len()) as u64;
    let cursor = load_cursor(tx, batch.peer, batch.lane)?;
    if len == 0 || batch.first_seq > cursor.saturating_add(1) {
        return apply(batch);
    }
    let beyond = batch.first_seq.saturating_add(len - 1) > cursor;
    let Some(admitted) = admit(&AdmitTx { conn: tx }, batch, beyond)? else {
        return apply(batch);
    };
    if admitted.hold {
        return Ok(ForwardOutcome {
            batch: BatchOutcome {
                ack_upto: cursor,
                ..BatchOutcome::default()
            },
            ..ForwardOutcome::default()
        });
    }
    let flag = |flags: &[bool], i: usize| flags.get(i).copied().unwrap_or(true);
    let kept: Vec<usize> = (0..batch.events.len())
        .filter(|&i| flag(&admitted.events, i))
        .collect();
    let audit_kept = (0..batch.audit.len()).all(|i| flag(&admitted.audit, i));
    if kept.len() == batch.events.len() && audit_kept {
        return apply(batch);
    }
    let events: Vec<AlertEvent> = kept.iter().map(|&i| batch.events[i].clone()).collect();
    let bodies: Option<Vec<String>> = batch
        .bodies
        .filter(|b| b.len() == batch.events.len())
        .map(|b| kept.iter().map(|&i| b[i].clone()).collect());
    let audit: Vec<AuditEvent> = batch
        .audit
        .iter()
        .enumerate()
        .filter(|&(i, _)| flag(&admitted.audit, i))
        .map(|(_, a)| a.clone())
        .collect();
    let admitted_batch = InboundBatch {
        events: &events,
        audit: &audit,
        bodies: bodies.as_deref(),
        ..*batch
    };
    let mut outcome = apply(&admitted_batch)?;
    let back = |i: usize| kept.get(i).copied().unwrap_or(i);
    for index in &mut outcome.fresh {
        *index = back(*index);
    }
    for clamped in &mut outcome.clamped {
        clamped.index = back(clamped.index);
    }
    Ok(outcome)
}

fn load_cursor(conn: &Connection, peer: &NodeId, lane: Lane) -> Result<u64> {
    let raw: Option<i64> = conn
        .prepare_cached("SELECT applied_upto FROM inbox_cursors WHERE peer = ?1 AND lane = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![peer.as_str(), lane.as_i64()], |row| row.get(0))
                .optional()
        })
        .op("read an inbox cursor")?;
    raw.map_or(Ok(0), |v| {
        u64_from_sql(v, "inbox_cursors", || format!("peer {peer} lane {lane}"))
    })
}

impl Store {
    /// Applies a batch `first_seq ..` of `events` from `peer` on `lane` and advances the
    /// peer's cursor, in one durable transaction; returns the ack to send.
    ///
    /// An empty batch changes nothing. A batch numbered from 0, or whose last number would
    /// pass 2^63 - 1, is [`StoreError::InvalidBatch`].
    pub fn apply_batch(
        &mut self,
        peer: &NodeId,
        lane: Lane,
        first_seq: u64,
        events: &[AlertEvent],
    ) -> Result<BatchOutcome> {
        self.apply_batch_and_forward(peer, lane, first_seq, events, None, |_| None)
            .map(|outcome| outcome.batch)
    }

    /// [`Store::apply_batch`], and in the same durable transaction, appends every event of
    /// the batch that was new here and that `policy` gives a lane to (`None`: it stays here)
    /// to that lane of `forward_link`'s outbox, encoded as a link event like
    /// [`Store::record_events`] does. With `forward_link` `None` nothing is forwarded and
    /// `policy` is not called.
    ///
    /// A duplicate (resent) event is neither applied nor forwarded again; a batch after a gap
    /// applies and forwards nothing. If anything fails, nothing of it is committed: not the
    /// events, not the cursor, not the forwarded records.
    pub fn apply_batch_and_forward<P>(
        &mut self,
        peer: &NodeId,
        lane: Lane,
        first_seq: u64,
        events: &[AlertEvent],
        forward_link: Option<&str>,
        policy: P,
    ) -> Result<ForwardOutcome>
    where
        P: Fn(&AlertEvent) -> Option<Lane>,
    {
        self.apply_and_forward_with(peer, lane, first_seq, events, forward_link, |e, _| {
            policy(e)
        })
    }

    /// [`Store::apply_batch_and_forward`] with a policy that judges each new event by its
    /// alert: the [`AlertContext`] it gets is the alert folded from everything stored here,
    /// the batch included, with its peak severity — as this very transaction leaves it. The
    /// store keeps both per alert as events arrive, so no alert's history is read again.
    pub fn apply_batch_and_forward_by_alert<P>(
        &mut self,
        peer: &NodeId,
        lane: Lane,
        first_seq: u64,
        events: &[AlertEvent],
        forward_link: &str,
        policy: P,
    ) -> Result<ForwardOutcome>
    where
        P: Fn(&AlertEvent, &AlertContext) -> Option<Lane>,
    {
        self.apply_and_forward_with(
            peer,
            lane,
            first_seq,
            events,
            Some(forward_link),
            |e, ctx| ctx.and_then(|ctx| policy(e, ctx)),
        )
    }

    /// Applies several batches — from one peer or many, in order — and forwards what
    /// `policy` selects, like [`Store::apply_batch_and_forward_by_alert`] does for each, all
    /// in **one** durable transaction: one commit (one fsync) for the group. A receiver that
    /// finds several batches waiting (many children draining at once) commits them together
    /// and then acknowledges each; nothing is acknowledged before the group is durable.
    ///
    /// The outcomes are in the order of `batches`; each batch sees the ones before it (two
    /// batches of one peer's lane in a row are applied in turn). The policy gets each new
    /// event with its alert as the group leaves it so far. With `forward_link` `None`
    /// nothing is forwarded and `policy` is not called.
    ///
    /// All or nothing: if any batch is invalid or fails, nothing of the group is committed
    /// and the error is returned — a receiver then applies the batches one by one, so one bad
    /// batch cannot hold up the others.
    pub fn apply_batches_and_forward<P>(
        &mut self,
        batches: &[InboundBatch<'_>],
        forward_link: Option<&str>,
        policy: P,
    ) -> Result<Vec<ForwardOutcome>>
    where
        P: Fn(&AlertEvent, &AlertContext) -> Option<Lane>,
    {
        self.apply_batches_admitted_and_forward(batches, forward_link, policy, None)
    }

    /// [`Store::apply_batches_and_forward`], with each batch judged first by `admit`
    /// (docs/ARCHITECTURE.md#site-bindings-and-admission), in the same transaction: it gets
    /// the batch, lookups on the transaction ([`AdmitTx`]: bindings, which child each alert
    /// came through, and the ties it records), and whether any of the batch is beyond the
    /// peer's cursor (`false` for a whole resend); it returns which events and audit records
    /// to apply ([`Admitted`]; `None`: all). What it refuses is not applied, and the cursor
    /// advances over it all the same: the batch is acknowledged. A batch after a gap is not
    /// judged (nothing of it is applied). The outcome's indexes (`fresh`, `clamped`) are
    /// into the batch's events as given.
    pub fn apply_batches_admitted_and_forward<P>(
        &mut self,
        batches: &[InboundBatch<'_>],
        forward_link: Option<&str>,
        policy: P,
        mut admit: Option<&mut Admit<'_>>,
    ) -> Result<Vec<ForwardOutcome>>
    where
        P: Fn(&AlertEvent, &AlertContext) -> Option<Lane>,
    {
        let checked = batches
            .iter()
            .map(InboundBatch::last_seq)
            .collect::<Result<Vec<_>>>()?;
        if checked.iter().all(Option::is_none) {
            // Only empty batches: nothing to write.
            return batches
                .iter()
                .map(|b| {
                    Ok(ForwardOutcome {
                        batch: BatchOutcome {
                            ack_upto: self.inbox_cursor(b.peer, b.lane)?,
                            ..BatchOutcome::default()
                        },
                        ..ForwardOutcome::default()
                    })
                })
                .collect();
        }
        let (tx, mut views) = self.write_tx_views("begin applying batches")?;
        let guard = crate::clamp::Guard::load(&tx, vigil_core::Timestamp::now())?;
        // Room for every alert the group may fold, at once rather than batch by batch.
        views.reserve(batches.iter().map(|b| b.events.len()).sum());
        let outcomes = batches
            .iter()
            .zip(checked)
            .map(|(batch, last)| {
                apply_admitted(&tx, admit.as_deref_mut(), batch, |batch| {
                    crate::clamp::apply_guarded(&tx, guard.as_ref(), batch, |batch| {
                        apply_in_tx(&tx, &mut views, batch, last, forward_link, |e, ctx| {
                            ctx.and_then(|ctx| policy(e, ctx))
                        })
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        tx.commit().op("commit batches")?;
        views.commit();
        Ok(outcomes)
    }

    /// The body of the single-batch forms: `policy` gets each new event and its alert's
    /// context.
    fn apply_and_forward_with<P>(
        &mut self,
        peer: &NodeId,
        lane: Lane,
        first_seq: u64,
        events: &[AlertEvent],
        forward_link: Option<&str>,
        policy: P,
    ) -> Result<ForwardOutcome>
    where
        P: Fn(&AlertEvent, Option<&AlertContext>) -> Option<Lane>,
    {
        let batch = InboundBatch {
            peer,
            lane,
            first_seq,
            events,
            audit: &[],
            bodies: None,
            directives: InboundDirectives::None,
        };
        let Some(last) = batch.last_seq()? else {
            return Ok(ForwardOutcome {
                batch: BatchOutcome {
                    ack_upto: self.inbox_cursor(peer, lane)?,
                    ..BatchOutcome::default()
                },
                ..ForwardOutcome::default()
            });
        };
        let (tx, mut views) = self.write_tx_views("begin applying a batch")?;
        let outcome = apply_in_tx(&tx, &mut views, &batch, Some(last), forward_link, policy)?;
        // A batch after a gap wrote nothing: its transaction ends without a commit.
        if !outcome.batch.gap {
            tx.commit().op("commit a batch")?;
            views.commit();
        }
        Ok(outcome)
    }

    /// The highest sequence number from `peer` on `lane` whose events are committed here
    /// (0 before the first batch): the cumulative ack for that lane.
    pub fn inbox_cursor(&self, peer: &NodeId, lane: Lane) -> Result<u64> {
        load_cursor(&self.conn, peer, lane)
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEventBody, AlertId, EventId, Hlc};

    use super::*;

    fn events(n: u8) -> Vec<AlertEvent> {
        (1..=n)
            .map(|i| AlertEvent {
                id: EventId::from_bytes([i; 16]),
                alert: AlertId::from_bytes([0xA; 16]),
                origin: NodeId::new("gw-1").expect("valid"),
                hlc: Hlc::new(u64::from(i), 0),
                actor: Actor::System,
                body: AlertEventBody::Commented {
                    text: format!("{i}"),
                },
                clamped_from: None,
            })
            .collect()
    }

    #[test]
    fn a_failing_batch_leaves_events_and_cursor_untouched() {
        let mut store = Store::open_in_memory().expect("open");
        let peer = NodeId::new("gw-1").expect("valid");
        let mut batch = events(3);
        batch[2].hlc = Hlc::new(u64::MAX, 0);
        store
            .apply_batch(&peer, Lane::Normal, 1, &batch)
            .expect_err("unstorable stamp");
        assert_eq!(store.inbox_cursor(&peer, Lane::Normal).expect("cursor"), 0);
        assert_eq!(store.event_count().expect("count"), 0);
    }

    #[test]
    fn refused_events_are_not_applied_but_the_cursor_passes_them() {
        let mut store = Store::open_in_memory().expect("open");
        let peer = NodeId::new("gw-1").expect("valid");
        let mut batch = events(3);
        for (i, e) in batch.iter_mut().enumerate() {
            e.alert = AlertId::from_bytes([i as u8 + 1; 16]);
        }
        let inbound = InboundBatch {
            peer: &peer,
            lane: Lane::Normal,
            first_seq: 1,
            events: &batch,
            audit: &[],
            bodies: None,
            directives: crate::directives::InboundDirectives::None,
        };
        let mut calls = Vec::new();
        let mut admit = |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, beyond: bool| {
            calls.push(beyond);
            // The lookups work inside the transaction; a tie is seen at once.
            atx.tie(&b.events[0].alert, b.peer)?;
            assert_eq!(
                atx.alert_via(&b.events[0].alert)?,
                crate::bindings::AlertVia::Child(peer.clone())
            );
            assert_eq!(
                atx.alert_via(&b.events[1].alert)?,
                crate::bindings::AlertVia::Unknown
            );
            assert!(atx.binding(b.peer)?.is_none());
            Ok(Some(Admitted {
                events: vec![true, false, true],
                audit: Vec::new(),
                hold: false,
            }))
        };
        let out = store
            .apply_batches_admitted_and_forward(&[inbound], None, |_, _| None, Some(&mut admit))
            .expect("applied");
        assert_eq!(out[0].batch.ack_upto, 3);
        assert_eq!(out[0].batch.applied, 2);
        assert_eq!(out[0].fresh, [0, 2]);
        assert_eq!(store.event_count().expect("count"), 2);
        assert!(store.alert(batch[1].alert).expect("read").is_none());
        // Held here through no child (a comment: no key, so no origin either).
        assert_eq!(
            AdmitTx { conn: &store.conn }
                .alert_via(&batch[2].alert)
                .expect("read"),
            crate::bindings::AlertVia::Untied(None)
        );
        // A whole resend is judged again (and refused again) but said to be no news.
        let out = store
            .apply_batches_admitted_and_forward(&[inbound], None, |_, _| None, Some(&mut admit))
            .expect("applied");
        assert_eq!((out[0].batch.ack_upto, out[0].batch.applied), (3, 0));
        assert_eq!(calls, [true, false]);
        assert_eq!(store.event_count().expect("count"), 2);
    }

    #[test]
    fn a_held_batch_is_not_applied_and_the_cursor_stays() {
        let mut store = Store::open_in_memory().expect("open");
        let peer = NodeId::new("gw-1").expect("valid");
        let batch = events(2);
        let inbound = InboundBatch {
            peer: &peer,
            lane: Lane::Normal,
            first_seq: 1,
            events: &batch,
            audit: &[],
            bodies: None,
            directives: crate::directives::InboundDirectives::None,
        };
        let mut hold = true;
        let mut admit = |_: &AdmitTx<'_>, _: &InboundBatch<'_>, _: bool| {
            Ok(Some(Admitted {
                hold,
                ..Admitted::default()
            }))
        };
        let out = store
            .apply_batches_admitted_and_forward(&[inbound], None, |_, _| None, Some(&mut admit))
            .expect("held");
        assert_eq!((out[0].batch.ack_upto, out[0].batch.applied), (0, 0));
        assert!(out[0].fresh.is_empty());
        assert_eq!(store.event_count().expect("count"), 0);
        assert_eq!(store.inbox_cursor(&peer, Lane::Normal).expect("cursor"), 0);
        // Sent again and no longer held: applied.
        hold = false;
        let mut admit = |_: &AdmitTx<'_>, _: &InboundBatch<'_>, _: bool| {
            Ok(Some(Admitted {
                events: vec![true, true],
                hold,
                ..Admitted::default()
            }))
        };
        let out = store
            .apply_batches_admitted_and_forward(&[inbound], None, |_, _| None, Some(&mut admit))
            .expect("applied");
        assert_eq!((out[0].batch.ack_upto, out[0].batch.applied), (2, 2));
    }

    #[test]
    fn invalid_numbering_names_the_peer() {
        let mut store = Store::open_in_memory().expect("open");
        let peer = NodeId::new("gw-9").expect("valid");
        let err = store
            .apply_batch(&peer, Lane::Critical, 0, &events(1))
            .expect_err("seq 0");
        let text = err.to_string();
        assert!(text.contains("gw-9") && text.contains("critical"), "{text}");
        let too_far = u64::try_from(i64::MAX).expect("fits");
        assert!(store
            .apply_batch(&peer, Lane::Critical, too_far, &events(2))
            .is_err());
        // The last representable number itself is valid (here: a gap, so not applied).
        let out = store
            .apply_batch(&peer, Lane::Critical, too_far, &events(1))
            .expect("valid numbering");
        assert!(out.gap);
        let out = store
            .apply_batch(&peer, Lane::Critical, 1, &events(1))
            .expect("ok");
        assert_eq!(out.ack_upto, 1);
    }
}
