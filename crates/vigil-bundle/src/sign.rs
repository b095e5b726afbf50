//! Signing: writing the key id and the ed25519 signature into the header's slot, in place.
//!
//! Before signing, every file is checked against the manifest, so a key never vouches for a
//! bundle whose payload already disagrees with what it pins. Signing again replaces the old
//! signature.

use std::fs::OpenOptions;
use std::io::{BufReader, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use crate::error::BundleError;
use crate::format::{read_head, signed_message, KEY_ID_OFFSET};
use crate::keys::{KeyId, SecretKey};
use crate::verify::{check_payloads, parse_manifest};

/// Signs the bundle at `bundle` with `key`, in place; returns the key id written.
pub fn sign(bundle: &Path, key: &SecretKey) -> Result<KeyId, BundleError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(bundle)
        .map_err(BundleError::io(bundle))?;
    let head = {
        let mut reader = BufReader::new(&mut file);
        let head = read_head(&mut reader, bundle)?;
        let manifest = parse_manifest(&head.manifest, bundle)?;
        check_payloads(&mut reader, &manifest, bundle)?;
        head
    };
    let key_id = key.public_key(None).key_id();
    let signature = key.sign(&signed_message(&head.manifest));
    file.seek(SeekFrom::Start(KEY_ID_OFFSET))
        .map_err(BundleError::io(bundle))?;
    file.write_all(&key_id.0).map_err(BundleError::io(bundle))?;
    file.write_all(&signature)
        .map_err(BundleError::io(bundle))?;
    file.sync_all().map_err(BundleError::io(bundle))?;
    Ok(key_id)
}
