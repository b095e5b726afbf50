//! The broker gate's denials in the audit log: every packet the gate refused (a publish
//! or subscribe outside the node's topics, a client id that is not the node's) becomes an
//! audit record, aggregated and cut by the gate (docs/ARCHITECTURE.md#the-mtls-gate) — and
//! a `security` alarm about the node ([`HubAlarms::security_counted`],
//! docs/ARCHITECTURE.md#node-health-alarms): a refused publish is something an operator sees
//! and that escalates, not just a log line.
//!
//! The alarm is about the node the gate verified (the certificate's common name, from this
//! hub's CA): one open `security` alert per node, whose count grows with each denial record
//! (a record stands for every denial of the node in the gate's window), so a node that
//! hammers the gate costs one alert, not one per packet. Failed TLS handshakes are not
//! denials: they have no verified node (a certificate from another CA names whoever its
//! maker liked), so they are counted by the gate (`vigil_gate_handshake_failures_total`)
//! and logged, and not raised about any node.

use tokio_util::sync::CancellationToken;
use vigil_link::SharedStore;

use crate::alarms::HubAlarms;
use crate::enroll::EnrollState;

/// Until `shutdown` (or the gate stops): writes every denial record of the broker gate to
/// the audit log — actor the node, action `mqtt.denied`, target the topic (or client id;
/// cut to 256 bytes by the gate and then ending in `…`), with what was tried, why it was
/// refused, from where, and how many denials the record stands for (the gate aggregates a
/// node's repeats over a window: `count`, `first_at`, `last_at`) — counts it, and raises
/// (or counts into) the node's `security` alarm.
pub async fn audit_denials(
    mut denials: tokio::sync::mpsc::Receiver<vigil_link::gate::Denial>,
    store: SharedStore,
    enroll: EnrollState,
    alarms: HubAlarms,
    shutdown: CancellationToken,
) {
    loop {
        let denial = tokio::select! {
            () = shutdown.cancelled() => return,
            denial = denials.recv() => match denial {
                Some(denial) => denial,
                None => return,
            },
        };
        let topic = denial.topic.as_deref().unwrap_or("");
        let target = if denial.topic_truncated() {
            format!("{topic}…")
        } else {
            topic.to_owned()
        };
        alarms.security_counted(
            &denial.node,
            "mqtt_denied",
            format!(
                "the broker gate refused its {} of {:?} ({}) from {}",
                denial.action.as_str(),
                target,
                denial.reason.as_str(),
                denial.peer
            ),
            denial.count,
        );
        let entry = enroll.audit(
            denial.node.as_str(),
            crate::enroll::ACTION_MQTT_DENIED,
            &target,
            serde_json::json!({
                "action": denial.action.as_str(),
                "reason": denial.reason.as_str(),
                "peer": denial.peer.to_string(),
                "count": denial.count,
                "first_at": crate::enroll::timestamp(denial.at).to_string(),
                "last_at": crate::enroll::timestamp(denial.last_at).to_string(),
                "topic_bytes": denial.topic_bytes,
                "topic_truncated": denial.topic_truncated(),
            }),
        );
        match store.call(move |s| s.audit_append(&entry)).await {
            Ok(_) => enroll.metrics.gate_denials_audited.inc(),
            Err(error) => {
                tracing::error!(%error, node = %denial.node, "cannot audit a gate denial")
            }
        }
    }
}
