//! Hub durable ingest: events per second a hub commits from its children. The project's goal
//! is at least 50,000 events/s on a 2-core machine.
//!
//! Two parts, each on file-backed SQLite opened as `Store::open` opens it (WAL,
//! `synchronous = FULL`: every commit is fsynced):
//!
//! - **store**: `Store::apply_batch_and_forward` of 500-event batches of new events
//!   (raises, value updates and clears over 1,000 alerts per gateway — 10 % critical, 20 %
//!   major, 40 % minor, 30 % warning — from 8 gateways in turn, each on its own inbox
//!   cursors), one durable transaction per batch, called directly: no broker, no link.
//!   Variants: no forward link (a ministry hub); a forward link with a per-event policy
//!   (raises of minor and above go up); a forward link with the hub's own per-alert
//!   escalation policy (`vigil_hub::escalation::policy`, min severity minor) through
//!   `Store::apply_batch_and_forward_by_alert`, as `vigil-link` runs it for a county hub;
//!   the same policy with its `AlertContext`s rebuilt from each alert's stored history
//!   first (`AlertContext::load_all`, the way it was done before the store kept the
//!   contexts), with the share of the time that took; and groups of 8 batches per
//!   transaction (`Store::apply_batches_and_forward`, what the hub's downlinks do with the
//!   batches they find waiting). The figure is events/s over the whole run.
//! - **end to end**: 8 simulated gateways, each a `vigil-link` `Uplink` (mutual TLS, with a
//!   certificate from the hub's CA, as the hub's broker requires) over its own SQLite
//!   store whose `parent` outbox holds 10,000 such events, drain at once into one
//!   in-process hub (`vigil_hub::run::run`: embedded broker, downlinks, ingest, feed, HTTP,
//!   all as in production, on ephemeral ports). The clock starts when the uplinks start and
//!   stops when the hub has committed the last event (its `vigil_hub_events_ingested_total`
//!   reaches the total) — and again when every gateway has taken its last ack. Two hubs: a
//!   ministry (no `[parent]`: nothing goes up) and a county (a `[parent]` on a port where
//!   nobody listens: every committed batch also runs the escalation policy and queues what
//!   goes up in the same transaction).
//!
//! The gateways run on the same 2 cores as the hub (their own fsynced commits of every ack
//! included), so the end-to-end figure is a lower bound of what the hub alone can take.
//!
//! `cargo bench -p vigil-benches --bench hub_ingest` (a filter argument `store` or `e2e`
//! runs one part, `groups` only the store part's grouped variants; `HUB_INGEST_EVENTS` sets the store part's events, 80,000 by default;
//! `HUB_INGEST_GATEWAYS` and `HUB_INGEST_BACKLOG` set the end-to-end part's gateways and
//! events per gateway, 8 and 10,000). Under `cargo test` (no `--bench`) it does a short
//! smoke run and prints no figures.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, HlcClock, Lane,
    NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_link::{AlertContext, LinkMetrics, SharedStore, Uplink, UplinkConfig};
use vigil_store::{InboundBatch, Store};

/// Events in one batch, the link's default.
const BATCH: usize = 500;
/// Alerts each gateway's events are spread over.
const ALERTS_PER_GATEWAY: usize = 1000;

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

/// CPU time this thread has run so far (`/proc/thread-self/schedstat`, nanoseconds): the
/// store part's cost in CPU, which other jobs on the machine disturb far less than its wall
/// time. Zero where the file is missing.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time (user + system) of the whole process so far (`/proc/self/stat`, in clock ticks of
/// 10 ms): the end-to-end part's cost, hub and gateways together.
fn process_cpu() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(Duration::from_millis((utime + stime) * 10))
        })
        .unwrap_or(Duration::ZERO)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "hub_ingest: durable hub ingest (SQLite WAL, synchronous = FULL), {cores} cores, load average {} at start",
        load_average()
    );
    println!("reproduce: cargo bench -p vigil-benches --bench hub_ingest");
    if !full {
        println!("smoke run (no --bench): tiny sizes, the figures are not measurements");
    }
    let events = if full {
        env_usize("HUB_INGEST_EVENTS", 80_000)
    } else {
        2 * BATCH
    };
    if wanted("store") {
        store_part(events, full);
    } else if wanted("groups") {
        let batches = hub_batches(events);
        store_groups(&batches, events_in(&batches), 8, full);
    }
    if wanted("e2e") {
        let (gateways, backlog) = if full {
            (
                env_usize("HUB_INGEST_GATEWAYS", 8),
                env_usize("HUB_INGEST_BACKLOG", 10_000),
            )
        } else {
            (2, 1000)
        };
        e2e_part(gateways, backlog, full);
    }
    println!("load average at the end: {}", load_average());
}

fn site() -> SitePath {
    SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("site")
}

/// The severity of alert number `a` of a gateway: 10 % critical, 20 % major, 40 % minor,
/// 30 % warning.
fn severity_of(a: usize) -> Severity {
    match a % 10 {
        0 => Severity::Critical,
        1 | 2 => Severity::Major,
        3..=6 => Severity::Minor,
        _ => Severity::Warning,
    }
}

/// `n` new events of gateway `gw`, in the order its alert manager would make them: rounds
/// over its alerts of raises, then value updates, then clears, then raises again; each in
/// the lane of its alert's severity.
fn gateway_events(gw: &NodeId, n: usize) -> Vec<(Lane, AlertEvent)> {
    let alerts: Vec<AlertId> = (0..ALERTS_PER_GATEWAY)
        .map(|_| AlertId::generate())
        .collect();
    let mut clock = HlcClock::default();
    let site = site();
    (0..n)
        .map(|i| {
            let a = i % ALERTS_PER_GATEWAY;
            let severity = severity_of(a);
            let wall = 1_795_000_000_000 + i as u64;
            let at = Timestamp::from_millis(wall as i64);
            let body = match (i / ALERTS_PER_GATEWAY) % 3 {
                0 => AlertEventBody::Raised {
                    key: AlertKey::new(
                        gw.clone(),
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
                origin: gw.clone(),
                hlc: clock.now(wall),
                actor: Actor::System,
                body,
                clamped_from: None,
            };
            (severity.lane(), event)
        })
        .collect()
}

/// One batch as a hub receives it.
struct InBatch {
    peer: NodeId,
    lane: Lane,
    first_seq: u64,
    events: Vec<AlertEvent>,
}

/// About `total` events as batches of up to 500 from 8 gateways in turn, each gateway's
/// lanes numbered as its outbox would number them.
fn hub_batches(total: usize) -> Vec<InBatch> {
    let gateways = 8;
    let per_gateway = total.div_ceil(gateways);
    let mut streams: Vec<Vec<InBatch>> = (0..gateways)
        .map(|g| {
            let peer = NodeId::new(format!("gw-{g}")).expect("node");
            let events = gateway_events(&peer, per_gateway);
            let mut out = Vec::new();
            // The critical lane drains first, as the uplink drains it.
            for lane in [Lane::Critical, Lane::Normal] {
                let lane_events: Vec<AlertEvent> = events
                    .iter()
                    .filter(|(l, _)| *l == lane)
                    .map(|(_, e)| e.clone())
                    .collect();
                let mut seq = 1;
                for chunk in lane_events.chunks(BATCH) {
                    out.push(InBatch {
                        peer: peer.clone(),
                        lane,
                        first_seq: seq,
                        events: chunk.to_vec(),
                    });
                    seq += chunk.len() as u64;
                }
            }
            out.reverse();
            out
        })
        .collect();
    let mut batches = Vec::new();
    while streams.iter().any(|s| !s.is_empty()) {
        for stream in &mut streams {
            if let Some(batch) = stream.pop() {
                batches.push(batch);
            }
        }
    }
    batches
}

fn events_in(batches: &[InBatch]) -> usize {
    batches.iter().map(|b| b.events.len()).sum()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Forwarding {
    None,
    PerEvent,
    PerAlert,
    PerAlertFromHistory,
}

fn store_part(total: usize, full: bool) {
    let batches = hub_batches(total);
    let events = events_in(&batches);
    println!(
        "\n(a) store: apply_batch_and_forward, {} batches of ≤ {BATCH} new events ({events} events, 8 gateways × {ALERTS_PER_GATEWAY} alerts), one fsynced transaction per batch",
        batches.len()
    );
    let escalation = vigil_hub::escalation::EscalationSection {
        min_severity: Severity::Minor,
        ..Default::default()
    };
    let alert_policy = vigil_hub::escalation::policy(escalation);
    for (name, forwarding) in [
        ("no forward link", Forwarding::None),
        ("forward, per-event policy", Forwarding::PerEvent),
        ("forward, hub's per-alert policy", Forwarding::PerAlert),
        (
            "  same, contexts from history",
            Forwarding::PerAlertFromHistory,
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("hub.db")).expect("store");
        let mut contexts_time = Duration::ZERO;
        let mut forwarded = 0;
        let cpu = thread_cpu();
        let start = Instant::now();
        for batch in &batches {
            let outcome = match forwarding {
                Forwarding::None => store.apply_batch_and_forward(
                    &batch.peer,
                    batch.lane,
                    batch.first_seq,
                    &batch.events,
                    None,
                    |_| None,
                ),
                Forwarding::PerEvent => store.apply_batch_and_forward(
                    &batch.peer,
                    batch.lane,
                    batch.first_seq,
                    &batch.events,
                    Some("parent"),
                    |e| match &e.body {
                        AlertEventBody::Raised { severity, .. } if *severity >= Severity::Minor => {
                            Some(severity.lane())
                        }
                        _ => None,
                    },
                ),
                Forwarding::PerAlert => store.apply_batch_and_forward_by_alert(
                    &batch.peer,
                    batch.lane,
                    batch.first_seq,
                    &batch.events,
                    "parent",
                    &alert_policy,
                ),
                Forwarding::PerAlertFromHistory => {
                    let t = Instant::now();
                    let contexts: BTreeMap<AlertId, AlertContext> =
                        AlertContext::load_all(&store, &batch.events).expect("contexts");
                    contexts_time += t.elapsed();
                    store.apply_batch_and_forward(
                        &batch.peer,
                        batch.lane,
                        batch.first_seq,
                        &batch.events,
                        Some("parent"),
                        |e| contexts.get(&e.alert).and_then(|ctx| alert_policy(e, ctx)),
                    )
                }
            }
            .expect("apply");
            assert_eq!(outcome.batch.applied, batch.events.len(), "all new");
            forwarded += outcome.forwarded.len();
        }
        let elapsed = start.elapsed();
        let cpu_us = (thread_cpu() - cpu).as_secs_f64() * 1e6 / events as f64;
        let secs = elapsed.as_secs_f64();
        let per_batch_ms = secs * 1000.0 / batches.len() as f64;
        let extra = if forwarding == Forwarding::PerAlertFromHistory {
            format!(
                ", building contexts {:.0} % of it",
                100.0 * contexts_time.as_secs_f64() / secs
            )
        } else {
            String::new()
        };
        if full {
            println!(
                "  {name:<34} {:>8.0} events/s  ({secs:.2} s, {per_batch_ms:.2} ms/batch, {cpu_us:.1} µs CPU/event, {forwarded} queued up{extra})",
                events as f64 / secs
            );
        } else {
            println!("  {name:<34} smoke: {events} events in {secs:.3} s");
        }
    }
    store_groups(&batches, events, 8, full);
}

/// The store part's grouped variant: `group` batches at a time in one transaction
/// (`apply_batches_and_forward`), as the hub's downlinks commit the batches they find
/// waiting.
fn store_groups(batches: &[InBatch], events: usize, group: usize, full: bool) {
    let escalation = vigil_hub::escalation::EscalationSection {
        min_severity: Severity::Minor,
        ..Default::default()
    };
    let alert_policy = vigil_hub::escalation::policy(escalation);
    // The admitted variants judge every batch as the hub's downlinks do (the gateways bound
    // to their facility): the cost of the site-binding checks, interleaved with the same
    // runs without them, `HUB_INGEST_ROUNDS` times (1 by default).
    let rounds = if full {
        env_usize("HUB_INGEST_ROUNDS", 1)
    } else {
        1
    };
    let variants = [
        (format!("groups of {group}, no forward link"), false, false),
        ("  same, admitted".to_owned(), false, true),
        (format!("groups of {group}, per-alert policy"), true, false),
        ("  same, admitted".to_owned(), true, true),
    ];
    for (name, forward, admitted) in (0..rounds).flat_map(|_| variants.iter().cloned()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("hub.db")).expect("store");
        if admitted {
            let bound: Vec<(NodeId, SitePath)> = (0..8)
                .map(|g| (NodeId::new(format!("gw-{g}")).expect("node"), site()))
                .collect();
            store
                .bindings_sync_config(&bound, Timestamp::now())
                .expect("bind the gateways");
        }
        let hub = NodeId::new("county-baiyun").expect("node");
        // The alerts' children remembered across groups, as the downlinks remember them.
        let known = vigil_link::admission::KnownVias::default();
        let cpu = thread_cpu();
        let start = Instant::now();
        for chunk in batches.chunks(group) {
            let inbound: Vec<InboundBatch<'_>> = chunk
                .iter()
                .map(|b| InboundBatch {
                    peer: &b.peer,
                    lane: b.lane,
                    first_seq: b.first_seq,
                    events: &b.events,
                    audit: &[],
                    bodies: None,
                    directives: Default::default(),
                })
                .collect();
            let mut admission =
                vigil_link::admission::GroupAdmission::new(hub.clone(), known.clone());
            let mut admit = |atx: &vigil_store::AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| {
                admission.admit(atx, b, news)
            };
            let outcomes = store
                .apply_batches_admitted_and_forward(
                    &inbound,
                    forward.then_some("parent"),
                    &alert_policy,
                    admitted.then_some(&mut admit as &mut vigil_store::Admit<'_>),
                )
                .expect("apply");
            known.commit(std::mem::take(&mut admission.learned));
            for (outcome, batch) in outcomes.iter().zip(chunk) {
                assert_eq!(outcome.batch.applied, batch.events.len(), "all new");
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu_us = (thread_cpu() - cpu).as_secs_f64() * 1e6 / events as f64;
        if full {
            println!(
                "  {name:<34} {:>8.0} events/s  ({secs:.2} s, {:.2} ms/batch, {cpu_us:.1} µs CPU/event)",
                events as f64 / secs,
                secs * 1000.0 / batches.len() as f64
            );
        } else {
            println!("  {name:<34} smoke: {events} events in {secs:.3} s");
        }
    }
}

/// A hub's `hub.toml` in `dir`, on ephemeral ports, with a `[parent]` when `parent` is set,
/// its `gateways` children `gw-0` … bound to their facility (`[[child]]`: the hub admits
/// only what a bound child sends).
fn hub_toml(
    dir: &Path,
    id: &str,
    level: &str,
    parent: Option<u16>,
    gateways: usize,
) -> std::path::PathBuf {
    let parent = parent
        .map(|port| format!("\n[parent]\nurl = \"mqtt://127.0.0.1:{port}\"\n"))
        .unwrap_or_default();
    let children: String = (0..gateways)
        .map(|g| format!("\n[[child]]\nnode = \"gw-{g}\"\nsite = \"{}\"\n", site()))
        .collect();
    let text = format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} bench hub\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nlisten = \"127.0.0.1:0\"\n{parent}\n[store]\npath = \"{id}.db\"\n\n[escalation]\nmin_severity = \"minor\"\n{children}"
    );
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).expect("write hub.toml");
    path
}

/// The sum of a counter over its labels. Collects that one counter, not the whole registry:
/// polled every 2 ms, a full `gather` was ~1% of the run's CPU.
fn counter_sum(counter: &prometheus::IntCounterVec) -> f64 {
    use prometheus::core::Collector;
    counter
        .collect()
        .iter()
        .flat_map(|f| f.get_metric().iter())
        .map(|m| m.get_counter().get_value())
        .sum()
}

struct E2e {
    committed: Duration,
    /// The process's CPU time (hub and gateways) until the last commit.
    cpu: Duration,
    acked: Duration,
    queued_up: u64,
}

fn e2e_part(gateways: usize, backlog: usize, full: bool) {
    let total = gateways * backlog;
    println!(
        "\n(b) end to end: {gateways} gateways × {backlog} queued events → one in-process hub (embedded broker, window 4 × {BATCH}), {total} events"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for (name, parent) in [
        ("ministry hub (nothing goes up)", false),
        ("county hub (escalation by alert)", true),
    ] {
        let result = runtime.block_on(e2e_run(gateways, backlog, parent));
        let secs = result.committed.as_secs_f64();
        if full {
            println!(
                "  {name:<34} committed: {:>8.0} events/s ({secs:.2} s, {:.1} µs CPU/event)   all acked at the gateways: {:.2} s   queued up: {}",
                total as f64 / secs,
                result.cpu.as_secs_f64() * 1e6 / total as f64,
                result.acked.as_secs_f64(),
                result.queued_up,
            );
        } else {
            println!("  {name:<34} smoke: {total} events in {secs:.3} s");
        }
    }
}

async fn e2e_run(gateways: usize, backlog: usize, parent: bool) -> E2e {
    let dir = tempfile::tempdir().expect("tempdir");
    // Fill the gateways' outboxes first.
    let mut children = Vec::new();
    for g in 0..gateways {
        let gw = NodeId::new(format!("gw-{g}")).expect("node");
        let store =
            SharedStore::new(Store::open(dir.path().join(format!("gw-{g}.db"))).expect("store"));
        let events = gateway_events(&gw, backlog);
        store
            .call(move |s| s.record_events("parent", &events))
            .await
            .expect("queue the backlog");
        children.push((gw, store));
    }
    // A port nobody listens on, for the county's parent.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (id, level) = if parent {
        ("county-baiyun", "county")
    } else {
        ("ministry", "ministry")
    };
    let config_path = hub_toml(dir.path(), id, level, parent.then_some(dead_port), gateways);
    let config = vigil_hub::config::HubConfig::load(&config_path).expect("hub config");
    let shutdown = CancellationToken::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let hub = tokio::spawn(vigil_hub::run::run(
        config,
        shutdown.clone(),
        Some(started_tx),
    ));
    let started = tokio::time::timeout(Duration::from_secs(20), started_rx)
        .await
        .expect("the hub started in time")
        .expect("the hub started");
    let ingested = started.link.metrics.events_ingested.clone();
    let hub_store = started.link.store.clone();
    // Let the downlinks subscribe before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The hub's broker takes only nodes with a certificate from its CA (created at its
    // start, in `ca/` next to its store): each gateway gets one, as `vigil-agent enroll`
    // would, without the HTTP round trip.
    let ca = vigil_pki::Ca::load(&dir.path().join("ca")).expect("the hub's CA");
    let mut uplinks = Vec::new();
    for (gw, store) in &children {
        let request = vigil_pki::node_key_and_csr(gw).expect("a key and CSR");
        let cert = ca
            .issue_node(&request.csr_pem, gw, Duration::from_secs(3600))
            .expect("a node certificate");
        let mut config = UplinkConfig::new(gw.clone(), started.broker.clone());
        config.tls = Some(
            vigil_pki::client_config(ca.cert_pem(), Some((&cert.cert_pem, &request.key_pem)))
                .expect("the gateway's TLS config"),
        );
        let uplink = Uplink::new(
            config,
            store.clone(),
            LinkMetrics::new(&Registry::new()).expect("metrics"),
        )
        .expect("uplink");
        uplinks.push(uplink);
    }
    let total = (gateways * backlog) as f64;
    let cpu = process_cpu();
    let start = Instant::now();
    let tasks: Vec<_> = uplinks
        .into_iter()
        .map(|u| tokio::spawn(u.run(shutdown.clone())))
        .collect();
    let deadline = start + Duration::from_secs(300);
    while counter_sum(&ingested) < total {
        assert!(Instant::now() < deadline, "the drain stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let committed = start.elapsed();
    let cpu = process_cpu() - cpu;
    for (_, store) in &children {
        loop {
            let backlog = store
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
            assert!(Instant::now() < deadline, "the acks stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let acked = start.elapsed();
    let queued_up = hub_store
        .call(|s| {
            Ok(s.outbox_lane_state("parent", Lane::Critical)?
                .backlog_records
                + s.outbox_lane_state("parent", Lane::Normal)?.backlog_records)
        })
        .await
        .expect("parent backlog");
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let _ = hub.await;
    E2e {
        committed,
        cpu,
        acked,
        queued_up,
    }
}
