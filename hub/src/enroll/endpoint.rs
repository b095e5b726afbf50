//! `POST /api/v1/enroll`: a node exchanges a one-time token and a CSR for its certificate.
//!
//! | request | answer |
//! |---|---|
//! | `{"token": "VGL1…", "csr": "<PEM>", "kind"}` | 200 `{"node", "certificate", "ca", "broker", "expires_at", "site", "ancestors"}` (`ancestors`: this hub, then the hubs above it) |
//! | a token unknown, used, expired, with a wrong secret, or not a token | 401 `{"error": "invalid or expired enrollment token"}` — one message for all |
//! | a CSR that does not parse, whose signature fails, whose key is not ECDSA P-256 | 400 naming what is wrong (the token stays usable) |
//! | a `"kind"` (`hub`, `gateway`) other than the token's (`enroll-token --kind`) | 403 naming both and the token to issue (the token stays usable, for a request of its kind) |
//! | a body that is not that JSON | 400 |
//! | too many failures from one client address | 429 with `Retry-After` |
//!
//! No session is needed: the token is the credential. The certificate names the node the
//! token was issued for, whatever the CSR's subject says; only the CSR's public key is
//! used. The token is consumed, the certificate recorded and the enrollment audited in one
//! transaction; every refused attempt is audited too (actor `client:<address>`, action
//! `node.enroll_refused`, with the reason), and counted by outcome.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_core::{NodeId, Timestamp};
use vigil_pki::{EnrollRequest, EnrollResponse, EnrollToken, IssuedCert, PkiError};
use vigil_store::{NewCertificate, RedeemError};

use super::{timestamp, EnrollState, ACTION_ENROLL, ACTION_ENROLL_REFUSED};
use crate::api::{ApiError, AppState};
use crate::auth::limiter::Refusal as LimitRefusal;

/// The one answer to every unusable token: a caller learns nothing about which it was.
pub const INVALID_TOKEN_MESSAGE: &str = "invalid or expired enrollment token";

/// The largest request body (a CSR is about 500 bytes).
const MAX_BODY: usize = 64 * 1024;

/// `POST /api/v1/enroll`.
pub async fn enroll(State(state): State<AppState>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match attempt(&state, client, request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Why an attempt got no certificate.
enum Refusal {
    TooMany(std::time::Duration),
    Token,
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::TooMany(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut resp = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(serde_json::json!({
                        "error": format!("too many failed enrollments from this address: try again in {secs} s"),
                        "retry_after": secs,
                    })),
                )
                    .into_response();
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
                resp
            }
            Refusal::Token => ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: INVALID_TOKEN_MESSAGE.to_owned(),
            }
            .into_response(),
            Refusal::Api(e) => e.into_response(),
        }
    }
}

async fn attempt(
    state: &AppState,
    client: IpAddr,
    request: Request,
) -> Result<EnrollResponse, Refusal> {
    let enroll = &state.enroll;
    // The limiter's "name" is the client too, counted as the limiter counts addresses (an
    // IPv6 client by its /64), so a client cannot rotate addresses to start over.
    let key = vigil_link::gate::admission::address_key(client).to_string();
    // Counted as a failure before the token is looked at (docs/ARCHITECTURE.md#security-hardening):
    // parallel attempts from one address cannot pass the limit, and one address has one
    // attempt in flight. The attempt is taken back when it never reached the token, cleared
    // on success, and stays counted (dropped) when the token or the request is refused.
    let attempt = match enroll.limiter.begin(&key, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(LimitRefusal::Wait(wait)) => {
            count(enroll, "rate_limited");
            tracing::debug!(%client, wait_s = wait.as_secs(), "enrollment refused: too many failures");
            return Err(Refusal::TooMany(wait));
        }
        Err(LimitRefusal::InProgress) => {
            count(enroll, "in_progress");
            return Err(Refusal::TooMany(std::time::Duration::from_secs(1)));
        }
    };
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        attempt.cancel();
        return Err(ApiError::bad_request("the enrollment body is too large").into());
    };
    let body: EnrollRequest = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            attempt.cancel();
            return Err(ApiError::bad_request(format!(
                "the body must be {{\"token\": \"VGL1…\", \"csr\": \"-----BEGIN CERTIFICATE REQUEST-----…\"}}: {e}"
            ))
            .into());
        }
    };
    let Some((token, id, secret_hash)) = parse_token(&body.token) else {
        refused(state, client, "malformed_token", None, None).await;
        return Err(Refusal::Token);
    };
    let Some(broker) = enroll.broker() else {
        attempt.cancel();
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the hub's broker is not running yet: try again in a moment".to_owned(),
        }
        .into());
    };
    let now = Timestamp::now();
    let used_by = format!("client:{client}");
    let issuer = enroll.clone();
    let csr = body.csr;
    let kind = match body.kind {
        vigil_pki::EnrollKind::Hub => vigil_store::NodeKind::Hub,
        vigil_pki::EnrollKind::Gateway => vigil_store::NodeKind::Gateway,
    };
    let token_id = token.id().to_owned();
    let audit_token = token_id.clone();
    let client_text = client.to_string();
    let outcome = state
        .store
        .call(move |s| {
            let result = s.enrollment_redeem(&id, &secret_hash, now, &used_by, |t| {
                issue(&issuer, t, &csr, kind, &audit_token, &client_text)
            });
            match result {
                Err(RedeemError::Store(e)) => Err(e),
                // This hub's own chain, for the answer.
                Ok(redeemed) => Ok(Ok((redeemed, s.ancestors()?))),
                Err(other) => Ok(Err(other)),
            }
        })
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            attempt.cancel();
            return Err(ApiError::from(err).into());
        }
    };
    match outcome {
        Ok((redeemed, above)) => {
            attempt.succeeded();
            count(enroll, "enrolled");
            let cert = redeemed.issued;
            tracing::info!(node = %cert.node, serial = %cert.serial, %client, token = %token_id, "node enrolled");
            Ok(EnrollResponse {
                node: cert.node.to_string(),
                certificate: cert.cert_pem,
                ca: enroll.pki.ca().cert_pem().to_owned(),
                broker,
                expires_at: timestamp(cert.not_after).to_string(),
                site: redeemed.token.site.clone(),
                ancestors: std::iter::once(enroll.node.to_string())
                    .chain(above.iter().map(ToString::to_string))
                    .collect(),
            })
        }
        Err(RedeemError::Refused { reason, node }) => {
            refused(state, client, reason.as_str(), Some(&token_id), node).await;
            Err(Refusal::Token)
        }
        Err(RedeemError::Issue(IssueRefusal::Kind { node, token, asked })) => {
            count(enroll, "wrong_kind");
            let message = wrong_kind_message(&node, token, asked);
            tracing::warn!(%client, %node, token = token.as_str(), asked = asked.as_str(), "enrollment refused: wrong kind");
            audit_refusal(
                state,
                client,
                "wrong_kind",
                Some(&token_id),
                Some(node),
                Some(&message),
            )
            .await;
            Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message,
            }
            .into())
        }
        Err(RedeemError::Issue(IssueRefusal::Pki(error))) => {
            count(enroll, "bad_csr");
            let message = match &error {
                PkiError::Csr(_) => error.to_string(),
                other => format!("certificate signing request refused: {other}"),
            };
            audit_refusal(
                state,
                client,
                "bad_csr",
                Some(&token_id),
                None,
                Some(&message),
            )
            .await;
            Err(ApiError::bad_request(message).into())
        }
        Err(RedeemError::Store(e)) => Err(ApiError::from(e).into()),
    }
}

/// The token, its id (8 bytes) and the SHA-256 of its secret; `None` when `text` is not a
/// token with an 8-byte id.
pub fn parse_token(text: &str) -> Option<(EnrollToken, [u8; 8], [u8; 32])> {
    let token: EnrollToken = text.parse().ok()?;
    let (id, secret_hash) = token.lookup_key()?;
    Some((token, id, secret_hash))
}

/// Why no certificate was issued for a usable token (the token stays usable).
enum IssueRefusal {
    /// The request's kind is not the token's.
    Kind {
        /// The token's node.
        node: String,
        /// The token's kind.
        token: vigil_store::NodeKind,
        /// The request's.
        asked: vigil_store::NodeKind,
    },
    /// The CSR, or signing.
    Pki(PkiError),
}

impl From<PkiError> for IssueRefusal {
    fn from(e: PkiError) -> Self {
        IssueRefusal::Pki(e)
    }
}

/// The answer to a request whose kind is not its token's: both kinds, and what to do.
fn wrong_kind_message(
    node: &str,
    token: vigil_store::NodeKind,
    asked: vigil_store::NodeKind,
) -> String {
    let fix = match asked {
        vigil_store::NodeKind::Hub => format!(
            "on this hub, issue a token with `vigil-hub enroll-token --node {node} --site SITE --kind hub`"
        ),
        vigil_store::NodeKind::Gateway => format!(
            "on this hub, issue a token with `vigil-hub enroll-token --node {node} --site SITE` (a gateway's, without --kind hub)"
        ),
    };
    format!(
        "this token enrolls {node} as a {}, but the request enrolls a {} ({} enroll): {fix}; \
         the token was not used",
        token.as_str(),
        asked.as_str(),
        match asked {
            vigil_store::NodeKind::Hub => "vigil-hub",
            vigil_store::NodeKind::Gateway => "vigil-agent",
        },
    )
}

/// Issues the certificate for the token's node from `csr`, with its record and audit
/// entry; refuses a request whose `kind` is not the token's.
fn issue(
    enroll: &EnrollState,
    token: &vigil_store::EnrollmentToken,
    csr: &str,
    kind: vigil_store::NodeKind,
    token_id: &str,
    client: &str,
) -> Result<(IssuedCert, NewCertificate, vigil_store::AuditEntry), IssueRefusal> {
    if kind != token.kind {
        return Err(IssueRefusal::Kind {
            node: token.node.clone(),
            token: token.kind,
            asked: kind,
        });
    }
    let node = NodeId::new(&token.node).map_err(|e| PkiError::Certificate {
        what: "enrollment token".into(),
        reason: format!("its node {:?} is not a node id: {e}", token.node),
    })?;
    let issued = enroll
        .pki
        .ca()
        .issue_node(csr, &node, enroll.pki.node_cert_ttl())?;
    let der = vigil_pki::cert::cert_from_pem(&issued.cert_pem, "the issued certificate")?;
    let record = NewCertificate {
        serial: issued.serial.clone(),
        node: node.to_string(),
        not_before: timestamp(issued.not_before),
        not_after: timestamp(issued.not_after),
        issued_at: Timestamp::now(),
        fingerprint: vigil_pki::fingerprint(der.as_ref()),
        site: token.site.clone(),
        kind,
    };
    let audit = enroll.audit(
        &format!("client:{client}"),
        ACTION_ENROLL,
        node.as_str(),
        serde_json::json!({
            "serial": issued.serial,
            "not_after": record.not_after.to_string(),
            "token": token_id,
            "client": client,
            "site": token.site,
            "kind": kind.as_str(),
        }),
    );
    Ok((issued, record, audit))
}

fn count(enroll: &EnrollState, outcome: &str) {
    enroll
        .metrics
        .enrollments
        .with_label_values(&[outcome])
        .inc();
}

/// Counts and audits a refused token (the attempt that brought it stays counted by the
/// limiter).
async fn refused(
    state: &AppState,
    client: IpAddr,
    reason: &str,
    token: Option<&str>,
    node: Option<String>,
) {
    count(&state.enroll, reason);
    tracing::warn!(%client, reason, token, "enrollment refused");
    audit_refusal(state, client, reason, token, node, None).await;
}

async fn audit_refusal(
    state: &AppState,
    client: IpAddr,
    reason: &str,
    token: Option<&str>,
    node: Option<String>,
    message: Option<&str>,
) {
    let entry = state.enroll.audit(
        &format!("client:{client}"),
        ACTION_ENROLL_REFUSED,
        node.as_deref().unwrap_or(""),
        serde_json::json!({
            "reason": reason,
            "token": token,
            "client": client.to_string(),
            "message": message,
        }),
    );
    if let Err(error) = state.store.call(move |s| s.audit_append(&entry)).await {
        tracing::error!(%error, "cannot audit a refused enrollment");
    }
}
