//! Errors of the bundle layer: one enum for bundles, one for key files.
//!
//! Every variant names what is wrong (the file, the key id, the versions) so that `vigil-fw`
//! and the agent can print it as it is.

use std::path::PathBuf;

use crate::keys::KeyId;

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file's contents are not a key of the expected kind.
    #[error("key file {path}: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret key file may be read by others than its owner.
    #[error("secret key file {path} has mode {mode:o}; allow only its owner (chmod 600 {path})")]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// Why a bundle could not be packed, signed, verified or extracted.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a Vigil bundle, or its header or manifest cannot be read.
    #[error("{path}: not a valid bundle: {reason}")]
    Malformed {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bundle's container or manifest format is newer than this code knows.
    #[error("unsupported bundle format {found} (this build reads format {supported})")]
    UnsupportedFormat {
        /// The format in the bundle.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// The bundle carries no signature.
    #[error("bundle is unsigned; sign it with `vigil-fw sign --key KEYFILE BUNDLE`")]
    Unsigned,
    /// The bundle is signed by a key that is not among the trusted keys.
    #[error("bundle is signed by key {key_id}, which is not a trusted key")]
    UnknownKey {
        /// The id of the key that signed it.
        key_id: KeyId,
    },
    /// The signature does not verify: the manifest changed after signing, or it is forged.
    #[error("bad signature by key {key_id}: the manifest was changed after signing or the signature is forged")]
    BadSignature {
        /// The id of the key the bundle names.
        key_id: KeyId,
    },
    /// A file in the bundle does not match its manifest entry.
    #[error("tampered file {path}: {reason}")]
    TamperedFile {
        /// The file's path inside the bundle.
        path: String,
        /// What does not match.
        reason: String,
    },
    /// The bundle's version is not newer than the running one (rollback).
    #[error("bundle version {version} is not newer than the current version {current}; refusing rollback")]
    NotNewer {
        /// The bundle's version.
        version: semver::Version,
        /// The version running now.
        current: semver::Version,
    },
    /// A path is absolute, has `.`/`..` components, or would leave the target directory.
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// The offending path.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// An input for packing is not usable (a symlink, a non-UTF-8 name, a duplicate path).
    #[error("input {path}: {reason}")]
    BadInput {
        /// The input path on disk.
        path: PathBuf,
        /// Why it cannot be packed.
        reason: String,
    },
    /// The extraction target is not an empty directory.
    #[error("extract target {path}: {reason}")]
    BadTarget {
        /// The target directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl BundleError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
