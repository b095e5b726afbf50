//! The metrics of enrollment and revocation, registered in the hub's registry (so
//! `GET /metrics` shows them with the rest). The broker gate's own (`vigil_gate_*`:
//! connections, denials) are registered there too, by the MQTT side.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Enrollment outcomes (the `outcome` label of [`EnrollMetrics::enrollments`]).
pub const OUTCOMES: [&str; 9] = [
    "enrolled",
    "unknown",
    "wrong_secret",
    "used",
    "expired",
    "malformed_token",
    "bad_csr",
    "rate_limited",
    "in_progress",
];

/// Enrollment and revocation counters.
#[derive(Debug, Clone)]
pub struct EnrollMetrics {
    /// Enrollment attempts by outcome ([`OUTCOMES`]).
    pub enrollments: IntCounterVec,
    /// Certificates revoked (through the API, or by the CLI and noticed while running).
    pub revocations: IntCounter,
    /// Denials of the broker gate, written to the audit log.
    pub gate_denials_audited: IntCounter,
}

impl EnrollMetrics {
    /// The counters, registered in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let enrollments = IntCounterVec::new(
            Opts::new(
                "vigil_hub_enrollments_total",
                "Enrollment attempts by outcome",
            ),
            &["outcome"],
        )?;
        let revocations = IntCounter::new(
            "vigil_hub_certificates_revoked_total",
            "Node certificates revoked",
        )?;
        let gate_denials_audited = IntCounter::new(
            "vigil_hub_gate_denials_audited_total",
            "Broker gate denials written to the audit log",
        )?;
        registry.register(Box::new(enrollments.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(gate_denials_audited.clone()))?;
        // Every outcome shows from the start, at 0.
        for outcome in OUTCOMES {
            enrollments.with_label_values(&[outcome]);
        }
        Ok(EnrollMetrics {
            enrollments,
            revocations,
            gate_denials_audited,
        })
    }
}
