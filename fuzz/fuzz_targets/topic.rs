//! Fuzzes topic parsing: `Topic::parse` on arbitrary text never panics, and a topic it accepts
//! is written back exactly as received.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_wire::Topic;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(topic) = Topic::parse(text) {
        assert_eq!(topic.to_string(), text);
    }
});
