//! Fuzzes the simulator's Modbus TCP server side: MBAP framing of an arbitrary byte stream,
//! then request PDU parsing of every frame it cuts.
//!
//! Beyond "never panics": a frame cut is consumed from the buffer (so the server makes
//! progress), and its PDU is 1..=253 bytes as the MBAP length allows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_sim::modbus::mbap::take_frame;
use vigil_sim::modbus::pdu::Request;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    // Bounded: every frame consumes at least 8 bytes.
    for _ in 0..=data.len() / 8 {
        let before = buf.len();
        match take_frame(&mut buf) {
            Ok(Some((_header, pdu))) => {
                assert!(buf.len() < before, "a frame was cut without consuming bytes");
                assert!((1..=253).contains(&pdu.len()), "PDU of {} bytes", pdu.len());
                let _ = Request::parse(&pdu);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
