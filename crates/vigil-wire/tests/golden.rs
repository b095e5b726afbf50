//! Golden fixtures: the hand-checked payloads under `fixtures/` are the protocol's contract.
//!
//! Every valid fixture must decode, be accepted on its topic, and re-encode to exactly the
//! same JSON value (the encoder's canonical form). Every file under `fixtures/invalid/` must be
//! refused with the error listed for it here. Nothing is regenerated: a change to the wire
//! format shows up as a failing test and a fixture edited by hand.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use vigil_core::node::NameError;
use vigil_core::{AlertEventBody, Lane, Level, NodeId};
use vigil_wire::{
    decode, decode_for_topic, encode, Ack, AuditEvent, BatchError, LinkEvent, LinkState, Message,
    MessageKind, NodeState, Status, Topic, WireError,
};

/// Each valid fixture, with the topic it is published on.
const VALID: &[(&str, &str)] = &[
    ("ack.json", "vigil/v1/down/county-baiyun"),
    ("batch-down.json", "vigil/v1/down/county-baiyun"),
    // A gateway's raise stamped an hour ahead, clamped by its hub and sent back down to it
    // (docs/ARCHITECTURE.md#clocks-and-skew).
    ("batch-down-clamped.json", "vigil/v1/down/gw-prison-3"),
    ("batch-down-directive.json", "vigil/v1/down/county-baiyun"),
    ("batch-up-directive-ack.json", "vigil/v1/up/county-baiyun"),
    ("batch-up-audit.json", "vigil/v1/up/county-baiyun"),
    ("batch-up-critical.json", "vigil/v1/up/county-baiyun"),
    ("batch-up-normal.json", "vigil/v1/up/gw-prison-3"),
    ("status-last-will.json", "vigil/v1/status/gw-prison-3"),
    ("status-ministry.json", "vigil/v1/status/ministry"),
    ("status-online.json", "vigil/v1/status/county-baiyun"),
];

type Expectation = fn(&WireError) -> bool;

/// Each invalid fixture, with the refusal it must get.
const INVALID: &[(&str, Expectation)] = &[
    (
        "truncated.json",
        |e| matches!(e, WireError::Malformed { line: 34, reason, .. } if reason.starts_with("EOF")),
    ),
    ("not-json.json", |e| {
        matches!(
            e,
            WireError::Malformed {
                line: 1,
                column: 1,
                ..
            }
        )
    }),
    ("empty.json", |e| matches!(e, WireError::Malformed { .. })),
    ("array.json", |e| matches!(e, WireError::NotAnObject)),
    (
        "trailing-garbage.json",
        |e| matches!(e, WireError::Malformed { line: 2, column: 1, reason, .. } if reason == "trailing characters"),
    ),
    (
        "duplicate-version.json",
        |e| matches!(e, WireError::Malformed { reason, .. } if reason == "duplicate field `v`"),
    ),
    (
        "invalid-utf8.json",
        |e| matches!(e, WireError::Malformed { line: 1, reason, .. } if reason == "invalid unicode code point"),
    ),
    (
        "lone-surrogate.json",
        |e| matches!(e, WireError::Malformed { line: 1, reason, .. } if reason.contains("hex escape")),
    ),
    (
        "too-deep.json",
        |e| matches!(e, WireError::Malformed { reason, .. } if reason.contains("recursion limit")),
    ),
    ("version-2.json", |e| {
        matches!(e, WireError::UnsupportedVersion { version: 2 })
    }),
    ("version-missing.json", |e| {
        matches!(e, WireError::MissingVersion)
    }),
    (
        "version-string.json",
        |e| matches!(e, WireError::VersionNotInteger { found } if found == "\"1\""),
    ),
    (
        "version-fraction.json",
        |e| matches!(e, WireError::VersionNotInteger { found } if found == "1.5"),
    ),
    ("type-missing.json", |e| matches!(e, WireError::MissingType)),
    (
        "type-unknown.json",
        |e| matches!(e, WireError::UnknownType { found } if found == "\"heartbeat\""),
    ),
    ("ack-missing-lane.json", |e| {
        invalid_field(e, MessageKind::Ack, "missing field `lane`")
    }),
    ("ack-bad-lane.json", |e| {
        invalid_field(e, MessageKind::Ack, "unknown variant `urgent`")
    }),
    ("ack-negative-seq.json", |e| {
        invalid_field(e, MessageKind::Ack, "invalid value: integer `-1`")
    }),
    ("ack-unknown-field.json", |e| {
        invalid_field(e, MessageKind::Ack, "unknown field `node`")
    }),
    ("batch-first-seq-zero.json", |e| {
        matches!(e, WireError::InvalidBatch(BatchError::FirstSeqZero))
    }),
    ("batch-empty.json", |e| {
        matches!(e, WireError::InvalidBatch(BatchError::Empty))
    }),
    ("batch-seq-overflow.json", |e| {
        matches!(
            e,
            WireError::InvalidBatch(BatchError::SeqOverflow {
                first_seq: u64::MAX,
                count: 2
            })
        )
    }),
    ("batch-bad-node.json", |e| {
        matches!(
            e,
            WireError::InvalidNodeId { kind: MessageKind::Batch, field, source: NameError::NodeIdChars(id) }
                if field == "node" && id == "GW Prison 3"
        )
    }),
    ("batch-first-seq-string.json", |e| {
        invalid_field(
            e,
            MessageKind::Batch,
            "invalid type: string \"41\", expected u64",
        )
    }),
    ("batch-unknown-field.json", |e| {
        invalid_field(e, MessageKind::Batch, "unknown field `compressed`")
    }),
    ("batch-unknown-event-kind.json", |e| {
        invalid_field(e, MessageKind::Batch, "unknown variant `health_summary`")
    }),
    ("batch-directive-unknown-field.json", |e| {
        invalid_field(e, MessageKind::Batch, "unknown field `to`")
    }),
    ("batch-event-bad-origin.json", |e| {
        invalid_field(e, MessageKind::Batch, "node id \"Gw-Prison-3\"")
    }),
    ("batch-event-unknown-field.json", |e| {
        invalid_field(e, MessageKind::Batch, "unknown field `priority`")
    }),
    ("batch-event-bad-timestamp.json", |e| {
        invalid_field(e, MessageKind::Batch, "invalid timestamp \"tomorrow\"")
    }),
    (
        "batch-event-shelved-past-9999.json",
        |e| matches!(e, WireError::TimestampOutOfRange { field, .. } if field == "events[1].alert.body.until"),
    ),
    ("batch-audit-seq-zero.json", |e| {
        invalid_field(e, MessageKind::Batch, "audit seq is 0")
    }),
    ("batch-audit-hash-not-hex.json", |e| {
        invalid_field(e, MessageKind::Batch, "is not lower-case hex")
    }),
    ("batch-audit-short-prev-hash.json", |e| {
        invalid_field(e, MessageKind::Batch, "not 64 hex digits")
    }),
    ("batch-audit-details-not-json.json", |e| {
        invalid_field(e, MessageKind::Batch, "audit details are not JSON text")
    }),
    ("batch-audit-unknown-field.json", |e| {
        invalid_field(e, MessageKind::Batch, "unknown field `signature`")
    }),
    ("batch-audit-missing-origin.json", |e| {
        invalid_field(e, MessageKind::Batch, "missing field `origin`")
    }),
    (
        "batch-audit-at-past-9999.json",
        |e| matches!(e, WireError::TimestampOutOfRange { field, .. } if field == "events[0].audit.at"),
    ),
    ("status-missing-state.json", |e| {
        invalid_field(e, MessageKind::Status, "missing field `state`")
    }),
    ("status-bad-child-node.json", |e| {
        matches!(
            e,
            WireError::InvalidNodeId { kind: MessageKind::Status, field, source: NameError::NodeIdChars(_) }
                if field == "children[1].node"
        )
    }),
    (
        "status-timestamp-out-of-range.json",
        |e| matches!(e, WireError::TimestampOutOfRange { field, millis } if field == "at" && *millis == 253_402_315_200_000),
    ),
];

fn invalid_field(err: &WireError, expected_kind: MessageKind, needle: &str) -> bool {
    matches!(err, WireError::InvalidField { kind, reason, line, .. }
        if *kind == expected_kind && reason.contains(needle) && *line >= 1)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn json_files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("fixtures folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            path.file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn fixture(name: &str) -> Message {
    decode(&read(&fixtures().join(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid node id")
}

#[test]
fn every_fixture_is_listed_here() {
    let listed: BTreeSet<String> = VALID.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(json_files(&fixtures()), listed, "fixtures/*.json vs VALID");
    let listed: BTreeSet<String> = INVALID.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(
        json_files(&fixtures().join("invalid")),
        listed,
        "fixtures/invalid/*.json vs INVALID"
    );
}

#[test]
fn valid_fixtures_round_trip_exactly() {
    for (name, topic) in VALID {
        let bytes = read(&fixtures().join(name));
        let message = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));

        let encoded = encode(&message);
        let written: serde_json::Value =
            serde_json::from_slice(&encoded).expect("encoder writes JSON");
        let golden: serde_json::Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        assert_eq!(
            written, golden,
            "{name}: re-encoding differs from the fixture"
        );

        assert_eq!(
            decode(&encoded).as_ref(),
            Ok(&message),
            "{name}: compact form"
        );
        let topic: Topic = topic.parse().expect("valid topic");
        assert_eq!(
            decode_for_topic(&topic, &bytes).as_ref(),
            Ok(&message),
            "{name} on {topic}"
        );
    }
}

#[test]
fn encoding_puts_the_envelope_first() {
    for (name, _) in VALID {
        let encoded = encode(&fixture(name));
        let text = String::from_utf8(encoded).expect("UTF-8");
        assert!(text.starts_with(r#"{"v":1,"type":""#), "{name}: {text}");
    }
}

#[test]
fn fixtures_cover_every_alert_event_kind() {
    let mut seen = BTreeSet::new();
    for (name, _) in VALID {
        if let Message::Batch(batch) = fixture(name) {
            for event in batch.events() {
                if let LinkEvent::Alert(alert) = event {
                    seen.insert(alert.body.name());
                }
            }
        }
    }
    let all = [
        "raised",
        "value_updated",
        "cleared",
        "acknowledged",
        "reset",
        "shelved",
        "unshelved",
        "commented",
        "assigned",
        "closed",
        "suppressed",
        "out_of_service",
        "correlated",
    ];
    assert_eq!(seen, all.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn fixtures_mean_what_they_say() {
    let Message::Batch(up) = fixture("batch-up-critical.json") else {
        panic!("a batch");
    };
    assert_eq!(up.node(), &node("county-baiyun"));
    assert_eq!(up.lane(), Lane::Critical);
    assert_eq!((up.first_seq(), up.last_seq()), (1207, 1212));
    let LinkEvent::Alert(raised) = &up.events()[0] else {
        panic!("an alert event");
    };
    let AlertEventBody::Raised {
        latching,
        zone,
        value,
        evidence,
        ..
    } = &raised.body
    else {
        panic!("first event is a raise");
    };
    assert!(*latching);
    assert_eq!(zone.as_deref(), Some("north-perimeter"));
    assert_eq!(value, &Some(vigil_core::Value::Bool(true)));
    assert_eq!(evidence.len(), 2);

    // The ack in the fixtures acknowledges exactly that batch.
    assert_eq!(
        fixture("ack.json"),
        Message::Ack(Ack::new(Lane::Critical, up.last_seq()))
    );

    assert_eq!(
        fixture("status-last-will.json"),
        Message::Status(Status::last_will(node("gw-prison-3")))
    );

    let Message::Status(online) = fixture("status-online.json") else {
        panic!("a status");
    };
    assert_eq!(online.state, NodeState::Online);
    assert_eq!(online.level, Some(Level::County));
    assert_eq!(online.link.map(|l| l.state), Some(LinkState::Connected));
    assert_eq!(online.backlog.total(), 12);
    let online_devices: u64 = online.children.iter().map(|c| c.devices_online).sum();
    assert_eq!(online_devices, online.devices_online);
    assert_eq!(online.children[2].state, NodeState::Offline);

    // Audit records of two chains, relayed by county-baiyun: each keeps its origin, and
    // consecutive records of one origin chain by hash.
    let Message::Batch(audit) = fixture("batch-up-audit.json") else {
        panic!("a batch");
    };
    assert_eq!(audit.lane(), Lane::Normal);
    let records: Vec<&AuditEvent> = audit
        .events()
        .iter()
        .map(|e| match e {
            LinkEvent::Audit(r) => r,
            other => panic!("audit records only, not {other:?}"),
        })
        .collect();
    assert_eq!(records[0].origin, node("gw-prison-3"));
    assert_eq!(records[0].action, "update.refuse");
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(records[2].origin, node("county-baiyun"));
    assert_eq!(
        audit.events()[0].id(),
        vigil_wire::audit_event_id(&node("gw-prison-3"), 7)
    );
    assert_eq!(audit.events()[0].kind(), "audit");
}

#[test]
fn invalid_fixtures_are_refused_as_expected() {
    for (name, expected) in INVALID {
        let bytes = read(&fixtures().join("invalid").join(name));
        match decode(&bytes) {
            Ok(message) => panic!("{name}: accepted as {message:?}"),
            Err(err) => assert!(expected(&err), "{name}: unexpected refusal {err:?} ({err})"),
        }
    }
}

#[test]
fn payloads_on_the_wrong_topic_are_refused() {
    let up = read(&fixtures().join("batch-up-critical.json")); // from county-baiyun
    let down = read(&fixtures().join("batch-down.json")); // from city-guangzhou
    let ack = read(&fixtures().join("ack.json"));
    let status = read(&fixtures().join("status-online.json")); // of county-baiyun
    let will = read(&fixtures().join("status-last-will.json")); // of gw-prison-3

    let wrong_topic = |bytes: &[u8], topic: Topic, kind: MessageKind| {
        assert_eq!(
            decode_for_topic(&topic, bytes),
            Err(WireError::WrongTopic {
                kind,
                topic: topic.clone()
            }),
            "{kind} on {topic}"
        );
    };
    wrong_topic(
        &up,
        Topic::Status(node("county-baiyun")),
        MessageKind::Batch,
    );
    wrong_topic(&ack, Topic::Status(node("county-baiyun")), MessageKind::Ack);
    wrong_topic(
        &status,
        Topic::Up(node("county-baiyun")),
        MessageKind::Status,
    );
    wrong_topic(&will, Topic::Down(node("gw-prison-3")), MessageKind::Status);

    let mismatch = |bytes: &[u8], topic: Topic, kind: MessageKind, sender: &str| {
        assert_eq!(
            decode_for_topic(&topic, bytes),
            Err(WireError::NodeMismatch {
                kind,
                node: node(sender),
                topic: topic.clone()
            }),
            "{kind} from {sender} on {topic}"
        );
    };
    // A child publishing on another child's up topic.
    mismatch(
        &up,
        Topic::Up(node("gw-prison-3")),
        MessageKind::Batch,
        "county-baiyun",
    );
    // A parent's batch published on the up topic.
    mismatch(
        &down,
        Topic::Up(node("county-baiyun")),
        MessageKind::Batch,
        "city-guangzhou",
    );
    // A batch on a child's down topic that claims to come from the child itself.
    mismatch(
        &up,
        Topic::Down(node("county-baiyun")),
        MessageKind::Batch,
        "county-baiyun",
    );
    // A status of one node on another's status topic.
    mismatch(
        &status,
        Topic::Status(node("gw-prison-3")),
        MessageKind::Status,
        "county-baiyun",
    );
    mismatch(
        &will,
        Topic::Status(node("county-baiyun")),
        MessageKind::Status,
        "gw-prison-3",
    );
}

#[test]
fn a_status_ignores_fields_it_does_not_know_but_a_batch_does_not() {
    let golden = fixture("status-online.json");
    let mut newer: serde_json::Value =
        serde_json::from_slice(&read(&fixtures().join("status-online.json"))).expect("JSON");
    newer["cpu_load"] = serde_json::json!(0.42);
    newer["backlog"]["directives"] = serde_json::json!(3);
    newer["link"]["rtt_ms"] = serde_json::json!(18);
    newer["children"][0]["firmware"] = serde_json::json!("1.4.2");
    let bytes = serde_json::to_vec(&newer).expect("JSON");
    assert_eq!(decode(&bytes), Ok(golden));

    let mut newer: serde_json::Value =
        serde_json::from_slice(&read(&fixtures().join("batch-down.json"))).expect("JSON");
    newer["compressed"] = serde_json::json!(false);
    let bytes = serde_json::to_vec(&newer).expect("JSON");
    assert!(matches!(
        decode(&bytes),
        Err(WireError::InvalidField {
            kind: MessageKind::Batch,
            ..
        })
    ));
}
