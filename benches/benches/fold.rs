//! Fold throughput: how many alert events per second the ISA-18.2 fold applies.
//!
//! Two shapes: a full refold of one alert's event set (what a replica does when events
//! arrive out of order), and in-order incremental application (the common ingest path).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, AlertView, ConditionKind, EventId, Hlc,
    NodeId, Severity, SitePath, Timestamp, Value,
};

/// A realistic life of one alert: raise, value updates, ack, clear, re-raise, shelve….
fn events(alert: AlertId, n: usize) -> Vec<AlertEvent> {
    let origin = NodeId::new("gw-prison-3").expect("valid");
    let key = AlertKey::new(
        origin.clone(),
        "env-1/temperature",
        ConditionKind::new(ConditionKind::LIMIT_H).expect("valid"),
    )
    .expect("valid");
    let site = SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("valid");
    (0..n)
        .map(|i| {
            let at = Timestamp::from_millis(1_795_000_000_000 + i as i64);
            let body = match i % 8 {
                0 => AlertEventBody::Raised {
                    key: key.clone(),
                    site: site.clone(),
                    severity: Severity::Major,
                    message: "Temperature high".into(),
                    value: Some(Value::Float(31.0)),
                    at,
                    latching: false,
                    zone: Some("block-a".into()),
                    evidence: Vec::new(),
                },
                1..=3 => AlertEventBody::ValueUpdated {
                    value: Some(Value::Float(31.0 + i as f64 * 0.1)),
                    severity: None,
                    message: None,
                    at,
                },
                4 => AlertEventBody::Acknowledged { comment: None },
                5 => AlertEventBody::Commented {
                    text: "checked".into(),
                },
                6 => AlertEventBody::Cleared {
                    value: Some(Value::Float(25.0)),
                    at,
                },
                _ => AlertEventBody::Shelved {
                    until: at.plus_millis(60_000),
                    reason: None,
                },
            };
            AlertEvent {
                id: EventId::from_uuid(uuid_from(i)),
                alert,
                origin: origin.clone(),
                hlc: Hlc::new(1_795_000_000_000 + (i / 3) as u64, (i % 3) as u16),
                actor: Actor::System,
                body,
                clamped_from: None,
            }
        })
        .collect()
}

fn uuid_from(i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128)
}

fn bench_fold(c: &mut Criterion) {
    let mut group = c.benchmark_group("fold");
    group.sample_size(20);
    let alert = AlertId::from_bytes([7; 16]);
    for n in [10usize, 100, 1000] {
        let mut evs = events(alert, n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("incremental_in_order", n),
            &evs,
            |b, evs| {
                b.iter(|| {
                    let mut view = AlertView::empty(alert);
                    for e in evs {
                        view.apply(e).expect("in order");
                    }
                    black_box(view)
                })
            },
        );
        evs.reverse();
        group.bench_with_input(BenchmarkId::new("refold_reversed", n), &evs, |b, evs| {
            b.iter(|| black_box(AlertView::fold(alert, evs)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fold);
criterion_main!(benches);
