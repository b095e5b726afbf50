//! The manifest: what a bundle holds, pinned by size and sha256, and the rules for its paths.
//!
//! The manifest is JSON with `deny_unknown_fields`; its stored bytes are what the signature
//! covers. [`Manifest::validate`] is pure and runs on every verify, before any file is read.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::BundleError;

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format, [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The bundle's version; versions are compared by semver precedence (numerically).
    pub version: semver::Version,
    /// When the bundle was packed.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Every file, in the order its bytes follow the manifest.
    pub files: Vec<FileEntry>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside the bundle: relative, `/`-separated, e.g. `profiles/acme/door.yaml`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the contents, 64 lower-case hex digits.
    pub sha256: String,
    /// Whether the file is extracted with the executable bit (the agent binary).
    #[serde(default)]
    pub executable: bool,
}

impl Manifest {
    /// Checks the format, every path, duplicate paths and the digests' shape.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.format != MANIFEST_FORMAT {
            return Err(BundleError::UnsupportedFormat {
                found: self.format,
                supported: MANIFEST_FORMAT,
            });
        }
        let mut seen = HashSet::new();
        for entry in &self.files {
            check_bundle_path(&entry.path)?;
            if !seen.insert(entry.path.as_str()) {
                return Err(BundleError::UnsafePath {
                    path: entry.path.clone(),
                    reason: "listed twice in the manifest".to_owned(),
                });
            }
            let hex_ok = entry.sha256.len() == 64
                && entry
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(BundleError::TamperedFile {
                    path: entry.path.clone(),
                    reason: "manifest sha256 is not 64 lower-case hex digits".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The sum of all file sizes (saturating).
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |sum, f| sum.saturating_add(f.size))
    }
}

/// Checks that `path` is a safe path inside a bundle: relative, `/`-separated, no empty, `.` or
/// `..` component, no backslash, NUL or other control character, and no drive prefix.
pub fn check_bundle_path(path: &str) -> Result<(), BundleError> {
    let refuse = |reason: &str| BundleError::UnsafePath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if path.is_empty() {
        return Err(refuse("empty path"));
    }
    if path.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(refuse("backslash or control character"));
    }
    if path.contains(':') {
        return Err(refuse("':' (drive or stream prefix)"));
    }
    for component in path.split('/') {
        match component {
            "" => return Err(refuse("empty component")),
            "." => return Err(refuse("'.' component")),
            ".." => return Err(refuse("'..' component (path traversal)")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_pass_and_traversal_is_refused() {
        assert!(check_bundle_path("agent/vigil-agent").is_ok());
        assert!(check_bundle_path("profiles/acme/door.yaml").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../evil",
            "profiles/../../evil",
            "a//b",
            "./a",
            "a/",
            "a\\..\\b",
            "C:evil",
            "a\0b",
        ] {
            assert!(
                matches!(check_bundle_path(bad), Err(BundleError::UnsafePath { .. })),
                "{bad:?} passed"
            );
        }
    }

    #[test]
    fn duplicate_paths_and_bad_digests_are_refused() {
        let entry = FileEntry {
            path: "a".to_owned(),
            size: 0,
            sha256: "0".repeat(64),
            executable: false,
        };
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT,
            version: semver::Version::new(1, 0, 0),
            created_at: chrono::Utc::now(),
            files: vec![entry.clone(), entry.clone()],
        };
        assert!(manifest.validate().is_err());
        manifest.files = vec![FileEntry {
            sha256: "XYZ".to_owned(),
            ..entry
        }];
        assert!(manifest.validate().is_err());
    }
}
