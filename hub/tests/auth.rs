//! Console users, roles, scope, sessions, CSRF, API tokens and sign-in limits end to end:
//! a real hub on loopback, driven over HTTP as a browser and a script would.

mod common;

use std::time::Duration;

use common::{password_of, Gateway, Hub, Session, SseReader, PRISON_3, PRISON_4};
use hyper::StatusCode;
use serde_json::Value;
use vigil_core::{AlertEvent, AlertId, Severity, Timestamp};
use vigil_hub::auth::admin::Admin;
use vigil_hub::auth::{secret, Role};
use vigil_store::{AuditRecord, Store};

/// A facility whose name shares a prefix with prison-3's, to show whole-segment scopes.
const PRISON_30: &str = "ministry/gd/gz/baiyun/prison-30";

struct Seed {
    /// Critical, at prison 3.
    p3: AlertId,
    /// Major, at prison 4.
    p4: AlertId,
    /// Minor, at prison 30.
    p30: AlertId,
    events: Vec<AlertEvent>,
}

fn seed() -> Seed {
    let mut gw3 = Gateway::new("gw-prison-3", PRISON_3);
    let mut gw4 = Gateway::new("gw-prison-4", PRISON_4);
    let mut gw30 = Gateway::new("gw-prison-30", PRISON_30);
    let (p3, p4, p30) = (
        AlertId::generate(),
        AlertId::generate(),
        AlertId::generate(),
    );
    let events = vec![
        gw3.raise(
            p3,
            "fence-north/zone1_alarm",
            "state",
            Severity::Critical,
            false,
        ),
        gw4.raise(p4, "door-3/forced", "state", Severity::Major, false),
        gw30.raise(p30, "env-1/temperature", "limit_h", Severity::Minor, false),
    ];
    Seed {
        p3,
        p4,
        p30,
        events,
    }
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().expect("a JSON error")
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[AlertId]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

/// Every audit record of the hub's store so far.
fn audit(hub: &Hub) -> Vec<AuditRecord> {
    Store::open(&hub.store_path)
        .expect("open store")
        .audit_records(0, 10_000)
        .expect("audit records")
}

fn admin(hub: &Hub) -> Admin {
    Admin::open(&hub.config, "cli:test".to_owned()).expect("open store")
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_calls_are_refused_with_401() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let alert = format!("/api/v1/alerts/{}", s.p3);
    let ack = format!("{alert}/ack");
    for (method, path) in [
        ("GET", "/api/v1/alerts"),
        ("GET", alert.as_str()),
        ("GET", "/api/v1/tree"),
        ("GET", "/api/v1/stream"),
        ("GET", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("POST", ack.as_str()),
        ("GET", "/api/v1/nothing-here"),
    ] {
        let resp = hub.send_raw(method, path, &[], "").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(
            header(resp.headers(), "www-authenticate"),
            "Bearer realm=\"vigil\""
        );
    }
    let (status, body) = hub.get_as("/api/v1/alerts", &[]).await;
    assert!(error_of(&body).contains("POST /api/v1/session"), "{body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for bad in ["Bearer vigil_not-a-token", "Basic bGk6bmE=", "Bearer"] {
        let (status, _) = hub
            .get_as("/api/v1/alerts", &[("authorization", bad)])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let (status, _) = hub
        .get_as("/api/v1/alerts", &[("cookie", "vigil_session=forged")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Nothing was done.
    let (_, one) = hub.get(&alert).await;
    assert_eq!(one["acknowledged"], false);

    // Open: health, and the metrics (by default), which count the refusals.
    let (status, _, body) = hub.get_text("/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let resp = hub.send_raw("GET", "/metrics", &[], "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, _, metrics) = hub.get_text("/metrics").await;
    for line in [
        "vigil_hub_auth_refusals_total{reason=\"no_credentials\",status=\"401\"} 9",
        "vigil_hub_auth_refusals_total{reason=\"unknown_token\",status=\"401\"} 1",
        "vigil_hub_auth_refusals_total{reason=\"bad_authorization\",status=\"401\"} 2",
        "vigil_hub_auth_refusals_total{reason=\"unknown_session\",status=\"401\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    hub.stop().await;

    // `open_metrics = false`: the metrics need credentials too.
    let hub = Hub::start_with(false, "\n[auth]\nopen_metrics = false\n", &[]).await;
    let resp = hub.send_raw("GET", "/metrics", &[], "").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _, _) = hub.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK, "with the token");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_a_strict_cookie_with_a_csrf_token_until_sign_out() {
    let hub = Hub::start(false, &seed().events).await;
    hub.add_user("li.na", Role::Operator, PRISON_3);
    let (status, headers, body) = hub.sign_in("li.na", &password_of("li.na")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = header(&headers, "set-cookie");
    let (pair, flags) = cookie.split_once("; ").expect("flags");
    assert!(
        pair.starts_with("vigil_session=") && pair.len() > 40,
        "{cookie}"
    );
    assert_eq!(flags, "HttpOnly; SameSite=Strict; Path=/; Max-Age=43200");
    assert_eq!(body["user"], "li.na");
    assert_eq!(body["role"], "operator");
    assert_eq!(body["scope"], PRISON_3);
    let csrf = body["csrf"].as_str().expect("csrf");
    assert!(csrf.len() >= 40 && !pair.contains(csrf));
    let session = Session::from_sign_in(&headers, &body);

    // Who am I: with the cookie alone (a GET needs no CSRF token).
    let (status, me) = hub.get_as("/api/v1/session", &session.cookie_only()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"], "li.na");
    assert_eq!(me["via"], "session");
    assert_eq!(me["csrf"], csrf);
    let (status, me) = hub.get("/api/v1/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["user"].as_str(), me["via"].as_str()),
        (Some("token:harness"), Some("token"))
    );

    // Sign out: needs the CSRF token; then the cookie is cleared and the session gone.
    let (status, body) = hub
        .call_as("DELETE", "/api/v1/session", &session.cookie_only(), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("X-CSRF-Token"), "{body}");
    let resp = hub
        .send_raw("DELETE", "/api/v1/session", &session.headers(), "")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(resp.headers(), "set-cookie").starts_with("vigil_session=; "));
    assert!(header(resp.headers(), "set-cookie").contains("Max-Age=0"));
    let (status, _) = hub.get_as("/api/v1/session", &session.cookie_only()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let records = audit(&hub);
    let last: Vec<(&str, &str)> = records
        .iter()
        .rev()
        .take(2)
        .map(|r| (r.entry.action.as_str(), r.entry.actor.as_str()))
        .collect();
    assert_eq!(last, [("sign_out", "li.na"), ("sign_in", "li.na")]);
    hub.stop().await;

    // Served over HTTPS (`secure_cookie`): the cookie is Secure too.
    let hub = Hub::start_with(false, "\n[auth]\nsecure_cookie = true\n", &[]).await;
    hub.add_user("li.na", Role::Viewer, PRISON_3);
    let (status, headers, _) = hub.sign_in("li.na", &password_of("li.na")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "set-cookie").ends_with("; Secure"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_401_audited_and_says_nothing_of_which_part_was_wrong() {
    let hub = Hub::start(false, &[]).await;
    hub.add_user("li.na", Role::Operator, PRISON_3);
    let (status, headers, wrong) = hub.sign_in("li.na", "not the password at all").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
    assert_eq!(
        header(&headers, "www-authenticate"),
        "Bearer realm=\"vigil\""
    );
    assert!(headers.get("set-cookie").is_none());
    let (status, _, unknown) = hub.sign_in("nobody", "not the password at all").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown, "the same answer for an unknown name");
    // Not JSON, or not the right shape: 400, and no attempt is counted.
    let resp = hub
        .send_raw(
            "POST",
            "/api/v1/session",
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (status, _) = hub
        .call_as(
            "POST",
            "/api/v1/session",
            &[("content-type", "application/json")],
            r#"{"name": "li.na"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let records = audit(&hub);
    let failures: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.entry.action == "sign_in")
        .collect();
    assert_eq!(failures.len(), 2);
    for (r, (target, reason)) in failures
        .iter()
        .zip([("li.na", "wrong_password"), ("nobody", "unknown_user")])
    {
        assert_eq!(r.entry.actor, "unauthenticated");
        assert_eq!(r.entry.target, target);
        assert_eq!(r.entry.details["outcome"], "failure");
        assert_eq!(r.entry.details["reason"], reason);
        assert_eq!(r.entry.details["client"], "127.0.0.1");
    }
    for r in &records {
        let text = format!("{:?}", r.entry);
        assert!(
            !text.contains("not the password"),
            "a password in the audit log: {text}"
        );
    }
    let (_, _, metrics) = hub.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "vigil_hub_sign_ins_total{outcome=\"failure\"} 2"),
        "{metrics}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_answered_429_with_a_growing_wait_and_a_success_resets() {
    let hub = Hub::start_with(
        false,
        "\n[auth]\nsign_in_free_failures = 3\nsign_in_delay = \"1s\"\nsign_in_max_delay = \"4s\"\n",
        &[],
    )
    .await;
    hub.add_user("li.na", Role::Operator, PRISON_3);
    let mut first_429 = None;
    let mut retry_after = None;
    for attempt in 1..=10 {
        let (status, headers, body) = hub.sign_in("li.na", "a guess at the password").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            first_429 = Some(attempt);
            retry_after = Some(header(&headers, "retry-after").to_owned());
            assert!(error_of(&body).contains("try again"), "{body}");
            break;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {body}"
        );
    }
    assert_eq!(first_429, Some(4), "three free failures, then a wait");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // While waiting, even the right password is not checked.
    let (status, _, _) = hub.sign_in("li.na", &password_of("li.na")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // After the wait, the next failure makes the wait twice as long.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, _) = hub.sign_in("li.na", "another guess at it").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = hub.sign_in("li.na", "another guess at it").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&headers, "retry-after"), "2");

    // A success after the wait starts the count over.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, body) = hub.sign_in("li.na", &password_of("li.na")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = hub.sign_in("li.na", "a guess at the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "counted afresh");

    // Each failure is audited, the one that started a wait with it; the 429s are counted.
    let records = audit(&hub);
    let sign_ins: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.entry.action == "sign_in")
        .collect();
    assert_eq!(sign_ins.len(), 6, "3 + 1 failures, a success, a failure");
    assert_eq!(sign_ins[2].entry.details["wait_s"], 1.0);
    assert_eq!(sign_ins[3].entry.details["wait_s"], 2.0);
    assert_eq!(sign_ins[4].entry.details["outcome"], "success");
    let (_, _, metrics) = hub.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "vigil_hub_sign_ins_total{outcome=\"rate_limited\"} 3"),
        "{metrics}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_needs_the_csrf_token_to_change_anything_and_a_bearer_token_does_not() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let op = hub.session("li.na", Role::Operator, "ministry").await;
    let ack = |id: AlertId| format!("/api/v1/alerts/{id}/ack");
    let (status, body) = hub.call_as("POST", &ack(s.p3), &op.cookie_only(), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let wrong = [("cookie", op.cookie.as_str()), ("x-csrf-token", "forged")];
    let (status, _) = hub.call_as("POST", &ack(s.p3), &wrong, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, alert) = hub.get(&format!("/api/v1/alerts/{}", s.p3)).await;
    assert_eq!(
        alert["acknowledged"], false,
        "refused before anything happened"
    );
    let (status, body) = hub.call_as("POST", &ack(s.p3), &op.headers(), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["event"]["actor"]["user"], "li.na");

    let token = hub.add_token("duty-script", Role::Operator, "ministry");
    let bearer = format!("Bearer {token}");
    let (status, body) = hub
        .call_as(
            "POST",
            &ack(s.p4),
            &[("authorization", bearer.as_str())],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["event"]["actor"]["user"], "token:duty-script");
    let (_, _, metrics) = hub.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "vigil_hub_auth_refusals_total{reason=\"csrf\",status=\"403\"} 2"),
        "{metrics}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_what_a_caller_may_do() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let url = |id: AlertId, action: &str| format!("/api/v1/alerts/{id}/{action}");
    let viewer = hub.session("wang.fang", Role::Viewer, "ministry").await;
    let (status, list) = hub.get_as("/api/v1/alerts", &viewer.headers()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), sorted(&[s.p3, s.p4, s.p30]));
    let (status, body) = hub
        .call_as("POST", &url(s.p3, "ack"), &viewer.headers(), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("viewer"), "{body}");
    let refusal = audit(&hub).pop().expect("a record");
    assert_eq!(refusal.entry.action, "access_denied");
    assert_eq!(refusal.entry.actor, "wang.fang");
    assert_eq!(refusal.entry.target, s.p3.to_string());
    assert_eq!(refusal.entry.details["request"], "ack");
    assert_eq!(refusal.entry.details["reason"], "role");

    let op = hub.session("li.na", Role::Operator, "ministry").await;
    let (status, _) = hub
        .call_as("POST", &url(s.p3, "ack"), &op.headers(), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .call_as("POST", &url(s.p3, "close"), &op.headers(), "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an operator does not close");
    let auditor = hub.session("zhao.lei", Role::Auditor, "ministry").await;
    let (status, _) = hub
        .call_as(
            "POST",
            &url(s.p3, "comment"),
            &auditor.headers(),
            r#"{"text": "x"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let sup = hub.session("chen.jie", Role::Supervisor, "ministry").await;
    let (status, body) = hub
        .call_as("POST", &url(s.p3, "close"), &sup.headers(), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_filters_lists_the_tree_and_the_stream_and_refuses_the_rest() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let op = hub.session("li.na", Role::Operator, PRISON_3).await;
    let as_op = op.headers();

    // Lists: prison 3 only (not prison 30); a site filter only narrows.
    let (status, list) = hub.get_as("/api/v1/alerts", &as_op).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), sorted(&[s.p3]));
    let (_, list) = hub
        .get_as(&format!("/api/v1/alerts?site={PRISON_4}"), &as_op)
        .await;
    assert_eq!(ids(&list), Vec::<String>::new());
    let (_, list) = hub.get_as("/api/v1/alerts?site=ministry/gd", &as_op).await;
    assert_eq!(ids(&list), sorted(&[s.p3]));
    let (_, all) = hub.get("/api/v1/alerts").await;
    assert_eq!(
        ids(&all),
        sorted(&[s.p3, s.p4, s.p30]),
        "the admin sees all"
    );

    // One alert outside the scope: 403 to read or act, each attempt audited.
    let (status, body) = hub
        .get_as(&format!("/api/v1/alerts/{}", s.p4), &as_op)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("outside your scope"), "{body}");
    let (status, _) = hub
        .call_as("POST", &format!("/api/v1/alerts/{}/ack", s.p30), &as_op, "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refusals: Vec<AuditRecord> = audit(&hub)
        .into_iter()
        .filter(|r| r.entry.action == "access_denied")
        .collect();
    assert_eq!(refusals.len(), 2);
    let ack = &refusals[1].entry;
    assert_eq!(
        (ack.actor.as_str(), ack.target.clone()),
        ("li.na", s.p30.to_string())
    );
    assert_eq!(ack.details["request"], "ack");
    assert_eq!(ack.details["reason"], "scope");
    assert_eq!(ack.details["scope"], PRISON_3);
    assert_eq!(ack.details["site"], PRISON_30);
    let (_, p30) = hub.get(&format!("/api/v1/alerts/{}", s.p30)).await;
    assert_eq!(p30["acknowledged"], false, "nothing was done");
    assert_eq!(p30["events"].as_array().map(Vec::len), Some(1));
    let (status, _) = hub
        .call_as("POST", &format!("/api/v1/alerts/{}/ack", s.p3), &as_op, "")
        .await;
    assert_eq!(status, StatusCode::OK, "in scope");

    // The tree: only prison 3's gateway, and only its alerts counted.
    let (status, tree) = hub.get_as("/api/v1/tree", &as_op).await;
    assert_eq!(status, StatusCode::OK, "{tree}");
    let children: Vec<&str> = tree["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(children, ["gw-prison-3"], "{tree}");
    assert_eq!(tree["alerts"]["open"], 1);
    let (_, full) = hub.get("/api/v1/tree").await;
    assert_eq!(full["children"].as_array().map(Vec::len), Some(3));

    // The stream: events of alerts outside the scope are not sent.
    let resp = hub
        .send_raw("GET", "/api/v1/stream", &op.cookie_only(), "")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut sse = SseReader::new(resp.into_body());
    let mut gw4 = Gateway::new("gw-prison-4", PRISON_4);
    let mut gw30 = Gateway::new("gw-prison-30", PRISON_30);
    let mut gw3 = Gateway::new("gw-prison-3", PRISON_3);
    let (a4, a30, a3) = (
        AlertId::generate(),
        AlertId::generate(),
        AlertId::generate(),
    );
    hub.ingest(vec![gw4.raise(
        a4,
        "ups-1/on_battery",
        "state",
        Severity::Warning,
        false,
    )])
    .await;
    hub.ingest(vec![gw30.raise(
        a30,
        "ups-1/on_battery",
        "state",
        Severity::Warning,
        false,
    )])
    .await;
    hub.ingest(vec![gw3.raise(
        a3,
        "ups-1/on_battery",
        "state",
        Severity::Warning,
        false,
    )])
    .await;
    let m = sse.next().await.expect("a message");
    let data: Value = serde_json::from_str(&m.data).expect("JSON");
    assert_eq!(data["alert"]["id"], a3.to_string(), "the first in scope");
    assert_eq!(data["alert"]["site"], PRISON_3);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_works_until_revoked_or_expired() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let token = hub.add_token("cap-feed", Role::Viewer, PRISON_4);
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let (status, list) = hub.get_as("/api/v1/alerts", &auth).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), sorted(&[s.p4]), "the token's scope");
    let (status, _) = hub
        .call_as("POST", &format!("/api/v1/alerts/{}/ack", s.p4), &auth, "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer token");

    admin(&hub).revoke_token("cap-feed").expect("revoke");
    let (status, body) = hub.get_as("/api/v1/alerts", &auth).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let short = admin(&hub)
        .add_token(
            "short-lived",
            Role::Viewer,
            &vigil_core::SitePath::new("ministry").expect("site"),
            Some(Duration::from_millis(300)),
        )
        .expect("token");
    let bearer = format!("Bearer {short}");
    let auth = [("authorization", bearer.as_str())];
    let (status, _) = hub.get_as("/api/v1/alerts", &auth).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = hub.get_as("/api/v1/alerts", &auth).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");

    let tokens = admin(&hub).tokens().expect("tokens");
    let feed = tokens
        .iter()
        .find(|t| t.name == "cap-feed")
        .expect("cap-feed");
    assert!(feed.last_used.is_some() && feed.revoked_at.is_some());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_are_refused() {
    let hub = Hub::start_with(
        false,
        "\n[auth]\nsession_idle = \"1s\"\nsession_max = \"1h\"\n",
        &[],
    )
    .await;
    // Absolute expiry: the session's end passed.
    let li = hub.session("li.na", Role::Operator, PRISON_3).await;
    let (status, _) = hub.get_as("/api/v1/session", &li.cookie_only()).await;
    assert_eq!(status, StatusCode::OK);
    let secret_hash = secret::digest(li.cookie.trim_start_matches("vigil_session="));
    Store::open(&hub.store_path)
        .expect("open")
        .session_set_expiry(&secret_hash, Timestamp::now().plus_millis(-1))
        .expect("age the session");
    let resp = hub
        .send_raw("GET", "/api/v1/alerts", &li.cookie_only(), "")
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(header(resp.headers(), "set-cookie").contains("Max-Age=0"));

    // Idle expiry: used within the idle time it lives on; left alone it ends.
    let li = hub.session("li.na", Role::Operator, PRISON_3).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, _) = hub.get_as("/api/v1/alerts", &li.cookie_only()).await;
        assert_eq!(status, StatusCode::OK, "in use");
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = hub.get_as("/api/v1/alerts", &li.cookie_only()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(error_of(&body).contains("ended"), "{body}");

    // A disabled user's sessions end at once.
    let li = hub.session("li.na", Role::Operator, PRISON_3).await;
    admin(&hub).disable_user("li.na").expect("disable");
    let (status, _) = hub.get_as("/api/v1/alerts", &li.cookie_only()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = hub.sign_in("li.na", &password_of("li.na")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no sign-in either");
    hub.stop().await;
}
