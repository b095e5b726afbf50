//! The MQTT source: sensors that publish over MQTT, mapped to points by a payload decoder per
//! `[[mqtt.subscription]]` (docs/ARCHITECTURE.md#sources).
//!
//! Shape (pure core, thin async shell):
//!
//! - decoders, pure and tested without I/O: [`json`] (a JSON object, fields by dotted path,
//!   optional timestamp field), [`number`] (the payload is one number or boolean) and
//!   [`sparkplug`] (Sparkplug B births, data and deaths, with alias tables per edge node and
//!   device). Each returns [`Decoded`]: the readings and the [`DecodeError`]s of the parts
//!   that failed; nothing a broker can send makes them panic or stop the source;
//! - [`naming`]: device names from a template over the topic's wildcards (`env-{1}`), point
//!   names by the point-name rules; [`filter`]: topic filter syntax and matching;
//! - [`rebirth`]: Sparkplug rebirth requests (NCMD `Node Control/Rebirth`) for edge nodes
//!   whose data cannot be interpreted (no birth seen, an unknown alias, a `seq` gap), at
//!   most one per node every 5 s; the `sparkplug_b` decoder only signals the need;
//! - a [`route`](Route) per subscription: filter, decoder, metrics
//!   (`vigil_mqtt_messages_total`, `vigil_mqtt_readings_total`,
//!   `vigil_mqtt_decode_errors_total{subscription,reason}`, `vigil_mqtt_connected`,
//!   `vigil_mqtt_sparkplug_rebirth_requests_total`), rate-limited warnings and the rebirth
//!   rate limit;
//! - a [`connection`](BrokerConnection) per broker: subscriptions with the same broker share
//!   one rumqttc connection; QoS 1; resubscribes on every connect; reconnects with jittered
//!   exponential backoff (200 ms doubling to 30 s) while the broker is away; publishes the
//!   rebirth requests.
//!
//! A message goes to the first subscription (in config order) whose filter takes it; the
//! config check refuses overlapping filters on one broker
//! ([`validate_subscriptions`](crate::config::mqtt::validate_subscriptions)).

pub mod connection;
pub mod decoder;
pub mod error;
pub mod filter;
pub mod json;
pub mod naming;
pub mod number;
pub mod rebirth;
pub mod route;
pub mod sparkplug;
pub mod warn;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use connection::BrokerConnection;
pub use decoder::{BuildError, SubscriptionDecoder};
pub use error::{DecodeError, Decoded};
pub use filter::{FilterError, TopicFilter};
pub use json::{FieldPath, JsonDecoder, PathError};
pub use naming::{valid_point_name, DeviceTemplate};
pub use number::NumberDecoder;
pub use rebirth::{Rebirth, RebirthReason};
pub use route::{Handled, Route};
pub use sparkplug::SparkplugDecoder;

use super::ReadingTx;
use crate::config::mqtt::SubscriptionBroker;
use crate::config::MqttSubscription;
use crate::metrics::MqttMetrics;

/// The MQTT source: one connection per broker, each with its subscriptions' routes.
#[derive(Debug)]
pub struct MqttSource {
    connections: Vec<BrokerConnection>,
}

impl MqttSource {
    /// Builds the routes of `subscriptions`, grouped by broker, counting in `metrics`. Fails
    /// on settings that cannot work (which `vigil-agent check` reports first).
    pub fn new(
        subscriptions: &[MqttSubscription],
        metrics: &MqttMetrics,
    ) -> Result<Self, BuildError> {
        let mut groups: Vec<(SubscriptionBroker, Vec<Route>)> = Vec::new();
        for (index, sub) in subscriptions.iter().enumerate() {
            let url = SubscriptionBroker::parse(&sub.url).map_err(|e| BuildError {
                index,
                key: "url",
                message: e.to_string(),
            })?;
            let filter = TopicFilter::parse(&sub.topic).map_err(|e| BuildError {
                index,
                key: "topic",
                message: e.to_string(),
            })?;
            let decoder = SubscriptionDecoder::build(index, sub, &filter)?;
            let route = Route::new(filter, decoder, metrics);
            match groups.iter_mut().find(|(u, _)| *u == url) {
                Some((_, routes)) => {
                    if let Some(other) = routes.iter().find(|r| r.filter().overlaps(route.filter()))
                    {
                        warn!(broker = %url, subscription = route.filter().as_str(), overlaps = other.filter().as_str(),
                            "overlapping MQTT subscriptions: messages go to the first one only");
                    }
                    routes.push(route);
                }
                None => groups.push((url, vec![route])),
            }
        }
        let connections = groups
            .into_iter()
            .enumerate()
            .map(|(i, (url, routes))| BrokerConnection::new(url, connection::client_id(i), routes))
            .collect();
        Ok(MqttSource { connections })
    }

    /// How many broker connections it makes.
    pub fn brokers(&self) -> usize {
        self.connections.len()
    }

    /// Runs every connection until `shutdown` is cancelled (or `readings` is closed).
    pub async fn run(self, readings: ReadingTx, shutdown: CancellationToken) {
        if self.connections.is_empty() {
            return;
        }
        info!(brokers = self.connections.len(), "MQTT source starting");
        let mut tasks = JoinSet::new();
        for connection in self.connections {
            tasks.spawn(connection.run(readings.clone(), shutdown.clone()));
        }
        drop(readings);
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                warn!(error = %e, "an MQTT broker connection task failed");
            }
        }
    }
}

/// Runs the MQTT source for `subscriptions`, sending readings on `readings` and counting in
/// `metrics`, until `shutdown` is cancelled. Fails at once on settings that cannot work;
/// never because of what a broker sends or does.
pub async fn run(
    subscriptions: Vec<MqttSubscription>,
    readings: ReadingTx,
    metrics: MqttMetrics,
    shutdown: CancellationToken,
) -> Result<(), BuildError> {
    MqttSource::new(&subscriptions, &metrics)?
        .run(readings, shutdown)
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn sub(url: &str, topic: &str, decoder: &str) -> MqttSubscription {
        serde_json::from_str(&format!(
            r#"{{"url": "{url}", "topic": "{topic}", "decoder": "{decoder}", "point": "p"}}"#
        ))
        .expect("subscription")
    }

    #[test]
    fn groups_subscriptions_by_broker() {
        let metrics = Metrics::new();
        let subs = [
            sub("mqtt://127.0.0.1:1883", "a/+", "number"),
            sub("mqtt://127.0.0.1", "b/+", "number"),
            sub("mqtt://10.0.0.1", "a/+", "number"),
        ];
        let source = MqttSource::new(&subs, &metrics.mqtt).expect("valid");
        assert_eq!(source.brokers(), 2);
    }

    #[test]
    fn refuses_settings_that_cannot_work() {
        let metrics = Metrics::new();
        let e = MqttSource::new(&[sub("http://x", "a", "number")], &metrics.mqtt).expect_err("url");
        assert_eq!((e.index, e.key), (0, "url"));
        let e = MqttSource::new(&[sub("mqtt://x", "a/#/b", "number")], &metrics.mqtt)
            .expect_err("topic");
        assert_eq!(e.key, "topic");
        let mut bad_point = sub("mqtt://x", "a", "number");
        bad_point.point = Some("Not A Point".into());
        let e = MqttSource::new(&[bad_point], &metrics.mqtt).expect_err("point");
        assert_eq!(e.key, "point");
    }
}
