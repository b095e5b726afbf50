//! The agent's Prometheus metrics, every name defined once here.
//!
//! Each component gets its own struct of metrics (labelled by device or subscription), all
//! registered in one [`prometheus::Registry`] that `GET /metrics` renders.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric the agent exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub modbus: ModbusMetrics,
    pub mqtt: MqttMetrics,
    /// Detection: conditions by kind.
    pub detect: DetectMetrics,
    /// Alert management and the outbox.
    pub alerts: AlertMetrics,
}

/// Per Modbus device (`device` label).
#[derive(Debug, Clone)]
pub struct ModbusMetrics {
    /// Requests sent, by device.
    pub requests: IntCounterVec,
    /// Failed requests by device and kind: `timeout`, `exception`, `gateway` (a gateway
    /// answered for an absent device), `io`, `protocol`
    /// (garbage, wrong unit or transaction id), `decode` (a value the profile cannot read).
    pub errors: IntCounterVec,
    /// Round-trip time of successful requests, seconds.
    pub rtt: HistogramVec,
    /// Point values read.
    pub points_read: IntCounterVec,
    /// Completed scans.
    pub scans: IntCounterVec,
    /// 1 while the device answers, 0 while it is in communication loss.
    pub online: IntGaugeVec,
}

/// Per MQTT subscription (`subscription` label: its topic filter).
#[derive(Debug, Clone)]
pub struct MqttMetrics {
    /// Messages received.
    pub messages: IntCounterVec,
    /// Readings decoded from them.
    pub readings: IntCounterVec,
    /// Messages, or parts of messages (a JSON field, a Sparkplug metric), that could not be
    /// decoded, by `reason` (`not_json`, `field_missing`, `protobuf`, `unknown_alias`… see
    /// `source::mqtt::DecodeError::reason`).
    pub decode_errors: IntCounterVec,
    /// 1 while connected to the broker.
    pub connected: IntGaugeVec,
    /// `sparkplug_b`: rebirth requests (NCMD `Node Control/Rebirth`) sent to edge nodes whose
    /// data could not be interpreted (no birth seen, an unknown alias, a `seq` gap).
    pub rebirth_requests: IntCounterVec,
}

/// Detection (`vigil_conditions_total`, `vigil_detect_points`).
#[derive(Debug, Clone)]
pub struct DetectMetrics {
    /// Conditions from detectors and sources, by `kind` and `state` (`raised`, `cleared`).
    pub conditions: IntCounterVec,
    /// Points that run at least one rule detector.
    pub points: IntGauge,
}

/// Alert management and the outbox (`vigil_alert_*`, `vigil_alerts_open`,
/// `vigil_outbox_backlog_records`).
#[derive(Debug, Clone)]
pub struct AlertMetrics {
    /// Alert events recorded in the store and queued in the outbox, by `event` (`raised`,
    /// `cleared`, …) and `lane`.
    pub events: IntCounterVec,
    /// Failed attempts to record a step's events (they are kept and retried).
    pub record_errors: IntCounter,
    /// Events waiting to be recorded after a failed attempt.
    pub pending: IntGauge,
    /// Alerts open (not closed) on this node.
    pub open: IntGauge,
    /// Outbox records not yet acknowledged by the peer, by `link` and `lane`.
    pub outbox_backlog: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn plain_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Metrics {
    /// A fresh registry with every agent metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let rtt = HistogramVec::new(
            HistogramOpts::new("vigil_modbus_rtt_seconds", "Modbus request round-trip time")
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            &["device"],
        )
        .expect("valid metric definition");
        registry
            .register(Box::new(rtt.clone()))
            .expect("metric registered once");
        let modbus = ModbusMetrics {
            requests: counter(
                &registry,
                "vigil_modbus_requests_total",
                "Modbus requests sent",
                &["device"],
            ),
            errors: counter(
                &registry,
                "vigil_modbus_errors_total",
                "Failed Modbus requests by kind",
                &["device", "kind"],
            ),
            rtt,
            points_read: counter(
                &registry,
                "vigil_modbus_points_read_total",
                "Point values read over Modbus",
                &["device"],
            ),
            scans: counter(
                &registry,
                "vigil_modbus_scans_total",
                "Completed Modbus scans",
                &["device"],
            ),
            online: gauge(
                &registry,
                "vigil_modbus_device_online",
                "1 while the device answers",
                &["device"],
            ),
        };
        let mqtt = MqttMetrics {
            messages: counter(
                &registry,
                "vigil_mqtt_messages_total",
                "MQTT messages received",
                &["subscription"],
            ),
            readings: counter(
                &registry,
                "vigil_mqtt_readings_total",
                "Readings decoded from MQTT messages",
                &["subscription"],
            ),
            decode_errors: counter(
                &registry,
                "vigil_mqtt_decode_errors_total",
                "MQTT messages or parts of them (a field, a metric) that could not be decoded, by reason",
                &["subscription", "reason"],
            ),
            connected: gauge(
                &registry,
                "vigil_mqtt_connected",
                "1 while connected to the broker",
                &["subscription"],
            ),
            rebirth_requests: counter(
                &registry,
                "vigil_mqtt_sparkplug_rebirth_requests_total",
                "Sparkplug B rebirth requests (NCMD Node Control/Rebirth) sent to edge nodes whose data could not be interpreted",
                &["subscription"],
            ),
        };
        let detect = DetectMetrics {
            conditions: counter(
                &registry,
                "vigil_conditions_total",
                "Conditions reported by detectors and sources, by kind and state (raised, cleared)",
                &["kind", "state"],
            ),
            points: plain_gauge(
                &registry,
                "vigil_detect_points",
                "Points that run at least one rule detector",
            ),
        };
        let alerts = AlertMetrics {
            events: counter(
                &registry,
                "vigil_alert_events_total",
                "Alert events recorded in the store and queued in the outbox, by event and lane",
                &["event", "lane"],
            ),
            record_errors: {
                let c = IntCounter::new(
                    "vigil_alert_record_errors_total",
                    "Failed attempts to record alert events (they are retried)",
                )
                .expect("valid metric definition");
                registry
                    .register(Box::new(c.clone()))
                    .expect("metric registered once");
                c
            },
            pending: plain_gauge(
                &registry,
                "vigil_alert_events_pending",
                "Alert events waiting to be recorded after a failed attempt",
            ),
            open: plain_gauge(&registry, "vigil_alerts_open", "Alerts open on this node"),
            outbox_backlog: gauge(
                &registry,
                "vigil_outbox_backlog_records",
                "Outbox records not yet acknowledged by the peer, by link and lane",
                &["link", "lane"],
            ),
        };
        Metrics {
            registry,
            modbus,
            mqtt,
            detect,
            alerts,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        // Encoding into a String cannot fail for well-formed metric families.
        let _ = encoder.encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
