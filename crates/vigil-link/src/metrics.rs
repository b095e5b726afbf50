//! The link's Prometheus metrics, defined once and registered into the owner's registry.
//!
//! One [`LinkMetrics`] serves every link of a process — a hub's uplink and its downlinks
//! share it — so the owner creates it once with [`LinkMetrics::new`] and hands clones to each
//! link. Labels: `link` is the outbox link as this node names it (`parent`, `child:{node}`),
//! or `downlinks` for a parent's own broker connection; `lane` is `critical` or `normal`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `vigil_link_batches_sent_total` | link, lane | batches published (resends included) |
//! | `vigil_link_events_sent_total` | link, lane | events published (resends included) |
//! | `vigil_link_batches_acked_total` | link, lane | batches completed by the peer's acks |
//! | `vigil_link_events_acked_total` | link, lane | outbox records deleted after the peer's acks |
//! | `vigil_link_acks_received_total` | link, lane | acks received |
//! | `vigil_link_resends_total` | link, reason | rewinds: `timeout`, `reconnect`, `store_error` |
//! | `vigil_link_ack_rtt_seconds` | link | batch published → ack received |
//! | `vigil_link_backlog_events` | link, lane | outbox records waiting for an ack |
//! | `vigil_link_state` | link | 0 disconnected, 1 connecting, 2 connected |
//! | `vigil_link_connects_total` | link | connections established to the broker |
//! | `vigil_link_decode_errors_total` | label | incoming publishes dropped, by [`InboundError::label`](crate::InboundError::label) |
//! | `vigil_link_batches_received_total` | link, lane | batches received and committed |
//! | `vigil_link_events_received_total` | link, outcome | events received: `applied` or `duplicate` |
//! | `vigil_link_gaps_total` | link | batches refused because one before them is missing |
//! | `vigil_link_apply_errors_total` | link | batches the store could not commit (not acked) |
//! | `vigil_link_events_forwarded_total` | lane | events queued for this node's parent |
//! | `vigil_link_undeliverable_total` | link, lane | outbox records that cannot be sent and were dropped |
//! | `vigil_link_children` | state | children online / offline |
//! | `vigil_link_audit_records_sent_total` | link | audit records published (resends included) |
//! | `vigil_link_audit_records_received_total` | link, outcome | audit records received: `applied`, `duplicate` or `conflict` (a different record under a number already held) |
//! | `vigil_link_audit_chain_breaks_total` | link | audit records received that do not chain to the trail held here |
//! | `vigil_link_audit_trail_mismatches_total` | kind (`behind`, `forked`) | children found with an audit log behind, or different from, the copy held here (counted when found, not at every status) |
//! | `vigil_link_audit_trail_mismatched_children` | | children whose last reported audit tail disagrees with the copy held here |
//! | `vigil_link_refused_events_total` | reason | events, audit records and reported bindings a child sent that were refused, by [`FindingReason`](crate::FindingReason) (`unbound`, `site_outside_binding`, `foreign_origin`, `alert_not_through_child`, `foreign_audit`, `foreign_binding`) |

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use vigil_core::Lane;
use vigil_wire::LinkState;

/// Metric names, defined once.
pub mod names {
    /// Batches published.
    pub const BATCHES_SENT: &str = "vigil_link_batches_sent_total";
    /// Events published.
    pub const EVENTS_SENT: &str = "vigil_link_events_sent_total";
    /// Batches completed by acks.
    pub const BATCHES_ACKED: &str = "vigil_link_batches_acked_total";
    /// Outbox records deleted after acks.
    pub const EVENTS_ACKED: &str = "vigil_link_events_acked_total";
    /// Acks received.
    pub const ACKS_RECEIVED: &str = "vigil_link_acks_received_total";
    /// Rewinds, by reason.
    pub const RESENDS: &str = "vigil_link_resends_total";
    /// Round trip batch → ack.
    pub const ACK_RTT: &str = "vigil_link_ack_rtt_seconds";
    /// Outbox backlog.
    pub const BACKLOG: &str = "vigil_link_backlog_events";
    /// Connection state.
    pub const STATE: &str = "vigil_link_state";
    /// Connections established.
    pub const CONNECTS: &str = "vigil_link_connects_total";
    /// Incoming publishes dropped.
    pub const DECODE_ERRORS: &str = "vigil_link_decode_errors_total";
    /// Batches received and committed.
    pub const BATCHES_RECEIVED: &str = "vigil_link_batches_received_total";
    /// Events received.
    pub const EVENTS_RECEIVED: &str = "vigil_link_events_received_total";
    /// Batches after a gap.
    pub const GAPS: &str = "vigil_link_gaps_total";
    /// Batches the store refused.
    pub const APPLY_ERRORS: &str = "vigil_link_apply_errors_total";
    /// Events queued for the parent.
    pub const EVENTS_FORWARDED: &str = "vigil_link_events_forwarded_total";
    /// Outbox records dropped as undeliverable.
    pub const UNDELIVERABLE: &str = "vigil_link_undeliverable_total";
    /// Children by state.
    pub const CHILDREN: &str = "vigil_link_children";
    /// Audit records published.
    pub const AUDIT_SENT: &str = "vigil_link_audit_records_sent_total";
    /// Audit records received, by outcome.
    pub const AUDIT_RECEIVED: &str = "vigil_link_audit_records_received_total";
    /// Audit records received that break their origin's chain.
    pub const AUDIT_CHAIN_BREAKS: &str = "vigil_link_audit_chain_breaks_total";
    /// Children found with an audit log behind or different from the copy held here.
    pub const AUDIT_TRAIL_MISMATCHES: &str = "vigil_link_audit_trail_mismatches_total";
    /// Children whose last reported audit tail disagrees with the copy held here.
    pub const AUDIT_TRAIL_MISMATCHED_CHILDREN: &str = "vigil_link_audit_trail_mismatched_children";
    /// What children sent that was refused, by reason.
    pub const REFUSED_EVENTS: &str = "vigil_link_refused_events_total";
}

/// Every metric of the link engine. Cheap to clone (the metrics are shared).
#[derive(Debug, Clone)]
pub struct LinkMetrics {
    pub(crate) batches_sent: IntCounterVec,
    pub(crate) events_sent: IntCounterVec,
    pub(crate) batches_acked: IntCounterVec,
    pub(crate) events_acked: IntCounterVec,
    pub(crate) acks_received: IntCounterVec,
    pub(crate) resends: IntCounterVec,
    pub(crate) ack_rtt: HistogramVec,
    pub(crate) backlog: IntGaugeVec,
    pub(crate) state: IntGaugeVec,
    pub(crate) connects: IntCounterVec,
    pub(crate) decode_errors: IntCounterVec,
    pub(crate) batches_received: IntCounterVec,
    pub(crate) events_received: IntCounterVec,
    pub(crate) gaps: IntCounterVec,
    pub(crate) apply_errors: IntCounterVec,
    pub(crate) events_forwarded: IntCounterVec,
    pub(crate) undeliverable: IntCounterVec,
    pub(crate) children: IntGaugeVec,
    pub(crate) audit_sent: IntCounterVec,
    pub(crate) audit_received: IntCounterVec,
    pub(crate) audit_chain_breaks: IntCounterVec,
    pub(crate) audit_trail_mismatches: IntCounterVec,
    pub(crate) audit_trail_mismatched_children: IntGaugeVec,
    pub(crate) refused_events: IntCounterVec,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl LinkMetrics {
    /// Creates the metrics and registers them in `registry`. Fails if they are already
    /// registered there: create one `LinkMetrics` per registry and clone it.
    pub fn new(registry: &Registry) -> prometheus::Result<LinkMetrics> {
        use names::*;
        let link_lane = &["link", "lane"][..];
        let ack_rtt = HistogramVec::new(
            HistogramOpts::new(
                ACK_RTT,
                "Seconds from publishing a batch to receiving its ack.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["link"],
        )?;
        registry.register(Box::new(ack_rtt.clone()))?;
        Ok(LinkMetrics {
            batches_sent: counter(
                registry,
                BATCHES_SENT,
                "Batches published, resends included.",
                link_lane,
            )?,
            events_sent: counter(
                registry,
                EVENTS_SENT,
                "Events published, resends included.",
                link_lane,
            )?,
            batches_acked: counter(
                registry,
                BATCHES_ACKED,
                "Batches completed by the peer's acks.",
                link_lane,
            )?,
            events_acked: counter(
                registry,
                EVENTS_ACKED,
                "Outbox records deleted after the peer acknowledged them.",
                link_lane,
            )?,
            acks_received: counter(
                registry,
                ACKS_RECEIVED,
                "Acks received from the peer.",
                link_lane,
            )?,
            resends: counter(
                registry,
                RESENDS,
                "Times what was in flight was rewound to be sent again, by reason.",
                &["link", "reason"],
            )?,
            ack_rtt,
            backlog: gauge(
                registry,
                BACKLOG,
                "Outbox records waiting for the peer's ack.",
                link_lane,
            )?,
            state: gauge(
                registry,
                STATE,
                "Broker connection: 0 disconnected, 1 connecting, 2 connected.",
                &["link"],
            )?,
            connects: counter(
                registry,
                CONNECTS,
                "Connections established to the broker.",
                &["link"],
            )?,
            decode_errors: counter(
                registry,
                DECODE_ERRORS,
                "Incoming publishes dropped, by reason.",
                &["label"],
            )?,
            batches_received: counter(
                registry,
                BATCHES_RECEIVED,
                "Batches received and committed.",
                link_lane,
            )?,
            events_received: counter(
                registry,
                EVENTS_RECEIVED,
                "Events received, applied or duplicate.",
                &["link", "outcome"],
            )?,
            gaps: counter(
                registry,
                GAPS,
                "Batches refused because an earlier batch is missing.",
                &["link"],
            )?,
            apply_errors: counter(
                registry,
                APPLY_ERRORS,
                "Batches the store could not commit (not acknowledged).",
                &["link"],
            )?,
            events_forwarded: counter(
                registry,
                EVENTS_FORWARDED,
                "Events queued for this node's parent.",
                &["lane"],
            )?,
            undeliverable: counter(
                registry,
                UNDELIVERABLE,
                "Outbox records that cannot be sent and were dropped.",
                link_lane,
            )?,
            audit_sent: counter(
                registry,
                AUDIT_SENT,
                "Audit records published, resends included.",
                &["link"],
            )?,
            audit_received: counter(
                registry,
                AUDIT_RECEIVED,
                "Audit records received: applied, duplicate or conflict.",
                &["link", "outcome"],
            )?,
            audit_chain_breaks: counter(
                registry,
                AUDIT_CHAIN_BREAKS,
                "Audit records received that do not chain to the trail held here.",
                &["link"],
            )?,
            audit_trail_mismatches: counter(
                registry,
                AUDIT_TRAIL_MISMATCHES,
                "Children found with an audit log behind, or different from, the copy held here.",
                &["kind"],
            )?,
            audit_trail_mismatched_children: gauge(
                registry,
                AUDIT_TRAIL_MISMATCHED_CHILDREN,
                "Children whose last reported audit tail disagrees with the copy held here.",
                &[],
            )?,
            children: gauge(registry, CHILDREN, "Children by state.", &["state"])?,
            refused_events: counter(
                registry,
                REFUSED_EVENTS,
                "Events, audit records and reported bindings children sent that were refused, by reason.",
                &["reason"],
            )?,
        })
    }

    pub(crate) fn set_state(&self, link: &str, state: LinkState) {
        let value = match state {
            LinkState::Disconnected => 0,
            LinkState::Connecting => 1,
            LinkState::Connected => 2,
        };
        self.state.with_label_values(&[link]).set(value);
    }

    pub(crate) fn sent(&self, link: &str, lane: Lane, events: usize) {
        let labels = [link, lane.as_str()];
        self.batches_sent.with_label_values(&labels).inc();
        self.events_sent
            .with_label_values(&labels)
            .inc_by(events as u64);
    }

    /// Counts audit records published on `link`.
    pub(crate) fn audit_sent(&self, link: &str, records: usize) {
        if records > 0 {
            self.audit_sent
                .with_label_values(&[link])
                .inc_by(records as u64);
        }
    }

    /// Counts what a committed batch's audit records did.
    pub(crate) fn audit_received(&self, link: &str, audit: &vigil_store::AuditApplied) {
        for (outcome, n) in [
            ("applied", audit.applied),
            ("duplicate", audit.duplicates),
            ("conflict", audit.conflicts),
        ] {
            if n > 0 {
                self.audit_received
                    .with_label_values(&[link, outcome])
                    .inc_by(n as u64);
            }
        }
        if audit.chain_breaks > 0 {
            self.audit_chain_breaks
                .with_label_values(&[link])
                .inc_by(audit.chain_breaks as u64);
        }
    }

    pub(crate) fn resend(&self, link: &str, reason: &str) {
        self.resends.with_label_values(&[link, reason]).inc();
    }

    pub(crate) fn decode_error(&self, label: &str) {
        self.decode_errors.with_label_values(&[label]).inc();
    }

    pub(crate) fn set_backlog(&self, link: &str, lane: Lane, records: u64) {
        self.backlog
            .with_label_values(&[link, lane.as_str()])
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_per_registry_and_exports_every_name() {
        let registry = Registry::new();
        let m = LinkMetrics::new(&registry).expect("register");
        assert!(
            LinkMetrics::new(&registry).is_err(),
            "twice in one registry"
        );
        // Touch one series of each so that gather() lists it.
        m.sent("parent", Lane::Critical, 3);
        m.batches_acked
            .with_label_values(&["parent", "critical"])
            .inc();
        m.events_acked
            .with_label_values(&["parent", "critical"])
            .inc();
        m.acks_received
            .with_label_values(&["parent", "critical"])
            .inc();
        m.resend("parent", "timeout");
        m.ack_rtt.with_label_values(&["parent"]).observe(0.01);
        m.set_backlog("parent", Lane::Normal, 5);
        m.set_state("parent", LinkState::Connected);
        m.connects.with_label_values(&["parent"]).inc();
        m.decode_error("malformed");
        m.batches_received
            .with_label_values(&["parent", "normal"])
            .inc();
        m.events_received
            .with_label_values(&["parent", "applied"])
            .inc();
        m.gaps.with_label_values(&["parent"]).inc();
        m.apply_errors.with_label_values(&["parent"]).inc();
        m.events_forwarded.with_label_values(&["critical"]).inc();
        m.undeliverable
            .with_label_values(&["parent", "normal"])
            .inc();
        m.children.with_label_values(&["online"]).set(1);
        m.audit_trail_mismatches
            .with_label_values(&["behind"])
            .inc();
        m.audit_trail_mismatched_children
            .with_label_values(&[] as &[&str])
            .set(1);
        m.refused_events.with_label_values(&["unbound"]).inc();
        let gathered: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        for name in [
            names::BATCHES_SENT,
            names::EVENTS_SENT,
            names::BATCHES_ACKED,
            names::EVENTS_ACKED,
            names::ACKS_RECEIVED,
            names::RESENDS,
            names::ACK_RTT,
            names::BACKLOG,
            names::STATE,
            names::CONNECTS,
            names::DECODE_ERRORS,
            names::BATCHES_RECEIVED,
            names::EVENTS_RECEIVED,
            names::GAPS,
            names::APPLY_ERRORS,
            names::EVENTS_FORWARDED,
            names::UNDELIVERABLE,
            names::CHILDREN,
            names::AUDIT_TRAIL_MISMATCHES,
            names::AUDIT_TRAIL_MISMATCHED_CHILDREN,
            names::REFUSED_EVENTS,
        ] {
            assert!(gathered.iter().any(|g| g == name), "{name} missing");
        }
    }
}
