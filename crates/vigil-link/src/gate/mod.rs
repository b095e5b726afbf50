//! [`SecureBroker`]: the hub's embedded broker behind an mTLS gate that enforces each node's
//! access control — the broker side of "mTLS on every link … the broker lets a node publish
//! only on its own topics" (docs/ARCHITECTURE.md#the-mtls-gate).
//!
//! rumqttd has no per-topic ACLs, so the gate stands in front of it:
//!
//! ```text
//!  node ──mTLS──▶ gate (listen, e.g. 0.0.0.0:8883) ──TCP──▶ rumqttd on 127.0.0.1:<random>
//!                 │ certificate → node id                    │ accepts only the internal
//!                 │ ACL on every client → broker packet      │ username/password
//!  hub's own Downlinks ──────────── TCP, internal credentials ┘
//! ```
//!
//! - **TLS**: the server config comes from `vigil_pki::server_config_mtls`: a client
//!   certificate is required, chained to the hub's CA, within its validity, not revoked.
//!   The handshake must finish within [`SecureBrokerConfig::handshake_timeout`].
//! - **Identity**: the node id is the common name of the verified client certificate.
//! - **ACL** ([`acl`]): CONNECT with client id = node id (refused otherwise; see [`acl`] for
//!   why refused rather than rewritten), last will only on `vigil/v1/status/{node}`;
//!   PUBLISH only on `vigil/v1/up/{node}` and `vigil/v1/status/{node}`; SUBSCRIBE only to
//!   `vigil/v1/down/{node}`. The client's username and password are replaced by the
//!   internal ones. Packets are re-encoded from what was checked ([`frame`]).
//! - **Violations**: the connection is closed (MQTT 3.1.1 has no per-publish refusal), the
//!   packet never reaches the broker, `vigil_gate_denials_total{reason}` counts it, a
//!   `warn!` names the node, the packet kind and the topic, and a [`Denial`] goes to the
//!   owner ([`SecureBroker::take_denials`]) for the audit log.
//! - **Revocation**: [`SecureBroker::revocations`] is the set the TLS verifier checks;
//!   revoking a serial refuses new handshakes *and* closes the live connections that
//!   presented it.
//! - **The internal broker** listens on `127.0.0.1:0` and accepts only a random
//!   username/password (32 random bytes, hex) that the gate and the hub's own client use
//!   ([`SecureBroker::internal_url`], [`SecureBroker::internal_credentials`]): nothing else
//!   on the machine can connect to it and bypass the gate.
//!
//! Metrics: [`GateMetrics`] (module [`metrics`]).
//!
//! # Wiring (a hub)
//!
//! ```no_run
//! # async fn hub() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use vigil_link::gate::{GateMetrics, SecureBroker, SecureBrokerConfig};
//! use vigil_link::{Downlinks, DownlinksConfig, LinkMetrics, SharedStore};
//!
//! let registry = prometheus::Registry::new();
//! let ca = vigil_pki::Ca::load_or_create("/var/lib/vigil/pki".as_ref(), "county-baiyun CA")?;
//! let server = ca.issue_server(&["hub.local".into(), "127.0.0.1".into()], Duration::from_secs(365 * 86400))?;
//! let revocations = vigil_pki::Revocations::new(); // .load(serials from the store)
//! let config = SecureBrokerConfig::from_pem(
//!     "0.0.0.0:8883".parse()?, ca.cert_pem(), &server.cert_pem, &server.key_pem, revocations,
//! )?;
//! let mut broker = SecureBroker::start(config, GateMetrics::new(&registry)?).await?;
//! let mut denials = broker.take_denials().expect("once"); // → the audit log
//!
//! // The hub's own end of its children's links, on the internal broker.
//! let mut downlinks = DownlinksConfig::new(vigil_core::NodeId::new("county-baiyun")?, broker.internal_url());
//! downlinks.credentials = Some(broker.internal_credentials());
//! # let store = SharedStore::new(vigil_store::Store::open("/var/lib/vigil/hub.db")?);
//! let downlinks = Downlinks::new(downlinks, store, LinkMetrics::new(&registry)?)?;
//!
//! // An operator revokes a gateway: its connection drops, and it cannot connect again.
//! broker.revocations().revoke("3f09a1…");
//! # Ok(()) }
//! ```

pub mod acl;
pub mod frame;
pub mod metrics;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use vigil_core::NodeId;
use vigil_pki::Revocations;

pub use acl::{Acl, Action, DenialReason, Violation};
pub use metrics::GateMetrics;

use crate::broker::{BrokerError, EmbeddedBroker, EmbeddedBrokerConfig};
use crate::mqtt::{MqttCredentials, MAX_PACKET_BYTES};

/// The username of the internal broker's only login.
pub const INTERNAL_USERNAME: &str = "vigil-internal";

/// A connection closed for an ACL violation, for the owner's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The node (its certificate's common name).
    pub node: NodeId,
    /// What it tried.
    pub action: Action,
    /// Why it was refused.
    pub reason: DenialReason,
    /// The topic or filter (for a CONNECT: the client id or the will topic), if any.
    pub topic: Option<String>,
    /// Where it connected from.
    pub peer: SocketAddr,
    /// When.
    pub at: SystemTime,
}

/// Why the secure broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The internal broker did not start.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The TLS listen address cannot be bound.
    #[error("the broker's TLS listener cannot listen on {addr}: {source}: is another broker running there?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error("invalid secure broker setting {key}: {reason}")]
    Config {
        /// The setting.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The internal broker's start could not be awaited (the runtime is shutting down).
    #[error("the internal broker's start did not complete: {0}")]
    Join(String),
}

/// The settings of a [`SecureBroker`].
#[derive(Debug, Clone)]
pub struct SecureBrokerConfig {
    /// Where the TLS listener listens (`[mqtt] listen`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The TLS server config: `vigil_pki::server_config_mtls` with the same
    /// [`revocations`](Self::revocations) (or use [`SecureBrokerConfig::from_pem`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// The revoked serials; the handle [`SecureBroker::revocations`] returns.
    pub revocations: Revocations,
    /// The internal broker's settings (limits, timeouts); its `listen` and `auth` are
    /// set by the gate (`127.0.0.1:0` and a random secret).
    pub broker: EmbeddedBrokerConfig,
    /// How long a TLS handshake may take, and then the CONNECT: 10 s.
    pub handshake_timeout: Duration,
    /// The most node connections at once (handshakes included); more are closed at once.
    pub max_connections: usize,
    /// Denials that may wait for the owner; more are logged and counted but not queued.
    pub denial_capacity: usize,
}

impl SecureBrokerConfig {
    /// The default handshake timeout: 10 s.
    pub const fn default_handshake_timeout() -> Duration {
        Duration::from_secs(10)
    }

    /// The default connection limit: 10,000.
    pub const fn default_max_connections() -> usize {
        10_000
    }

    /// Defaults, listening on `listen` with `tls`, which must check `revocations`.
    pub fn new(
        listen: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        revocations: Revocations,
    ) -> SecureBrokerConfig {
        SecureBrokerConfig {
            listen,
            tls,
            revocations,
            broker: EmbeddedBrokerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            handshake_timeout: SecureBrokerConfig::default_handshake_timeout(),
            max_connections: SecureBrokerConfig::default_max_connections(),
            denial_capacity: 1024,
        }
    }

    /// Defaults, with the mTLS server config built from the hub's CA certificate and its
    /// server certificate and key (PEM), checking `revocations`.
    pub fn from_pem(
        listen: SocketAddr,
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        revocations: Revocations,
    ) -> Result<SecureBrokerConfig, vigil_pki::PkiError> {
        let tls = vigil_pki::server_config_mtls(ca_pem, cert_pem, key_pem, revocations.clone())?;
        Ok(SecureBrokerConfig::new(listen, tls, revocations))
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), GateError> {
        if self.handshake_timeout.is_zero() {
            return Err(GateError::Config {
                key: "handshake_timeout",
                reason: "must be above zero (e.g. 10s)".into(),
            });
        }
        if self.max_connections == 0 {
            return Err(GateError::Config {
                key: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if self.denial_capacity == 0 {
            return Err(GateError::Config {
                key: "denial_capacity",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The embedded broker behind the mTLS gate. Dropping it stops both (prefer
/// [`stop`](SecureBroker::stop) from async code: dropping waits for the broker's thread).
#[derive(Debug)]
pub struct SecureBroker {
    addr: SocketAddr,
    internal: Option<EmbeddedBroker>,
    credentials: MqttCredentials,
    revocations: Revocations,
    denials: Option<mpsc::Receiver<Denial>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl SecureBroker {
    /// Starts the internal broker (on `127.0.0.1:0`, with a fresh random secret) and the
    /// TLS listener on `config.listen`; returns once both accept connections.
    pub async fn start(
        config: SecureBrokerConfig,
        metrics: GateMetrics,
    ) -> Result<SecureBroker, GateError> {
        config.validate()?;
        let credentials = MqttCredentials::new(INTERNAL_USERNAME, random_secret());
        let mut broker_config = config.broker.clone();
        broker_config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        broker_config.auth = Some(credentials.clone());
        let internal =
            tokio::task::spawn_blocking(move || EmbeddedBroker::start_with(broker_config))
                .await
                .map_err(|err| GateError::Join(err.to_string()))??;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GateError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| GateError::Bind {
            addr: config.listen,
            source,
        })?;
        let (denials_tx, denials_rx) = mpsc::channel(config.denial_capacity);
        let shared = Arc::new(relay::Shared {
            acceptor: tokio_rustls::TlsAcceptor::from(config.tls.clone()),
            internal: internal.local_addr(),
            credentials: credentials.clone(),
            revocations: config.revocations.clone(),
            metrics,
            denials: denials_tx,
            handshake_timeout: config.handshake_timeout,
            max_packet_bytes: config.broker.max_payload_bytes.max(MAX_PACKET_BYTES),
        });
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept_loop(
            listener,
            shared,
            Arc::new(Semaphore::new(config.max_connections)),
            shutdown.clone(),
            tasks.clone(),
        ));
        info!(%addr, internal = %internal.local_addr(), "MQTT broker listening with mTLS");
        Ok(SecureBroker {
            addr,
            internal: Some(internal),
            credentials,
            revocations: config.revocations,
            denials: Some(denials_rx),
            shutdown,
            tasks,
        })
    }

    /// The TLS listener's address (with the port it picked, if it was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL nodes connect with: `mqtts://{local_addr}`. (A node connecting by name
    /// needs that name in the server certificate.)
    pub fn url(&self) -> String {
        format!("mqtts://{}", self.addr)
    }

    /// The internal broker's URL, `mqtt://127.0.0.1:{port}`, for the hub's own
    /// [`Downlinks`](crate::Downlinks), with [`internal_credentials`](Self::internal_credentials).
    pub fn internal_url(&self) -> String {
        format!("mqtt://{}", self.internal_addr())
    }

    /// The internal broker's address.
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal.as_ref().map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            EmbeddedBroker::local_addr,
        )
    }

    /// The internal broker's only login (`DownlinksConfig::credentials`).
    pub fn internal_credentials(&self) -> MqttCredentials {
        self.credentials.clone()
    }

    /// The revoked serials: revoking one refuses its handshakes and closes its live
    /// connections. Cheap to clone.
    pub fn revocations(&self) -> Revocations {
        self.revocations.clone()
    }

    /// The ACL denials, for the audit log. Take it once; if nobody reads it, denials are
    /// still logged and counted.
    pub fn take_denials(&mut self) -> Option<mpsc::Receiver<Denial>> {
        self.denials.take()
    }

    /// Stops the listener, closes every node connection, and stops the internal broker.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            warn!("gate: connections still closing after 5s; stopping anyway");
        }
        if let Some(internal) = self.internal.take() {
            let _ = tokio::task::spawn_blocking(move || internal.stop()).await;
        }
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<relay::Shared>,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                warn!(error = %err, "gate: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared
                .metrics
                .refused
                .with_label_values(&["capacity"])
                .inc();
            warn!(%peer, "gate: connection limit reached; connection refused");
            drop(tcp);
            continue;
        };
        tasks.spawn(relay::serve(
            shared.clone(),
            tcp,
            peer,
            shutdown.clone(),
            permit,
        ));
    }
}

/// 32 random bytes, hex.
fn random_secret() -> String {
    use std::fmt::Write;
    let bytes: [u8; 32] = rand::random();
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
