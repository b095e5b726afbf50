//! `[http]`: the one HTTP listener (API, console, feeds, metrics) and its limits under load
//! (`crate::listener` enforces them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
    /// upload, a client that stops reading its answer). A quiet live stream sends its
    /// keep-alive at least twice per `idle_timeout`, so it is not cut.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long one request may take from its headers to its answer, its body included (a
    /// client that sends its body a byte at a time is answered 408 and closed); the live
    /// stream is exempt.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
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

const fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
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
            request_timeout: default_request_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
        }
    }
}

/// The default HTTP listener: `127.0.0.1:8080`.
pub const fn default_http_listen() -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080)
}
