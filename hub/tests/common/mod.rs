//! The hub's end-to-end test harness: a real hub (`vigil_hub::run::run`, the same function
//! the binary calls) on a loopback port with its store in a temporary directory, a small
//! HTTP/1.1 client (hyper) and builders of the events a gateway would send.
//!
//! The hub runs its MQTT side too (an embedded broker on a free port, no child connected);
//! these tests play a child through the same [`LinkContext`] the MQTT side gets: they apply
//! a gateway's events to the store, notify the feed, and give the children registry a
//! health table of their own. `tests/link.rs` drives real links.

#![allow(dead_code)]

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
        if !seed.is_empty() {
            std::fs::create_dir_all(store_path.parent().expect("dir")).expect("mkdir");
            let mut store = vigil_store::Store::open(&store_path).expect("open store");
            store.apply_events(seed).expect("seed");
        }
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(config, shutdown.clone(), Some(tx)));
        let Started { http, broker, link } = tokio::time::timeout(STEP, rx)
            .await
            .expect("hub starts in time")
            .expect("hub started");
        Hub {
            addr: http,
            link,
            broker,
            store_path,
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

    /// The link side applies a child's events and notifies the feed.
    pub async fn ingest(&self, events: Vec<AlertEvent>) {
        let notify = events.clone();
        self.link
            .store
            .call(move |s| s.apply_events(&events))
            .await
            .expect("apply");
        self.link.feed.ingest_notify(&notify);
    }

    /// The events queued in `link`'s outbox lane (decoded).
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
            .map(
                |r| match serde_json::from_slice(&r.payload).expect("link event") {
                    vigil_wire::LinkEvent::Alert(e) => e,
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

    /// Sends one request on a fresh connection and returns the response (body unread).
    pub async fn send(
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
