//! Clock skew at the receiving end (docs/ARCHITECTURE.md#clocks-and-skew): a hub clamps the
//! stamp of a child's event that runs too far ahead of its own wall clock, sends the clamped
//! copy back down, and every store that holds the event with its first stamp takes the
//! clamped copy in its place.
//!
//! - **The guard** ([`ClockGuard`], [`Store::set_clock_guard`]): a hub's setting, from
//!   `[link] max_clock_skew`, kept in the store (`clock_guard`, migration 12) so that every
//!   transaction applying children's batches reads it. Without it (an agent) nothing is
//!   clamped.
//! - **Clamping** (`apply_guarded`, around each batch of
//!   [`Store::apply_batches_and_forward`], the children's path): an event stamped more than
//!   the skew ahead of this node's clock is restamped with [`vigil_core::clamp_ahead`] —
//!   this node's clock, or just after the greatest stamp its alert has here when that is
//!   later, so it keeps its place after what it followed — and keeps its first stamp in
//!   `clamped_from` ([`AlertEvent::clamp_to`]). It is stored, folded and relayed up as
//!   clamped, and in the same transaction queued back to the child that sent it (outbox
//!   `{echo_prefix}{child}`), so the origin converges too. What was clamped is reported in
//!   [`ForwardOutcome::clamped`] for the link to raise.
//! - **Replacing** (`replace_held`, from the event store's apply path, on every path): an
//!   event already held here by id is a duplicate, except a clamped copy of it — same
//!   event, `clamped_from` the stamp held here (or the same original, clamped lower by a
//!   hub above): that copy replaces the held one and the alert is folded again. Nothing
//!   else can rewrite an event.
//! - **Resuming** ([`Store::clock_resume_point`]): a node's clock resumes after the greatest
//!   stored stamp that is not ahead of its clock by more than the skew; what lies beyond
//!   (stored before this guard existed) is reported, not followed.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use vigil_core::{clamp_ahead, AlertEvent, AlertId, Hlc, Timestamp};

use crate::convert::{hlc_from_sql, hlc_to_sql, u64_from_sql};
use crate::error::{Result, SqlContext, StoreError};
use crate::events::link_payload_from_body;
use crate::inbox::{ForwardOutcome, InboundBatch};
use crate::outbox::append_in;
use crate::store::Store;

/// A hub's guard on the stamps of its children's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockGuard {
    /// How far ahead of this node's wall clock a child's event may be stamped; further
    /// ahead, it is clamped (`[link] max_clock_skew`).
    pub max_skew: Duration,
    /// The outbox a clamped copy goes back down on is this prefix and the child's id (a
    /// hub's downlink outboxes, `child:`). Empty: the copy is not sent back.
    pub echo_prefix: String,
}

/// One event of a batch clamped as it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Clamped {
    /// Its index in the batch's events.
    pub index: usize,
    /// The stamp it came with.
    pub original: Hlc,
    /// The stamp it was stored, relayed and sent back with.
    pub stamp: Hlc,
    /// How far ahead of this node's wall clock it came.
    pub ahead: Duration,
}

impl Clamped {
    /// Gives `event` (the batch's event at [`index`](Clamped::index), as received) the
    /// stamp it was stored with: what the receiver hands on is then what it holds.
    pub fn restamp(&self, event: &mut AlertEvent) {
        if event.hlc == self.original {
            event.clamp_to(self.stamp);
        }
    }
}

/// Where a node's clock resumes, and what it passed over ([`Store::clock_resume_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResumePoint {
    /// The greatest stamp stored within the bound: the clock resumes after it.
    pub last: Option<Hlc>,
    /// How many alerts have a last stamp beyond the bound (not followed).
    pub ignored: u64,
    /// The greatest of those stamps.
    pub ignored_max: Option<Hlc>,
}

/// The guard as one transaction applies it: the setting, and this node's clock read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Guard {
    now_ms: u64,
    max_skew_ms: u64,
    echo_prefix: String,
}

impl Guard {
    /// The node's guard with its clock at `now`, or `None` when it has none.
    pub(crate) fn load(conn: &Connection, now: Timestamp) -> Result<Option<Guard>> {
        let row: Option<(Option<i64>, String)> = conn
            .prepare_cached("SELECT max_skew_ms, echo_prefix FROM clock_guard WHERE id = 1")
            .and_then(|mut stmt| {
                stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .op("read the clock guard")?;
        let Some((Some(max_skew_ms), echo_prefix)) = row else {
            return Ok(None);
        };
        Ok(Some(Guard {
            now_ms: u64::try_from(now.as_millis()).unwrap_or(0),
            max_skew_ms: u64_from_sql(max_skew_ms, "clock_guard", || "max_skew_ms".into())?,
            echo_prefix,
        }))
    }

    /// The events of `events` to clamp, by index, with their new stamps. Each alert's
    /// events are taken in fold order, so a clamped event lands after the alert's greatest
    /// stamp held here and after the batch's events before it.
    fn decide(&self, conn: &Connection, events: &[AlertEvent]) -> Result<Vec<(usize, Hlc)>> {
        let bound = self.now_ms.saturating_add(self.max_skew_ms);
        if events.iter().all(|e| e.hlc.wall <= bound) {
            return Ok(Vec::new());
        }
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].order_key());
        // Per alert: the greatest stamp held here (read when first needed) and seen so far.
        let mut last: HashMap<AlertId, (Option<Option<Hlc>>, Option<Hlc>)> = HashMap::new();
        let mut clamps = Vec::new();
        for index in order {
            let event = &events[index];
            let (held, seen) = last.entry(event.alert).or_default();
            let mut stamp = event.hlc;
            if event.hlc.wall > bound {
                if held.is_none() {
                    *held = Some(alert_last_hlc(conn, event.alert)?);
                }
                let after = (*held).flatten().max(*seen);
                if let Some(clamped) = clamp_ahead(event.hlc, self.now_ms, self.max_skew_ms, after)
                {
                    clamps.push((index, clamped));
                    stamp = clamped;
                }
            }
            *seen = (*seen).max(Some(stamp));
        }
        clamps.sort_unstable();
        Ok(clamps)
    }
}

/// The fold position of an alert's last event here, if it has any.
fn alert_last_hlc(conn: &Connection, alert: AlertId) -> Result<Option<Hlc>> {
    let packed: Option<Option<i64>> = conn
        .prepare_cached("SELECT last_hlc FROM alerts WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&alert.as_bytes()[..]], |row| row.get(0))
                .optional()
        })
        .op("read an alert's last stamp")?;
    packed
        .flatten()
        .map(|p| hlc_from_sql(p, "alerts", || format!("id {alert} last_hlc")))
        .transpose()
}

/// Applies `batch` with `apply` (the inbox's own apply, in the caller's transaction), its
/// events clamped by `guard` first; queues the clamped events that were new here back to
/// the sender and reports them in the outcome. Without a guard, `apply(batch)`.
pub(crate) fn apply_guarded<F>(
    tx: &Connection,
    guard: Option<&Guard>,
    batch: &InboundBatch<'_>,
    apply: F,
) -> Result<ForwardOutcome>
where
    F: FnOnce(&InboundBatch<'_>) -> Result<ForwardOutcome>,
{
    let Some(guard) = guard else {
        return apply(batch);
    };
    let clamps = guard.decide(tx, batch.events)?;
    if clamps.is_empty() {
        return apply(batch);
    }
    let mut events = batch.events.to_vec();
    for &(index, stamp) in &clamps {
        events[index].clamp_to(stamp);
    }
    // The caller's bodies are the events as received: the clamped ones are encoded again.
    let mut bodies = match batch.bodies.filter(|b| b.len() == events.len()) {
        Some(given) => given.to_vec(),
        None => Vec::new(),
    };
    let mut encoded = Vec::with_capacity(clamps.len());
    for &(index, _) in &clamps {
        let body = serde_json::to_string(&events[index]).map_err(|source| StoreError::Encode {
            what: "a clamped alert event",
            source,
        })?;
        if let Some(slot) = bodies.get_mut(index) {
            slot.clone_from(&body);
        }
        encoded.push(body);
    }
    let clamped_batch = InboundBatch {
        events: &events,
        bodies: (!bodies.is_empty()).then_some(&bodies[..]),
        ..*batch
    };
    let mut outcome = apply(&clamped_batch)?;
    let mut echo = Vec::new();
    for (&(index, stamp), body) in clamps.iter().zip(&encoded) {
        // Only what was new here: a resent event was clamped, queued back and reported
        // when it first came.
        if outcome.fresh.binary_search(&index).is_err() {
            continue;
        }
        let original = batch.events[index].hlc;
        outcome.clamped.push(Clamped {
            index,
            original,
            stamp,
            ahead: Duration::from_millis(original.wall.saturating_sub(guard.now_ms)),
        });
        echo.push((batch.lane, link_payload_from_body(body)));
    }
    if !echo.is_empty() && !guard.echo_prefix.is_empty() {
        let link = format!("{}{}", guard.echo_prefix, batch.peer);
        append_in(tx, &link, echo)?;
    }
    if let Some(first) = outcome.clamped.first() {
        tracing::warn!(
            child = %batch.peer, lane = %batch.lane, clamped = outcome.clamped.len(),
            original = %first.original, stamp = %first.stamp,
            ahead_ms = u64::try_from(first.ahead.as_millis()).unwrap_or(u64::MAX),
            max_skew_ms = guard.max_skew_ms,
            "a child's events are stamped too far ahead of this node's clock: clamped to it \
             (check the child's time synchronisation)"
        );
    }
    Ok(outcome)
}

/// Whether `incoming` is a clamped copy of `held` that takes its place: the same event
/// (id, alert, origin, actor, body), stamped earlier than it came, and either `held` is
/// the event with the stamp it was clamped from, or a copy clamped from the same stamp but
/// later (a hub above clamped it again, lower).
pub(crate) fn replaces(held: &AlertEvent, incoming: &AlertEvent) -> bool {
    let Some(original) = incoming.clamped_from else {
        return false;
    };
    let same_event = held.id == incoming.id
        && held.alert == incoming.alert
        && held.origin == incoming.origin
        && held.actor == incoming.actor
        && held.body == incoming.body;
    let later_held = match held.clamped_from {
        None => held.hlc == original,
        Some(held_original) => held_original == original && incoming.hlc < held.hlc,
    };
    same_event && incoming.hlc < original && later_held
}

/// For an event already stored by id: when `event` is a clamped copy that replaces the
/// held one ([`replaces`]), writes it (its stamp `hlc`, its JSON `body`) in its place and
/// returns `true`; the caller folds the alert again.
pub(crate) fn replace_held(
    conn: &Connection,
    event: &AlertEvent,
    hlc: i64,
    body: &str,
) -> Result<bool> {
    if event.clamped_from.is_none() {
        return Ok(false);
    }
    let held: Option<String> = conn
        .prepare_cached("SELECT body FROM events WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&event.id.as_bytes()[..]], |row| row.get(0))
                .optional()
        })
        .op("read a held event")?;
    let Some(held) = held else {
        return Ok(false);
    };
    let held: AlertEvent =
        serde_json::from_str(&held).map_err(|source| StoreError::CorruptJson {
            table: "events",
            row: format!("id {}", event.id),
            source,
        })?;
    if !replaces(&held, event) {
        return Ok(false);
    }
    conn.prepare_cached("UPDATE events SET hlc = ?2, body = ?3 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![&event.id.as_bytes()[..], hlc, body]))
        .op("replace a held event by its clamped copy")?;
    tracing::info!(
        event = %event.id, alert = %event.alert, held = %held.hlc, stamp = %event.hlc,
        "an event held here was clamped by a hub: its clamped copy takes its place"
    );
    Ok(true)
}

impl Store {
    /// Sets this node's guard on its children's stamps (`None`: no guard). A hub sets it at
    /// every start from `[link] max_clock_skew`; it holds for every process on the store.
    pub fn set_clock_guard(&mut self, guard: Option<&ClockGuard>) -> Result<()> {
        let max_skew_ms = guard.map(|g| count_to_sql_ms(g.max_skew));
        let prefix = guard.map_or("", |g| g.echo_prefix.as_str());
        self.conn
            .execute(
                "UPDATE clock_guard SET max_skew_ms = ?1, echo_prefix = ?2 WHERE id = 1",
                params![max_skew_ms, prefix],
            )
            .op("set the clock guard")?;
        Ok(())
    }

    /// This node's guard on its children's stamps, if it has one.
    pub fn clock_guard(&self) -> Result<Option<ClockGuard>> {
        Ok(
            Guard::load(&self.conn, Timestamp::from_millis(0))?.map(|g| ClockGuard {
                max_skew: Duration::from_millis(g.max_skew_ms),
                echo_prefix: g.echo_prefix,
            }),
        )
    }

    /// Where a node's clock resumes: the greatest stamp of any stored event that is not
    /// above `bound` (the node's wall clock plus the skew it accepts), and what lies beyond
    /// it — stamps from before this node clamped its children's, or from a clock that has
    /// since gone back. A clock resumed from those would stamp every later event of this
    /// node with the wrong time, so they are passed over (an action on such an alert still
    /// folds after it: the hub stamps it after the alert's last event).
    ///
    /// Read from the alerts' last stamps, like [`Store::max_hlc`].
    pub fn clock_resume_point(&self, bound: Hlc) -> Result<ResumePoint> {
        let Some(bound_sql) = hlc_to_sql(bound.min(Hlc::MAX)) else {
            return Ok(ResumePoint::default());
        };
        let row = |sql: &'static str, what: &'static str| -> Result<(i64, Option<i64>)> {
            self.conn
                .query_row(sql, [bound_sql], |row| Ok((row.get(0)?, row.get(1)?)))
                .op(what)
        };
        let (_, last) = row(
            "SELECT count(*), max(last_hlc) FROM alerts WHERE last_hlc <= ?1",
            "read the greatest stamp within the bound",
        )?;
        let (ignored, ignored_max) = row(
            "SELECT count(*), max(last_hlc) FROM alerts WHERE last_hlc > ?1",
            "read the stamps beyond the bound",
        )?;
        let hlc = |packed: Option<i64>| {
            packed
                .map(|p| hlc_from_sql(p, "alerts", || "max(last_hlc)".to_owned()))
                .transpose()
        };
        Ok(ResumePoint {
            last: hlc(last)?,
            ignored: u64_from_sql(ignored, "alerts", || "count(*)".to_owned())?,
            ignored_max: hlc(ignored_max)?,
        })
    }
}

/// A duration in whole milliseconds as a column value, saturating.
fn count_to_sql_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEventBody, EventId, NodeId};

    use super::*;

    fn event(wall: u64) -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([1; 16]),
            alert: AlertId::from_bytes([2; 16]),
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(wall, 0),
            actor: Actor::System,
            body: AlertEventBody::Reset,
            clamped_from: None,
        }
    }

    fn clamped(wall: u64, to: u64) -> AlertEvent {
        let mut e = event(wall);
        e.clamp_to(Hlc::new(to, 0));
        e
    }

    #[test]
    fn only_a_clamped_copy_of_the_same_event_replaces_it() {
        let held = event(9_000);
        assert!(replaces(&held, &clamped(9_000, 1_000)));
        // Not clamped, or clamped from another stamp, or not earlier: a duplicate.
        assert!(!replaces(&held, &event(1_000)));
        assert!(!replaces(&held, &clamped(8_000, 1_000)));
        let mut later = event(9_000);
        later.clamped_from = Some(Hlc::new(9_000, 0));
        later.hlc = Hlc::new(9_500, 0);
        assert!(!replaces(&held, &later));
        // Another event's content under the id: never.
        let mut other = clamped(9_000, 1_000);
        other.body = AlertEventBody::Unshelved;
        assert!(!replaces(&held, &other));
        let mut other = clamped(9_000, 1_000);
        other.origin = NodeId::new("gw-2").expect("node");
        assert!(!replaces(&held, &other));
    }

    #[test]
    fn a_lower_clamp_of_the_same_original_replaces_a_higher_one() {
        let first = clamped(9_000, 2_000);
        assert!(replaces(&first, &clamped(9_000, 1_000)));
        assert!(!replaces(&first, &clamped(9_000, 2_000)), "the same copy");
        assert!(!replaces(&first, &clamped(9_000, 3_000)), "a later clamp");
        assert!(
            !replaces(&first, &clamped(8_000, 1_000)),
            "another original"
        );
    }

    #[test]
    fn the_guard_clamps_in_fold_order_after_what_the_alert_holds() {
        let store = Store::open_in_memory().expect("open");
        let guard = Guard {
            now_ms: 1_000_000,
            max_skew_ms: 1_000,
            echo_prefix: "child:".into(),
        };
        let mut a = event(1_000_500); // within the bound
        a.id = EventId::from_bytes([3; 16]);
        let mut b = event(5_000_000); // ahead
        b.id = EventId::from_bytes([4; 16]);
        let mut c = event(4_000_000); // ahead, earlier than b
        c.id = EventId::from_bytes([5; 16]);
        let clamps = guard.decide(&store.conn, &[b, a, c]).expect("decide");
        // c then b, both after a (the batch's greatest stamp within the bound).
        assert_eq!(
            clamps,
            [(0, Hlc::new(1_000_500, 2)), (2, Hlc::new(1_000_500, 1))]
        );
        assert!(guard
            .decide(&store.conn, &[event(1_001_000)])
            .expect("decide")
            .is_empty());
    }
}
