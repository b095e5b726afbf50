//! Fuzzes the agent's `json` MQTT decoder on arbitrary payloads, with and without configured
//! field paths and a timestamp path, and with a device template that uses a topic capture.
//!
//! Beyond "never panics": every reading it returns belongs to the rendered device, and a
//! message is either readings, errors, or both, never silently nothing when it is not JSON.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vigil_agent::source::mqtt::json::JsonDecoder;
use vigil_agent::source::mqtt::naming::DeviceTemplate;
use vigil_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_millis(1_700_000_000_000);
    let topic = "facility/env/3/telemetry";
    let captures = ["3"];

    // Every scalar field becomes a point.
    let every = JsonDecoder::new(DeviceTemplate::whole_topic(), &BTreeMap::new(), None)
        .expect("a valid decoder");
    let out = every.decode(topic, &captures, data, now);
    for reading in &out.readings {
        assert_eq!(reading.point.device(), "facility.env.3.telemetry");
    }
    if serde_json::from_slice::<serde_json::Value>(data).is_err() {
        assert!(out.readings.is_empty() && !out.errors.is_empty(), "non-JSON accepted");
    }

    // Configured paths, a timestamp path and a captured device name.
    let fields = BTreeMap::from([
        ("temperature".to_owned(), "sensors.temp".to_owned()),
        ("door".to_owned(), "doors[0].open".to_owned()),
    ]);
    let device = DeviceTemplate::parse("env-{1}", 1).expect("a valid template");
    let mapped = JsonDecoder::new(device, &fields, Some("ts")).expect("a valid decoder");
    let out = mapped.decode(topic, &captures, data, now);
    assert!(out.readings.len() <= 2, "more readings than configured fields");
    for reading in &out.readings {
        assert_eq!(reading.point.device(), "env-3");
    }
});
