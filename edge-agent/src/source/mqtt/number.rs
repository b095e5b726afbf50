//! The `number` decoder: the whole payload is one value of one configured point, written as
//! text: an integer (`-3`), a decimal (`21.5`, `1e3`) or a boolean (`true`/`false`, any
//! case). Surrounding whitespace is ignored; readings are stamped with the time of arrival.

use vigil_core::{PointId, Quality, Reading, Timestamp, Value};

use super::error::{DecodeError, Decoded};
use super::naming::DeviceTemplate;

/// How much of a bad payload an error quotes.
const QUOTE: usize = 32;

/// The `number` decoder of one subscription.
#[derive(Debug, Clone)]
pub struct NumberDecoder {
    device: DeviceTemplate,
    point: String,
}

impl NumberDecoder {
    /// A decoder of `point` (a valid point name, checked by the config) of the device named by
    /// `device`.
    pub fn new(device: DeviceTemplate, point: String) -> Self {
        NumberDecoder { device, point }
    }

    /// The reading of one message on `topic`, whose filter wildcards captured `captures`,
    /// received at `now`.
    pub fn decode(
        &self,
        topic: &str,
        captures: &[&str],
        payload: &[u8],
        now: Timestamp,
    ) -> Decoded {
        let Some(value) = parse(payload) else {
            let text = String::from_utf8_lossy(payload);
            let quote: String = text.chars().take(QUOTE).collect();
            return DecodeError::NotNumber(quote).into();
        };
        let Some(device) = self.device.render(topic, captures) else {
            return DecodeError::BadDevice(format!("{} on topic {topic:?}", self.device)).into();
        };
        match PointId::new(&device, &self.point) {
            Ok(point) => Decoded {
                readings: vec![Reading {
                    point,
                    ts: now,
                    value,
                    quality: Quality::Good,
                }],
                errors: Vec::new(),
                rebirth: None,
            },
            Err(_) => DecodeError::BadDevice(device).into(),
        }
    }
}

/// The value a payload writes, if it is a finite number or a boolean.
pub fn parse(payload: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    if text.eq_ignore_ascii_case("true") {
        return Some(Value::Bool(true));
    }
    if text.eq_ignore_ascii_case("false") {
        return Some(Value::Bool(false));
    }
    // Rust's float syntax also takes "inf" and "NaN"; only digits, signs, '.' and exponents
    // are numbers here.
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Int(i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_and_booleans() {
        let cases: [(&[u8], Option<Value>); 14] = [
            (b"21.5", Some(Value::Float(21.5))),
            (b" -3\n", Some(Value::Int(-3))),
            (b"+7", Some(Value::Int(7))),
            (b"1e3", Some(Value::Float(1000.0))),
            (
                b"18446744073709551615",
                Some(Value::Float(1.8446744073709552e19)),
            ),
            (b"true", Some(Value::Bool(true))),
            (b"FALSE", Some(Value::Bool(false))),
            (b"", None),
            (b"  ", None),
            (b"NaN", None),
            (b"inf", None),
            (b"1e999", None),
            (b"21.5 C", None),
            (b"\xff", None),
        ];
        for (payload, want) in cases {
            assert_eq!(parse(payload), want, "{payload:?}");
        }
    }

    #[test]
    fn one_reading_of_the_configured_point() {
        let d = NumberDecoder::new(
            DeviceTemplate::parse("door-{1}", 1).expect("valid"),
            "open".into(),
        );
        let now = Timestamp::from_millis(42);
        let out = d.decode("facility/door/7/open", &["7"], b"true", now);
        assert_eq!(
            out,
            Decoded {
                readings: vec![Reading {
                    point: "door-7/open".parse().expect("point"),
                    ts: now,
                    value: Value::Bool(true),
                    quality: Quality::Good,
                }],
                errors: vec![],
                rebirth: None,
            }
        );
        let bad = d.decode("facility/door/7/open", &["7"], b"{\"open\": true}", now);
        assert_eq!(
            bad.errors
                .iter()
                .map(DecodeError::reason)
                .collect::<Vec<_>>(),
            vec!["not_number"]
        );
        assert!(bad.readings.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&payload);
        }

        #[test]
        fn integers_round_trip(i in any::<i64>()) {
            prop_assert_eq!(parse(i.to_string().as_bytes()), Some(Value::Int(i)));
        }
    }
}
