//! What arrives on a link's topics, sorted out before anything is stored: topic, payload kind,
//! sender. Pure functions over `(topic, payload)`.
//!
//! A child listens on its own `down` topic and takes batches (downlink events) and acks (of
//! its uplink batches). A parent listens on every child's `up` and `status` topics and takes
//! batches, acks and statuses, each tagged with the child the topic names. Anything else —
//! an unparsable topic, a topic this end does not listen on, a payload the codec or the
//! topic rules refuse — is an [`InboundError`] with a stable [`label`](InboundError::label)
//! for the decode-error metric; it is never fatal and never acknowledged.

use vigil_core::NodeId;
use vigil_wire::{decode_for_topic, Ack, Batch, Message, Status, Topic, TopicError, WireError};

/// Why an incoming publish was dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InboundError {
    /// The topic is not a Vigil link topic.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A link topic this end does not take payloads from.
    #[error("topic {topic} is not one this end of the link listens on")]
    UnexpectedTopic {
        /// The topic.
        topic: Topic,
    },
    /// The payload was refused by the codec or the topic rules.
    #[error("payload on {topic} refused: {error}")]
    Wire {
        /// The topic it came on.
        topic: Topic,
        /// Why it was refused.
        #[source]
        error: WireError,
    },
    /// A downlink batch from a node other than the configured parent.
    #[error("downlink batch from {found}, but this node's parent is {expected}")]
    UnexpectedSender {
        /// The configured parent.
        expected: NodeId,
        /// The batch's sender.
        found: NodeId,
    },
}

impl InboundError {
    /// A stable snake_case label for metrics and logs: the codec's own label for refused
    /// payloads ([`WireError::label`]), `bad_topic`, `unexpected_topic` or
    /// `unexpected_sender`.
    pub const fn label(&self) -> &'static str {
        match self {
            InboundError::Topic(_) => "bad_topic",
            InboundError::UnexpectedTopic { .. } => "unexpected_topic",
            InboundError::Wire { error, .. } => error.label(),
            InboundError::UnexpectedSender { .. } => "unexpected_sender",
        }
    }
}

/// What a child takes from its `down` topic.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildInbound {
    /// Downlink events from the parent.
    Batch(Batch),
    /// The parent's ack of uplink batches.
    Ack(Ack),
}

/// What a parent takes from its children's `up` and `status` topics.
#[derive(Debug, Clone, PartialEq)]
pub enum ParentInbound {
    /// Uplink events from `child`.
    Batch {
        /// The child the topic names (and the batch's sender).
        child: NodeId,
        /// The batch.
        batch: Batch,
    },
    /// `child`'s ack of downlink batches.
    Ack {
        /// The child the topic names.
        child: NodeId,
        /// The ack.
        ack: Ack,
    },
    /// `child`'s retained status or last will.
    Status {
        /// The child the topic names (and the status's node).
        child: NodeId,
        /// The status.
        status: Status,
    },
}

fn decode(topic: &Topic, payload: &[u8]) -> Result<Message, InboundError> {
    decode_for_topic(topic, payload).map_err(|error| InboundError::Wire {
        topic: topic.clone(),
        error,
    })
}

/// Sorts a publish that arrived at child `node` (subscribed to its own `down` topic).
/// `parent`, when known, is the only node whose batches are taken.
pub fn for_child(
    node: &NodeId,
    parent: Option<&NodeId>,
    topic: &str,
    payload: &[u8],
) -> Result<ChildInbound, InboundError> {
    let topic = Topic::parse(topic)?;
    match &topic {
        Topic::Down(child) if child == node => {}
        _ => return Err(InboundError::UnexpectedTopic { topic }),
    }
    match decode(&topic, payload)? {
        Message::Batch(batch) => match parent {
            Some(expected) if batch.node() != expected => Err(InboundError::UnexpectedSender {
                expected: expected.clone(),
                found: batch.node().clone(),
            }),
            _ => Ok(ChildInbound::Batch(batch)),
        },
        Message::Ack(ack) => Ok(ChildInbound::Ack(ack)),
        // `decode_for_topic` refuses statuses on a `down` topic.
        Message::Status(_) => Err(InboundError::UnexpectedTopic { topic }),
    }
}

/// Sorts a publish that arrived at a parent (subscribed to `up/+` and `status/+`).
pub fn for_parent(topic: &str, payload: &[u8]) -> Result<ParentInbound, InboundError> {
    let topic = Topic::parse(topic)?;
    if matches!(topic, Topic::Down(_)) {
        return Err(InboundError::UnexpectedTopic { topic });
    }
    let child = topic.node().clone();
    Ok(match decode(&topic, payload)? {
        Message::Batch(batch) => ParentInbound::Batch { child, batch },
        Message::Ack(ack) => ParentInbound::Ack { child, ack },
        Message::Status(status) => ParentInbound::Status { child, status },
    })
}

#[cfg(test)]
mod tests {
    use vigil_core::Lane;
    use vigil_wire::encode;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    fn ack_bytes() -> Vec<u8> {
        encode(&Message::Ack(Ack::new(Lane::Critical, 3)))
    }

    #[test]
    fn a_child_takes_acks_on_its_own_down_topic_only() {
        let gw = node("gw-1");
        assert_eq!(
            for_child(&gw, None, "vigil/v1/down/gw-1", &ack_bytes()),
            Ok(ChildInbound::Ack(Ack::new(Lane::Critical, 3)))
        );
        for topic in [
            "vigil/v1/down/gw-2",
            "vigil/v1/up/gw-1",
            "vigil/v1/status/gw-1",
        ] {
            let err = for_child(&gw, None, topic, &ack_bytes()).expect_err(topic);
            assert_eq!(err.label(), "unexpected_topic", "{topic}");
        }
        let err = for_child(&gw, None, "elsewhere/x", &ack_bytes()).expect_err("bad topic");
        assert_eq!(err.label(), "bad_topic");
    }

    #[test]
    fn garbage_is_labelled_by_the_codec() {
        let err = for_parent("vigil/v1/up/gw-1", b"\x00garbage").expect_err("garbage");
        assert_eq!(err.label(), "malformed");
        let err = for_parent("vigil/v1/status/gw-1", &ack_bytes()).expect_err("ack on status");
        assert_eq!(err.label(), "wrong_topic");
        let err = for_parent("vigil/v1/down/gw-1", &ack_bytes()).expect_err("down at a parent");
        assert_eq!(err.label(), "unexpected_topic");
    }

    #[test]
    fn a_parent_tags_what_it_takes_with_the_child() {
        let will = encode(&Message::Status(Status::last_will(node("gw-7"))));
        assert!(matches!(
            for_parent("vigil/v1/status/gw-7", &will),
            Ok(ParentInbound::Status { child, .. }) if child == node("gw-7")
        ));
        let err = for_parent("vigil/v1/status/gw-8", &will).expect_err("someone else's will");
        assert_eq!(err.label(), "node_mismatch");
        assert!(matches!(
            for_parent("vigil/v1/up/gw-7", &ack_bytes()),
            Ok(ParentInbound::Ack { child, .. }) if child == node("gw-7")
        ));
    }
}
