//! The gate's Prometheus metrics, defined once and registered into the owner's registry
//! (like [`LinkMetrics`](crate::LinkMetrics): create one [`GateMetrics`] per registry).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `vigil_gate_connections` | | node connections open through the gate |
//! | `vigil_gate_connections_total` | | node connections that passed the TLS handshake |
//! | `vigil_gate_pending_connections` | | connections accepted that have not authenticated yet (TLS handshake and CONNECT under way) |
//! | `vigil_gate_handshake_failures_total` | reason | TLS handshakes refused or failed: `unknown_ca`, `expired`, `revoked`, `no_certificate`, `bad_certificate`, `not_tls`, `timeout`, `io`, `other`; and `connect_timeout`, a handshake with no CONNECT in time |
//! | `vigil_gate_refused_total` | reason | connections refused before the handshake: `capacity` (the gate is full), `per_address` (too many unauthenticated connections from the address), `pending` (too many unauthenticated connections in all) |
//! | `vigil_gate_denials_total` | reason | connections closed for an ACL violation, by [`DenialReason`] |
//! | `vigil_gate_denial_records_dropped_total` | | denial records the owner had no room for (logged and counted, not audited) |
//! | `vigil_gate_revoked_closed_total` | | live connections closed because their certificate was revoked |

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::acl::DenialReason;

/// Metric names, defined once.
pub mod names {
    /// Open connections.
    pub const CONNECTIONS: &str = "vigil_gate_connections";
    /// Connections past the handshake.
    pub const CONNECTIONS_TOTAL: &str = "vigil_gate_connections_total";
    /// Connections not authenticated yet.
    pub const PENDING_CONNECTIONS: &str = "vigil_gate_pending_connections";
    /// Handshakes failed, by reason.
    pub const HANDSHAKE_FAILURES: &str = "vigil_gate_handshake_failures_total";
    /// Connections refused before the handshake, by reason.
    pub const REFUSED: &str = "vigil_gate_refused_total";
    /// ACL denials, by reason.
    pub const DENIALS: &str = "vigil_gate_denials_total";
    /// Denial records not queued for the owner.
    pub const DENIAL_RECORDS_DROPPED: &str = "vigil_gate_denial_records_dropped_total";
    /// Live connections closed on revocation.
    pub const REVOKED_CLOSED: &str = "vigil_gate_revoked_closed_total";
}

/// The labels of `vigil_gate_handshake_failures_total`.
pub const HANDSHAKE_FAILURE_REASONS: [&str; 10] = [
    "unknown_ca",
    "expired",
    "revoked",
    "no_certificate",
    "bad_certificate",
    "not_tls",
    "timeout",
    "connect_timeout",
    "io",
    "other",
];

/// Every metric of the gate. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GateMetrics {
    pub(crate) connections: IntGauge,
    pub(crate) connections_total: IntCounter,
    pub(crate) pending_connections: IntGauge,
    pub(crate) handshake_failures: IntCounterVec,
    pub(crate) refused: IntCounterVec,
    pub(crate) denials: IntCounterVec,
    pub(crate) denial_records_dropped: IntCounter,
    pub(crate) revoked_closed: IntCounter,
}

impl GateMetrics {
    /// The TLS handshakes refused or failed so far, by reason
    /// ([`HANDSHAKE_FAILURE_REASONS`]): what the owner watches to raise an alarm.
    pub fn handshake_failures(&self) -> Vec<(&'static str, u64)> {
        HANDSHAKE_FAILURE_REASONS
            .iter()
            .map(|&reason| {
                (
                    reason,
                    self.handshake_failures.with_label_values(&[reason]).get(),
                )
            })
            .collect()
    }
    /// Creates the metrics and registers them in `registry` (every label of every reason
    /// starts at zero, so dashboards see them before the first failure). Fails if they are
    /// already registered there.
    pub fn new(registry: &Registry) -> prometheus::Result<GateMetrics> {
        use names::*;
        let connections = IntGauge::new(CONNECTIONS, "Node connections open through the gate.")?;
        let connections_total = IntCounter::new(
            CONNECTIONS_TOTAL,
            "Node connections that passed the TLS handshake.",
        )?;
        let pending_connections = IntGauge::new(
            PENDING_CONNECTIONS,
            "Connections accepted that have not authenticated yet (TLS handshake and CONNECT).",
        )?;
        let handshake_failures = IntCounterVec::new(
            Opts::new(
                HANDSHAKE_FAILURES,
                "TLS handshakes refused or failed, by reason.",
            ),
            &["reason"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                REFUSED,
                "Connections refused before the TLS handshake, by reason.",
            ),
            &["reason"],
        )?;
        let denials = IntCounterVec::new(
            Opts::new(
                DENIALS,
                "Connections closed for an access control violation, by reason.",
            ),
            &["reason"],
        )?;
        let denial_records_dropped = IntCounter::new(
            DENIAL_RECORDS_DROPPED,
            "Gate denial records the owner had no room for (logged, not audited).",
        )?;
        let revoked_closed = IntCounter::new(
            REVOKED_CLOSED,
            "Live connections closed because their certificate was revoked.",
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_total.clone()))?;
        registry.register(Box::new(pending_connections.clone()))?;
        registry.register(Box::new(handshake_failures.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(denials.clone()))?;
        registry.register(Box::new(denial_records_dropped.clone()))?;
        registry.register(Box::new(revoked_closed.clone()))?;
        for reason in HANDSHAKE_FAILURE_REASONS {
            handshake_failures.with_label_values(&[reason]);
        }
        for refusal in super::admission::Refusal::ALL {
            refused.with_label_values(&[refusal.as_str()]);
        }
        for reason in DenialReason::ALL {
            denials.with_label_values(&[reason.as_str()]);
        }
        Ok(GateMetrics {
            connections,
            connections_total,
            pending_connections,
            handshake_failures,
            refused,
            denials,
            denial_records_dropped,
            revoked_closed,
        })
    }

    pub(crate) fn handshake_failed(&self, reason: &str) {
        self.handshake_failures.with_label_values(&[reason]).inc();
    }

    pub(crate) fn denied(&self, reason: DenialReason) {
        self.denials.with_label_values(&[reason.as_str()]).inc();
    }
}
