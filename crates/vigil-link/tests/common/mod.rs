//! Test rig for the link over real brokers on loopback: brokers (the embedded one, or a
//! Mosquitto process this rig starts and kills), a parent (`Downlinks`) and children
//! (`Uplink`) over SQLite stores in temporary directories, event builders, metric readers.

#![allow(dead_code)]

pub mod scenarios;

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child as Process, Command, Stdio};
use std::time::Duration;

use prometheus::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_core::{Actor, AlertEvent, AlertEventBody, AlertId, EventId, HlcClock, Lane, NodeId};
use vigil_link::{
    BackoffConfig, Delivery, Downlinks, DownlinksConfig, DownlinksHandle, EmbeddedBroker,
    LinkMetrics, OutboxPoke, SenderConfig, SharedStore, Uplink, UplinkConfig,
};
use vigil_store::Store;
use vigil_wire::NodeState;

/// Every wait in these tests gives up after this.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A whole scenario gives up after this.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// Runs a scenario, failing it if it takes longer than [`SCENARIO_LIMIT`].
pub async fn bounded(scenario: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .expect("the scenario took longer than its limit");
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node id known to be valid.
pub fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid node id")
}

/// `n` events of `origin`, ten per alert, all in `lane`, stamped after `clock`.
pub fn events(
    origin: &NodeId,
    n: usize,
    lane: Lane,
    clock: &mut HlcClock,
) -> Vec<(Lane, AlertEvent)> {
    let mut out = Vec::with_capacity(n);
    let mut alert = AlertId::generate();
    for i in 0..n {
        if i % 10 == 0 {
            alert = AlertId::generate();
        }
        out.push((
            lane,
            AlertEvent {
                id: EventId::generate(),
                alert,
                origin: origin.clone(),
                hlc: clock.now(1_795_000_000_000 + i as u64),
                actor: Actor::System,
                body: AlertEventBody::Commented {
                    text: format!("event {i} in lane {lane}"),
                },
                clamped_from: None,
            },
        ));
    }
    out
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("addr").port()
}

/// Polls `check` every 20 ms until it holds, or panics after [`PATIENCE`] naming `what`.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which broker a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// vigil-link's embedded rumqttd.
    Embedded,
    /// A Mosquitto process.
    Mosquitto,
}

/// A broker on a fixed loopback port that can be stopped and started again there.
pub struct TestBroker {
    kind: BrokerKind,
    port: u16,
    dir: tempfile::TempDir,
    embedded: Option<EmbeddedBroker>,
    mosquitto: Option<Mosquitto>,
}

impl TestBroker {
    /// Starts a broker of `kind` on a free port.
    pub fn start(kind: BrokerKind) -> TestBroker {
        let mut broker = TestBroker {
            kind,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            embedded: None,
            mosquitto: None,
        };
        broker.up();
        broker
    }

    /// `mqtt://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's kind.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// Starts the broker (again) on its port.
    pub fn up(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        match self.kind {
            BrokerKind::Embedded => {
                let mut tries = 0;
                let broker = loop {
                    match EmbeddedBroker::start(addr) {
                        Ok(broker) => break broker,
                        // The old listener may linger for a moment after a stop.
                        Err(err) if tries < 50 => {
                            tries += 1;
                            eprintln!("embedded broker not up yet: {err}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        Err(err) => panic!("embedded broker: {err}"),
                    }
                };
                self.embedded = Some(broker);
            }
            BrokerKind::Mosquitto => {
                self.mosquitto = Some(Mosquitto::start(self.dir.path(), self.port));
            }
        }
    }

    /// Stops the broker: every client's connection drops.
    pub fn down(&mut self) {
        if let Some(broker) = self.embedded.take() {
            broker.stop();
        }
        self.mosquitto = None;
    }
}

/// A Mosquitto process with its own config; killed when dropped.
pub struct Mosquitto {
    process: Process,
}

impl Mosquitto {
    /// Writes a config for `127.0.0.1:port` into `dir` and starts Mosquitto with it.
    pub fn start(dir: &Path, port: u16) -> Mosquitto {
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 10000\nlog_type error\nlog_dest stderr\n"
            ),
        )
        .expect("write mosquitto.conf");
        let process = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/mosquitto");
        let mosquitto = Mosquitto { process };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mosquitto
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Link settings that make the tests quick: short timeouts and backoff.
pub fn fast_sender() -> SenderConfig {
    SenderConfig {
        window: 4,
        max_batch_events: 250,
        max_batch_bytes: SenderConfig::default_max_batch_bytes(),
        ack_timeout: Duration::from_millis(1000),
        ack_timeout_max: Duration::from_secs(2),
    }
}

/// Fast reconnects.
pub fn fast_backoff() -> BackoffConfig {
    BackoffConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }
}

/// A directory of stores that outlives the nodes that use it.
pub struct Dirs {
    dir: tempfile::TempDir,
}

impl Dirs {
    /// A fresh directory.
    pub fn new() -> Dirs {
        Dirs {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The store file of `name`.
    pub fn db(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }
}

/// Opens a store file and shares it.
pub fn open(path: &Path) -> SharedStore {
    SharedStore::new(Store::open(path).expect("open store"))
}

/// Reads a counter or gauge from `registry`: the sum over series whose labels include
/// `labels`.
pub fn metric(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

/// A running parent: `Downlinks` over its own store.
pub struct Parent {
    pub id: NodeId,
    pub store: SharedStore,
    pub registry: Registry,
    pub handle: DownlinksHandle,
    pub deliveries: mpsc::Receiver<Delivery>,
    /// What it refused or flagged about its children.
    pub findings: mpsc::Receiver<vigil_link::Finding>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Parent {
    /// Starts parent `county-a` on the broker at `url` over the store at `db`. Its
    /// children `gw-0` … `gw-3` are bound to the site `ministry` (as `[[child]]` in
    /// hub.toml binds them; docs/ARCHITECTURE.md#site-bindings-and-admission): a child
    /// with no binding gets nothing applied.
    pub fn start(url: &str, db: &Path) -> Parent {
        Parent::start_with(url, db, |_| {})
    }

    /// [`Parent::start`], with `adjust` applied to its config (TLS, credentials, …).
    pub fn start_with(url: &str, db: &Path, adjust: impl FnOnce(&mut DownlinksConfig)) -> Parent {
        let id = node("county-a");
        let mut bound = Store::open(db).expect("open store");
        let ministry = vigil_core::SitePath::new("ministry").expect("site");
        let children: Vec<_> = (0..4)
            .map(|i| (node(&format!("gw-{i}")), ministry.clone()))
            .collect();
        bound
            .bindings_sync_config(&children, vigil_core::Timestamp::now())
            .expect("bind the children");
        drop(bound);
        let store = open(db);
        let registry = Registry::new();
        let metrics = LinkMetrics::new(&registry).expect("metrics");
        let mut config = DownlinksConfig::new(id.clone(), url);
        config.sender = fast_sender();
        config.backoff = fast_backoff();
        config.poll_interval = Duration::from_millis(200);
        adjust(&mut config);
        let mut downlinks = Downlinks::new(config, store.clone(), metrics).expect("downlinks");
        let handle = downlinks.handle();
        let deliveries = downlinks.take_deliveries().expect("deliveries");
        let findings = downlinks.take_findings().expect("findings");
        let shutdown = CancellationToken::new();
        let run = downlinks.run(shutdown.clone());
        let task = tokio::spawn(async move {
            run.await.expect("downlinks run");
        });
        Parent {
            id,
            store,
            registry,
            handle,
            deliveries,
            findings,
            shutdown,
            task,
        }
    }

    /// Stops it cleanly and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// How many events its store holds.
    pub fn event_count(&self) -> u64 {
        self.store.lock().event_count().expect("count")
    }

    /// Whether it sees `child` in `state`.
    pub fn sees(&self, child: &NodeId, state: NodeState) -> bool {
        self.handle
            .children()
            .iter()
            .any(|c| &c.node == child && c.state == state)
    }

    /// Receives deliveries until `n` events arrived; returns them in arrival order.
    pub async fn collect(&mut self, n: usize) -> Vec<(Lane, AlertEvent)> {
        collect(&mut self.deliveries, n).await
    }
}

/// Receives deliveries until `n` events arrived.
pub async fn collect(rx: &mut mpsc::Receiver<Delivery>, n: usize) -> Vec<(Lane, AlertEvent)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(delivery)) => {
                out.extend(delivery.events.into_iter().map(|e| (delivery.lane, e)))
            }
            Ok(None) => panic!("deliveries closed after {} of {n} events", out.len()),
            Err(_) => panic!("timed out with {} of {n} events delivered", out.len()),
        }
    }
    out
}

/// A running child: an `Uplink` over its own store.
pub struct Child {
    pub id: NodeId,
    pub store: SharedStore,
    pub registry: Registry,
    pub poke: OutboxPoke,
    pub deliveries: mpsc::Receiver<Delivery>,
    pub clock: HlcClock,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Child {
    /// Starts child `id` on the broker at `url` over the store at `db`.
    pub fn start(id: &str, url: &str, db: &Path) -> Child {
        Child::start_with(id, url, db, fast_sender())
    }

    /// [`Child::start`] with its own sender settings.
    pub fn start_with(id: &str, url: &str, db: &Path, sender: SenderConfig) -> Child {
        Child::start_adjusted(id, url, db, |config| config.sender = sender)
    }

    /// [`Child::start`], with `adjust` applied to its config (TLS, credentials, …).
    pub fn start_adjusted(
        id: &str,
        url: &str,
        db: &Path,
        adjust: impl FnOnce(&mut UplinkConfig),
    ) -> Child {
        let id = node(id);
        let store = open(db);
        let registry = Registry::new();
        let metrics = LinkMetrics::new(&registry).expect("metrics");
        let mut config = UplinkConfig::new(id.clone(), url);
        config.sender = fast_sender();
        config.backoff = fast_backoff();
        config.keep_alive = Duration::from_secs(5);
        config.status_interval = Duration::from_secs(1);
        config.poll_interval = Duration::from_millis(200);
        adjust(&mut config);
        let mut uplink = Uplink::new(config, store.clone(), metrics).expect("uplink");
        let poke = uplink.poke_handle();
        let deliveries = uplink.take_deliveries().expect("deliveries");
        let shutdown = CancellationToken::new();
        let run = uplink.run(shutdown.clone());
        let task = tokio::spawn(async move {
            run.await.expect("uplink run");
        });
        let max = store.lock().max_hlc().expect("max hlc");
        let clock = max.map_or_else(HlcClock::default, |last| HlcClock::resume(last, 60_000));
        Child {
            id,
            store,
            registry,
            poke,
            deliveries,
            clock,
            shutdown,
            task,
        }
    }

    /// Records `n` events in `lane` on its `parent` outbox and pokes the link.
    pub async fn record(&mut self, n: usize, lane: Lane) -> Vec<AlertEvent> {
        let batch = events(&self.id, n, lane, &mut self.clock);
        let recorded: Vec<AlertEvent> = batch.iter().map(|(_, e)| e.clone()).collect();
        self.store
            .call(move |s| s.record_events("parent", &batch))
            .await
            .expect("record");
        self.poke.poke();
        recorded
    }

    /// Records events (lanes as given) and pokes.
    pub async fn record_all(&mut self, batch: Vec<(Lane, AlertEvent)>) {
        self.store
            .call(move |s| s.record_events("parent", &batch))
            .await
            .expect("record");
        self.poke.poke();
    }

    /// Outbox records of the `parent` link not yet acknowledged.
    pub fn backlog(&self) -> u64 {
        let store = self.store.lock();
        Lane::ALL
            .iter()
            .map(|lane| {
                store
                    .outbox_lane_state("parent", *lane)
                    .expect("state")
                    .backlog_records
            })
            .sum()
    }

    /// Stops it cleanly (offline status, DISCONNECT) and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Kills it: the task is aborted, the connection dropped without a DISCONNECT, the
    /// in-memory state lost. Returns the store for inspection.
    pub async fn kill(self) -> SharedStore {
        self.task.abort();
        let _ = self.task.await;
        self.store
    }
}

/// Asserts that `delivered` holds each of `expected` exactly once.
pub fn assert_exactly_once(delivered: &[(Lane, AlertEvent)], expected: &[AlertEvent]) {
    let mut seen = BTreeSet::new();
    for (_, event) in delivered {
        assert!(seen.insert(event.id), "event {} delivered twice", event.id);
    }
    let want: BTreeSet<EventId> = expected.iter().map(|e| e.id).collect();
    assert_eq!(seen.len(), want.len(), "delivered count");
    assert_eq!(seen, want, "delivered set");
}

/// Asserts that `store` holds every event of `expected`, and `total` events in all.
pub fn assert_stored(store: &SharedStore, expected: &[AlertEvent], total: u64) {
    let store = store.lock();
    assert_eq!(store.event_count().expect("count"), total, "events stored");
    for event in expected {
        assert_eq!(
            store.event(event.id).expect("read").as_ref(),
            Some(event),
            "event {} stored as sent",
            event.id
        );
    }
}

/// The index of the last critical and the first normal event in delivery order.
pub fn lane_boundary(delivered: &[(Lane, AlertEvent)]) -> (Option<usize>, Option<usize>) {
    let last_critical = delivered.iter().rposition(|(l, _)| *l == Lane::Critical);
    let first_normal = delivered.iter().position(|(l, _)| *l == Lane::Normal);
    (last_critical, first_normal)
}

/// Counts events per lane.
pub fn per_lane(delivered: &[(Lane, AlertEvent)]) -> HashMap<Lane, usize> {
    let mut counts = HashMap::new();
    for (lane, _) in delivered {
        *counts.entry(*lane).or_insert(0) += 1;
    }
    counts
}
