//! [`WireError`]: every way a payload can be refused.
//!
//! Decoding never panics: whatever bytes arrive, the answer is a [`Message`](crate::Message)
//! or one of these. The variants follow the order in which [`decode`](crate::decode) checks
//! (size, JSON, version, type, fields, topic), so the first problem found is the one reported:
//! a `v: 2` payload is "unsupported version 2", never a field error. [`WireError::label`]
//! gives a stable, low-cardinality name for metrics and logs.

use vigil_core::node::NameError;
use vigil_core::NodeId;

use crate::batch::BatchError;
use crate::message::MessageKind;
use crate::topic::Topic;
use crate::PROTOCOL_VERSION;

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES); refused before parsing.
    #[error("payload of {size} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON: a syntax error, truncated input, trailing bytes, invalid UTF-8, nesting too
    /// deep, or a duplicate `v` or `type`.
    #[error("payload is not valid JSON (line {line}, column {column}): {reason}")]
    Malformed {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error (0 at the very end of the input).
        column: usize,
        /// What the JSON parser found.
        reason: String,
    },
    /// Valid JSON, but not an object.
    #[error(
        "payload is JSON but not an object: a Vigil payload is an object with \"v\" and \"type\""
    )]
    NotAnObject,
    /// No `v` member.
    #[error("payload has no \"v\" (protocol version)")]
    MissingVersion,
    /// A `v` that is not a non-negative integer.
    #[error("payload's \"v\" must be a non-negative integer, found {found}")]
    VersionNotInteger {
        /// The JSON found (shortened if long).
        found: String,
    },
    /// A `v` of a protocol version this node does not speak.
    #[error("unsupported protocol version {version}: this node speaks v{PROTOCOL_VERSION}; upgrade it or keep the sender on v{PROTOCOL_VERSION}")]
    UnsupportedVersion {
        /// The version the payload carries.
        version: u64,
    },
    /// No `type` member.
    #[error("payload has no \"type\"")]
    MissingType,
    /// A `type` other than `batch`, `ack` or `status`.
    #[error("unknown payload type {found}: expected \"batch\", \"ack\" or \"status\"")]
    UnknownType {
        /// The JSON found (shortened if long).
        found: String,
    },
    /// A member missing, unknown (in a batch or ack), of the wrong JSON type or with a value
    /// its type refuses (e.g. an unknown lane, an invalid event).
    #[error("invalid {kind} payload (line {line}, column {column}): {reason}")]
    InvalidField {
        /// The payload's kind.
        kind: MessageKind,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What was wrong, naming the field where the parser can.
        reason: String,
    },
    /// A `node` of the payload itself (a batch's sender, a status's node or one of its
    /// children) that is not a valid node id.
    #[error("invalid node id in {kind} field {field}: {source}")]
    InvalidNodeId {
        /// The payload's kind.
        kind: MessageKind,
        /// The field, e.g. `node` or `children[2].node`.
        field: String,
        /// Why the id was refused.
        #[source]
        source: NameError,
    },
    /// A batch that breaks the sequence rules: `first_seq` 0, no events, too many events.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A timestamp outside years 0000–9999, which RFC 3339 cannot write: accepted, it could not
    /// be relayed to the next level.
    #[error("timestamp {field} is out of range ({millis} ms since the epoch): RFC 3339 can write only years 0000 to 9999")]
    TimestampOutOfRange {
        /// The field, e.g. `events[3].alert.body.until`.
        field: String,
        /// The instant, in milliseconds since the Unix epoch.
        millis: i64,
    },
    /// A payload kind that the topic does not carry (a status on an `up` topic, a batch on a
    /// `status` topic).
    #[error("a {kind} payload is not allowed on topic {topic}")]
    WrongTopic {
        /// The payload's kind.
        kind: MessageKind,
        /// The topic it came on.
        topic: Topic,
    },
    /// A payload whose sender does not fit the topic: a batch or status on a child's topic
    /// naming another node, or a batch on a child's `down` topic claiming to come from the
    /// child itself.
    #[error("{kind} payload from node {node} does not belong on topic {topic}")]
    NodeMismatch {
        /// The payload's kind.
        kind: MessageKind,
        /// The node the payload names.
        node: NodeId,
        /// The topic it came on.
        topic: Topic,
    },
}

impl WireError {
    /// A stable snake_case name of the variant, for metric labels and structured logs.
    pub const fn label(&self) -> &'static str {
        match self {
            WireError::TooLarge { .. } => "too_large",
            WireError::Malformed { .. } => "malformed",
            WireError::NotAnObject => "not_an_object",
            WireError::MissingVersion => "missing_version",
            WireError::VersionNotInteger { .. } => "version_not_integer",
            WireError::UnsupportedVersion { .. } => "unsupported_version",
            WireError::MissingType => "missing_type",
            WireError::UnknownType { .. } => "unknown_type",
            WireError::InvalidField { .. } => "invalid_field",
            WireError::InvalidNodeId { .. } => "invalid_node_id",
            WireError::InvalidBatch(_) => "invalid_batch",
            WireError::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            WireError::WrongTopic { .. } => "wrong_topic",
            WireError::NodeMismatch { .. } => "node_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::topic::Topic;

    #[test]
    fn labels_are_distinct_snake_case() {
        let node = NodeId::new("gw-1").expect("valid");
        let topic = Topic::Up(node.clone());
        let all = [
            WireError::TooLarge { size: 1, max: 0 },
            WireError::Malformed {
                line: 1,
                column: 1,
                reason: String::new(),
            },
            WireError::NotAnObject,
            WireError::MissingVersion,
            WireError::VersionNotInteger {
                found: String::new(),
            },
            WireError::UnsupportedVersion { version: 2 },
            WireError::MissingType,
            WireError::UnknownType {
                found: String::new(),
            },
            WireError::InvalidField {
                kind: MessageKind::Ack,
                line: 1,
                column: 1,
                reason: String::new(),
            },
            WireError::InvalidNodeId {
                kind: MessageKind::Batch,
                field: "node".to_owned(),
                source: NameError::NodeIdChars("X".to_owned()),
            },
            WireError::InvalidBatch(BatchError::Empty),
            WireError::TimestampOutOfRange {
                field: "at".to_owned(),
                millis: i64::MAX,
            },
            WireError::WrongTopic {
                kind: MessageKind::Status,
                topic: topic.clone(),
            },
            WireError::NodeMismatch {
                kind: MessageKind::Batch,
                node,
                topic,
            },
        ];
        let labels: BTreeSet<&str> = all.iter().map(WireError::label).collect();
        assert_eq!(labels.len(), all.len());
        for label in labels {
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label}"
            );
        }
        assert_eq!(
            all[5].to_string(),
            "unsupported protocol version 2: this node speaks v1; upgrade it or keep the sender on v1"
        );
    }
}
