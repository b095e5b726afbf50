//! [`PkiError`]: what can go wrong reading, writing, issuing and checking certificates.
//!
//! Every error that comes from a file names the file; errors about PEM text that did not
//! come from a file name what the text was meant to be (`the CA certificate`, `the CSR`).

use std::path::PathBuf;

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read, written or renamed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot write`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A private key file that group or others may read: refused, like ssh does.
    #[error(
        "private key {path} is readable by group or others (mode {mode:o}): run `chmod 600 {path}`"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// One of the CA's two files exists without the other.
    #[error("{present} exists but {missing} does not: restore it from a backup, or move {present} away to create a new CA (every issued certificate then has to be issued again)")]
    IncompleteCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// PEM text that does not hold what it should (no certificate, no key, bad base64).
    #[error("{what}: {reason}")]
    Pem {
        /// The file, or what the text was meant to be.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A certificate that cannot be parsed or lacks what Vigil needs in it.
    #[error("{what}: {reason}")]
    Certificate {
        /// The file, or which certificate.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A certificate signing request that cannot be parsed, whose signature does not verify,
    /// or whose key is not ECDSA P-256.
    #[error("certificate signing request refused: {0}")]
    Csr(String),
    /// Key generation or signing failed.
    #[error("cannot {action}: {source}")]
    Sign {
        /// What was being done.
        action: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused the certificates or key while building a TLS config.
    #[error("cannot build the TLS {side} config: {reason}")]
    Tls {
        /// `server` or `client`.
        side: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// A validity period that ends before it starts, or lies outside what X.509 can say.
    #[error("invalid validity: {0}")]
    Validity(String),
}

/// Results of this crate.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn pem(what: impl Into<String>, reason: impl Into<String>) -> Self {
        PkiError::Pem {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn cert(what: impl Into<String>, reason: impl Into<String>) -> Self {
        PkiError::Certificate {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn sign(action: &'static str) -> impl FnOnce(rcgen::Error) -> Self {
        move |source| PkiError::Sign { action, source }
    }
}
