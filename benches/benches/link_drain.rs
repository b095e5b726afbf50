//! Backlog drain rate of one child → parent link over a real broker on loopback.
//!
//! A child's store holds a backlog of alert events (10 % critical) on its `parent` outbox;
//! the clock starts when its `Uplink` starts and stops when the parent's `Downlinks` has
//! committed the last event (and again when the child has taken the last ack). Both stores
//! are SQLite files with durable commits (WAL, `synchronous = FULL`), as in production: every
//! batch costs an fsynced commit at the parent and one at the child.
//!
//! Runs against the embedded rumqttd broker and, when `/usr/sbin/mosquitto` exists, a
//! Mosquitto it starts on a free port; each with the default sender (window 4, 500 events per
//! batch) and with stop-and-wait (window 1). Prints events per second. Takes well under a
//! minute in release.
//!
//! `cargo bench -p vigil-benches --bench link_drain` (`LINK_DRAIN_EVENTS` sets the backlog,
//! 20,000 by default).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child as Process, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, HlcClock, Lane,
    NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_link::{
    Downlinks, DownlinksConfig, EmbeddedBroker, LinkMetrics, SenderConfig, SharedStore, Uplink,
    UplinkConfig,
};
use vigil_store::Store;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects brokers by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let events: usize = std::env::var("LINK_DRAIN_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "link_drain: {events} queued events child → parent over loopback, durable SQLite on both ends, {cores} cores"
    );
    let configs = [
        ("window 4 × 500", SenderConfig::default()),
        (
            "stop-and-wait × 500",
            SenderConfig {
                window: 1,
                ..SenderConfig::default()
            },
        ),
    ];
    for broker in ["embedded", "mosquitto"] {
        if filter.as_deref().is_some_and(|f| !broker.contains(f)) {
            continue;
        }
        if broker == "mosquitto" && !Path::new(MOSQUITTO).exists() {
            println!("{broker:>10}: skipped ({MOSQUITTO} not installed)");
            continue;
        }
        for (name, sender) in configs {
            let result = runtime.block_on(drain(broker, sender, events));
            println!(
                "{broker:>10} {name:<20} committed: {:>8.0} events/s ({:>6.2} s)   acked: {:>6.2} s   batches {:>4}, resends {}",
                events as f64 / result.committed.as_secs_f64(),
                result.committed.as_secs_f64(),
                result.acked.as_secs_f64(),
                result.batches,
                result.resends,
            );
        }
    }
}

struct Drained {
    committed: Duration,
    acked: Duration,
    batches: u64,
    resends: u64,
}

/// A broker for one run; stopped when dropped.
struct Broker {
    _embedded: Option<EmbeddedBroker>,
    mosquitto: Option<Process>,
    _config_dir: Option<tempfile::TempDir>,
}

impl Broker {
    fn start(kind: &str) -> (Broker, String) {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let broker = if kind == "embedded" {
            Broker {
                _embedded: Some(EmbeddedBroker::start(addr).expect("embedded broker")),
                mosquitto: None,
                _config_dir: None,
            }
        } else {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = dir.path().join("mosquitto.conf");
            std::fs::write(
                &config,
                format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type error\n"),
            )
            .expect("mosquitto.conf");
            let process = Command::new(MOSQUITTO)
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto");
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "mosquitto did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            Broker {
                _embedded: None,
                mosquitto: Some(process),
                _config_dir: Some(dir),
            }
        };
        (broker, format!("mqtt://{addr}"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(process) = &mut self.mosquitto {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Realistic events: raises, value updates and clears over 1,000 alerts; 10 % critical.
fn backlog(gw: &NodeId, n: usize) -> Vec<(Lane, AlertEvent)> {
    let site = SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("site");
    let mut clock = HlcClock::default();
    let alerts: Vec<AlertId> = (0..1000).map(|_| AlertId::generate()).collect();
    (0..n)
        .map(|i| {
            let a = i % alerts.len();
            let critical = i % 10 == 0;
            let at = Timestamp::from_millis(1_795_000_000_000 + i as i64);
            let body = match (i / alerts.len()) % 3 {
                0 => AlertEventBody::Raised {
                    key: AlertKey::new(
                        gw.clone(),
                        format!("fence-north/zone{a}_alarm"),
                        ConditionKind::new("limit_h").expect("kind"),
                    )
                    .expect("key"),
                    site: site.clone(),
                    severity: if critical {
                        Severity::Critical
                    } else {
                        Severity::Minor
                    },
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
            let lane = if critical {
                Lane::Critical
            } else {
                Lane::Normal
            };
            let event = AlertEvent {
                id: EventId::generate(),
                alert: alerts[a],
                origin: gw.clone(),
                hlc: clock.now(1_795_000_000_000 + i as u64),
                actor: Actor::System,
                body,
                clamped_from: None,
            };
            (lane, event)
        })
        .collect()
}

fn sum(registry: &Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .map(|m| m.get_counter().get_value())
        .sum()
}

async fn drain(kind: &str, sender: SenderConfig, events: usize) -> Drained {
    let (_broker, url) = Broker::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = NodeId::new("gw-prison-3").expect("node");
    let child_store = SharedStore::new(Store::open(dir.path().join("child.db")).expect("child"));
    let mut parent = Store::open(dir.path().join("parent.db")).expect("parent");
    // The child bound to its facility (`[[child]]`): the parent admits only what a bound
    // child sends.
    parent
        .bindings_sync_config(
            &[(
                gw.clone(),
                SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("site"),
            )],
            Timestamp::now(),
        )
        .expect("bind the child");
    let parent_store = SharedStore::new(parent);
    let queued = backlog(&gw, events);
    child_store
        .call(move |s| s.record_events("parent", &queued))
        .await
        .expect("queue the backlog");

    let parent_registry = Registry::new();
    let mut downlinks_config =
        DownlinksConfig::new(NodeId::new("county-baiyun").expect("node"), url.clone());
    downlinks_config.sender = sender;
    let mut downlinks = Downlinks::new(
        downlinks_config,
        parent_store.clone(),
        LinkMetrics::new(&parent_registry).expect("metrics"),
    )
    .expect("downlinks");
    let mut deliveries = downlinks.take_deliveries().expect("deliveries");
    let shutdown = CancellationToken::new();
    let parent_task = tokio::spawn(downlinks.run(shutdown.clone()));
    // Let the parent subscribe before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let child_registry = Registry::new();
    let mut uplink_config = UplinkConfig::new(gw, url);
    uplink_config.sender = sender;
    let uplink = Uplink::new(
        uplink_config,
        child_store.clone(),
        LinkMetrics::new(&child_registry).expect("metrics"),
    )
    .expect("uplink");
    let start = Instant::now();
    let child_task = tokio::spawn(uplink.run(shutdown.clone()));
    let mut committed = 0;
    while committed < events {
        let delivery = tokio::time::timeout(Duration::from_secs(60), deliveries.recv())
            .await
            .expect("the drain stalled")
            .expect("deliveries open");
        committed += delivery.events.len();
    }
    let committed_at = start.elapsed();
    loop {
        let backlog = child_store
            .call(|s| {
                Ok(s.outbox_lane_state("parent", Lane::Critical)?
                    .backlog_records
                    + s.outbox_lane_state("parent", Lane::Normal)?.backlog_records)
            })
            .await
            .expect("backlog");
        if backlog == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let acked_at = start.elapsed();
    let result = Drained {
        committed: committed_at,
        acked: acked_at,
        batches: sum(&child_registry, vigil_link::metrics::names::BATCHES_SENT) as u64,
        resends: sum(&child_registry, vigil_link::metrics::names::RESENDS) as u64,
    };
    shutdown.cancel();
    let _ = child_task.await;
    let _ = parent_task.await;
    result
}
