//! The per-node access control of the gate: what a node, identified by its certificate,
//! may send to the broker. Pure — packets in, verdicts out — and tested without I/O.
//!
//! | packet | allowed |
//! |---|---|
//! | CONNECT (first, and only once) | MQTT 3.1.1; client id = the node id; a last will only on `vigil/v1/status/{node}`. Its username and password are replaced by the broker's internal ones. |
//! | PUBLISH | on `vigil/v1/up/{node}` and `vigil/v1/status/{node}` only |
//! | SUBSCRIBE | every filter exactly `vigil/v1/down/{node}` (no wildcards) |
//! | UNSUBSCRIBE, PINGREQ, PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT | always |
//! | anything else (CONNACK, SUBACK, … from a client) | never |
//!
//! The client id is **refused**, not rewritten, when it differs from the node id: a node
//! configured with another client id is misconfigured, and should hear so (its connection
//! fails and the hub's audit log says why) rather than run under a name it did not choose.
//! This is also what keeps one node from taking over another's MQTT session (a broker
//! drops the older of two connections with the same client id).
//!
//! MQTT 3.1.1 cannot refuse a single publish or subscription in a way every client
//! understands, so every violation closes the connection.

use std::fmt;

use rumqttc::mqttbytes::v4::{Connect, Login, Packet};
use rumqttc::mqttbytes::Protocol;
use vigil_core::NodeId;
use vigil_wire::Topic;

use crate::mqtt::MqttCredentials;

/// What the node tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Connect (its client id, its last will, its protocol).
    Connect,
    /// Publish.
    Publish,
    /// Subscribe.
    Subscribe,
    /// Any other packet that a client may not send.
    Packet,
}

impl Action {
    /// Its name in logs and audit records: `connect`, `publish`, `subscribe`, `packet`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Packet => "packet",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a packet was refused: the `reason` label of `vigil_gate_denials_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// A CONNECT whose client id is not the certificate's node id.
    ClientId,
    /// A last will on another topic than the node's own status topic.
    WillTopic,
    /// A publish on a topic that is not the node's own `up` or `status`.
    PublishTopic,
    /// A subscription to anything but the node's own `down` topic.
    SubscribeFilter,
    /// Not MQTT 3.1.1 as a client speaks it: another protocol version, a packet before
    /// CONNECT or a second CONNECT, a packet only a broker sends, a malformed packet.
    Protocol,
}

impl DenialReason {
    /// Every reason, for metrics.
    pub const ALL: [DenialReason; 5] = [
        DenialReason::ClientId,
        DenialReason::WillTopic,
        DenialReason::PublishTopic,
        DenialReason::SubscribeFilter,
        DenialReason::Protocol,
    ];

    /// Its label: `client_id`, `will_topic`, `publish_topic`, `subscribe_filter`,
    /// `protocol`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenialReason::ClientId => "client_id",
            DenialReason::WillTopic => "will_topic",
            DenialReason::PublishTopic => "publish_topic",
            DenialReason::SubscribeFilter => "subscribe_filter",
            DenialReason::Protocol => "protocol",
        }
    }
}

impl fmt::Display for DenialReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What was tried.
    pub action: Action,
    /// Why it was refused.
    pub reason: DenialReason,
    /// The topic or filter (or, for a CONNECT, the client id) concerned, if any.
    pub topic: Option<String>,
}

impl Violation {
    fn new(action: Action, reason: DenialReason, topic: Option<&str>) -> Self {
        Violation {
            action,
            reason,
            topic: topic.map(str::to_owned),
        }
    }

    /// A packet that is not MQTT 3.1.1 from a client (`what` says which).
    pub fn protocol(what: &str) -> Self {
        Violation::new(Action::Packet, DenialReason::Protocol, Some(what))
    }
}

/// The ACL of one node's connection.
#[derive(Debug, Clone)]
pub struct Acl {
    node: NodeId,
    up: String,
    status: String,
    down: String,
}

impl Acl {
    /// The ACL of `node` (the common name of its verified certificate).
    pub fn new(node: NodeId) -> Acl {
        Acl {
            up: Topic::Up(node.clone()).to_string(),
            status: Topic::Status(node.clone()).to_string(),
            down: Topic::Down(node.clone()).to_string(),
            node,
        }
    }

    /// The node.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Checks the connection's first packet and, if it is an allowed CONNECT, puts the
    /// broker's `internal` login in place of the client's.
    pub fn connect(
        &self,
        packet: Packet,
        internal: &MqttCredentials,
    ) -> Result<Connect, Violation> {
        let Packet::Connect(mut connect) = packet else {
            return Err(Violation::protocol("a packet before CONNECT"));
        };
        if connect.protocol != Protocol::V4 {
            return Err(Violation::new(
                Action::Connect,
                DenialReason::Protocol,
                Some("MQTT 5 (this broker speaks 3.1.1)"),
            ));
        }
        if connect.client_id != self.node.as_str() {
            return Err(Violation::new(
                Action::Connect,
                DenialReason::ClientId,
                Some(&connect.client_id),
            ));
        }
        if let Some(will) = &connect.last_will {
            if will.topic != self.status {
                return Err(Violation::new(
                    Action::Connect,
                    DenialReason::WillTopic,
                    Some(&will.topic),
                ));
            }
        }
        connect.login = Some(Login::new(
            internal.username.clone(),
            internal.password.clone(),
        ));
        Ok(connect)
    }

    /// Checks a packet after the CONNECT.
    pub fn check(&self, packet: &Packet) -> Result<(), Violation> {
        match packet {
            Packet::Publish(publish) => {
                if publish.topic == self.up || publish.topic == self.status {
                    Ok(())
                } else {
                    Err(Violation::new(
                        Action::Publish,
                        DenialReason::PublishTopic,
                        Some(&publish.topic),
                    ))
                }
            }
            Packet::Subscribe(subscribe) => {
                match subscribe.filters.iter().find(|f| f.path != self.down) {
                    None => Ok(()),
                    Some(filter) => Err(Violation::new(
                        Action::Subscribe,
                        DenialReason::SubscribeFilter,
                        Some(&filter.path),
                    )),
                }
            }
            Packet::Unsubscribe(_)
            | Packet::PingReq
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::Disconnect => Ok(()),
            Packet::Connect(_) => Err(Violation::protocol("a second CONNECT")),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(Violation::protocol("a packet only a broker sends"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4::{LastWill, Publish, Subscribe, SubscribeFilter, Unsubscribe};
    use rumqttc::mqttbytes::QoS;

    use super::*;

    fn acl() -> Acl {
        Acl::new(NodeId::new("gw-1").expect("valid"))
    }

    fn internal() -> MqttCredentials {
        MqttCredentials::new("vigil-gate", "secret")
    }

    fn connect(id: &str) -> Connect {
        Connect::new(id)
    }

    #[test]
    fn connect_replaces_the_login() {
        let mut c = connect("gw-1");
        c.set_login("gw-1", "whatever the client says");
        c.last_will = Some(LastWill::new(
            "vigil/v1/status/gw-1",
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        let allowed = acl()
            .connect(Packet::Connect(c), &internal())
            .expect("allowed");
        let login = allowed.login.expect("login");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("vigil-gate", "secret")
        );
        // No login at all: one is added.
        let allowed = acl()
            .connect(Packet::Connect(connect("gw-1")), &internal())
            .expect("allowed");
        assert!(allowed.login.is_some());
    }

    #[test]
    fn connect_refusals() {
        let refuse = |packet: Packet| acl().connect(packet, &internal()).expect_err("refused");
        let v = refuse(Packet::Connect(connect("gw-2")));
        assert_eq!(
            (v.action, v.reason, v.topic.as_deref()),
            (Action::Connect, DenialReason::ClientId, Some("gw-2"))
        );
        assert_eq!(
            refuse(Packet::Connect(connect(""))).reason,
            DenialReason::ClientId
        );
        let mut c = connect("gw-1");
        c.last_will = Some(LastWill::new(
            "vigil/v1/status/gw-2",
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        let v = refuse(Packet::Connect(c));
        assert_eq!(
            (v.reason, v.topic.as_deref()),
            (DenialReason::WillTopic, Some("vigil/v1/status/gw-2"))
        );
        let mut c = connect("gw-1");
        c.protocol = Protocol::V5;
        assert_eq!(refuse(Packet::Connect(c)).reason, DenialReason::Protocol);
        assert_eq!(refuse(Packet::PingReq).reason, DenialReason::Protocol);
    }

    #[test]
    fn publish_only_on_own_up_and_status() {
        let acl = acl();
        for topic in ["vigil/v1/up/gw-1", "vigil/v1/status/gw-1"] {
            acl.check(&Packet::Publish(Publish::new(topic, QoS::AtLeastOnce, "x")))
                .expect(topic);
        }
        for topic in [
            "vigil/v1/up/gw-2",
            "vigil/v1/status/gw-2",
            "vigil/v1/down/gw-1",
            "vigil/v1/up/gw-1/extra",
            "vigil/v1/up/+",
            "other",
            "",
        ] {
            let v = acl
                .check(&Packet::Publish(Publish::new(topic, QoS::AtLeastOnce, "x")))
                .expect_err(topic);
            assert_eq!(
                (v.action, v.reason, v.topic.as_deref()),
                (Action::Publish, DenialReason::PublishTopic, Some(topic))
            );
        }
    }

    #[test]
    fn subscribe_only_to_own_down() {
        let acl = acl();
        let sub = |filters: &[&str]| Subscribe {
            pkid: 1,
            filters: filters
                .iter()
                .map(|f| SubscribeFilter::new((*f).to_owned(), QoS::AtLeastOnce))
                .collect(),
        };
        acl.check(&Packet::Subscribe(sub(&["vigil/v1/down/gw-1"])))
            .expect("own down");
        for filters in [
            &["vigil/v1/down/gw-2"][..],
            &["vigil/v1/down/+"],
            &["vigil/#"],
            &["#"],
            &["vigil/v1/up/gw-1"],
            &["vigil/v1/down/gw-1", "vigil/v1/status/+"],
        ] {
            let v = acl
                .check(&Packet::Subscribe(sub(filters)))
                .expect_err("refused");
            assert_eq!(
                (v.action, v.reason),
                (Action::Subscribe, DenialReason::SubscribeFilter)
            );
        }
    }

    #[test]
    fn the_rest_passes_or_is_a_protocol_error() {
        let acl = acl();
        for packet in [
            Packet::PingReq,
            Packet::Disconnect,
            Packet::PubAck(rumqttc::mqttbytes::v4::PubAck::new(1)),
            Packet::Unsubscribe(Unsubscribe::new("vigil/v1/down/gw-2")),
        ] {
            acl.check(&packet).expect("passes");
        }
        for packet in [Packet::Connect(connect("gw-1")), Packet::PingResp] {
            assert_eq!(
                acl.check(&packet).expect_err("refused").reason,
                DenialReason::Protocol
            );
        }
    }
}
