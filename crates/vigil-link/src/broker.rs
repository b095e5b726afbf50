//! [`EmbeddedBroker`]: the MQTT broker a hub runs in-process so that its children have
//! something to connect to with nothing else installed (docs/ARCHITECTURE.md#brokers: "a hub either
//! embeds an MQTT broker … or uses an external one").
//!
//! It is rumqttd (MQTT 3.1.1, plain TCP), configured entirely in code by
//! [`EmbeddedBrokerConfig`] — rumqttd's `Config` has no defaults worth having — and listening
//! on loopback unless told otherwise. Retained messages (the children's statuses) and last
//! wills work; sessions are not persisted (the links do not rely on them: see
//! [`crate::mqtt`]).
//!
//! rumqttd's own `Broker::start` blocks forever and cannot be stopped. This module runs the
//! same parts — a `Router` on its thread and a v4 `Server` — with the server on a runtime of
//! its own thread, so that [`EmbeddedBroker::stop`] (or dropping the handle) closes the
//! listener and every connection, as a broker restart does. rumqttd's router thread cannot
//! be stopped: each stopped broker leaves one idle thread parked (a hub stops its broker
//! once, at exit; tests that restart brokers leave a few).
//!
//! Startup waits until the broker answers an MQTT CONNECT on its port (with the
//! [`auth`](EmbeddedBrokerConfig::auth) login, when one is set), so a handle that is
//! returned is a broker that works.
//!
//! With `auth` set, rumqttd refuses any CONNECT without exactly that username and password
//! (it closes the connection without a CONNACK): how [`SecureBroker`](crate::gate) keeps
//! local processes from going around its gate.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use rumqttd::protocol::v4::V4;
use rumqttd::{Config, ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};
use tokio::sync::oneshot;
use tracing::{error, info};
use vigil_wire::MAX_PAYLOAD_BYTES;

use crate::mqtt::{MqttCredentials, MAX_PACKET_BYTES};

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address cannot be bound (in use, or not an address of this machine).
    #[error("embedded broker cannot listen on {addr}: {source}: is another broker running there?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The broker's thread could not be started.
    #[error("cannot start the embedded broker's thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The broker stopped before it was ready (its error is in the log).
    #[error("embedded broker on {addr} failed to start: {reason}")]
    Failed {
        /// The address.
        addr: SocketAddr,
        /// What it said.
        reason: String,
    },
    /// The broker did not answer an MQTT CONNECT in time.
    #[error("embedded broker on {addr} did not answer within {waited:?}")]
    NotReady {
        /// The address.
        addr: SocketAddr,
        /// How long startup waited.
        waited: Duration,
    },
}

/// The embedded broker's settings; [`EmbeddedBrokerConfig::new`] gives working defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedBrokerConfig {
    /// Where to listen. Port 0 picks a free port (see [`EmbeddedBroker::local_addr`]).
    pub listen: SocketAddr,
    /// The most client connections at once.
    pub max_connections: usize,
    /// The largest publish payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// QoS 1 publishes in flight per connection.
    pub max_inflight: usize,
    /// How long a new connection may take to send its CONNECT.
    pub connection_timeout: Duration,
    /// How long [`EmbeddedBroker::start_with`] waits for the broker to answer.
    pub ready_timeout: Duration,
    /// The only username and password the broker accepts; `None`: anyone may connect.
    /// A CONNECT without them, or with others, is refused (the connection is closed
    /// without a CONNACK). The [`SecureBroker`](crate::gate::SecureBroker) sets a random
    /// secret here, so that only its gate and the hub's own client get in.
    pub auth: Option<MqttCredentials>,
}

impl EmbeddedBrokerConfig {
    /// The default listen address: `127.0.0.1:1883` (loopback only).
    pub fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1883))
    }

    /// Defaults, listening on `listen`: 10,000 connections, payloads up to the protocol's
    /// limit (plus headroom), 100 publishes in flight, 10 s to connect.
    pub fn new(listen: SocketAddr) -> Self {
        EmbeddedBrokerConfig {
            listen,
            max_connections: 10_000,
            max_payload_bytes: MAX_PACKET_BYTES,
            max_inflight: 100,
            connection_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(5),
            auth: None,
        }
    }

    /// The full rumqttd configuration these settings stand for, listening on `listen`: one
    /// MQTT v4 server named `vigil`, no TLS, no console, no metrics, no bridge, dynamic
    /// filters (any topic may be subscribed). For an owner that prefers to run
    /// `rumqttd::Broker` itself.
    pub fn to_rumqttd(&self, listen: SocketAddr) -> Config {
        let server = ServerSettings {
            name: "vigil".to_owned(),
            listen,
            tls: None,
            next_connection_delay_ms: 1,
            connections: ConnectionSettings {
                connection_timeout_ms: u16::try_from(self.connection_timeout.as_millis())
                    .unwrap_or(u16::MAX),
                max_payload_size: self.max_payload_bytes,
                max_inflight_count: self.max_inflight,
                auth: self.auth.as_ref().map(|credentials| {
                    HashMap::from([(credentials.username.clone(), credentials.password.clone())])
                }),
                external_auth: None,
                dynamic_filters: true,
            },
        };
        Config {
            id: 0,
            router: RouterConfig {
                max_connections: self.max_connections,
                max_outgoing_packet_count: 200,
                // The in-memory log of each topic filter: a segment holds at least two of the
                // largest payloads; four segments bound the memory per filter.
                max_segment_size: (2 * self.max_payload_bytes).max(2 * MAX_PAYLOAD_BYTES),
                max_segment_count: 4,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("vigil".to_owned(), server)])),
            v5: None,
            ws: None,
            cluster: None,
            console: None,
            bridge: None,
            prometheus: None,
            metrics: None,
        }
    }
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        EmbeddedBrokerConfig::new(EmbeddedBrokerConfig::default_listen())
    }
}

/// A running embedded broker. Dropping it stops it.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker with the default settings on `listen` and waits until it answers.
    /// Blocks for up to a few seconds: from async code, call it before serving or through
    /// `spawn_blocking`.
    pub fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        EmbeddedBroker::start_with(EmbeddedBrokerConfig::new(listen))
    }

    /// Starts a broker with `config` and waits until it answers.
    pub fn start_with(config: EmbeddedBrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        // Resolve port 0 and fail early, with the OS's reason, on an address in use.
        let addr = {
            let probe = TcpListener::bind(config.listen).map_err(|source| BrokerError::Bind {
                addr: config.listen,
                source,
            })?;
            probe.local_addr().map_err(|source| BrokerError::Bind {
                addr: config.listen,
                source,
            })?
        };
        let rumqttd = config.to_rumqttd(addr);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (failed_tx, failed_rx) = std_mpsc::channel::<String>();
        let thread = thread::Builder::new()
            .name(format!("vigil-broker-{}", addr.port()))
            .spawn(move || serve(rumqttd, stop_rx, failed_tx))
            .map_err(BrokerError::Thread)?;
        let mut broker = EmbeddedBroker {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        let deadline = std::time::Instant::now() + config.ready_timeout;
        loop {
            if let Ok(reason) = failed_rx.try_recv() {
                broker.shutdown();
                return Err(BrokerError::Failed { addr, reason });
            }
            if answers_connect(addr, config.auth.as_ref()) {
                info!(%addr, "embedded MQTT broker listening");
                return Ok(broker);
            }
            if std::time::Instant::now() >= deadline {
                broker.shutdown();
                return Err(BrokerError::NotReady {
                    addr,
                    waited: config.ready_timeout,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address the broker listens on (with the port it picked, if it was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect with: `mqtt://{local_addr}`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Stops the broker: closes the listener and every connection (clients see their
    /// connection drop, as in a broker restart). Waits for its thread to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The broker thread: the router, and the v4 server on a runtime of its own until `stop`.
fn serve(config: Config, stop: oneshot::Receiver<()>, failed: std_mpsc::Sender<String>) {
    let Some(settings) = config
        .v4
        .as_ref()
        .and_then(|v4| v4.values().next().cloned())
    else {
        let _ = failed.send("no v4 server configured".to_owned());
        return;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = failed.send(format!("cannot build its runtime: {err}"));
            return;
        }
    };
    let addr = settings.listen;
    let router_tx = Router::new(config.id, config.router.clone()).spawn();
    let mut server = Server::new(settings, router_tx, V4);
    runtime.block_on(async {
        tokio::select! {
            result = server.start(LinkType::Remote) => {
                let reason = match result {
                    Ok(()) => "the server stopped".to_owned(),
                    Err(err) => err.to_string(),
                };
                error!(%addr, %reason, "embedded MQTT broker stopped");
                let _ = failed.send(reason);
            }
            _ = stop => info!(%addr, "embedded MQTT broker stopping"),
        }
    });
    // Drops the listener and every connection task.
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// Whether an MQTT 3.1.1 broker at `addr` accepts a CONNECT, with `login` if given (then
/// disconnects cleanly).
pub(crate) fn answers_connect(addr: SocketAddr, login: Option<&MqttCredentials>) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_millis(500));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    if stream
        .write_all(&connect_packet("vigil-broker-probe", login))
        .is_err()
    {
        return false;
    }
    let mut connack = [0u8; 4];
    if stream.read_exact(&mut connack).is_err() {
        return false;
    }
    // DISCONNECT, so the broker closes the probe quietly.
    let _ = stream.write_all(&[0xE0, 0x00]);
    connack[0] == 0x20 && connack[1] == 0x02 && connack[3] == 0x00
}

/// An MQTT 3.1.1 CONNECT with a clean session, a 10 s keepalive, `client_id` (at most 100
/// bytes) and `login` if given.
fn connect_packet(client_id: &str, login: Option<&MqttCredentials>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        let s = &s[..s.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    let id = &client_id.as_bytes()[..client_id.len().min(100)];
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x0A];
    string(&mut variable, id);
    if let Some(login) = login {
        string(&mut variable, login.username.as_bytes());
        string(&mut variable, login.password.as_bytes());
    }
    let mut packet = vec![0x10];
    // The remaining length: 7 bits a byte, low bits first.
    let mut len = variable.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&variable);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_a_valid_connect() {
        let packet = connect_packet("probe", None);
        assert_eq!(packet[0], 0x10);
        assert_eq!(usize::from(packet[1]), packet.len() - 2);
        assert_eq!(&packet[2..8], b"\x00\x04MQTT");
        assert_eq!(&packet[packet.len() - 5..], b"probe");
        let login = MqttCredentials::new("u".repeat(100), "p".repeat(100));
        let packet = connect_packet("probe", Some(&login));
        let mut bytes = bytes::BytesMut::from(&packet[..]);
        match rumqttc::mqttbytes::v4::Packet::read(&mut bytes, 1 << 20).expect("parses") {
            rumqttc::mqttbytes::v4::Packet::Connect(connect) => {
                assert_eq!(connect.client_id, "probe");
                let got = connect.login.expect("login");
                assert_eq!(
                    (got.username, got.password),
                    (login.username, login.password)
                );
            }
            other => panic!("not a CONNECT: {other:?}"),
        }
    }

    #[test]
    fn starts_answers_stops_and_frees_the_port() {
        let broker = EmbeddedBroker::start(SocketAddr::from(([127, 0, 0, 1], 0))).expect("start");
        let addr = broker.local_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(broker.url(), format!("mqtt://{addr}"));
        assert!(answers_connect(addr, None));
        // The same port cannot be taken twice.
        let err = EmbeddedBroker::start(addr).expect_err("in use");
        assert!(matches!(err, BrokerError::Bind { .. }), "{err}");
        broker.stop();
        assert!(!answers_connect(addr, None), "stopped");
        let again = EmbeddedBroker::start(addr).expect("restart on the same port");
        assert!(answers_connect(again.local_addr(), None));
    }

    #[test]
    fn with_auth_only_the_secret_gets_in() {
        let secret = MqttCredentials::new("vigil-gate", "0123456789abcdef");
        let mut config = EmbeddedBrokerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.auth = Some(secret.clone());
        let broker = EmbeddedBroker::start_with(config).expect("start");
        let addr = broker.local_addr();
        assert!(answers_connect(addr, Some(&secret)), "the secret gets in");
        assert!(!answers_connect(addr, None), "no login: refused");
        let wrong = MqttCredentials::new("vigil-gate", "0123456789abcdeF");
        assert!(
            !answers_connect(addr, Some(&wrong)),
            "a wrong password: refused"
        );
        let user = MqttCredentials::new("someone", "0123456789abcdef");
        assert!(!answers_connect(addr, Some(&user)), "another user: refused");
    }

    #[test]
    fn the_rumqttd_config_is_complete() {
        let config = EmbeddedBrokerConfig::default();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 1883)));
        let rumqttd = config.to_rumqttd(config.listen);
        let v4 = rumqttd.v4.expect("a v4 server");
        let server = v4.get("vigil").expect("named vigil");
        assert!(server.connections.dynamic_filters);
        assert!(server.connections.max_payload_size > MAX_PAYLOAD_BYTES);
        assert!(rumqttd.router.max_segment_size >= 2 * MAX_PAYLOAD_BYTES);
    }
}
