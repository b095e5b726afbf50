//! Enrollment, the hub's side
//! (docs/ARCHITECTURE.md#certificate-authority-and-enrollment: a hub is the
//! certificate authority of its children; an installer enrolls a gateway with a one-time
//! token; a node's identity is its certificate).
//!
//! | what | where |
//! |---|---|
//! | `vigil-hub enroll-token --node ID --site SITE [--kind hub] --ttl 1h` — a one-time token binding a node of that kind to a site subtree, audited | [`token`] |
//! | `vigil-hub nodes` — the nodes bound here, their sites and certificates | [`command`] |
//! | `POST /api/v1/enroll` `{"token", "csr"}` → the node's certificate, the CA, the broker | [`endpoint`] |
//! | `vigil-hub revoke --node ID [--serial S]`, `vigil-hub unbind --node ID`, `vigil-hub broker-config --out DIR` (the command lines) | [`command`] |
//! | `vigil-hub enroll --hub URL --token -` — this hub enrolls with its parent | [`parent`] |
//!
//! The token format (`vigil_pki::enrollment::token`) and the node's side of the exchange
//! (`vigil_pki::enroll_node`) are shared with `vigil-agent enroll`. The store keeps tokens (only the SHA-256 of their
//! secret), issued certificates and revocations (`vigil_store::enrollment`); a token is
//! consumed, its certificate recorded and the enrollment audited in one transaction.

pub mod args;
pub mod command;
pub mod endpoint;
pub mod metrics;
pub mod parent;
pub mod start;
pub mod token;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use vigil_core::{NodeId, Timestamp};
use vigil_store::AuditEntry;

use crate::auth::{LimitPolicy, SignInLimiter};
use crate::pki::HubPki;
pub use metrics::EnrollMetrics;

/// Audit action of a token issued.
pub const ACTION_TOKEN: &str = "enroll_token.add";
/// Audit action of an enrollment.
pub const ACTION_ENROLL: &str = "node.enroll";
/// Audit action of a refused enrollment.
pub const ACTION_ENROLL_REFUSED: &str = "node.enroll_refused";
/// Audit action of a revocation.
pub const ACTION_REVOKE: &str = "node.revoke";
/// Audit action of a binding removed (`vigil-hub unbind`).
pub const ACTION_UNBIND: &str = "node.unbind";
/// Audit action of a packet the broker gate refused.
pub const ACTION_MQTT_DENIED: &str = "mqtt.denied";

/// The longest `--ttl` of an enrollment token.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the enrollment endpoint and the node admin endpoints share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EnrollState {
    /// The CA and the live revocations.
    pub pki: HubPki,
    /// This hub.
    pub node: NodeId,
    /// The counters.
    pub metrics: EnrollMetrics,
    /// Failed enrollments per client address (like sign-ins).
    pub limiter: SignInLimiter,
    /// Where the CRL for an external broker is rewritten at every revocation.
    pub crl_path: Option<std::path::PathBuf>,
    broker: Arc<RwLock<Option<String>>>,
}

impl EnrollState {
    /// The state for hub `node`; enrollments are rate-limited by `policy`; `broker` is the
    /// URL children are told, when known before the broker runs (see
    /// [`set_broker`](Self::set_broker)).
    pub fn new(
        pki: HubPki,
        node: NodeId,
        metrics: EnrollMetrics,
        policy: LimitPolicy,
        broker: Option<String>,
    ) -> Self {
        EnrollState {
            pki,
            node,
            metrics,
            limiter: SignInLimiter::new(policy),
            crl_path: None,
            broker: Arc::new(RwLock::new(broker)),
        }
    }

    /// Sets the broker URL children are told (once the broker runs and its port is known),
    /// unless one was configured.
    pub fn set_broker_if_unset(&self, url: String) {
        let mut broker = self.broker.write().unwrap_or_else(PoisonError::into_inner);
        if broker.is_none() {
            *broker = Some(url);
        }
    }

    /// The broker URL children are told, once known.
    pub fn broker(&self) -> Option<String> {
        self.broker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An audit entry on this hub.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> AuditEntry {
        audit_entry(&self.node, actor, action, target, details)
    }
}

/// An audit entry on hub `node`, now.
pub fn audit_entry(
    node: &NodeId,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        at: Timestamp::now(),
        node: node.to_string(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        details,
    }
}

/// A [`std::time::SystemTime`] as a [`Timestamp`].
pub fn timestamp(t: std::time::SystemTime) -> Timestamp {
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Timestamp::from_millis(ms)
}
