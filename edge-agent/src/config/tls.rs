//! `[tls]`: the gateway's identity on an `mqtts://` uplink — the hub's CA certificate, this
//! gateway's certificate and its private key, as `vigil-agent enroll` writes them.
//!
//! ```toml
//! [tls]
//! ca = "tls/ca.pem"       # the hub's CA: the only one the uplink trusts
//! cert = "tls/node.pem"   # this gateway's certificate (its subject is [node] id)
//! key = "tls/node.key"    # its private key, mode 0600; never leaves the gateway
//! ```
//!
//! The section is optional; paths are relative to the config file's directory and default
//! to the above. They are read only for an `mqtts://` uplink ([`check_files`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_config::Problem;
use vigil_pki::TlsFiles;

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The hub's CA certificate (PEM): the only CA the uplink trusts.
    #[serde(default = "default_ca")]
    pub ca: PathBuf,
    /// This gateway's certificate (PEM), issued by the hub at enrollment.
    #[serde(default = "default_cert")]
    pub cert: PathBuf,
    /// This gateway's private key (PEM), mode 0600.
    #[serde(default = "default_key")]
    pub key: PathBuf,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            ca: default_ca(),
            cert: default_cert(),
            key: default_key(),
        }
    }
}

fn default_ca() -> PathBuf {
    PathBuf::from("tls/ca.pem")
}

fn default_cert() -> PathBuf {
    PathBuf::from("tls/node.pem")
}

fn default_key() -> PathBuf {
    PathBuf::from("tls/node.key")
}

impl TlsSection {
    /// The three files, relative paths taken from `config_dir`.
    pub fn files(&self, config_dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: config_dir.join(&self.ca),
            cert: config_dir.join(&self.cert),
            key: config_dir.join(&self.key),
        }
    }

    /// The section with its paths made relative to `config_dir` (absolute ones kept).
    pub fn resolve(&mut self, config_dir: &Path) {
        let files = self.files(config_dir);
        self.ca = files.ca;
        self.cert = files.cert;
        self.key = files.key;
    }
}

/// What to tell an installer whose gateway has no usable certificate.
pub fn enroll_hint(config: &Path) -> String {
    format!(
        "run `vigil-agent enroll --hub URL --token - --config {}` and paste the token from the hub's operator (`vigil-hub enroll-token --node ID`)",
        config.display()
    )
}

/// Checks that the files of an `mqtts://` uplink exist and hold a CA, a certificate and a
/// private key (0600). `files` are already resolved; `config` names the config file in the
/// hint.
pub fn check_files(files: &TlsFiles, config: &Path) -> Vec<Problem> {
    let hint = enroll_hint(config);
    let mut out = Vec::new();
    for (key, path) in [
        ("tls.ca", &files.ca),
        ("tls.cert", &files.cert),
        ("tls.key", &files.key),
    ] {
        if !path.exists() {
            out.push(Problem::new(
                key,
                format!(
                    "{} does not exist; an mqtts:// uplink needs it: {hint}",
                    path.display()
                ),
            ));
        }
    }
    if out.is_empty() {
        if let Err(e) = files.load().and_then(|m| m.client_config()) {
            out.push(Problem::new("tls", format!("{e}; or {hint}")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_next_to_the_config() {
        let files = TlsSection::default().files(Path::new("/etc/vigil"));
        assert_eq!(files, TlsFiles::in_dir(Path::new("/etc/vigil/tls")));
        let mut s = TlsSection {
            ca: "/abs/ca.pem".into(),
            ..TlsSection::default()
        };
        s.resolve(Path::new("/etc/vigil"));
        assert_eq!(s.ca, PathBuf::from("/abs/ca.pem"));
        assert_eq!(s.key, PathBuf::from("/etc/vigil/tls/node.key"));
    }

    #[test]
    fn missing_files_name_the_file_and_enroll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = TlsSection::default().files(dir.path());
        let problems = check_files(&files, Path::new("/etc/vigil/agent.toml"));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(problems[0].key, "tls.ca");
        assert!(problems[1].message.contains("node.pem"), "{problems:?}");
        assert!(
            problems[2].message.contains("vigil-agent enroll"),
            "{problems:?}"
        );
    }
}
