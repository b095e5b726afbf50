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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
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
