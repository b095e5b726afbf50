//! `GET /api/v1/alerts` (a filtered page of alerts) and `GET /api/v1/alerts/{id}` (one alert
//! with its event history in fold order).
//!
//! List parameters, all optional:
//!
//! | parameter | meaning | default |
//! |---|---|---|
//! | `state` | ISA-18.2 states, comma-separated (`active_unack,rtn_unack`) | any |
//! | `severity` | severities, comma-separated (`critical,major`) | any |
//! | `min_severity` | the least severity (`major`: major and critical) | none |
//! | `site` | a site subtree, whole segments (`ministry/gd/gz`) | everything |
//! | `node` | the node that raised the alerts | any |
//! | `active` | `true`/`false`: the condition holds or not | any |
//! | `closed` | `false` (open alerts), `true` (closed ones) or `any` | `false` |
//! | `limit` | alerts per page, 1–1000 | 100 |
//! | `cursor` | the `next` of the previous page | first page |
//!
//! The answer is `{"alerts": [...], "next": CURSOR}`, most recently updated first; `next` is
//! `null` on the last page. Paging is stable while alerts arrive (keyset on the update time,
//! see `vigil_store::query`).
//!
//! One alert also says whether it went up to the parent: `escalation` is
//! `{"parent": bool, "escalated": bool, "since": time|null, "rule": "..."}` — whether this
//! hub has a parent, whether the alert's events go up under the escalation policy in force,
//! the stamp of its first event that did, and the rule that decided
//! (`crate::escalation::EscalationSection::explain`).
//!
//! **Scope.** A list holds only the alerts in the caller's scope: `site` narrows it further
//! (a `site` outside the scope lists nothing). One alert outside the scope is refused with
//! 403, and the attempt is audited (see [`super::access`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use vigil_core::{AlertState, NodeId, Severity, SitePath, Timestamp};
use vigil_store::{AlertCursor, AlertQuery, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};

use super::access::{self, check_scope};
use super::{alert_id, ApiError, AppState};
use crate::alert_json::{AlertJson, AlertList, AlertWithEvents};
use crate::auth::{Permission, Principal};
use crate::escalation::EscalationJson;

/// `GET /api/v1/alerts/{id}`: the alert, its events and whether it went up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDetail {
    /// The alert and its events.
    #[serde(flatten)]
    pub alert: AlertWithEvents,
    /// Whether it went up to the parent, and by which rule.
    pub escalation: EscalationJson,
}

/// The list's query parameters, unparsed (each is parsed with its own error message).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    severity: Option<String>,
    min_severity: Option<String>,
    site: Option<String>,
    node: Option<String>,
    active: Option<String>,
    closed: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Every state, in the order the errors list them.
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

fn parse_state(s: &str) -> Result<AlertState, ApiError> {
    STATES
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = STATES.iter().map(|st| st.as_str()).collect();
            ApiError::bad_request(format!(
                "state: unknown state {s:?}; use {}",
                names.join(", ")
            ))
        })
}

fn parse_severity(param: &str, s: &str) -> Result<Severity, ApiError> {
    Severity::ALL
        .into_iter()
        .find(|sev| sev.as_str() == s)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{param}: unknown severity {s:?}; use critical, major, minor, warning, info"
            ))
        })
}

fn parse_bool(param: &str, s: &str) -> Result<bool, ApiError> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{param}: {s:?} is not true or false"
        ))),
    }
}

/// Comma-separated items, empty ones ignored.
fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|i| !i.is_empty())
}

impl ListParams {
    /// The store query these parameters ask for, at `now`.
    pub fn to_query(&self, now: Timestamp) -> Result<AlertQuery, ApiError> {
        let mut q = AlertQuery {
            closed: Some(false),
            now,
            ..AlertQuery::default()
        };
        if let Some(s) = &self.state {
            q.states = items(s).map(parse_state).collect::<Result<_, _>>()?;
        }
        if let Some(s) = &self.severity {
            q.severities = items(s)
                .map(|i| parse_severity("severity", i))
                .collect::<Result<_, _>>()?;
        }
        if let Some(s) = &self.min_severity {
            q.min_severity = Some(parse_severity("min_severity", s)?);
        }
        if let Some(s) = &self.site {
            q.site = Some(
                SitePath::new(s.as_str())
                    .map_err(|e| ApiError::bad_request(format!("site: {e}")))?,
            );
        }
        if let Some(s) = &self.node {
            q.origin = Some(
                NodeId::new(s.as_str()).map_err(|e| ApiError::bad_request(format!("node: {e}")))?,
            );
        }
        if let Some(s) = &self.active {
            q.active = Some(parse_bool("active", s)?);
        }
        if let Some(s) = &self.closed {
            q.closed = match s.as_str() {
                "any" => None,
                other => Some(parse_bool("closed", other).map_err(|_| {
                    ApiError::bad_request(format!("closed: {other:?} is not true, false or any"))
                })?),
            };
        }
        q.limit = match &self.limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit: {s:?} is not a number from 1 to {MAX_PAGE_LIMIT}"
                    ))
                })?,
        };
        if let Some(s) = &self.cursor {
            q.cursor = Some(
                s.parse::<AlertCursor>()
                    .map_err(|e| ApiError::bad_request(format!("cursor: {e}")))?,
            );
        }
        Ok(q)
    }
}

/// `GET /api/v1/alerts`.
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; parameters are state, severity, min_severity, site, node, active, closed, limit, cursor",
            e.body_text()
        ))
    })?;
    let now = Timestamp::now();
    let mut query = params.to_query(now)?;
    access::require(&state, &who, Permission::Read, "list", "alerts").await?;
    let Some(site) = who.narrow(query.site.as_ref()) else {
        return Ok(Json(AlertList {
            alerts: Vec::new(),
            next: None,
        }));
    };
    query.site = Some(site);
    let page = state.store.call(move |s| s.query_alerts(&query)).await?;
    Ok(Json(AlertList {
        alerts: page.alerts.iter().map(|v| AlertJson::new(v, now)).collect(),
        next: page.next.map(|c| c.to_string()),
    }))
}

/// `GET /api/v1/alerts/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ApiError> {
    let id = alert_id(&id)?;
    access::require(&state, &who, Permission::Read, "read", &id.to_string()).await?;
    let node = state.actions.node.to_string();
    let caller = who.clone();
    let found = state
        .store
        .call(move |s| {
            let Some(view) = s.alert(id)? else {
                return Ok(None);
            };
            let target = id.to_string();
            let site = view.site.clone();
            if let Some(denied) = check_scope(s, &node, &caller, "read", &target, site.as_ref())? {
                return Ok(Some(Err(denied)));
            }
            Ok(Some(Ok((view, s.alert_events(id)?))))
        })
        .await?;
    let (view, events) = match found {
        None => return Err(ApiError::not_found(format!("no alert {id}"))),
        Some(Err(denied)) => return Err(access::forbidden(&state, &who, "read", &denied)),
        Some(Ok(found)) => found,
    };
    let escalation = state
        .actions
        .escalation
        .explain(state.actions.has_parent, &view, &events);
    Ok(Json(AlertDetail {
        alert: AlertWithEvents {
            alert: AlertJson::new(&view, Timestamp::now()),
            events,
        },
        escalation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<AlertQuery, ApiError> {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let p: ListParams = serde_json::from_value(serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                .collect(),
        ))
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        p.to_query(Timestamp::from_millis(0))
    }

    #[test]
    fn defaults_list_open_alerts() {
        let q = params(&[]).expect("valid");
        assert_eq!(q.closed, Some(false));
        assert_eq!(q.limit, DEFAULT_PAGE_LIMIT);
    }

    #[test]
    fn every_parameter_parses() {
        let q = params(&[
            ("state", "active_unack,shelved"),
            ("severity", "critical, major"),
            ("min_severity", "minor"),
            ("site", "ministry/gd"),
            ("node", "gw-1"),
            ("active", "true"),
            ("closed", "any"),
            ("limit", "5"),
        ])
        .expect("valid");
        assert_eq!(q.states, [AlertState::ActiveUnack, AlertState::Shelved]);
        assert_eq!(q.severities, [Severity::Critical, Severity::Major]);
        assert_eq!(q.min_severity, Some(Severity::Minor));
        assert_eq!(q.closed, None);
        assert_eq!(q.active, Some(true));
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn bad_parameters_say_what_to_write() {
        for (k, v, needle) in [
            ("state", "open", "active_unack"),
            ("severity", "high", "critical"),
            ("site", "a//b", "site"),
            ("limit", "0", "1 to 1000"),
            ("limit", "1001", "1 to 1000"),
            ("closed", "maybe", "any"),
            ("cursor", "abc", "cursor"),
            ("node", "GW", "node"),
        ] {
            let e = params(&[(k, v)]).expect_err(k);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(e.message.contains(needle), "{k}={v}: {}", e.message);
        }
    }
}
