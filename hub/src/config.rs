//! `hub.toml`: the hub's configuration (docs/ARCHITECTURE.md#configuration-files), as typed serde
//! structs with unknown keys rejected, and its semantic checks ([`Validate`]). Loading goes through
//! `vigil-config`, so every error names the file, the line and the key, and `vigil-hub`
//! exits 2 on it.
//!
//! ```toml
//! [node]
//! id = "county-baiyun"
//! level = "county"                      # ministry | province | city | county | facility
//! name = "Baiyun County Command Centre"
//! site = "ministry/guangdong/guangzhou/baiyun"   # optional; as many segments as the level
//!
//! [http]
//! listen = "127.0.0.1:8080"             # the API, the console, /metrics
//! # tls = true                          # HTTPS; plain HTTP off loopback needs allow_plaintext
//! # header_read_timeout = "10s"         # also see idle_timeout, max_connections,
//! #                                     # max_connections_per_address (crate::listener)
//!
//! [mqtt]
//! listen = "127.0.0.1:1883"             # the embedded broker; or url = "mqtt://broker:1883"
//!
//! [parent]
//! url = "mqtt://127.0.0.1:1884"         # absent at the ministry
//!
//! [store]
//! path = "/var/lib/vigil/hub.db"
//!
//! [escalation]
//! min_severity = "minor"                # what goes up to the parent
//!
//! [auth]                                # console sign-in; every key optional
//! session_idle = "30m"                  # a session unused this long ends
//! session_max = "12h"                   # a session ends this long after sign-in, used or not
//! secure_cookie = false                 # mark the session cookie Secure (served over HTTPS)
//! sign_in_free_failures = 5             # failed sign-ins (per name, per client) before delays
//! sign_in_delay = "1s"                  # the first delay; each further failure doubles it
//! sign_in_max_delay = "15m"             # the longest delay
//! sign_in_concurrency = 4               # password checks at once, hub-wide
//! open_metrics = true                   # GET /metrics without signing in
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_config::{Problem, Validate};
use vigil_core::{AlertView, Level, NodeId, Severity, SitePath};

/// The whole `hub.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// `[node]`: who this hub is.
    pub node: NodeSection,
    /// `[http]`: the one HTTP listener (API, console, feeds, metrics).
    #[serde(default)]
    pub http: HttpSection,
    /// `[mqtt]`: the broker the hub's children connect to. Absent: the embedded broker on
    /// [`default_mqtt_listen`].
    #[serde(default)]
    pub mqtt: Option<MqttSection>,
    /// `[parent]`: the parent hub's broker; absent at the ministry.
    #[serde(default)]
    pub parent: Option<ParentSection>,
    /// `[store]`: the hub's SQLite database.
    pub store: StoreSection,
    /// `[escalation]`: what this hub sends up to its parent.
    #[serde(default)]
    pub escalation: EscalationSection,
    /// `[auth]`: sessions, sign-in rate limiting, what is open without signing in.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[ca]`: the hub's certificate authority (enrollment, mTLS).
    #[serde(default)]
    pub ca: CaSection,
}

/// `[node]`: the hub's identity and place in the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The hub's node id, used in MQTT topics (`vigil/v1/up/{id}`) and as the origin of the
    /// events its operators create.
    pub id: NodeId,
    /// The hub's level: `ministry`, `province`, `city`, `county` (or `facility`, for a
    /// facility's own control room).
    pub level: Level,
    /// The command centre's name, as the console shows it.
    pub name: String,
    /// The hub's site path, with as many segments as its level is deep (a county:
    /// `ministry/province/city/county`). Optional: without it, the tree shows the site its
    /// alerts have in common.
    #[serde(default)]
    pub site: Option<SitePath>,
}

/// `[http]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address of the API, the console and `/metrics`; loopback unless configured otherwise.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// Serve HTTPS: with a certificate from the hub's CA for [`names`](Self::names) and the
    /// listen address, or with the operator's [`cert`](Self::cert) and [`key`](Self::key).
    #[serde(default)]
    pub tls: bool,
    /// The host names the HTTPS certificate is issued for (besides the listen address,
    /// `localhost`, `127.0.0.1` and `::1`); the first is the one `enroll-token` prints.
    #[serde(default)]
    pub names: Vec<String>,
    /// The operator's own certificate chain (PEM) for HTTPS, instead of one from the CA.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The private key of [`cert`](Self::cert) (PEM, mode 0600).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback. Off by default: passwords,
    /// session cookies and API tokens would cross the network in clear. Set it only behind
    /// a TLS-terminating proxy on a trusted network; otherwise use `tls = true`.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// How long a client has to send a request's headers, from the moment its connection
    /// opens (after the TLS handshake, which has as long again) or its previous answer
    /// ends; a connection kept alive between requests is closed after it too.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a stalled
    /// upload, a client that stops reading its answer). Keep it above 15 s, the live
    /// stream's keep-alive.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The most connections open at once; more are closed as soon as they are accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The most connections open at once from one client address (an IPv6 client: its
    /// /64); more are closed as soon as they are accepted.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
}

const fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

const fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

const fn default_max_connections() -> usize {
    512
}

const fn default_max_connections_per_address() -> usize {
    64
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: default_http_listen(),
            tls: false,
            names: Vec::new(),
            cert: None,
            key: None,
            allow_plaintext: false,
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
        }
    }
}

/// The default HTTP listener: `127.0.0.1:8080`.
pub const fn default_http_listen() -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080)
}

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
    pub url: Option<String>,
    /// The broker URL children are told at enrollment, `mqtts://host:port`; without it,
    /// `mqtts://` and `listen` (which must then name an address, not 0.0.0.0) or `url`.
    #[serde(default)]
    pub advertise: Option<String>,
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
    pub url: String,
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

/// `[store]`: the hub's SQLite database (alert events, outboxes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The database file; its directory is created if missing.
    pub path: PathBuf,
}

/// `[escalation]`: the policy of what goes up (docs/ARCHITECTURE.md#escalation).
/// Health summaries always go up; alerts and the actions on them go up when they pass it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// The least severity of an alert that the parent sees (`critical`, `major`, `minor`,
    /// `warning`, `info`).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            min_severity: default_min_severity(),
        }
    }
}

const fn default_min_severity() -> Severity {
    Severity::Minor
}

/// `[auth]`: console sign-in (see `crate::auth`). Users and tokens themselves live in the
/// store (`vigil-hub user add`, `vigil-hub token add`), never in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A session not used for this long ends (the idle expiry).
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// A session ends this long after its sign-in, however much it is used (the absolute
    /// expiry).
    #[serde(default = "default_session_max", with = "humantime_serde")]
    pub session_max: Duration,
    /// Mark the session cookie `Secure` (browsers then send it over HTTPS only). Set it when
    /// the console is served over HTTPS, directly or through a TLS-terminating proxy.
    #[serde(default)]
    pub secure_cookie: bool,
    /// Failed sign-ins per user name and per client address answered at once; after them,
    /// each failure makes the next attempt wait.
    #[serde(default = "default_free_failures")]
    pub sign_in_free_failures: u32,
    /// The wait after the first failure past the free ones; it doubles with each further
    /// failure.
    #[serde(default = "default_sign_in_delay", with = "humantime_serde")]
    pub sign_in_delay: Duration,
    /// The longest wait.
    #[serde(default = "default_sign_in_max_delay", with = "humantime_serde")]
    pub sign_in_max_delay: Duration,
    /// How many sign-ins may have their password checked at once, hub-wide (each check
    /// takes about 19 MiB and tens of milliseconds of a core); more are answered 503 with
    /// `Retry-After` at once.
    #[serde(default = "default_sign_in_concurrency")]
    pub sign_in_concurrency: usize,
    /// Serve `GET /metrics` without signing in (for a Prometheus scraper; it shows counts,
    /// never an alert's contents). `false`: a session or a bearer token of any role.
    #[serde(default = "default_open_metrics")]
    pub open_metrics: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            session_idle: default_session_idle(),
            session_max: default_session_max(),
            secure_cookie: false,
            sign_in_free_failures: default_free_failures(),
            sign_in_delay: default_sign_in_delay(),
            sign_in_max_delay: default_sign_in_max_delay(),
            sign_in_concurrency: default_sign_in_concurrency(),
            open_metrics: default_open_metrics(),
        }
    }
}

const fn default_sign_in_concurrency() -> usize {
    4
}

const fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}

const fn default_session_max() -> Duration {
    Duration::from_secs(12 * 60 * 60)
}

const fn default_free_failures() -> u32 {
    5
}

const fn default_sign_in_delay() -> Duration {
    Duration::from_secs(1)
}

const fn default_sign_in_max_delay() -> Duration {
    Duration::from_secs(15 * 60)
}

const fn default_open_metrics() -> bool {
    true
}

impl EscalationSection {
    /// Whether an alert of `severity` goes up to the parent.
    pub fn escalates(&self, severity: Severity) -> bool {
        severity >= self.min_severity
    }

    /// Whether events of this alert go up: its raise has arrived and its severity passes.
    pub fn escalates_alert(&self, view: &AlertView) -> bool {
        view.key.is_some() && self.escalates(view.severity)
    }

    /// Whether events of this alert go up, judged on its whole history: its raise has
    /// arrived and its severity at its highest (`peak`, see
    /// [`vigil_link::escalation::peak_severity`]) or now passes. An alert that went up once
    /// keeps going up when its severity drops, so the parent's copy is cleared,
    /// acknowledged and closed like the child's. The policy the hub relays its children's
    /// events and its operators' actions by.
    pub fn escalates_history(&self, view: &AlertView, peak: Option<Severity>) -> bool {
        view.key.is_some() && self.escalates(peak.map_or(view.severity, |p| p.max(view.severity)))
    }
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
    /// Loads and validates `hub.toml`; a relative `[store] path` is taken from the config
    /// file's directory, so the hub opens the same file wherever it is started from.
    pub fn load(path: &std::path::Path) -> Result<Self, vigil_config::ConfigErrors> {
        let mut config: HubConfig = vigil_config::load(path)?;
        if config.store.path.is_relative() {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            config.store.path = dir.join(&config.store.path);
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        config.resolve_tls_paths(dir);
        Ok(config)
    }

    /// The broker the children connect to. Call on a validated config; an invalid `[mqtt]`
    /// falls back to the embedded broker on its default address.
    pub fn broker(&self) -> Broker {
        match &self.mqtt {
            Some(MqttSection {
                url: Some(url),
                listen: None,
                ..
            }) => match BrokerUrl::parse(url) {
                Ok(url) => Broker::External { url },
                Err(_) => Broker::Embedded {
                    listen: default_mqtt_listen(),
                },
            },
            Some(MqttSection {
                listen: Some(listen),
                ..
            }) => Broker::Embedded { listen: *listen },
            _ => Broker::Embedded {
                listen: default_mqtt_listen(),
            },
        }
    }

    /// The parent's broker, when the hub has one (validated).
    pub fn parent_url(&self) -> Option<BrokerUrl> {
        self.parent
            .as_ref()
            .and_then(|p| BrokerUrl::parse(&p.url).ok())
    }
}

/// The most characters of `[node] name`.
const MAX_NAME_LEN: usize = 200;

impl Validate for HubConfig {
    fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let level = self.node.level;
        let name = self.node.name.trim();
        if name.is_empty() {
            out.push(Problem::new(
                "node.name",
                "must not be empty: the command centre's name, as the console shows it",
            ));
        } else if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            out.push(Problem::new(
                "node.name",
                format!("must be at most {MAX_NAME_LEN} characters without control characters"),
            ));
        }
        if let Some(site) = &self.node.site {
            if site.depth() != level.depth() {
                out.push(Problem::new(
                    "node.site",
                    format!(
                        "{site:?} has {} segment(s), but a {level} hub's site has {} \
                         (ministry/province/city/county/facility, as deep as the level)",
                        site.depth(),
                        level.depth()
                    ),
                ));
            }
        }
        match &self.mqtt {
            None => {}
            Some(MqttSection {
                listen: Some(_),
                url: Some(_),
                ..
            }) => out.push(Problem::new(
                "mqtt.url",
                "give either listen (run the embedded broker) or url (use an external broker), not both",
            )),
            Some(MqttSection {
                listen: None,
                url: None,
                ..
            }) => out.push(Problem::new(
                "mqtt",
                "give listen = \"127.0.0.1:1883\" (the embedded broker) or url = \"mqtt://host:1883\" (an external broker)",
            )),
            Some(MqttSection {
                url: Some(url),
                listen: None,
                ..
            }) => {
                if let Err(e) = BrokerUrl::parse(url) {
                    out.push(Problem::new("mqtt.url", e));
                }
            }
            Some(MqttSection {
                listen: Some(_),
                url: None,
                ..
            }) => {}
        }
        match (&self.parent, level) {
            (Some(_), Level::Ministry) => out.push(Problem::new(
                "parent",
                "the ministry is the top of the network and has no parent: remove [parent]",
            )),
            (Some(parent), _) => {
                if let Err(e) = BrokerUrl::parse(&parent.url) {
                    out.push(Problem::new("parent.url", e));
                }
            }
            (None, _) => {}
        }
        let auth = &self.auth;
        if auth.session_idle.is_zero() {
            out.push(Problem::new(
                "auth.session_idle",
                "must be longer than 0, e.g. 30m",
            ));
        }
        if auth.session_max < auth.session_idle || auth.session_max.is_zero() {
            out.push(Problem::new(
                "auth.session_max",
                "must be at least auth.session_idle, e.g. 12h",
            ));
        }
        if auth.sign_in_delay.is_zero() {
            out.push(Problem::new(
                "auth.sign_in_delay",
                "must be longer than 0, e.g. 1s",
            ));
        }
        if auth.sign_in_max_delay < auth.sign_in_delay {
            out.push(Problem::new(
                "auth.sign_in_max_delay",
                "must be at least auth.sign_in_delay, e.g. 15m",
            ));
        }
        if auth.sign_in_concurrency == 0 {
            out.push(Problem::new(
                "auth.sign_in_concurrency",
                "must be at least 1, e.g. 4",
            ));
        }
        crate::listener::validate(&self.http, &mut out);
        self.validate_tls(&mut out);
        if self.store.path.as_os_str().is_empty() {
            out.push(Problem::new(
                "store.path",
                "must name the database file, e.g. /var/lib/vigil/hub.db",
            ));
        }
        out
    }
}

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
    fn resolve_tls_paths(&mut self, dir: &std::path::Path) {
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
        if let Some(advertise) = self.mqtt.as_ref().and_then(|m| m.advertise.clone()) {
            return Some(advertise);
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

    fn validate_tls(&self, out: &mut Vec<Problem>) {
        if let Some(mqtt) = &self.mqtt {
            if let Some(advertise) = &mqtt.advertise {
                match BrokerUrl::parse(advertise) {
                    Ok(url) if url.tls => {}
                    Ok(_) => out.push(Problem::new(
                        "mqtt.advertise",
                        format!("{advertise:?} must be an mqtts:// URL: children connect with TLS"),
                    )),
                    Err(e) => out.push(Problem::new("mqtt.advertise", e)),
                }
            } else if let Some(listen) = mqtt.listen.filter(|l| l.ip().is_unspecified()) {
                out.push(Problem::new(
                    "mqtt.listen",
                    format!(
                        "{listen} listens on every address, so it does not say where children                          should connect: add advertise = \"mqtts://HOST:{}\" with the name or                          address children reach this hub by",
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
            if BrokerUrl::parse(&parent.url).is_ok_and(|u| !u.tls) && given > 0 {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const GOOD: &str = r#"
[node]
id = "county-baiyun"
level = "county"
name = "Baiyun County Command Centre"

[http]
listen = "127.0.0.1:8080"

[mqtt]
listen = "127.0.0.1:1883"

[parent]
url = "mqtt://127.0.0.1:1884"

[store]
path = "/var/lib/vigil/hub.db"
"#;

    fn parse(text: &str) -> Result<HubConfig, vigil_config::ConfigErrors> {
        vigil_config::parse(Path::new("hub.toml"), text)
    }

    #[test]
    fn the_design_example_loads_with_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.node.level, Level::County);
        assert_eq!(
            c.broker(),
            Broker::Embedded {
                listen: default_mqtt_listen()
            }
        );
        assert_eq!(
            c.parent_url(),
            Some(BrokerUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1884
            })
        );
        assert_eq!(c.escalation.min_severity, Severity::Minor);
        assert!(c.escalation.escalates(Severity::Critical));
        assert!(!c.escalation.escalates(Severity::Warning));
    }

    #[test]
    fn escalation_follows_an_alert_that_went_up() {
        let policy = EscalationSection::default();
        let mut view = AlertView::empty(vigil_core::AlertId::generate());
        view.severity = Severity::Critical;
        assert!(
            !policy.escalates_history(&view, Some(Severity::Critical)),
            "no raise here yet"
        );
        view.key = Some(
            vigil_core::AlertKey::new(
                NodeId::new("gw-1").expect("node"),
                "fence-1/zone1",
                vigil_core::ConditionKind::new("state").expect("kind"),
            )
            .expect("key"),
        );
        assert!(policy.escalates_history(&view, Some(Severity::Critical)));
        view.severity = Severity::Warning;
        assert!(!policy.escalates_alert(&view));
        assert!(
            policy.escalates_history(&view, Some(Severity::Critical)),
            "it went up as critical: it keeps going up"
        );
        assert!(!policy.escalates_history(&view, Some(Severity::Warning)));
        assert!(!policy.escalates_history(&view, None));
    }

    #[test]
    fn minimal_ministry_config() {
        let c = parse(
            "[node]\nid = \"ministry\"\nlevel = \"ministry\"\nname = \"Ministry\"\n\n[store]\npath = \"hub.db\"\n",
        )
        .expect("valid");
        assert_eq!(c.http.listen, default_http_listen());
        assert!(c.parent.is_none());
        assert_eq!(
            c.broker(),
            Broker::Embedded {
                listen: default_mqtt_listen()
            }
        );
    }

    #[test]
    fn external_broker() {
        let c = parse(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "url = \"mqtts://broker.example:8884\"",
        ))
        .expect("valid");
        assert_eq!(
            c.broker(),
            Broker::External {
                url: BrokerUrl {
                    tls: true,
                    host: "broker.example".into(),
                    port: 8884
                }
            }
        );
    }

    fn problem(text: &str) -> (Option<usize>, String, String) {
        let e = parse(text).expect_err("invalid");
        let e = &e.0[0];
        (e.line, e.key.clone(), e.message.clone())
    }

    #[test]
    fn both_or_neither_broker_is_a_problem() {
        let (line, key, _) = problem(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "listen = \"127.0.0.1:1883\"\nurl = \"mqtt://b:1\"",
        ));
        assert_eq!((line, key.as_str()), (Some(12), "mqtt.url"));
        let (line, key, _) = problem(&GOOD.replace("listen = \"127.0.0.1:1883\"\n", ""));
        assert_eq!((line, key.as_str()), (Some(10), "mqtt"));
    }

    #[test]
    fn a_parent_at_the_ministry_is_a_problem() {
        let (line, key, msg) = problem(&GOOD.replace("\"county\"", "\"ministry\""));
        assert_eq!((line, key.as_str()), (Some(13), "parent"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let (line, key, msg) = problem(&GOOD.replace("\"county\"", "\"town\""));
        assert_eq!((line, key.as_str()), (Some(4), "node.level"), "{msg}");
        let (line, key, _) = problem(&GOOD.replace("mqtt://127.0.0.1:1884", "http://x"));
        assert_eq!((line, key.as_str()), (Some(14), "parent.url"));
        let (line, key, _) = problem(&GOOD.replace("[store]", "[store]\npaht = \"x\""));
        assert_eq!((line, key.as_str()), (Some(17), "store.paht"));
        let (_, key, msg) = problem(&GOOD.replace(
            "name = \"Baiyun County Command Centre\"",
            "name = \"B\"\nsite = \"ministry/gd\"",
        ));
        assert_eq!(key, "node.site", "{msg}");
        let (_, key, _) = problem(&GOOD.replace("Baiyun County Command Centre", "  "));
        assert_eq!(key, "node.name");
        let (_, key, _) = problem(&format!("{GOOD}\n[escalation]\nmin_severity = \"huge\"\n"));
        assert_eq!(key, "escalation.min_severity");
    }

    #[test]
    fn auth_defaults_and_checks() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.auth, AuthSection::default());
        assert_eq!(c.auth.session_idle, Duration::from_secs(1800));
        assert!(c.auth.open_metrics && !c.auth.secure_cookie);
        let c = parse(&format!(
            "{GOOD}\n[auth]\nsession_idle = \"5m\"\nsecure_cookie = true\nsign_in_delay = \"250ms\"\n"
        ))
        .expect("valid");
        assert_eq!(c.auth.session_idle, Duration::from_secs(300));
        assert_eq!(c.auth.sign_in_delay, Duration::from_millis(250));
        let (line, key, _) = problem(&format!(
            "{GOOD}\n[auth]\nsession_idle = \"2h\"\nsession_max = \"1h\"\n"
        ));
        assert_eq!((line, key.as_str()), (Some(21), "auth.session_max"));
        let (_, key, _) = problem(&format!("{GOOD}\n[auth]\nsesion_idle = \"2h\"\n"));
        assert_eq!(key, "auth.sesion_idle");
    }

    #[test]
    fn broker_urls() {
        let (line, key, message) = problem(&GOOD.replace(
            "listen = \"127.0.0.1:1883\"",
            "url = \"mqtt://[::1]/vigil\"",
        ));
        assert_eq!(key, "mqtt.url");
        assert!(line.is_some());
        assert!(message.contains("without a path"), "{message}");
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884").map(|u| (u.host, u.port)),
            Ok(("::1".to_owned(), 1884))
        );
    }
}
