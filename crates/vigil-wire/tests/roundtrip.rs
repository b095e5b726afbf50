//! Property: every message the crate can build encodes to a payload that decodes to an equal
//! message, on the topic it belongs on — for all alert event kinds, arbitrary text (any
//! Unicode, control characters, quotes), extreme numbers and the whole range of timestamps
//! RFC 3339 can write.

use proptest::prelude::*;
use vigil_core::alert::Evidence;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, Lane, Level,
    NodeId, Severity, SitePath, Timestamp, Value,
};
use vigil_wire::{
    decode, decode_for_topic, encode, try_encode, Ack, AuditEvent, AuditHash, Backlog, Batch,
    ChildStatus, LinkEvent, LinkState, LinkStatus, Message, NodeState, Status, Topic,
    MAX_BATCH_EVENTS,
};

/// 0000-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z.
const TS_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

fn node_id() -> impl Strategy<Value = NodeId> {
    "[a-z0-9][a-z0-9._-]{0,63}".prop_map(|id| NodeId::new(id).expect("regex yields valid ids"))
}

fn site() -> impl Strategy<Value = SitePath> {
    prop::collection::vec("[a-z0-9][a-z0-9._-]{0,15}", 1..=5)
        .prop_map(|segments| SitePath::new(segments.join("/")).expect("valid site path"))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        1 => Just(Timestamp::from_millis(*TS_RANGE.start())),
        1 => Just(Timestamp::from_millis(*TS_RANGE.end())),
        8 => TS_RANGE.prop_map(Timestamp::from_millis),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 .,:;!?/_-]{0,40}",
        1 => any::<String>(),
        1 => r#"["\\\x{0}-\x{1f}\x{7f}\x{2028}\x{2029}é中🚨]{0,10}"#,
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(Value::Float),
        prop_oneof![
            Just(0.1),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324)
        ]
        .prop_map(Value::Float),
        text().prop_map(Value::Text),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn lane() -> impl Strategy<Value = Lane> {
    prop::sample::select(Lane::ALL.to_vec())
}

fn alert_key() -> impl Strategy<Value = AlertKey> {
    (node_id(), "[a-zA-Z0-9/_.:é-]{1,40}", "[a-z0-9_-]{1,64}").prop_map(|(origin, source, kind)| {
        AlertKey::new(
            origin,
            source,
            ConditionKind::new(kind).expect("valid kind"),
        )
        .expect("valid key")
    })
}

fn evidence() -> impl Strategy<Value = Evidence> {
    (text(), text()).prop_map(|(kind, uri)| Evidence { kind, uri })
}

fn body() -> impl Strategy<Value = AlertEventBody> {
    let opt_text = || prop::option::of(text());
    prop_oneof![
        (
            alert_key(),
            site(),
            severity(),
            text(),
            prop::option::of(value()),
            timestamp(),
            any::<bool>(),
            prop::option::of(text()),
            prop::collection::vec(evidence(), 0..3),
        )
            .prop_map(
                |(key, site, severity, message, value, at, latching, zone, evidence)| {
                    AlertEventBody::Raised {
                        key,
                        site,
                        severity,
                        message,
                        value,
                        at,
                        latching,
                        zone,
                        evidence,
                    }
                }
            ),
        (
            prop::option::of(value()),
            prop::option::of(severity()),
            opt_text(),
            timestamp()
        )
            .prop_map(
                |(value, severity, message, at)| AlertEventBody::ValueUpdated {
                    value,
                    severity,
                    message,
                    at
                }
            ),
        (prop::option::of(value()), timestamp())
            .prop_map(|(value, at)| AlertEventBody::Cleared { value, at }),
        opt_text().prop_map(|comment| AlertEventBody::Acknowledged { comment }),
        Just(AlertEventBody::Reset),
        (timestamp(), opt_text())
            .prop_map(|(until, reason)| AlertEventBody::Shelved { until, reason }),
        Just(AlertEventBody::Unshelved),
        text().prop_map(|text| AlertEventBody::Commented { text }),
        text().prop_map(|to| AlertEventBody::Assigned { to }),
        opt_text().prop_map(|reason| AlertEventBody::Closed { reason }),
        any::<bool>().prop_map(|active| AlertEventBody::Suppressed { active }),
        any::<bool>().prop_map(|active| AlertEventBody::OutOfService { active }),
        any::<[u8; 16]>().prop_map(|b| AlertEventBody::Correlated {
            incident: AlertId::from_bytes(b)
        }),
    ]
}

fn audit_event() -> impl Strategy<Value = LinkEvent> {
    (
        (node_id(), 1..=u64::MAX, timestamp(), text(), text()),
        (text(), text(), text()),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |((origin, seq, at, node, actor), (action, target, detail), prev, hash)| {
                LinkEvent::Audit(AuditEvent {
                    origin,
                    seq,
                    at,
                    node,
                    actor,
                    action,
                    target,
                    details: serde_json::json!({ "text": detail }).to_string(),
                    prev_hash: AuditHash(prev),
                    hash: AuditHash(hash),
                })
            },
        )
}

fn link_event() -> impl Strategy<Value = LinkEvent> {
    prop_oneof![4 => alert_event(), 1 => audit_event()]
}

fn alert_event() -> impl Strategy<Value = LinkEvent> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        node_id(),
        any::<u64>(),
        any::<u16>(),
        prop_oneof![Just(Actor::System), text().prop_map(Actor::User)],
        body(),
    )
        .prop_map(|(id, alert, origin, wall, logical, actor, body)| {
            LinkEvent::Alert(AlertEvent {
                id: EventId::from_bytes(id),
                alert: AlertId::from_bytes(alert),
                origin,
                hlc: Hlc::new(wall, logical),
                actor,
                body,
                clamped_from: None,
            })
        })
}

fn batch() -> impl Strategy<Value = Batch> {
    let last_first = u64::MAX - (MAX_BATCH_EVENTS as u64 - 1);
    (
        node_id(),
        lane(),
        prop_oneof![Just(1), 1..=last_first, Just(last_first)],
        prop::collection::vec(link_event(), 1..8),
    )
        .prop_map(|(node, lane, first_seq, events)| {
            Batch::new(node, lane, first_seq, events).expect("valid batch")
        })
}

fn backlog() -> impl Strategy<Value = Backlog> {
    prop_oneof![
        Just(Backlog::default()),
        (any::<u64>(), any::<u64>()).prop_map(|(critical, normal)| Backlog { critical, normal }),
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), any::<u64>()]
}

fn node_state() -> impl Strategy<Value = NodeState> {
    prop_oneof![Just(NodeState::Online), Just(NodeState::Offline)]
}

fn level() -> impl Strategy<Value = Option<Level>> {
    prop::option::of(prop::sample::select(vec![
        Level::Ministry,
        Level::Province,
        Level::City,
        Level::County,
        Level::Facility,
    ]))
}

fn child() -> impl Strategy<Value = ChildStatus> {
    (
        node_id(),
        node_state(),
        level(),
        prop::option::of(timestamp()),
        count(),
        count(),
        backlog(),
    )
        .prop_map(
            |(node, state, level, since, devices_online, devices_total, backlog)| ChildStatus {
                node,
                state,
                level,
                since,
                devices_online,
                devices_total,
                backlog,
            },
        )
}

fn status() -> impl Strategy<Value = Status> {
    let link = prop::option::of(
        (
            prop_oneof![
                Just(LinkState::Connected),
                Just(LinkState::Connecting),
                Just(LinkState::Disconnected)
            ],
            prop::option::of(timestamp()),
        )
            .prop_map(|(state, last_ack_at)| LinkStatus { state, last_ack_at }),
    );
    (
        node_id(),
        node_state(),
        level(),
        prop::option::of(timestamp()),
        count(),
        count(),
        backlog(),
        link,
        prop::collection::vec(child(), 0..4),
        prop::option::of((1u64..u64::MAX, any::<[u8; 32]>())),
    )
        .prop_map(
            |(
                node,
                state,
                level,
                at,
                devices_online,
                devices_total,
                backlog,
                link,
                children,
                audit,
            )| {
                Status {
                    node,
                    state,
                    level,
                    at,
                    devices_online,
                    devices_total,
                    backlog,
                    link,
                    children,
                    audit: audit.map(|(seq, hash)| vigil_wire::AuditTail {
                        seq,
                        hash: vigil_wire::AuditHash(hash),
                    }),
                    bindings: Vec::new(),
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        batch().prop_map(Message::Batch),
        (lane(), any::<u64>()).prop_map(|(lane, upto)| Message::Ack(Ack::new(lane, upto))),
        status().prop_map(Message::Status),
        node_id().prop_map(|node| Message::Status(Status::last_will(node))),
    ]
}

/// The topic a message is published on (for a batch: as an uplink).
fn home_topic(message: &Message, child: NodeId) -> Topic {
    match message {
        Message::Batch(batch) => Topic::Up(batch.node().clone()),
        Message::Ack(_) => Topic::Down(child),
        Message::Status(status) => Topic::Status(status.node.clone()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_the_identity(message in message(), child in node_id()) {
        let bytes = encode(&message);
        prop_assert_eq!(decode(&bytes), Ok(message.clone()));
        let topic = home_topic(&message, child);
        prop_assert_eq!(decode_for_topic(&topic, &bytes), Ok(message.clone()));
        prop_assert_eq!(try_encode(&message), Ok(bytes));
    }

    #[test]
    fn a_downlink_batch_decodes_on_the_childs_down_topic(batch in batch(), child in node_id()) {
        prop_assume!(batch.node() != &child);
        let message = Message::Batch(batch);
        let bytes = encode(&message);
        prop_assert_eq!(decode_for_topic(&Topic::Down(child), &bytes), Ok(message));
    }

    #[test]
    fn topics_round_trip(node in node_id(), which in 0..3u8) {
        let topic = match which {
            0 => Topic::Up(node),
            1 => Topic::Down(node),
            _ => Topic::Status(node),
        };
        prop_assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
    }
}
