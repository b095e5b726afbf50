//! MBAP framing (Modbus TCP): the 7-byte header — transaction id, protocol id (0), length,
//! unit id — in front of each PDU. Pure: frames are cut from and written to byte buffers.
//!
//! The length field counts the unit id and the PDU, so it is 2..=254 for a valid frame (a PDU
//! is at most 253 bytes). A frame with another protocol id or an impossible length cannot be
//! resynchronised on a stream: the server closes the connection, as real devices do.

/// The MBAP header's length in bytes.
pub const HEADER_LEN: usize = 7;
/// The longest PDU.
pub const MAX_PDU_LEN: usize = 253;

/// An MBAP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Echoed in the response so the client can match it to its request.
    pub transaction: u16,
    /// The unit id: the device behind a gateway (255 or the device's own id when direct).
    pub unit: u8,
}

/// A stream that is not Modbus TCP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MbapError {
    /// The protocol id is not 0.
    #[error("protocol id {0:#06x} is not Modbus (0)")]
    ProtocolId(u16),
    /// The length field is outside 2..=254.
    #[error("MBAP length {0} is outside 2..=254")]
    Length(u16),
}

/// Cuts the next complete frame off the front of `buf`: `Ok(None)` while more bytes are
/// needed.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<(Header, Vec<u8>)>, MbapError> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let transaction = u16::from_be_bytes([head[0], head[1]]);
    let protocol = u16::from_be_bytes([head[2], head[3]]);
    let length = u16::from_be_bytes([head[4], head[5]]);
    let unit = head[6];
    if protocol != 0 {
        return Err(MbapError::ProtocolId(protocol));
    }
    if !(2..=254).contains(&length) {
        return Err(MbapError::Length(length));
    }
    let total = HEADER_LEN - 1 + usize::from(length);
    if buf.len() < total {
        return Ok(None);
    }
    let pdu = buf[HEADER_LEN..total].to_vec();
    buf.drain(..total);
    Ok(Some((Header { transaction, unit }, pdu)))
}

/// A frame: header then PDU.
pub fn encode(header: Header, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + pdu.len());
    out.extend(header.transaction.to_be_bytes());
    out.extend(0u16.to_be_bytes());
    out.extend(
        u16::try_from(pdu.len() + 1)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.push(header.unit);
    out.extend(pdu);
    out
}

/// A broken frame for the `garbage` fault: the request's transaction id, a protocol id that
/// is not Modbus, a consistent length and the random `bytes` — so that a client fails at once
/// on the header instead of waiting for bytes that never come.
pub fn garbage(header: Header, bytes: &[u8]) -> Vec<u8> {
    let mut out = encode(header, bytes);
    // The first random byte (never 0) becomes the protocol id's high byte.
    out[2] = bytes.first().copied().unwrap_or(0xDE).max(1);
    out[3] = bytes.get(1).copied().unwrap_or(0xAD);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_arrive_in_pieces() {
        let frame = encode(
            Header {
                transaction: 0x1234,
                unit: 7,
            },
            &[3, 0, 0, 0, 2],
        );
        assert_eq!(frame, [0x12, 0x34, 0, 0, 0, 6, 7, 3, 0, 0, 0, 2]);
        let mut buf = frame[..9].to_vec();
        assert_eq!(take_frame(&mut buf), Ok(None));
        buf.extend(&frame[9..]);
        buf.extend(&frame[..3]);
        let (h, pdu) = take_frame(&mut buf).expect("valid").expect("complete");
        assert_eq!(h.transaction, 0x1234);
        assert_eq!(h.unit, 7);
        assert_eq!(pdu, [3, 0, 0, 0, 2]);
        assert_eq!(buf, &frame[..3]);
    }

    #[test]
    fn foreign_streams_are_rejected() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        assert!(matches!(
            take_frame(&mut buf),
            Err(MbapError::ProtocolId(_))
        ));
        let mut buf = vec![0, 1, 0, 0, 0, 1, 1, 3];
        assert_eq!(take_frame(&mut buf), Err(MbapError::Length(1)));
    }

    #[test]
    fn garbage_has_a_broken_header() {
        let g = garbage(
            Header {
                transaction: 9,
                unit: 1,
            },
            &[0, 5, 6],
        );
        assert_ne!(u16::from_be_bytes([g[2], g[3]]), 0);
        assert_eq!(g.len(), HEADER_LEN + 3);
    }
}
