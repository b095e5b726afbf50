//! Readings: what sources produce and detectors consume.
//!
//! A [`Reading`] is one sample of one point: `(point, timestamp, value, quality)`. Points are
//! named `device/point` within a gateway (`fence-north/zone1_alarm`), so the same profile can
//! serve many devices without name clashes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// A point's name within a gateway: `device/point`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointId {
    full: String,
    split: usize,
}

/// A point id that is not `device/point`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("point id {0:?} must be 'device/point' with both parts non-empty and no further '/'")]
pub struct PointIdError(String);

impl PointId {
    /// A point id from its device and point names.
    pub fn new(device: &str, point: &str) -> Result<Self, PointIdError> {
        format!("{device}/{point}").parse()
    }

    /// The device part.
    pub fn device(&self) -> &str {
        &self.full[..self.split]
    }

    /// The point part.
    pub fn point(&self) -> &str {
        &self.full[self.split + 1..]
    }

    /// The whole `device/point`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl FromStr for PointId {
    type Err = PointIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let split = s.find('/').ok_or_else(|| PointIdError(s.to_owned()))?;
        let (device, point) = (&s[..split], &s[split + 1..]);
        let ok = |p: &str| {
            !p.is_empty()
                && !p.contains('/')
                && p.chars().all(|c| !c.is_control() && !c.is_whitespace())
        };
        if ok(device) && ok(point) {
            Ok(PointId {
                full: s.to_owned(),
                split,
            })
        } else {
            Err(PointIdError(s.to_owned()))
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A point's value. JSON: `true`, `21.5`, `-3`, `"text"`.
///
/// Read as an untagged enum would read it (an integer that fits `i64` is `Int`, a larger one
/// and any other number `Float`), but straight from the deserializer's own type instead of
/// buffering the value and trying each variant in turn: values are in every alert event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl serde::de::Visitor<'_> for ValueVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, a number or a string")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                // Past i64, as the untagged `Float` variant takes it.
                #[allow(clippy::cast_precision_loss)]
                Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Text(v))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Value {
    /// The value as a number, for limit and rate rules (`true` is 1).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            // Readings beyond 2^53 lose precision here, as in every SCADA historian.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// How far a reading can be trusted (OPC UA's three classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    #[default]
    Good,
    /// Read, but suspect (e.g. out of the sensor's range, or a substituted value).
    Uncertain,
    /// Not read: communication failure, device exception. The value is the last known one.
    Bad,
}

/// One sample of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub point: PointId,
    pub ts: Timestamp,
    pub value: Value,
    #[serde(default)]
    pub quality: Quality,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an untagged `Value` would read, read without buffering.
    #[test]
    fn values_read_as_the_untagged_enum_would() {
        let read = |json: &str| serde_json::from_str::<Value>(json);
        assert_eq!(read("true").expect("bool"), Value::Bool(true));
        assert_eq!(read("-3").expect("int"), Value::Int(-3));
        assert_eq!(read("42").expect("int"), Value::Int(42));
        assert_eq!(
            read("9223372036854775807").expect("max"),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            read("18446744073709551615").expect("past i64"),
            Value::Float(18_446_744_073_709_551_615_f64)
        );
        assert_eq!(read("21.5").expect("float"), Value::Float(21.5));
        assert_eq!(read("2e3").expect("float"), Value::Float(2000.0));
        assert_eq!(read(r#""open""#).expect("text"), Value::Text("open".into()));
        assert_eq!(
            read(r#""a\"b""#).expect("escaped"),
            Value::Text("a\"b".into())
        );
        for bad in ["null", "[1]", r#"{"a": 1}"#] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<Option<Value>>("null").expect("none"),
            None
        );
        for v in [
            Value::Bool(false),
            Value::Int(-7),
            Value::Float(0.25),
            Value::Text("x".into()),
        ] {
            let json = serde_json::to_string(&v).expect("encode");
            assert_eq!(read(&json).expect("round trip"), v);
        }
    }

    #[test]
    fn point_ids() {
        let p: PointId = "fence-north/zone1_alarm".parse().expect("ok");
        assert_eq!(p.device(), "fence-north");
        assert_eq!(p.point(), "zone1_alarm");
        for bad in ["", "a", "/b", "a/", "a/b/c", "a b/c"] {
            assert!(bad.parse::<PointId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_plain_json() {
        let r = Reading {
            point: PointId::new("ups-1", "on_battery").expect("ok"),
            ts: Timestamp::from_millis(0),
            value: Value::Bool(true),
            quality: Quality::Good,
        };
        let json = serde_json::to_string(&r).expect("encodes");
        assert_eq!(
            json,
            r#"{"point":"ups-1/on_battery","ts":"1970-01-01T00:00:00.000Z","value":true,"quality":"good"}"#
        );
        let back: Reading = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, r);
        let v: Value = serde_json::from_str("21.5").expect("float");
        assert_eq!(v.as_f64(), Some(21.5));
        let v: Value = serde_json::from_str("-3").expect("int");
        assert_eq!(v, Value::Int(-3));
    }
}
