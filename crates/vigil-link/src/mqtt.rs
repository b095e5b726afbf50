//! The MQTT connection of a link: broker URL, client options, and the task that drives
//! rumqttc's event loop and reports to the link's own event loop.
//!
//! rumqttc's `EventLoop::poll` must be polled continuously (it reconnects, pings, and moves
//! requests to the socket), and it is not safe to drop mid-write, so it does not sit in the
//! link's `select!`: a small pump task owns it, turns what matters into `MqttEvent`s on a
//! channel, and sleeps with [`Backoff`] between failed connection attempts. The link
//! publishes through the `AsyncClient` with `try_publish` only, so it never waits on the pump
//! and the two cannot deadlock.
//!
//! Session: `clean_session = true`. Delivery is made reliable end to end by the link's own
//! batches and acks (resend from the last ack after every reconnect), not by the broker's
//! session state: a persistent session would only make the broker queue stale batches and
//! their resends for an absent client, and the embedded broker keeps no sessions across a
//! restart anyway. Each connect re-subscribes.
//!
//! TLS: an `mqtts://` URL connects through rustls with the [`rustls::ClientConfig`] the
//! owner gives (built by `vigil_pki`: trusting only the parent's CA, presenting this node's
//! certificate); the server name checked is the URL's host, so a broker reached as
//! `mqtts://127.0.0.1` needs an IP SAN for 127.0.0.1. No process-wide crypto provider is
//! needed: the config carries its own (ring).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration,
    Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};
use vigil_wire::MAX_PAYLOAD_BYTES;

use crate::backoff::{Backoff, BackoffConfig};
use crate::error::LinkError;

/// The largest MQTT packet accepted or sent: the largest payload plus room for the topic
/// and headers.
pub const MAX_PACKET_BYTES: usize = MAX_PAYLOAD_BYTES + 64 * 1024;

/// The broker URL: the one parser of every Vigil config ([`vigil_config::BrokerUrl`]).
pub use vigil_config::BrokerUrl;

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]` ([`BrokerUrl::parse`]) into the
/// link's error.
fn parse_url(url: &str) -> Result<BrokerUrl, LinkError> {
    BrokerUrl::parse(url).map_err(|e| LinkError::InvalidUrl {
        url: e.url,
        reason: e.reason,
    })
}

/// MQTT username and password. The password is never printed (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct MqttCredentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl MqttCredentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        MqttCredentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for MqttCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Checks that `url` and `tls` agree: `mqtts://` needs a TLS config, `mqtt://` must not
/// have one (a config that would silently go unused is a mistake, not a default).
pub(crate) fn validate_transport(
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<BrokerUrl, LinkError> {
    let parsed = parse_url(url)?;
    match (parsed.tls, tls.is_some()) {
        (true, false) => Err(LinkError::Config {
            key: "tls",
            reason: format!(
                "{url} is mqtts:// but no TLS config is set: give the CA and this node's certificate and key \
                 (vigil_pki::TlsFiles::client_config), or use mqtt:// for a plain connection"
            ),
        }),
        (false, true) => Err(LinkError::Config {
            key: "tls",
            reason: format!(
                "a TLS config is set but {url} is plain mqtt://: use mqtts:// to connect with TLS"
            ),
        }),
        _ => Ok(parsed),
    }
}

/// What the pump reports to the link.
#[derive(Debug)]
pub(crate) enum MqttEvent {
    /// The broker accepted the connection (CONNACK).
    Connected,
    /// The connection failed or dropped; the pump retries after `retry_in`.
    Disconnected {
        /// What went wrong.
        error: String,
        /// When the pump tries again.
        retry_in: Duration,
    },
    /// A publish arrived on a subscribed topic.
    Publish {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
    },
}

/// How to connect.
#[derive(Debug, Clone)]
pub(crate) struct MqttSettings {
    /// The MQTT client id.
    pub client_id: String,
    /// `mqtt://host:port`.
    pub url: String,
    /// Keepalive (whole seconds, at least 1).
    pub keep_alive: Duration,
    /// The last will, if any.
    pub will: Option<LastWill>,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Requests the client may queue for the event loop.
    pub request_capacity: usize,
    /// A name for logs (`parent`, `downlinks`).
    pub name: String,
    /// TLS (for an `mqtts://` URL).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Username and password, if the broker wants them.
    pub credentials: Option<MqttCredentials>,
}

/// A running connection: the client to publish with and the events of the pump. Dropping
/// it stops the pump, which drops the socket without a DISCONNECT (so the broker publishes
/// the last will): what a crash looks like to the broker.
#[derive(Debug)]
pub(crate) struct Connection {
    pub client: AsyncClient,
    pub events: mpsc::Receiver<MqttEvent>,
    /// Whether [`Connection::take_events`] gave the events to another reader.
    events_taken: bool,
    pump: Option<JoinHandle<()>>,
    _stop: DropGuard,
}

impl Connection {
    /// Starts the pump; the first connection attempt begins at once.
    pub fn start(settings: MqttSettings) -> Result<Connection, LinkError> {
        let url = validate_transport(&settings.url, settings.tls.as_ref())?;
        let mut options = MqttOptions::new(settings.client_id.clone(), url.host, url.port);
        if let Some(tls) = settings.tls.clone() {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        }
        if let Some(credentials) = settings.credentials.clone() {
            options.set_credentials(credentials.username, credentials.password);
        }
        options
            .set_keep_alive(settings.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some(will) = settings.will.clone() {
            options.set_last_will(will);
        }
        let (client, mut eventloop) = AsyncClient::new(options, settings.request_capacity);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (tx, events) = mpsc::channel(256);
        let stop = CancellationToken::new();
        let pump = tokio::spawn(pump(
            eventloop,
            tx,
            settings.backoff,
            stop.clone(),
            settings.name,
        ));
        Ok(Connection {
            client,
            events,
            events_taken: false,
            pump: Some(pump),
            _stop: stop.drop_guard(),
        })
    }

    /// Disconnects cleanly (a DISCONNECT packet, so no last will) after whatever was
    /// published before, and waits up to `wait` for the pump to send it. Only worth calling
    /// while connected; otherwise drop the connection.
    pub async fn close(mut self, wait: Duration) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let Some(mut pump) = self.pump.take() else {
            return;
        };
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut pump => return,
                _ = &mut deadline => return,
                // Keep the pump from blocking on a full channel while it flushes (after
                // `take_events`, whoever took them keeps reading them).
                event = self.events.recv(), if !self.events_taken => if event.is_none() {
                    return;
                }
            }
        }
    }

    /// The pump's events, for a reader of their own (which must keep reading them until
    /// the channel closes, as the link's loop would); the connection keeps a closed channel.
    pub fn take_events(&mut self) -> mpsc::Receiver<MqttEvent> {
        let (_, closed) = mpsc::channel(1);
        self.events_taken = true;
        std::mem::replace(&mut self.events, closed)
    }
}

async fn pump(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<MqttEvent>,
    backoff: BackoffConfig,
    stop: CancellationToken,
    name: String,
) {
    let mut backoff = Backoff::new(backoff);
    loop {
        let polled = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        let event = match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                info!(link = %name, "connected to the broker");
                MqttEvent::Connected
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => MqttEvent::Publish {
                topic: publish.topic,
                payload: publish.payload,
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!(link = %name, "disconnected cleanly");
                break;
            }
            Ok(_) => continue,
            Err(error) => {
                let retry_in = backoff.next_delay(rand::random::<f64>());
                warn!(link = %name, %error, retry_in_ms = retry_in.as_millis() as u64,
                      failures = backoff.failures(), "broker connection lost or refused");
                if tx
                    .send(MqttEvent::Disconnected {
                        error: error.to_string(),
                        retry_in,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(retry_in) => continue,
                }
            }
        };
        if tx.send(event).await.is_err() {
            break;
        }
    }
}

/// Publishes `payload` on `topic` with QoS 1 without waiting; `false` if the client's queue
/// is full or closed (the caller retries later).
pub(crate) fn try_publish(
    client: &AsyncClient,
    topic: &str,
    retain: bool,
    payload: Vec<u8>,
) -> bool {
    client
        .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser itself is tested in vigil-config; here: its errors become the link's,
    /// naming the URL.
    #[test]
    fn urls_are_the_shared_broker_url() {
        assert_eq!(
            parse_url("mqtts://[::1]:9000").expect("ok"),
            BrokerUrl {
                tls: true,
                host: "::1".to_owned(),
                port: 9000
            }
        );
        for bad in [
            "tcp://x:1",
            "mqtt://x/path",
            "mqtts://user@x",
            "mqtt://[::1",
        ] {
            let err = parse_url(bad).expect_err(bad);
            assert!(matches!(err, LinkError::InvalidUrl { .. }), "{err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn transport_and_tls_must_agree() {
        let config = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        );
        assert!(validate_transport("mqtts://x", Some(&config)).is_ok());
        assert!(validate_transport("mqtt://x", None).is_ok());
        let err = validate_transport("mqtts://x", None).expect_err("no tls config");
        assert!(err.to_string().contains("no TLS config"), "{err}");
        let err = validate_transport("mqtt://x", Some(&config)).expect_err("tls with mqtt://");
        assert!(err.to_string().contains("use mqtts://"), "{err}");
    }

    #[test]
    fn credentials_are_not_printed() {
        let text = format!("{:?}", MqttCredentials::new("vigil", "s3cret"));
        assert!(text.contains("vigil") && !text.contains("s3cret"), "{text}");
    }
}
