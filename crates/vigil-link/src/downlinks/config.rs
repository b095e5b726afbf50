//! The settings of a parent's end of its children's links ([`DownlinksConfig`]).

use std::sync::Arc;
use std::time::Duration;

use vigil_core::NodeId;

use super::DOWNLINKS_LABEL;
use crate::backoff::BackoffConfig;
use crate::error::LinkError;
use crate::mqtt::{self, MqttCredentials};
use crate::sender::SenderConfig;
use crate::uplink::validate_common;

/// The settings of a parent's end of its children's links.
#[derive(Debug, Clone)]
pub struct DownlinksConfig {
    /// This node's id: the sender named in downlink batches.
    pub node: NodeId,
    /// The broker the children connect to, `mqtt://host[:port]` (the embedded broker's
    /// [`url`](crate::broker::EmbeddedBroker::url), or an external one).
    pub url: String,
    /// The MQTT client id; by default `{node}:downlinks` (no child can have it: node ids
    /// have no `:`).
    pub client_id: Option<String>,
    /// Batching, window, ack timeouts of the downlinks.
    pub sender: SenderConfig,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// MQTT keepalive (at least 1 s).
    pub keep_alive: Duration,
    /// How often every downlink outbox is read even without a poke, and new ones looked for.
    pub poll_interval: Duration,
    /// Deliveries that may wait for the owner before the link waits too.
    pub delivery_capacity: usize,
    /// TLS for an `mqtts://` URL: a rustls client config that trusts the broker's CA and
    /// presents this node's certificate (`vigil_pki::TlsFiles::client_config`). Required
    /// with `mqtts://`, refused with `mqtt://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// MQTT username and password, for a broker that wants them (a hub's own connection
    /// to its gated embedded broker: `SecureBroker::internal_credentials`). Nodes behind
    /// the gate need none: their certificate is their identity.
    pub credentials: Option<MqttCredentials>,
}

impl DownlinksConfig {
    /// The defaults for `node` listening on the broker at `url`.
    pub fn new(node: NodeId, url: impl Into<String>) -> Self {
        DownlinksConfig {
            node,
            url: url.into(),
            client_id: None,
            sender: SenderConfig::default(),
            backoff: BackoffConfig::default(),
            keep_alive: crate::uplink::UplinkConfig::default_keep_alive(),
            poll_interval: crate::uplink::UplinkConfig::default_poll_interval(),
            delivery_capacity: crate::uplink::UplinkConfig::default_delivery_capacity(),
            tls: None,
            credentials: None,
        }
    }

    /// Checks every setting without connecting anywhere.
    pub fn validate(&self) -> Result<(), LinkError> {
        mqtt::validate_transport(&self.url, self.tls.as_ref())?;
        self.sender.validate()?;
        self.backoff.validate()?;
        validate_common(
            DOWNLINKS_LABEL,
            self.keep_alive,
            self.poll_interval,
            self.delivery_capacity,
        )?;
        if self.client_id.as_deref() == Some("") {
            return Err(LinkError::Config {
                key: "client_id",
                reason: "must not be empty (leave it unset for {node}:downlinks)".into(),
            });
        }
        Ok(())
    }
}
