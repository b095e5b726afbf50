//! The queries behind the alarm console and the hub's API: filtered, paged alert lists and
//! the counts the network tree and the metrics show.
//!
//! # Pages
//!
//! [`Store::query_alerts`] answers an [`AlertQuery`] with an [`AlertPage`]: alerts most
//! recently updated first, ordered by `(updated_at, last_hlc, id)` descending — a total
//! order, because the id is unique. A page ends with an [`AlertCursor`], the position of its
//! last alert; the next page is everything strictly after that position (keyset pagination,
//! never `OFFSET`). So paging is stable while alerts arrive: a new alert sorts before every
//! page already read and never shifts the later ones, and no alert is returned twice. An alert
//! that is *updated* while someone pages moves to the front (its `updated_at` grows): a reader
//! sees it on the next refresh or on the live stream, not in the pages still to come.
//!
//! # Filters
//!
//! Every filter is applied in SQL, so a page is full whenever more matches exist:
//!
//! - the ISA-18.2 state at the query's `now` ([`AlertView::state_at`]): the state is computed
//!   in SQL from the stored columns and the generated columns of schema version 2
//!   (`shelved_until`, `suppressed`, `out_of_service`, `awaiting_reset`), by the same rules
//!   as the fold; every row is then checked again against [`AlertQuery::matches`], which
//!   uses the fold's own `state_at`, so the Rust rules stay the single truth (a test keeps
//!   the two in step);
//! - a site subtree, on whole segments ([`SitePath::is_within`]): `a/b` holds `a/b` and
//!   `a/b/c` but not `a/bc`;
//! - severities (a set and/or a minimum), condition active or not, closed or open, origin
//!   node.
//!
//! A row whose view cannot be decoded (a damaged file) is skipped with a warning instead of
//! failing the whole list; the next event of that alert rebuilds its view.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Row};
use tracing::warn;
use vigil_core::{AlertState, AlertView, NodeId, Severity, SitePath, Timestamp};

use crate::convert::{count_to_sql, id_from_sql, u64_from_sql};
use crate::error::{Result, SqlContext, StoreError};
use crate::store::Store;
use crate::stored_view;

/// The number of alerts in a page when the query does not say.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// The largest page a query may ask for.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// The ISA-18.2 state of an alert at the time bound to the first `?` in SQL: the rules of
/// [`AlertView::state_at`] and [`AlertView::base_state`], over the columns of `alerts`.
const STATE_SQL: &str = "CASE
        WHEN out_of_service THEN 'out_of_service'
        WHEN suppressed THEN 'suppressed'
        WHEN shelved_until > ? THEN 'shelved'
        WHEN active AND NOT acknowledged THEN 'active_unack'
        WHEN active THEN 'active_ack'
        WHEN NOT acknowledged THEN 'rtn_unack'
        WHEN awaiting_reset THEN 'latched'
        ELSE 'normal'
    END";

/// What to list. The default lists every alert, open or closed, in pages of
/// [`DEFAULT_PAGE_LIMIT`], with states as of [`Timestamp::EPOCH`] — set `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only alerts in one of these states at `now`; empty for any state.
    pub states: Vec<AlertState>,
    /// Only alerts whose condition is (`Some(true)`) or is not (`Some(false)`) active.
    pub active: Option<bool>,
    /// Only closed (`Some(true)`) or open (`Some(false)`) alerts; `None` for both.
    pub closed: Option<bool>,
    /// Only alerts of one of these severities; empty for any severity.
    pub severities: Vec<Severity>,
    /// Only alerts at least this severe.
    pub min_severity: Option<Severity>,
    /// Only alerts at or below this site (whole segments).
    pub site: Option<SitePath>,
    /// Only alerts raised by this node.
    pub origin: Option<NodeId>,
    /// The most alerts in the page (clamped to `1..=MAX_PAGE_LIMIT`).
    pub limit: usize,
    /// Continue after this position (the `next` of the previous page).
    pub cursor: Option<AlertCursor>,
    /// The time states are computed at (a shelf past its end has expired).
    pub now: Timestamp,
}

impl Default for AlertQuery {
    fn default() -> Self {
        AlertQuery {
            states: Vec::new(),
            active: None,
            closed: None,
            severities: Vec::new(),
            min_severity: None,
            site: None,
            origin: None,
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
            now: Timestamp::EPOCH,
        }
    }
}

impl AlertQuery {
    /// The severities that pass both the set and the minimum; `None` when any does.
    fn allowed_severities(&self) -> Option<Vec<Severity>> {
        if self.severities.is_empty() && self.min_severity.is_none() {
            return None;
        }
        Some(
            Severity::ALL
                .into_iter()
                .filter(|s| self.severity_passes(*s))
                .collect(),
        )
    }

    fn severity_passes(&self, severity: Severity) -> bool {
        (self.severities.is_empty() || self.severities.contains(&severity))
            && self.min_severity.is_none_or(|min| severity >= min)
    }

    /// Whether `view` passes every filter (the cursor aside): the rules the SQL applies,
    /// stated once more over the folded view.
    pub fn matches(&self, view: &AlertView) -> bool {
        let origin = view.key.as_ref().map(|k| &k.origin);
        (self.states.is_empty() || self.states.contains(&view.state_at(self.now)))
            && self.active.is_none_or(|a| view.active == a)
            && self.closed.is_none_or(|c| view.closed == c)
            && self.severity_passes(view.severity)
            && self
                .site
                .as_ref()
                .is_none_or(|scope| view.site.as_ref().is_some_and(|s| s.is_within(scope)))
            && self.origin.as_ref().is_none_or(|o| origin == Some(o))
    }

    fn page_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_LIMIT)
    }
}

/// One page of alerts and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    /// The alerts, most recently updated first.
    pub alerts: Vec<AlertView>,
    /// The position after the last alert, when more alerts match; `None` on the last page.
    pub next: Option<AlertCursor>,
}

/// A position in the alert list: the sort key `(updated_at, last_hlc, id)` of the last alert
/// of a page. Written as opaque text (`c1` and 64 hex digits) for the API; only
/// [`AlertCursor::from_str`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertCursor {
    updated_at: i64,
    last_hlc: i64,
    id: [u8; 16],
}

/// A cursor that is not one this store wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor {0:?}: pass the `next` of the previous page unchanged")]
pub struct CursorError(String);

const CURSOR_PREFIX: &str = "c1";

impl fmt::Display for AlertCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CURSOR_PREFIX)?;
        for byte in self
            .updated_at
            .to_be_bytes()
            .iter()
            .chain(&self.last_hlc.to_be_bytes())
            .chain(&self.id)
        {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for AlertCursor {
    type Err = CursorError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || CursorError(s.chars().take(80).collect());
        let hex = s.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(w)
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[16..]);
        Ok(AlertCursor {
            updated_at: word(0),
            last_hlc: word(8),
            id,
        })
    }
}

/// The open alerts of one (origin node, site, severity): what the network tree counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlertCount {
    /// The node that raised them (`None` for alerts whose raise has not arrived).
    pub origin: Option<NodeId>,
    /// Their site (`None` likewise).
    pub site: Option<SitePath>,
    /// Their current severity.
    pub severity: Severity,
    /// Open (not closed) alerts.
    pub open: u64,
    /// Of those, the ones whose condition is active.
    pub active: u64,
    /// Of those, the ones not acknowledged.
    pub unacknowledged: u64,
}

/// How many open alerts are in one ISA-18.2 state with one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateCount {
    /// The state at the time asked.
    pub state: AlertState,
    /// The severity.
    pub severity: Severity,
    /// Open alerts in that state with that severity.
    pub count: u64,
}

fn severity_from_sql(text: &str, row: impl FnOnce() -> String) -> Result<Severity> {
    Severity::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::CorruptValue {
            table: "alerts",
            row: row(),
            detail: format!("unknown severity {text:?}"),
        })
}

fn state_from_sql(text: &str) -> Result<AlertState> {
    const STATES: [AlertState; 8] = [
        AlertState::Normal,
        AlertState::ActiveUnack,
        AlertState::ActiveAck,
        AlertState::RtnUnack,
        AlertState::Latched,
        AlertState::Shelved,
        AlertState::Suppressed,
        AlertState::OutOfService,
    ];
    STATES
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::CorruptValue {
            table: "alerts",
            row: "state expression".to_owned(),
            detail: format!("unknown state {text:?}"),
        })
}

/// A raw row of the alert list.
struct ListRow {
    id: Vec<u8>,
    updated_at: i64,
    last_hlc: i64,
    view: Result<AlertView>,
}

/// A row of [`LIST_COLUMNS`] (the view's columns: the id first, the fold position eighth and
/// ninth).
fn list_row(row: &Row<'_>) -> rusqlite::Result<ListRow> {
    Ok(ListRow {
        id: row.get(0)?,
        updated_at: row.get(7)?,
        last_hlc: row.get(8)?,
        view: stored_view::read(row, 0)?,
    })
}

/// `site` and everything below it as a range of text: `[site, site + "0")` holds `site`,
/// `site/…` and also `site-…`/`site.…` (the bytes between `/` and `0`), which the exact
/// segment test that follows it drops.
fn site_clause(site: &SitePath, sql: &mut String, args: &mut Vec<SqlValue>) {
    let s = site.as_str();
    sql.push_str(" AND site >= ? AND site < ? AND (site = ? OR substr(site, ?, 1) = '/')");
    args.push(SqlValue::Text(s.to_owned()));
    args.push(SqlValue::Text(format!("{s}0")));
    args.push(SqlValue::Text(s.to_owned()));
    args.push(SqlValue::Integer(count_to_sql(s.len() + 1)));
}

/// The columns a list reads, in [`list_row`]'s order.
const LIST_COLUMNS: &str = stored_view::COLUMNS;

/// The list order, newest first: a total order (the id is unique).
const LIST_ORDER: &str = " ORDER BY updated_at DESC, last_hlc DESC, id DESC";

/// The SQL of one page of `query` (one more row than the page) and its parameters, or `None`
/// when no alert can match (an empty severity set).
///
/// Open and closed alerts are read apart (schema version 9): the order of closed alerts is
/// indexed (`alerts_closed_by_updated`, `alerts_closed_by_site`); open alerts are found by
/// `alerts_open_by_site` (or `alerts_open_by_origin`) and sorted, because every event of an
/// open alert changes its place in the order and keeping that in an index cost the ingest a
/// fifth of its time. A list of both is the ordered merge of the two (`UNION ALL`), which
/// SQLite runs as a merge that stops at the page's end.
fn list_sql(query: &AlertQuery) -> Option<(String, Vec<SqlValue>)> {
    let mut filters = String::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if !query.states.is_empty() {
        filters.push_str(" AND (");
        filters.push_str(STATE_SQL);
        filters.push_str(") IN (");
        args.push(SqlValue::Text(query.now.to_string()));
        push_list(
            &mut filters,
            &mut args,
            query.states.iter().map(|s| s.as_str()),
        );
        filters.push(')');
    }
    // Literals, not parameters, for the flags: only a literal `closed = 0`/`closed = 1` lets
    // SQLite use the partial indexes.
    match query.active {
        Some(true) => filters.push_str(" AND active = 1"),
        Some(false) => filters.push_str(" AND active = 0"),
        None => {}
    }
    if let Some(allowed) = query.allowed_severities() {
        if allowed.is_empty() {
            return None;
        }
        filters.push_str(" AND severity IN (");
        push_list(&mut filters, &mut args, allowed.iter().map(|s| s.as_str()));
        filters.push(')');
    }
    if let Some(site) = &query.site {
        site_clause(site, &mut filters, &mut args);
    }
    if let Some(origin) = &query.origin {
        filters.push_str(" AND origin = ?");
        args.push(SqlValue::Text(origin.as_str().to_owned()));
    }
    if let Some(c) = &query.cursor {
        filters.push_str(" AND (updated_at, last_hlc, id) < (?, ?, ?)");
        args.push(SqlValue::Integer(c.updated_at));
        args.push(SqlValue::Integer(c.last_hlc));
        args.push(SqlValue::Blob(c.id.to_vec()));
    }
    let arm =
        |closed: u8| format!("SELECT {LIST_COLUMNS} FROM alerts WHERE closed = {closed}{filters}");
    let mut sql = match query.closed {
        Some(closed) => arm(u8::from(closed)),
        None => {
            // Each arm binds the filters' parameters once.
            args.extend_from_within(..);
            format!("{} UNION ALL {}", arm(0), arm(1))
        }
    };
    sql.push_str(LIST_ORDER);
    sql.push_str(" LIMIT ?");
    // One more than the page: whether it exists says whether there is a next page.
    args.push(SqlValue::Integer(count_to_sql(query.page_limit() + 1)));
    Some((sql, args))
}

impl Store {
    /// One page of the alerts that match `query`, most recently updated first; see the
    /// module docs for the order, the cursor and the filters.
    pub fn query_alerts(&self, query: &AlertQuery) -> Result<AlertPage> {
        let limit = query.page_limit();
        let Some((sql, args)) = list_sql(query) else {
            return Ok(AlertPage {
                alerts: Vec::new(),
                next: None,
            });
        };
        let rows = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map(params_from_iter(args), list_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list alerts")?;

        let more = rows.len() > limit;
        let mut alerts = Vec::with_capacity(limit.min(rows.len()));
        let mut last = None;
        for row in rows.into_iter().take(limit) {
            let id = id_from_sql(&row.id, "alerts", || "alert list".to_owned())?;
            last = Some(AlertCursor {
                updated_at: row.updated_at,
                last_hlc: row.last_hlc,
                id,
            });
            let view: AlertView = match row.view {
                Ok(view) => view,
                Err(error) => {
                    let alert = vigil_core::AlertId::from_bytes(id);
                    warn!(%alert, %error, "alert view unreadable; left out of the list");
                    continue;
                }
            };
            if query.matches(&view) {
                alerts.push(view);
            } else {
                // The SQL and the fold disagree: the fold wins, and the row is left out.
                warn!(alert = %view.id, "alert passed the SQL filters but not the fold's; left out");
            }
        }
        Ok(AlertPage {
            alerts,
            next: if more { last } else { None },
        })
    }

    /// Counts of open alerts per (origin, site, severity): the alert figures of the network
    /// tree.
    pub fn open_alert_counts(&self) -> Result<Vec<OpenAlertCount>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT origin, site, severity, count(*), total(active), total(1 - acknowledged)
                 FROM alerts WHERE closed = 0
                 GROUP BY origin, site, severity
                 ORDER BY origin, site, severity",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, f64>(4)?,
                        row.get::<_, f64>(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("count open alerts")?;
        let mut out = Vec::with_capacity(rows.len());
        for (origin, site, severity, open, active, unack) in rows {
            let row = || format!("origin {origin:?} site {site:?}");
            // Keys and sites were validated when their events were decoded; a value that no
            // longer parses is counted without it rather than failing the tree.
            let origin_id = origin.as_deref().and_then(|o| NodeId::new(o).ok());
            let site_path = site.as_deref().and_then(|s| SitePath::new(s).ok());
            out.push(OpenAlertCount {
                origin: origin_id,
                site: site_path,
                severity: severity_from_sql(&severity, row)?,
                open: u64_from_sql(open, "alerts", row)?,
                active: float_count(active),
                unacknowledged: float_count(unack),
            });
        }
        Ok(out)
    }

    /// How many open alerts are in each ISA-18.2 state at `now`, per severity (states and
    /// severities without alerts are left out).
    pub fn alert_state_counts(&self, now: Timestamp) -> Result<Vec<StateCount>> {
        let sql = format!(
            "SELECT {STATE_SQL} AS state, severity, count(*) FROM alerts
             WHERE closed = 0 GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let rows = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map([now.to_string()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("count alerts by state")?;
        rows.into_iter()
            .map(|(state, severity, count)| {
                let row = || format!("state {state} severity {severity}");
                Ok(StateCount {
                    state: state_from_sql(&state)?,
                    severity: severity_from_sql(&severity, row)?,
                    count: u64_from_sql(count, "alerts", row)?,
                })
            })
            .collect()
    }
}

/// Appends `?, ?, …` for `items` and binds them.
fn push_list<'a>(sql: &mut String, args: &mut Vec<SqlValue>, items: impl Iterator<Item = &'a str>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('?');
        args.push(SqlValue::Text(item.to_owned()));
    }
}

/// A `total()` of 0/1 columns as a count (`total` is a float that is never negative here).
fn float_count(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        // Counts of rows are far below 2^53: exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = x.round() as u64;
        n
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = AlertCursor {
            updated_at: 1_795_000_000_123,
            last_hlc: -1,
            id: [0xab; 16],
        };
        let text = c.to_string();
        assert_eq!(text.len(), 66);
        assert_eq!(text.parse::<AlertCursor>(), Ok(c));
        for bad in [
            "",
            "c1",
            "c2",
            &text[..65],
            &text.replace("c1", "c2"),
            "c1zz",
        ] {
            assert!(bad.parse::<AlertCursor>().is_err(), "{bad:?}");
        }
        let multibyte = format!("c1{}", "é".repeat(32));
        assert!(multibyte.parse::<AlertCursor>().is_err());
    }

    /// `EXPLAIN QUERY PLAN` of a list query, one line per step.
    fn plan(store: &Store, query: &AlertQuery) -> String {
        let (sql, args) = list_sql(query).expect("some alert can match");
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the list SQL prepares");
        let steps = stmt
            .query_map(params_from_iter(args), |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("plan rows");
        steps.join("\n")
    }

    /// Every shape of list reads open alerts through an index of open alerts and closed
    /// alerts through an index of closed ones: never a scan of the whole table, whose closed
    /// history grows without end.
    #[test]
    fn lists_never_scan_every_alert() {
        let store = Store::open_in_memory().expect("store");
        let site = SitePath::new("ministry/guangdong").expect("site");
        let origin = NodeId::new("gw-1").expect("node");
        let cursor = AlertCursor {
            updated_at: 1,
            last_hlc: 2,
            id: [3; 16],
        };
        let shapes = [
            AlertQuery::default(),
            AlertQuery {
                closed: Some(false),
                ..AlertQuery::default()
            },
            AlertQuery {
                closed: Some(true),
                ..AlertQuery::default()
            },
            AlertQuery {
                closed: Some(false),
                site: Some(site.clone()),
                ..AlertQuery::default()
            },
            AlertQuery {
                closed: Some(true),
                site: Some(site.clone()),
                ..AlertQuery::default()
            },
            AlertQuery {
                site: Some(site),
                states: vec![AlertState::ActiveUnack],
                min_severity: Some(Severity::Major),
                active: Some(true),
                cursor: Some(cursor),
                ..AlertQuery::default()
            },
            AlertQuery {
                origin: Some(origin),
                ..AlertQuery::default()
            },
        ];
        for query in &shapes {
            let plan = plan(&store, query);
            for line in plan.lines() {
                assert!(
                    line.contains("USING INDEX alerts_open_by_")
                        || line.contains("USING INDEX alerts_closed_by_")
                        || !line.contains("alerts"),
                    "{query:?}: {plan}"
                );
            }
        }
        // Closed history pages in index order: no sort of it.
        let closed = plan(
            &store,
            &AlertQuery {
                closed: Some(true),
                ..AlertQuery::default()
            },
        );
        assert!(closed.contains("alerts_closed_by_updated"), "{closed}");
        assert!(!closed.contains("TEMP B-TREE"), "{closed}");
    }

    #[test]
    fn severity_set_and_minimum_combine() {
        let q = AlertQuery {
            severities: vec![Severity::Critical, Severity::Warning],
            min_severity: Some(Severity::Minor),
            ..AlertQuery::default()
        };
        assert_eq!(q.allowed_severities(), Some(vec![Severity::Critical]));
        assert_eq!(AlertQuery::default().allowed_severities(), None);
    }
}
