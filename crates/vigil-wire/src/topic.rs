//! MQTT topics of a link: `vigil/v1/up/{node}`, `vigil/v1/down/{node}`,
//! `vigil/v1/status/{node}`.
//!
//! `{node}` is always the **child's** id, whichever way the payload travels: a node publishes
//! only on its own `up` and `status` topics and subscribes only to its own `down` topic, which
//! is what the broker's access control enforces. A parent subscribes to [`UP_FILTER`] and
//! [`STATUS_FILTER`] (together [`PARENT_FILTERS`]) and publishes on each child's `down` topic.
//!
//! | topic | direction | payloads |
//! |---|---|---|
//! | `vigil/v1/up/{node}` | child → parent | batch (uplink events), ack (of downlink batches) |
//! | `vigil/v1/down/{node}` | parent → child | batch (downlink events), ack (of uplink batches) |
//! | `vigil/v1/status/{node}` | child → parent, retained, last will | status |
//!
//! The topic's `v1` is the protocol version, like the payloads' `"v": 1`; a topic of another
//! version is a typed error, not an unknown topic.

use std::fmt;
use std::str::FromStr;

use vigil_core::node::NameError;
use vigil_core::NodeId;

/// The first topic level of every Vigil topic.
pub const ROOT: &str = "vigil";

/// The topic level that names the protocol version.
pub const VERSION_LEVEL: &str = "v1";

/// The filter a parent subscribes with to receive its children's batches and acks.
pub const UP_FILTER: &str = "vigil/v1/up/+";

/// The filter a parent subscribes with to receive its children's retained statuses and last
/// wills.
pub const STATUS_FILTER: &str = "vigil/v1/status/+";

/// Every filter a parent subscribes with.
pub const PARENT_FILTERS: [&str; 2] = [UP_FILTER, STATUS_FILTER];

/// One link topic, named by the child's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `vigil/v1/up/{node}`: the child publishes batches of uplink events and acks of
    /// downlink batches.
    Up(NodeId),
    /// `vigil/v1/down/{node}`: the parent publishes batches of downlink events and acks of
    /// uplink batches.
    Down(NodeId),
    /// `vigil/v1/status/{node}`: the child's retained status, and its last will.
    Status(NodeId),
}

/// A topic name that is not one of Vigil's link topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Not `vigil/…`, or not four levels.
    #[error(
        "topic {topic:?} is not a Vigil link topic: expected vigil/v1/{{up|down|status}}/{{node}}"
    )]
    NotVigil {
        /// The topic as received.
        topic: String,
    },
    /// A Vigil topic of another protocol version (`vigil/v2/…`).
    #[error("topic {topic:?} is protocol version {version:?}; this node speaks {VERSION_LEVEL}")]
    UnsupportedVersion {
        /// The topic as received.
        topic: String,
        /// The version level found.
        version: String,
    },
    /// The third level is not `up`, `down` or `status`.
    #[error("topic {topic:?} has unknown channel {channel:?}: expected up, down or status")]
    UnknownChannel {
        /// The topic as received.
        topic: String,
        /// The channel level found.
        channel: String,
    },
    /// A filter with `+` or `#`, where a topic name was expected.
    #[error("{topic:?} is a subscription filter, not a topic name")]
    Wildcard {
        /// The topic as received.
        topic: String,
    },
    /// The last level is not a valid node id.
    #[error("topic {topic:?} names an invalid node: {source}")]
    InvalidNode {
        /// The topic as received.
        topic: String,
        /// Why the node id was refused.
        #[source]
        source: NameError,
    },
}

impl Topic {
    /// The child node the topic is named by.
    pub fn node(&self) -> &NodeId {
        match self {
            Topic::Up(node) | Topic::Down(node) | Topic::Status(node) => node,
        }
    }

    /// The channel level: `up`, `down` or `status`.
    pub const fn channel(&self) -> &'static str {
        match self {
            Topic::Up(_) => "up",
            Topic::Down(_) => "down",
            Topic::Status(_) => "status",
        }
    }

    /// Whether payloads on this topic are published with the MQTT retain flag (statuses
    /// are, so a parent that subscribes learns every child's last state at once).
    pub const fn is_retained(&self) -> bool {
        matches!(self, Topic::Status(_))
    }

    /// Parses a topic name as received from the broker.
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        if topic.contains(['+', '#']) {
            return Err(TopicError::Wildcard {
                topic: topic.to_owned(),
            });
        }
        let not_vigil = || TopicError::NotVigil {
            topic: topic.to_owned(),
        };
        let mut levels = topic.split('/');
        let (Some(root), Some(version), Some(channel), Some(node), None) = (
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
        ) else {
            return Err(not_vigil());
        };
        if root != ROOT {
            return Err(not_vigil());
        }
        if version != VERSION_LEVEL {
            return Err(TopicError::UnsupportedVersion {
                topic: topic.to_owned(),
                version: version.to_owned(),
            });
        }
        let make: fn(NodeId) -> Topic = match channel {
            "up" => Topic::Up,
            "down" => Topic::Down,
            "status" => Topic::Status,
            _ => {
                return Err(TopicError::UnknownChannel {
                    topic: topic.to_owned(),
                    channel: channel.to_owned(),
                })
            }
        };
        NodeId::new(node)
            .map(make)
            .map_err(|source| TopicError::InvalidNode {
                topic: topic.to_owned(),
                source,
            })
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ROOT}/{VERSION_LEVEL}/{}/{}",
            self.channel(),
            self.node()
        )
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid node id")
    }

    #[test]
    fn names_round_trip() {
        let n = node("gw-prison-3");
        for (topic, text) in [
            (Topic::Up(n.clone()), "vigil/v1/up/gw-prison-3"),
            (Topic::Down(n.clone()), "vigil/v1/down/gw-prison-3"),
            (Topic::Status(n.clone()), "vigil/v1/status/gw-prison-3"),
        ] {
            assert_eq!(topic.to_string(), text);
            assert_eq!(text.parse::<Topic>(), Ok(topic.clone()));
            assert_eq!(topic.node(), &n);
        }
        assert!(Topic::Status(n.clone()).is_retained());
        assert!(!Topic::Up(n).is_retained());
    }

    #[test]
    fn filters_match_the_topic_names() {
        let n = node("county-baiyun");
        let up = Topic::Up(n.clone()).to_string();
        let status = Topic::Status(n).to_string();
        assert_eq!(
            UP_FILTER.trim_end_matches('+'),
            up.trim_end_matches("county-baiyun")
        );
        assert_eq!(
            STATUS_FILTER.trim_end_matches('+'),
            status.trim_end_matches("county-baiyun")
        );
        assert_eq!(PARENT_FILTERS, [UP_FILTER, STATUS_FILTER]);
    }

    type Expectation = fn(&TopicError) -> bool;

    #[test]
    fn refusals_are_typed() {
        let cases: [(&str, Expectation); 12] = [
            ("", |e| matches!(e, TopicError::NotVigil { .. })),
            ("vigil", |e| matches!(e, TopicError::NotVigil { .. })),
            ("vigil/v1/up", |e| matches!(e, TopicError::NotVigil { .. })),
            ("vigil/v1/up/gw/extra", |e| {
                matches!(e, TopicError::NotVigil { .. })
            }),
            ("/vigil/v1/up/gw", |e| {
                matches!(e, TopicError::NotVigil { .. })
            }),
            ("other/v1/up/gw", |e| {
                matches!(e, TopicError::NotVigil { .. })
            }),
            (
                "vigil/v2/up/gw",
                |e| matches!(e, TopicError::UnsupportedVersion { version, .. } if version == "v2"),
            ),
            (
                "vigil/v1/sideways/gw",
                |e| matches!(e, TopicError::UnknownChannel { channel, .. } if channel == "sideways"),
            ),
            (UP_FILTER, |e| matches!(e, TopicError::Wildcard { .. })),
            ("vigil/#", |e| matches!(e, TopicError::Wildcard { .. })),
            ("vigil/v1/up/GW", |e| {
                matches!(
                    e,
                    TopicError::InvalidNode {
                        source: NameError::NodeIdChars(_),
                        ..
                    }
                )
            }),
            ("vigil/v1/status/", |e| {
                matches!(
                    e,
                    TopicError::InvalidNode {
                        source: NameError::NodeIdLength(_),
                        ..
                    }
                )
            }),
        ];
        for (text, expected) in cases {
            let err = Topic::parse(text).expect_err(text);
            assert!(expected(&err), "{text:?} gave {err:?}");
            assert!(
                err.to_string().contains(text),
                "error names the topic: {err}"
            );
        }
    }
}
