//! The four-level command network under load (issue 11, item 7): three measurements on
//! loopback, every link mutual TLS with certificates from the real enrollment
//! (`POST /api/v1/enroll` with a token bound to the node's site, as `vigil-hub enroll-token
//! --site` issues it).
//!
//! The nodes run as in production (`vigil_hub::run::run`, `vigil_agent::run::run`: embedded
//! broker behind the mTLS gate, downlinks, ingest, live stream, HTTP), on their own durable
//! SQLite stores (WAL, `synchronous = FULL`); all in this process on one tokio runtime,
//! except the fan-in's ministry.
//!
//! - **latency** — facility → ministry over four hops: a `vigil-sim` door controller whose
//!   `reader_tamper` input (major: the critical lane) toggles about every `spacing`, a
//!   `vigil-agent` polling it every 100 ms enrolled with the county, and county → city →
//!   province → ministry hubs each enrolled with the next. For each raise and clear the
//!   latency runs from the event's own stamp (its HLC wall time: when the agent's detector
//!   saw the reading, so the poll interval is not counted) to its arrival on the ministry's
//!   `GET /api/v1/stream` (SSE over HTTP); the arrivals on the county's, city's and
//!   province's live streams (subscribed in-process) give the time per hop, and each hub's
//!   store, polled every 2 ms for the alert's last event, the time of each commit apart
//!   from the live stream (from the second transition: the alert's id is learnt from the
//!   first). Run twice: with
//!   no other traffic, and while 4 other gateways enrolled with the county send 2,000 minor
//!   events/s (the normal lane) up the same four hops — batching must never hold the
//!   critical lane. Goal: p99 under 100 ms.
//! - **drain** — a 100,000-event backlog at the county drained to the ministry after a
//!   partition heals: the county's uplink goes to the city through a TCP proxy; with the
//!   proxy cutting it (connections closed and refused), 8 simulated gateways enrolled with
//!   the county (each a `vigil-link` `Uplink` over its own store) drain 12,500 events each
//!   into the county, which commits them and queues them up (every event escalates:
//!   severities minor to critical). Then the proxy heals, and the clock runs until the
//!   ministry holds every one of the 100,000 events (its ingest counter, then each
//!   gateway's last events looked up in its store). Reported from the heal and from the
//!   county's reconnection (its uplink's backoff decides when it tries again). Goal: under
//!   10 s.
//! - **fanin** — 30 simulated province links into one ministry: each an `Uplink` (level
//!   province, mTLS with a certificate from the ministry's enrollment) with its own store,
//!   fed by a producer that appends 1,000 events/s to its outbox (every 100 ms a
//!   transaction of 100, 10 % in the critical lane, already encoded as they travel: a
//!   lighter sender than a province hub, which would also fold them into its own views) —
//!   30,000 events/s in all for 60 s. The ministry runs in its own process (this binary
//!   re-executed), so its CPU time is its own; the 30 links share this one. Reported: what
//!   the ministry committed per second (its `vigil_hub_events_ingested_total`, read every
//!   second), the largest backlog the links held (sampled every 20 ms), the time to drain
//!   after the producers stop, the CPU per event of each process, and the commit latency:
//!   from an event's append to its province's outbox to the ministry's acknowledgement of
//!   the batch that holds it (the ministry acks a batch once it is committed), p50/p99/max
//!   over every transaction.
//!
//! `cargo bench -p vigil-benches --bench command_tree` runs all three (about 6 minutes); a
//! filter argument (`latency`, `drain`, `fanin`) runs one. Environment:
//! `COMMAND_TREE_TRANSITIONS` and `COMMAND_TREE_LOAD` (latency, defaults 100 and 2000
//! events/s; 0: no loaded run), `COMMAND_TREE_BACKLOG` (drain, default
//! 100000), `COMMAND_TREE_LINKS`, `COMMAND_TREE_RATE` (events/s in all) and
//! `COMMAND_TREE_SECONDS` (fanin, defaults 30, 30000, 60). Under `cargo test` (no `--bench`)
//! each part does a short smoke run and prints no figures.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::Registry;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, HlcClock, Lane,
    Level, NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_link::{LinkMetrics, SharedStore, Uplink, UplinkConfig};
use vigil_store::Store;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let parts: Vec<&str> = s.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// This process's CPU time (user and system), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_owned();
            let fields: Vec<&str> = after.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line; 12 and 13 after `comm`.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // The kernel's USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `RUST_LOG=vigil_link=debug` (say) traces the nodes' links to stderr, with the time of
    // each line, to see where a critical event waits.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    // Re-executed as the fan-in's ministry (see [`HubProcess`]).
    if let Ok(config) = std::env::var(HUB_PROCESS_ENV) {
        hub_process_main(Path::new(&config));
    }
    let full = std::env::args().skip(1).any(|a| a == "--bench");
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |part: &str| filter.as_deref().is_none_or(|f| part.contains(f));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "command_tree: four-level network on loopback, mTLS, in one process; {cores} cores ({}), load average {} at start",
        cpu_model(),
        load_average()
    );
    println!("reproduce: cargo bench -p vigil-benches --bench command_tree [latency|drain|fanin]");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Ok(n) = std::env::var("COMMAND_TREE_WORKERS") {
        builder.worker_threads(n.parse().expect("COMMAND_TREE_WORKERS: a number"));
    }
    let runtime = builder.enable_all().build().expect("tokio runtime");
    if wanted("latency") {
        let n = if full {
            env_usize("COMMAND_TREE_TRANSITIONS", 100)
        } else {
            4
        };
        runtime.block_on(latency_part(n, full, 0));
        if full {
            let load = env_usize("COMMAND_TREE_LOAD", 2_000);
            if load > 0 {
                runtime.block_on(latency_part(n, full, load));
            }
        }
    }
    if wanted("drain") {
        let backlog = if full {
            env_usize("COMMAND_TREE_BACKLOG", 100_000)
        } else {
            4_000
        };
        runtime.block_on(drain_part(backlog, full));
    }
    if wanted("fanin") {
        let (links, rate, secs) = if full {
            (
                env_usize("COMMAND_TREE_LINKS", 30),
                env_usize("COMMAND_TREE_RATE", 30_000),
                env_usize("COMMAND_TREE_SECONDS", 60),
            )
        } else {
            (3, 600, 2)
        };
        runtime.block_on(fanin_part(links, rate, secs, full));
    }
    println!("load average at the end {}", load_average());
}

// ── Hubs and enrollment ─────────────────────────────────────────────────────────────────

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn millis_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A hub running in this process.
struct RunningHub {
    cfg: PathBuf,
    started: vigil_hub::run::Started,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningHub {
    fn http_url(&self) -> String {
        format!("http://{}", self.started.http)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Writes `{dir}/{id}/hub.toml`: the hub's site, its broker on `broker` (children told
/// `advertise` instead, when set: a proxy), a `[parent]` placeholder that enrollment
/// replaces (not at the ministry).
fn hub_toml(dir: &Path, id: &str, level: &str, site: &str, advertise: Option<u16>) -> PathBuf {
    let dir = dir.join(id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let broker = free_port();
    let advertise = format!(
        "advertise = \"mqtts://127.0.0.1:{}\"\n",
        advertise.unwrap_or(broker)
    );
    let parent = if level == "ministry" {
        String::new()
    } else {
        "\n[parent]\nurl = \"mqtt://127.0.0.1:1\"\n".to_owned()
    };
    let text = format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} bench hub\"\nsite = \"{site}\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[mqtt]\nlisten = \"127.0.0.1:{broker}\"\n{advertise}{parent}\n[store]\npath = \"hub.db\"\n",
        http = free_port(),
    );
    let path = dir.join("hub.toml");
    std::fs::write(&path, text).expect("write hub.toml");
    path
}

/// The embedded broker's port in a config written by [`hub_toml`].
fn broker_port(cfg: &Path) -> u16 {
    let text = std::fs::read_to_string(cfg).expect("hub.toml");
    let at = text
        .find("[mqtt]\nlisten = \"127.0.0.1:")
        .expect("[mqtt] listen")
        + 27;
    text[at..]
        .split('"')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

async fn start_hub(cfg: &Path) -> RunningHub {
    let config = vigil_hub::config::HubConfig::load(cfg).expect("valid hub.toml");
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = vigil_hub::run::run(config, shutdown.clone(), Some(tx));
    let task = tokio::spawn(async move {
        if let Err(e) = run.await {
            eprintln!("hub failed: {e:#}");
        }
    });
    let started = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("the hub started in time")
        .expect("the hub started");
    RunningHub {
        cfg: cfg.to_owned(),
        started,
        shutdown,
        task,
    }
}

/// A one-time token for `node`, a node of `kind`, bound to `site` from the hub `parent`,
/// issued as `vigil-hub enroll-token --node NODE --site SITE --kind KIND` issues it (its
/// store and CA, while it runs).
async fn token(parent: &Path, node: &str, site: &str, kind: vigil_store::NodeKind) -> String {
    let (parent, node, site) = (parent.to_owned(), node.to_owned(), site.to_owned());
    tokio::task::spawn_blocking(move || {
        let cfg = vigil_hub::config::HubConfig::load(&parent).expect("valid hub.toml");
        let mut store = vigil_hub::enroll::command::open_store(&cfg).expect("the hub's store");
        let pki = vigil_hub::pki::HubPki::open(&cfg).expect("the hub's CA");
        vigil_hub::enroll::token::issue(
            &mut store,
            &pki,
            &cfg,
            &NodeId::new(node).expect("node"),
            &SitePath::new(site).expect("site"),
            kind,
            Duration::from_secs(600),
            "cli:bench",
        )
        .expect("a token")
        .token
        .to_string()
    })
    .await
    .expect("token task")
}

/// `vigil-hub enroll` of the hub `child` with `parent` (its library entry point), bound to
/// the child's own `[node] site`.
async fn enroll_hub(parent: &RunningHub, child: &Path) {
    let cfg = vigil_hub::config::HubConfig::load(child).expect("valid hub.toml");
    let site = cfg.node.site.clone().expect("[node] site").to_string();
    let token = token(
        &parent.cfg,
        cfg.node.id.as_str(),
        &site,
        vigil_store::NodeKind::Hub,
    )
    .await;
    vigil_hub::enroll::parent::enroll_with_parent(&cfg, child, &parent.http_url(), &token)
        .await
        .unwrap_or_else(|e| panic!("vigil-hub enroll {}: {e}", cfg.node.id));
}

/// Enrolls a simulated node `node` bound to `site` with `parent`, writing its key and
/// certificates into `dir` (as `vigil-agent enroll` does, through `POST /api/v1/enroll`);
/// its mTLS client config.
async fn enroll_link(
    (parent_cfg, parent_http): (&Path, String),
    dir: &Path,
    node: &str,
    site: &str,
) -> vigil_pki::TlsFiles {
    std::fs::create_dir_all(dir).expect("mkdir");
    let config = dir.join("node.toml");
    std::fs::write(&config, "[uplink]\nurl = \"mqtt://127.0.0.1:1\"\n").expect("node.toml");
    let files = vigil_pki::TlsFiles::in_dir(&dir.join("tls"));
    let enrollment = vigil_pki::NodeEnrollment {
        hub: parent_http,
        token: token(parent_cfg, node, site, vigil_store::NodeKind::Gateway)
            .await
            .parse()
            .expect("a token"),
        node: NodeId::new(node).expect("node"),
        config,
        table: "uplink",
        files: files.clone(),
        timeout: Duration::from_secs(30),
        force: false,
        kind: vigil_pki::EnrollKind::Gateway,
        site: None,
    };
    vigil_pki::enroll_node(&enrollment, &mut std::io::sink())
        .await
        .unwrap_or_else(|e| panic!("enroll {node}: {e}"));
    files
}

/// ministry ← province ← city ← county, each enrolled with the one above. With
/// `county_proxy`, the county reaches the city's broker through a [`Proxy`] (returned).
struct Tree {
    ministry: RunningHub,
    province: RunningHub,
    city: RunningHub,
    county: RunningHub,
    proxy: Option<Proxy>,
}

impl Tree {
    async fn start(dir: &Path, county_proxy: bool) -> Tree {
        let m = hub_toml(dir, "ministry", "ministry", "ministry", None);
        let ministry = start_hub(&m).await;
        let p = hub_toml(dir, "prov-gd", "province", "ministry/gd", None);
        enroll_hub(&ministry, &p).await;
        let province = start_hub(&p).await;
        // The proxy listens before the city starts, to the port the city will listen on.
        let proxy_port = free_port();
        let c = hub_toml(
            dir,
            "city-gz",
            "city",
            "ministry/gd/gz",
            county_proxy.then_some(proxy_port),
        );
        let proxy = county_proxy.then(|| {
            Proxy::start(
                proxy_port,
                SocketAddr::from(([127, 0, 0, 1], broker_port(&c))),
            )
        });
        enroll_hub(&province, &c).await;
        let city = start_hub(&c).await;
        let k = hub_toml(dir, "county-by", "county", "ministry/gd/gz/by", None);
        enroll_hub(&city, &k).await;
        let county = start_hub(&k).await;
        Tree {
            ministry,
            province,
            city,
            county,
            proxy,
        }
    }

    async fn stop(self) {
        for hub in [self.county, self.city, self.province, self.ministry] {
            hub.stop().await;
        }
    }
}

// ── A hub in its own process ────────────────────────────────────────────────────────────

/// The environment variable that makes this binary run the hub of the config it names.
const HUB_PROCESS_ENV: &str = "COMMAND_TREE_HUB";

/// This binary re-executed as a hub: runs `vigil_hub::run::run` until SIGTERM, then exits.
fn hub_process_main(config: &Path) -> ! {
    let config = vigil_hub::config::HubConfig::load(config).expect("valid hub.toml");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
            }
            stop.cancel();
        });
        match vigil_hub::run::run(config, shutdown, None).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("hub failed: {e:#}");
                1
            }
        }
    });
    std::process::exit(code)
}

/// A hub running in a child process (this binary, [`HUB_PROCESS_ENV`]): its CPU time is
/// its own. Killed when dropped.
struct HubProcess {
    child: std::process::Child,
    /// Its HTTP address, `127.0.0.1:PORT`.
    http: String,
}

impl HubProcess {
    fn spawn(cfg: &Path, log: &Path) -> HubProcess {
        let text = std::fs::read_to_string(cfg).expect("hub.toml");
        let at = text.find("[http]\nlisten = \"").expect("[http] listen") + 17;
        let http = text[at..].split('"').next().expect("an address").to_owned();
        let child = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .env(HUB_PROCESS_ENV, cfg)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("the hub's process");
        HubProcess { child, http }
    }

    /// One `GET` (HTTP/1.0: the body ends with the connection); the body of a 200.
    async fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(&self.http).await.ok()?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.http).as_bytes())
            .await
            .ok()?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.get("/healthz").await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the ministry's process did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `vigil_hub_events_ingested_total`, all labels.
    async fn ingested(&self) -> f64 {
        let body = self.get("/metrics").await.unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with("vigil_hub_events_ingested_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Its CPU time (user and system) so far.
    fn cpu(&self) -> Duration {
        let ticks = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|s| {
                let after = s.rsplit_once(')')?.1.to_owned();
                let fields: Vec<&str> = after.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }

    /// SIGTERM, and up to 15 s for it to exit.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ── A TCP proxy that cuts a link ────────────────────────────────────────────────────────

/// A TCP proxy on `port` to `target`; [`Proxy::cut`] closes its connections and refuses new
/// ones until [`Proxy::heal`].
struct Proxy {
    open: watch::Sender<bool>,
}

impl Proxy {
    fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("proxy port");
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
        let (open, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if !*rx.borrow() {
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = rx.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Proxy { open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn heal(&self) {
        self.open.send_replace(true);
    }
}

// ── Percentiles ─────────────────────────────────────────────────────────────────────────

/// The nearest-rank percentile `p` (0–100) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "p50 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms   (n = {})",
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
        sorted.len()
    )
}

fn counter_sum(counter: &prometheus::IntCounterVec) -> f64 {
    use prometheus::core::Collector;
    counter
        .collect()
        .iter()
        .flat_map(|f| f.get_metric().iter())
        .map(|m| m.get_counter().get_value())
        .sum()
}

// ── (a) latency ─────────────────────────────────────────────────────────────────────────

const DEVICE: &str = "doors-block-a";
const POINT: &str = "reader_tamper";
const GATEWAY: &str = "gw-prison-1";
const FACILITY: &str = "ministry/gd/gz/by/prison-1";
/// The first transition, after the simulator starts: time for the agent to start, enroll
/// and connect its uplink (a transition before that would time the connection).
const FIRST_STEP: Duration = Duration::from_secs(7);

fn sim_toml(n: usize, spacing: Duration) -> String {
    let mut at = FIRST_STEP;
    let steps: Vec<String> = (0..n)
        .map(|k| {
            let s = format!(
                "{{ at = \"{}ms\", value = {} }}",
                at.as_millis(),
                k % 2 == 0
            );
            at += spacing + Duration::from_millis((k as u64 * 37) % 100);
            s
        })
        .collect();
    let mut text = format!(
        "seed = 1\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[[device]]\nid = \"{DEVICE}\"\nprofile = \"door-access-controller\"\nlisten = \"127.0.0.1:0\"\n[device.points.{POINT}]\nkind = \"schedule\"\ninitial = false\nsteps = [{}]\n",
        steps.join(", "),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    for door in 1..=4 {
        text += &format!("[device.points.door{door}_locked]\nkind = \"constant\"\nvalue = true\n");
    }
    text
}

fn agent_toml(dir: &Path, broker: u16, device: &str) -> PathBuf {
    let dir = dir.join(GATEWAY);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text = format!(
        "[node]\nid = \"{GATEWAY}\"\nsite = \"{FACILITY}\"\n\n[uplink]\nurl = \"mqtt://127.0.0.1:{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[[modbus.device]]\nid = \"{DEVICE}\"\nprofile = \"door-access-controller\"\ntransport = \"tcp\"\naddress = \"{device}\"\npoll = \"100ms\"\nzone = \"block-a\"\n",
        root = env!("CARGO_MANIFEST_DIR"),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent.toml");
    path
}

/// One SSE message (or live-stream update): when it arrived (ms since the epoch), its event.
struct Arrival {
    at_ms: f64,
    event: serde_json::Value,
}

/// Reads `GET /api/v1/stream` from `addr` and sends each message's event as it arrives.
async fn read_sse(addr: SocketAddr, token: String, tx: mpsc::UnboundedSender<Arrival>) {
    let stream = TcpStream::connect(addr).await.expect("connect to the hub");
    stream.set_nodelay(true).expect("nodelay");
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(
            format!(
                "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("send the request");
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let bytes = if chunked {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            else {
                return;
            };
            if size == 0 {
                return;
            }
            let mut chunk = vec![0u8; size + 2];
            if stream.read_exact(&mut chunk).await.is_err() {
                return;
            }
            chunk.truncate(size);
            chunk
        } else {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf[..n].to_vec(),
            }
        };
        let at_ms = millis_now();
        text.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|v| v.strip_prefix(' ').unwrap_or(v))
                .collect();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&data.join("\n")) {
                if tx
                    .send(Arrival {
                        at_ms,
                        event: v["event"].clone(),
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Sends each update of a hub's live stream (in-process) as it arrives.
fn follow_live(
    hub: &RunningHub,
    tx: mpsc::UnboundedSender<Arrival>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = hub.started.link.live.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(vigil_hub::live::LiveMessage::Alert(update)) => {
                    let at_ms = millis_now();
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&update.data) {
                        if tx
                            .send(Arrival {
                                at_ms,
                                event: v["event"].clone(),
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    })
}

/// Background traffic on the normal lane: `gateways` simulated gateways enrolled with
/// `county`, each appending its share of `rate` minor events per second (every 100 ms a
/// transaction) to its outbox until `shutdown`; every event escalates to the ministry.
async fn normal_lane_load(
    county: &RunningHub,
    dir: &Path,
    gateways: usize,
    rate: usize,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let broker = format!("mqtts://127.0.0.1:{}", broker_port(&county.cfg));
    let per_tick = (rate / gateways / 10).max(1);
    let mut tasks = Vec::new();
    for g in 0..gateways {
        let node = NodeId::new(format!("gw-load-{g}")).expect("node");
        let site = SitePath::new(format!("ministry/gd/gz/by/prison-load-{g}")).expect("site");
        let link_dir = dir.join(node.as_str());
        let tls = enroll_link(
            (&county.cfg, county.http_url()),
            &link_dir,
            node.as_str(),
            site.as_str(),
        )
        .await;
        let store = SharedStore::new(Store::open(link_dir.join("gw.db")).expect("store"));
        let link = uplink(&node, None, &broker, &tls, store.clone());
        let poke = link.poke_handle();
        let run = link.run(shutdown.clone());
        tasks.push(tokio::spawn(async move {
            let _ = run.await;
        }));
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let alerts: Vec<AlertId> = (0..1000).map(|_| AlertId::generate()).collect();
            let mut clock = HlcClock::default();
            let mut ticker = tokio::time::interval(Duration::from_millis(100));
            let mut i = 0;
            while !stop.is_cancelled() {
                ticker.tick().await;
                // Minor alerts only (child_events makes alerts 3–9 of every 10 minor).
                let mut events = Vec::new();
                while events.len() < per_tick {
                    let more = child_events(&node, &site, &alerts, i, per_tick, &mut clock);
                    i += per_tick;
                    events.extend(more.into_iter().filter(|(lane, _)| *lane == Lane::Normal));
                }
                events.truncate(per_tick);
                if store
                    .call(move |s| s.record_events("parent", &events))
                    .await
                    .is_err()
                {
                    return;
                }
                poke.poke();
            }
        }));
    }
    tasks
}

async fn latency_part(n: usize, full: bool, load: usize) {
    let spacing = Duration::from_millis(if full { 1000 } else { 700 });
    println!(
        "\n(a) latency: {POINT} toggled {n} times ({} ms + 0–99 ms apart), gateway (Modbus poll 100 ms) → county → city → province → ministry SSE; from the event's HLC stamp (the detector's reading time); {}",
        spacing.as_millis(),
        if load == 0 {
            "no other traffic".to_owned()
        } else {
            format!("meanwhile 4 other gateways send {load} minor events/s (normal lane) up the same links")
        }
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::start(dir.path(), false).await;
    let load_stop = CancellationToken::new();
    let load_tasks = if load > 0 {
        normal_lane_load(&tree.county, dir.path(), 4, load, &load_stop).await
    } else {
        Vec::new()
    };
    let viewer = {
        let cfg = vigil_hub::config::HubConfig::load(&tree.ministry.cfg).expect("config");
        vigil_hub::auth::admin::Admin::open_or_create(&cfg, "cli:bench".to_owned())
            .expect("the ministry's store")
            .add_token(
                "bench",
                vigil_hub::auth::Role::Viewer,
                &SitePath::new("ministry").expect("site"),
                None,
            )
            .expect("a token")
    };
    // Arrivals: 0 county, 1 city, 2 province (live streams), 3 ministry (SSE over HTTP).
    let mut receivers = Vec::new();
    let mut tasks = Vec::new();
    for hub in [&tree.county, &tree.city, &tree.province] {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.push(follow_live(hub, tx));
        receivers.push(rx);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tasks.push(tokio::spawn(read_sse(
        tree.ministry.started.http,
        viewer,
        tx,
    )));
    receivers.push(rx);

    let facility = vigil_sim::Facility::parse(Path::new("sim.toml"), &sim_toml(n, spacing))
        .expect("valid sim.toml");
    let sim = vigil_sim::Simulator::start(facility)
        .await
        .expect("the simulator started");
    let agent_cfg = agent_toml(
        dir.path(),
        broker_port(&tree.county.cfg),
        &sim.addr(DEVICE).expect("a TCP device").to_string(),
    );
    let args = vigil_agent::enroll::EnrollArgs {
        hub: tree.county.http_url(),
        token: token(
            &tree.county.cfg,
            GATEWAY,
            FACILITY,
            vigil_store::NodeKind::Gateway,
        )
        .await,
        config: agent_cfg.clone(),
        timeout: Duration::from_secs(30),
        force: false,
    };
    vigil_agent::enroll::enroll(&args, &mut std::io::sink())
        .await
        .expect("vigil-agent enroll");
    let (config, profiles) =
        vigil_agent::check_cmd::load_checked(&agent_cfg).expect("valid agent.toml");
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(vigil_agent::run::run(
        config,
        profiles,
        shutdown.clone(),
        None,
    ));

    // Every transition's event at the ministry, by event id; then the hops.
    let deadline = Instant::now()
        + FIRST_STEP
        + (spacing + Duration::from_millis(100)) * n as u32
        + Duration::from_secs(10);
    let mut stamps: std::collections::HashMap<String, f64> = Default::default();
    let mut arrivals: Vec<std::collections::HashMap<String, f64>> = vec![Default::default(); 4];
    let transition =
        |e: &serde_json::Value| matches!(e["body"]["type"].as_str(), Some("raised" | "cleared"));
    // The commits, apart from the live streams: once the alert's id is known (its first
    // raise on a stream), each hub's store is polled every 2 ms for the alert's last event
    // (every transition is an event of the same alert: nobody acknowledges it).
    let (alert_tx, alert_rx) = watch::channel(None::<AlertId>);
    let commits: Arc<Mutex<Vec<std::collections::HashMap<String, f64>>>> =
        Arc::new(Mutex::new(vec![Default::default(); 4]));
    let poller = {
        let stores: Vec<SharedStore> = [&tree.county, &tree.city, &tree.province, &tree.ministry]
            .iter()
            .map(|h| h.started.link.store.clone())
            .collect();
        let commits = commits.clone();
        tokio::spawn(async move {
            loop {
                let id = *alert_rx.borrow();
                if let Some(id) = id {
                    for (hop, store) in stores.iter().enumerate() {
                        let last = store
                            .call(move |s| Ok(s.alert(id)?.and_then(|v| v.last)))
                            .await
                            .ok()
                            .flatten();
                        if let Some((_, event)) = last {
                            let at_ms = millis_now();
                            commits.lock().expect("commits")[hop]
                                .entry(event.to_string())
                                .or_insert(at_ms);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let (cpu_start, wall_start) = (process_cpu(), Instant::now());
    while arrivals[3].len() < n && Instant::now() < deadline {
        for (hop, rx) in receivers.iter_mut().enumerate() {
            while let Ok(a) = rx.try_recv() {
                let e = &a.event;
                let Some(id) = e["id"].as_str() else { continue };
                if !transition(e) {
                    continue;
                }
                if e["origin"] != GATEWAY {
                    continue;
                }
                if let Some(wall) = e["hlc"]["wall"].as_f64() {
                    stamps.insert(id.to_owned(), wall);
                }
                if alert_tx.borrow().is_none() {
                    if let Some(alert) = e["alert"].as_str().and_then(|a| a.parse().ok()) {
                        alert_tx.send_replace(Some(alert));
                    }
                }
                arrivals[hop].entry(id.to_owned()).or_insert(a.at_ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cores_used = (process_cpu() - cpu_start).as_secs_f64() / wall_start.elapsed().as_secs_f64();
    poller.abort();
    shutdown.cancel();
    let _ = agent.await;
    load_stop.cancel();
    for t in load_tasks {
        let _ = t.await;
    }
    for t in tasks {
        t.abort();
    }
    sim.stop().await;
    tree.stop().await;

    let seen = arrivals[3].len();
    assert!(seen > 0, "no transition reached the ministry's stream");
    let hop_names = ["county", "city", "province", "ministry"];
    let mut per_hop: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut committed: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let commits = commits.lock().expect("commits").clone();
    // The first transition's commits were seen only once its id was known: left out.
    let first = stamps
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(id, _)| id.clone());
    for (id, wall) in &stamps {
        for hop in 0..4 {
            if let Some(at) = arrivals[hop].get(id) {
                per_hop[hop].push(at - wall);
            }
            if let Some(at) = commits[hop].get(id).filter(|_| Some(id) != first.as_ref()) {
                committed[hop].push(at - wall);
            }
        }
    }
    if !full {
        println!("  smoke: {seen}/{n} transitions reached the ministry; not a measurement");
        return;
    }
    println!(
        "  transitions at the ministry: {seen}/{n}; this process used {cores_used:.2} cores meanwhile (load average {})",
        load_average()
    );
    for (hop, values) in committed.iter().enumerate() {
        println!(
            "  stamp → committed at the {:<8} {} (store polled every 2 ms)",
            hop_names[hop],
            summary(values)
        );
    }
    for (hop, values) in per_hop.iter().enumerate() {
        let how = if hop == 3 {
            "SSE (HTTP)"
        } else {
            "live stream"
        };
        println!(
            "  stamp → {:<8} {how:<11}    {}",
            hop_names[hop],
            summary(values)
        );
    }
}

// ── Simulated children: events and uplinks ──────────────────────────────────────────────

/// `n` new events of `origin` at `site` over `alerts` alerts: rounds of raises, value
/// updates and clears, severities minor to critical (10 % critical, 20 % major, the rest
/// minor: everything escalates), each in its severity's lane, stamped from `wall`.
fn child_events(
    origin: &NodeId,
    site: &SitePath,
    alerts: &[AlertId],
    from: usize,
    n: usize,
    clock: &mut HlcClock,
) -> Vec<(Lane, AlertEvent)> {
    let wall = millis_now() as u64;
    (from..from + n)
        .map(|i| {
            let a = i % alerts.len();
            let severity = match a % 10 {
                0 => Severity::Critical,
                1 | 2 => Severity::Major,
                _ => Severity::Minor,
            };
            let at = Timestamp::from_millis(wall as i64);
            let body = match (i / alerts.len()) % 3 {
                0 => AlertEventBody::Raised {
                    key: AlertKey::new(
                        origin.clone(),
                        format!("fence-north/zone{a}_alarm"),
                        ConditionKind::new("limit_h").expect("kind"),
                    )
                    .expect("key"),
                    site: site.clone(),
                    severity,
                    message: format!("Fence zone {a} vibration above limit"),
                    value: Some(Value::Float(31.5)),
                    at,
                    latching: false,
                    zone: Some("north-perimeter".into()),
                    evidence: Vec::new(),
                },
                1 => AlertEventBody::ValueUpdated {
                    value: Some(Value::Float(33.0)),
                    severity: None,
                    message: None,
                    at,
                },
                _ => AlertEventBody::Cleared {
                    value: Some(Value::Float(12.0)),
                    at,
                },
            };
            let event = AlertEvent {
                id: EventId::generate(),
                alert: alerts[a],
                origin: origin.clone(),
                hlc: clock.now(wall),
                actor: Actor::System,
                body,
                clamped_from: None,
            };
            (severity.lane(), event)
        })
        .collect()
}

async fn outbox_backlog(store: &SharedStore) -> u64 {
    store
        .call(|s| {
            Ok(s.outbox_lane_state("parent", Lane::Critical)?
                .backlog_records
                + s.outbox_lane_state("parent", Lane::Normal)?.backlog_records)
        })
        .await
        .expect("backlog")
}

fn uplink(
    node: &NodeId,
    level: Option<Level>,
    broker: &str,
    tls: &vigil_pki::TlsFiles,
    store: SharedStore,
) -> Uplink {
    uplink_counted(
        node,
        level,
        broker,
        tls,
        store,
        LinkMetrics::new(&Registry::new()).expect("metrics"),
    )
}

/// [`uplink`] counting into `metrics` (shared by the fan-in's links).
fn uplink_counted(
    node: &NodeId,
    level: Option<Level>,
    broker: &str,
    tls: &vigil_pki::TlsFiles,
    store: SharedStore,
    metrics: LinkMetrics,
) -> Uplink {
    let mut config = UplinkConfig::new(node.clone(), broker.to_owned());
    config.level = level;
    config.tls = Some(tls.client_config().expect("the node's TLS config"));
    Uplink::new(config, store, metrics).expect("uplink")
}

/// The sum of a counter over all its labels in `registry` (0 when absent).
fn registry_sum(registry: &Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value())
        .sum()
}

// ── (b) drain ───────────────────────────────────────────────────────────────────────────

async fn drain_part(backlog: usize, full: bool) {
    let gateways = 8;
    let per_gateway = backlog / gateways;
    let backlog = per_gateway * gateways;
    println!(
        "\n(b) drain: {backlog} events queued at the county ({gateways} gateways × {per_gateway}) while its link to the city is cut, then healed; county → city → province → ministry"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = Tree::start(dir.path(), true).await;
    let proxy = tree.proxy.as_ref().expect("the county's proxy");
    let county_broker = format!("mqtts://127.0.0.1:{}", broker_port(&tree.county.cfg));
    // Let the links come up, then cut the county off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut();

    // The gateways, enrolled with the county, their backlogs recorded; each drains into
    // the county as soon as it is enrolled.
    let fill_start = Instant::now();
    let shutdown = CancellationToken::new();
    let mut last_events = Vec::new();
    let mut tasks = Vec::new();
    for g in 0..gateways {
        let node = NodeId::new(format!("gw-{g}")).expect("node");
        let site = SitePath::new(format!("ministry/gd/gz/by/prison-{g}")).expect("site");
        let tls = enroll_link(
            (&tree.county.cfg, tree.county.http_url()),
            &dir.path().join(node.as_str()),
            node.as_str(),
            site.as_str(),
        )
        .await;
        let store = SharedStore::new(
            Store::open(dir.path().join(node.as_str()).join("gw.db")).expect("store"),
        );
        let alerts: Vec<AlertId> = (0..1000).map(|_| AlertId::generate()).collect();
        let mut clock = HlcClock::default();
        let events = child_events(&node, &site, &alerts, 0, per_gateway, &mut clock);
        for lane in Lane::ALL {
            if let Some((_, e)) = events.iter().rev().find(|(l, _)| *l == lane) {
                last_events.push(e.id);
            }
        }
        store
            .call(move |s| s.record_events("parent", &events))
            .await
            .expect("queue the backlog");
        tasks.push(tokio::spawn(
            uplink(&node, None, &county_broker, &tls, store).run(shutdown.clone()),
        ));
    }
    let county_store = tree.county.started.link.store.clone();
    let deadline = fill_start + Duration::from_secs(300);
    while outbox_backlog(&county_store).await < backlog as u64 {
        assert!(
            Instant::now() < deadline,
            "the county's backlog never filled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let filled = fill_start.elapsed();

    // Heal, and time the drain to the ministry.
    let ingested = tree.ministry.started.link.metrics.events_ingested.clone();
    let city_ingested = tree.city.started.link.metrics.events_ingested.clone();
    let city_before = counter_sum(&city_ingested);
    let before = counter_sum(&ingested);
    let ministry_store = tree.ministry.started.link.store.clone();
    let healed = Instant::now();
    proxy.heal();
    let mut reconnected = None;
    let mut first_at_ministry = None;
    loop {
        assert!(Instant::now() < deadline, "the drain stalled");
        if reconnected.is_none() && counter_sum(&city_ingested) > city_before {
            reconnected = Some(healed.elapsed());
        }
        let n = counter_sum(&ingested) - before;
        if first_at_ministry.is_none() && n > 0.0 {
            first_at_ministry = Some(healed.elapsed());
        }
        if n >= backlog as f64 {
            let ids = last_events.clone();
            let all = ministry_store
                .call(move |s| {
                    for id in &ids {
                        if s.event(*id)?.is_none() {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
                .await
                .expect("look up");
            if all {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = healed.elapsed();
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    tree.stop().await;
    let reconnected = reconnected.unwrap_or(done);
    let first = first_at_ministry.unwrap_or(done);
    if !full {
        println!(
            "  smoke: {backlog} events drained in {:.2} s; not a measurement",
            done.as_secs_f64()
        );
        return;
    }
    println!(
        "  gateways enrolled and their backlogs queued up at the county in {:.2} s; after the heal: county reconnected (first event at the city) {:.2} s, first at the ministry {:.2} s, all {backlog} at the ministry {:.2} s",
        filled.as_secs_f64(),
        reconnected.as_secs_f64(),
        first.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "  drain from the reconnection: {:.2} s ({:.0} events/s through three hops)",
        (done - reconnected).as_secs_f64(),
        backlog as f64 / (done - reconnected).as_secs_f64()
    );
}

// ── (c) fan-in ──────────────────────────────────────────────────────────────────────────

/// How often the fan-in's monitor reads every link's outbox cursors.
const SAMPLE: Duration = Duration::from_millis(20);

/// One province link's recorded transactions not yet acknowledged: (lane, last seq, when).
type Pending = Arc<Mutex<VecDeque<(Lane, u64, Instant)>>>;

async fn fanin_part(links: usize, rate: usize, secs: usize, full: bool) {
    let per_link = rate / links;
    let tick = Duration::from_millis(100);
    let per_tick = (per_link / 10).max(1);
    println!(
        "\n(c) fan-in: {links} province links × {} events/s ({per_tick} per 100 ms transaction) = {} events/s into one ministry, for {secs} s",
        per_tick * 10,
        per_tick * 10 * links
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let m = hub_toml(dir.path(), "ministry", "ministry", "ministry", None);
    let ministry = HubProcess::spawn(&m, &dir.path().join("ministry.log"));
    ministry.wait_healthy().await;
    let broker = format!("mqtts://127.0.0.1:{}", broker_port(&m));
    let shutdown = CancellationToken::new();
    let stop_producing = CancellationToken::new();
    // Producers start together, once every link is up.
    let go = CancellationToken::new();
    let mut stores = Vec::new();
    let mut pendings: Vec<Pending> = Vec::new();
    let mut tasks = Vec::new();
    let mut producers = Vec::new();
    let recorded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let links_registry = Registry::new();
    let links_metrics = LinkMetrics::new(&links_registry).expect("metrics");
    for p in 0..links {
        let node = NodeId::new(format!("prov-{p:02}")).expect("node");
        let site = SitePath::new(format!("ministry/p{p:02}")).expect("site");
        let link_dir = dir.path().join(node.as_str());
        let tls = enroll_link(
            (&m, format!("http://{}", ministry.http)),
            &link_dir,
            node.as_str(),
            site.as_str(),
        )
        .await;
        let store = SharedStore::new(Store::open(link_dir.join("prov.db")).expect("store"));
        let link = uplink_counted(
            &node,
            Some(Level::Province),
            &broker,
            &tls,
            store.clone(),
            links_metrics.clone(),
        );
        // As a hub pokes its uplink when it queues events up: sent at once, not at the next
        // outbox poll.
        let poke = link.poke_handle();
        tasks.push(tokio::spawn(link.run(shutdown.clone())));
        let pending: Pending = Arc::default();
        // The producer: a transaction of `per_tick` events every 100 ms.
        let (store2, pending2, stop, recorded) = (
            store.clone(),
            pending.clone(),
            stop_producing.clone(),
            recorded.clone(),
        );
        let event_site = SitePath::new(format!("ministry/p{p:02}/c/k/prison-1")).expect("site");
        let go = go.clone();
        producers.push(tokio::spawn(async move {
            let alerts: Vec<AlertId> = (0..1000).map(|_| AlertId::generate()).collect();
            go.cancelled().await;
            let mut clock = HlcClock::default();
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0;
            while !stop.is_cancelled() {
                ticker.tick().await;
                let events = child_events(&node, &event_site, &alerts, i, per_tick, &mut clock);
                i += per_tick;
                let lanes: Vec<Lane> = events.iter().map(|(l, _)| *l).collect();
                // A lighter sender than a province hub: the events go on the outbox as they
                // travel (what a province queues up in the transaction that commits its
                // children's batches), without folding them into this store's views.
                let items: Vec<(Lane, Vec<u8>)> = events
                    .into_iter()
                    .map(|(lane, e)| {
                        let payload = serde_json::to_vec(&vigil_wire::LinkEvent::Alert(e))
                            .expect("a link event");
                        (lane, payload)
                    })
                    .collect();
                let when = Instant::now();
                let seqs = store2
                    .call(move |s| s.outbox_append_many("parent", items))
                    .await
                    .expect("record");
                poke.poke();
                let mut q = pending2.lock().expect("pending");
                for lane in Lane::ALL {
                    if let Some(seq) = lanes
                        .iter()
                        .zip(&seqs)
                        .filter(|(l, _)| **l == lane)
                        .map(|(_, s)| *s)
                        .max()
                    {
                        q.push_back((lane, seq, when));
                    }
                }
                recorded.fetch_add(seqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }));
        stores.push(store);
        pendings.push(pending);
    }
    // Let the links connect before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ministry.ingested().await;
    let cpu = process_cpu();
    let ministry_cpu = ministry.cpu();
    let start = Instant::now();
    go.cancel();
    let mut latencies: Vec<f64> = Vec::new();
    let mut max_backlog = 0u64;
    let mut per_second: Vec<f64> = Vec::new();
    let mut last_second = (start, before);
    let run = Duration::from_secs(secs as u64);
    let mut stopped_at = None;
    let deadline = start + run + Duration::from_secs(120);
    loop {
        let now = Instant::now();
        if stopped_at.is_none() && now - start >= run {
            stop_producing.cancel();
            stopped_at = Some(now);
        }
        let mut backlog = 0;
        for (store, pending) in stores.iter().zip(&pendings) {
            let acked = store
                .call(|s| {
                    let c = s.outbox_lane_state("parent", Lane::Critical)?;
                    let n = s.outbox_lane_state("parent", Lane::Normal)?;
                    Ok((c, n))
                })
                .await
                .expect("lanes");
            backlog += acked.0.backlog_records + acked.1.backlog_records;
            let seen = Instant::now();
            let mut q = pending.lock().expect("pending");
            q.retain(|(lane, seq, when)| {
                let upto = match lane {
                    Lane::Critical => acked.0.acked_upto,
                    Lane::Normal => acked.1.acked_upto,
                };
                if *seq <= upto {
                    latencies.push((seen - *when).as_secs_f64() * 1000.0);
                    false
                } else {
                    true
                }
            });
        }
        max_backlog = max_backlog.max(backlog);
        if now - last_second.0 >= Duration::from_secs(1) {
            let n = ministry.ingested().await;
            per_second.push((n - last_second.1) / (now - last_second.0).as_secs_f64());
            last_second = (now, n);
        }
        if stopped_at.is_some()
            && backlog == 0
            && pendings
                .iter()
                .all(|p| p.lock().expect("pending").is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fan-in did not drain within 2 minutes"
        );
        tokio::time::sleep(SAMPLE).await;
    }
    let stopped_at = stopped_at.expect("stopped");
    let drained = stopped_at.elapsed();
    let cpu = process_cpu() - cpu;
    let ministry_cpu = ministry.cpu() - ministry_cpu;
    let total = ministry.ingested().await - before;
    let recorded = recorded.load(std::sync::atomic::Ordering::Relaxed);
    for p in producers {
        let _ = p.await;
    }
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    ministry.stop();
    if !full {
        println!("  smoke: {recorded} events recorded, {total} committed at the ministry; not a measurement");
        return;
    }
    let elapsed = (stopped_at - start).as_secs_f64();
    let mut rates = per_second.clone();
    rates.sort_by(f64::total_cmp);
    println!(
        "  recorded {recorded} events in {elapsed:.1} s ({:.0}/s); the ministry committed {total:.0} ({:.0}/s over the run and its drain), per second: min {:.0}, median {:.0}, max {:.0}",
        recorded as f64 / elapsed,
        total / (elapsed + drained.as_secs_f64()),
        rates.first().copied().unwrap_or(f64::NAN),
        percentile(&rates, 50.0),
        rates.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  largest backlog over the links {max_backlog} events; drained {:.2} s after the producers stopped; CPU per event: the ministry's process {:.1} µs, the links' process {:.1} µs",
        drained.as_secs_f64(),
        ministry_cpu.as_secs_f64() * 1e6 / total.max(1.0),
        cpu.as_secs_f64() * 1e6 / total.max(1.0)
    );
    println!(
        "  the links sent {:.0} events ({:.3} per recorded event: resends included) in {:.0} batches; rewinds: {:.0} (ack timeouts and reconnects)",
        registry_sum(&links_registry, "vigil_link_events_sent_total"),
        registry_sum(&links_registry, "vigil_link_events_sent_total") / (recorded.max(1) as f64),
        registry_sum(&links_registry, "vigil_link_batches_sent_total"),
        registry_sum(&links_registry, "vigil_link_resends_total"),
    );
    println!(
        "  commit latency (recorded → acked by the ministry, per transaction, 20 ms sampling) {}",
        summary(&latencies)
    );
}
