//! Sparkplug B payloads from field brokers: decoding never panics, what decodes re-encodes
//! to bytes that decode and re-encode identically (a fixed point; byte comparison so that NaN
//! values compare), and every metric's value can be read.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = vigil_sparkplug::decode(data) {
        let bytes = vigil_sparkplug::encode(&payload);
        let again = vigil_sparkplug::decode(&bytes).expect("re-encoded payload decodes");
        assert_eq!(vigil_sparkplug::encode(&again), bytes);
        for metric in &payload.metrics {
            let _ = metric.value();
        }
    }
});
