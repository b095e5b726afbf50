//! The envelope every payload shares — `"v"` and `"type"` — read before anything else.
//!
//! [`read_header`] skims the whole payload once, keeping only `v` and `type`: that checks the
//! JSON syntax (with line and column), refuses a payload of another protocol version before
//! any field of it is interpreted, and picks the payload's kind. The codec then reads the body
//! with the kind's own type. [`Envelope`] writes `v` and `type` first, then the body's fields.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::WireError;
use crate::message::MessageKind;
use crate::PROTOCOL_VERSION;

/// How much of an unexpected `v` or `type` an error quotes.
const PREVIEW_CHARS: usize = 64;

/// A payload as written: `v`, `type`, then the body's own fields.
#[derive(Serialize)]
pub(crate) struct Envelope<'a, T: Serialize> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

impl<'a, T: Serialize> Envelope<'a, T> {
    /// `body` as a payload of `kind`.
    pub(crate) const fn new(kind: MessageKind, body: &'a T) -> Self {
        Envelope {
            v: PROTOCOL_VERSION,
            kind: kind.as_str(),
            body,
        }
    }
}

/// Reads `v` and `type` from a whole payload and returns its kind.
pub(crate) fn read_header(bytes: &[u8]) -> Result<MessageKind, WireError> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        // Not an object: say whether it is JSON at all.
        return Err(match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => WireError::NotAnObject,
            Err(err) => malformed(&err),
        });
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|err| malformed(&err))?;
    match header.version {
        None => return Err(WireError::MissingVersion),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(PROTOCOL_VERSION) => {}
            Some(version) => return Err(WireError::UnsupportedVersion { version }),
            None => {
                return Err(WireError::VersionNotInteger {
                    found: n.to_string(),
                })
            }
        },
        Some(other) => {
            return Err(WireError::VersionNotInteger {
                found: preview(&other),
            })
        }
    }
    match header.kind {
        None => Err(WireError::MissingType),
        Some(Value::String(name)) => {
            MessageKind::from_name(&name).ok_or_else(|| WireError::UnknownType {
                found: preview(&Value::String(name)),
            })
        }
        Some(other) => Err(WireError::UnknownType {
            found: preview(&other),
        }),
    }
}

/// A JSON error as [`WireError::Malformed`].
fn malformed(err: &serde_json::Error) -> WireError {
    WireError::Malformed {
        line: err.line(),
        column: err.column(),
        reason: reason(err),
    }
}

/// serde_json's message without its trailing " at line L column C", which the error variants
/// carry as fields.
pub(crate) fn reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

/// `value` as compact JSON, cut to [`PREVIEW_CHARS`] characters.
fn preview(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The two members every payload has, as found (any JSON value), everything else skipped.
struct Header {
    version: Option<Value>,
    kind: Option<Value>,
}

/// A member name, as far as the header cares.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum Key {
    #[serde(rename = "v")]
    Version,
    #[serde(rename = "type")]
    Type,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header {
            version: None,
            kind: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Version if header.version.is_some() => {
                    return Err(de::Error::duplicate_field("v"))
                }
                Key::Version => header.version = Some(map.next_value()?),
                Key::Type if header.kind.is_some() => {
                    return Err(de::Error::duplicate_field("type"))
                }
                Key::Type => header.kind = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<CheckedAny>()?;
                }
            }
        }
        Ok(header)
    }
}

/// Any JSON value, read in full and dropped: strings decoded (UTF-8 and escapes checked),
/// numbers parsed. `IgnoredAny` would be faster, but serde_json skips it without those checks,
/// and the header pass is what vouches for the payload's JSON syntax.
struct CheckedAny;

impl<'de> Deserialize<'de> for CheckedAny {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedAny)
    }
}

impl<'de> Visitor<'de> for CheckedAny {
    type Value = CheckedAny;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self, E> {
        Ok(CheckedAny)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<CheckedAny>()?.is_some() {}
        Ok(CheckedAny)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<CheckedAny, CheckedAny>()?.is_some() {}
        Ok(CheckedAny)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_checked_before_type() {
        assert_eq!(
            read_header(br#"{"type": "nonsense", "v": 7}"#),
            Err(WireError::UnsupportedVersion { version: 7 })
        );
        assert_eq!(
            read_header(br#"{"type": "ack"}"#),
            Err(WireError::MissingVersion)
        );
        assert_eq!(
            read_header(br#" {"v": 1, "type": "ack"} "#),
            Ok(MessageKind::Ack)
        );
    }

    #[test]
    fn versions_that_are_not_integers() {
        for (json, found) in [
            (r#"{"v": "1"}"#, r#""1""#),
            (r#"{"v": 1.0}"#, "1.0"),
            (r#"{"v": -1}"#, "-1"),
            (r#"{"v": null}"#, "null"),
            (r#"{"v": [1]}"#, "[1]"),
        ] {
            assert_eq!(
                read_header(json.as_bytes()),
                Err(WireError::VersionNotInteger {
                    found: found.to_owned()
                }),
                "{json}"
            );
        }
    }

    #[test]
    fn types() {
        assert_eq!(read_header(br#"{"v": 1}"#), Err(WireError::MissingType));
        assert_eq!(
            read_header(br#"{"v": 1, "type": 3}"#),
            Err(WireError::UnknownType {
                found: "3".to_owned()
            })
        );
        let long = format!(r#"{{"v": 1, "type": "{}"}}"#, "x".repeat(1000));
        let Err(WireError::UnknownType { found }) = read_header(long.as_bytes()) else {
            panic!("expected an unknown type");
        };
        assert_eq!(
            found.chars().count(),
            PREVIEW_CHARS + 1,
            "quoted, not copied: {found}"
        );
    }

    #[test]
    fn not_objects_and_not_json() {
        assert_eq!(read_header(b"[1, 2]"), Err(WireError::NotAnObject));
        assert_eq!(read_header(b" 17 "), Err(WireError::NotAnObject));
        assert!(matches!(read_header(b""), Err(WireError::Malformed { .. })));
        assert!(matches!(
            read_header(b"[1, "),
            Err(WireError::Malformed { .. })
        ));
        // Strings and numbers in members the header skips are still checked.
        for bad in [
            &b"{\"v\": 1, \"type\": \"ack\", \"x\": \"\xff\"}"[..],
            br#"{"v": 1, "type": "ack", "x": "\ud800"}"#,
            br#"{"v": 1, "type": "ack", "x": {"\ud800": 1}}"#,
            br#"{"v": 1, "type": "ack", "x": ["\q"]}"#,
            br#"{"v": 1, "type": "ack", "x": 1e400}"#,
        ] {
            assert!(
                matches!(read_header(bad), Err(WireError::Malformed { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            read_header(b"{\"v\": 1, \"v\": 1, \"type\": \"ack\"}"),
            Err(WireError::Malformed { reason, .. }) if reason == "duplicate field `v`"
        ));
        assert_eq!(
            read_header(b"{\"v\": 1, \"type\": \"ack\"}\n {}"),
            Err(WireError::Malformed {
                line: 2,
                column: 2,
                reason: "trailing characters".to_owned()
            })
        );
    }
}
