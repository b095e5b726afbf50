//! Property: decoding never panics, whatever arrives — arbitrary bytes, arbitrary JSON objects
//! built from the protocol's own vocabulary, and random mutations (byte flips, truncations,
//! deletions, insertions, duplications) of every fixture, valid and invalid. Whatever does
//! decode must be relayable: it encodes again and decodes to the same message.
//!
//! The fuzz target (`fuzz/fuzz_targets/decode.rs`) explores the same space with coverage
//! guidance; these run on stable Rust in every `cargo test`.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vigil_core::NodeId;
use vigil_wire::{decode, decode_for_topic, encode, Message, Topic, WireError};

/// Decodes `bytes` every way there is and checks what decodes is relayable.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let node = NodeId::new("gw-prison-3").expect("valid");
    let decoded = decode(bytes);
    for topic in [
        Topic::Up(node.clone()),
        Topic::Down(node.clone()),
        Topic::Status(node),
    ] {
        let on_topic = decode_for_topic(&topic, bytes);
        if on_topic.is_ok() {
            prop_assert_eq!(
                &on_topic,
                &decoded,
                "accepted on {} but not in general",
                topic
            );
        }
    }
    if let Ok(message) = decoded {
        relayable(&message)?;
    }
    Ok(())
}

fn relayable(message: &Message) -> Result<(), TestCaseError> {
    let again = encode(message);
    let decoded = decode(&again);
    prop_assert_eq!(
        decoded.as_ref(),
        Ok(message),
        "re-encoded: {}",
        String::from_utf8_lossy(&again)
    );
    Ok(())
}

/// Every fixture, valid (`true`) and invalid, read once.
fn fixtures() -> &'static [(bool, Vec<u8>)] {
    static ALL: OnceLock<Vec<(bool, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut all = Vec::new();
        for (valid, dir) in [(true, root.clone()), (false, root.join("invalid"))] {
            for entry in fs::read_dir(&dir).expect("fixtures folder") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|ext| ext == "json") {
                    all.push((valid, fs::read(&path).expect("readable fixture")));
                }
            }
        }
        all.sort();
        all
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Positions are taken modulo the input's length when applied.
    let interesting = prop::sample::select(b"{}[]\":,0123456789-+.eE\\ntfu \x00\xff".to_vec());
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), interesting).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..256usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    let pos = |at: usize| if len == 0 { 0 } else { at % len };
    match mutation {
        Mutation::Flip { at, mask } if len > 0 => bytes[pos(*at)] ^= mask,
        Mutation::Set { at, byte } if len > 0 => bytes[pos(*at)] = *byte,
        Mutation::Truncate { at } => bytes.truncate(pos(*at)),
        Mutation::Delete { at, len: n } => {
            let start = pos(*at);
            let end = (start + n).min(len);
            bytes.drain(start..end);
        }
        Mutation::Insert { at, bytes: new } => {
            let start = pos(*at);
            bytes.splice(start..start, new.iter().copied());
        }
        Mutation::Duplicate { at, len: n } => {
            let start = pos(*at);
            let end = (start + n).min(len);
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
        Mutation::Flip { .. } | Mutation::Set { .. } => {}
    }
}

/// A JSON value from the protocol's vocabulary: the keys and strings a decoder looks for,
/// nested, so that random objects reach past the header into the typed fields.
fn vocabulary_json() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "v",
        "type",
        "batch",
        "ack",
        "status",
        "node",
        "lane",
        "critical",
        "normal",
        "first_seq",
        "events",
        "alert",
        "upto_seq",
        "state",
        "online",
        "offline",
        "level",
        "county",
        "at",
        "children",
        "backlog",
        "link",
        "connected",
        "last_ack_at",
        "since",
        "devices_online",
        "devices_total",
        "id",
        "origin",
        "hlc",
        "wall",
        "logical",
        "actor",
        "system",
        "user",
        "body",
        "raised",
        "shelved",
        "until",
        "key",
        "source",
        "kind",
        "site",
        "severity",
        "message",
        "value",
        "gw-prison-3",
        "GW",
        "",
        "2026-11-29T12:00:00.000Z",
        "9999-12-31T23:59:59.999-01:00",
        "0000-01-01T00:00:00+00:01",
        "01a2272d-2600-7a01-b000-f3c2d4e5f6a7",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX), any::<u64>()]
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        words.clone().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((words.clone(), inner), 0..8).prop_map(|members| Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_protocol_shaped_objects_never_panic(
        version in prop_oneof![Just(json!(1)), Just(json!(2)), Just(json!("1")), Just(Value::Null)],
        kind in prop_oneof![Just("batch"), Just("ack"), Just("status"), Just("other")],
        body in vocabulary_json(),
    ) {
        let mut object = match body {
            Value::Object(members) => members,
            other => Map::from_iter([("events".to_owned(), other)]),
        };
        object.insert("v".to_owned(), version);
        object.insert("type".to_owned(), json!(kind));
        check(&serde_json::to_vec(&object).expect("JSON"))?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        index in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = fixtures();
        let mut bytes = all[index.index(all.len())].1.clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        check(&bytes)?;
    }
}

#[test]
fn every_truncation_of_every_fixture_is_handled() {
    for (valid, fixture) in fixtures() {
        for cut in 0..fixture.len() {
            let prefix = &fixture[..cut];
            match decode(prefix) {
                Ok(message) => {
                    assert!(!valid || fixture[cut..].iter().all(u8::is_ascii_whitespace));
                    assert_eq!(decode(&encode(&message)).as_ref(), Ok(&message));
                }
                // A valid fixture is one object: any prefix short of its closing brace is
                // refused as not JSON.
                Err(err) => assert!(
                    !valid || matches!(err, WireError::Malformed { .. }),
                    "{cut}: {err:?}"
                ),
            }
        }
    }
}

#[test]
fn generated_limits() {
    // Too large: refused before parsing, even if it would be valid JSON.
    let big = format!(
        r#"{{"v":1,"type":"ack","lane":"normal","upto_seq":1,"pad":"{}"}}"#,
        "x".repeat(vigil_wire::MAX_PAYLOAD_BYTES)
    );
    assert!(matches!(
        decode(big.as_bytes()),
        Err(WireError::TooLarge { .. })
    ));

    // Too many events: one over the limit is refused, at the limit is fine.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut batch: Value =
        serde_json::from_slice(&fs::read(root.join("batch-down.json")).expect("fixture"))
            .expect("JSON");
    let event = batch["events"][0].clone();
    batch["events"] = Value::Array(vec![event.clone(); vigil_wire::MAX_BATCH_EVENTS]);
    let at_limit = serde_json::to_vec(&batch).expect("JSON");
    assert!(decode(&at_limit).is_ok());
    batch["events"] = Value::Array(vec![event; vigil_wire::MAX_BATCH_EVENTS + 1]);
    let over = serde_json::to_vec(&batch).expect("JSON");
    assert_eq!(
        decode(&over),
        Err(WireError::InvalidBatch(
            vigil_wire::BatchError::TooManyEvents {
                count: vigil_wire::MAX_BATCH_EVENTS + 1,
                max: vigil_wire::MAX_BATCH_EVENTS
            }
        ))
    );
}
