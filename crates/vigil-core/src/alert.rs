//! Alert keys, condition kinds and conditions: what detectors say and how alerts are named.
//!
//! A detector emits a [`Condition`]: its verdict (active or clear) on a source, with a kind,
//! a severity, the value that decided it and a message. The alert manager turns conditions
//! into alert events. An alert's identity across re-raises is its [`AlertKey`] — (origin node,
//! source, condition kind) — so a condition that flaps while its alert is open updates that
//! alert instead of making a second one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::node::NodeId;
use crate::reading::Value;
use crate::severity::Severity;
use crate::time::Timestamp;

/// The longest source name accepted.
pub const MAX_SOURCE_LEN: usize = 256;

/// What kind of condition an alert is about: `limit_hh`, `state`, `comm_loss`, `motion`, ….
/// An open set (new detectors add kinds without a protocol change) of 1–64 characters from
/// `a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConditionKind(String);

impl ConditionKind {
    pub const LIMIT_HH: &'static str = "limit_hh";
    pub const LIMIT_H: &'static str = "limit_h";
    pub const LIMIT_L: &'static str = "limit_l";
    pub const LIMIT_LL: &'static str = "limit_ll";
    /// A digital state alarm (door forced, fence alarm, fire).
    pub const STATE: &'static str = "state";
    pub const RATE_OF_CHANGE: &'static str = "rate_of_change";
    pub const STALE: &'static str = "stale";
    pub const FLATLINE: &'static str = "flatline";
    pub const COMM_LOSS: &'static str = "comm_loss";
    pub const ANOMALY: &'static str = "anomaly";
    pub const MOTION: &'static str = "motion";
    pub const TAMPER: &'static str = "tamper";
    /// Several conditions in one zone fused into one incident.
    pub const INCIDENT: &'static str = "incident";

    /// Validates and wraps a kind.
    pub fn new(kind: impl Into<String>) -> Result<Self, KeyError> {
        let kind = kind.into();
        let ok = !kind.is_empty()
            && kind.len() <= 64
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(ConditionKind(kind))
        } else {
            Err(KeyError::Kind(kind))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ConditionKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConditionKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConditionKind::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Why an alert key or one of its parts was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("condition kind {0:?} must be 1-64 characters of a-z, 0-9, '_' and '-'")]
    Kind(String),
    #[error("source {0:?} must be 1-256 printable characters without spaces")]
    Source(String),
    #[error("alert key {0:?} must be 'origin/source/kind'")]
    Key(String),
    #[error(transparent)]
    Node(#[from] crate::node::NameError),
}

/// Validates a source name: a point (`device/point`), a device, a camera or a zone.
pub fn validate_source(source: &str) -> Result<(), KeyError> {
    let ok = !source.is_empty()
        && source.len() <= MAX_SOURCE_LEN
        && source
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(KeyError::Source(source.to_owned()))
    }
}

/// An alert's stable identity: the node that raised it, the source, the condition kind.
/// Written `origin/source/kind`, e.g. `gw-prison-3/fence-north/zone1_alarm/state`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawAlertKey")]
pub struct AlertKey {
    pub origin: NodeId,
    pub source: String,
    pub kind: ConditionKind,
}

/// The unchecked wire form of an [`AlertKey`]; deserialisation validates it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertKey {
    origin: NodeId,
    source: String,
    kind: ConditionKind,
}

impl TryFrom<RawAlertKey> for AlertKey {
    type Error = KeyError;
    fn try_from(raw: RawAlertKey) -> Result<Self, Self::Error> {
        AlertKey::new(raw.origin, raw.source, raw.kind)
    }
}

impl AlertKey {
    /// A key from its parts, validating the source.
    pub fn new(
        origin: NodeId,
        source: impl Into<String>,
        kind: ConditionKind,
    ) -> Result<Self, KeyError> {
        let source = source.into();
        validate_source(&source)?;
        Ok(AlertKey {
            origin,
            source,
            kind,
        })
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.origin, self.source, self.kind)
    }
}

impl FromStr for AlertKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (origin, rest) = s
            .split_once('/')
            .ok_or_else(|| KeyError::Key(s.to_owned()))?;
        let (source, kind) = rest
            .rsplit_once('/')
            .ok_or_else(|| KeyError::Key(s.to_owned()))?;
        AlertKey::new(NodeId::new(origin)?, source, ConditionKind::new(kind)?)
    }
}

/// A piece of evidence kept with an alert: a snapshot, a clip. Stored on the gateway; the
/// reference says where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `snapshot` (JPEG) or `clip` (video).
    pub kind: String,
    /// Where the evidence can be fetched, relative to the node that holds it.
    pub uri: String,
}

/// A detector's verdict on a source at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// What the verdict is about: a point `device/point`, a device, a camera, a zone.
    pub source: String,
    pub kind: ConditionKind,
    /// `true` while the condition holds; `false` when it has returned to normal.
    pub active: bool,
    pub severity: Severity,
    /// The value that decided the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    pub message: String,
    /// When the detector decided (the reading's time, not the wall clock of processing).
    pub ts: Timestamp,
    /// The zone the source belongs to, for correlation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// A latching alarm stays `latched` after it clears until an operator resets it.
    #[serde(default)]
    pub latching: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trip_keeps_slashes_in_the_source() {
        let key = AlertKey::new(
            NodeId::new("gw-prison-3").expect("ok"),
            "fence-north/zone1_alarm",
            ConditionKind::new(ConditionKind::STATE).expect("ok"),
        )
        .expect("ok");
        let text = key.to_string();
        assert_eq!(text, "gw-prison-3/fence-north/zone1_alarm/state");
        assert_eq!(text.parse::<AlertKey>().expect("parses"), key);
    }

    #[test]
    fn deserialising_a_key_validates_its_source() {
        let ok: AlertKey = serde_json::from_str(r#"{"origin":"gw","source":"a/b","kind":"state"}"#)
            .expect("valid");
        assert_eq!(ok.source, "a/b");
        assert!(serde_json::from_str::<AlertKey>(
            r#"{"origin":"gw","source":"a b","kind":"state"}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<AlertKey>(r#"{"origin":"gw","source":"","kind":"state"}"#)
                .is_err()
        );
    }

    #[test]
    fn bad_keys() {
        assert!("gw".parse::<AlertKey>().is_err());
        assert!("gw/kind".parse::<AlertKey>().is_err());
        assert!("gw/a b/state".parse::<AlertKey>().is_err());
        assert!("gw/src/Bad".parse::<AlertKey>().is_err());
        assert!(ConditionKind::new("").is_err());
    }
}
