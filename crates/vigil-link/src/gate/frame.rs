//! MQTT 3.1.1 framing of the client → broker stream: the fixed header says how long a
//! packet is; a whole packet is parsed (rumqttc's v4 codec) and, once allowed, written
//! again from what was parsed. The broker sees exactly the packet the ACL checked — never
//! bytes the gate's parser and the broker's parser might read differently.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use rumqttc::mqttbytes::{self, Error};

/// What the buffer holds.
#[derive(Debug)]
pub enum Frame {
    /// A whole packet, taken off the buffer.
    Packet(Packet),
    /// Not a whole packet yet: read more.
    Incomplete,
}

/// Takes the next whole packet off `buf`; packets over `max_bytes` and malformed ones are
/// errors (the connection is closed).
pub fn next_packet(buf: &mut BytesMut, max_bytes: usize) -> Result<Frame, Error> {
    if buf.is_empty() {
        return Ok(Frame::Incomplete);
    }
    match mqttbytes::check(buf.iter(), max_bytes) {
        Ok(_) => Packet::read(buf, max_bytes).map(Frame::Packet),
        Err(Error::InsufficientBytes(_)) => Ok(Frame::Incomplete),
        Err(err) => Err(err),
    }
}

/// Writes `packet` as MQTT 3.1.1 bytes onto `out`.
pub fn write_packet(packet: &Packet, out: &mut BytesMut, max_bytes: usize) -> Result<(), Error> {
    packet.write(out, max_bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4::Publish;
    use rumqttc::mqttbytes::QoS;

    use super::*;

    fn publish() -> Packet {
        let mut publish = Publish::new("vigil/v1/up/gw-1", QoS::AtLeastOnce, vec![7u8; 300]);
        publish.pkid = 1;
        Packet::Publish(publish)
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut wire = BytesMut::new();
        let publish = publish();
        write_packet(&publish, &mut wire, 1 << 20).expect("write");
        write_packet(&Packet::PingReq, &mut wire, 1 << 20).expect("write");
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Frame::Packet(p) = next_packet(&mut buf, 1 << 20).expect("valid") {
                got.push(p);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Frame::Packet(p) = next_packet(&mut buf, 1 << 20).expect("valid") {
                got.push(p);
            }
            assert!(buf.is_empty());
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0], publish);
        }
    }

    #[test]
    fn oversized_and_malformed_are_errors() {
        let mut wire = BytesMut::new();
        let publish = publish();
        write_packet(&publish, &mut wire, 1 << 20).expect("write");
        assert!(
            next_packet(&mut wire.clone(), 100).is_err(),
            "over the limit"
        );
        // A remaining length that never ends.
        let mut bad = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(next_packet(&mut bad, 1 << 20).is_err());
        // Packet type 0 is reserved.
        let mut bad = BytesMut::from(&[0x00u8, 0x00][..]);
        assert!(next_packet(&mut bad, 1 << 20).is_err());
    }
}
