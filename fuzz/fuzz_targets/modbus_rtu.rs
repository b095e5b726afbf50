//! Fuzzes the simulator's Modbus RTU server side: finding request frames in an arbitrary
//! serial byte stream (sized and unsized function codes), the CRC check, and request PDU
//! parsing of every frame found.
//!
//! Beyond "never panics": a frame found lies inside the buffer and its CRC is valid.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_sim::modbus::pdu::Request;
use vigil_sim::modbus::rtu_frame::{crc_ok, find_request, find_unsized};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Bounded: every frame found consumes at least one byte.
    for _ in 0..=data.len() {
        let Some((start, len)) = find_request(rest) else {
            break;
        };
        assert!(start + len <= rest.len(), "frame outside the buffer");
        let frame = &rest[start..start + len];
        assert!(crc_ok(frame), "frame with a bad CRC");
        // unit, PDU, CRC
        if frame.len() > 3 {
            let _ = Request::parse(&frame[1..frame.len() - 2]);
        }
        rest = &rest[start + len.max(1)..];
    }
    if let Some(start) = find_unsized(data) {
        assert!(start < data.len(), "unsized frame starts outside the buffer");
        assert!(crc_ok(&data[start..]), "unsized frame with a bad CRC");
    }
});
