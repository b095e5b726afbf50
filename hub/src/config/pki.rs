//! `[ca]` and where the hub keeps its certificates: the CA's directory, the identity towards
//! its parent (`[parent] ca`, `cert`, `key`), the HTTPS certificate (`[http] cert`, `key`),
//! each path's default next to the store, and their checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_config::Problem;

use super::{Broker, HubConfig};

/// `[ca]`: the hub's certificate authority, the issuer of its children's certificates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Where `ca.pem` and `ca.key` live (created on first use); default `ca/` next to
    /// `[store] path`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// How long a child's certificate is valid.
    #[serde(default = "default_node_cert_ttl", with = "humantime_serde")]
    pub node_cert_ttl: Duration,
}

impl Default for CaSection {
    fn default() -> Self {
        CaSection {
            dir: None,
            node_cert_ttl: default_node_cert_ttl(),
        }
    }
}

const fn default_node_cert_ttl() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

/// The longest `[ca] node_cert_ttl`: the CA's own validity.
const MAX_NODE_CERT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl HubConfig {
    /// The directory next to the store, where the hub keeps its PKI files by default.
    fn beside_store(&self, name: &str) -> PathBuf {
        self.store
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .join(name)
    }

    /// `[ca] dir`, or `ca/` next to the store.
    pub fn ca_dir(&self) -> PathBuf {
        self.ca
            .dir
            .clone()
            .unwrap_or_else(|| self.beside_store("ca"))
    }

    /// The directory `vigil-hub enroll` writes the parent's files into: `parent/` next to
    /// the store.
    pub fn parent_dir(&self) -> PathBuf {
        self.beside_store("parent")
    }

    /// The files of this hub's identity towards its parent (`[parent] ca`, `cert`, `key`,
    /// each defaulting to `parent/…` next to the store).
    pub fn parent_tls_files(&self) -> Option<vigil_pki::TlsFiles> {
        let parent = self.parent.as_ref()?;
        let defaults = vigil_pki::TlsFiles::in_dir(&self.parent_dir());
        Some(vigil_pki::TlsFiles {
            ca: parent.ca.clone().unwrap_or(defaults.ca),
            cert: parent.cert.clone().unwrap_or(defaults.cert),
            key: parent.key.clone().unwrap_or(defaults.key),
        })
    }

    /// Makes the relative paths of `[ca]`, `[http]` and `[parent]` relative to `dir` (the
    /// config file's directory).
    pub(super) fn resolve_tls_paths(&mut self, dir: &std::path::Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                *path = dir.join(&*path);
            }
        };
        fix(&mut self.ca.dir);
        fix(&mut self.http.cert);
        fix(&mut self.http.key);
        if let Some(parent) = self.parent.as_mut() {
            fix(&mut parent.ca);
            fix(&mut parent.cert);
            fix(&mut parent.key);
        }
    }

    /// The broker URL children are told at enrollment, when the config alone says it
    /// (`[mqtt] advertise`, an external `mqtts://` url, or a listen address that is not
    /// unspecified and not port 0); `None` when only the running broker knows it.
    pub fn advertised_broker(&self) -> Option<String> {
        if let Some(advertise) = self.mqtt.as_ref().and_then(|m| m.advertise.as_ref()) {
            return Some(advertise.to_string());
        }
        match self.broker() {
            Broker::External { url } if url.tls => Some(url.to_string()),
            Broker::External { .. } => None,
            Broker::Embedded { listen } if listen.ip().is_unspecified() || listen.port() == 0 => {
                None
            }
            Broker::Embedded { listen } => Some(format!("mqtts://{listen}")),
        }
    }

    pub(super) fn validate_tls(&self, out: &mut Vec<Problem>) {
        if let Some(mqtt) = &self.mqtt {
            if let Some(advertise) = &mqtt.advertise {
                if !advertise.tls {
                    out.push(Problem::new(
                        "mqtt.advertise",
                        format!(
                            "\"{advertise}\" must be an mqtts:// URL: children connect with TLS"
                        ),
                    ));
                }
            } else if let Some(listen) = mqtt.listen.filter(|l| l.ip().is_unspecified()) {
                out.push(Problem::new(
                    "mqtt.listen",
                    format!(
                        "{listen} listens on every address, so it does not say where children \
                         should connect: add advertise = \"mqtts://HOST:{}\" with the name or \
                         address children reach this hub by",
                        listen.port()
                    ),
                ));
            }
            for name in &mqtt.names {
                if let Err(e) = check_host_name(name) {
                    out.push(Problem::new("mqtt.names", e));
                }
            }
        }
        for name in &self.http.names {
            if let Err(e) = check_host_name(name) {
                out.push(Problem::new("http.names", e));
            }
        }
        match (&self.http.cert, &self.http.key) {
            (Some(_), None) => out.push(Problem::new(
                "http.cert",
                "give key = \"/path/to/key.pem\" with cert, or neither (a certificate from the hub's CA)",
            )),
            (None, Some(_)) => out.push(Problem::new(
                "http.key",
                "give cert = \"/path/to/cert.pem\" with key, or neither (a certificate from the hub's CA)",
            )),
            (Some(_), Some(_)) if !self.http.tls => out.push(Problem::new(
                "http.cert",
                "cert and key are used only with tls = true: add it, or remove them",
            )),
            _ => {}
        }
        if self.ca.node_cert_ttl.is_zero() || self.ca.node_cert_ttl > MAX_NODE_CERT_TTL {
            out.push(Problem::new(
                "ca.node_cert_ttl",
                "must be longer than 0 and at most 10 years (the CA's own validity), e.g. 365d",
            ));
        }
        if let Some(parent) = &self.parent {
            let given = [&parent.ca, &parent.cert, &parent.key]
                .iter()
                .filter(|p| p.is_some())
                .count();
            if !parent.url.tls && given > 0 {
                out.push(Problem::new(
                    "parent.url",
                    "ca, cert and key are used only with an mqtts:// url: change the url, or remove them",
                ));
            }
        }
    }
}

/// A DNS name or an IP address for a certificate's subject alternative names.
fn check_host_name(name: &str) -> Result<(), String> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is neither a host name (e.g. hub.example) nor an IP address"
        ))
    }
}
