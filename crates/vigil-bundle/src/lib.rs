//! Vigil's signed update bundles.
//!
//! A bundle carries what an agent update needs (the agent binary, its config, device profiles,
//! models) in one file, with a JSON [`Manifest`] that pins every file by size and sha256, and an
//! ed25519 signature over the manifest's exact bytes. `vigil-fw` makes and signs bundles with
//! [`pack`] and [`sign`]; the agent checks one with [`verify`] and only then writes its files out
//! with [`VerifiedBundle::extract_to`].
//!
//! # Container format (version 1)
//!
//! All integers are big-endian.
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | magic `VIGILBDL` |
//! | 8 | 4 | container version, `1` |
//! | 12 | 8 | key id of the signing key (all zero while unsigned) |
//! | 20 | 64 | ed25519 signature (all zero while unsigned) |
//! | 84 | 4 | manifest length `M` in bytes (at most [`MAX_MANIFEST_LEN`]) |
//! | 88 | `M` | the manifest, UTF-8 JSON |
//! | 88 + M | … | each file's bytes, in manifest order, back to back, then end of file |
//!
//! The signature lives in the fixed slot of the header, so `sign` writes 72 bytes in place and
//! never rewrites the payload. It signs `"vigil-bundle-v1\n"` followed by the manifest bytes
//! exactly as stored: there is no re-serialisation, so no canonicalisation can differ between
//! signer and verifier. The manifest pins every file's size and sha256, so the signature covers
//! the whole bundle; bytes after the last file are refused.
//!
//! The format has no entry type for links or devices: a bundle holds regular files only, and
//! paths are relative, `/`-separated, without `.` or `..` components.

mod error;
mod format;
mod keys;
mod manifest;
mod pack;
mod sign;
mod verify;

pub use error::{BundleError, KeyError};
pub use format::{CONTAINER_VERSION, MAGIC, MAX_MANIFEST_LEN};
pub use keys::{generate_keypair, write_keypair, KeyId, PublicKey, SecretKey};
pub use manifest::{check_bundle_path, FileEntry, Manifest, MANIFEST_FORMAT};
pub use pack::{pack, BundleInputs, NoProgress, Progress};
pub use sign::sign;
pub use verify::{verify, VerifiedBundle};
