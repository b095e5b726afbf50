//! Key and certificate files: atomic writes (a temporary file in the same directory,
//! fsync, rename), private keys created with mode 0600, and a refusal to read a private key
//! that group or others can read (a key that leaked may already be in someone else's hands:
//! fix the mode, and think about re-issuing).
//!
//! [`TlsFiles`] names the three files of a TLS identity — the CA certificate to trust, this
//! side's certificate and its private key — and loads them into [`TlsMaterial`], from which
//! the rustls configs of [`crate::tls`] are built.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{PkiError, Result};
use crate::revocations::Revocations;

/// Permission bits of a private key file.
pub const PRIVATE_KEY_MODE: u32 = 0o600;

/// Permission bits of a certificate file.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes a private key atomically, readable by its owner only (0600). An existing file is
/// replaced.
pub fn write_private_key(path: &Path, pem: &str) -> Result<()> {
    write_atomic(path, pem.as_bytes(), PRIVATE_KEY_MODE)
}

/// Writes a certificate (or any public file) atomically, mode 0644.
pub fn write_certificate(path: &Path, pem: &str) -> Result<()> {
    write_atomic(path, pem.as_bytes(), PUBLIC_MODE)
}

/// Reads a private key file, refusing one that group or others may read.
pub fn read_private_key(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).map_err(|e| PkiError::io("cannot read", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::KeyPermissions {
            path: path.to_owned(),
            mode,
        });
    }
    read_text(path)
}

/// Reads a text file (a certificate).
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| PkiError::io("cannot read", path, e))
}

/// Writes `bytes` to `path` through a temporary file in the same directory created with
/// `mode`, synced, then renamed over `path`; the directory is synced after (best effort).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| PkiError::io("cannot create", &tmp, e))?;
        // The umask may have taken bits away; never added any. Set exactly `mode`.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("cannot set the mode of", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| PkiError::io("cannot write", &tmp, e))?;
        file.sync_all()
            .map_err(|e| PkiError::io("cannot sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("cannot replace", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The three files of a TLS identity, as named in a node's config (`[tls] ca`, `cert`,
/// `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate to trust (the parent hub's `ca.pem`).
    pub ca: PathBuf,
    /// This side's certificate.
    pub cert: PathBuf,
    /// This side's private key (mode 0600).
    pub key: PathBuf,
}

/// What [`TlsFiles::load`] read: PEM text, checked to hold a certificate, a key, a CA.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificate(s) to trust.
    pub ca_pem: String,
    /// This side's certificate (chain).
    pub cert_pem: String,
    /// This side's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl TlsFiles {
    /// The usual layout in `dir`: `ca.pem`, `node.pem`, `node.key`.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
        }
    }

    /// Reads the three files (the key only if its mode is 0600 or stricter) and checks that
    /// each holds what it should; errors name the file.
    pub fn load(&self) -> Result<TlsMaterial> {
        let ca_pem = read_text(&self.ca)?;
        crate::cert::certs_from_pem(&ca_pem, &self.ca.display().to_string())?;
        let cert_pem = read_text(&self.cert)?;
        crate::cert::certs_from_pem(&cert_pem, &self.cert.display().to_string())?;
        let key_pem = read_private_key(&self.key)?;
        crate::cert::key_from_pem(&key_pem, &self.key.display().to_string())?;
        Ok(TlsMaterial {
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    /// Loads the files and builds a client config that trusts only the CA and presents the
    /// certificate: what `vigil_link::UplinkConfig::tls` takes for an `mqtts://` parent.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        self.load()?.client_config()
    }

    /// Loads the files and builds an mTLS server config (see
    /// [`server_config_mtls`](crate::tls::server_config_mtls)).
    pub fn server_config_mtls(
        &self,
        revocations: Revocations,
    ) -> Result<Arc<rustls::ServerConfig>> {
        self.load()?.server_config_mtls(revocations)
    }
}

/// Who a node's certificate names and until when: what the `check` commands report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node the certificate was issued to.
    pub node: vigil_core::NodeId,
    /// When it stops being valid.
    pub not_after: std::time::SystemTime,
}

impl TlsFiles {
    /// Loads the three files as a client identity (the key must be the certificate's: the
    /// client config is built) and reads who the certificate names and until when. Errors
    /// name the file.
    pub fn identity(&self) -> Result<Identity> {
        let material = self.load()?;
        material.client_config()?;
        let what = self.cert.display().to_string();
        let der = crate::cert::cert_from_pem(&material.cert_pem, &what)?;
        Ok(Identity {
            node: crate::cert::node_of_certificate(&der)?,
            not_after: crate::cert::validity_of_certificate(&der)?.1,
        })
    }
}

impl TlsMaterial {
    /// A client config that trusts only `ca_pem` and presents `cert_pem`/`key_pem`.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        crate::tls::client_config(&self.ca_pem, Some((&self.cert_pem, &self.key_pem)))
    }

    /// A server config that requires a client certificate from `ca_pem`, not revoked.
    pub fn server_config_mtls(
        &self,
        revocations: Revocations,
    ) -> Result<Arc<rustls::ServerConfig>> {
        crate::tls::server_config_mtls(&self.ca_pem, &self.cert_pem, &self.key_pem, revocations)
    }
}

impl TlsFiles {
    /// Checks that the certificate chains to the CA in [`ca`](TlsFiles::ca), as the parent's
    /// broker will check it (chain, validity at `now`, clientAuth): an error naming both
    /// files when it does not — a certificate from another hub, or a CA file that is not
    /// its issuer's.
    pub fn verify_issuer(&self, now: std::time::SystemTime) -> Result<()> {
        use rustls::server::danger::ClientCertVerifier;
        let material = self.load()?;
        let certs =
            crate::cert::certs_from_pem(&material.cert_pem, &self.cert.display().to_string())?;
        let Some((leaf, intermediates)) = certs.split_first() else {
            return Err(PkiError::Pem {
                what: self.cert.display().to_string(),
                reason: "no certificate".into(),
            });
        };
        let since_epoch = now
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let verifier = crate::tls::NodeCertVerifier::new(
            &material.ca_pem,
            Revocations::new(),
            crate::tls::provider(),
        )?;
        verifier
            .verify_client_cert(
                leaf,
                intermediates,
                rustls_pki_types::UnixTime::since_unix_epoch(since_epoch),
            )
            .map(|_| ())
            .map_err(|err| PkiError::Certificate {
                what: self.cert.display().to_string(),
                reason: format!(
                    "does not verify against the CA in {} ({err}): it was issued by another CA",
                    self.ca.display()
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_0600_and_loose_ones_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        write_private_key(&path, "secret").expect("write");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_private_key(&path).expect("read"), "secret");
        write_private_key(&path, "secret 2").expect("replace");
        assert_eq!(read_private_key(&path).expect("read"), "secret 2");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = read_private_key(&path).expect_err("group-readable");
        assert!(
            matches!(err, PkiError::KeyPermissions { mode: 0o640, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("node.key") && text.contains("chmod 600"),
            "{text}"
        );
        // Nothing left behind but the key.
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_certificate_is_checked_against_the_ca_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = crate::Ca::load_or_create(&dir.path().join("ca-a"), "hub a").expect("ca a");
        let other = crate::Ca::load_or_create(&dir.path().join("ca-b"), "hub b").expect("ca b");
        let node = vigil_core::NodeId::new("county-1").expect("node");
        let request = crate::ca::node_key_and_csr(&node).expect("csr");
        let issued = ours
            .issue_node(
                &request.csr_pem,
                &node,
                std::time::Duration::from_secs(3600),
            )
            .expect("issued");
        let files = TlsFiles::in_dir(&dir.path().join("parent"));
        fs::create_dir_all(dir.path().join("parent")).expect("dir");
        write_certificate(&files.cert, &issued.cert_pem).expect("cert");
        write_private_key(&files.key, &request.key_pem).expect("key");
        write_certificate(&files.ca, ours.cert_pem()).expect("ca");
        let now = std::time::SystemTime::now();
        files.verify_issuer(now).expect("issued by this CA");
        write_certificate(&files.ca, other.cert_pem()).expect("another ca");
        let text = files
            .verify_issuer(now)
            .expect_err("another CA")
            .to_string();
        assert!(
            text.contains("node.pem") && text.contains("ca.pem") && text.contains("another CA"),
            "{text}"
        );
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = TlsFiles::in_dir(dir.path());
        let err = files.load().expect_err("missing");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
