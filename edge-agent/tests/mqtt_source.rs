//! The MQTT source against a real Mosquitto on loopback: JSON with field mapping and
//! timestamps, plain numbers, Sparkplug B births/data/deaths with aliases, every kind of bad
//! payload (counted, and the next good message still decoded), a broker restart (the
//! source reconnects and receives again), and Sparkplug rebirth requests for an edge node
//! born before the source subscribed (answered by the test, then by the real simulator).
//!
//! Each test starts its own `mosquitto` (`/usr/sbin/mosquitto`, or `$MOSQUITTO`) on a free
//! port of 127.0.0.1 and kills it when done.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use vigil_agent::config::MqttSubscription;
use vigil_agent::metrics::Metrics;
use vigil_agent::source::mqtt;
use vigil_core::{Quality, Reading, Timestamp, Value};
use vigil_sparkplug::{decode, encode, DataType, Metric, MetricValue, Payload, BD_SEQ, REBIRTH};

/// How long one test may take at most.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long one expected reading may take at most.
const READING_LIMIT: Duration = Duration::from_secs(10);
/// The probe subscription every test's source has, to know when the subscriptions are live.
const PROBE: &str = "vigil-test/probe";

/// A Mosquitto broker on loopback, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn mosquitto_binary() -> PathBuf {
    let path = std::env::var_os("MOSQUITTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"));
    assert!(
        path.exists(),
        "these tests need the Mosquitto broker at {} (apt-get install mosquitto, or set MOSQUITTO=/path/to/mosquitto)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Mosquitto {
    /// Starts a broker on `port`, with its config and log in `dir`, and waits until it
    /// accepts connections.
    fn start(dir: &Path, port: u16) -> Mosquitto {
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )
        .expect("write mosquitto.conf");
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("mosquitto.log"))
            .expect("open mosquitto.log");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        let mut broker = Mosquitto {
            child,
            port,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!(
                    "mosquitto exited with {status}: {}",
                    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Kills the broker (as a crash would) and waits for it to be gone.
    fn kill(mut self) -> (PathBuf, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A publishing client with its event loop running in a task (reconnecting on its own).
struct Publisher {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn connect(port: u16) -> Publisher {
        let mut options = MqttOptions::new(format!("test-pub-{port}"), "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 64);
        let task = tokio::spawn(async move {
            loop {
                if events.poll().await.is_err() {
                    sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Publisher { client, task }
    }

    async fn send(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish queued");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The source under test, running in a task.
struct Source {
    rx: mpsc::Receiver<Reading>,
    metrics: Metrics,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), mqtt::BuildError>>,
}

fn subscription(json: &str) -> MqttSubscription {
    serde_json::from_str(json).expect("subscription")
}

impl Source {
    /// Runs the source on `url` with `subs` and the probe subscription.
    fn start(url: &str, subs: &[String]) -> Source {
        let mut all: Vec<MqttSubscription> = subs.iter().map(|s| subscription(s)).collect();
        all.push(subscription(&format!(
            r#"{{"url": "{url}", "topic": "{PROBE}", "decoder": "number", "device": "probe", "point": "n"}}"#
        )));
        let (tx, rx) = mpsc::channel(1024);
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mqtt::run(all, tx, metrics.mqtt.clone(), shutdown.clone()));
        Source {
            rx,
            metrics,
            shutdown,
            task,
        }
    }

    /// Publishes probes until one comes back: the subscriptions are live.
    async fn wait_flowing(&mut self, publisher: &Publisher) {
        let deadline = Instant::now() + READING_LIMIT;
        loop {
            publisher.send(PROBE, "1").await;
            if let Ok(Some(r)) = timeout(Duration::from_millis(200), self.rx.recv()).await {
                if r.point.device() == "probe" {
                    return;
                }
                panic!("unexpected reading {r:?} before the probe");
            }
            assert!(
                Instant::now() < deadline,
                "the source never received the probe"
            );
        }
    }

    /// The next reading that is not a probe.
    async fn next(&mut self) -> Reading {
        loop {
            let r = timeout(READING_LIMIT, self.rx.recv())
                .await
                .expect("a reading within the time limit")
                .expect("the source is running");
            if r.point.device() != "probe" {
                return r;
            }
        }
    }

    /// The next `n` readings as `point=value` (with `!` for Bad quality).
    async fn take(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let r = self.next().await;
            let bad = if r.quality == Quality::Bad { "!" } else { "" };
            out.push(format!("{}={}{bad}", r.point, r.value));
        }
        out
    }

    /// Publishes a probe and takes the readings before it comes back: everything published
    /// before was handled.
    async fn until_probe(&mut self, publisher: &Publisher) -> Vec<String> {
        publisher.send(PROBE, "0").await;
        let mut out = Vec::new();
        loop {
            let r = timeout(READING_LIMIT, self.rx.recv())
                .await
                .expect("the probe within the time limit")
                .expect("the source is running");
            if r.point.device() == "probe" {
                return out;
            }
            out.push(format!("{}={}", r.point, r.value));
        }
    }

    fn rebirths(&self, subscription: &str) -> u64 {
        self.metrics
            .mqtt
            .rebirth_requests
            .with_label_values(&[subscription])
            .get()
    }

    fn errors(&self, subscription: &str, reason: &str) -> u64 {
        self.metrics
            .mqtt
            .decode_errors
            .with_label_values(&[subscription, reason])
            .get()
    }

    fn counter(&self, which: &str, subscription: &str) -> u64 {
        let m = &self.metrics.mqtt;
        match which {
            "messages" => m.messages.with_label_values(&[subscription]).get(),
            _ => m.readings.with_label_values(&[subscription]).get(),
        }
    }

    fn connected(&self, subscription: &str) -> i64 {
        self.metrics
            .mqtt
            .connected
            .with_label_values(&[subscription])
            .get()
    }

    /// Stops the source (it must stop promptly and cleanly) and gives back its metrics.
    async fn stop(self) -> Metrics {
        self.shutdown.cancel();
        let done = timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the source stops on shutdown")
            .expect("the source task does not panic");
        assert!(done.is_ok(), "{done:?}");
        self.metrics
    }
}

const ENV: &str = "facility/env/+/telemetry";
const DOOR: &str = "facility/door/+/open";
const SPB: &str = "spBv1.0/prison-3/#";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_number_payloads_and_every_bad_kind() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new().expect("tempdir");
        let broker = Mosquitto::start(dir.path(), free_port());
        let url = broker.url();
        let mut source = Source::start(
            &url,
            &[
                format!(
                    r#"{{"url": "{url}", "topic": "{ENV}", "decoder": "json", "device": "env-{{1}}", "timestamp": "ts",
                        "fields": {{"temperature": "temp", "humidity": "env.rh"}}}}"#
                ),
                format!(
                    r#"{{"url": "{url}", "topic": "{DOOR}", "decoder": "number", "device": "door-{{1}}", "point": "open"}}"#
                ),
            ],
        );
        let publisher = Publisher::connect(broker.port);
        source.wait_flowing(&publisher).await;
        assert_eq!(source.connected(ENV), 1);

        // JSON: fields by path, timestamp as epoch ms, then as RFC 3339.
        let topic = "facility/env/1/telemetry";
        publisher
            .send(topic, r#"{"temp": 21.5, "env": {"rh": 40}, "ts": 1700000000123}"#)
            .await;
        let a = source.next().await;
        let b = source.next().await;
        assert_eq!((a.point.as_str(), &a.value), ("env-1/humidity", &Value::Int(40)));
        assert_eq!((b.point.as_str(), &b.value), ("env-1/temperature", &Value::Float(21.5)));
        assert_eq!(a.ts, Timestamp::from_millis(1_700_000_000_123));
        assert_eq!(a.quality, Quality::Good);
        publisher
            .send("facility/env/2/telemetry", r#"{"temp": -3, "env": {"rh": 55.5}, "ts": "2026-11-29T20:00:00.000+08:00"}"#)
            .await;
        let r = source.next().await;
        assert_eq!(r.point.as_str(), "env-2/humidity");
        assert_eq!(r.ts, "2026-11-29T12:00:00Z".parse().expect("timestamp"));
        assert_eq!(source.take(1).await, ["env-2/temperature=-3"]);

        // Each bad kind is counted, and the next good message on the topic still decodes.
        let good = r#"{"temp": 1, "env": {"rh": 2}, "ts": 1}"#;
        for (bad, reason, partial) in [
            ("not json at all", "not_json", vec![]),
            (r#"[1, 2, 3]"#, "not_object", vec![]),
            (r#"{"temp": 20, "ts": 1}"#, "field_missing", vec!["env-1/temperature=20"]),
            (r#"{"temp": {"c": 20}, "env": {"rh": 3}, "ts": 1}"#, "wrong_type", vec!["env-1/humidity=3"]),
            (r#"{"temp": 5, "env": {"rh": 6}, "ts": "yesterday"}"#, "bad_timestamp", vec!["env-1/humidity=6", "env-1/temperature=5"]),
        ] {
            publisher.send(topic, bad).await;
            publisher.send(topic, good).await;
            let mut want: Vec<String> = partial.into_iter().map(str::to_owned).collect();
            want.extend(["env-1/humidity=2".to_owned(), "env-1/temperature=1".to_owned()]);
            assert_eq!(source.take(want.len()).await, want, "after {reason}");
            assert_eq!(source.errors(ENV, reason), 1, "{reason} counted once");
        }
        assert_eq!(source.counter("messages", ENV), 12);
        assert_eq!(source.counter("readings", ENV), 2 + 2 + 1 + 1 + 2 + 5 * 2);

        // Numbers and booleans; garbage counted, and the next one decodes.
        publisher.send("facility/door/3/open", "true").await;
        publisher.send("facility/door/4/open", " 21.5\n").await;
        publisher.send("facility/door/3/open", "open!").await;
        publisher.send("facility/door/3/open", "FALSE").await;
        assert_eq!(
            source.take(3).await,
            ["door-3/open=true", "door-4/open=21.5", "door-3/open=false"]
        );
        assert_eq!(source.errors(DOOR, "not_number"), 1);
        assert_eq!(source.counter("messages", DOOR), 4);

        let metrics = source.stop().await;
        assert_eq!(metrics.mqtt.connected.with_label_values(&[ENV]).get(), 0);
    })
    .await
    .expect("the test finishes in time");
}

/// Sparkplug payload helpers.
fn spb(ts: u64, seq: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
    encode(&Payload::new(ts, seq, metrics))
}

fn born(name: &str, alias: u64, datatype: DataType, value: Value) -> Metric {
    Metric::with_value(name, Some(alias), datatype, value).expect("value fits")
}

fn by_alias(alias: u64, datatype: DataType, value: Value) -> Metric {
    Metric::aliased(alias, datatype, value).expect("value fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_births_data_aliases_and_deaths() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new().expect("tempdir");
        let broker = Mosquitto::start(dir.path(), free_port());
        let url = broker.url();
        let mut source = Source::start(
            &url,
            &[format!(
                r#"{{"url": "{url}", "topic": "{SPB}", "decoder": "sparkplug_b"}}"#
            )],
        );
        let publisher = Publisher::connect(broker.port);
        source.wait_flowing(&publisher).await;

        let node = "spBv1.0/prison-3/NBIRTH/gw-1";
        let nbirth = spb(
            1_000,
            Some(0),
            vec![
                born(BD_SEQ, 0, DataType::Int64, Value::Int(0)),
                born("Supply/Voltage", 1, DataType::Float, Value::Float(24.5)),
                born("Temp", 2, DataType::Int8, Value::Int(-5)),
            ],
        );
        publisher.send(node, nbirth).await;
        assert_eq!(
            source.take(2).await,
            ["gw-1/supply_voltage=24.5", "gw-1/temp=-5"]
        );

        let dbirth = spb(
            1_100,
            Some(1),
            vec![born("Door Open", 1, DataType::Boolean, Value::Bool(false))],
        );
        publisher
            .send("spBv1.0/prison-3/DBIRTH/gw-1/door-7", dbirth.clone())
            .await;
        assert_eq!(source.take(1).await, ["door-7/door_open=false"]);

        // NDATA by alias, no datatype; an Int8 of -1 written 0xFF.
        let mut minus_one = by_alias(2, DataType::Int8, Value::Int(0)).with_timestamp(1_200);
        minus_one.value = Some(MetricValue::IntValue(0xFF));
        publisher
            .send(
                "spBv1.0/prison-3/NDATA/gw-1",
                spb(1_200, Some(2), vec![minus_one]),
            )
            .await;
        let r = source.next().await;
        assert_eq!(
            (r.point.as_str(), &r.value, r.ts),
            ("gw-1/temp", &Value::Int(-1), Timestamp::from_millis(1_200))
        );

        // DDATA: the device's own alias 1.
        let open = spb(
            1_300,
            Some(3),
            vec![by_alias(1, DataType::Boolean, Value::Bool(true))],
        );
        publisher
            .send("spBv1.0/prison-3/DDATA/gw-1/door-7", open.clone())
            .await;
        assert_eq!(source.take(1).await, ["door-7/door_open=true"]);

        // An unknown alias, protobuf garbage, a non-Sparkplug topic: counted; the next good
        // message still decodes.
        let ndata = "spBv1.0/prison-3/NDATA/gw-1";
        let volts = |v: f64| {
            spb(
                1_400,
                Some(4),
                vec![by_alias(1, DataType::Float, Value::Float(v))],
            )
        };
        publisher
            .send(
                ndata,
                spb(
                    1_400,
                    Some(4),
                    vec![by_alias(9, DataType::Float, Value::Float(1.0))],
                ),
            )
            .await;
        publisher.send(ndata, volts(23.0)).await;
        assert_eq!(source.take(1).await, ["gw-1/supply_voltage=23"]);
        assert_eq!(source.errors(SPB, "unknown_alias"), 1);
        publisher.send(ndata, b"\x12\x05\x0a\x01".to_vec()).await;
        publisher.send(ndata, volts(22.0)).await;
        assert_eq!(source.take(1).await, ["gw-1/supply_voltage=22"]);
        assert_eq!(source.errors(SPB, "protobuf"), 1);
        publisher
            .send("spBv1.0/prison-3/NOPE/gw-1", volts(0.0))
            .await;
        publisher.send(ndata, volts(21.0)).await;
        assert_eq!(source.take(1).await, ["gw-1/supply_voltage=21"]);
        assert_eq!(source.errors(SPB, "bad_topic"), 1);

        // DDEATH: the device's points go Bad with their last value; its aliases are unknown
        // until it is born again.
        publisher
            .send(
                "spBv1.0/prison-3/DDEATH/gw-1/door-7",
                spb(1_500, Some(5), vec![]),
            )
            .await;
        assert_eq!(source.take(1).await, ["door-7/door_open=true!"]);
        publisher
            .send("spBv1.0/prison-3/DDATA/gw-1/door-7", open.clone())
            .await;
        publisher
            .send("spBv1.0/prison-3/DBIRTH/gw-1/door-7", dbirth)
            .await;
        publisher
            .send("spBv1.0/prison-3/DDATA/gw-1/door-7", open)
            .await;
        assert_eq!(
            source.take(2).await,
            ["door-7/door_open=false", "door-7/door_open=true"]
        );
        assert_eq!(source.errors(SPB, "unknown_alias"), 2);

        // NDEATH (the birth's bdSeq): every point of the node and its devices goes Bad.
        publisher
            .send(
                "spBv1.0/prison-3/NDEATH/gw-1",
                spb(
                    1_600,
                    None,
                    vec![born(BD_SEQ, 0, DataType::Int64, Value::Int(0))],
                ),
            )
            .await;
        let mut dead = source.take(3).await;
        dead.sort();
        assert_eq!(
            dead,
            [
                "door-7/door_open=true!",
                "gw-1/supply_voltage=21!",
                "gw-1/temp=-1!"
            ]
        );
        publisher.send(ndata, volts(20.0)).await;
        publisher.send(PROBE, "2").await;
        let probe_or_data = timeout(READING_LIMIT, source.rx.recv())
            .await
            .expect("probe")
            .expect("running");
        assert_eq!(
            probe_or_data.point.device(),
            "probe",
            "no reading from a dead node"
        );
        assert_eq!(source.errors(SPB, "unknown_alias"), 3);

        source.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_restarts() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new().expect("tempdir");
        let broker = Mosquitto::start(dir.path(), free_port());
        let url = broker.url();
        let port = broker.port;
        let mut source = Source::start(
            &url,
            &[format!(r#"{{"url": "{url}", "topic": "{DOOR}", "decoder": "number", "device": "door-{{1}}", "point": "open"}}"#)],
        );
        let publisher = Publisher::connect(port);
        source.wait_flowing(&publisher).await;
        publisher.send("facility/door/1/open", "1").await;
        assert_eq!(source.take(1).await, ["door-1/open=1"]);
        assert_eq!(source.connected(DOOR), 1);

        // The broker dies: the gauge drops.
        let (dir_path, port) = broker.kill();
        let deadline = Instant::now() + READING_LIMIT;
        while source.connected(DOOR) != 0 {
            assert!(Instant::now() < deadline, "the connected gauge stays 1 without a broker");
            sleep(Duration::from_millis(20)).await;
        }
        // Down a little while: a few failed attempts, with backoff.
        sleep(Duration::from_millis(700)).await;

        // It comes back on the same port: the source reconnects, resubscribes, receives.
        let broker = Mosquitto::start(&dir_path, port);
        source.wait_flowing(&publisher).await;
        assert_eq!(source.connected(DOOR), 1);
        publisher.send("facility/door/2/open", "0").await;
        assert_eq!(source.take(1).await, ["door-2/open=0"]);

        source.stop().await;
        drop(broker);
    })
    .await
    .expect("the test finishes in time");
}

/// A client subscribed to `filters` (QoS 1) before it returns, forwarding what it receives.
struct Watcher {
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    async fn start(port: u16, filters: &[&str]) -> Watcher {
        let options = MqttOptions::new(format!("test-watch-{port}"), "127.0.0.1", port);
        let (client, mut events) = AsyncClient::new(options, 64);
        for f in filters {
            client
                .subscribe(*f, QoS::AtLeastOnce)
                .await
                .expect("subscribe queued");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        let mut acks = filters.len();
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks -= 1;
                        if acks == 0 {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => sleep(Duration::from_millis(50)).await,
                }
            }
        });
        timeout(READING_LIMIT, ready_rx)
            .await
            .expect("subscribed in time")
            .expect("the watcher runs");
        Watcher { rx, task }
    }

    /// The next message: `(topic, payload)`.
    async fn next(&mut self) -> (String, Vec<u8>) {
        timeout(READING_LIMIT, self.rx.recv())
            .await
            .expect("a message within the time limit")
            .expect("the watcher runs")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether an NCMD payload is a Sparkplug rebirth request: `Node Control/Rebirth` = true.
fn is_rebirth(payload: &[u8]) -> bool {
    let p = decode(payload).expect("the NCMD is a Sparkplug B payload");
    p.timestamp.is_some()
        && p.metrics.iter().any(|m| {
            m.name.as_deref() == Some(REBIRTH)
                && m.data_type() == Ok(Some(DataType::Boolean))
                && m.value() == Ok(Some(Value::Bool(true)))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_asks_a_node_born_before_it_for_a_rebirth() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new().expect("tempdir");
        let broker = Mosquitto::start(dir.path(), free_port());
        let url = broker.url();
        let publisher = Publisher::connect(broker.port);
        let mut watcher =
            Watcher::start(broker.port, &["spBv1.0/+/NCMD/+", "spBv1.0/+/NBIRTH/+"]).await;

        // The node is born before the agent listens: the source never sees this NBIRTH.
        let nbirth = |supply: f64| {
            spb(
                1_000,
                Some(0),
                vec![
                    born(BD_SEQ, 0, DataType::Int64, Value::Int(0)),
                    Metric::with_value(REBIRTH, None, DataType::Boolean, Value::Bool(false))
                        .expect("fits"),
                    born("Supply/Voltage", 1, DataType::Float, Value::Float(supply)),
                ],
            )
        };
        publisher.send("spBv1.0/prison-3/NBIRTH/gw-1", nbirth(24.5)).await;
        assert_eq!(watcher.next().await.0, "spBv1.0/prison-3/NBIRTH/gw-1");

        const QUIET: &str = "spBv1.0/prison-4/#";
        let mut source = Source::start(
            &url,
            &[
                format!(r#"{{"url": "{url}", "topic": "{SPB}", "decoder": "sparkplug_b"}}"#),
                format!(
                    r#"{{"url": "{url}", "topic": "{QUIET}", "decoder": "sparkplug_b", "rebirth": false}}"#
                ),
            ],
        );
        source.wait_flowing(&publisher).await;

        // Data the source cannot read. The site that forbids commands (prison-4) is never
        // asked: the first NCMD is prison-3's, though prison-4's data came first.
        let volts = |seq: u64, v: f64| {
            spb(
                2_000,
                Some(seq),
                vec![by_alias(1, DataType::Float, Value::Float(v))],
            )
        };
        publisher.send("spBv1.0/prison-4/NDATA/gw-9", volts(5, 1.0)).await;
        publisher.send("spBv1.0/prison-3/NDATA/gw-1", volts(1, 23.0)).await;
        let (topic, payload) = watcher.next().await;
        assert_eq!(topic, "spBv1.0/prison-3/NCMD/gw-1");
        assert!(is_rebirth(&payload), "{:?}", decode(&payload));

        // Still unreadable, but asked once already: no second request within 5 s.
        publisher.send("spBv1.0/prison-3/NDATA/gw-1", volts(2, 22.0)).await;
        assert_eq!(source.until_probe(&publisher).await, Vec::<String>::new());
        assert_eq!(source.errors(SPB, "unknown_alias"), 2);
        assert_eq!(source.errors(QUIET, "unknown_alias"), 1);
        assert_eq!(source.rebirths(SPB), 1);
        assert_eq!(source.rebirths(QUIET), 0);

        // The node answers with a new NBIRTH: its data decodes again.
        publisher.send("spBv1.0/prison-3/NBIRTH/gw-1", nbirth(24.0)).await;
        publisher.send("spBv1.0/prison-3/NDATA/gw-1", volts(1, 21.5)).await;
        assert_eq!(
            source.take(2).await,
            ["gw-1/supply_voltage=24", "gw-1/supply_voltage=21.5"]
        );
        assert_eq!(source.until_probe(&publisher).await, Vec::<String>::new());
        assert_eq!(source.rebirths(SPB), 1);
        assert_eq!(source.errors(SPB, "unknown_alias"), 2);
        source.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_the_rebirth_request() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new().expect("tempdir");
        let broker = Mosquitto::start(dir.path(), free_port());
        let url = broker.url();
        let facility = vigil_sim::Facility::parse(
            Path::new("sim.toml"),
            &format!(
                r#"
[[mqtt]]
id = "gw-sim"
url = "{url}"
format = "sparkplug_b"
group = "facility"
interval = "100ms"
[mqtt.fields.supply]
kind = "constant"
value = 24.1
[[mqtt.device]]
id = "door-1"
[mqtt.device.fields.open]
kind = "constant"
value = true
"#
            ),
        )
        .unwrap_or_else(|e| panic!("sim.toml: {e}"));
        let sim = vigil_sim::Simulator::start(facility)
            .await
            .expect("the simulator starts");
        // Births and some data go out before the source subscribes.
        let deadline = Instant::now() + READING_LIMIT;
        while sim.mqtt_stats("gw-sim").map_or(0, |s| s.published) < 6 {
            assert!(Instant::now() < deadline, "the simulator does not publish");
            sleep(Duration::from_millis(20)).await;
        }

        const FACILITY: &str = "spBv1.0/facility/#";
        let mut source = Source::start(
            &url,
            &[format!(
                r#"{{"url": "{url}", "topic": "{FACILITY}", "decoder": "sparkplug_b"}}"#
            )],
        );
        // Without a rebirth nothing could be read until the node reconnects (never, here):
        // each reading must come within READING_LIMIT.
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            let r = source.next().await;
            assert_eq!(r.quality, Quality::Good, "{r:?}");
            seen.insert(format!("{}={}", r.point, r.value));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["door-1/open=true", "gw-sim/supply=24.1"]
        );
        assert!(source.rebirths(FACILITY) >= 1);
        source.stop().await;
        sim.stop().await;
    })
    .await
    .expect("the test finishes in time");
}
