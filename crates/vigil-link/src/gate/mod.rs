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
//! - **Admission** ([`admission`]): at most [`SecureBrokerConfig::max_connections`] at once,
//!   at most [`SecureBrokerConfig::max_pending_per_address`] not yet authenticated from
//!   one address (an IPv6 client: its /64) and [`SecureBrokerConfig::max_pending`] from all
//!   addresses together; more are closed as soon as they are accepted and
//!   counted in `vigil_gate_refused_total{reason}`.
//! - **TLS**: the server config comes from `vigil_pki::server_config_mtls`: a client
//!   certificate is required, chained to the hub's CA, within its validity, not revoked.
//!   The handshake *and* the MQTT CONNECT must be done within one
//!   [`SecureBrokerConfig::handshake_timeout`] (5 s) of the connection's accept.
//! - **Identity**: the node id is the common name of the verified client certificate.
//! - **ACL** ([`acl`]): CONNECT with client id = node id (refused otherwise; see [`acl`] for
//!   why refused rather than rewritten), last will only on `vigil/v1/status/{node}`;
//!   PUBLISH only on `vigil/v1/up/{node}` and `vigil/v1/status/{node}`; SUBSCRIBE only to
//!   `vigil/v1/down/{node}`. The client's username and password are replaced by the
//!   internal ones. Packets are re-encoded from what was checked ([`frame`]).
//! - **Violations**: the connection is closed (MQTT 3.1.1 has no per-publish refusal), the
//!   packet never reaches the broker, `vigil_gate_denials_total{reason}` counts it, a
//!   `warn!` names the node, the packet kind and the topic (cut to 256 bytes), and the
//!   owner ([`SecureBroker::take_denials`]) gets [`Denial`] records for the audit log:
//!   topics cut to 256 bytes, repeats aggregated per node over
//!   [`SecureBrokerConfig::denial_window`] ([`denials`]).
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
pub mod admission;
pub mod denials;
pub mod frame;
pub mod metrics;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
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

/// Connections of one node closed for one kind of ACL violation, for the owner's audit log:
/// one denial, or the repeats of a window aggregated ([`denials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The node (its certificate's common name).
    pub node: NodeId,
    /// What it tried.
    pub action: Action,
    /// Why it was refused.
    pub reason: DenialReason,
    /// The topic or filter (for a CONNECT: the client id or the will topic), if any, cut
    /// to [`denials::MAX_TOPIC_BYTES`] at a character boundary; of the first denial when
    /// aggregated.
    pub topic: Option<String>,
    /// The length of the topic as sent, in bytes (more than `topic`'s when cut).
    pub topic_bytes: usize,
    /// Where it connected from (the first denial's address when aggregated).
    pub peer: SocketAddr,
    /// When (the first denial, when aggregated).
    pub at: SystemTime,
    /// When the last denial counted here happened.
    pub last_at: SystemTime,
    /// How many denials this record stands for.
    pub count: u64,
}

impl Denial {
    /// One denial at `at`; `topic` is cut to [`denials::MAX_TOPIC_BYTES`].
    pub fn new(
        node: NodeId,
        action: Action,
        reason: DenialReason,
        topic: Option<&str>,
        peer: SocketAddr,
        at: SystemTime,
    ) -> Denial {
        Denial {
            node,
            action,
            reason,
            topic: topic.map(|t| denials::truncate_topic(t).0.to_owned()),
            topic_bytes: topic.map_or(0, str::len),
            peer,
            at,
            last_at: at,
            count: 1,
        }
    }

    /// Whether the topic was cut.
    pub fn topic_truncated(&self) -> bool {
        self.topic.as_ref().map_or(0, String::len) < self.topic_bytes
    }
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
    /// How long a connection may take, from its accept, to finish the TLS handshake and
    /// send an accepted CONNECT: 5 s. Before that it is not authenticated.
    pub handshake_timeout: Duration,
    /// The most node connections at once (handshakes included); more are closed at once.
    pub max_connections: usize,
    /// The most connections from one client address (an IPv6 client: its /64) that have
    /// not authenticated yet; more are closed at once: 8.
    pub max_pending_per_address: usize,
    /// The most connections that have not authenticated yet, from all addresses together;
    /// more are closed at once, so handshakes from many addresses cannot take the places
    /// (and the file descriptors) enrolled nodes need: 256.
    pub max_pending: usize,
    /// Denial records that may wait for the owner; more are logged and counted but not
    /// queued.
    pub denial_capacity: usize,
    /// The window over which one node's repeated denials become one record: 60 s.
    pub denial_window: Duration,
}

impl SecureBrokerConfig {
    /// The default bound on the TLS handshake and the CONNECT together: 5 s.
    pub const fn default_handshake_timeout() -> Duration {
        Duration::from_secs(5)
    }

    /// The default limit of unauthenticated connections per address: 8.
    pub const fn default_max_pending_per_address() -> usize {
        8
    }

    /// The default limit of unauthenticated connections in all: 256.
    pub const fn default_max_pending() -> usize {
        256
    }

    /// The default denial aggregation window: 60 s.
    pub const fn default_denial_window() -> Duration {
        Duration::from_secs(60)
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
            max_pending_per_address: SecureBrokerConfig::default_max_pending_per_address(),
            max_pending: SecureBrokerConfig::default_max_pending(),
            denial_capacity: 1024,
            denial_window: SecureBrokerConfig::default_denial_window(),
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
        if self.max_pending_per_address == 0 {
            return Err(GateError::Config {
                key: "max_pending_per_address",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_pending < self.max_pending_per_address {
            return Err(GateError::Config {
                key: "max_pending",
                reason: "must be at least max_pending_per_address".into(),
            });
        }
        if self.denial_window.is_zero() {
            return Err(GateError::Config {
                key: "denial_window",
                reason: "must be above zero (e.g. 60s)".into(),
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
        let (raw_tx, raw_rx) = mpsc::channel(config.denial_capacity);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(denials::aggregate(
            raw_rx,
            denials_tx,
            config.denial_window,
            metrics.clone(),
            shutdown.clone(),
        ));
        let shared = Arc::new(relay::Shared {
            acceptor: tokio_rustls::TlsAcceptor::from(config.tls.clone()),
            internal: internal.local_addr(),
            credentials: credentials.clone(),
            revocations: config.revocations.clone(),
            metrics,
            denials: raw_tx,
            handshake_timeout: config.handshake_timeout,
            max_packet_bytes: config.broker.max_payload_bytes.max(MAX_PACKET_BYTES),
            handshake_log: std::sync::Mutex::new(RefusalLog::default()),
        });
        let admission = admission::Admission::new(
            config.max_connections,
            config.max_pending_per_address,
            config.max_pending,
            shared.metrics.pending_connections.clone(),
        );
        tasks.spawn(accept_loop(
            listener,
            shared,
            admission,
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
    admission: admission::Admission,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let mut warned = RefusalLog::default();
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
        let permit = match admission.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                shared
                    .metrics
                    .refused
                    .with_label_values(&[refusal.as_str()])
                    .inc();
                if warned.due(tokio::time::Instant::now()) {
                    warn!(%peer, reason = refusal.as_str(),
                          "gate: connection refused before its handshake (further refusals for {}s are only counted in vigil_gate_refused_total)",
                          REFUSAL_LOG_EVERY.as_secs());
                }
                drop(tcp);
                continue;
            }
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

/// How often a refused connection is logged at most (a flood of refusals is counted, not
/// logged one by one).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// When the last refusal was logged.
#[derive(Debug, Default)]
pub(super) struct RefusalLog(Option<tokio::time::Instant>);

impl RefusalLog {
    /// Whether a refusal at `now` is logged: the first, and one every [`REFUSAL_LOG_EVERY`].
    pub(super) fn due(&mut self, now: tokio::time::Instant) -> bool {
        match self.0 {
            Some(last) if now.duration_since(last) < REFUSAL_LOG_EVERY => false,
            _ => {
                self.0 = Some(now);
                true
            }
        }
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
