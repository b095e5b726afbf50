//! Fuzzes the broker gate's view of a client's byte stream: MQTT 3.1.1 framing, the CONNECT
//! check and the per-node ACL, on arbitrary bytes from a (certified but hostile) node.
//!
//! Beyond "never panics": what the gate lets through is written again from what was parsed,
//! and those bytes parse back to the same packet, which the ACL still allows — the broker
//! never sees a packet the gate did not check.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use vigil_core::NodeId;
use vigil_link::gate::acl::Acl;
use vigil_link::gate::frame::{next_packet, write_packet, Frame};
use vigil_link::MqttCredentials;

const MAX: usize = 1 << 20;

fn reparse(packet: &rumqttc::mqttbytes::v4::Packet) -> rumqttc::mqttbytes::v4::Packet {
    let mut out = BytesMut::new();
    write_packet(packet, &mut out, MAX).expect("an allowed packet can be written");
    match next_packet(&mut out, MAX).expect("what the gate wrote parses") {
        Frame::Packet(again) => {
            assert!(out.is_empty(), "bytes left after the rewritten packet");
            again
        }
        Frame::Incomplete => panic!("the rewritten packet is incomplete"),
    }
}

fuzz_target!(|data: &[u8]| {
    let acl = Acl::new(NodeId::new("gw-prison-3").expect("a valid node id"));
    let internal = MqttCredentials::new("vigil-gate", "secret");
    let mut buf = BytesMut::from(data);
    let mut connected = false;
    // Bounded: every packet consumes at least two bytes.
    for _ in 0..=data.len() / 2 {
        let packet = match next_packet(&mut buf, MAX) {
            Ok(Frame::Packet(packet)) => packet,
            Ok(Frame::Incomplete) | Err(_) => break,
        };
        if !connected {
            let Ok(connect) = acl.connect(packet, &internal) else {
                break;
            };
            let connect = rumqttc::mqttbytes::v4::Packet::Connect(connect);
            let again = reparse(&connect);
            assert_eq!(again, connect, "CONNECT changed on the way to the broker");
            connected = true;
            continue;
        }
        if acl.check(&packet).is_err() {
            break;
        }
        let again = reparse(&packet);
        assert_eq!(again, packet, "a packet changed on the way to the broker");
        assert!(acl.check(&again).is_ok(), "the rewritten packet is not allowed");
    }
});
