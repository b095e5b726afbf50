//! Store throughput on a file database with durable commits (WAL, `synchronous = FULL`), as
//! a node runs it:
//!
//! - `outbox_append_commit_ack/N`: append N records of ~300 bytes in one transaction, then
//!   acknowledge them (a second transaction, as the peer's `Ack` would). Throughput is records
//!   per second; N = 1 is the cost of two fsynced commits per record, N = 1000 shows how far
//!   batching amortises them.
//! - `apply_events/fresh`: `apply_events` of 1000 new events over 100 alerts, in order (the
//!   incremental fold path), events per second.
//! - `apply_events/replayed`: the same call with 1000 events already stored (a resend after a
//!   lost ack): all duplicates.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, Lane,
    NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_store::Store;

const PAYLOAD_BYTES: usize = 300;
const EVENTS_PER_CALL: usize = 1000;
const ALERTS: usize = 100;

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group
}

fn outbox_append_commit_ack(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("outbox-bench.db")).expect("open store");
    let payload = vec![0x5a_u8; PAYLOAD_BYTES];
    let mut group = configure(c, "outbox_append_commit_ack");
    for records in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(records as u64));
        group.bench_with_input(BenchmarkId::from_parameter(records), &records, |b, &n| {
            b.iter(|| {
                let seqs = store
                    .outbox_append_many(
                        "parent",
                        (0..n).map(|_| (Lane::Normal, payload.as_slice())),
                    )
                    .expect("append");
                let last = seqs.last().copied().expect("appended something");
                black_box(store.outbox_ack("parent", Lane::Normal, last).expect("ack"))
            });
        });
    }
    group.finish();
}

/// Makes events for the same `ALERTS` alerts, with ids and stamps that keep increasing
/// from call to call, so every call applies new events in fold order.
struct EventSource {
    next: u64,
    origin: NodeId,
    site: SitePath,
    keys: Vec<AlertKey>,
}

impl EventSource {
    fn new() -> Self {
        let origin = NodeId::new("gw-prison-3").expect("valid node id");
        let keys = (0..ALERTS)
            .map(|i| {
                AlertKey::new(
                    origin.clone(),
                    format!("sensor-{i}/temperature"),
                    ConditionKind::new(ConditionKind::LIMIT_H).expect("valid kind"),
                )
                .expect("valid key")
            })
            .collect();
        EventSource {
            next: 0,
            origin,
            site: SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3")
                .expect("valid site"),
            keys,
        }
    }

    fn batch(&mut self) -> Vec<AlertEvent> {
        (0..EVENTS_PER_CALL)
            .map(|_| {
                self.next += 1;
                let i = self.next;
                let alert_n = (i % ALERTS as u64) as usize;
                let round = i / ALERTS as u64;
                let at = Timestamp::from_millis(1_795_000_000_000 + i as i64);
                let body = match round % 10 {
                    0 => AlertEventBody::Raised {
                        key: self.keys[alert_n].clone(),
                        site: self.site.clone(),
                        severity: Severity::Major,
                        message: "Temperature high".into(),
                        value: Some(Value::Float(31.0)),
                        at,
                        latching: false,
                        zone: Some("block-a".into()),
                        evidence: Vec::new(),
                    },
                    4 => AlertEventBody::Acknowledged { comment: None },
                    9 => AlertEventBody::Cleared {
                        value: Some(Value::Float(25.0)),
                        at,
                    },
                    _ => AlertEventBody::ValueUpdated {
                        value: Some(Value::Float(31.0 + (i % 50) as f64 * 0.1)),
                        severity: None,
                        message: None,
                        at,
                    },
                };
                AlertEvent {
                    id: EventId::from_bytes((0xE << 124 | u128::from(i)).to_be_bytes()),
                    alert: AlertId::from_bytes((0xA << 124 | alert_n as u128).to_be_bytes()),
                    origin: self.origin.clone(),
                    hlc: Hlc::new(1_795_000_000_000 + i, 0),
                    actor: Actor::System,
                    body,
                    clamped_from: None,
                }
            })
            .collect()
    }
}

fn apply_events(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("events-bench.db")).expect("open store");
    let mut source = EventSource::new();
    let mut group = configure(c, "apply_events");
    group.throughput(Throughput::Elements(EVENTS_PER_CALL as u64));
    group.bench_function("fresh", |b| {
        b.iter_batched(
            || source.batch(),
            |events: Vec<AlertEvent>| {
                let stats = store.apply_events(&events).expect("apply");
                assert_eq!(stats.applied, EVENTS_PER_CALL);
                stats
            },
            BatchSize::PerIteration,
        );
    });
    let stored = source.batch();
    store.apply_events(&stored).expect("apply");
    group.bench_function("replayed", |b| {
        b.iter(|| {
            let stats = store.apply_events(&stored).expect("apply");
            assert_eq!(stats.duplicates, EVENTS_PER_CALL);
            stats
        });
    });
    group.finish();
}

criterion_group!(benches, outbox_append_commit_ack, apply_events);
criterion_main!(benches);
