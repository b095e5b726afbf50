//! Vigil's one link protocol: what travels on every child → parent link, and how.
//!
//! Every link in the network — gateway to county hub, county to city, … province to
//! ministry — speaks the same protocol over MQTT (QoS 1, JSON payloads). This crate owns all of
//! it that is not I/O:
//!
//! - [`topic`]: the three topic families `vigil/v1/{up,down,status}/{node}` and the filters a
//!   parent subscribes with;
//! - the payloads, one file each: [`batch`] (sequenced events of one outbox lane), [`ack`]
//!   (cumulative acknowledgement), [`status`] (retained health and the last will), and
//!   [`event`] (what a batch carries: [`LinkEvent`], an alert event, an [`audit`] record, or a
//!   [`directive`] or its acknowledgement);
//! - [`message`]: the closed set of payloads, [`Message`];
//! - [`codec`]: bytes ↔ [`Message`], with size limit, version check and per-topic rules;
//! - [`error`]: [`WireError`], every way a payload can be refused — never a panic.
//!
//! # Wire format
//!
//! Every payload is one JSON object with `"v": 1` (the protocol version) and `"type"`
//! (`batch`, `ack` or `status`) beside its own fields. A decoder reads `v` and `type` first, so
//! a payload from a newer protocol is refused as "unsupported version", whatever else it holds.
//!
//! # Compatibility within v1
//!
//! Facts are strict, snapshots are tolerant:
//!
//! - `batch` and `ack` (and the events inside a batch, see `vigil-core`) reject unknown fields.
//!   They carry the replicated event sets and the delivery contract: a receiver that silently
//!   dropped a field it does not know would store — and relay up the network — a different
//!   event than the one that was sent, or misread an acknowledgement. Adding a field to them,
//!   or a new [`LinkEvent`] kind, needs receivers that know it: upgrade a link's receiving end
//!   first (or bump `v`).
//! - `status` (and its nested parts) ignores unknown fields: it is an advisory snapshot that the
//!   next one replaces, and a newer node reporting one more health figure must not leave an
//!   older parent blind to its child's health.
//!
//! The encoder writes one canonical form: optional and default fields are omitted, so that
//! `decode(encode(m)) == m` and the golden fixtures under `fixtures/` are byte-for-byte what
//! the encoder means (compared as JSON values).

pub mod ack;
pub mod audit;
pub mod batch;
pub mod codec;
pub mod directive;
mod envelope;
pub mod error;
pub mod event;
pub mod message;
pub mod status;
pub mod topic;
mod validate;

pub use ack::Ack;
pub use audit::{audit_event_id, AuditEvent, AuditHash};
pub use batch::{Batch, BatchError, MAX_BATCH_EVENTS};
pub use codec::{decode, decode_for_topic, encode, try_encode, MAX_PAYLOAD_BYTES};
pub use directive::{
    ack_event_id, Directive, DirectiveAck, DirectiveBody, DirectiveOutcome, DirectiveRecord,
};
pub use error::WireError;
pub use event::LinkEvent;
pub use message::{Message, MessageKind};
pub use status::{
    AuditTail, Backlog, BindingStatus, ChildStatus, LinkState, LinkStatus, NodeState, Status,
};
pub use topic::{Topic, TopicError, PARENT_FILTERS, STATUS_FILTER, UP_FILTER};

/// The protocol version this crate speaks: the `v` of every payload and the `v1` of every
/// topic.
pub const PROTOCOL_VERSION: u64 = 1;
