//! The hub's PKI (docs/ARCHITECTURE.md#certificate-authority-and-enrollment: a hub is the
//! certificate authority of its children): its CA in `[ca] dir` (created on first use, named
//! `Vigil <level> CA <node id>`), the certificates it issues to itself — the broker's and the HTTPS listener's
//! server certificates, its client certificate for an external broker — and the live set of
//! revoked serials the broker gate checks.
//!
//! Server certificates and the hub's own client certificate are issued afresh at every
//! start with a new key that never touches the disk: nothing to rotate, nothing to leak.
//! Children's certificates are issued at enrollment ([`crate::enroll`]) for `[ca]
//! node_cert_ttl`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::NodeId;
use vigil_pki::rustls::{ClientConfig, ServerConfig};
use vigil_pki::{Ca, PkiError, Revocations, ServerCert};

use crate::config::{HttpSection, HubConfig, NodeSection};

/// How long the certificates the hub issues to itself are valid (they are re-issued at
/// every start).
pub const OWN_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The names every server certificate of the hub carries, besides its listen address and
/// the configured ones: what a client on the same machine connects by.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The hub's CA and revocation set. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubPki {
    ca: Arc<Ca>,
    node: NodeId,
    node_cert_ttl: Duration,
    revocations: Revocations,
}

/// The common name of a hub's CA: `Vigil county CA county-baiyun`.
pub fn ca_common_name(node: &NodeSection) -> String {
    format!("Vigil {} CA {}", node.level, node.id)
}

/// The names of a server certificate for a listener on `listen`: its address (unless it is
/// unspecified), `localhost`, `127.0.0.1`, `::1`, then `extra`, without repeats.
pub fn server_names(listen: IpAddr, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let listen = (!listen.is_unspecified()).then(|| listen.to_string());
    for name in listen
        .into_iter()
        .chain(LOCAL_NAMES.iter().map(|n| (*n).to_owned()))
        .chain(extra.iter().cloned())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

impl HubPki {
    /// Loads the CA from `[ca] dir`, creating it (and the directory, 0700) the first time.
    pub fn open(config: &HubConfig) -> Result<HubPki, PkiError> {
        let ca = Ca::load_or_create(&config.ca_dir(), &ca_common_name(&config.node))?;
        Ok(HubPki {
            ca: Arc::new(ca),
            node: config.node.id.clone(),
            node_cert_ttl: config.ca.node_cert_ttl,
            revocations: Revocations::new(),
        })
    }

    /// The CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The live set of revoked serials (shared with the broker gate).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// How long a child's certificate is valid (`[ca] node_cert_ttl`).
    pub fn node_cert_ttl(&self) -> Duration {
        self.node_cert_ttl
    }

    /// A server certificate for `names` (see [`server_names`]).
    pub fn server_cert(&self, names: &[String]) -> Result<ServerCert, PkiError> {
        self.ca.issue_server(names, OWN_CERT_VALIDITY)
    }

    /// The broker listener's mTLS config: a server certificate for `listen` and `names`;
    /// clients must present a certificate from this CA that is not revoked.
    pub fn broker_tls(
        &self,
        listen: SocketAddr,
        names: &[String],
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let server = self.server_cert(&server_names(listen.ip(), names))?;
        vigil_pki::server_config_mtls(
            self.ca.cert_pem(),
            &server.cert_pem,
            &server.key_pem,
            self.revocations.clone(),
        )
    }

    /// The HTTPS listener's config: the operator's `[http] cert`/`key`, or a certificate
    /// from the CA for the listen address and `[http] names`, presented with the CA's
    /// certificate after it (so an enrolling node can find the CA its token pins).
    pub fn https_tls(&self, http: &HttpSection) -> Result<Arc<ServerConfig>, PkiError> {
        if let (Some(cert), Some(key)) = (&http.cert, &http.key) {
            let files = vigil_pki::TlsFiles {
                ca: cert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            };
            let material = files.load()?;
            return vigil_pki::server_config(&material.cert_pem, &material.key_pem);
        }
        let server = self.server_cert(&server_names(http.listen.ip(), &http.names))?;
        let chain = format!(
            "{}\n{}\n",
            server.cert_pem.trim_end(),
            self.ca.cert_pem().trim_end()
        );
        vigil_pki::server_config(&chain, &server.key_pem)
    }

    /// A client config for the hub itself (an external broker): a certificate naming this
    /// hub's node id, issued by its own CA, trusting only that CA.
    pub fn own_client_tls(&self) -> Result<Arc<ClientConfig>, PkiError> {
        let request = vigil_pki::node_key_and_csr(&self.node)?;
        let issued = self
            .ca
            .issue_node(&request.csr_pem, &self.node, OWN_CERT_VALIDITY)?;
        vigil_pki::client_config(
            self.ca.cert_pem(),
            Some((&issued.cert_pem, &request.key_pem)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_listen_address_and_do_not_repeat() {
        let names = server_names(
            "10.0.0.5".parse().expect("ip"),
            &["hub.example".into(), "localhost".into()],
        );
        assert_eq!(
            names,
            ["10.0.0.5", "localhost", "127.0.0.1", "::1", "hub.example"]
        );
        let names = server_names("0.0.0.0".parse().expect("ip"), &[]);
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
    }
}
