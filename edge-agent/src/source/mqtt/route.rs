//! One subscription inside a broker connection: its topic filter, its decoder, its metrics
//! and its logging budget. [`Route::handle`] turns one message into readings and does all
//! the counting and logging of it; it does no I/O, so it is tested without a broker.

use std::time::Instant;

use prometheus::{IntCounter, IntCounterVec, IntGauge};
use tracing::warn;
use vigil_core::{Reading, Timestamp};

use super::decoder::SubscriptionDecoder;
use super::filter::TopicFilter;
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
    /// (each logged, rate-limited), and returns the readings.
    pub fn handle(
        &mut self,
        topic: &str,
        captures: &[&str],
        payload: &[u8],
        now: Timestamp,
    ) -> Vec<Reading> {
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
        decoded.readings
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
        assert_eq!(
            r.handle("env/1", &caps, br#"{"t": 1, "h": 2}"#, now).len(),
            2
        );
        assert_eq!(r.handle("env/1", &caps, br#"{"t": 1}"#, now).len(), 1);
        assert_eq!(r.handle("env/1", &caps, b"garbage", now).len(), 0);
        assert_eq!(r.handle("env/1", &caps, b"garbage", now).len(), 0);
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
}
