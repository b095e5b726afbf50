//! The `json` decoder: a JSON object whose fields, found by dotted paths, become points.
//!
//! `fields` maps point names to field paths (`temp`, `env.rh`, `values.0` for an array
//! element); without `fields`, every number, boolean and string in the object becomes a
//! point named after its path (`env.rh` → `env_rh`). `timestamp` names the field that stamps
//! the readings: epoch milliseconds (a number, or a string of digits) or RFC 3339; without
//! it, or when it is unusable, readings are stamped with the time of arrival.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use vigil_core::{PointId, Quality, Reading, Timestamp, Value};

use super::error::{DecodeError, Decoded};
use super::naming::{point_name, valid_point_name, DeviceTemplate};

/// 9999-12-31T23:59:59.999Z: later epoch milliseconds are taken for a unit mistake.
const LAST_MILLISECOND: i64 = 253_402_300_799_999;
/// How deep the default mapping looks into nested objects.
const MAX_DEPTH: usize = 8;

/// A dotted field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

/// A field path with an empty segment (`a..b`, `.a`, ``).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a field path: use names separated by '.', like \"env.rh\" or \"values.0\"")]
pub struct PathError(pub String);

impl FieldPath {
    /// Parses `a.b.0`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(PathError(text.to_owned()));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The field at this path in `root`; a key equal to the whole dotted path also matches.
    fn lookup<'v>(&self, root: &'v Json) -> Option<&'v Json> {
        self.segments
            .iter()
            .try_fold(root, |v, seg| match v {
                Json::Object(m) => m.get(seg),
                Json::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            })
            .or_else(|| root.get(&self.text))
    }
}

/// The `json` decoder of one subscription.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    device: DeviceTemplate,
    /// `(point name, path)`; empty: every scalar field.
    fields: Vec<(String, FieldPath)>,
    timestamp: Option<FieldPath>,
}

/// A `json` subscription whose settings cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonConfigError {
    /// A key of `fields` is not a point name.
    #[error("{0:?} is not a valid point name: use 1-64 lowercase letters, digits, '-' and '_'")]
    PointName(String),
    /// A path is malformed.
    #[error(transparent)]
    Path(#[from] PathError),
}

impl JsonDecoder {
    /// A decoder mapping `fields` (point → path), stamped by the `timestamp` path, with its
    /// device named by `device`.
    pub fn new(
        device: DeviceTemplate,
        fields: &BTreeMap<String, String>,
        timestamp: Option<&str>,
    ) -> Result<Self, JsonConfigError> {
        let fields = fields
            .iter()
            .map(|(point, path)| {
                if valid_point_name(point) {
                    Ok((point.clone(), FieldPath::parse(path)?))
                } else {
                    Err(JsonConfigError::PointName(point.clone()))
                }
            })
            .collect::<Result<_, _>>()?;
        let timestamp = timestamp.map(FieldPath::parse).transpose()?;
        Ok(JsonDecoder {
            device,
            fields,
            timestamp,
        })
    }

    /// The readings of one message on `topic`, whose filter wildcards captured `captures`,
    /// received at `now`.
    pub fn decode(
        &self,
        topic: &str,
        captures: &[&str],
        payload: &[u8],
        now: Timestamp,
    ) -> Decoded {
        let root: Json = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => return DecodeError::NotJson(e.to_string()).into(),
        };
        if !root.is_object() {
            return DecodeError::NotObject(kind(&root)).into();
        }
        let Some(device) = self.device.render(topic, captures) else {
            return DecodeError::BadDevice(format!("{} on topic {topic:?}", self.device)).into();
        };
        let mut out = Decoded::default();
        let ts = match &self.timestamp {
            None => now,
            Some(path) => match path
                .lookup(&root)
                .ok_or("it is missing".to_owned())
                .and_then(timestamp)
            {
                Ok(ts) => ts,
                Err(problem) => {
                    out.errors.push(DecodeError::BadTimestamp {
                        path: path.text.clone(),
                        problem,
                    });
                    now
                }
            },
        };
        let push = |point: &str, value: Value, out: &mut Decoded| match PointId::new(&device, point)
        {
            Ok(point) => out.readings.push(Reading {
                point,
                ts,
                value,
                quality: Quality::Good,
            }),
            Err(_) => out.errors.push(DecodeError::BadDevice(device.clone())),
        };
        if self.fields.is_empty() {
            let skip = self.timestamp.as_ref().map(|p| p.segments.join("."));
            let mut found = Vec::new();
            flatten(&root, &mut String::new(), 0, &mut found);
            for (path, v) in found {
                if skip.as_deref() == Some(path.as_str()) {
                    continue;
                }
                match point_name(&path) {
                    Some(point) => push(&point, v, &mut out),
                    None => out.errors.push(DecodeError::BadPointName(path)),
                }
            }
        } else {
            for (point, path) in &self.fields {
                match path.lookup(&root).map(scalar) {
                    Some(Ok(v)) => push(point, v, &mut out),
                    Some(Err(found)) => out.errors.push(DecodeError::WrongType {
                        path: path.text.clone(),
                        found,
                    }),
                    None => out.errors.push(DecodeError::FieldMissing {
                        path: path.text.clone(),
                    }),
                }
            }
        }
        out
    }
}

/// What kind of JSON value `v` is, for messages.
fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A scalar JSON value as a point value; otherwise what it is.
fn scalar(v: &Json) -> Result<Value, &'static str> {
    match v {
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => Ok(match n.as_i64() {
            Some(i) => Value::Int(i),
            // Beyond i64 (a u64) or fractional.
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Json::String(s) => Ok(Value::Text(s.clone())),
        other => Err(kind(other)),
    }
}

/// Every scalar under `v` with its dotted path; arrays and nulls are skipped.
fn flatten(v: &Json, prefix: &mut String, depth: usize, out: &mut Vec<(String, Value)>) {
    let Json::Object(map) = v else {
        if let Ok(value) = scalar(v) {
            out.push((prefix.clone(), value));
        }
        return;
    };
    if depth >= MAX_DEPTH {
        return;
    }
    for (key, child) in map {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(key);
        flatten(child, prefix, depth + 1, out);
        prefix.truncate(len);
    }
}

/// A timestamp field's instant: epoch milliseconds (a number or a string of digits) or
/// RFC 3339.
fn timestamp(v: &Json) -> Result<Timestamp, String> {
    let ms = match v {
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            #[allow(clippy::cast_possible_truncation)]
            (None, Some(f)) if f.is_finite() && f.abs() < 1e16 => f.round() as i64,
            _ => return Err(format!("{n} is not epoch milliseconds")),
        },
        Json::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| format!("{s:?} is not epoch milliseconds"))?,
        Json::String(s) => return s.parse().map_err(|e| format!("{e}")),
        other => return Err(format!("it is {}, not a number or a string", kind(other))),
    };
    if (0..=LAST_MILLISECOND).contains(&ms) {
        Ok(Timestamp::from_millis(ms))
    } else {
        Err(format!("{ms} is out of range for epoch milliseconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp::from_millis(1_000);

    fn decoder(device: &str, fields: &[(&str, &str)], ts: Option<&str>) -> JsonDecoder {
        let fields = fields
            .iter()
            .map(|(p, f)| ((*p).to_owned(), (*f).to_owned()))
            .collect();
        JsonDecoder::new(
            DeviceTemplate::parse(device, 1).expect("template"),
            &fields,
            ts,
        )
        .expect("valid decoder")
    }

    fn reading(point: &str, ts: i64, value: Value) -> Reading {
        Reading {
            point: point.parse().expect("point id"),
            ts: Timestamp::from_millis(ts),
            value,
            quality: Quality::Good,
        }
    }

    #[test]
    fn maps_fields_with_paths_and_timestamp() {
        let d = decoder(
            "env-{1}",
            &[
                ("temperature", "temp"),
                ("humidity", "env.rh"),
                ("door", "doors.1"),
                ("state", "state"),
            ],
            Some("ts"),
        );
        let payload = br#"{"temp": 21.5, "env": {"rh": 40}, "doors": [false, true], "state": "ok", "ts": 1700000000123}"#;
        let out = d.decode("facility/env/3/telemetry", &["3"], payload, NOW);
        assert_eq!(out.errors, vec![]);
        let ts = 1_700_000_000_123;
        assert_eq!(
            out.readings,
            vec![
                reading("env-3/door", ts, Value::Bool(true)),
                reading("env-3/humidity", ts, Value::Int(40)),
                reading("env-3/state", ts, Value::Text("ok".into())),
                reading("env-3/temperature", ts, Value::Float(21.5)),
            ]
        );
    }

    #[test]
    fn timestamps() {
        let d = decoder("d", &[("t", "t")], Some("meta.at"));
        let at = |json: &str| {
            let out = d.decode(
                "x",
                &[],
                format!(r#"{{"t": 1, "meta": {{"at": {json}}}}}"#).as_bytes(),
                NOW,
            );
            (out.readings[0].ts.as_millis(), out.errors.len())
        };
        assert_eq!(
            at(r#""2026-11-29T20:00:00.500+08:00""#),
            (1_795_953_600_500, 0)
        );
        assert_eq!(at("1700000000000"), (1_700_000_000_000, 0));
        assert_eq!(at("1700000000000.4"), (1_700_000_000_000, 0));
        assert_eq!(at(r#""1700000000000""#), (1_700_000_000_000, 0));
        for bad in [r#""yesterday""#, "-5", "1e300", "true", "null", r#""""#] {
            assert_eq!(at(bad), (1_000, 1), "{bad}");
        }
        let out = d.decode("x", &[], br#"{"t": 1}"#, NOW);
        assert_eq!(out.errors[0].reason(), "bad_timestamp");
        assert_eq!(out.readings.len(), 1);
    }

    #[test]
    fn every_scalar_without_a_mapping() {
        let d = JsonDecoder::new(DeviceTemplate::whole_topic(), &BTreeMap::new(), Some("ts"))
            .expect("valid");
        let out = d.decode(
            "site/a",
            &[],
            br#"{"Temp": 20, "env": {"rh": 41.5, "list": [1]}, "none": null, "ts": 5, "ok": true}"#,
            NOW,
        );
        assert_eq!(out.errors, vec![]);
        let mut readings = out.readings;
        readings.sort_by(|a, b| a.point.cmp(&b.point));
        assert_eq!(
            readings,
            vec![
                reading("site.a/env_rh", 5, Value::Float(41.5)),
                reading("site.a/ok", 5, Value::Bool(true)),
                reading("site.a/temp", 5, Value::Int(20)),
            ]
        );
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        let d = decoder("d", &[("a", "a"), ("b", "b.c")], None);
        let reasons = |payload: &[u8]| {
            let out = d.decode("x", &[], payload, NOW);
            (
                out.readings.len(),
                out.errors
                    .iter()
                    .map(DecodeError::reason)
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(reasons(b"not json"), (0, vec!["not_json"]));
        assert_eq!(reasons(b"\xff\xfe"), (0, vec!["not_json"]));
        assert_eq!(reasons(b"[1, 2]"), (0, vec!["not_object"]));
        assert_eq!(reasons(b"42"), (0, vec!["not_object"]));
        assert_eq!(reasons(br#"{"a": 1}"#), (1, vec!["field_missing"]));
        assert_eq!(
            reasons(br#"{"a": {"x": 1}, "b": {"c": null}}"#),
            (0, vec!["wrong_type", "wrong_type"])
        );
        assert_eq!(reasons(br#"{"a": 1, "b": {"c": 2}}"#), (2, vec![]));
        // A key that is the whole dotted path also matches.
        assert_eq!(reasons(br#"{"a": 1, "b.c": 2}"#), (2, vec![]));
    }

    #[test]
    fn device_from_an_empty_wildcard_is_an_error() {
        let d = decoder("{1}", &[("a", "a")], None);
        let out = d.decode("x/", &[""], br#"{"a": 1}"#, NOW);
        assert_eq!(
            out.errors
                .iter()
                .map(DecodeError::reason)
                .collect::<Vec<_>>(),
            vec!["bad_device"]
        );
    }

    #[test]
    fn config_errors() {
        let bad_point = [("Temp".to_owned(), "t".to_owned())].into_iter().collect();
        assert!(JsonDecoder::new(DeviceTemplate::whole_topic(), &bad_point, None).is_err());
        let bad_path = [("t".to_owned(), "a..b".to_owned())].into_iter().collect();
        assert!(JsonDecoder::new(DeviceTemplate::whole_topic(), &bad_path, None).is_err());
        assert!(
            JsonDecoder::new(DeviceTemplate::whole_topic(), &BTreeMap::new(), Some("")).is_err()
        );
    }

    proptest! {
        #[test]
        fn never_panics(payload in prop::collection::vec(any::<u8>(), 0..128)) {
            let d = decoder("d", &[("a", "a.b.0")], Some("ts"));
            let _ = d.decode("x", &[], &payload, NOW);
            let all = JsonDecoder::new(DeviceTemplate::whole_topic(), &BTreeMap::new(), None).expect("valid");
            let _ = all.decode("x", &[], &payload, NOW);
        }

        #[test]
        fn never_panics_on_json(payload in "\\{(\"[a-z.]{1,3}\": ?(-?[0-9]{1,25}(\\.[0-9]{1,3})?(e[0-9]{1,3})?|true|null|\"[^\"\\\\]{0,4}\"|\\[\\]|\\{\\}), ?){0,4}\"z\": 0\\}") {
            let d = decoder("d", &[("a", "a"), ("b", "b.c")], Some("a"));
            let _ = d.decode("x", &[], payload.as_bytes(), NOW);
            let all = JsonDecoder::new(DeviceTemplate::whole_topic(), &BTreeMap::new(), Some("a")).expect("valid");
            let out = all.decode("x", &[], payload.as_bytes(), NOW);
            prop_assert!(out.readings.iter().all(|r| r.point.device() == "x"));
        }
    }
}
