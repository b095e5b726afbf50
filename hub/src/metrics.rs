//! The hub's Prometheus metrics, every name defined once here and rendered by `GET /metrics`.
//!
//! Counters move as things happen (requests, events ingested, actions, stream clients). The
//! figures that live in the store — open alerts per state, outbox backlog per link — and the
//! children's health are read when Prometheus scrapes ([`HubMetrics::refresh`]), so they are
//! never stale and cost nothing between scrapes.
//!
//! The link engine's metrics (`vigil_link_*`: batches, acks, resends, backlog, connection
//! state of each link) are registered in the same [`Registry`] by the MQTT side.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use vigil_store::{LaneState, StateCount};

/// Every metric the hub exports.
#[derive(Debug, Clone)]
pub struct HubMetrics {
    registry: Registry,
    /// HTTP requests by route template, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by route template, seconds.
    pub http_duration: HistogramVec,
    /// Open alerts by ISA-18.2 state and severity (refreshed on scrape).
    pub alerts: IntGaugeVec,
    /// Alert events received over the links (from children, or from the parent) and
    /// applied here, by event type.
    pub events_ingested: IntCounterVec,
    /// Operator actions recorded, by action.
    pub actions: IntCounterVec,
    /// Operator actions refused, by action and reason (`not_found`, `conflict`,
    /// `bad_request`).
    pub actions_refused: IntCounterVec,
    /// Directives (docs/ARCHITECTURE.md#directives) by event: `issued` here by an operator,
    /// `sent` (an issued one passed to the children), `received` from the parent (passed on
    /// and acknowledged up).
    pub directives: IntCounterVec,
    /// Sign-ins by outcome: `success`, `failure`, `rate_limited` (a name or address
    /// waiting), `in_progress` (refused: another attempt from the address was being
    /// checked), `overloaded` (refused: `[auth] sign_in_concurrency` checks were running).
    pub sign_ins: IntCounterVec,
    /// Requests refused for who made them, by status (`401`, `403`) and reason
    /// (`no_credentials`, `unknown_token`, `session_idle`, `csrf`, `role`, `scope`, …).
    pub auth_refusals: IntCounterVec,
    /// Clients connected to the live stream.
    pub sse_clients: IntGauge,
    /// Stream messages that slow clients missed (they got a `lagged` event instead).
    pub sse_lagged: IntCounter,
    /// Ingest notifications dropped because the live stream was saturated.
    pub live_dropped: IntCounter,
    /// Records waiting in each outbox lane (refreshed on scrape).
    pub outbox_backlog: IntGaugeVec,
    /// Direct children by state, `online` or `offline` (refreshed on scrape).
    pub children: IntGaugeVec,
    /// HTTP connections open (`crate::listener`).
    pub http_connections: IntGauge,
    /// HTTP connections closed as soon as accepted, by the cap that refused them
    /// (`max_connections`, `max_connections_per_address`).
    pub http_connections_refused: IntCounterVec,
    /// HTTP connections closed for a timeout, by phase: `tls_handshake`, `header` (waiting
    /// for a request's headers: a slow client, or a kept-alive one that sent nothing more)
    /// and `idle` (no byte moved either way).
    pub http_connection_timeouts: IntCounterVec,
    /// Alert events the hub wrote about its nodes itself (`crate::alarms`), by alarm kind
    /// (`node_offline`, `link_backlog`, `security`, `clock_skew`) and event (`raised`,
    /// `value_updated`, `cleared`).
    pub alarms: IntCounterVec,
    /// Alarm reports dropped: the alarm queue was full, or too many alarms were tracked.
    pub alarm_reports_dropped: IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are constants defined once below: a clash is a programming error caught by the
    // first test that builds the metrics.
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric registered once");
    metric
}

impl HubMetrics {
    /// A fresh registry with every hub metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let http_requests = counter(
            "vigil_hub_http_requests_total",
            "HTTP requests by route, method and status",
            &["route", "method", "status"],
        );
        let http_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "vigil_hub_http_request_duration_seconds",
                    "HTTP request latency by route (streams: until the response starts)",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["route"],
            )
            .expect("valid metric"),
        );
        let alerts = gauge(
            "vigil_hub_alerts",
            "Open alerts by ISA-18.2 state and severity",
            &["state", "severity"],
        );
        let events_ingested = counter(
            "vigil_hub_events_ingested_total",
            "Alert events received over the links (children, parent) and applied, by type",
            &["type"],
        );
        let actions = counter(
            "vigil_hub_operator_actions_total",
            "Operator actions recorded, by action",
            &["action"],
        );
        let actions_refused = counter(
            "vigil_hub_operator_actions_refused_total",
            "Operator actions refused, by action and reason",
            &["action", "reason"],
        );
        let directives = counter(
            "vigil_hub_directives_total",
            "Directives issued here, sent to the children, received from the parent",
            &["event"],
        );
        let sign_ins = counter(
            "vigil_hub_sign_ins_total",
            "Console sign-ins by outcome",
            &["outcome"],
        );
        let auth_refusals = counter(
            "vigil_hub_auth_refusals_total",
            "Requests refused for who made them, by status (401, 403) and reason",
            &["status", "reason"],
        );
        let sse_clients = register(
            &registry,
            IntGauge::new(
                "vigil_hub_sse_clients",
                "Clients connected to the live stream",
            )
            .expect("valid metric"),
        );
        let sse_lagged = register(
            &registry,
            IntCounter::new(
                "vigil_hub_sse_lagged_total",
                "Stream messages that slow clients missed",
            )
            .expect("valid metric"),
        );
        let live_dropped = register(
            &registry,
            IntCounter::new(
                "vigil_hub_live_stream_dropped_total",
                "Ingest notifications dropped because the live stream was saturated",
            )
            .expect("valid metric"),
        );
        let outbox_backlog = gauge(
            "vigil_hub_outbox_backlog_records",
            "Records waiting for acknowledgement, by link and lane",
            &["link", "lane"],
        );
        let children = gauge("vigil_hub_children", "Direct children by state", &["state"]);
        let http_connections = register(
            &registry,
            IntGauge::new("vigil_hub_http_connections", "HTTP connections open")
                .expect("valid metric"),
        );
        let http_connections_refused = counter(
            "vigil_hub_http_connections_refused_total",
            "HTTP connections closed as soon as accepted, by the cap that refused them",
            &["reason"],
        );
        for reason in ["max_connections", "max_connections_per_address"] {
            http_connections_refused.with_label_values(&[reason]);
        }
        let http_connection_timeouts = counter(
            "vigil_hub_http_connection_timeouts_total",
            "HTTP connections closed for a timeout, by phase (tls_handshake, header, idle, request)",
            &["phase"],
        );
        for phase in ["tls_handshake", "header", "idle", "request"] {
            http_connection_timeouts.with_label_values(&[phase]);
        }
        let alarms = counter(
            "vigil_hub_alarms_total",
            "Alert events the hub wrote about its nodes itself, by alarm kind and event",
            &["kind", "event"],
        );
        let alarm_reports_dropped = register(
            &registry,
            IntCounter::new(
                "vigil_hub_alarm_reports_dropped_total",
                "Alarm reports dropped: the alarm queue was full or too many alarms were tracked",
            )
            .expect("valid metric"),
        );
        HubMetrics {
            registry,
            http_requests,
            http_duration,
            alerts,
            events_ingested,
            actions,
            actions_refused,
            directives,
            sign_ins,
            auth_refusals,
            sse_clients,
            sse_lagged,
            live_dropped,
            outbox_backlog,
            children,
            http_connections,
            http_connections_refused,
            http_connection_timeouts,
            alarms,
            alarm_reports_dropped,
        }
    }

    /// Sets the figures read on scrape: open alerts per state and severity (a combination
    /// without open alerts has no series), the outbox lanes, the children.
    pub fn refresh(
        &self,
        states: &[StateCount],
        lanes: &[(String, vigil_core::Lane, LaneState)],
        children: (usize, usize),
    ) {
        self.alerts.reset();
        for s in states {
            self.alerts
                .with_label_values(&[s.state.as_str(), s.severity.as_str()])
                .set(i64::try_from(s.count).unwrap_or(i64::MAX));
        }
        self.outbox_backlog.reset();
        for (link, lane, state) in lanes {
            self.outbox_backlog
                .with_label_values(&[link.as_str(), lane.as_str()])
                .set(i64::try_from(state.backlog_records).unwrap_or(i64::MAX));
        }
        let (online, offline) = children;
        self.children
            .with_label_values(&["online"])
            .set(i64::try_from(online).unwrap_or(i64::MAX));
        self.children
            .with_label_values(&["offline"])
            .set(i64::try_from(offline).unwrap_or(i64::MAX));
    }

    /// The registry every metric is in: where the link engine registers its own
    /// (`vigil_link::LinkMetrics`), so that `GET /metrics` shows them too.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding well-formed families into a String cannot fail.
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for HubMetrics {
    fn default() -> Self {
        HubMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = HubMetrics::new();
        m.actions.with_label_values(&["ack"]).inc();
        m.refresh(
            &[StateCount {
                state: vigil_core::AlertState::ActiveUnack,
                severity: vigil_core::Severity::Critical,
                count: 3,
            }],
            &[],
            (2, 1),
        );
        let text = m.render();
        assert!(
            text.contains("vigil_hub_operator_actions_total{action=\"ack\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_hub_alerts{severity=\"critical\",state=\"active_unack\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("vigil_hub_children{state=\"offline\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE vigil_hub_sse_clients gauge"),
            "{text}"
        );
        assert!(
            text.contains("vigil_hub_http_connection_timeouts_total{phase=\"header\"} 0"),
            "{text}"
        );
        assert!(text.contains("vigil_hub_http_connections 0"), "{text}");
    }
}
