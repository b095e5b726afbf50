//! One subscription inside a broker connection: its topic filter, its decoder, its metrics,
//! its logging budget and its rebirth budget. [`Route::handle`] turns one message into
//! readings (and, for `sparkplug_b`, maybe an edge node to ask for a rebirth, at most once
//! per node every [`rebirth::PERIOD`](super::rebirth::PERIOD)) and does all the counting
//! and logging of it; it does no I/O, so it is tested without a broker.

use std::time::Instant;

use prometheus::{IntCounter, IntCounterVec, IntGauge};
use tracing::{info, warn};
use vigil_core::{Reading, Timestamp};

use super::decoder::SubscriptionDecoder;
use super::filter::TopicFilter;
use super::rebirth::{Rebirth, RebirthLimiter};
use super::warn::WarnLimiter;
use crate::metrics::MqttMetrics;

/// One subscription's part of a broker connection.
#[derive(Debug)]
pub struct Route {
    filter: TopicFilter,
    decoder: SubscriptionDecoder,
    messages: IntCounter,
    readings: IntCounter,
    decode_errors: IntCounterVec,
    connected: IntGauge,
    warnings: WarnLimiter,
    /// `vigil_mqtt_sparkplug_rebirth_requests_total`, for a decoder that asks for rebirths.
    rebirth_requests: Option<IntCounter>,
    rebirths: RebirthLimiter,
}

/// What one message on a route comes to.
#[derive(Debug, Default)]
pub struct Handled {
    /// The readings, in message order.
    pub readings: Vec<Reading>,
    /// An edge node to ask for a rebirth now (within the rate limit); the connection
    /// publishes its NCMD and reports it with [`Route::rebirth_requested`].
    pub rebirth: Option<Rebirth>,
}

impl Route {
    /// The route of the subscription to `filter`, decoded by `decoder`, counted in `metrics`
    /// under `subscription = filter`.
    pub fn new(filter: TopicFilter, decoder: SubscriptionDecoder, metrics: &MqttMetrics) -> Self {
        let label = [filter.as_str()];
        Route {
            messages: metrics.messages.with_label_values(&label),
            readings: metrics.readings.with_label_values(&label),
            decode_errors: metrics.decode_errors.clone(),
            connected: metrics.connected.with_label_values(&label),
            rebirth_requests: decoder
                .requests_rebirth()
                .then(|| metrics.rebirth_requests.with_label_values(&label)),
            rebirths: RebirthLimiter::default(),
            filter,
            decoder,
            warnings: WarnLimiter::default(),
        }
    }

    /// The topic filter.
    pub fn filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// Sets the `connected` gauge.
    pub fn set_connected(&self, up: bool) {
        self.connected.set(i64::from(up));
    }

    /// What the filter's wildcards capture of `topic`, if the route takes it.
    pub fn captures<'t>(&self, topic: &'t str) -> Option<Vec<&'t str>> {
        self.filter.captures(topic)
    }

    /// Decodes one message that this route takes, counting it, its readings and its errors
    /// (each logged, rate-limited), and returns the readings and the edge node to ask for a
    /// rebirth, if one needs it and was not asked within the period.
    pub fn handle(
        &mut self,
        topic: &str,
        captures: &[&str],
        payload: &[u8],
        now: Timestamp,
    ) -> Handled {
        self.messages.inc();
        let decoded = self.decoder.decode(topic, captures, payload, now);
        self.readings.inc_by(decoded.readings.len() as u64);
        if !decoded.errors.is_empty() {
            let at = Instant::now();
            for error in &decoded.errors {
                let reason = error.reason();
                self.decode_errors
                    .with_label_values(&[self.filter.as_str(), reason])
                    .inc();
                if let Some(suppressed) = self.warnings.allow(reason, at) {
                    warn!(
                        subscription = self.filter.as_str(),
                        topic,
                        reason,
                        suppressed,
                        error = %error,
                        "MQTT message not decoded"
                    );
                }
            }
        }
        let rebirth = decoded
            .rebirth
            .filter(|r| self.rebirth_requests.is_some() && self.rebirths.allow(r, Instant::now()));
        Handled {
            readings: decoded.readings,
            rebirth,
        }
    }

    /// Counts and logs a rebirth request the connection sent for [`Handled::rebirth`].
    pub fn rebirth_requested(&self, rebirth: &Rebirth) {
        if let Some(requests) = &self.rebirth_requests {
            requests.inc();
        }
        info!(
            subscription = self.filter.as_str(),
            group_id = rebirth.group_id.as_str(),
            edge_node_id = rebirth.edge_node_id.as_str(),
            reason = rebirth.reason.as_str(),
            detail = %rebirth.reason,
            "asked a Sparkplug edge node for a rebirth (NCMD Node Control/Rebirth)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttSubscription;
    use crate::metrics::Metrics;

    fn route(metrics: &Metrics, decoder: &str, topic: &str, extra: &str) -> Route {
        let sub: MqttSubscription = serde_json::from_str(&format!(
            r#"{{"url": "mqtt://h", "topic": "{topic}", "decoder": "{decoder}"{extra}}}"#
        ))
        .expect("subscription");
        let filter = TopicFilter::parse(&sub.topic).expect("filter");
        let decoder = SubscriptionDecoder::build(0, &sub, &filter).expect("decoder");
        Route::new(filter, decoder, &metrics.mqtt)
    }

    #[test]
    fn counts_messages_readings_and_errors_by_reason() {
        let metrics = Metrics::new();
        let mut r = route(
            &metrics,
            "json",
            "env/+",
            r#", "device": "env-{1}", "fields": {"t": "t", "h": "h"}"#,
        );
        let now = Timestamp::from_millis(1);
        let caps = r.captures("env/1").expect("matches");
        let mut readings = |payload: &[u8]| r.handle("env/1", &caps, payload, now).readings.len();
        assert_eq!(readings(br#"{"t": 1, "h": 2}"#), 2);
        assert_eq!(readings(br#"{"t": 1}"#), 1);
        assert_eq!(readings(b"garbage"), 0);
        assert_eq!(readings(b"garbage"), 0);
        let m = &metrics.mqtt;
        assert_eq!(m.messages.with_label_values(&["env/+"]).get(), 4);
        assert_eq!(m.readings.with_label_values(&["env/+"]).get(), 3);
        assert_eq!(
            m.decode_errors
                .with_label_values(&["env/+", "not_json"])
                .get(),
            2
        );
        assert_eq!(
            m.decode_errors
                .with_label_values(&["env/+", "field_missing"])
                .get(),
            1
        );
        r.set_connected(true);
        assert_eq!(m.connected.with_label_values(&["env/+"]).get(), 1);
        assert!(metrics.render().contains(
            r#"vigil_mqtt_decode_errors_total{reason="not_json",subscription="env/+"} 2"#
        ));
    }

    fn ndata(seq: u64) -> Vec<u8> {
        vigil_sparkplug::encode(&vigil_sparkplug::Payload::new(
            1,
            Some(seq),
            vec![vigil_sparkplug::Metric::aliased(
                1,
                vigil_sparkplug::DataType::Float,
                vigil_core::Value::Float(1.0),
            )
            .expect("fits")],
        ))
    }

    #[test]
    fn asks_for_a_rebirth_once_a_period_and_counts_it() {
        let metrics = Metrics::new();
        let mut r = route(&metrics, "sparkplug_b", "spBv1.0/#", "");
        let now = Timestamp::from_millis(1);
        let topic = "spBv1.0/g/NDATA/n";
        let caps = r.captures(topic).expect("matches");
        let first = r.handle(topic, &caps, &ndata(5), now);
        let rebirth = first.rebirth.expect("no birth: a rebirth is needed");
        assert_eq!(rebirth.topic(), "spBv1.0/g/NCMD/n");
        r.rebirth_requested(&rebirth);
        assert!(
            r.handle(topic, &caps, &ndata(6), now).rebirth.is_none(),
            "not again within the period"
        );
        let other = "spBv1.0/g/NDATA/other";
        let caps = r.captures(other).expect("matches");
        assert!(r.handle(other, &caps, &ndata(1), now).rebirth.is_some());
        let requests = &metrics.mqtt.rebirth_requests;
        assert_eq!(requests.with_label_values(&["spBv1.0/#"]).get(), 1);
        assert!(metrics.render().contains(
            r#"vigil_mqtt_sparkplug_rebirth_requests_total{subscription="spBv1.0/#"} 1"#
        ));
    }

    #[test]
    fn never_asks_with_rebirth_off() {
        let metrics = Metrics::new();
        let mut r = route(
            &metrics,
            "sparkplug_b",
            "spBv1.0/#",
            r#", "rebirth": false"#,
        );
        let topic = "spBv1.0/g/NDATA/n";
        let caps = r.captures(topic).expect("matches");
        let out = r.handle(topic, &caps, &ndata(5), Timestamp::from_millis(1));
        assert!(out.rebirth.is_none());
        assert!(
            !metrics
                .render()
                .contains("vigil_mqtt_sparkplug_rebirth_requests_total{"),
            "no series for a subscription that never asks"
        );
    }
}
