//! The HTTP client of enrollment: `POST {hub}/api/v1/enroll` with a one-time
//! [`EnrollToken`] and a CSR, and the checks that make the answer trustworthy. The whole
//! command around it (checks before the token is spent, the files written) is
//! [`crate::enrollment::flow`].
//!
//! The contract with the hub:
//!
//! - request `{"token": "VGL1…", "csr": "<PEM>"}`;
//! - 200 `{"node", "certificate" (PEM), "ca" (PEM), "broker" ("mqtts://HOST:PORT"),
//!   "expires_at"}`; 401 `{"error": "invalid or expired enrollment token"}`; 400 a malformed
//!   CSR; 429 rate limited.
//!
//! Trust comes from the token's pin, never from system roots:
//!
//! - over `https://`, the server is accepted only if its chain holds a CA certificate whose
//!   SHA-256 is the pin and its certificate verifies against that CA ([`PinnedCaVerifier`],
//!   in [`crate::enrollment::pinning`]);
//! - over `http://` (loopback or a trusted segment only), and over https too, the `ca` the
//!   hub returns must hash to the pin, and the `certificate` must chain to it (validity,
//!   clientAuth) and name the node the requester expects — otherwise the answer is refused
//!   and the caller writes nothing ([`enroll`]).
//!
//! Every step is bounded by one timeout.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::server::danger::ClientCertVerifier;
use rustls::ClientConfig;
use rustls_pki_types::{ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use vigil_core::NodeId;

use super::pinning::PinnedCaVerifier;
use super::token::EnrollToken;
use crate::cert::{cert_from_pem, certs_from_pem, node_of_certificate};
use crate::revocations::Revocations;
use crate::tls::{provider, NodeCertVerifier};

/// The enrollment endpoint, under the hub's HTTP base URL.
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// The default bound on one enrollment (connect, TLS, request, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes of an answer read.
const MAX_ANSWER: usize = 1 << 20;

/// The request body of `POST /api/v1/enroll`. Its `Debug` leaves the token out: a request
/// in a log must not hand the token to whoever reads it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The token's text, `VGL1.…`.
    pub token: String,
    /// The node's CSR, PEM.
    pub csr: String,
    /// What the node is: a hub may report the nodes enrolled below it, a gateway speaks
    /// only as itself. Absent: a gateway.
    #[serde(default)]
    pub kind: EnrollKind,
}

/// What an enrolling node is (`"kind"` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollKind {
    /// A hub (`vigil-hub enroll`).
    Hub,
    /// A gateway (`vigil-agent enroll`; the default).
    #[default]
    Gateway,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("token", &"<redacted>")
            .field("csr", &self.csr)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The hub's answer to a successful enrollment, as it sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The node the certificate was issued to.
    pub node: String,
    /// The node's certificate, PEM.
    pub certificate: String,
    /// The hub's CA certificate, PEM.
    pub ca: String,
    /// The hub's mTLS broker, `mqtts://HOST:PORT`.
    pub broker: String,
    /// When the certificate expires (RFC 3339).
    pub expires_at: String,
    /// The site subtree the node is bound to (the token's `--site`); absent from a hub
    /// that predates bindings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The hub's own chain: its id, then its parent's, and so on up (what it learned when it
    /// enrolled): a hub that enrolls here never takes these as an origin from its children
    /// (docs/ARCHITECTURE.md#site-bindings-and-admission). Absent from a hub that predates
    /// it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
}

/// An enrollment whose answer passed every check: the CA is the pinned one, the certificate
/// chains to it and names the expected node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The node the certificate names (the one expected).
    pub node: NodeId,
    /// The node's certificate, PEM: write it to `[tls] cert`.
    pub certificate_pem: String,
    /// The hub's CA certificate, PEM: write it to `[tls] ca`.
    pub ca_pem: String,
    /// The broker to connect to: the uplink's new URL.
    pub broker: String,
    /// When the certificate expires, as the hub said (RFC 3339).
    pub expires_at: String,
    /// The CA's SHA-256 fingerprint, lowercase hex (the pin).
    pub ca_fingerprint: String,
    /// The site subtree the hub bound the node to, as it said (`None`: it did not say).
    pub site: Option<String>,
    /// The hub and the hubs above it, as it said, nearest first (those that are node ids).
    pub ancestors: Vec<NodeId>,
}

/// Why an enrollment failed. Every message names the hub's URL and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The hub URL is not `http://HOST[:PORT][/PATH]` or `https://…`.
    #[error(
        "hub URL {url:?}: {reason} (write e.g. https://hub.example:8080 or http://127.0.0.1:8080)"
    )]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection (refused, unreachable, unknown host).
    #[error("cannot connect to {url}: {reason}: check the hub's address (its [http] listen) and that it runs")]
    Connect {
        /// The enrollment URL.
        url: String,
        /// The OS's reason.
        reason: String,
    },
    /// The TLS handshake failed (for a pinned hub: its chain does not hold the pinned CA).
    #[error("TLS with {url} failed: {reason}")]
    Tls {
        /// The enrollment URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The whole exchange took longer than the timeout.
    #[error("no answer from {url} within {}s: check the network path to the hub, or retry", .after.as_secs())]
    Timeout {
        /// The enrollment URL.
        url: String,
        /// The bound.
        after: Duration,
    },
    /// The HTTP exchange broke off.
    #[error("{url}: {reason}")]
    Http {
        /// The enrollment URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// 401: the token is unknown, used, expired or revoked.
    #[error("{url} refused the token: {message}: ask the hub's operator for a new one (`vigil-hub enroll-token --node ID`); a token works once")]
    InvalidToken {
        /// The enrollment URL.
        url: String,
        /// The hub's message.
        message: String,
    },
    /// 400: the hub refused the request (the CSR).
    #[error("{url} refused the request: {message}")]
    BadRequest {
        /// The enrollment URL.
        url: String,
        /// The hub's message.
        message: String,
    },
    /// 429: too many attempts.
    #[error("{url} is limiting enrollment attempts{}: wait a minute and retry", .retry_after.as_deref().map(|s| format!(" (retry after {s}s)")).unwrap_or_default())]
    RateLimited {
        /// The enrollment URL.
        url: String,
        /// The `Retry-After` header, if any.
        retry_after: Option<String>,
    },
    /// Any other status.
    #[error("{url} answered {status}: {message}{}", if *.status == 404 { " (is this the hub's HTTP address, its [http] listen?)" } else { "" })]
    Status {
        /// The enrollment URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body or its `error`.
        message: String,
    },
    /// A 200 whose body is not the expected JSON.
    #[error("{url} answered with something that is not an enrollment: {reason}")]
    Answer {
        /// The enrollment URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The CA the hub returned is not the one the token pins: refused.
    #[error("the CA certificate {url} returned (SHA-256 {got}) is not the one the token pins ({pinned}): refused, nothing written. The address may not be your hub's, or someone is in between; check the address and the token with the hub's operator")]
    PinMismatch {
        /// The enrollment URL.
        url: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The returned CA's fingerprint.
        got: String,
    },
    /// The certificate does not chain to the returned CA, is not valid now, or lacks
    /// clientAuth.
    #[error("the certificate {url} returned does not verify against its CA: {reason}: refused, nothing written")]
    Chain {
        /// The enrollment URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The certificate names another node.
    #[error("the hub issued the certificate to node {got:?}, not {expected:?}: the token was issued for {got:?}. Refused, nothing written: ask for a token for {expected:?} (`vigil-hub enroll-token --node {expected}`), or set [node] id = \"{got}\"")]
    NodeMismatch {
        /// The node the requester is.
        expected: String,
        /// The node the certificate names.
        got: String,
    },
}

/// The parsed hub URL.
#[derive(Debug, Clone)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// `{hub}/api/v1/enroll`, for messages.
    url: String,
    path: String,
    authority: String,
}

fn target(hub: &str) -> Result<Target, EnrollError> {
    let bad = |reason: &str| EnrollError::Url {
        url: hub.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = hub.trim().parse().map_err(|_| bad("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(_) => return Err(bad("use http:// or https://")),
        None => return Err(bad("give the scheme, http:// or https://")),
    };
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if authority.as_str().contains('@') {
        return Err(bad("user names in the URL are not used"));
    }
    if uri.query().is_some() {
        return Err(bad("a query is not expected"));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let base = uri.path().trim_end_matches('/');
    let path = format!("{base}{ENROLL_PATH}");
    let scheme = if https { "https" } else { "http" };
    Ok(Target {
        https,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        url: format!("{scheme}://{}{path}", authority.as_str()),
        path,
        authority: authority.as_str().to_owned(),
    })
}

/// The enrollment URL for the hub base URL `hub`, as the messages name it.
pub fn enroll_url(hub: &str) -> Result<String, EnrollError> {
    target(hub).map(|t| t.url)
}

/// Whether `hub` is an `http://` URL to a loopback address (where plain HTTP is fine).
pub fn is_plain_http(hub: &str) -> Result<bool, EnrollError> {
    target(hub).map(|t| !t.https)
}

/// Enrolls: sends `token` and `csr_pem` to the hub at `hub` (its HTTP base URL), then checks
/// the answer — the CA hashes to the token's pin, the certificate chains to it and names
/// `expected`. Only an [`Enrolled`] that passed every check is returned.
pub async fn enroll(
    hub: &str,
    token: &EnrollToken,
    csr_pem: &str,
    expected: &NodeId,
    timeout: Duration,
) -> Result<Enrolled, EnrollError> {
    enroll_as(hub, token, csr_pem, expected, EnrollKind::Gateway, timeout).await
}

/// [`enroll`] as a `kind` of node.
pub async fn enroll_as(
    hub: &str,
    token: &EnrollToken,
    csr_pem: &str,
    expected: &NodeId,
    kind: EnrollKind,
    timeout: Duration,
) -> Result<Enrolled, EnrollError> {
    let target = target(hub)?;
    let url = target.url.clone();
    let answer = tokio::time::timeout(timeout, post(&target, token, csr_pem, kind))
        .await
        .map_err(|_| EnrollError::Timeout {
            url: url.clone(),
            after: timeout,
        })??;
    verify_answer(&url, token, expected, answer)
}

/// The checks of [`enroll`] on an answer, apart from the network.
pub fn verify_answer(
    url: &str,
    token: &EnrollToken,
    expected: &NodeId,
    answer: EnrollResponse,
) -> Result<Enrolled, EnrollError> {
    let chain = |reason: String| EnrollError::Chain {
        url: url.to_owned(),
        reason,
    };
    let bad_answer = |reason: String| EnrollError::Answer {
        url: url.to_owned(),
        reason,
    };
    let ca = cert_from_pem(&answer.ca, "its `ca`").map_err(|e| bad_answer(e.to_string()))?;
    if !token.pins(&ca) {
        return Err(EnrollError::PinMismatch {
            url: url.to_owned(),
            pinned: token.pin_hex(),
            got: crate::fingerprint(&ca),
        });
    }
    let certs = certs_from_pem(&answer.certificate, "its `certificate`")
        .map_err(|e| bad_answer(e.to_string()))?;
    let (leaf, intermediates) = certs.split_first().ok_or_else(|| chain("empty".into()))?;
    let verifier = NodeCertVerifier::new(&answer.ca, Revocations::new(), provider())
        .map_err(|e| chain(e.to_string()))?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|e| chain(e.to_string()))?;
    let node = node_of_certificate(leaf).map_err(|e| chain(e.to_string()))?;
    if &node != expected {
        return Err(EnrollError::NodeMismatch {
            expected: expected.to_string(),
            got: node.to_string(),
        });
    }
    // The one broker URL syntax of every Vigil config: what the node writes into its own.
    match vigil_config::BrokerUrl::parse(&answer.broker) {
        Ok(url) if url.tls => {}
        Ok(_) => {
            return Err(bad_answer(format!(
                "`broker` is {:?}, not an mqtts:// URL",
                answer.broker
            )))
        }
        Err(e) => return Err(bad_answer(format!("`broker` is not a broker URL: {e}"))),
    }
    Ok(Enrolled {
        node,
        certificate_pem: answer.certificate,
        ca_pem: answer.ca,
        broker: answer.broker,
        expires_at: answer.expires_at,
        ca_fingerprint: token.pin_hex(),
        site: answer.site,
        ancestors: answer
            .ancestors
            .iter()
            .filter_map(|a| NodeId::new(a.as_str()).ok())
            .collect(),
    })
}

async fn post(
    target: &Target,
    token: &EnrollToken,
    csr_pem: &str,
    kind: EnrollKind,
) -> Result<EnrollResponse, EnrollError> {
    let url = &target.url;
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| EnrollError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    if !target.https {
        return exchange(tcp, target, token, csr_pem, kind).await;
    }
    let verifier = Arc::new(PinnedCaVerifier::new(*token.pin()));
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EnrollError::Tls {
            url: url.clone(),
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone()).map_err(|e| EnrollError::Url {
        url: url.clone(),
        reason: format!("{:?} is not a usable server name: {e}", target.host),
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| EnrollError::Tls {
            url: url.clone(),
            reason: verifier.failure().unwrap_or_else(|| e.to_string()),
        })?;
    exchange(tls, target, token, csr_pem, kind).await
}

async fn exchange<S>(
    stream: S,
    target: &Target,
    token: &EnrollToken,
    csr_pem: &str,
    kind: EnrollKind,
) -> Result<EnrollResponse, EnrollError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = &target.url;
    let http = |reason: String| EnrollError::Http {
        url: url.clone(),
        reason,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let body = serde_json::to_vec(&EnrollRequest {
        token: token.to_string(),
        csr: csr_pem.to_owned(),
        kind,
    })
    .map_err(|e| http(e.to_string()))?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(target.path.as_str())
        .header(HOST, target.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| http(e.to_string()))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| http(format!("reading the answer: {e}")))?
        .to_bytes();
    driver.abort();
    let message = || error_message(&body);
    match status {
        StatusCode::OK => serde_json::from_slice(&body).map_err(|e| EnrollError::Answer {
            url: url.clone(),
            reason: e.to_string(),
        }),
        StatusCode::UNAUTHORIZED => Err(EnrollError::InvalidToken {
            url: url.clone(),
            message: message(),
        }),
        StatusCode::BAD_REQUEST => Err(EnrollError::BadRequest {
            url: url.clone(),
            message: message(),
        }),
        StatusCode::TOO_MANY_REQUESTS => Err(EnrollError::RateLimited {
            url: url.clone(),
            retry_after,
        }),
        other => Err(EnrollError::Status {
            url: url.clone(),
            status: other.as_u16(),
            message: message(),
        }),
    }
}

/// The `error` of a JSON error body, or the body's first line.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(body) {
        return e.error;
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(no message)".to_owned()
    } else {
        line.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{node_key_and_csr, Ca};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn setup() -> (tempfile::TempDir, Ca, EnrollToken) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(&dir.path().join("pki"), "test CA").expect("ca");
        let token = EnrollToken::new(&b64(b"id"), &b64(b"secret"), ca.cert_der()).expect("token");
        (dir, ca, token)
    }

    fn answer(ca: &Ca, node: &str) -> EnrollResponse {
        let node = NodeId::new(node).expect("node");
        let request = node_key_and_csr(&node).expect("csr");
        let issued = ca
            .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
            .expect("issue");
        EnrollResponse {
            node: node.to_string(),
            certificate: issued.cert_pem,
            ca: ca.cert_pem().to_owned(),
            broker: "mqtts://127.0.0.1:8883".into(),
            expires_at: "2030-01-01T00:00:00Z".into(),
            site: None,
            ancestors: Vec::new(),
        }
    }

    #[test]
    fn urls() {
        let t = target("http://127.0.0.1:8080").expect("url");
        assert_eq!(t.url, "http://127.0.0.1:8080/api/v1/enroll");
        assert_eq!(
            (t.https, t.port, t.host.as_str()),
            (false, 8080, "127.0.0.1")
        );
        let t = target("https://hub.example/vigil/").expect("url");
        assert_eq!(t.url, "https://hub.example/vigil/api/v1/enroll");
        assert_eq!(t.port, 443);
        let t = target("https://[::1]:9").expect("url");
        assert_eq!(t.host, "::1");
        for bad in ["127.0.0.1:8080", "ftp://x", "http://", "mqtt://x:1883"] {
            let err = target(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn an_answer_from_the_pinned_ca_for_this_node_is_accepted() {
        let (_dir, ca, token) = setup();
        let node = NodeId::new("gw-1").expect("node");
        let ok = verify_answer("u", &token, &node, answer(&ca, "gw-1")).expect("accepted");
        assert_eq!(ok.node, node);
        assert_eq!(ok.ca_fingerprint, ca.fingerprint());
    }

    #[test]
    fn another_ca_is_refused_by_its_pin() {
        let (_dir, _ca, token) = setup();
        let (_dir2, other, _) = setup();
        let node = NodeId::new("gw-1").expect("node");
        let err = verify_answer("u", &token, &node, answer(&other, "gw-1")).expect_err("pin");
        assert!(matches!(err, EnrollError::PinMismatch { .. }), "{err}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let (_dir, ca, token) = setup();
        let (_dir2, other, _) = setup();
        let node = NodeId::new("gw-1").expect("node");
        let mut a = answer(&other, "gw-1");
        a.ca = ca.cert_pem().to_owned();
        let err = verify_answer("u", &token, &node, a).expect_err("chain");
        assert!(matches!(err, EnrollError::Chain { .. }), "{err}");
    }

    #[test]
    fn a_certificate_for_another_node_is_refused() {
        let (_dir, ca, token) = setup();
        let node = NodeId::new("gw-2").expect("node");
        let err = verify_answer("u", &token, &node, answer(&ca, "gw-1")).expect_err("node");
        assert!(matches!(err, EnrollError::NodeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("gw-1"), "{err}");
    }
}
