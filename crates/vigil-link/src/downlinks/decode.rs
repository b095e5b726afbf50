//! The children's publishes decoded off the downlinks loop, on a thread of their own
//! ([`spawn_decoder`]), into what the loop handles ([`Incoming`]).

use std::time::Duration;

use tokio::sync::mpsc;
use vigil_core::{AlertEvent, Lane, NodeId};
use vigil_wire::{Ack, Batch};

use crate::error::LinkError;
use crate::inbound::{self, ParentInbound};
use crate::mqtt::MqttEvent;
use crate::receiver::{GroupItem, MAX_GROUP_BATCHES};
use crate::uplink::split_events;

/// The connection's events as the downlinks loop takes them: each publish already decoded.
pub(super) enum Incoming {
    /// The broker accepted the connection.
    Connected,
    /// The connection failed or dropped.
    Disconnected { error: String, retry_in: Duration },
    /// A child's batch.
    Batch(Received),
    /// A child's ack of downlink batches.
    Ack { child: NodeId, ack: Ack },
    /// A child's status.
    Status {
        child: NodeId,
        status: vigil_wire::Status,
    },
    /// A publish that does not decode or is not for a parent: counted and dropped.
    Refused {
        topic: String,
        error: inbound::InboundError,
    },
}

/// How many decoded events may wait for the downlinks loop: a few groups of batches.
const DECODED_QUEUE: usize = 2 * MAX_GROUP_BATCHES;

/// Decodes the connection's publishes on a thread of their own, in arrival order, while the
/// downlinks loop waits for the store to commit the previous group: the children's next
/// batches are parsed on one core as the current group is written on the other, instead of
/// in turn. The thread ends when the connection's pump does (its channel closes) or when
/// the loop stops taking what it decodes.
pub(super) fn spawn_decoder(
    mut events: mpsc::Receiver<MqttEvent>,
) -> Result<mpsc::Receiver<Incoming>, LinkError> {
    const NAME: &str = "vigil-link-decode";
    let (tx, rx) = mpsc::channel(DECODED_QUEUE);
    std::thread::Builder::new()
        .name(NAME.to_owned())
        .spawn(move || {
            while let Some(event) = events.blocking_recv() {
                let incoming = match event {
                    MqttEvent::Connected => Incoming::Connected,
                    MqttEvent::Disconnected { error, retry_in } => {
                        Incoming::Disconnected { error, retry_in }
                    }
                    MqttEvent::Publish { topic, payload } => {
                        match inbound::for_parent(&topic, &payload) {
                            Ok(ParentInbound::Batch { child, batch }) => {
                                let received = Received::new(child, batch);
                                tracing::trace!(child = %received.child, lane = %received.lane,
                                    first_seq = received.first_seq, "child batch decoded");
                                Incoming::Batch(received)
                            }
                            Ok(ParentInbound::Ack { child, ack }) => Incoming::Ack { child, ack },
                            Ok(ParentInbound::Status { child, status }) => {
                                Incoming::Status { child, status }
                            }
                            Err(error) => Incoming::Refused { topic, error },
                        }
                    }
                };
                if tx.blocking_send(incoming).is_err() {
                    break;
                }
            }
        })
        .map_err(|source| LinkError::Thread { name: NAME, source })?;
    Ok(rx)
}

/// A child's batch as received, decoded.
pub(super) struct Received {
    pub(super) child: NodeId,
    pub(super) lane: Lane,
    pub(super) first_seq: u64,
    pub(super) events: Vec<AlertEvent>,
    /// The batch's audit records (its sequence numbers count both kinds).
    pub(super) audit: Vec<vigil_wire::AuditEvent>,
    /// The batch's directive records (acknowledgements from the child's subtree).
    pub(super) directives: Vec<vigil_wire::DirectiveRecord>,
    /// Each alert event's JSON as the store keeps it, encoded here (on the decode thread)
    /// rather than on the store's; empty if one would not encode (the store encodes them
    /// itself then, and reports what fails).
    pub(super) bodies: Vec<String>,
}

impl Received {
    pub(super) fn new(child: NodeId, batch: Batch) -> Self {
        let lane = batch.lane();
        let first_seq = batch.first_seq();
        let (events, audit, directives) = split_events(batch);
        let bodies = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_default();
        Received {
            child,
            lane,
            first_seq,
            events,
            audit,
            directives,
            bodies,
        }
    }
}

impl GroupItem for Received {
    fn link_events(&self) -> usize {
        self.events.len() + self.audit.len() + self.directives.len()
    }
    fn lane(&self) -> Lane {
        self.lane
    }
}
