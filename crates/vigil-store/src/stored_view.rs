//! An alert's folded view as its row keeps it: the columns, and in `view` only the rest.
//!
//! Every event of an alert rewrites its row, so the row's size is much of what ingest
//! writes (the page, the log, the checkpoint's copy). The row already holds the members that
//! queries filter and sort on as columns — the id, key, site, severity, state flags, the fold
//! position, the count — so `view` holds only the members no column has ([`Rest`]), each left
//! out when it has its default. Reading a view joins the two again ([`read`]).
//!
//! Rows written before (a whole `AlertView` as JSON in `view`) read the same way: their
//! columns were written from the same view, and the members of the rest are read from their
//! JSON while the others are ignored.

use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use vigil_core::{
    alert::Evidence, AlertId, AlertKey, AlertView, EventId, SitePath, Timestamp, Value,
};

use crate::convert::hlc_from_sql;
use crate::error::{Result, StoreError};
use crate::events::severity_from_sql;

/// The columns [`read`] takes, in its order, for a `SELECT`.
pub(crate) const COLUMNS: &str = "id, key, site, severity, active, acknowledged, closed, \
     updated_at, last_hlc, last_event_id, event_count, shelved_until, suppressed, \
     out_of_service, view";

/// How many columns [`COLUMNS`] names.
pub(crate) const COLUMN_COUNT: usize = 15;

/// The members of an [`AlertView`] that no column of its row holds: what `view` keeps.
#[derive(Serialize)]
struct RestOut<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    latching: bool,
    #[serde(skip_serializing_if = "<[Evidence]>::is_empty")]
    evidence: &'a [Evidence],
    #[serde(skip_serializing_if = "Option::is_none")]
    raised_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_false")]
    needs_reset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_to: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    comments: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<AlertId>,
}

/// [`RestOut`] read back; a member that is missing has its default, and members it does not
/// name (a whole view's, in rows written before) are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Rest {
    message: String,
    value: Option<Value>,
    zone: Option<String>,
    latching: bool,
    evidence: Vec<Evidence>,
    raised_at: Option<Timestamp>,
    needs_reset: bool,
    assigned_to: Option<String>,
    comments: u32,
    incident: Option<AlertId>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Writes what `view` keeps of `view` (as JSON) into `out`, which is cleared first.
pub(crate) fn write_rest(view: &AlertView, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.clear();
    serde_json::to_writer(
        &mut *out,
        &RestOut {
            message: &view.message,
            value: view.value.as_ref(),
            zone: view.zone.as_deref(),
            latching: view.latching,
            evidence: &view.evidence,
            raised_at: view.raised_at,
            needs_reset: view.needs_reset,
            assigned_to: view.assigned_to.as_deref(),
            comments: view.comments,
            incident: view.incident,
        },
    )
}

/// The view of the row whose [`COLUMNS`] start at `first`: the outer error is SQLite's
/// (a column missing), the inner one says what of the row does not read back.
pub(crate) fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Result<AlertView>> {
    let id = row.get_ref(first)?;
    let raw = Raw {
        id: blob16(id),
        key: row.get::<_, Option<String>>(first + 1)?,
        site: row.get::<_, Option<String>>(first + 2)?,
        severity: row.get::<_, String>(first + 3)?,
        active: row.get::<_, bool>(first + 4)?,
        acknowledged: row.get::<_, bool>(first + 5)?,
        closed: row.get::<_, bool>(first + 6)?,
        updated_at: row.get::<_, i64>(first + 7)?,
        last_hlc: row.get::<_, i64>(first + 8)?,
        last_event_id: blob16(row.get_ref(first + 9)?),
        event_count: row.get::<_, i64>(first + 10)?,
        shelved_until: row.get::<_, Option<String>>(first + 11)?,
        suppressed: row.get::<_, Option<bool>>(first + 12)?,
        out_of_service: row.get::<_, Option<bool>>(first + 13)?,
        view: row.get::<_, String>(first + 14)?,
    };
    Ok(raw.into_view())
}

/// A 16-byte BLOB, or `None` for anything else.
fn blob16(value: ValueRef<'_>) -> Option<[u8; 16]> {
    match value {
        ValueRef::Blob(b) => <[u8; 16]>::try_from(b).ok(),
        _ => None,
    }
}

/// The columns of [`COLUMNS`] as read.
struct Raw {
    id: Option<[u8; 16]>,
    key: Option<String>,
    site: Option<String>,
    severity: String,
    active: bool,
    acknowledged: bool,
    closed: bool,
    updated_at: i64,
    last_hlc: i64,
    last_event_id: Option<[u8; 16]>,
    event_count: i64,
    shelved_until: Option<String>,
    suppressed: Option<bool>,
    out_of_service: Option<bool>,
    view: String,
}

impl Raw {
    fn into_view(self) -> Result<AlertView> {
        let Some(id) = self.id.map(AlertId::from_bytes) else {
            return Err(corrupt(
                "an alert".to_owned(),
                "id is not 16 bytes".to_owned(),
            ));
        };
        let row = || format!("id {id}");
        let bad = |detail: String| corrupt(row(), detail);
        let rest: Rest =
            serde_json::from_str(&self.view).map_err(|source| StoreError::CorruptJson {
                table: "alerts",
                row: row(),
                source,
            })?;
        let key = self
            .key
            .map(|k| {
                k.parse::<AlertKey>()
                    .map_err(|e| bad(format!("key {k:?}: {e}")))
            })
            .transpose()?;
        let site = self
            .site
            .map(|s| SitePath::new(&s).map_err(|e| bad(format!("site {s:?}: {e}"))))
            .transpose()?;
        let severity = severity_from_sql(&self.severity)
            .ok_or_else(|| bad(format!("unknown severity {:?}", self.severity)))?;
        let shelved_until = self
            .shelved_until
            .map(|t| {
                t.parse::<Timestamp>()
                    .map_err(|e| bad(format!("shelved_until {t:?}: {e}")))
            })
            .transpose()?;
        let last_hlc = hlc_from_sql(self.last_hlc, "alerts", row)?;
        let last_event = self
            .last_event_id
            .map(EventId::from_bytes)
            .ok_or_else(|| bad("last_event_id is not 16 bytes".to_owned()))?;
        let event_count = u32::try_from(self.event_count)
            .map_err(|_| bad(format!("event_count {}", self.event_count)))?;
        Ok(AlertView {
            id,
            key,
            site,
            severity,
            message: rest.message,
            value: rest.value,
            zone: rest.zone,
            latching: rest.latching,
            evidence: rest.evidence,
            raised_at: rest.raised_at,
            updated_at: Timestamp::from_millis(self.updated_at),
            active: self.active,
            acknowledged: self.acknowledged,
            needs_reset: rest.needs_reset,
            shelved_until,
            suppressed: self.suppressed.unwrap_or(false),
            out_of_service: self.out_of_service.unwrap_or(false),
            closed: self.closed,
            assigned_to: rest.assigned_to,
            comments: rest.comments,
            incident: rest.incident,
            last: Some((last_hlc, last_event)),
            event_count,
        })
    }
}

fn corrupt(row: String, detail: String) -> StoreError {
    StoreError::CorruptValue {
        table: "alerts",
        row,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Hlc, NodeId, Severity};

    use super::*;
    use crate::events::{load_view, save_view, ViewStatements};
    use crate::store::Store;

    /// A view with every member away from its default.
    fn full_view() -> AlertView {
        let id = AlertId::from_bytes([0xa1; 16]);
        let mut view = AlertView::empty(id);
        view.key = Some(
            AlertKey::new(
                NodeId::new("gw-7").expect("node"),
                "fence-north/zone3_alarm",
                vigil_core::ConditionKind::new("limit_hh").expect("kind"),
            )
            .expect("key"),
        );
        view.site = Some(SitePath::new("ministry/gd/gz/baiyun/prison-3").expect("site"));
        view.severity = Severity::Critical;
        view.message = "Fence zone 3 \"vibration\" above limit".into();
        view.value = Some(Value::Text("high ✓".into()));
        view.zone = Some("north-perimeter".into());
        view.latching = true;
        view.evidence = vec![Evidence {
            kind: "snapshot".into(),
            uri: "evidence/cam-3/1.jpg".into(),
        }];
        view.raised_at = Some(Timestamp::from_millis(1_795_000_000_000));
        view.updated_at = Timestamp::from_millis(1_795_000_000_321);
        view.active = true;
        view.acknowledged = true;
        view.needs_reset = true;
        view.shelved_until = Some(Timestamp::from_millis(1_795_000_600_000));
        view.suppressed = true;
        view.out_of_service = true;
        view.closed = true;
        view.assigned_to = Some("duty-officer".into());
        view.comments = 3;
        view.incident = Some(AlertId::from_bytes([0xb2; 16]));
        view.last = Some((
            Hlc::new(1_795_000_000_321, 7),
            EventId::from_bytes([0xc3; 16]),
        ));
        view.event_count = 9;
        view
    }

    /// Writes `view`'s row as the event writer does (an insert).
    fn save(store: &Store, view: &AlertView) {
        let mut statements = ViewStatements::new(&store.conn).expect("statements");
        save_view(&mut statements, view, None, None, &mut Vec::new()).expect("save");
    }

    #[test]
    fn a_view_reads_back_from_its_columns_and_rest() {
        let store = Store::open_in_memory().expect("store");
        for view in [full_view(), {
            // Every member of the rest at its default.
            let mut v = full_view();
            v.message.clear();
            v.value = None;
            v.zone = None;
            v.latching = false;
            v.evidence.clear();
            v.raised_at = None;
            v.needs_reset = false;
            v.assigned_to = None;
            v.comments = 0;
            v.incident = None;
            v.key = None;
            v.site = None;
            v.shelved_until = None;
            v.id = AlertId::from_bytes([0xa2; 16]);
            v
        }] {
            save(&store, &view);
            assert_eq!(load_view(&store.conn, view.id).expect("load"), Some(view));
        }
        // The rest leaves out what the columns hold.
        let mut rest = Vec::new();
        write_rest(&full_view(), &mut rest).expect("encode");
        let rest: serde_json::Value = serde_json::from_slice(&rest).expect("json");
        for column in [
            "id",
            "key",
            "site",
            "severity",
            "updated_at",
            "last",
            "closed",
        ] {
            assert!(rest.get(column).is_none(), "{column} in {rest}");
        }
    }

    /// A row the writer believed present (its state unchanged) but that is not there is
    /// inserted whole, its key included.
    #[test]
    fn a_missing_row_is_written_whole() {
        let store = Store::open_in_memory().expect("store");
        let view = full_view();
        let believed = crate::events::IndexedColumns::of(&view);
        let mut statements = ViewStatements::new(&store.conn).expect("statements");
        save_view(
            &mut statements,
            &view,
            None,
            Some(&believed),
            &mut Vec::new(),
        )
        .expect("save");
        assert_eq!(load_view(&store.conn, view.id).expect("load"), Some(view));
    }

    /// Rows written before schema version 9 hold the whole view as JSON in `view`.
    #[test]
    fn a_row_with_a_whole_view_reads_the_same() {
        let store = Store::open_in_memory().expect("store");
        let view = full_view();
        save(&store, &view);
        store
            .conn
            .execute(
                "UPDATE alerts SET view = ?1 WHERE id = ?2",
                rusqlite::params![
                    serde_json::to_string(&view).expect("json"),
                    &view.id.as_bytes()[..]
                ],
            )
            .expect("old form");
        assert_eq!(load_view(&store.conn, view.id).expect("load"), Some(view));
    }

    #[test]
    fn a_damaged_row_is_an_error_naming_it() {
        let store = Store::open_in_memory().expect("store");
        let view = full_view();
        save(&store, &view);
        for (column, value) in [("key", "no-slashes"), ("severity", "loud"), ("view", "{")] {
            store
                .conn
                .execute(
                    &format!("UPDATE alerts SET {column} = ?1 WHERE id = ?2"),
                    rusqlite::params![value, &view.id.as_bytes()[..]],
                )
                .expect("damage");
            let err = load_view(&store.conn, view.id).expect_err(column);
            assert!(err.to_string().contains(&view.id.to_string()), "{err}");
            store
                .conn
                .execute(
                    "DELETE FROM alerts WHERE id = ?1",
                    [&view.id.as_bytes()[..]],
                )
                .expect("drop the damaged row");
            save(&store, &view);
        }
    }
}
