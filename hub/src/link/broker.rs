//! The broker the hub's children connect to (`[mqtt]`), secure by default:
//!
//! - `[mqtt] listen`: the embedded broker behind the mTLS gate (`vigil_link::SecureBroker`).
//!   No plaintext listener on that address: a child needs a certificate from the hub's CA
//!   (enrollment), and the gate lets it publish only on its own `up` and `status` topics
//!   and subscribe only to its own `down` topic. The gate's server certificate is issued
//!   at start by the hub's CA for the listen address, `localhost`, `127.0.0.1`, `::1` and
//!   `[mqtt] names`. The hub's own end of its children's links connects to the internal
//!   broker behind the gate with the gate's internal credentials. Revoking a serial in the
//!   hub's revocation set refuses the node's handshakes and closes its live connections.
//! - `[mqtt] url`: an external broker (Mosquitto, EMQX). With `mqtts://` the hub connects
//!   with a client certificate naming its node id, issued by its own CA at start, and
//!   trusts only that CA (`vigil-hub broker-config` writes the broker's side); `mqtt://`
//!   stays plain (a lab setup: nothing checks who publishes what).

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tracing::{info, warn};
use vigil_core::NodeId;
use vigil_link::gate::{Denial, GateMetrics, SecureBroker, SecureBrokerConfig};
use vigil_link::{DownlinksConfig, MqttCredentials};
use vigil_pki::rustls::ClientConfig;
use vigil_pki::TlsFiles;

use crate::config::Broker;
use crate::enroll::EnrollState;
use crate::pki::HubPki;

/// What the MQTT side needs for TLS.
#[derive(Debug, Clone)]
pub struct LinkSecurity {
    /// The hub's CA and revocation set.
    pub pki: HubPki,
    /// `[mqtt] names`: more names for the gate's server certificate.
    pub broker_names: Vec<String>,
    /// `[parent] ca`/`cert`/`key`, for an `mqtts://` parent.
    pub parent_tls: Option<TlsFiles>,
    /// Enrollment state: the gate's denials are audited and counted through it.
    pub enroll: EnrollState,
}

/// The broker in use: the URL children connect to, how the hub's own client connects, and
/// the gate itself when the hub runs one.
#[derive(Debug)]
pub struct BrokerHandle {
    url: String,
    client_url: String,
    credentials: Option<MqttCredentials>,
    tls: Option<Arc<ClientConfig>>,
    gate: Option<SecureBroker>,
    gate_metrics: Option<GateMetrics>,
}

impl BrokerHandle {
    /// Starts the gated embedded broker on `[mqtt] listen` (and waits until it answers), or
    /// prepares the hub's client for the external broker. Gate metrics join `registry`.
    /// Fails with a message naming the key when the address cannot be listened on.
    pub async fn start(
        broker: &Broker,
        security: &LinkSecurity,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<BrokerHandle> {
        match broker {
            Broker::Embedded { listen } => {
                let listen = *listen;
                let tls = security
                    .pki
                    .broker_tls(listen, &security.broker_names)
                    .context("cannot make the broker's certificate from the hub's CA")?;
                let metrics =
                    GateMetrics::new(registry).context("cannot register the gate's metrics")?;
                let config =
                    SecureBrokerConfig::new(listen, tls, security.pki.revocations().clone());
                let gate = SecureBroker::start(config, metrics.clone())
                    .await
                    .with_context(|| {
                        format!("cannot run the embedded broker ([mqtt] listen = \"{listen}\")")
                    })?;
                info!(listen = %gate.local_addr(), "embedded MQTT broker started behind the mTLS gate");
                Ok(BrokerHandle {
                    url: gate.url(),
                    client_url: gate.internal_url(),
                    credentials: Some(gate.internal_credentials()),
                    tls: None,
                    gate: Some(gate),
                    gate_metrics: Some(metrics),
                })
            }
            Broker::External { url } => {
                let tls = if url.tls {
                    Some(security.pki.own_client_tls().context(
                        "cannot make the hub's client certificate for the external broker",
                    )?)
                } else {
                    warn!(url = %url, "the external broker is plain mqtt://: nothing checks who publishes what; use mqtts:// and vigil-hub broker-config");
                    None
                };
                info!(url = %url, "using the external MQTT broker");
                Ok(BrokerHandle {
                    url: url.to_string(),
                    client_url: url.to_string(),
                    credentials: None,
                    tls,
                    gate: None,
                    gate_metrics: None,
                })
            }
        }
    }

    /// The URL children connect with (`mqtts://` for the gate).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The config of the hub's own end of its children's links on this broker.
    pub fn downlinks_config(&self, node: NodeId) -> DownlinksConfig {
        let mut config = DownlinksConfig::new(node, self.client_url.clone());
        config.credentials = self.credentials.clone();
        config.tls = self.tls.clone();
        config
    }

    /// The gate's metrics (its handshake failures are watched for alarms); `None` for an
    /// external broker.
    pub fn gate_metrics(&self) -> Option<GateMetrics> {
        self.gate_metrics.clone()
    }

    /// The gate's denials (once), for the audit log; `None` for an external broker.
    pub fn take_denials(&mut self) -> Option<mpsc::Receiver<Denial>> {
        self.gate.as_mut().and_then(SecureBroker::take_denials)
    }

    /// Stops the gate and the embedded broker (every connection closes); nothing for an
    /// external one.
    pub async fn stop(self) {
        if let Some(gate) = self.gate {
            let addr = gate.local_addr();
            gate.stop().await;
            info!(%addr, "embedded MQTT broker stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::config::{BrokerUrl, HubConfig};

    fn security(dir: &std::path::Path) -> LinkSecurity {
        let config: HubConfig = vigil_config::parse(
            std::path::Path::new("hub.toml"),
            &format!(
                "[node]\nid = \"county\"\nlevel = \"county\"\nname = \"C\"\n[store]\npath = {:?}\n",
                dir.join("hub.db").display().to_string()
            ),
        )
        .expect("config");
        let pki = HubPki::open(&config).expect("ca");
        let registry = prometheus::Registry::new();
        let enroll = EnrollState::new(
            pki.clone(),
            config.node.id.clone(),
            crate::enroll::EnrollMetrics::new(&registry).expect("metrics"),
            crate::auth::LimitPolicy::from_config(&config.auth),
            None,
        );
        LinkSecurity {
            pki,
            broker_names: Vec::new(),
            parent_tls: None,
            enroll,
        }
    }

    #[tokio::test]
    async fn embedded_behind_the_gate_on_a_free_port_and_external_by_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let security = security(dir.path());
        let registry = prometheus::Registry::new();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let broker = BrokerHandle::start(&Broker::Embedded { listen: any }, &security, &registry)
            .await
            .expect("start");
        assert!(
            broker.url().starts_with("mqtts://127.0.0.1:"),
            "{}",
            broker.url()
        );
        assert!(!broker.url().ends_with(":0"), "{}", broker.url());
        let own = broker.downlinks_config(NodeId::new("county").expect("node"));
        assert!(own.url.starts_with("mqtt://127.0.0.1:"), "{}", own.url);
        assert!(own.credentials.is_some());
        // The same address again: taken.
        let taken: SocketAddr = broker
            .url()
            .trim_start_matches("mqtts://")
            .parse()
            .expect("addr");
        let err = BrokerHandle::start(
            &Broker::Embedded { listen: taken },
            &security,
            &prometheus::Registry::new(),
        )
        .await
        .expect_err("in use");
        assert!(format!("{err:#}").contains("[mqtt] listen"), "{err:#}");
        broker.stop().await;

        let url = BrokerUrl::parse("mqtts://broker.example:8884").expect("url");
        let external = BrokerHandle::start(&Broker::External { url }, &security, &registry)
            .await
            .expect("external");
        assert_eq!(external.url(), "mqtts://broker.example:8884");
        assert!(external
            .downlinks_config(NodeId::new("county").expect("node"))
            .tls
            .is_some());
        external.stop().await;
    }
}
