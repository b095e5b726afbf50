//! The closed set of payloads: [`Message`], and its kind, [`MessageKind`].
//!
//! A payload's kind is its `"type"` on the wire. Which kinds a topic may carry is fixed by the
//! protocol ([`MessageKind::allowed_on`]): batches and acks on `up` and `down`, statuses on
//! `status`.

use std::fmt;

use crate::ack::Ack;
use crate::batch::Batch;
use crate::status::Status;
use crate::topic::Topic;

/// One payload of the link protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Consecutive events of one outbox lane.
    Batch(Batch),
    /// A cumulative acknowledgement of one lane.
    Ack(Ack),
    /// A node's health, or its last will.
    Status(Status),
}

/// The kind of a payload: its `"type"` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `"type": "batch"`.
    Batch,
    /// `"type": "ack"`.
    Ack,
    /// `"type": "status"`.
    Status,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 3] = [MessageKind::Batch, MessageKind::Ack, MessageKind::Status];

    /// The kind's `"type"` on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Batch => "batch",
            MessageKind::Ack => "ack",
            MessageKind::Status => "status",
        }
    }

    /// The kind whose `"type"` is `name`.
    pub fn from_name(name: &str) -> Option<MessageKind> {
        MessageKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether a payload of this kind may be published on `topic`.
    pub const fn allowed_on(self, topic: &Topic) -> bool {
        match topic {
            Topic::Up(_) | Topic::Down(_) => {
                matches!(self, MessageKind::Batch | MessageKind::Ack)
            }
            Topic::Status(_) => matches!(self, MessageKind::Status),
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// The payload's kind.
    pub const fn kind(&self) -> MessageKind {
        match self {
            Message::Batch(_) => MessageKind::Batch,
            Message::Ack(_) => MessageKind::Ack,
            Message::Status(_) => MessageKind::Status,
        }
    }
}

impl From<Batch> for Message {
    fn from(batch: Batch) -> Self {
        Message::Batch(batch)
    }
}

impl From<Ack> for Message {
    fn from(ack: Ack) -> Self {
        Message::Ack(ack)
    }
}

impl From<Status> for Message {
    fn from(status: Status) -> Self {
        Message::Status(status)
    }
}
