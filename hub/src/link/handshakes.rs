//! Refused TLS handshakes at the broker gate, as a security alarm (docs/ARCHITECTURE.md#node-health-alarms).
//!
//! A handshake the gate refuses has no verified node: the gate sees a rustls error, not a
//! certificate it trusts, and a certificate from another CA names whoever made it. So these
//! refusals are not alarms about a child; they are one `security` alarm about **this hub's
//! broker** (subject: the hub itself, reason `handshake_refused`), its count the refusals
//! and its message the reasons seen — someone is knocking with a revoked, expired or foreign
//! certificate, or none. One alarm however many addresses knock: it is bounded by design.
//!
//! Only the reasons that say something about the caller's credentials count
//! ([`ALARMING`]: `unknown_ca`, `expired`, `revoked`, `no_certificate`,
//! `bad_certificate`). A port scan, a client that is not TLS, a network that drops the
//! connection mid-handshake (`not_tls`, `timeout`, `connect_timeout`, `io`, `other`) stays
//! counted in `vigil_gate_handshake_failures_total` and out of the operator's alarm list.
//!
//! [`HandshakeWatch`] is pure (counter snapshots in, a report out); [`watch`] samples the
//! gate's counters every [`INTERVAL`].

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use vigil_core::NodeId;
use vigil_link::gate::GateMetrics;

use crate::alarms::HubAlarms;

/// How often the gate's handshake counters are sampled.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The handshake failure reasons that raise the alarm.
pub const ALARMING: [&str; 5] = [
    "unknown_ca",
    "expired",
    "revoked",
    "no_certificate",
    "bad_certificate",
];

/// The alarm's reason.
pub const REASON: &str = "handshake_refused";

/// What a sample found new: the refusals since the last one, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// How many alarming refusals.
    pub count: u64,
    /// By reason, e.g. `revoked 3, unknown_ca 1`.
    pub detail: String,
}

/// The counters as last sampled.
#[derive(Debug, Clone, Default)]
pub struct HandshakeWatch {
    last: BTreeMap<&'static str, u64>,
}

impl HandshakeWatch {
    /// A watch that takes `snapshot` as its start (what was refused before is not news).
    pub fn starting_at(snapshot: &[(&'static str, u64)]) -> Self {
        let mut watch = HandshakeWatch::default();
        watch.observe(snapshot);
        watch
    }

    /// Takes a new sample of the counters; the alarming refusals since the last one, if
    /// any.
    pub fn observe(&mut self, snapshot: &[(&'static str, u64)]) -> Option<Refused> {
        let mut count = 0;
        let mut parts = Vec::new();
        for &(reason, value) in snapshot {
            let before = self.last.insert(reason, value).unwrap_or(0);
            let new = value.saturating_sub(before);
            if new > 0 && ALARMING.contains(&reason) {
                count += new;
                parts.push(format!("{reason} {new}"));
            }
        }
        (count > 0).then(|| Refused {
            count,
            detail: format!(
                "{count} TLS handshake(s) refused at the broker ({}): a client with a revoked, expired or foreign certificate, or none",
                parts.join(", ")
            ),
        })
    }
}

/// Samples `metrics` until `shutdown`, raising the alarm about `this` hub's broker when
/// handshakes were refused.
pub async fn watch(
    metrics: GateMetrics,
    this: NodeId,
    alarms: HubAlarms,
    shutdown: CancellationToken,
) {
    let mut state = HandshakeWatch::starting_at(&metrics.handshake_failures());
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                if let Some(refused) = state.observe(&metrics.handshake_failures()) {
                    alarms.security_counted(&this, REASON, refused.detail, refused.count);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_refusals_of_alarming_reasons_count() {
        let mut watch = HandshakeWatch::starting_at(&[("revoked", 2), ("io", 5)]);
        assert_eq!(
            watch.observe(&[("revoked", 2), ("io", 9)]),
            None,
            "io is noise"
        );
        let refused = watch
            .observe(&[("revoked", 5), ("unknown_ca", 1), ("io", 9)])
            .expect("news");
        assert_eq!(refused.count, 4);
        assert!(
            refused.detail.contains("revoked 3, unknown_ca 1"),
            "{}",
            refused.detail
        );
        assert_eq!(
            watch.observe(&[("revoked", 5), ("unknown_ca", 1)]),
            None,
            "nothing new"
        );
    }

    #[test]
    fn what_was_refused_before_the_start_is_not_news() {
        let mut watch = HandshakeWatch::starting_at(&[("expired", 7)]);
        assert_eq!(watch.observe(&[("expired", 7)]), None);
    }
}
