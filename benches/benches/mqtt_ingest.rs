//! MQTT ingest throughput: messages and readings per second the agent's MQTT source turns
//! out.
//!
//! Two parts:
//!
//! - criterion benches of the pure decoders (no I/O), for a typical message of each kind:
//!   `json` (an environment sensor: 5 mapped fields by path and an epoch-ms timestamp → 5
//!   readings), `number` (one value → 1 reading) and `sparkplug_b` (an NDATA of 10 metrics by
//!   alias after their NBIRTH → 10 readings). Group `mqtt_decode_messages` counts messages,
//!   `mqtt_decode_readings` readings;
//! - an end-to-end harness through a real Mosquitto on loopback: a rumqttc publisher sends
//!   N messages (QoS 1) as fast as it can, the source (subscribed QoS 1) decodes them and
//!   sends the readings on the agent's reading channel, a task drains it; the figure is
//!   messages and readings per second from the first publish to the last reading. Skipped
//!   (with a note) when `/usr/sbin/mosquitto` (or `$MOSQUITTO`) is missing; a 200-message
//!   smoke run when the bench runs as a test (`cargo test --benches`).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion, Throughput};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;
use vigil_agent::config::MqttSubscription;
use vigil_agent::metrics::Metrics;
use vigil_agent::source::mqtt::{self, SubscriptionDecoder, TopicFilter};
use vigil_core::{Timestamp, Value};
use vigil_sparkplug::{encode, DataType, Metric, Payload};

const JSON_TOPIC: &str = "facility/env/+/telemetry";
const SPB_TOPIC: &str = "spBv1.0/prison-3/#";
/// Sparkplug metrics per message.
const SPB_METRICS: u64 = 10;

fn subscription(url: &str, topic: &str, decoder: &str, extra: &str) -> MqttSubscription {
    serde_json::from_str(&format!(
        r#"{{"url": "{url}", "topic": "{topic}", "decoder": "{decoder}"{extra}}}"#
    ))
    .expect("valid subscription")
}

fn json_subscription(url: &str) -> MqttSubscription {
    subscription(
        url,
        JSON_TOPIC,
        "json",
        r#", "device": "env-{1}", "timestamp": "ts", "fields": {"temperature": "temp", "humidity": "env.rh", "co2": "env.co2", "door": "door", "battery": "power.battery"}"#,
    )
}

fn json_payload(i: u64) -> Vec<u8> {
    format!(
        r#"{{"temp": {:.1}, "env": {{"rh": 40.2, "co2": {}}}, "door": false, "power": {{"battery": 3.01, "mains": true}}, "ts": {}}}"#,
        21.0 + (i % 10) as f64 / 10.0,
        400 + i % 50,
        1_700_000_000_000 + i
    )
    .into_bytes()
}

fn spb_birth() -> Vec<u8> {
    let mut metrics =
        vec![Metric::with_value("bdSeq", None, DataType::Int64, Value::Int(0)).expect("fits")];
    for a in 0..SPB_METRICS {
        let (datatype, value) = spb_value(a, 0);
        metrics.push(
            Metric::with_value(format!("Inputs/Channel {a}"), Some(a), datatype, value)
                .expect("fits"),
        );
    }
    encode(&Payload::new(1_700_000_000_000, Some(0), metrics))
}

fn spb_value(alias: u64, i: u64) -> (DataType, Value) {
    match alias % 4 {
        0 => (DataType::Float, Value::Float(20.0 + (i % 7) as f64)),
        1 => (DataType::Int16, Value::Int(-((i % 300) as i64))),
        2 => (DataType::Boolean, Value::Bool(i.is_multiple_of(2))),
        _ => (DataType::Double, Value::Float(1.5 * (i % 11) as f64)),
    }
}

fn spb_data(i: u64) -> Vec<u8> {
    let metrics = (0..SPB_METRICS)
        .map(|a| {
            let (datatype, value) = spb_value(a, i);
            Metric::aliased(a, datatype, value).expect("fits")
        })
        .collect();
    encode(&Payload::new(1_700_000_000_000 + i, Some(i % 256), metrics))
}

/// One decoder case: name, decoder, topic, payload, readings per message.
fn cases() -> Vec<(
    &'static str,
    SubscriptionDecoder,
    &'static str,
    Vec<u8>,
    u64,
)> {
    let build = |sub: &MqttSubscription| {
        let filter = TopicFilter::parse(&sub.topic).expect("filter");
        SubscriptionDecoder::build(0, sub, &filter).expect("decoder")
    };
    let url = "mqtt://127.0.0.1";
    let mut spb = build(&subscription(url, SPB_TOPIC, "sparkplug_b", ""));
    let now = Timestamp::from_millis(0);
    let born = spb.decode("spBv1.0/prison-3/NBIRTH/gw-1", &[], &spb_birth(), now);
    assert!(born.errors.is_empty(), "{:?}", born.errors);
    vec![
        (
            "json",
            build(&json_subscription(url)),
            "facility/env/7/telemetry",
            json_payload(1),
            5,
        ),
        (
            "number",
            build(&subscription(
                url,
                "facility/door/+/open",
                "number",
                r#", "device": "door-{1}", "point": "open""#,
            )),
            "facility/door/7/open",
            b"21.5".to_vec(),
            1,
        ),
        (
            "sparkplug_b",
            spb,
            "spBv1.0/prison-3/NDATA/gw-1",
            spb_data(1),
            SPB_METRICS,
        ),
    ]
}

fn decode_benches(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_700_000_000_000);
    for unit in ["messages", "readings"] {
        let mut group = c.benchmark_group(format!("mqtt_decode_{unit}"));
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, mut decoder, topic, payload, per_message) in cases() {
            let filter = match name {
                "json" => JSON_TOPIC,
                "number" => "facility/door/+/open",
                _ => SPB_TOPIC,
            };
            let filter = TopicFilter::parse(filter).expect("filter");
            let captures = filter.captures(topic).expect("the topic matches");
            let check = decoder.decode(topic, &captures, &payload, now);
            assert!(check.errors.is_empty(), "{name}: {:?}", check.errors);
            assert_eq!(check.readings.len() as u64, per_message, "{name}");
            group.throughput(Throughput::Elements(if unit == "messages" {
                1
            } else {
                per_message
            }));
            group.bench_function(name, |b| {
                b.iter(|| decoder.decode(topic, &captures, black_box(&payload), now))
            });
        }
        group.finish();
    }
}

criterion_group!(decode, decode_benches);

/// A Mosquitto on loopback, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Option<Mosquitto> {
        let binary = std::env::var_os("MOSQUITTO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"));
        if !binary.exists() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = dir.path().join("mosquitto.conf");
        // Unbounded queues: a subscriber that falls behind gets every message, late.
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest none\n"),
        )
        .expect("write config");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let broker = Mosquitto {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(broker)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes `n` messages made by `payload` on `topic` and measures until `n * per_message`
/// readings came out of the source. Returns the elapsed time.
async fn run_e2e(
    port: u16,
    sub: MqttSubscription,
    topic: &str,
    payload: fn(u64) -> Vec<u8>,
    prelude: Option<(&str, Vec<u8>)>,
    n: u64,
    per_message: u64,
) -> Duration {
    let url = format!("mqtt://127.0.0.1:{port}");
    let probe = subscription(
        &url,
        "bench/probe",
        "number",
        r#", "device": "probe", "point": "n""#,
    );
    let (tx, mut rx) = vigil_agent::source::channel();
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let source = tokio::spawn(mqtt::run(
        vec![sub, probe],
        tx,
        metrics.mqtt.clone(),
        shutdown.clone(),
    ));

    let mut options = MqttOptions::new(format!("bench-pub-{port}"), "127.0.0.1", port);
    options
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(1000);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let pump = tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // Wait until the subscriptions are live.
    loop {
        client
            .publish("bench/probe", QoS::AtLeastOnce, false, "1")
            .await
            .expect("publish");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            break;
        }
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {}
    let mut expected = n * per_message;
    if let Some((topic, bytes)) = prelude {
        client
            .publish(topic, QoS::AtLeastOnce, false, bytes)
            .await
            .expect("publish");
        expected += SPB_METRICS;
    }

    let start = Instant::now();
    let topic = topic.to_owned();
    let publisher = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 0..n {
                client
                    .publish(topic.as_str(), QoS::AtLeastOnce, false, payload(i))
                    .await
                    .expect("publish");
            }
        }
    });
    let mut got = 0;
    while got < expected {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(_)) => got += 1,
            _ => panic!("only {got} of {expected} readings arrived"),
        }
    }
    let elapsed = start.elapsed();
    let _ = publisher.await;
    shutdown.cancel();
    let _ = source.await;
    pump.abort();
    elapsed
}

/// The end-to-end harness, unless the command line filters it out.
fn e2e() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let names = ["mqtt_ingest/e2e/json", "mqtt_ingest/e2e/sparkplug_b"];
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    if !names.iter().any(|n| wanted(n)) {
        return;
    }
    let Some(broker) = Mosquitto::start() else {
        println!("mqtt_ingest/e2e: skipped: no mosquitto at /usr/sbin/mosquitto (or $MOSQUITTO)");
        return;
    };
    let n: u64 = if full { 50_000 } else { 200 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let report = |name: &str, n: u64, per_message: u64, t: Duration| {
        let secs = t.as_secs_f64();
        if !full {
            println!("{name:<30} smoke run: {n} messages through Mosquitto in {secs:.2} s (not a measurement)");
            return;
        }
        println!(
            "{name:<30} {n} messages in {secs:.2} s: {:>9.0} messages/s, {:>9.0} readings/s (Mosquitto on loopback, QoS 1, {per_message} readings/message)",
            n as f64 / secs,
            (n * per_message) as f64 / secs
        );
    };
    if wanted(names[0]) {
        let t = runtime.block_on(run_e2e(
            broker.port,
            json_subscription(&url),
            "facility/env/7/telemetry",
            json_payload,
            None,
            n,
            5,
        ));
        report(names[0], n, 5, t);
    }
    if wanted(names[1]) {
        let t = runtime.block_on(run_e2e(
            broker.port,
            subscription(&url, SPB_TOPIC, "sparkplug_b", ""),
            "spBv1.0/prison-3/NDATA/gw-1",
            spb_data,
            Some(("spBv1.0/prison-3/NBIRTH/gw-1", spb_birth())),
            n,
            SPB_METRICS,
        ));
        report(names[1], n, SPB_METRICS, t);
    }
}

fn main() {
    decode();
    Criterion::default().configure_from_args().final_summary();
    e2e();
}
