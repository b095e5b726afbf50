//! RTU framing (Modbus over a serial line): unit id, PDU, CRC-16 (polynomial 0xA001,
//! initial 0xFFFF, low byte first). Pure: frames are found in and written to byte buffers.
//!
//! A real slave separates frames by 3.5 character times of silence. On a pseudo-terminal,
//! and behind USB adapters, timing says little, so frames are found by their structure: the
//! function code tells the length of a request (a byte count inside FC 15/16/23 tells the
//! rest), and a candidate counts only when its CRC matches. Bytes before a valid frame are
//! noise and dropped (resynchronisation after line noise or a partial frame); a frame whose
//! CRC does not match is ignored, as a real slave ignores it. Silence is only used to accept
//! a frame of a function code the parser cannot size (answered with exception 01), whose end
//! only the silence after it tells; a frame that arrives in pieces with pauses between them
//! is still found.

/// The longest RTU frame (unit + 253-byte PDU + CRC).
pub const MAX_FRAME_LEN: usize = 256;

/// CRC-16/MODBUS of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A frame: unit, PDU, CRC.
pub fn encode(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + 3);
    out.push(unit);
    out.extend(pdu);
    out.extend(crc16(&out).to_le_bytes());
    out
}

/// Whether `frame` (unit … CRC) ends in the CRC of what precedes it.
pub fn crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(n) if n >= 2 => crc16(&frame[..n]).to_le_bytes() == frame[n..],
        _ => false,
    }
}

/// The whole length (unit and CRC included) of the request frame starting at `buf[0]`:
/// `Some(Ok(n))` when known, `Some(Err(()))` for a function code of unknown length, `None`
/// while too few bytes have arrived to tell.
fn request_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let function = *buf.get(1)?;
    Some(Ok(match function {
        0x01..=0x06 | 0x08 => 8,
        0x07 | 0x0B | 0x0C | 0x11 => 4,
        0x0F | 0x10 => 9 + usize::from(*buf.get(6)?),
        0x16 => 10,
        0x17 => 13 + usize::from(*buf.get(10)?),
        0x18 => 6,
        0x2B if *buf.get(2)? == 0x0E => 7,
        _ => return Some(Err(())),
    }))
}

/// The first complete request frame with a valid CRC in `buf`: `(start, len)`.
pub fn find_request(buf: &[u8]) -> Option<(usize, usize)> {
    (0..buf.len()).find_map(|start| {
        let rest = &buf[start..];
        match request_len(rest)? {
            Ok(len) if rest.len() >= len && crc_ok(&rest[..len]) => Some((start, len)),
            _ => None,
        }
    })
}

/// After a silence: where the frame of a function code the parser cannot size starts, if
/// the tail of `buf` from there is one with a valid CRC.
pub fn find_unsized(buf: &[u8]) -> Option<usize> {
    let first = buf.len().saturating_sub(MAX_FRAME_LEN);
    (first..buf.len().saturating_sub(3)).find(|&start| {
        let rest = &buf[start..];
        matches!(request_len(rest), Some(Err(()))) && crc_ok(rest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_frame() {
        // Read holding registers, unit 1, address 0, 1 register: 01 03 00 00 00 01 84 0A
        assert_eq!(encode(1, &[3, 0, 0, 0, 1]), [1, 3, 0, 0, 0, 1, 0x84, 0x0A]);
        assert!(crc_ok(&[1, 3, 0, 0, 0, 1, 0x84, 0x0A]));
        assert!(!crc_ok(&[1, 3, 0, 0, 0, 1, 0x84, 0x0B]));
    }

    #[test]
    fn finds_frames_by_length_and_crc() {
        let read = encode(1, &[3, 0, 0, 0, 1]);
        assert_eq!(find_request(&read[..5]), None, "incomplete");
        assert_eq!(find_request(&read), Some((0, 8)));
        let write = encode(2, &[16, 0, 0, 0, 2, 4, 1, 2, 3, 4]);
        assert_eq!(find_request(&write), Some((0, 13)));
        // noise in front, then the frame: resynchronised.
        let mut noisy = vec![0xFF, 0x13, 0x03];
        noisy.extend(&read);
        assert_eq!(find_request(&noisy), Some((3, 8)));
        // a bad CRC is ignored.
        let mut bad = read.clone();
        bad[7] ^= 1;
        assert_eq!(find_request(&bad), None);
        // a frame stuck behind a partial one is still found.
        let mut stuck = vec![1, 16, 0, 0, 0, 100, 200];
        stuck.extend(&read);
        assert_eq!(find_request(&stuck), Some((7, 8)));
    }

    #[test]
    fn unknown_functions_need_the_silence() {
        let custom = encode(1, &[0x41, 1, 2, 3]);
        assert_eq!(find_request(&custom), None);
        assert_eq!(find_unsized(&custom), Some(0));
        assert_eq!(find_unsized(&custom[..5]), None);
        let mut behind_noise = vec![0x55, 0x01];
        behind_noise.extend(&custom);
        assert_eq!(find_unsized(&behind_noise), Some(2));
    }
}
