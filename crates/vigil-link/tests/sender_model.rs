//! A model check of the pure sender: `OutboxSender` against an in-memory outbox and receiver
//! over a channel that loses messages, drops connections and delays acks, for many seeds.
//!
//! Checked at every step: acks never pass what was appended; a normal batch is sent only
//! when every critical record appended so far is committed at the receiver; the window
//! holds (one critical batch may go beyond a window full of normal batches). Checked at the end, after the faults stop: every record of both lanes is committed
//! at the receiver and acknowledged at the sender.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use vigil_core::Lane;
use vigil_link::sender::{AckDecision, OutboxSender, SenderConfig};
use vigil_store::LaneCursors;
use vigil_wire::Ack;

#[derive(Debug, Clone, Copy)]
struct Wire {
    lane: Lane,
    first: u64,
    last: u64,
}

/// The receiving store: a cursor per lane, as `Store::apply_batch` keeps it.
#[derive(Debug, Default)]
struct Receiver {
    cursor: LaneCursors,
    applied: u64,
}

impl Receiver {
    fn apply(&mut self, batch: Wire) -> Ack {
        let cursor = self.cursor.get(batch.lane);
        if batch.first > cursor + 1 {
            return Ack::new(batch.lane, cursor);
        }
        if batch.last > cursor {
            self.applied += batch.last - cursor;
            self.cursor.set(batch.lane, batch.last);
        }
        Ack::new(batch.lane, self.cursor.get(batch.lane))
    }
}

struct Model {
    rng: StdRng,
    sender: OutboxSender,
    head: LaneCursors,
    store_acked: LaneCursors,
    receiver: Receiver,
    to_receiver: VecDeque<Wire>,
    to_sender: VecDeque<Ack>,
    connected: bool,
    now: Instant,
    config: SenderConfig,
}

impl Model {
    fn new(seed: u64) -> Model {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = SenderConfig {
            window: rng.random_range(1..=5),
            max_batch_events: rng.random_range(1..=20),
            max_batch_bytes: 1 << 20,
            ack_timeout: Duration::from_millis(100),
            ack_timeout_max: Duration::from_millis(800),
        };
        Model {
            rng,
            sender: OutboxSender::new(config, LaneCursors::default()),
            head: LaneCursors::default(),
            store_acked: LaneCursors::default(),
            receiver: Receiver::default(),
            to_receiver: VecDeque::new(),
            to_sender: VecDeque::new(),
            connected: false,
            now: Instant::now(),
            config,
        }
    }

    /// What the link shell does with `next_read`: read the outbox, publish.
    fn pump(&mut self) {
        while let Some(plan) = self.sender.next_read() {
            let mut sent = false;
            for &lane in plan.lanes {
                let after = plan.after.get(lane);
                if self.head.get(lane) > after {
                    let last = self
                        .head
                        .get(lane)
                        .min(after + self.config.max_batch_events as u64);
                    if lane == Lane::Normal {
                        assert_eq!(
                            self.receiver.cursor.critical, self.head.critical,
                            "a normal batch is sent only once every critical record is committed"
                        );
                    }
                    self.sender
                        .on_sent(lane, after + 1, last, (last - after) as usize, self.now);
                    let critical = self
                        .sender
                        .in_flight()
                        .filter(|f| f.lane == Lane::Critical)
                        .count();
                    assert!(
                        self.sender.in_flight_len() - critical <= self.config.window
                            && critical <= self.config.window
                            && self.sender.in_flight_len() <= self.config.window + 1,
                        "the window holds (one critical batch may go beyond a full one)"
                    );
                    self.to_receiver.push_back(Wire {
                        lane,
                        first: after + 1,
                        last,
                    });
                    sent = true;
                    break;
                }
            }
            if !sent {
                self.sender.on_read_empty();
            }
        }
    }

    fn take_ack(&mut self, ack: Ack) {
        if let AckDecision::Advance { lane, upto, .. } = self.sender.on_ack(ack, self.now) {
            assert!(upto <= self.head.get(lane), "ack beyond the head");
            let stored = self.store_acked.get(lane).max(upto);
            self.store_acked.set(lane, stored);
            self.sender.on_store_acked(lane, stored);
        }
    }

    fn step(&mut self, faults: bool) {
        let roll: f64 = self.rng.random();
        match roll {
            r if r < 0.15 && faults => {
                let lane = if self.rng.random_bool(0.3) {
                    Lane::Critical
                } else {
                    Lane::Normal
                };
                let n = self.rng.random_range(1..=30);
                self.head.set(lane, self.head.get(lane) + n);
                self.sender.poke();
            }
            r if r < 0.45 => {
                if let Some(batch) = self.to_receiver.pop_front() {
                    if faults && self.rng.random_bool(0.05) {
                        return; // lost: the parent's subscription missed it
                    }
                    let ack = self.receiver.apply(batch);
                    self.to_sender.push_back(ack);
                }
            }
            r if r < 0.75 => {
                if let Some(ack) = self.to_sender.pop_front() {
                    if faults && self.rng.random_bool(0.05) {
                        return;
                    }
                    self.take_ack(ack);
                }
            }
            r if r < 0.78 && faults => {
                // The connection drops: what was on the wire is gone.
                self.to_receiver.clear();
                self.to_sender.clear();
                self.connected = false;
                self.sender.on_disconnected();
            }
            _ => {
                self.now += Duration::from_millis(self.rng.random_range(1..=60));
                self.sender.on_tick(self.now);
            }
        }
        if !self.connected && (!faults || self.rng.random_bool(0.3)) {
            self.connected = true;
            self.sender.on_connected(self.now);
        }
        self.pump();
    }
}

#[test]
fn every_record_is_committed_and_acknowledged_critical_first_under_faults() {
    for seed in 0..300u64 {
        let mut model = Model::new(seed);
        for _ in 0..2_000 {
            model.step(true);
        }
        let mut settled = false;
        for _ in 0..200_000 {
            model.step(false);
            if model.store_acked == model.head && model.sender.in_flight_len() == 0 {
                settled = true;
                break;
            }
        }
        assert!(
            settled,
            "seed {seed}: head {:?}, acked {:?}, receiver {:?}, config {:?}",
            model.head, model.store_acked, model.receiver.cursor, model.config
        );
        assert_eq!(model.receiver.cursor, model.head, "seed {seed}");
        assert_eq!(
            model.receiver.applied,
            model.head.critical + model.head.normal,
            "seed {seed}: each record committed once"
        );
    }
}
