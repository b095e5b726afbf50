//! `[mqtt]` (the broker the hub's children connect to) and `[parent]` (the parent hub's
//! broker): which broker, and the URLs.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::HubConfig;

/// The default address of the embedded broker: `127.0.0.1:1883`.
pub const fn default_mqtt_listen() -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1883)
}

/// `[mqtt]`: exactly one of `listen` (run the embedded broker there) and `url` (use an
/// external broker: Mosquitto, an EMQX cluster).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Where the embedded broker listens.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The external broker, `mqtt://host:port` or `mqtts://host:port`.
    #[serde(default)]
    pub url: Option<BrokerUrl>,
    /// The broker URL children are told at enrollment, `mqtts://host:port`; without it,
    /// `mqtts://` and `listen` (which must then name an address, not 0.0.0.0) or `url`.
    #[serde(default)]
    pub advertise: Option<BrokerUrl>,
    /// Host names the broker's certificate is issued for, besides the listen address,
    /// `localhost`, `127.0.0.1` and `::1`.
    #[serde(default)]
    pub names: Vec<String>,
}

/// `[parent]`: the parent hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSection {
    /// The parent's broker, `mqtt://host:port` or `mqtts://host:port`.
    pub url: BrokerUrl,
    /// The parent's CA certificate (for `mqtts://`); default `parent/ca.pem` next to the
    /// store, where `vigil-hub enroll` writes it.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// This hub's certificate from its parent; default `parent/node.pem` next to the store.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (mode 0600); default `parent/node.key` next to the store.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// The broker the hub's children connect to, as `[mqtt]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broker {
    /// Run the embedded broker on this address.
    Embedded {
        /// Where it listens.
        listen: SocketAddr,
    },
    /// Use an external broker.
    External {
        /// Its URL.
        url: BrokerUrl,
    },
}

/// A checked `mqtt://host:port` or `mqtts://host:port`: the one broker URL of every Vigil
/// config.
pub use vigil_config::BrokerUrl;

impl HubConfig {
    /// The broker the children connect to. Call on a validated config; an invalid `[mqtt]`
    /// (both or neither of `listen` and `url`) falls back to the embedded broker on its
    /// default address.
    pub fn broker(&self) -> Broker {
        match &self.mqtt {
            Some(MqttSection {
                url: Some(url),
                listen: None,
                ..
            }) => Broker::External { url: url.clone() },
            Some(MqttSection {
                listen: Some(listen),
                ..
            }) => Broker::Embedded { listen: *listen },
            _ => Broker::Embedded {
                listen: default_mqtt_listen(),
            },
        }
    }

    /// The parent's broker, when the hub has one.
    pub fn parent_url(&self) -> Option<BrokerUrl> {
        self.parent.as_ref().map(|p| p.url.clone())
    }
}
