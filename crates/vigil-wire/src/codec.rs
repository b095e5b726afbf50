//! Bytes ↔ [`Message`]: the only way payloads are written and read.
//!
//! [`decode`] checks, in order, and stops at the first problem:
//!
//! 1. size: at most [`MAX_PAYLOAD_BYTES`], before any parsing;
//! 2. JSON syntax of the whole payload (errors carry line and column), and that it is an
//!    object;
//! 3. `v`: present, an integer, and [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) — so a newer payload is refused as
//!    "unsupported version" before any of its fields is interpreted;
//! 4. `type`: `batch`, `ack` or `status`;
//! 5. the fields of that type (unknown fields refused in batches and acks), node ids, the
//!    batch's sequence rules, and timestamps that can be relayed
//!    ([`WireError::TimestampOutOfRange`]).
//!
//! [`decode_for_topic`] adds the protocol's topic rules (which kinds a topic carries, and who
//! may send on it), checking the kind before reading the body. Everything [`encode`] writes,
//! [`decode`] reads back equal; every decoded message encodes again.
//!
//! The payload is parsed twice — once to read `v` and `type` without interpreting the rest,
//! once into its type — which keeps errors precise for about twice the parsing time of a
//! single pass; at [`MAX_PAYLOAD_BYTES`] that is a few milliseconds.

use serde::de::DeserializeOwned;

use crate::ack::RawAck;
use crate::batch::RawBatch;
use crate::envelope::{read_header, reason, Envelope};
use crate::error::WireError;
use crate::message::{Message, MessageKind};
use crate::status::RawStatus;
use crate::topic::Topic;
use crate::validate::check_timestamps;

/// The largest payload accepted: 4 MiB. Decoding refuses larger ones before parsing; senders
/// keep batches below it (see [`try_encode`]).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// Writes a message as its compact JSON payload.
///
/// Never fails. A message built from values that cannot be relayed (a timestamp outside
/// years 0000–9999) or larger than [`MAX_PAYLOAD_BYTES`] still encodes, and the receiver
/// refuses it; [`try_encode`] checks both first.
pub fn encode(message: &Message) -> Vec<u8> {
    let written = match message {
        Message::Batch(batch) => serde_json::to_vec(&Envelope::new(MessageKind::Batch, batch)),
        Message::Ack(ack) => serde_json::to_vec(&Envelope::new(MessageKind::Ack, ack)),
        Message::Status(status) => serde_json::to_vec(&Envelope::new(MessageKind::Status, status)),
    };
    // serde_json fails only on maps with non-string keys and on Serialize impls that fail;
    // the wire types have neither (ids, names and timestamps serialize as strings).
    written.expect("wire types always serialize to JSON")
}

/// Writes a message as its payload, if the receiver will accept it: its timestamps can be
/// written as RFC 3339 and the payload is at most [`MAX_PAYLOAD_BYTES`]. A sender that gets
/// [`WireError::TooLarge`] splits the batch.
pub fn try_encode(message: &Message) -> Result<Vec<u8>, WireError> {
    check_timestamps(message)?;
    let bytes = encode(message);
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(bytes)
}

/// Reads a payload, whatever topic it came on.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    decode_on(None, bytes)
}

/// Reads a payload that came on `topic`, and checks that the topic may carry it:
///
/// - `up/{node}`: a batch from `node` itself, or an ack;
/// - `down/{node}`: a batch from `node`'s parent (so not naming `node`), or an ack;
/// - `status/{node}`: a status of `node`.
///
/// A payload kind the topic does not carry is [`WireError::WrongTopic`] (found before the body
/// is read); a sender that does not fit is [`WireError::NodeMismatch`].
pub fn decode_for_topic(topic: &Topic, bytes: &[u8]) -> Result<Message, WireError> {
    let message = decode_on(Some(topic), bytes)?;
    let fits = match (&message, topic) {
        (Message::Batch(batch), Topic::Up(child)) => batch.node() == child,
        (Message::Batch(batch), Topic::Down(child)) => batch.node() != child,
        (Message::Status(status), Topic::Status(child)) => &status.node == child,
        (Message::Ack(_), _) => true,
        // Kinds not allowed on the topic were refused by `decode_on`.
        (Message::Batch(_) | Message::Status(_), _) => false,
    };
    if fits {
        return Ok(message);
    }
    let kind = message.kind();
    Err(match message {
        Message::Batch(batch) => WireError::NodeMismatch {
            kind,
            node: batch.node().clone(),
            topic: topic.clone(),
        },
        Message::Status(status) => WireError::NodeMismatch {
            kind,
            node: status.node,
            topic: topic.clone(),
        },
        Message::Ack(_) => WireError::WrongTopic {
            kind,
            topic: topic.clone(),
        },
    })
}

fn decode_on(topic: Option<&Topic>, bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let kind = read_header(bytes)?;
    if let Some(topic) = topic {
        if !kind.allowed_on(topic) {
            return Err(WireError::WrongTopic {
                kind,
                topic: topic.clone(),
            });
        }
    }
    let message = match kind {
        MessageKind::Batch => Message::Batch(body::<RawBatch>(kind, bytes)?.try_into()?),
        MessageKind::Ack => Message::Ack(body::<RawAck>(kind, bytes)?.into()),
        MessageKind::Status => Message::Status(body::<RawStatus>(kind, bytes)?.try_into()?),
    };
    check_timestamps(&message)?;
    Ok(message)
}

/// Reads the body of a payload whose header said `kind`. The syntax is known to be valid, so
/// every error here is about a field.
fn body<T: DeserializeOwned>(kind: MessageKind, bytes: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|err| WireError::InvalidField {
        kind,
        line: err.line(),
        column: err.column(),
        reason: reason(&err),
    })
}

#[cfg(test)]
mod tests {
    use vigil_core::{Lane, NodeId, Timestamp};

    use super::*;
    use crate::ack::Ack;
    use crate::status::Status;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid node id")
    }

    #[test]
    fn ack_round_trip_and_shape() {
        let ack = Message::Ack(Ack::new(Lane::Critical, 1212));
        let bytes = encode(&ack);
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            r#"{"v":1,"type":"ack","lane":"critical","upto_seq":1212}"#
        );
        assert_eq!(decode(&bytes), Ok(ack));
    }

    #[test]
    fn last_will_is_tiny() {
        let will = Message::Status(Status::last_will(node("gw-prison-3")));
        let bytes = encode(&will);
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            r#"{"v":1,"type":"status","node":"gw-prison-3","state":"offline"}"#
        );
        assert_eq!(decode(&bytes), Ok(will));
    }

    #[test]
    fn size_is_checked_before_parsing() {
        let mut big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        big[0] = b'x'; // not JSON either: size wins
        assert_eq!(
            decode(&big),
            Err(WireError::TooLarge {
                size: MAX_PAYLOAD_BYTES + 1,
                max: MAX_PAYLOAD_BYTES
            })
        );
        // Exactly at the limit is parsed.
        let mut at_limit = br#"{"v":1,"type":"ack","lane":"normal","upto_seq":5}"#.to_vec();
        at_limit.resize(MAX_PAYLOAD_BYTES, b' ');
        assert_eq!(
            decode(&at_limit),
            Ok(Message::Ack(Ack::new(Lane::Normal, 5)))
        );
    }

    #[test]
    fn try_encode_refuses_what_the_receiver_would() {
        let mut status = Status::online(node("gw-1"), None, Timestamp::from_millis(i64::MAX));
        let err = try_encode(&Message::Status(status.clone())).expect_err("year > 9999");
        assert!(matches!(err, WireError::TimestampOutOfRange { ref field, .. } if field == "at"));
        // …and plain `encode` writes what `decode` then refuses.
        assert!(matches!(
            decode(&encode(&Message::Status(status.clone()))),
            Err(WireError::InvalidField { reason, .. }) if reason.contains("invalid timestamp")
        ));
        status.at = Some(Timestamp::from_millis(0));
        let ok = try_encode(&Message::Status(status.clone())).expect("fine");
        assert_eq!(ok, encode(&Message::Status(status)));
    }

    #[test]
    fn wrong_topic_is_found_before_the_body() {
        // A status with an invalid body on an up topic: the topic rule is reported.
        let bytes = br#"{"v":1,"type":"status","node":"NOT VALID"}"#;
        let topic = Topic::Up(node("gw-1"));
        assert_eq!(
            decode_for_topic(&topic, bytes),
            Err(WireError::WrongTopic {
                kind: MessageKind::Status,
                topic
            })
        );
    }

    #[test]
    fn status_node_must_be_the_topics() {
        let will = encode(&Message::Status(Status::last_will(node("gw-1"))));
        assert!(decode_for_topic(&Topic::Status(node("gw-1")), &will).is_ok());
        assert_eq!(
            decode_for_topic(&Topic::Status(node("gw-2")), &will),
            Err(WireError::NodeMismatch {
                kind: MessageKind::Status,
                node: node("gw-1"),
                topic: Topic::Status(node("gw-2")),
            })
        );
    }

    #[test]
    fn acks_travel_both_ways() {
        let ack = encode(&Message::Ack(Ack::new(Lane::Normal, 0)));
        for topic in [Topic::Up(node("gw-1")), Topic::Down(node("gw-1"))] {
            assert!(decode_for_topic(&topic, &ack).is_ok(), "{topic}");
        }
        assert!(matches!(
            decode_for_topic(&Topic::Status(node("gw-1")), &ack),
            Err(WireError::WrongTopic {
                kind: MessageKind::Ack,
                ..
            })
        ));
    }
}
