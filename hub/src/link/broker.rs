//! The broker the hub's children connect to (`[mqtt]`): the embedded one, started here and
//! kept for the hub's lifetime, or an external one, which is only a URL.

use anyhow::Context;
use tracing::{info, warn};
use vigil_link::EmbeddedBroker;

use crate::config::Broker;

/// The broker in use: its URL, and the embedded broker itself when the hub runs one.
#[derive(Debug)]
pub struct BrokerHandle {
    url: String,
    embedded: Option<EmbeddedBroker>,
}

impl BrokerHandle {
    /// Starts the embedded broker on `[mqtt] listen` (and waits until it answers), or
    /// takes the external broker's URL as it is. Fails with a message naming the key when
    /// the address cannot be listened on.
    pub async fn start(broker: &Broker) -> anyhow::Result<BrokerHandle> {
        match broker {
            Broker::Embedded { listen } => {
                let listen = *listen;
                // Starting waits for the broker to answer a CONNECT: a blocking wait.
                let embedded = tokio::task::spawn_blocking(move || EmbeddedBroker::start(listen))
                    .await
                    .context("the embedded broker's start was interrupted")?
                    .with_context(|| {
                        format!("cannot run the embedded broker ([mqtt] listen = \"{listen}\")")
                    })?;
                info!(listen = %embedded.local_addr(), "embedded MQTT broker started");
                Ok(BrokerHandle {
                    url: embedded.url(),
                    embedded: Some(embedded),
                })
            }
            Broker::External { url } => {
                info!(url = %url, "using the external MQTT broker");
                Ok(BrokerHandle {
                    url: url.to_string(),
                    embedded: None,
                })
            }
        }
    }

    /// The URL children (and the hub's own downlinks) connect with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the embedded broker (its listener and every connection close); nothing for
    /// an external one.
    pub async fn stop(self) {
        if let Some(embedded) = self.embedded {
            let addr = embedded.local_addr();
            if let Err(error) = tokio::task::spawn_blocking(move || embedded.stop()).await {
                warn!(%addr, %error, "the embedded broker did not stop cleanly");
            } else {
                info!(%addr, "embedded MQTT broker stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::config::BrokerUrl;

    #[tokio::test]
    async fn embedded_on_a_free_port_and_external_by_url() {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let broker = BrokerHandle::start(&Broker::Embedded { listen: any })
            .await
            .expect("start");
        assert!(broker.url().starts_with("mqtt://127.0.0.1:"));
        assert!(!broker.url().ends_with(":0"), "{}", broker.url());
        // The same address again: taken.
        let taken: SocketAddr = broker
            .url()
            .trim_start_matches("mqtt://")
            .parse()
            .expect("addr");
        let err = BrokerHandle::start(&Broker::Embedded { listen: taken })
            .await
            .expect_err("in use");
        assert!(format!("{err:#}").contains("[mqtt] listen"), "{err:#}");
        broker.stop().await;

        let url = BrokerUrl::parse("mqtt://broker.example:1884").expect("url");
        let external = BrokerHandle::start(&Broker::External { url })
            .await
            .expect("external");
        assert_eq!(external.url(), "mqtt://broker.example:1884");
        external.stop().await;
    }
}
