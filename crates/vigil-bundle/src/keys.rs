//! ed25519 keys: generating them, their text files, and the key id.
//!
//! - Public key: one line `vigil-ed25519:<base64 of the 32-byte key> [NAME]`. A trusted-keys
//!   file holds any number of such lines; blank lines and lines starting with `#` are skipped.
//!   An installer appends the line to the agent's trusted keys.
//! - Secret key: one line `vigil-ed25519-secret:<base64 of the 32-byte seed>`, in a file of mode
//!   0600; reading refuses a file that group or others may read.
//! - Key id: the first 8 bytes of sha256 of the public key, shown as 16 hex digits. It names the
//!   signing key in a bundle and in messages; it is not a secret and not a trust anchor.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::error::KeyError;

const PUBLIC_PREFIX: &str = "vigil-ed25519:";
const SECRET_PREFIX: &str = "vigil-ed25519-secret:";

/// The id of a public key: the first 8 bytes of its sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A trusted (public) ed25519 key with an optional name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    name: Option<String>,
}

impl PublicKey {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::digest(self.key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// The name given at `keygen`, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The key as one line of a trusted-keys file (without the newline).
    pub fn to_line(&self) -> String {
        let encoded = BASE64.encode(self.key.as_bytes());
        match &self.name {
            Some(name) => format!("{PUBLIC_PREFIX}{encoded} {name}"),
            None => format!("{PUBLIC_PREFIX}{encoded}"),
        }
    }

    /// Parses one line `vigil-ed25519:<base64> [NAME]`.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (encoded, name) = match line.split_once(char::is_whitespace) {
            Some((key, name)) => (key, Some(name.trim().to_owned())),
            None => (line, None),
        };
        let encoded = encoded
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| format!("expected a line starting with {PUBLIC_PREFIX:?}"))?;
        let bytes = decode_32(encoded)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "not a valid ed25519 public key".to_owned())?;
        Ok(Self {
            key,
            name: name.filter(|n| !n.is_empty()),
        })
    }

    /// Reads every key of a trusted-keys file (at least one).
    pub fn read_file(path: &Path) -> Result<Vec<Self>, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let key = Self::parse_line(trimmed).map_err(|reason| KeyError::Malformed {
                path: path.to_path_buf(),
                reason: format!("line {}: {reason}", index + 1),
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::Malformed {
                path: path.to_path_buf(),
                reason: "no public key in the file".to_owned(),
            });
        }
        Ok(keys)
    }

    /// Verifies `signature` over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// A secret ed25519 signing key. Its `Debug` shows only the key id; it is never printed.
pub struct SecretKey {
    key: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &self.public_key(None).key_id())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// The matching public key, with `name`.
    pub fn public_key(&self, name: Option<&str>) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            name: name.map(str::to_owned),
        }
    }

    /// Reads a secret key file, refusing one that others than its owner may read.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let malformed = |reason: String| KeyError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| malformed(format!("expected a line starting with {SECRET_PREFIX:?}")))?;
        let seed = decode_32(encoded).map_err(malformed)?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Writes the secret key to `path` with mode 0600; refuses to overwrite an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let line = format!("{SECRET_PREFIX}{}\n", BASE64.encode(self.key.to_bytes()));
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// Makes a new key pair from the operating system's randomness.
pub fn generate_keypair() -> Result<SecretKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(SecretKey { key })
}

/// Writes a new key pair as `DIR/NAME.key` (secret, 0600) and `DIR/NAME.pub`; returns both paths.
pub fn write_keypair(
    secret: &SecretKey,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    if public_path.exists() {
        return Err(KeyError::Io {
            path: public_path,
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    secret.write_file(&secret_path)?;
    let line = format!("{}\n", secret.public_key(Some(name)).to_line());
    std::fs::write(&public_path, line).map_err(|source| KeyError::Io {
        path: public_path.clone(),
        source,
    })?;
    Ok((secret_path, public_path))
}

/// Decodes base64 that must hold exactly 32 bytes.
fn decode_32(encoded: &str) -> Result<[u8; 32], String> {
    let bytes = BASE64
        .decode(encoded.trim())
        .map_err(|e| format!("bad base64: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("expected 32 bytes of key, found {}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_line_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let secret = generate_keypair()?;
        let public = secret.public_key(Some("release-2026"));
        let parsed = PublicKey::parse_line(&public.to_line())?;
        assert_eq!(parsed, public);
        assert_eq!(parsed.key_id().to_string().len(), 16);
        Ok(())
    }

    #[test]
    fn secret_key_debug_hides_the_key() -> Result<(), Box<dyn std::error::Error>> {
        let secret = generate_keypair()?;
        let shown = format!("{secret:?}");
        let encoded = BASE64.encode(secret.key.to_bytes());
        assert!(!shown.contains(&encoded));
        assert!(shown.contains("key_id"));
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn keypair_files_have_safe_modes_and_open_keys_are_refused(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir()?;
        let secret = generate_keypair()?;
        let (secret_path, public_path) = write_keypair(&secret, dir.path(), "test")?;
        let mode = std::fs::metadata(&secret_path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = SecretKey::read_file(&secret_path)?;
        assert_eq!(
            back.public_key(None).key_id(),
            secret.public_key(None).key_id()
        );
        assert_eq!(PublicKey::read_file(&public_path)?.len(), 1);
        // A second keygen into the same place must not clobber the key.
        assert!(write_keypair(&secret, dir.path(), "test").is_err());
        std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o644))?;
        assert!(matches!(
            SecretKey::read_file(&secret_path),
            Err(KeyError::TooOpen { .. })
        ));
        Ok(())
    }
}
