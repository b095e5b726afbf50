//! The `batch` payload: consecutive records of one outbox lane, from one sender.
//!
//! A sender drains its outbox lane by lane (critical before normal) and publishes
//! `Batch { node, lane, first_seq, events }`: the events carry the sequence numbers
//! `first_seq, first_seq + 1, …` of that lane. The receiver commits them to its own store and
//! only then answers with an [`Ack`](crate::Ack) up to the last sequence number; the sender
//! deletes only what is acknowledged (MQTT's PUBACK is not an acknowledgement of storage).
//!
//! A [`Batch`] can only be built valid — sequence numbers start at 1, a batch is not empty and
//! holds at most [`MAX_BATCH_EVENTS`] — so whatever [`encode`](crate::encode) writes,
//! [`decode`](crate::decode) accepts.
//!
//! ```json
//! {"v": 1, "type": "batch", "node": "gw-prison-3", "lane": "critical", "first_seq": 41,
//!  "events": [{"alert": {"id": "…", "alert": "…", "origin": "gw-prison-3", …}}]}
//! ```

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use vigil_core::{Lane, NodeId};

use crate::error::WireError;
use crate::event::LinkEvent;
use crate::message::MessageKind;

/// The most events one batch may carry. Senders cut their batches at this size (and below
/// [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES)); receivers refuse larger ones.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// Consecutive events of one outbox lane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Batch {
    node: NodeId,
    lane: Lane,
    first_seq: u64,
    events: Vec<LinkEvent>,
}

/// Why a batch could not be built (or was refused on decode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Sequence numbers start at 1.
    #[error("first_seq is 0: sequence numbers start at 1")]
    FirstSeqZero,
    /// A batch with no events.
    #[error("the batch has no events")]
    Empty,
    /// More than [`MAX_BATCH_EVENTS`] events.
    #[error("the batch has {count} events; at most {max} are allowed")]
    TooManyEvents {
        /// How many events the batch has.
        count: usize,
        /// [`MAX_BATCH_EVENTS`].
        max: usize,
    },
    /// The last event's sequence number would not fit in a `u64`.
    #[error("{count} events from first_seq {first_seq} run past the largest sequence number")]
    SeqOverflow {
        /// The batch's first sequence number.
        first_seq: u64,
        /// How many events the batch has.
        count: usize,
    },
}

impl Batch {
    /// A batch from `node` of `events` with sequence numbers `first_seq..`, in `lane`.
    pub fn new(
        node: NodeId,
        lane: Lane,
        first_seq: u64,
        events: Vec<LinkEvent>,
    ) -> Result<Batch, BatchError> {
        let count = events.len();
        if first_seq == 0 {
            return Err(BatchError::FirstSeqZero);
        }
        if count == 0 {
            return Err(BatchError::Empty);
        }
        if count > MAX_BATCH_EVENTS {
            return Err(BatchError::TooManyEvents {
                count,
                max: MAX_BATCH_EVENTS,
            });
        }
        // count ≤ MAX_BATCH_EVENTS, so the conversion cannot fail.
        let span = u64::try_from(count - 1).unwrap_or(u64::MAX);
        if first_seq.checked_add(span).is_none() {
            return Err(BatchError::SeqOverflow { first_seq, count });
        }
        Ok(Batch {
            node,
            lane,
            first_seq,
            events,
        })
    }

    /// The sender: the child on an `up` topic, the parent on a `down` topic.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The outbox lane the events come from.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The sequence number of the first event (≥ 1).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number of the last event: what the receiver acknowledges once it has
    /// committed the batch.
    pub fn last_seq(&self) -> u64 {
        // `new` checked that this neither underflows nor overflows.
        self.first_seq + (self.events.len() as u64 - 1)
    }

    /// The events, in sequence order (never empty).
    pub fn events(&self) -> &[LinkEvent] {
        &self.events
    }

    /// Each event with its sequence number.
    pub fn sequenced(&self) -> impl Iterator<Item = (u64, &LinkEvent)> {
        (self.first_seq..).zip(&self.events)
    }

    /// The events, giving up the batch.
    pub fn into_events(self) -> Vec<LinkEvent> {
        self.events
    }
}

/// The batch as it is read off the wire, before the checks that make a [`Batch`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBatch {
    /// Checked before this is read.
    #[serde(rename = "v")]
    _version: IgnoredAny,
    /// Checked before this is read.
    #[serde(rename = "type")]
    _type: IgnoredAny,
    node: String,
    lane: Lane,
    first_seq: u64,
    events: Vec<LinkEvent>,
}

impl TryFrom<RawBatch> for Batch {
    type Error = WireError;

    fn try_from(raw: RawBatch) -> Result<Batch, WireError> {
        let node = NodeId::new(raw.node).map_err(|source| WireError::InvalidNodeId {
            kind: MessageKind::Batch,
            field: "node".to_owned(),
            source,
        })?;
        Ok(Batch::new(node, raw.lane, raw.first_seq, raw.events)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeId {
        NodeId::new("gw-1").expect("valid")
    }

    fn events(n: usize) -> Vec<LinkEvent> {
        let json = r#"{"alert": {"id": "019ad2c4-5a00-7000-8000-000000000001",
            "alert": "019ad2c4-5a00-7000-8000-0000000000a1", "origin": "gw-1",
            "hlc": {"wall": 1, "logical": 0}, "actor": "system", "body": {"type": "unshelved"}}}"#;
        let event: LinkEvent = serde_json::from_str(json).expect("valid event");
        vec![event; n]
    }

    #[test]
    fn sequence_numbers() {
        let batch = Batch::new(node(), Lane::Normal, 41, events(3)).expect("valid");
        assert_eq!(batch.last_seq(), 43);
        let seqs: Vec<u64> = batch.sequenced().map(|(seq, _)| seq).collect();
        assert_eq!(seqs, [41, 42, 43]);
        let one = Batch::new(node(), Lane::Normal, u64::MAX, events(1)).expect("fits");
        assert_eq!(one.last_seq(), u64::MAX);
    }

    #[test]
    fn invalid_batches_cannot_be_built() {
        assert_eq!(
            Batch::new(node(), Lane::Critical, 0, events(1)),
            Err(BatchError::FirstSeqZero)
        );
        assert_eq!(
            Batch::new(node(), Lane::Critical, 1, Vec::new()),
            Err(BatchError::Empty)
        );
        assert_eq!(
            Batch::new(node(), Lane::Critical, 1, events(MAX_BATCH_EVENTS + 1)),
            Err(BatchError::TooManyEvents {
                count: MAX_BATCH_EVENTS + 1,
                max: MAX_BATCH_EVENTS
            })
        );
        assert!(Batch::new(node(), Lane::Critical, 1, events(MAX_BATCH_EVENTS)).is_ok());
        assert_eq!(
            Batch::new(node(), Lane::Critical, u64::MAX, events(2)),
            Err(BatchError::SeqOverflow {
                first_seq: u64::MAX,
                count: 2
            })
        );
    }
}
