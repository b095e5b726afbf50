//! The hub's end-to-end test harness: a real hub (`vigil_hub::run::run`, the same function
//! the binary calls) on a loopback port with its store in a temporary directory, a small
//! HTTP/1.1 client (hyper) and builders of the events a gateway would send.
//!
//! The hub runs its MQTT side too (an embedded broker on a free port, no child connected);
//! these tests play a child through the same [`LinkContext`] the MQTT side gets: they apply
//! a gateway's events to the store, notify the live stream, and give the children registry a
//! health table of their own. `tests/link.rs` drives real links.
//!
//! Every API call needs credentials: the harness adds an admin API token (`token:harness`,
//! scope `ministry`) through the store before the hub starts, and [`Hub::get`],
//! [`Hub::post`] and [`Hub::send`] use it unless the request brings its own
//! `Authorization` or `Cookie`. [`Hub::send_raw`] sends exactly what it is given;
//! [`Hub::session`] adds a user and signs in over the API.

#![allow(dead_code)]

pub mod child;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, EventId, Hlc, NodeId, Severity, SitePath,
    Timestamp,
};
use vigil_hub::auth::admin::{Admin, AdminError};
use vigil_hub::auth::Role;
use vigil_hub::config::HubConfig;
use vigil_hub::link::LinkContext;
use vigil_hub::run::{run, Started};

/// How long any one step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// The facility of `gw-prison-3`.
pub const PRISON_3: &str = "ministry/gd/gz/baiyun/prison-3";
/// The facility of `gw-prison-4`.
pub const PRISON_4: &str = "ministry/gd/gz/baiyun/prison-4";

/// A county hub's config, with `[parent] url` = `parent` if any; `extra` is appended (e.g.
/// an `[escalation]` section).
pub fn county_toml(store: &std::path::Path, parent: Option<&str>, extra: &str) -> String {
    let parent = parent
        .map(|url| format!("[parent]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"Baiyun County Command Centre\"\n\
         site = \"ministry/gd/gz/baiyun\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [mqtt]\nlisten = \"127.0.0.1:0\"\n\n{parent}\n[store]\npath = {:?}\n{extra}",
        store.display().to_string()
    )
}

/// A running hub.
pub struct Hub {
    /// Where it serves HTTP.
    pub addr: SocketAddr,
    /// What the link side gets.
    pub link: LinkContext,
    /// The URL of its broker.
    pub broker: String,
    /// The store file.
    pub store_path: PathBuf,
    /// Its config, as loaded.
    pub config: HubConfig,
    /// The admin API token the helpers send by default.
    pub token: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
    _parent: Option<std::net::TcpListener>,
}

impl Hub {
    /// A county hub (with a parent when `parent`), its store seeded with `seed` before start.
    pub async fn start(parent: bool, seed: &[AlertEvent]) -> Hub {
        Hub::start_with(parent, "", seed).await
    }

    /// As [`Hub::start`], with `extra` config text. The parent is a port that takes TCP
    /// connections and never answers MQTT: the hub's uplink keeps trying, and what the hub
    /// queues for its parent stays in the `parent` outbox for the test to read.
    pub async fn start_with(parent: bool, extra: &str, seed: &[AlertEvent]) -> Hub {
        let sink = parent.then(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
        let url = sink
            .as_ref()
            .map(|l| format!("mqtt://{}", l.local_addr().expect("addr")));
        let mut hub =
            Hub::start_config(|store| county_toml(store, url.as_deref(), extra), seed).await;
        hub._parent = sink;
        hub
    }

    /// A hub whose `hub.toml` is `config(store path)`, its store seeded with `seed`.
    pub async fn start_config(
        config: impl FnOnce(&std::path::Path) -> String,
        seed: &[AlertEvent],
    ) -> Hub {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory that does not exist yet: the hub creates it.
        let store_path = dir.path().join("var").join("hub.db");
        let toml_path = dir.path().join("hub.toml");
        std::fs::write(&toml_path, config(&store_path)).expect("write config");
        let config: HubConfig = vigil_config::load(&toml_path).expect("valid config");
        let token = Admin::open_or_create(&config, "cli:harness".to_owned())
            .expect("open the store")
            .add_token(
                "harness",
                Role::Admin,
                &SitePath::new("ministry").expect("site"),
                None,
            )
            .expect("the harness's token");
        if !seed.is_empty() {
            let mut store = vigil_store::Store::open(&store_path).expect("open store");
            store.apply_events(seed).expect("seed");
        }
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(config.clone(), shutdown.clone(), Some(tx)));
        let Started { http, broker, link } = tokio::time::timeout(STEP, rx)
            .await
            .expect("hub starts in time")
            .expect("hub started");
        Hub {
            addr: http,
            link,
            broker,
            store_path,
            config,
            token,
            shutdown,
            task,
            _dir: dir,
            _parent: None,
        }
    }

    /// Stops the hub and waits for `run` to return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(STEP, self.task)
            .await
            .expect("hub stops in time")
            .expect("hub task")
            .expect("hub ran cleanly");
    }

    /// The link side applies a child's events and notifies the live stream.
    pub async fn ingest(&self, events: Vec<AlertEvent>) {
        let notify = events.clone();
        self.link
            .store
            .call(move |s| s.apply_events(&events))
            .await
            .expect("apply");
        self.link.live.ingest_notify(&notify);
    }

    /// The alert events queued in `link`'s outbox lane (decoded). Audit records, which a hub
    /// with a parent queues on the same outbox, are left out.
    pub async fn outbox(&self, link: &str, lane: vigil_core::Lane) -> Vec<AlertEvent> {
        let link = link.to_owned();
        let records = self
            .link
            .store
            .call(move |s| s.outbox_read(&link, lane, 0, 1000, 1 << 24))
            .await
            .expect("read outbox");
        records
            .iter()
            .filter_map(
                |r| match serde_json::from_slice(&r.payload).expect("link event") {
                    vigil_wire::LinkEvent::Alert(e) => Some(e),
                    vigil_wire::LinkEvent::Audit(_)
                    | vigil_wire::LinkEvent::Directive(_)
                    | vigil_wire::LinkEvent::DirectiveAck(_) => None,
                },
            )
            .collect()
    }

    /// `GET path` → status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        json(self.send("GET", path, &[], "").await).await
    }

    /// `POST path` with `body` (and headers) → status and JSON body.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        json(self.send("POST", path, headers, body).await).await
    }

    /// `GET path` → status, content type and text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let resp = self.send("GET", path, &[], "").await;
        let status = resp.status();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = tokio::time::timeout(STEP, resp.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends one request on a fresh connection and returns the response (body unread),
    /// with the harness's admin token unless `headers` bring an `Authorization` or a
    /// `Cookie`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response<Incoming> {
        let own = headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("cookie")
        });
        let bearer = format!("Bearer {}", self.token);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !own {
            all.push(("authorization", bearer.as_str()));
        }
        self.send_raw(method, path, &all, body).await
    }

    /// `GET path` with exactly `headers` (no credentials of the harness's) → status and
    /// JSON body.
    pub async fn get_as(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, serde_json::Value) {
        json(self.send_raw("GET", path, headers, "").await).await
    }

    /// `method path` with exactly `headers` and `body` → status and JSON body.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        json(self.send_raw(method, path, headers, body).await).await
    }

    /// Adds the user `name` (unless it exists) with the password [`password_of`]`(name)`,
    /// through the store as `vigil-hub user add` does.
    pub fn add_user(&self, name: &str, role: Role, scope: &str) {
        let mut admin =
            Admin::open_or_create(&self.config, "cli:harness".to_owned()).expect("open store");
        match admin.add_user(
            name,
            role,
            &SitePath::new(scope).expect("scope"),
            &password_of(name),
        ) {
            Ok(()) | Err(AdminError::User(vigil_store::UserError::UserExists(_))) => {}
            Err(e) => panic!("add user {name}: {e}"),
        }
    }

    /// An API token `name` with `role` and `scope`.
    pub fn add_token(&self, name: &str, role: Role, scope: &str) -> String {
        Admin::open_or_create(&self.config, "cli:harness".to_owned())
            .expect("open store")
            .add_token(name, role, &SitePath::new(scope).expect("scope"), None)
            .expect("add token")
    }

    /// Signs `name` in with `password` over the API: the response's status, headers and
    /// body.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
    ) -> (StatusCode, hyper::HeaderMap, serde_json::Value) {
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        let resp = self.send_raw("POST", "/api/v1/session", &[], &body).await;
        let headers = resp.headers().clone();
        let (status, body) = json(resp).await;
        (status, headers, body)
    }

    /// A session of the user `name` (added with `role` and `scope` unless it exists).
    pub async fn session(&self, name: &str, role: Role, scope: &str) -> Session {
        self.add_user(name, role, scope);
        let (status, headers, body) = self.sign_in(name, &password_of(name)).await;
        assert_eq!(status, StatusCode::OK, "sign in {name}: {body}");
        Session::from_sign_in(&headers, &body)
    }

    /// Sends one request with exactly `headers` on a fresh connection and returns the
    /// response (body unread).
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response<Incoming> {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(self.addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        tokio::time::timeout(STEP, sender.send_request(req))
            .await
            .expect("response in time")
            .expect("response")
    }
}

/// The password the harness gives the user `name`.
pub fn password_of(name: &str) -> String {
    format!("the password of {name}")
}

/// A signed-in console session: its cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// `vigil_session=…`, as a `Cookie` header sends it.
    pub cookie: String,
    /// The CSRF token.
    pub csrf: String,
}

impl Session {
    /// The session a successful sign-in's headers and body hand out.
    pub fn from_sign_in(headers: &hyper::HeaderMap, body: &serde_json::Value) -> Session {
        let set = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a Set-Cookie");
        let cookie = set.split(';').next().expect("name=value").trim().to_owned();
        Session {
            cookie,
            csrf: body["csrf"].as_str().expect("csrf").to_owned(),
        }
    }

    /// The headers of a request in this session: the cookie and the CSRF token.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("cookie", self.cookie.as_str()),
            ("x-csrf-token", self.csrf.as_str()),
        ]
    }

    /// The cookie alone (no CSRF token).
    pub fn cookie_only(&self) -> Vec<(&str, &str)> {
        vec![("cookie", self.cookie.as_str())]
    }
}

async fn json(resp: Response<Incoming>) -> (StatusCode, serde_json::Value) {
    let status = resp.status();
    let bytes = tokio::time::timeout(STEP, resp.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

/// One SSE message: its event name, id and data.
#[derive(Debug, Default)]
pub struct Message {
    pub event: String,
    pub id: String,
    pub data: String,
}

/// Reads SSE text from a response body, message by message.
pub struct SseReader {
    body: Incoming,
    buffer: String,
}

impl SseReader {
    pub fn new(body: Incoming) -> Self {
        SseReader {
            body,
            buffer: String::new(),
        }
    }

    /// The next message that has an event name (keep-alive comments are skipped); `None`
    /// when the stream ends.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut m = Message::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        m.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        m.id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        m.data.push_str(v.trim_start());
                    }
                }
                if !m.event.is_empty() {
                    return Some(m);
                }
            }
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .expect("a message in time")?
                .expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
}

/// Builds a gateway's events with increasing stamps a little in the past.
pub struct Gateway {
    pub node: NodeId,
    pub site: SitePath,
    next_wall: u64,
}

impl Gateway {
    /// A gateway `id` at `site`.
    pub fn new(id: &str, site: &str) -> Self {
        let now = u64::try_from(Timestamp::now().as_millis()).expect("after 1970");
        Gateway {
            node: NodeId::new(id).expect("node"),
            site: SitePath::new(site).expect("site"),
            next_wall: now - 600_000,
        }
    }

    fn stamp(&mut self) -> Hlc {
        self.next_wall += 10;
        Hlc::new(self.next_wall, 0)
    }

    /// An event of this gateway on `alert`.
    pub fn event(&mut self, alert: AlertId, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: self.node.clone(),
            hlc: self.stamp(),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    /// A raise of `source` (`device/point`) with condition `kind`.
    pub fn raise(
        &mut self,
        alert: AlertId,
        source: &str,
        kind: &str,
        severity: Severity,
        latching: bool,
    ) -> AlertEvent {
        let key = AlertKey::new(
            self.node.clone(),
            source,
            vigil_core::ConditionKind::new(kind).expect("kind"),
        )
        .expect("key");
        let hlc = self.stamp();
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: self.node.clone(),
            hlc,
            actor: Actor::System,
            body: AlertEventBody::Raised {
                key,
                site: self.site.clone(),
                severity,
                message: format!("{source} {kind}"),
                value: Some(vigil_core::Value::Bool(true)),
                at: hlc.timestamp(),
                latching,
                zone: Some("north-perimeter".into()),
                evidence: Vec::new(),
            },
            clamped_from: None,
        }
    }

    /// A clear.
    pub fn clear(&mut self, alert: AlertId) -> AlertEvent {
        let at = Timestamp::now();
        self.event(alert, AlertEventBody::Cleared { value: None, at })
    }
}

/// Checks Prometheus text exposition format line by line; returns the sample names. Runs
/// `promtool check metrics` on it as well when promtool is installed.
pub fn check_prometheus_text(text: &str) -> Vec<String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default();
            assert!(kind == "HELP" || kind == "TYPE", "comment {line:?}");
            assert!(name_ok(name), "metric name in {line:?}");
            if kind == "TYPE" {
                let t = parts.next().unwrap_or_default();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "type in {line:?}"
                );
                typed.insert(name.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value in {line:?}"
        );
        let name = series.split('{').next().unwrap_or_default();
        assert!(name_ok(name), "sample name in {line:?}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "labels in {line:?}"
                );
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample {name} without # TYPE");
        samples.push(name.to_owned());
    }
    promtool_check(text);
    samples
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool not installed: checked the format by hand only");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // promtool exits 1 for lint warnings too; only errors of format fail the test.
    assert!(
        out.status.success() || !report.contains("error"),
        "promtool check metrics: {report}"
    );
}

/// A whole test gives up after this.
pub const LIMIT: Duration = Duration::from_secs(90);

/// Every wait gives up after this.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Runs a test body, failing it after [`LIMIT`]; logs to the test output when `RUST_LOG`
/// is set.
pub async fn bounded(test: impl Future<Output = ()>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test took longer than its limit");
}

/// Polls `check` every 50 ms until it returns `Some`, or panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
