//! The payload codec: [`encode`] a [`Payload`] to protobuf bytes, [`decode`] bytes from the
//! network into one.

use prost::Message;

use crate::proto::Payload;

/// Bytes that are not a Sparkplug B payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not a valid protobuf encoding of `Payload` (truncated, a wrong wire type, invalid
    /// UTF-8 in a string, nesting deeper than prost's recursion limit…).
    #[error("not a Sparkplug B payload: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// The protobuf encoding of `payload`.
pub fn encode(payload: &Payload) -> Vec<u8> {
    payload.encode_to_vec()
}

/// The payload encoded in `bytes`. Any input gives a payload or an [`Error`]; none panics.
/// Unknown fields (proto2 extensions) are skipped.
pub fn decode(bytes: &[u8]) -> Result<Payload, Error> {
    Ok(Payload::decode(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        DataSet, DataSetValue, DataSetValueKind, Metric, MetricValue, PropertySet, PropertyValue,
        PropertyValueKind, Row, Template,
    };
    use crate::DataType;
    use proptest::prelude::*;
    use vigil_core::Value;

    /// Pins the field numbers and wire types of `sparkplug_b.proto`, computed by hand:
    /// key = (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited,
    /// 5 fixed32).
    #[test]
    fn encoding_is_byte_exact() {
        let payload = Payload {
            timestamp: Some(300),
            metrics: vec![
                Metric::with_value("a", Some(1), DataType::Int8, Value::Int(-1)).expect("fits"),
                Metric {
                    alias: Some(2),
                    timestamp: Some(1),
                    value: Some(MetricValue::DoubleValue(21.5)),
                    ..Metric::default()
                },
                Metric {
                    alias: Some(3),
                    is_null: Some(true),
                    value: Some(MetricValue::BooleanValue(true)),
                    ..Metric::default()
                },
                Metric {
                    name: Some("s".into()),
                    datatype: Some(12),
                    is_historical: Some(false),
                    is_transient: Some(true),
                    value: Some(MetricValue::StringValue("ok".into())),
                    ..Metric::default()
                },
                Metric {
                    alias: Some(4),
                    value: Some(MetricValue::LongValue(u64::MAX)),
                    ..Metric::default()
                },
                Metric {
                    alias: Some(5),
                    value: Some(MetricValue::FloatValue(1.0)),
                    ..Metric::default()
                },
                Metric {
                    alias: Some(6),
                    value: Some(MetricValue::BytesValue(vec![0xAB])),
                    ..Metric::default()
                },
            ],
            seq: Some(0),
            uuid: Some("u".into()),
            body: Some(vec![7]),
        };
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x08, 0xAC, 0x02,                   // timestamp (1, varint) = 300
            0x12, 10,                           // metrics (2, len) 10 bytes
              0x0A, 0x01, b'a',                 //   name (1, len) "a"
              0x10, 0x01,                       //   alias (2, varint) 1
              0x20, 0x01,                       //   datatype (4, varint) Int8
              0x50, 0xFF, 0x01,                 //   int_value (10, varint) 0xFF = Int8 -1
            0x12, 13,                           // metrics 13 bytes
              0x10, 0x02,                       //   alias 2
              0x18, 0x01,                       //   timestamp (3, varint) 1
              0x69, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x35, 0x40, // double_value (13, fixed64) 21.5
            0x12, 6,                            // metrics 6 bytes
              0x10, 0x03,                       //   alias 3
              0x38, 0x01,                       //   is_null (7, varint) true
              0x70, 0x01,                       //   boolean_value (14, varint) true
            0x12, 13,                           // metrics 13 bytes
              0x0A, 0x01, b's',                 //   name "s"
              0x20, 0x0C,                       //   datatype String
              0x28, 0x00,                       //   is_historical (5) false: present, so sent
              0x30, 0x01,                       //   is_transient (6) true
              0x7A, 0x02, b'o', b'k',           //   string_value (15, len) "ok"
            0x12, 13,                           // metrics 13 bytes
              0x10, 0x04,                       //   alias 4
              0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, // long_value (11) u64::MAX
            0x12, 7,                            // metrics 7 bytes
              0x10, 0x05,                       //   alias 5
              0x65, 0x00, 0x00, 0x80, 0x3F,     //   float_value (12, fixed32) 1.0
            0x12, 6,                            // metrics 6 bytes
              0x10, 0x06,                       //   alias 6
              0x82, 0x01, 0x01, 0xAB,           //   bytes_value (16, len): key 130 is a 2-byte varint
            0x18, 0x00,                         // seq (3, varint) 0: present, so sent
            0x22, 0x01, b'u',                   // uuid (4, len) "u"
            0x2A, 0x01, 0x07,                   // body (5, len) [7]
        ];
        let bytes = encode(&payload);
        assert_eq!(bytes, expected, "\n got {bytes:02X?}\nwant {expected:02X?}");
        assert_eq!(decode(&bytes), Ok(payload));
    }

    #[test]
    fn empty_and_absent_are_apart() {
        assert_eq!(encode(&Payload::default()), Vec::<u8>::new());
        assert_eq!(decode(&[]), Ok(Payload::default()));
        let zero = Payload {
            seq: Some(0),
            ..Payload::default()
        };
        assert_eq!(encode(&zero), vec![0x18, 0x00]);
        assert_eq!(decode(&[0x18, 0x00]).map(|p| p.seq), Ok(Some(0)));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"{\"temp\": 21.5}"[..],
            &[0x12, 0x05, 0x0A][..],       // truncated metric
            &[0x0A, 0x01][..],             // timestamp with a length-delimited wire type
            &[0x22, 0x02, 0xC3, 0x28][..], // uuid that is not UTF-8
            &[0xFF; 11][..],               // overlong varint key
        ] {
            assert!(decode(bad).is_err(), "{bad:02X?}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // An extension field 100 (varint) after the timestamp.
        let bytes = [0x08, 0x01, 0xA0, 0x06, 0x05];
        assert_eq!(decode(&bytes).map(|p| p.timestamp), Ok(Some(1)));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        // Templates nest metrics inside metrics: build 200 levels by hand.
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..200 {
            // Metric { template_value (18) = Template { metrics (2) = [inner] } }
            let mut template = vec![0x12];
            push_len(&mut template, inner.len());
            template.extend_from_slice(&inner);
            let mut metric = vec![0x92, 0x01];
            push_len(&mut metric, template.len());
            metric.extend_from_slice(&template);
            inner = metric;
        }
        let mut payload = vec![0x12];
        push_len(&mut payload, inner.len());
        payload.extend_from_slice(&inner);
        assert!(decode(&payload).is_err());
    }

    fn push_len(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7F) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn scalar() -> impl Strategy<Value = Option<MetricValue>> {
        prop_oneof![
            Just(None),
            any::<u32>().prop_map(|v| Some(MetricValue::IntValue(v))),
            any::<u64>().prop_map(|v| Some(MetricValue::LongValue(v))),
            any::<f32>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(|v| Some(MetricValue::FloatValue(v))),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(|v| Some(MetricValue::DoubleValue(v))),
            any::<bool>().prop_map(|v| Some(MetricValue::BooleanValue(v))),
            ".{0,12}".prop_map(|v| Some(MetricValue::StringValue(v))),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(|v| Some(MetricValue::BytesValue(v))),
        ]
    }

    prop_compose! {
        fn metric()(
            name in proptest::option::of("[A-Za-z/ _]{0,16}"),
            alias in proptest::option::of(any::<u64>()),
            timestamp in proptest::option::of(any::<u64>()),
            datatype in proptest::option::of(0u32..40),
            is_historical in proptest::option::of(any::<bool>()),
            is_transient in proptest::option::of(any::<bool>()),
            is_null in proptest::option::of(any::<bool>()),
            unit in proptest::option::of("[a-z%]{0,3}"),
            value in scalar(),
        ) -> Metric {
            Metric {
                name, alias, timestamp, datatype, is_historical, is_transient, is_null,
                metadata: None,
                properties: unit.map(|u| PropertySet {
                    keys: vec!["engUnit".into()],
                    values: vec![PropertyValue {
                        r#type: Some(12),
                        is_null: None,
                        value: Some(PropertyValueKind::StringValue(u)),
                    }],
                }),
                value,
            }
        }
    }

    prop_compose! {
        fn payload()(
            timestamp in proptest::option::of(any::<u64>()),
            metrics in prop::collection::vec(metric(), 0..8),
            seq in proptest::option::of(0u64..256),
            uuid in proptest::option::of("[a-f0-9-]{0,36}"),
            body in proptest::option::of(prop::collection::vec(any::<u8>(), 0..16)),
            with_table in any::<bool>(),
        ) -> Payload {
            let mut metrics = metrics;
            if with_table {
                metrics.push(Metric {
                    name: Some("table".into()),
                    datatype: Some(DataType::DataSet.as_u32()),
                    value: Some(MetricValue::DatasetValue(DataSet {
                        num_of_columns: Some(1),
                        columns: vec!["c".into()],
                        types: vec![3],
                        rows: vec![Row { elements: vec![DataSetValue {
                            value: Some(DataSetValueKind::IntValue(5)),
                        }] }],
                    })),
                    ..Metric::default()
                });
                metrics.push(Metric {
                    name: Some("udt".into()),
                    datatype: Some(DataType::Template.as_u32()),
                    value: Some(MetricValue::TemplateValue(Template {
                        version: Some("1".into()),
                        metrics: vec![Metric::default()],
                        ..Template::default()
                    })),
                    ..Metric::default()
                });
            }
            Payload { timestamp, metrics, seq, uuid, body }
        }
    }

    proptest! {
        #[test]
        fn payloads_round_trip(p in payload()) {
            let bytes = encode(&p);
            prop_assert_eq!(decode(&bytes), Ok(p));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_damaged_payloads(
            p in payload(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bits in 1u8..=255,
        ) {
            let mut bytes = encode(&p);
            if !bytes.is_empty() {
                let i = flip.index(bytes.len());
                bytes[i] ^= bits;
                let n = cut.index(bytes.len() + 1);
                bytes.truncate(n);
            }
            if let Ok(back) = decode(&bytes) {
                // Whatever decodes re-encodes to bytes that decode to the same payload
                // (compared as bytes: a flipped bit may make a NaN).
                let again = encode(&back);
                prop_assert_eq!(decode(&again).map(|p| encode(&p)), Ok(again));
            }
        }
    }
}
