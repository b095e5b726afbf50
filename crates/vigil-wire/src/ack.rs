//! The `ack` payload: a cumulative acknowledgement of one outbox lane.
//!
//! `Ack { lane, upto_seq }` says "every event of `lane` up to and including `upto_seq` is
//! committed to my store": the sender may delete them from its outbox. It answers uplink
//! batches on the child's `down` topic and downlink batches on the child's `up` topic. Acks
//! are cumulative, so a lost ack is repaired by the next one, and an ack at or below what the
//! sender already deleted is a no-op (`upto_seq: 0` acknowledges nothing).
//!
//! ```json
//! {"v": 1, "type": "ack", "lane": "critical", "upto_seq": 1212}
//! ```

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use vigil_core::Lane;

/// Everything in `lane` up to and including `upto_seq` is stored by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ack {
    /// The outbox lane acknowledged.
    pub lane: Lane,
    /// The greatest sequence number acknowledged, cumulatively.
    pub upto_seq: u64,
}

impl Ack {
    /// An acknowledgement of `lane` up to and including `upto_seq`.
    pub const fn new(lane: Lane, upto_seq: u64) -> Self {
        Ack { lane, upto_seq }
    }
}

/// The ack as it is read off the wire.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAck {
    /// Checked before this is read.
    #[serde(rename = "v")]
    _version: IgnoredAny,
    /// Checked before this is read.
    #[serde(rename = "type")]
    _type: IgnoredAny,
    lane: Lane,
    upto_seq: u64,
}

impl From<RawAck> for Ack {
    fn from(raw: RawAck) -> Self {
        Ack::new(raw.lane, raw.upto_seq)
    }
}
