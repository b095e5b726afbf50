//! Fuzzes the agent's `number` MQTT decoder: a payload is a finite number or a boolean, or it
//! is refused with an error; it never panics and never yields a non-finite value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_agent::source::mqtt::naming::DeviceTemplate;
use vigil_agent::source::mqtt::number::{parse, NumberDecoder};
use vigil_core::{Timestamp, Value};

fuzz_target!(|data: &[u8]| {
    if let Some(Value::Float(v)) = parse(data) {
        assert!(v.is_finite(), "non-finite value {v} accepted");
    }
    let decoder = NumberDecoder::new(DeviceTemplate::whole_topic(), "value".to_owned());
    let out = decoder.decode(
        "facility/env/3/temperature",
        &[],
        data,
        Timestamp::from_millis(1_700_000_000_000),
    );
    assert_eq!(out.readings.len() + out.errors.len(), 1, "one reading or one error");
});
