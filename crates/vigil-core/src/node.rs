//! Node ids, network levels and site paths.
//!
//! A **node** is one Vigil process in the network: an edge agent on a facility's gateway, or
//! a hub at a command centre. Its id appears in MQTT topics (`vigil/v1/up/{node}`), so it is
//! restricted to characters that are safe there and in file names.
//!
//! A **site path** places a node or an alert in the four-level command network below the
//! ministry: `ministry/guangdong/guangzhou/baiyun/prison-3` is a facility under a county under
//! a city under a province. A user's scope is a site path; everything at or below it is in
//! scope.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest node id accepted.
pub const MAX_NODE_ID_LEN: usize = 64;

/// A node's id: 1–64 characters of `a-z 0-9 - _ .`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

/// Why a node id or site path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("node id {0:?} is empty or longer than {MAX_NODE_ID_LEN} characters")]
    NodeIdLength(String),
    #[error(
        "node id {0:?} may use only lowercase letters, digits, '-', '_' and '.', and must start with a letter or digit"
    )]
    NodeIdChars(String),
    #[error("site path {0:?} is empty")]
    EmptySite(String),
    #[error("site path {path:?} has {depth} segments; at most 5 (ministry/province/city/county/facility)")]
    SiteTooDeep { path: String, depth: usize },
    #[error("site path {path:?} has an invalid segment {segment:?}: use lowercase letters, digits, '-', '_' and '.'")]
    SiteSegment { path: String, segment: String },
}

impl NodeId {
    /// Validates and wraps a node id.
    pub fn new(id: impl Into<String>) -> Result<Self, NameError> {
        let id = id.into();
        validate_name(&id).map_err(|long| {
            if long {
                NameError::NodeIdLength(id.clone())
            } else {
                NameError::NodeIdChars(id.clone())
            }
        })?;
        Ok(NodeId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Err(true)` for a length problem, `Err(false)` for a character problem.
fn validate_name(s: &str) -> Result<(), bool> {
    if s.is_empty() || s.len() > MAX_NODE_ID_LEN {
        return Err(true);
    }
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(false)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::new(s)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        NodeId::new(s).map_err(serde::de::Error::custom)
    }
}

/// A node's level in the command network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ministry,
    Province,
    City,
    County,
    Facility,
}

impl Level {
    /// The number of site-path segments a node of this level has (ministry = 1).
    pub const fn depth(self) -> usize {
        match self {
            Level::Ministry => 1,
            Level::Province => 2,
            Level::City => 3,
            Level::County => 4,
            Level::Facility => 5,
        }
    }

    /// The level a site path of `depth` segments names.
    pub const fn from_depth(depth: usize) -> Option<Level> {
        match depth {
            1 => Some(Level::Ministry),
            2 => Some(Level::Province),
            3 => Some(Level::City),
            4 => Some(Level::County),
            5 => Some(Level::Facility),
            _ => None,
        }
    }

    /// The level's name as written in config and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Ministry => "ministry",
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Facility => "facility",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place in the network: 1–5 `/`-separated segments, ministry first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SitePath(String);

impl SitePath {
    /// Validates and wraps a site path such as `ministry/guangdong/guangzhou`.
    pub fn new(path: impl Into<String>) -> Result<Self, NameError> {
        let path = path.into();
        if path.is_empty() {
            return Err(NameError::EmptySite(path));
        }
        let mut depth = 0;
        for segment in path.split('/') {
            depth += 1;
            if validate_name(segment).is_err() {
                return Err(NameError::SiteSegment {
                    path: path.clone(),
                    segment: segment.to_owned(),
                });
            }
        }
        if depth > Level::Facility.depth() {
            return Err(NameError::SiteTooDeep { path, depth });
        }
        Ok(SitePath(path))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, ministry first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The number of segments.
    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// The level this path names (a 5-segment path is a facility).
    pub fn level(&self) -> Level {
        // `new` guarantees 1..=5 segments.
        Level::from_depth(self.depth()).unwrap_or(Level::Facility)
    }

    /// The parent site, or `None` at the ministry.
    pub fn parent(&self) -> Option<SitePath> {
        self.0.rfind('/').map(|i| SitePath(self.0[..i].to_owned()))
    }

    /// Whether `self` lies at or below `scope` — the check behind every scoped read and
    /// action. Compares whole segments: `a/bc` is not within `a/b`.
    pub fn is_within(&self, scope: &SitePath) -> bool {
        self.0 == scope.0
            || (self.0.len() > scope.0.len()
                && self.0.starts_with(&scope.0)
                && self.0.as_bytes()[scope.0.len()] == b'/')
    }
}

impl fmt::Display for SitePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SitePath {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SitePath::new(s)
    }
}

impl Serialize for SitePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SitePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        SitePath::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(NodeId::new("gw-prison-3").is_ok());
        assert!(NodeId::new("county.baiyun_1").is_ok());
        assert!(matches!(NodeId::new(""), Err(NameError::NodeIdLength(_))));
        assert!(matches!(
            NodeId::new("a".repeat(65)),
            Err(NameError::NodeIdLength(_))
        ));
        for bad in ["Gw", "-gw", "gw/1", "gw+", "gw#", "gw 1", "gw\u{e9}"] {
            assert!(
                matches!(NodeId::new(bad), Err(NameError::NodeIdChars(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn site_paths_and_scope() {
        let facility = SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("ok");
        assert_eq!(facility.level(), Level::Facility);
        let county = facility.parent().expect("has parent");
        assert_eq!(county.as_str(), "ministry/guangdong/guangzhou/baiyun");
        assert_eq!(county.level(), Level::County);
        assert!(facility.is_within(&county));
        assert!(facility.is_within(&facility));
        assert!(!county.is_within(&facility));
        let sibling = SitePath::new("ministry/guangdong/guangzhou/baiyunx").expect("ok");
        assert!(!sibling.is_within(&county), "segment boundary respected");
        assert_eq!(SitePath::new("ministry").expect("ok").parent(), None);
    }

    #[test]
    fn bad_site_paths() {
        assert!(matches!(SitePath::new(""), Err(NameError::EmptySite(_))));
        assert!(matches!(
            SitePath::new("a//b"),
            Err(NameError::SiteSegment { .. })
        ));
        assert!(matches!(
            SitePath::new("a/b/"),
            Err(NameError::SiteSegment { .. })
        ));
        assert!(matches!(
            SitePath::new("a/b/c/d/e/f"),
            Err(NameError::SiteTooDeep { depth: 6, .. })
        ));
    }
}
