//! The Sparkplug B topic namespace:
//! `spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]` for edge nodes and their
//! devices, `spBv1.0/STATE/{host_id}` for host applications.

use std::fmt;
use std::str::FromStr;

/// The namespace element every Sparkplug B topic starts with.
pub const NAMESPACE: &str = "spBv1.0";

/// The message type element of an edge node's or device's topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// An edge node's birth certificate: all its metrics, with names, aliases and types.
    NBirth,
    /// An edge node's death certificate (usually its MQTT will): `bdSeq` only.
    NDeath,
    /// A device's birth certificate.
    DBirth,
    /// A device's death certificate.
    DDeath,
    /// Changed metrics of an edge node.
    NData,
    /// Changed metrics of a device.
    DData,
    /// A command to an edge node.
    NCmd,
    /// A command to a device.
    DCmd,
}

impl MessageType {
    /// Every message type.
    pub const ALL: [MessageType; 8] = [
        MessageType::NBirth,
        MessageType::NDeath,
        MessageType::DBirth,
        MessageType::DDeath,
        MessageType::NData,
        MessageType::DData,
        MessageType::NCmd,
        MessageType::DCmd,
    ];

    /// The topic element (`NBIRTH`…).
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::NBirth => "NBIRTH",
            MessageType::NDeath => "NDEATH",
            MessageType::DBirth => "DBIRTH",
            MessageType::DDeath => "DDEATH",
            MessageType::NData => "NDATA",
            MessageType::DData => "DDATA",
            MessageType::NCmd => "NCMD",
            MessageType::DCmd => "DCMD",
        }
    }

    /// Whether the message is about a device (its topic ends with a device id) rather than
    /// the edge node itself.
    pub const fn is_device(self) -> bool {
        matches!(
            self,
            MessageType::DBirth | MessageType::DDeath | MessageType::DData | MessageType::DCmd
        )
    }

    fn parse(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed Sparkplug B topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A message of an edge node or of one of its devices.
    Edge {
        /// The group of edge nodes.
        group_id: String,
        /// What the message is.
        message_type: MessageType,
        /// The edge node.
        edge_node_id: String,
        /// The device, for `DBIRTH`, `DDEATH`, `DDATA` and `DCMD`; `None` for node messages.
        device_id: Option<String>,
    },
    /// A host application's online/offline state: `spBv1.0/STATE/{host_id}`.
    State {
        /// The host application.
        host_id: String,
    },
}

/// A topic that is not in the Sparkplug B namespace, or malformed within it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic:?} is not a Sparkplug B topic: {reason}")]
pub struct TopicError {
    /// The topic.
    pub topic: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Topic {
    /// The topic of an edge node's own message (`NBIRTH`, `NDEATH`, `NDATA`, `NCMD`).
    pub fn node(
        group_id: impl Into<String>,
        message_type: MessageType,
        edge_node_id: impl Into<String>,
    ) -> Topic {
        Topic::Edge {
            group_id: group_id.into(),
            message_type,
            edge_node_id: edge_node_id.into(),
            device_id: None,
        }
    }

    /// The topic of a device's message (`DBIRTH`, `DDEATH`, `DDATA`, `DCMD`).
    pub fn device(
        group_id: impl Into<String>,
        message_type: MessageType,
        edge_node_id: impl Into<String>,
        device_id: impl Into<String>,
    ) -> Topic {
        Topic::Edge {
            group_id: group_id.into(),
            message_type,
            edge_node_id: edge_node_id.into(),
            device_id: Some(device_id.into()),
        }
    }

    /// The message type; `None` for `STATE`.
    pub fn message_type(&self) -> Option<MessageType> {
        match self {
            Topic::Edge { message_type, .. } => Some(*message_type),
            Topic::State { .. } => None,
        }
    }
}

/// Whether `s` can be one element of a Sparkplug topic: non-empty, no MQTT separators or
/// wildcards.
fn valid_element(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#'])
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(topic: &str) -> Result<Self, Self::Err> {
        let err = |reason| TopicError {
            topic: topic.to_owned(),
            reason,
        };
        let mut parts = topic.split('/');
        if parts.next() != Some(NAMESPACE) {
            return Err(err("it does not start with spBv1.0/"));
        }
        let parts: Vec<&str> = parts.collect();
        if let ["STATE", host_id] = parts.as_slice() {
            return if valid_element(host_id) {
                Ok(Topic::State {
                    host_id: (*host_id).to_owned(),
                })
            } else {
                Err(err("the host id is empty or holds a wildcard"))
            };
        }
        let (group_id, kind, edge_node_id, device_id) = match parts.as_slice() {
            [g, k, n] => (*g, *k, *n, None),
            [g, k, n, d] => (*g, *k, *n, Some(*d)),
            _ => {
                return Err(err(
                    "expected spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]",
                ))
            }
        };
        let message_type = MessageType::parse(kind).ok_or_else(|| {
            err("the message type is not NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA, DDATA, NCMD, DCMD or STATE")
        })?;
        if !valid_element(group_id) || !valid_element(edge_node_id) {
            return Err(err(
                "the group or edge node id is empty or holds a wildcard",
            ));
        }
        match (message_type.is_device(), device_id) {
            (true, None) => Err(err("a device message needs a device id")),
            (false, Some(_)) => Err(err("a node message has no device id")),
            (_, Some(d)) if !valid_element(d) => {
                Err(err("the device id is empty or holds a wildcard"))
            }
            _ => Ok(Topic::Edge {
                group_id: group_id.to_owned(),
                message_type,
                edge_node_id: edge_node_id.to_owned(),
                device_id: device_id.map(str::to_owned),
            }),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Edge {
                group_id,
                message_type,
                edge_node_id,
                device_id,
            } => {
                write!(f, "{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}")?;
                if let Some(d) = device_id {
                    write!(f, "/{d}")?;
                }
                Ok(())
            }
            Topic::State { host_id } => write!(f, "{NAMESPACE}/STATE/{host_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_node_device_and_state_topics() {
        assert_eq!(
            "spBv1.0/prison-3/NBIRTH/gw-1".parse(),
            Ok(Topic::node("prison-3", MessageType::NBirth, "gw-1"))
        );
        assert_eq!(
            "spBv1.0/prison-3/DDATA/gw-1/door-7".parse(),
            Ok(Topic::device(
                "prison-3",
                MessageType::DData,
                "gw-1",
                "door-7"
            ))
        );
        assert_eq!(
            "spBv1.0/STATE/scada-1".parse(),
            Ok(Topic::State {
                host_id: "scada-1".into()
            })
        );
        let t: Topic = "spBv1.0/g/NDEATH/n".parse().expect("valid");
        assert_eq!(t.message_type(), Some(MessageType::NDeath));
    }

    #[test]
    fn refuses_what_is_not_sparkplug() {
        for bad in [
            "",
            "spBv1.0",
            "spAv1.0/g/NDATA/n",
            "facility/env/1/telemetry",
            "spBv1.0/g/NDATA",
            "spBv1.0/g/XDATA/n",
            "spBv1.0/g/ndata/n",
            "spBv1.0/g/DDATA/n",
            "spBv1.0/g/NDATA/n/d",
            "spBv1.0/g/DDATA/n/d/extra",
            "spBv1.0//NDATA/n",
            "spBv1.0/g/NDATA/",
            "spBv1.0/g/DDATA/n/",
            "spBv1.0/g/NDATA/+",
            "spBv1.0/STATE/",
            "spBv1.0/STATE/#",
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn topics_round_trip(
            group in "[A-Za-z0-9_.-]{1,12}",
            node in "[A-Za-z0-9_.-]{1,12}",
            device in "[A-Za-z0-9_.-]{1,12}",
            kind in prop::sample::select(MessageType::ALL.to_vec()),
        ) {
            let topic = if kind.is_device() {
                Topic::device(group, kind, node, device)
            } else {
                Topic::node(group, kind, node)
            };
            prop_assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Topic>();
        }
    }
}
