//! The alert event store: every event once, and each alert's folded view.
//!
//! Events are immutable and identified by their UUIDv7 id, so applying is `INSERT OR IGNORE`
//! by id: an event that is already here is counted as a duplicate and changes nothing. That
//! is what turns the links' at-least-once delivery into an exactly-once effect.
//!
//! Each alert's state is the fold of its event set in `(HLC, event id)` order
//! ([`AlertView::fold`]). The store keeps the folded [`AlertView`] of every alert in `alerts`
//! (as the row's columns, with the members no column holds in `view`: `stored_view`) and
//! keeps it current as events arrive:
//!
//! - a new event that sorts after the alert's last folded event is applied incrementally
//!   ([`AlertView::apply`]), the common case;
//! - a new event that sorts earlier (it arrived late, over another path or after a partition)
//!   makes the store refold all of that alert's stored events.
//!
//! Either way the view equals the fold of the stored set, whatever the order of arrival.
//! Within one call the new events are sorted first, so a batch costs at most one refold per
//! alert and one write of each alert's row. With the view the row keeps the columns queries
//! filter on (written from the view, never parsed back out of its JSON) and the alert's
//! peak severity ([`crate::context`]), kept incrementally like the view.
//!
//! [`Store::apply_events`] and the inbox's [`Store::apply_batch`] share one internal function, so both
//! paths apply events identically.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection, OptionalExtension};
use tracing::warn;
use vigil_core::{AlertEvent, AlertId, AlertKey, AlertView, EventId, Hlc, Lane, Severity};
use vigil_wire::LinkEvent;

use crate::context::{peak_severity, AlertContext};
use crate::convert::{
    count_to_sql, event_hlc_to_sql, hlc_from_sql, hlc_to_sql, id_from_sql, u64_from_sql,
};
use crate::error::{Result, SqlContext, StoreError};
use crate::store::Store;
use crate::stored_view;
use crate::views::TxViews;

/// What applying a set of events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApplyStats {
    /// Events that were new here and are now stored and folded (or clamped copies that
    /// took the place of the events held here: `crate::clamp`).
    pub applied: usize,
    /// Events already stored (or repeated within the call): ignored.
    pub duplicates: usize,
}

/// Inserts `events` idempotently and brings the views of the alerts they touch up to date,
/// inside the caller's transaction; `views` is that transaction's view cache.
pub(crate) fn apply_in(
    conn: &Connection,
    views: &mut TxViews<'_>,
    events: &[AlertEvent],
) -> Result<ApplyStats> {
    apply_in_tracked(conn, views, events, None).map(|applied| applied.stats)
}

/// What [`apply_in_tracked`] did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// New and duplicate events.
    pub stats: ApplyStats,
    /// The indexes in `events` of the events that were new here, ascending.
    pub fresh: Vec<usize>,
    /// By index in `events`: each new event as stored in `events.body` (its JSON), so that
    /// forwarding it does not encode it again ([`link_payload_from_body`]). `None` for the
    /// others. Empty when the caller gave the bodies.
    pub bodies: Vec<Option<String>>,
}

/// [`apply_in`], also saying which events were new here (their indexes in `events`, in
/// ascending order). What a receiver hands on (to its owner, or up to its own parent) is
/// exactly these: a resent event is stored once and relayed once. How the transaction leaves
/// each alert they touched is [`TxViews::staged`].
///
/// `encoded`, when given, is each event's JSON as `serde_json::to_string` writes it (one per
/// event, encoded by the caller off this thread): stored as it is instead of encoding again.
pub(crate) fn apply_in_tracked(
    conn: &Connection,
    views: &mut TxViews<'_>,
    events: &[AlertEvent],
    encoded: Option<&[String]>,
) -> Result<Applied> {
    let encoded = encoded.filter(|e| e.len() == events.len());
    let mut ordered: Vec<(usize, &AlertEvent)> = events.iter().enumerate().collect();
    ordered.sort_by_key(|(_, e)| e.order_key());

    let mut stats = ApplyStats::default();
    let mut fresh_indexes = Vec::new();
    let mut bodies = if encoded.is_some() {
        Vec::new()
    } else {
        vec![None; events.len()]
    };
    let mut fresh: BTreeMap<AlertId, Vec<&AlertEvent>> = BTreeMap::new();
    // Alerts one of whose held events was replaced by its clamped copy: folded again.
    let mut refold: BTreeSet<AlertId> = BTreeSet::new();
    // Sized from the previous event's JSON, so encoding one rarely grows its buffer.
    let mut body_capacity = 512;
    {
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events (id, alert, hlc, origin, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .op("prepare an event insert")?;
        for (index, event) in ordered {
            let hlc = event_hlc_to_sql(event)?;
            let given = encoded.and_then(|e| e.get(index));
            debug_assert!(
                given.is_none_or(|g| serde_json::to_string(event).is_ok_and(|own| &own == g)),
                "a given body is not its event's JSON"
            );
            let body: Cow<'_, str> = match given {
                Some(given) => Cow::Borrowed(given),
                None => Cow::Owned(encode_json(event, body_capacity, "an alert event")?),
            };
            body_capacity = body_capacity.max(body.len() + body.len() / 4);
            let inserted = insert
                .execute(params![
                    &event.id.as_bytes()[..],
                    &event.alert.as_bytes()[..],
                    hlc,
                    event.origin.as_str(),
                    event.body.name(),
                    body.as_ref()
                ])
                .op("store an alert event")?;
            // A clamped copy of an event held here takes its place and refolds its alert
            // (docs/ARCHITECTURE.md#clocks-and-skew); any other copy is a duplicate.
            let replaced = inserted == 0
                && event.clamped_from.is_some()
                && crate::clamp::replace_held(conn, event, hlc, body.as_ref())?;
            if replaced {
                refold.insert(event.alert);
            }
            if inserted == 0 && !replaced {
                stats.duplicates += 1;
            } else {
                stats.applied += 1;
                fresh_indexes.push(index);
                // Kept only when the store encoded it (`bodies` is empty otherwise).
                if let Some(slot) = bodies.get_mut(index) {
                    *slot = Some(body.into_owned());
                }
                fresh.entry(event.alert).or_default().push(event);
            }
        }
    }

    views.reserve(fresh.len());
    // One buffer for every view's JSON in the call.
    let mut view_json = Vec::with_capacity(1024);
    let mut statements = ViewStatements::new(conn)?;
    for (alert, new_events) in fresh {
        // The cache holds the alert as its row was last written (by this connection: see
        // `views`), so its indexed columns are the view's.
        let (mut view, mut peak, stored, rebuild) = match views.take(alert) {
            Some(AlertContext {
                view,
                peak_severity,
            }) => {
                let indexed = IndexedColumns::of(&view);
                (view, peak_severity, Some(indexed), false)
            }
            None => match load_row(conn, alert)? {
                None => (AlertView::empty(alert), None, None, false),
                // The events are the truth and the row a cache of their fold: a view (or a
                // peak) that no longer parses is rebuilt rather than blocking every later
                // event of the alert.
                Some(row) => match (row.view, row.peak) {
                    (Ok(view), Ok(peak)) => (view, peak, Some(row.indexed), false),
                    (Err(err), _) | (_, Err(err)) => {
                        warn!(%alert, error = %err, "alert row unreadable; refolding its events");
                        (AlertView::empty(alert), None, Some(row.indexed), true)
                    }
                },
            },
        };
        // `new_events` is in fold order: one failure means one of them sorts before what the
        // stored view has folded, and only a refold of the whole set is right.
        if rebuild || refold.contains(&alert) || !new_events.iter().all(|e| view.apply(e).is_ok()) {
            let all = load_events(conn, alert)?;
            view = AlertView::fold(alert, &all);
            peak = peak_severity(&all);
        } else {
            peak = peak.max(peak_severity(new_events.iter().copied()));
        }
        save_view(
            &mut statements,
            &view,
            peak,
            stored.as_ref(),
            &mut view_json,
        )?;
        views.put(AlertContext {
            view,
            peak_severity: peak,
        });
    }
    fresh_indexes.sort_unstable();
    Ok(Applied {
        stats,
        fresh: fresh_indexes,
        bodies,
    })
}

/// An event as an outbox payload: encoded as the link event (`{"alert": {...}}`) the link
/// engine sends.
pub(crate) fn link_payload(event: &AlertEvent) -> Result<Vec<u8>> {
    serde_json::to_vec(&LinkEvent::Alert(event.clone())).map_err(|source| StoreError::Encode {
        what: "a link event",
        source,
    })
}

/// [`link_payload`] from the event's JSON as [`apply_in_tracked`] stored it: a link event is
/// the event under the one key that names its kind, so the bytes are the same.
pub(crate) fn link_payload_from_body(body: &str) -> Vec<u8> {
    const OPEN: &[u8] = b"{\"alert\":";
    let mut payload = Vec::with_capacity(OPEN.len() + body.len() + 1);
    payload.extend_from_slice(OPEN);
    payload.extend_from_slice(body.as_bytes());
    payload.push(b'}');
    payload
}

/// `value` as JSON text, written into a buffer of `capacity` bytes to start with.
fn encode_json<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
    what: &'static str,
) -> Result<String> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, value).map_err(|source| StoreError::Encode { what, source })?;
    String::from_utf8(buf).map_err(|err| StoreError::CorruptValue {
        table: "events",
        row: what.to_owned(),
        detail: format!("encoded JSON is not UTF-8: {err}"),
    })
}

/// `shown` written out is exactly `text`, without allocating it.
fn displays_as(shown: &impl std::fmt::Display, text: &str) -> bool {
    struct Rest<'a>(&'a str);
    impl std::fmt::Write for Rest<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match self.0.strip_prefix(s) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(())
                }
                None => Err(std::fmt::Error),
            }
        }
    }
    let mut rest = Rest(text);
    std::fmt::write(&mut rest, format_args!("{shown}")).is_ok() && rest.0.is_empty()
}

/// The row key of an id, for error messages.
fn hex(bytes: &[u8; 16]) -> String {
    EventId::from_bytes(*bytes).to_string()
}

fn decode_event(body: &str, row: impl FnOnce() -> String) -> Result<AlertEvent> {
    serde_json::from_str(body).map_err(|source| StoreError::CorruptJson {
        table: "events",
        row: row(),
        source,
    })
}

/// An alert's stored events in fold order.
fn load_events(conn: &Connection, alert: AlertId) -> Result<Vec<AlertEvent>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, body FROM events WHERE alert = ?1 ORDER BY hlc, id")
        .op("prepare an alert's event query")?;
    let rows = stmt
        .query_map([&alert.as_bytes()[..]], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .op("read an alert's events")?;
    rows.into_iter()
        .map(|(id, body)| decode_event(&body, || format!("id {}", hex_of(&id))))
        .collect()
}

/// An id column's value as text for an error message, whatever its length.
fn hex_of(blob: &[u8]) -> String {
    match <[u8; 16]>::try_from(blob) {
        Ok(bytes) => hex(&bytes),
        Err(_) => format!("{blob:02x?}"),
    }
}

/// What an alert's row holds for the writer: its view and its peak severity, each decoded
/// (or why it could not be), and the indexed columns that only change with the alert's state.
struct StoredRow {
    view: Result<AlertView>,
    peak: Result<Option<Severity>>,
    indexed: IndexedColumns,
}

/// The columns of an alert row that `alerts_open_by_origin` (and the generated `origin`) is
/// built from, as stored: `None` for a value of a type the writer never stores. A write that
/// leaves all of them as they are does not set them, and so SQLite leaves that index alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexedColumns {
    key: Option<Option<String>>,
    site: Option<Option<String>>,
    severity: Option<Option<String>>,
    active: Option<i64>,
    acknowledged: Option<i64>,
    closed: Option<i64>,
}

impl IndexedColumns {
    /// The values the writer stores for `view`.
    pub(crate) fn of(view: &AlertView) -> IndexedColumns {
        IndexedColumns {
            key: Some(view.key.as_ref().map(ToString::to_string)),
            site: Some(view.site.as_ref().map(|s| s.as_str().to_owned())),
            severity: Some(Some(view.severity.as_str().to_owned())),
            active: Some(i64::from(view.active)),
            acknowledged: Some(i64::from(view.acknowledged)),
            closed: Some(i64::from(view.closed)),
        }
    }

    /// Whether these are the values the writer stores for `view` (`self == of(view)`,
    /// without building `of(view)`).
    fn matches(&self, view: &AlertView) -> bool {
        let key = match (&self.key, &view.key) {
            (Some(None), None) => true,
            (Some(Some(stored)), Some(key)) => displays_as(key, stored),
            _ => false,
        };
        let site = match (&self.site, &view.site) {
            (Some(None), None) => true,
            (Some(Some(stored)), Some(site)) => stored == site.as_str(),
            _ => false,
        };
        key && site
            && matches!(&self.severity, Some(Some(s)) if s == view.severity.as_str())
            && self.active == Some(i64::from(view.active))
            && self.acknowledged == Some(i64::from(view.acknowledged))
            && self.closed == Some(i64::from(view.closed))
    }

    fn read(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<IndexedColumns> {
        use rusqlite::types::ValueRef;
        let text = |i: usize| -> rusqlite::Result<Option<Option<String>>> {
            Ok(match row.get_ref(first + i)? {
                ValueRef::Null => Some(None),
                ValueRef::Text(t) => std::str::from_utf8(t).ok().map(|s| Some(s.to_owned())),
                _ => None,
            })
        };
        let int = |i: usize| -> rusqlite::Result<Option<i64>> {
            Ok(match row.get_ref(first + i)? {
                ValueRef::Integer(v) => Some(v),
                _ => None,
            })
        };
        Ok(IndexedColumns {
            key: text(0)?,
            site: text(1)?,
            severity: text(2)?,
            active: int(3)?,
            acknowledged: int(4)?,
            closed: int(5)?,
        })
    }
}

fn load_row(conn: &Connection, alert: AlertId) -> Result<Option<StoredRow>> {
    let row: Option<(Result<AlertView>, Option<String>, IndexedColumns)> = conn
        .prepare_cached(&format!(
            "SELECT {}, peak_severity FROM alerts WHERE id = ?1",
            stored_view::COLUMNS
        ))
        .and_then(|mut stmt| {
            stmt.query_row([&alert.as_bytes()[..]], |row| {
                // The indexed columns are the second to the seventh of the view's.
                Ok((
                    stored_view::read(row, 0)?,
                    row.get(stored_view::COLUMN_COUNT)?,
                    IndexedColumns::read(row, 1)?,
                ))
            })
            .optional()
        })
        .op("read an alert")?;
    Ok(row.map(|(view, peak, indexed)| StoredRow {
        indexed,
        view,
        peak: peak
            .map(|name| {
                severity_from_sql(&name).ok_or_else(|| StoreError::CorruptValue {
                    table: "alerts",
                    row: format!("id {alert}"),
                    detail: format!("unknown peak severity {name:?}"),
                })
            })
            .transpose(),
    }))
}

/// A severity stored by its name ([`Severity::as_str`]).
pub(crate) fn severity_from_sql(name: &str) -> Option<Severity> {
    [
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
}

pub(crate) fn load_view(conn: &Connection, alert: AlertId) -> Result<Option<AlertView>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM alerts WHERE id = ?1",
        stored_view::COLUMNS
    ))
    .and_then(|mut stmt| {
        stmt.query_row([&alert.as_bytes()[..]], |row| stored_view::read(row, 0))
            .optional()
    })
    .op("read an alert")?
    .transpose()
}

/// The three statements that write an alert's row ([`save_view`]), prepared once for all
/// the alerts of a call rather than looked up in the statement cache for each.
pub(crate) struct ViewStatements<'c> {
    /// The fold position and the view, when the indexed columns stay as they are.
    update_same: rusqlite::CachedStatement<'c>,
    /// Every column.
    update_all: rusqlite::CachedStatement<'c>,
    insert: rusqlite::CachedStatement<'c>,
}

impl<'c> ViewStatements<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self> {
        let prepare = |sql| conn.prepare_cached(sql).op("prepare an alert row write");
        Ok(ViewStatements {
            // The state columns are unchanged (the common case: a value update, a comment,
            // an acknowledgement of an acknowledged alert): only the fold position and the
            // view. `?2`–`?7` are bound but not used (SQLite numbers up to the highest).
            update_same: prepare(
                "UPDATE alerts SET
                     updated_at = ?8, last_hlc = ?9, last_event_id = ?10, event_count = ?11,
                     view = ?12, shelved_until = ?13, suppressed = ?14, out_of_service = ?15,
                     awaiting_reset = ?16, peak_severity = ?17
                 WHERE id = ?1",
            )?,
            update_all: prepare(
                "UPDATE alerts SET
                     key = ?2, site = ?3, severity = ?4, active = ?5, acknowledged = ?6,
                     closed = ?7, updated_at = ?8, last_hlc = ?9, last_event_id = ?10,
                     event_count = ?11, view = ?12, shelved_until = ?13, suppressed = ?14,
                     out_of_service = ?15, awaiting_reset = ?16, peak_severity = ?17
                 WHERE id = ?1",
            )?,
            insert: prepare(
                "INSERT INTO alerts (id, key, site, severity, active, acknowledged, closed,
                                     updated_at, last_hlc, last_event_id, event_count, view,
                                     shelved_until, suppressed, out_of_service, awaiting_reset,
                                     peak_severity)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17)",
            )?,
        })
    }
}

/// Writes an alert's row from its view and peak severity: an `UPDATE` of the row when it
/// exists (`stored` holds its indexed columns as they are), an `INSERT` otherwise. An
/// `UPDATE` that would leave the [`IndexedColumns`] as they are does not set them.
pub(crate) fn save_view(
    statements: &mut ViewStatements<'_>,
    view: &AlertView,
    peak: Option<Severity>,
    stored: Option<&IndexedColumns>,
    json: &mut Vec<u8>,
) -> Result<()> {
    // Only called after at least one event was folded.
    let Some((last_hlc, last_id)) = view.last else {
        return Ok(());
    };
    // The stamp was checked when its event was stored.
    let last_hlc = hlc_to_sql(last_hlc).unwrap_or(i64::MAX);
    // The view's members that no column holds ([`stored_view`]).
    stored_view::write_rest(view, json).map_err(|source| StoreError::Encode {
        what: "an alert view",
        source,
    })?;
    let json = std::str::from_utf8(json).map_err(|err| StoreError::CorruptValue {
        table: "alerts",
        row: format!("id {}", view.id),
        detail: format!("encoded view is not UTF-8: {err}"),
    })?;
    // Columns 13–16 are what schema version 2 generated from the view's JSON, with the same
    // values: the shelf's end as its JSON text, the flags as 0/1.
    let shelved_until = view.shelved_until.map(|t| t.to_string());
    // Runs one of the statements; `key` is only written out for those that set it.
    let write = |statement: &mut rusqlite::CachedStatement<'_>, key: Option<String>| {
        statement
            .execute(params![
                &view.id.as_bytes()[..],
                key,
                view.site.as_ref().map(|s| s.as_str()),
                view.severity.as_str(),
                view.active,
                view.acknowledged,
                view.closed,
                view.updated_at.as_millis(),
                last_hlc,
                &last_id.as_bytes()[..],
                view.event_count,
                json,
                shelved_until,
                view.suppressed,
                view.out_of_service,
                view.latching && view.needs_reset,
                peak.map(Severity::as_str),
            ])
            .op("store an alert's view")
    };
    let key = || view.key.as_ref().map(ToString::to_string);
    let updated = match stored {
        Some(stored) if stored.matches(view) => write(&mut statements.update_same, None)?,
        Some(_) => write(&mut statements.update_all, key())?,
        None => 0,
    };
    if updated == 0 {
        write(&mut statements.insert, key())?;
    }
    Ok(())
}

impl Store {
    /// Applies `events` in one durable transaction: each event not yet stored is stored and
    /// folded into its alert's view; events already stored are counted as duplicates and
    /// change nothing. The order of `events` does not matter.
    pub fn apply_events(&mut self, events: &[AlertEvent]) -> Result<ApplyStats> {
        if events.is_empty() {
            return Ok(ApplyStats::default());
        }
        let (tx, mut views) = self.write_tx_views("begin applying alert events")?;
        let stats = apply_in(&tx, &mut views, events)?;
        tx.commit().op("commit alert events")?;
        views.commit();
        Ok(stats)
    }

    /// Records events created on this node in one durable transaction: stores them in the
    /// event store (folding their alerts) and appends each, encoded as a link event
    /// (`{"alert": {...}}`, the payload the link engine sends), to its lane of `link`'s
    /// outbox. Either all of it commits or none; returns the outbox sequence numbers.
    pub fn record_events(&mut self, link: &str, events: &[(Lane, AlertEvent)]) -> Result<Vec<u64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut payloads = Vec::with_capacity(events.len());
        for (lane, event) in events {
            payloads.push((*lane, link_payload(event)?));
        }
        let plain: Vec<AlertEvent> = events.iter().map(|(_, e)| e.clone()).collect();
        let (tx, mut views) = self.write_tx_views("begin recording local events")?;
        apply_in(&tx, &mut views, &plain)?;
        let seqs = crate::outbox::append_in(&tx, link, payloads)?;
        tx.commit().op("commit local events")?;
        views.commit();
        Ok(seqs)
    }

    /// The folded view of an alert, or `None` if no event of it is stored.
    pub fn alert(&self, id: AlertId) -> Result<Option<AlertView>> {
        load_view(&self.conn, id)
    }

    /// The folded view of an alert with its peak severity — what a per-alert escalation
    /// policy judges by — or `None` if no event of it is stored. Reads one row, whatever the
    /// alert's history.
    pub fn alert_context(&self, id: AlertId) -> Result<Option<AlertContext>> {
        load_row(&self.conn, id)?
            .map(|row| {
                Ok(AlertContext {
                    view: row.view?,
                    peak_severity: row.peak?,
                })
            })
            .transpose()
    }

    /// An alert's stored events in fold order, `(HLC, event id)`.
    pub fn alert_events(&self, id: AlertId) -> Result<Vec<AlertEvent>> {
        load_events(&self.conn, id)
    }

    /// One stored event, or `None`.
    pub fn event(&self, id: EventId) -> Result<Option<AlertEvent>> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM events WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([&id.as_bytes()[..]], |row| row.get(0))
                    .optional()
            })
            .op("read an alert event")?;
        body.map(|body| decode_event(&body, || format!("id {id}")))
            .transpose()
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .op("count alert events")?;
        u64_from_sql(n, "events", || "count(*)".to_owned())
    }

    /// The open (not closed) alert with `key`, the most recently updated if there are
    /// several: what a re-raise of the condition must update instead of opening a new alert.
    pub fn open_alert_for_key(&self, key: &AlertKey) -> Result<Option<AlertId>> {
        let id: Option<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT id FROM alerts WHERE key = ?1 AND closed = 0
                 ORDER BY last_hlc DESC, id DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([key.to_string()], |row| row.get(0))
                    .optional()
            })
            .op("find the open alert of a key")?;
        id.map(|id| id_from_sql(&id, "alerts", || format!("key {key}")).map(AlertId::from_bytes))
            .transpose()
    }

    /// The greatest HLC stamp of any stored event: a node resumes its clock after it
    /// ([`vigil_core::HlcClock::resume`]) so it never issues a stamp twice.
    ///
    /// Read from the alerts (schema version 9 on): each alert's row holds the fold position of
    /// its last event, the greatest stamp among its events, and every event belongs to an
    /// alert whose row is written in the same transaction. So the greatest of those is the
    /// greatest of all, found in one pass over the alerts at a node's start, without an index
    /// of every event's stamp for each event to be written into.
    pub fn max_hlc(&self) -> Result<Option<Hlc>> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT max(last_hlc) FROM alerts", [], |row| row.get(0))
            .op("read the greatest event stamp")?;
        max.map(|packed| hlc_from_sql(packed, "alerts", || "max(last_hlc)".to_owned()))
            .transpose()
    }

    /// Up to `limit` alerts, most recently updated first.
    pub fn list_alerts(&self, limit: usize) -> Result<Vec<AlertView>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM alerts
                 ORDER BY updated_at DESC, last_hlc DESC, id DESC LIMIT ?1",
                stored_view::COLUMNS
            ))
            .op("prepare the alert list")?;
        let rows = stmt
            .query_map([count_to_sql(limit)], |row| stored_view::read(row, 0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .op("list alerts")?;
        rows.into_iter().collect()
    }

    /// How many alerts are stored.
    pub fn alert_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM alerts", [], |row| row.get(0))
            .op("count alerts")?;
        u64_from_sql(n, "alerts", || "count(*)".to_owned())
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use vigil_core::{Actor, AlertEventBody, NodeId};

    #[test]
    fn recorded_events_are_stored_and_queued_as_link_events_together() {
        let mut store = Store::open_in_memory().expect("open");
        let alert = AlertId::generate();
        let event = AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("gw").expect("valid"),
            hlc: Hlc::new(1_795_000_000_000, 0),
            actor: Actor::System,
            body: AlertEventBody::Commented { text: "x".into() },
            clamped_from: None,
        };
        let seqs = store
            .record_events("parent", &[(Lane::Critical, event.clone())])
            .expect("recorded");
        assert_eq!(seqs, vec![1]);
        assert_eq!(store.event(event.id).expect("read"), Some(event.clone()));
        let rec = store
            .outbox_read("parent", Lane::Critical, 0, 10, 1 << 20)
            .expect("read");
        let back: LinkEvent = serde_json::from_slice(&rec[0].payload).expect("a link event");
        assert_eq!(back, LinkEvent::Alert(event));
        assert_eq!(
            store
                .outbox_lane_state("parent", Lane::Normal)
                .expect("state")
                .head_seq,
            0
        );
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEventBody, NodeId};

    use super::*;

    fn event(n: u8, alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([n; 16]),
            alert,
            origin: NodeId::new("gw-1").expect("valid"),
            hlc: Hlc::new(wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    #[test]
    fn a_payload_from_the_stored_body_is_the_link_event() {
        let e = event(
            1,
            AlertId::from_bytes([1; 16]),
            10,
            AlertEventBody::Commented {
                text: "quote \" and ünïcode".into(),
            },
        );
        let body = serde_json::to_string(&e).expect("encode");
        assert_eq!(
            link_payload_from_body(&body),
            link_payload(&e).expect("encode")
        );
    }

    #[test]
    fn a_batch_out_of_fold_order_is_sorted_before_it_is_folded() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::from_bytes([1; 16]);
        let b = AlertId::from_bytes([2; 16]);
        let events = [
            event(
                3,
                a,
                30,
                AlertEventBody::Commented {
                    text: "late".into(),
                },
            ),
            event(1, b, 10, AlertEventBody::Reset),
            event(2, a, 20, AlertEventBody::Assigned { to: "ops".into() }),
            event(4, a, 40, AlertEventBody::Unshelved),
        ];
        let stats = store.apply_events(&events).expect("apply");
        assert_eq!(
            stats,
            ApplyStats {
                applied: 4,
                duplicates: 0
            }
        );
        assert_eq!(
            store.alert(a).expect("read"),
            Some(AlertView::fold(a, &events))
        );
        assert_eq!(
            store.alert(b).expect("read"),
            Some(AlertView::fold(b, &events))
        );
        let order: Vec<u8> = store
            .alert_events(a)
            .expect("events")
            .iter()
            .map(|e| e.id.as_bytes()[0])
            .collect();
        assert_eq!(order, [2, 3, 4]);
    }

    #[test]
    fn stored_columns_follow_the_view() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::from_bytes([1; 16]);
        store
            .apply_events(&[
                event(1, a, 10, AlertEventBody::Acknowledged { comment: None }),
                event(2, a, 20, AlertEventBody::Closed { reason: None }),
            ])
            .expect("apply");
        let (closed, acknowledged, last_hlc, count): (bool, bool, i64, i64) = store
            .conn
            .query_row(
                "SELECT closed, acknowledged, last_hlc, event_count FROM alerts WHERE id = ?1",
                [&a.as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("row");
        assert!(closed && acknowledged);
        assert_eq!(last_hlc, hlc_to_sql(Hlc::new(20, 0)).expect("fits"));
        assert_eq!(count, 2);
    }

    #[test]
    fn the_indexed_columns_follow_the_view_whichever_update_writes_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("vigil.db")).expect("open");
        let a = AlertId::from_bytes([1; 16]);
        let stored = |store: &Store| {
            store
                .conn
                .query_row(
                    "SELECT key, site, severity, active, acknowledged, closed
                     FROM alerts WHERE id = ?1",
                    [&a.as_bytes()[..]],
                    |r| IndexedColumns::read(r, 0),
                )
                .expect("row")
        };
        let steps = [
            event(1, a, 10, AlertEventBody::Commented { text: "x".into() }),
            event(2, a, 20, AlertEventBody::Assigned { to: "ops".into() }),
            event(3, a, 30, AlertEventBody::Acknowledged { comment: None }),
            event(4, a, 40, AlertEventBody::Unshelved),
            event(5, a, 50, AlertEventBody::Closed { reason: None }),
        ];
        for (i, step) in steps.iter().enumerate() {
            store
                .apply_events(std::slice::from_ref(step))
                .expect("apply");
            let view = AlertView::fold(a, &steps[..=i]);
            assert_eq!(stored(&store), IndexedColumns::of(&view), "after event {i}");
            assert_eq!(store.alert(a).expect("read"), Some(view));
        }
        // A column that another connection made disagree with the view is rewritten by the
        // next event, even one that does not change the alert's state.
        rusqlite::Connection::open(dir.path().join("vigil.db"))
            .expect("a second connection")
            .execute("UPDATE alerts SET severity = 'bogus', closed = 0", [])
            .expect("damage");
        let next = event(6, a, 60, AlertEventBody::Assigned { to: "night".into() });
        store
            .apply_events(std::slice::from_ref(&next))
            .expect("apply");
        let view = AlertView::fold(a, steps.iter().chain([&next]));
        assert_eq!(stored(&store), IndexedColumns::of(&view));
    }

    #[test]
    fn an_unreadable_view_is_rebuilt_by_the_next_event() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::from_bytes([1; 16]);
        let first = event(1, a, 10, AlertEventBody::Unshelved);
        store
            .apply_events(std::slice::from_ref(&first))
            .expect("apply");
        store
            .conn
            .execute("UPDATE alerts SET view = 'truncated {'", [])
            .expect("damage");
        assert!(matches!(
            store.alert(a),
            Err(StoreError::CorruptJson {
                table: "alerts",
                ..
            })
        ));
        let second = event(2, a, 20, AlertEventBody::Reset);
        store
            .apply_events(std::slice::from_ref(&second))
            .expect("apply after damage");
        assert_eq!(
            store.alert(a).expect("readable again"),
            Some(AlertView::fold(a, [&first, &second]))
        );
    }

    #[test]
    fn a_damaged_id_column_is_a_corrupt_value() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::from_bytes([1; 16]);
        store
            .apply_events(&[event(1, a, 10, AlertEventBody::Unshelved)])
            .expect("apply");
        // CHECK constraints guard the column; a file damaged outside SQLite bypasses them.
        let key: AlertKey = "gw-1/a/state".parse().expect("key");
        store
            .conn
            .execute_batch("PRAGMA ignore_check_constraints = ON")
            .expect("pragma");
        store
            .conn
            .execute(
                "UPDATE alerts SET key = ?1, id = x'0102'",
                [key.to_string()],
            )
            .expect("damage");
        let err = store.open_alert_for_key(&key).expect_err("damaged id");
        assert!(
            matches!(&err, StoreError::CorruptValue { table: "alerts", row, .. } if row.contains("gw-1/a/state")),
            "{err}"
        );
        assert_eq!(hex_of(&[1, 2]), "[01, 02]");
    }
}
