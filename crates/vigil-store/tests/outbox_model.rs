//! A model check of the outbox: random operations run against a file store and against an
//! obviously-correct in-memory model (a `VecDeque` per link and lane), and after every step
//! the two must agree — heads, acknowledged positions, backlogs, the records themselves, and
//! every batch read. Reopening the file in between must lose nothing.

use std::collections::{HashMap, VecDeque};

use proptest::prelude::*;
use vigil_core::Lane;
use vigil_store::{AckOutcome, LaneCursors, LaneState, OutboxRecord, Store, StoreError};

const LINKS: [&str; 2] = ["parent", "child:county-baiyun"];

#[derive(Debug, Clone)]
enum Op {
    Append {
        link: usize,
        lane: Lane,
        payload: Vec<u8>,
    },
    AppendMany {
        link: usize,
        items: Vec<(Lane, Vec<u8>)>,
    },
    /// Acknowledge up to `acked + delta` (below zero clamps to 0; `None`: `u64::MAX`).
    Ack {
        link: usize,
        lane: Lane,
        delta: Option<i64>,
    },
    Read {
        link: usize,
        lane: Lane,
        after_delta: i64,
        max_items: usize,
        max_bytes: usize,
    },
    NextBatch {
        link: usize,
        critical_delta: i64,
        normal_delta: i64,
        max_items: usize,
        max_bytes: usize,
    },
    Reopen,
}

fn lane() -> impl Strategy<Value = Lane> {
    prop_oneof![Just(Lane::Critical), Just(Lane::Normal)]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

fn op() -> impl Strategy<Value = Op> {
    let link = 0..LINKS.len();
    prop_oneof![
        4 => (link.clone(), lane(), payload()).prop_map(|(link, lane, payload)| Op::Append { link, lane, payload }),
        2 => (link.clone(), prop::collection::vec((lane(), payload()), 0..8))
            .prop_map(|(link, items)| Op::AppendMany { link, items }),
        3 => (link.clone(), lane(), prop::option::weighted(0.95, -2i64..8))
            .prop_map(|(link, lane, delta)| Op::Ack { link, lane, delta }),
        2 => (link.clone(), lane(), -2i64..8, 0usize..5, 0usize..120)
            .prop_map(|(link, lane, after_delta, max_items, max_bytes)| Op::Read { link, lane, after_delta, max_items, max_bytes }),
        2 => (link, -2i64..6, -2i64..6, 0usize..5, 0usize..120)
            .prop_map(|(link, critical_delta, normal_delta, max_items, max_bytes)| Op::NextBatch { link, critical_delta, normal_delta, max_items, max_bytes }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Default)]
struct LaneModel {
    head: u64,
    acked: u64,
    records: VecDeque<(u64, Vec<u8>)>,
}

impl LaneModel {
    fn state(&self) -> LaneState {
        LaneState {
            acked_upto: self.acked,
            head_seq: self.head,
            backlog_records: self.records.len() as u64,
            backlog_bytes: self.records.iter().map(|(_, p)| p.len() as u64).sum(),
        }
    }

    fn append(&mut self, payload: Vec<u8>) -> u64 {
        self.head += 1;
        self.records.push_back((self.head, payload));
        self.head
    }

    /// The documented read rule: records after `after`, at most `max(max_items, 1)`, adding
    /// each while the payloads stay within `max_bytes`, but always the first.
    fn read(&self, after: u64, max_items: usize, max_bytes: usize) -> Vec<OutboxRecord> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (seq, payload) in self.records.iter().filter(|(seq, _)| *seq > after) {
            if out.len() == max_items.max(1)
                || (!out.is_empty() && bytes + payload.len() > max_bytes)
            {
                break;
            }
            bytes += payload.len();
            out.push(OutboxRecord {
                seq: *seq,
                payload: payload.clone(),
            });
        }
        out
    }
}

type Model = HashMap<(usize, Lane), LaneModel>;

fn relative(base: u64, delta: i64) -> u64 {
    base.saturating_add_signed(delta)
}

/// Compares every lane of every link, state and contents.
fn check_all(store: &Store, model: &mut Model) -> Result<(), TestCaseError> {
    for link in 0..LINKS.len() {
        for lane in Lane::ALL {
            let m = model.entry((link, lane)).or_default();
            let state = store
                .outbox_lane_state(LINKS[link], lane)
                .expect("lane state");
            prop_assert_eq!(state, m.state(), "{} {}", LINKS[link], lane);
            let all = store
                .outbox_read(LINKS[link], lane, 0, usize::MAX, usize::MAX)
                .expect("read all");
            prop_assert_eq!(all, m.read(0, usize::MAX, usize::MAX));
        }
        let acked = store.outbox_acked(LINKS[link]).expect("acked");
        prop_assert_eq!(acked.critical, model[&(link, Lane::Critical)].acked);
        prop_assert_eq!(acked.normal, model[&(link, Lane::Normal)].acked);
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outbox.db");
    let mut store = Store::open(&path).expect("open");
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Append {
                link,
                lane,
                payload,
            } => {
                let seq = store
                    .outbox_append(LINKS[link], lane, &payload)
                    .expect("append");
                let expected = model.entry((link, lane)).or_default().append(payload);
                prop_assert_eq!(seq, expected);
            }
            Op::AppendMany { link, items } => {
                let seqs = store
                    .outbox_append_many(LINKS[link], items.iter().map(|(l, p)| (*l, p.as_slice())))
                    .expect("append many");
                let expected: Vec<u64> = items
                    .into_iter()
                    .map(|(lane, p)| model.entry((link, lane)).or_default().append(p))
                    .collect();
                prop_assert_eq!(seqs, expected);
            }
            Op::Ack { link, lane, delta } => {
                let m = model.entry((link, lane)).or_default();
                let upto = delta.map_or(u64::MAX, |d| relative(m.acked, d));
                let result = store.outbox_ack(LINKS[link], lane, upto);
                if upto <= m.acked {
                    prop_assert_eq!(
                        result.expect("stale ack"),
                        AckOutcome::Stale {
                            acked_upto: m.acked
                        }
                    );
                } else if upto > m.head {
                    let err = result.expect_err("ack beyond head");
                    let beyond = matches!(err, StoreError::AckBeyondHead { upto: u, head, .. } if u == upto && head == m.head);
                    prop_assert!(beyond, "{}", err);
                } else {
                    let mut deleted_records = 0;
                    let mut deleted_bytes = 0;
                    while m.records.front().is_some_and(|(seq, _)| *seq <= upto) {
                        if let Some((_, p)) = m.records.pop_front() {
                            deleted_records += 1;
                            deleted_bytes += p.len() as u64;
                        }
                    }
                    let previous = m.acked;
                    m.acked = upto;
                    prop_assert_eq!(
                        result.expect("ack"),
                        AckOutcome::Advanced {
                            previous,
                            acked_upto: upto,
                            deleted_records,
                            deleted_bytes
                        }
                    );
                }
            }
            Op::Read {
                link,
                lane,
                after_delta,
                max_items,
                max_bytes,
            } => {
                let m = model.entry((link, lane)).or_default();
                let after = relative(m.acked, after_delta);
                let got = store
                    .outbox_read(LINKS[link], lane, after, max_items, max_bytes)
                    .expect("read");
                let want = m.read(after, max_items, max_bytes);
                prop_assert_eq!(&got, &want);
                let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
                prop_assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "consecutive");
            }
            Op::NextBatch {
                link,
                critical_delta,
                normal_delta,
                max_items,
                max_bytes,
            } => {
                let mut after = LaneCursors::default();
                for (lane, delta) in [
                    (Lane::Critical, critical_delta),
                    (Lane::Normal, normal_delta),
                ] {
                    after.set(
                        lane,
                        relative(model.entry((link, lane)).or_default().acked, delta),
                    );
                }
                let batch = store
                    .outbox_next_batch(LINKS[link], after, max_items, max_bytes)
                    .expect("next batch");
                let critical =
                    model[&(link, Lane::Critical)].read(after.critical, max_items, max_bytes);
                let normal = model[&(link, Lane::Normal)].read(after.normal, max_items, max_bytes);
                match batch {
                    None => prop_assert!(critical.is_empty() && normal.is_empty()),
                    Some(batch) => {
                        // Critical before normal: a normal batch only when critical is drained.
                        if batch.lane == Lane::Normal {
                            prop_assert!(
                                critical.is_empty(),
                                "normal batch while critical has records"
                            );
                        }
                        let want = if critical.is_empty() {
                            (Lane::Normal, normal)
                        } else {
                            (Lane::Critical, critical)
                        };
                        prop_assert_eq!(batch.lane, want.0);
                        prop_assert_eq!(batch.first_seq, want.1[0].seq);
                        prop_assert_eq!(batch.last_seq(), want.1[want.1.len() - 1].seq);
                        prop_assert_eq!(batch.records, want.1);
                    }
                }
            }
            Op::Reopen => {
                drop(store);
                store = Store::open(&path).expect("reopen");
            }
        }
        check_all(&store, &mut model)?;
    }
    // Finally drain everything as a link engine would, and check nothing is left behind.
    for link in 0..LINKS.len() {
        let mut cursors = store.outbox_acked(LINKS[link]).expect("acked");
        let mut seen = 0;
        while let Some(batch) = store
            .outbox_next_batch(LINKS[link], cursors, 3, 64)
            .expect("batch")
        {
            seen += batch.records.len();
            cursors.set(batch.lane, batch.last_seq());
            store
                .outbox_ack(LINKS[link], batch.lane, batch.last_seq())
                .expect("ack");
        }
        let expected: usize = Lane::ALL
            .iter()
            .map(|lane| model[&(link, *lane)].records.len())
            .sum();
        prop_assert_eq!(seen, expected);
        for lane in Lane::ALL {
            let state = store.outbox_lane_state(LINKS[link], lane).expect("state");
            prop_assert_eq!((state.backlog_records, state.backlog_bytes), (0, 0));
            prop_assert_eq!(state.acked_upto, state.head_seq);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_outbox_behaves_like_its_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
