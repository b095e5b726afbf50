//! Fuzzes payload decoding: `decode` and `decode_for_topic` on arbitrary bytes.
//!
//! Beyond "never panics", it checks the properties the link relies on: a payload accepted on
//! a topic is the one `decode` reads, it is accepted on the topic it belongs on, and whatever
//! decodes is relayable — it encodes again and decodes to the same message. Seeds: the golden
//! and invalid fixtures (`scripts/fuzz.sh` copies them into the corpus).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::NodeId;
use vigil_wire::{decode, decode_for_topic, encode, Message, Topic};

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);

    let node = NodeId::new("gw-prison-3").expect("valid node id");
    for topic in [
        Topic::Up(node.clone()),
        Topic::Down(node.clone()),
        Topic::Status(node),
    ] {
        let on_topic = decode_for_topic(&topic, data);
        if on_topic.is_ok() {
            assert_eq!(
                on_topic, decoded,
                "accepted on {topic} but read differently"
            );
        }
    }

    let Ok(message) = decoded else { return };
    let home = match &message {
        Message::Batch(batch) => Topic::Up(batch.node().clone()),
        Message::Ack(_) => Topic::Down(NodeId::new("gw-prison-3").expect("valid node id")),
        Message::Status(status) => Topic::Status(status.node.clone()),
    };
    assert_eq!(
        decode_for_topic(&home, data).as_ref(),
        Ok(&message),
        "refused on {home}"
    );

    let again = encode(&message);
    assert_eq!(decode(&again).as_ref(), Ok(&message), "not relayable");
});
