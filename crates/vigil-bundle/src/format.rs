//! The container's fixed header: magic, container version, signature slot, manifest length.
//!
//! See the crate docs for the layout. This module reads and writes the header and the manifest
//! bytes that follow it; it checks nothing about signatures or files.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::BundleError;
use crate::keys::KeyId;

/// The first 8 bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"VIGILBDL";
/// The container version this build writes and reads.
pub const CONTAINER_VERSION: u32 = 1;
/// The largest manifest accepted, in bytes (a guard against hostile lengths).
pub const MAX_MANIFEST_LEN: u32 = 16 * 1024 * 1024;

/// Byte offset of the key id in the header.
pub(crate) const KEY_ID_OFFSET: u64 = 12;
/// Length of the header before the manifest.
pub(crate) const HEADER_LEN: u64 = 88;
/// The domain-separation prefix of the signed message.
pub(crate) const SIGNING_CONTEXT: &[u8] = b"vigil-bundle-v1\n";

/// The header and manifest bytes of a bundle, as read from disk.
#[derive(Debug, Clone)]
pub(crate) struct RawHead {
    /// The key id in the signature slot (all zero when unsigned).
    pub key_id: [u8; 8],
    /// The signature in the signature slot (all zero when unsigned).
    pub signature: [u8; 64],
    /// The manifest bytes exactly as stored.
    pub manifest: Vec<u8>,
}

impl RawHead {
    /// Whether the signature slot is empty.
    pub fn is_unsigned(&self) -> bool {
        self.key_id == [0; 8] && self.signature.iter().all(|b| *b == 0)
    }

    /// The key id in the signature slot.
    pub fn key_id(&self) -> KeyId {
        KeyId(self.key_id)
    }
}

/// The message a signature covers: the context prefix and the manifest bytes.
pub(crate) fn signed_message(manifest: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + manifest.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(manifest);
    message
}

/// Writes an unsigned header followed by the manifest bytes.
pub(crate) fn write_head(out: &mut impl Write, manifest: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(manifest.len())
        .ok()
        .filter(|len| *len <= MAX_MANIFEST_LEN)
        .ok_or_else(|| std::io::Error::other("manifest too large"))?;
    out.write_all(MAGIC)?;
    out.write_all(&CONTAINER_VERSION.to_be_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&[0; 64])?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(manifest)
}

/// Reads the header and the manifest bytes; leaves `input` at the first payload byte.
pub(crate) fn read_head(input: &mut impl Read, path: &Path) -> Result<RawHead, BundleError> {
    let malformed = |reason: &str| BundleError::Malformed {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut header = [0u8; HEADER_LEN as usize];
    read_exact_or(
        input,
        &mut header,
        path,
        "file too short for a bundle header",
    )?;
    if &header[0..8] != MAGIC {
        return Err(malformed("wrong magic; not a Vigil bundle"));
    }
    let version = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if version != CONTAINER_VERSION {
        return Err(BundleError::UnsupportedFormat {
            found: version,
            supported: CONTAINER_VERSION,
        });
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&header[12..20]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&header[20..84]);
    let len = u32::from_be_bytes([header[84], header[85], header[86], header[87]]);
    if len > MAX_MANIFEST_LEN {
        return Err(malformed("manifest length exceeds the 16 MiB limit"));
    }
    let mut manifest = vec![0u8; len as usize];
    read_exact_or(input, &mut manifest, path, "file ends inside the manifest")?;
    Ok(RawHead {
        key_id,
        signature,
        manifest,
    })
}

/// `read_exact` that reports a short file as a malformed bundle rather than an I/O error.
fn read_exact_or(
    input: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    short: &str,
) -> Result<(), BundleError> {
    input.read_exact(buf).map_err(|source| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            BundleError::Malformed {
                path: path.to_path_buf(),
                reason: short.to_owned(),
            }
        } else {
            BundleError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}
