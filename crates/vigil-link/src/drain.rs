//! The async shell around one [`OutboxSender`]: reads the outbox, publishes batches, takes
//! acks into the store. Both ends use it — a child for its uplink (outbox link `parent`,
//! published on `vigil/v1/up/{node}`), a parent for each child's downlink (outbox link
//! `child:{node}`, published on `vigil/v1/down/{child}`).
//!
//! Reading a batch (SQLite), decoding its records and encoding the payload all run on the
//! blocking pool in one call. A record that cannot be sent — it does not decode as a link
//! event, or alone it is too large or carries a timestamp the receiver would refuse — would
//! block its lane forever; it is logged, counted (`vigil_link_undeliverable_total`) and
//! dropped once everything before it is acknowledged. A batch that cannot be encoded is cut
//! in half until it can.

use tokio::time::Instant;
use tracing::{debug, error, warn};
use vigil_core::{Lane, NodeId, Timestamp};
use vigil_store::{LaneCursors, Store, StoreError};
use vigil_wire::{try_encode, Ack, Backlog, Batch, LinkEvent, Message};

use crate::error::LinkError;
use crate::metrics::LinkMetrics;
use crate::mqtt;
use crate::sender::{AckDecision, OutboxSender, ReadPlan, SenderConfig};
use crate::store::SharedStore;

/// What a pump round ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// Nothing more to send now (window full, outbox drained or disconnected).
    Idle,
    /// The MQTT client's queue was full: try again shortly.
    Blocked,
}

/// One outbox link being drained onto one topic.
#[derive(Debug)]
pub(crate) struct OutboxLink {
    /// The outbox link (`parent`, `child:{node}`).
    pub name: String,
    /// Where batches are published.
    pub topic: String,
    /// This node: the sender named in every batch.
    pub node: NodeId,
    /// The protocol state.
    pub sender: OutboxSender,
    /// When the peer last acknowledged something.
    pub last_ack_at: Option<Timestamp>,
}

/// A batch ready to publish, or why there is none.
enum Prepared {
    Batch {
        lane: Lane,
        first_seq: u64,
        last_seq: u64,
        events: usize,
        /// How many of the events are audit records.
        audit: usize,
        payload: Vec<u8>,
    },
    /// Nothing to send after the cursors (or a bad record waits for the acks before it).
    Empty,
    /// The next record cannot be sent and everything before it is acknowledged.
    Undeliverable {
        lane: Lane,
        seq: u64,
        reason: String,
    },
}

impl OutboxLink {
    /// A link resuming after the store's acknowledged positions.
    pub async fn open(
        name: String,
        topic: String,
        node: NodeId,
        config: SenderConfig,
        store: &SharedStore,
    ) -> Result<OutboxLink, LinkError> {
        let link = name.clone();
        let acked = store.call(move |s| s.outbox_acked(&link)).await?;
        debug!(link = %name, critical = acked.critical, normal = acked.normal, "outbox resumes after the last ack");
        Ok(OutboxLink {
            name,
            topic,
            node,
            sender: OutboxSender::new(config, acked),
            last_ack_at: None,
        })
    }

    /// Publishes batches while the sender wants them.
    pub async fn pump(
        &mut self,
        store: &SharedStore,
        client: &rumqttc::AsyncClient,
        metrics: &LinkMetrics,
    ) -> Pumped {
        while let Some(plan) = self.sender.next_read() {
            let prepared = self.prepare(store, plan).await;
            match prepared {
                Err(err) => {
                    // Transient store trouble: wait for the next poke or poll.
                    warn!(link = %self.name, error = %err, "cannot read the outbox; retrying later");
                    self.sender.on_read_empty();
                    return Pumped::Idle;
                }
                Ok(Prepared::Empty) => self.sender.on_read_empty(),
                Ok(Prepared::Undeliverable { lane, seq, reason }) => {
                    error!(link = %self.name, %lane, seq, %reason,
                           "outbox record cannot be sent to the peer; dropping it");
                    metrics
                        .undeliverable
                        .with_label_values(&[self.name.as_str(), lane.as_str()])
                        .inc();
                    let link = self.name.clone();
                    match store.call(move |s| s.outbox_ack(&link, lane, seq)).await {
                        Ok(outcome) => self.sender.on_store_acked(lane, outcome.acked_upto()),
                        Err(err) => {
                            warn!(link = %self.name, error = %err, "cannot drop the record; retrying later");
                            self.sender.on_read_empty();
                            return Pumped::Idle;
                        }
                    }
                }
                Ok(Prepared::Batch {
                    lane,
                    first_seq,
                    last_seq,
                    events,
                    audit,
                    payload,
                }) => {
                    if !mqtt::try_publish(client, &self.topic, false, payload) {
                        return Pumped::Blocked;
                    }
                    self.sender
                        .on_sent(lane, first_seq, last_seq, events, Instant::now());
                    metrics.sent(&self.name, lane, events);
                    metrics.audit_sent(&self.name, audit);
                    debug!(node = %self.node, link = %self.name, %lane, first_seq, last_seq, "batch sent");
                }
            }
        }
        Pumped::Idle
    }

    async fn prepare(&self, store: &SharedStore, plan: ReadPlan) -> Result<Prepared, LinkError> {
        let link = self.name.clone();
        let node = self.node.clone();
        let config = *self.sender.config();
        let acked = self.sender.acked();
        store
            .call(move |s| prepare(s, &link, &node, plan, acked, &config))
            .await
    }

    /// Takes an ack from the peer: deletes what it acknowledges from the outbox.
    pub async fn on_ack(&mut self, ack: Ack, store: &SharedStore, metrics: &LinkMetrics) {
        metrics
            .acks_received
            .with_label_values(&[self.name.as_str(), ack.lane.as_str()])
            .inc();
        let now = Instant::now();
        match self.sender.on_ack(ack, now) {
            AckDecision::Stale => {
                debug!(link = %self.name, lane = %ack.lane, upto = ack.upto_seq, "stale ack");
            }
            AckDecision::Advance {
                lane,
                upto,
                completed,
            } => {
                let link = self.name.clone();
                match store.call(move |s| s.outbox_ack(&link, lane, upto)).await {
                    Ok(outcome) => {
                        self.sender.on_store_acked(lane, outcome.acked_upto());
                        self.last_ack_at = Some(Timestamp::now());
                        let labels = [self.name.as_str(), lane.as_str()];
                        if let vigil_store::AckOutcome::Advanced {
                            deleted_records, ..
                        } = outcome
                        {
                            metrics
                                .events_acked
                                .with_label_values(&labels)
                                .inc_by(deleted_records);
                        }
                        metrics
                            .batches_acked
                            .with_label_values(&labels)
                            .inc_by(completed.len() as u64);
                        let rtt = metrics.ack_rtt.with_label_values(&[self.name.as_str()]);
                        for batch in &completed {
                            rtt.observe(now.duration_since(batch.sent_at).as_secs_f64());
                        }
                    }
                    Err(err) => {
                        warn!(link = %self.name, %lane, upto, error = %err,
                              "the store refused the peer's ack; resending from the stored position");
                        metrics.resend(&self.name, "store_error");
                        self.resync(store).await;
                    }
                }
            }
        }
    }

    /// Restarts from the store's acknowledged positions.
    pub async fn resync(&mut self, store: &SharedStore) {
        let link = self.name.clone();
        match store.call(move |s| s.outbox_acked(&link)).await {
            Ok(acked) => self.sender.resync(acked),
            Err(err) => {
                warn!(link = %self.name, error = %err, "cannot read the acknowledged positions");
                let acked = self.sender.acked();
                self.sender.resync(acked);
            }
        }
    }

    /// Checks the ack timeout.
    pub fn on_tick(&mut self, now: Instant, metrics: &LinkMetrics) {
        if let Some(timeout) = self.sender.on_tick(now) {
            debug!(link = %self.name, batches = timeout.batches, in_a_row = timeout.in_a_row,
                   next_timeout_ms = self.sender.ack_timeout().as_millis() as u64,
                   "no ack in time; resending from the last ack");
            metrics.resend(&self.name, "timeout");
        }
    }

    /// The outbox backlog, also published as a gauge.
    pub async fn backlog(
        &self,
        store: &SharedStore,
        metrics: &LinkMetrics,
    ) -> Result<Backlog, LinkError> {
        let link = self.name.clone();
        let backlog = store
            .call(move |s| {
                Ok(Backlog {
                    critical: s.outbox_lane_state(&link, Lane::Critical)?.backlog_records,
                    normal: s.outbox_lane_state(&link, Lane::Normal)?.backlog_records,
                })
            })
            .await?;
        metrics.set_backlog(&self.name, Lane::Critical, backlog.critical);
        metrics.set_backlog(&self.name, Lane::Normal, backlog.normal);
        Ok(backlog)
    }
}

/// Reads, decodes and encodes the next batch (on the blocking pool).
fn prepare(
    store: &Store,
    link: &str,
    node: &NodeId,
    plan: ReadPlan,
    acked: LaneCursors,
    config: &SenderConfig,
) -> Result<Prepared, StoreError> {
    for &lane in plan.lanes {
        let records = store.outbox_read(
            link,
            lane,
            plan.after.get(lane),
            config.max_batch_events,
            config.max_batch_bytes,
        )?;
        let Some(first) = records.first() else {
            continue;
        };
        let first_seq = first.seq;
        let mut events = Vec::with_capacity(records.len());
        let mut bad = None;
        for record in &records {
            match serde_json::from_slice::<LinkEvent>(&record.payload) {
                Ok(event) => events.push(event),
                Err(err) => {
                    bad = Some((record.seq, format!("not a link event: {err}")));
                    break;
                }
            }
        }
        if events.is_empty() {
            let (seq, reason) = bad.unwrap_or((first_seq, "empty read".to_owned()));
            return Ok(undeliverable(lane, seq, reason, acked));
        }
        loop {
            let count = events.len();
            let audit = events
                .iter()
                .filter(|e| matches!(e, LinkEvent::Audit(_)))
                .count();
            let batch = match Batch::new(node.clone(), lane, first_seq, events) {
                Ok(batch) => batch,
                // Unreachable with a validated config; keep the lane moving regardless.
                Err(err) => return Ok(undeliverable(lane, first_seq, err.to_string(), acked)),
            };
            let message = Message::Batch(batch);
            match try_encode(&message) {
                Ok(payload) => {
                    return Ok(Prepared::Batch {
                        lane,
                        first_seq,
                        last_seq: first_seq + (count as u64 - 1),
                        events: count,
                        audit,
                        payload,
                    })
                }
                Err(err) if count == 1 => {
                    return Ok(undeliverable(lane, first_seq, err.to_string(), acked));
                }
                Err(_) => {
                    let Message::Batch(batch) = message else {
                        return Ok(Prepared::Empty);
                    };
                    events = batch.into_events();
                    events.truncate(count / 2);
                }
            }
        }
    }
    Ok(Prepared::Empty)
}

/// A record at `seq` that cannot be sent: dropped if everything before it is acknowledged,
/// otherwise the lane waits for those acks.
fn undeliverable(lane: Lane, seq: u64, reason: String, acked: LaneCursors) -> Prepared {
    if acked.get(lane).saturating_add(1) == seq {
        Prepared::Undeliverable { lane, seq, reason }
    } else {
        Prepared::Empty
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEvent, AlertEventBody, AlertId, EventId, Hlc};
    use vigil_wire::{decode, MAX_PAYLOAD_BYTES};

    use super::*;

    fn event(i: u8) -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([i; 16]),
            alert: AlertId::from_bytes([0xA; 16]),
            origin: NodeId::new("gw-1").expect("valid"),
            hlc: Hlc::new(1_795_000_000_000 + u64::from(i), 0),
            actor: Actor::System,
            body: AlertEventBody::Commented {
                text: format!("note {i}"),
            },
            clamped_from: None,
        }
    }

    fn plan(after: LaneCursors) -> ReadPlan {
        ReadPlan {
            after,
            lanes: &Lane::ALL,
        }
    }

    fn node() -> NodeId {
        NodeId::new("gw-1").expect("valid")
    }

    #[test]
    fn a_batch_is_read_critical_first_and_encoded() {
        let mut s = Store::open_in_memory().expect("open");
        s.record_events(
            "parent",
            &[(Lane::Normal, event(1)), (Lane::Critical, event(2))],
        )
        .expect("record");
        let config = SenderConfig::default();
        let Prepared::Batch {
            lane,
            first_seq,
            last_seq,
            events,
            audit,
            payload,
        } = prepare(
            &s,
            "parent",
            &node(),
            plan(LaneCursors::default()),
            LaneCursors::default(),
            &config,
        )
        .expect("read")
        else {
            panic!("expected a batch");
        };
        assert_eq!(
            (lane, first_seq, last_seq, events, audit),
            (Lane::Critical, 1, 1, 1, 0)
        );
        let Ok(Message::Batch(batch)) = decode(&payload) else {
            panic!("a batch payload");
        };
        assert_eq!(batch.events(), &[LinkEvent::Alert(event(2))]);
        let critical_only = ReadPlan {
            after: LaneCursors {
                critical: 1,
                normal: 0,
            },
            lanes: &[Lane::Critical],
        };
        assert!(matches!(
            prepare(
                &s,
                "parent",
                &node(),
                critical_only,
                LaneCursors::default(),
                &config
            ),
            Ok(Prepared::Empty)
        ));
    }

    #[test]
    fn a_record_that_is_not_a_link_event_cuts_the_batch_then_is_dropped_in_turn() {
        let mut s = Store::open_in_memory().expect("open");
        s.record_events("parent", &[(Lane::Normal, event(1))])
            .expect("record");
        s.outbox_append("parent", Lane::Normal, b"{not json")
            .expect("append");
        let config = SenderConfig::default();
        let Ok(Prepared::Batch { last_seq, .. }) = prepare(
            &s,
            "parent",
            &node(),
            plan(LaneCursors::default()),
            LaneCursors::default(),
            &config,
        ) else {
            panic!("the good prefix is sent");
        };
        assert_eq!(last_seq, 1);
        let after = LaneCursors {
            critical: 0,
            normal: 1,
        };
        // Record 1 is not acknowledged yet: wait.
        assert!(matches!(
            prepare(
                &s,
                "parent",
                &node(),
                plan(after),
                LaneCursors::default(),
                &config
            ),
            Ok(Prepared::Empty)
        ));
        // Now it is: record 2 is dropped.
        assert!(matches!(
            prepare(&s, "parent", &node(), plan(after), after, &config),
            Ok(Prepared::Undeliverable {
                lane: Lane::Normal,
                seq: 2,
                ..
            })
        ));
    }

    #[test]
    fn a_batch_too_large_to_encode_is_halved() {
        let mut s = Store::open_in_memory().expect("open");
        let big = |i: u8| {
            let mut e = event(i);
            e.body = AlertEventBody::Commented {
                text: "x".repeat(MAX_PAYLOAD_BYTES / 3),
            };
            (Lane::Normal, e)
        };
        s.record_events("parent", &[big(1), big(2), big(3), big(4)])
            .expect("record");
        // No byte budget (a validated config never allows this): the encoder's limit cuts.
        let config = SenderConfig {
            max_batch_bytes: usize::MAX,
            ..SenderConfig::default()
        };
        let Ok(Prepared::Batch {
            events,
            last_seq,
            payload,
            ..
        }) = prepare(
            &s,
            "parent",
            &node(),
            plan(LaneCursors::default()),
            LaneCursors::default(),
            &config,
        )
        else {
            panic!("a batch");
        };
        assert_eq!((events, last_seq), (2, 2), "four halved to two");
        assert!(payload.len() <= MAX_PAYLOAD_BYTES);
        // A single record beyond the payload limit is undeliverable.
        let mut huge = event(9);
        huge.body = AlertEventBody::Commented {
            text: "y".repeat(MAX_PAYLOAD_BYTES + 1),
        };
        let mut s2 = Store::open_in_memory().expect("open");
        s2.record_events("parent", &[(Lane::Critical, huge)])
            .expect("record");
        assert!(matches!(
            prepare(
                &s2,
                "parent",
                &node(),
                plan(LaneCursors::default()),
                LaneCursors::default(),
                &config
            ),
            Ok(Prepared::Undeliverable {
                lane: Lane::Critical,
                seq: 1,
                ..
            })
        ));
    }
}
