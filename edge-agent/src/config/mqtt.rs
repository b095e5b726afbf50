//! `[[mqtt.subscription]]`: one MQTT subscription and the decoder that maps its messages to
//! points.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_config::Problem;

/// How a message's payload becomes readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoder {
    /// A JSON object; `fields` map points to field paths.
    Json,
    /// The payload is a number (or `true`/`false`).
    Number,
    /// Sparkplug B protobuf (NBIRTH/NDATA/DBIRTH/DDATA).
    SparkplugB,
}

/// One subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSubscription {
    /// The broker: `mqtt://host:port`.
    pub url: String,
    /// The topic filter, wildcards allowed.
    pub topic: String,
    pub decoder: Decoder,
    /// json: point name → field path (`"temp"`, `"env.rh"`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// json: the field path of the reading's timestamp (epoch ms or RFC 3339).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The device name of the points; `{1}`, `{2}`… stand for the topic's wildcard segments.
    #[serde(default)]
    pub device: Option<String>,
    /// number: the point name.
    #[serde(default)]
    pub point: Option<String>,
}

impl MqttSubscription {
    /// The semantic checks of one subscription; `at` is its key path.
    pub fn validate(&self, at: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if !self.url.starts_with("mqtt://") && !self.url.starts_with("mqtts://") {
            out.push(Problem::new(
                format!("{at}.url"),
                format!("{:?} must start with mqtt:// or mqtts://", self.url),
            ));
        }
        if self.topic.is_empty() {
            out.push(Problem::new(format!("{at}.topic"), "must not be empty"));
        }
        out
    }
}
