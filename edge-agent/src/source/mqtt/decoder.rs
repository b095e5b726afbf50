//! One subscription's decoder, built from its `[[mqtt.subscription]]` section: the closed
//! set of payload decoders behind one `decode` call.

use vigil_core::Timestamp;

use super::error::Decoded;
use super::filter::TopicFilter;
use super::json::JsonDecoder;
use super::naming::DeviceTemplate;
use super::number::NumberDecoder;
use super::sparkplug::SparkplugDecoder;
use crate::config::{Decoder, MqttSubscription};

/// A subscription whose settings cannot work (the config check reports the same with the
/// file and line; this is the source's own guard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mqtt.subscription[{index}].{key}: {message}")]
pub struct BuildError {
    /// The subscription's position in the config.
    pub index: usize,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The decoder of one subscription.
#[derive(Debug)]
pub enum SubscriptionDecoder {
    /// `decoder = "json"`.
    Json(JsonDecoder),
    /// `decoder = "number"`.
    Number(NumberDecoder),
    /// `decoder = "sparkplug_b"` (stateful: it remembers births).
    SparkplugB(Box<SparkplugDecoder>),
}

impl SubscriptionDecoder {
    /// The decoder `sub` (the `index`-th subscription, with topic filter `filter`) asks for.
    pub fn build(
        index: usize,
        sub: &MqttSubscription,
        filter: &TopicFilter,
    ) -> Result<Self, BuildError> {
        let err = |key, message: String| BuildError {
            index,
            key,
            message,
        };
        let device = match &sub.device {
            Some(t) => DeviceTemplate::parse(t, filter.wildcards())
                .map_err(|e| err("device", e.to_string()))?,
            None => DeviceTemplate::whole_topic(),
        };
        Ok(match sub.decoder {
            Decoder::Json => SubscriptionDecoder::Json(
                JsonDecoder::new(device, &sub.fields, sub.timestamp.as_deref())
                    .map_err(|e| err("fields", e.to_string()))?,
            ),
            Decoder::Number => {
                let point = sub
                    .point
                    .clone()
                    .filter(|p| super::naming::valid_point_name(p))
                    .ok_or_else(|| err("point", "a valid point name is required".into()))?;
                SubscriptionDecoder::Number(NumberDecoder::new(device, point))
            }
            Decoder::SparkplugB => SubscriptionDecoder::SparkplugB(Box::new(
                SparkplugDecoder::new().with_rebirth(sub.requests_rebirth()),
            )),
        })
    }

    /// Whether its [`Decoded`] may ask for rebirths (`sparkplug_b` unless `rebirth = false`).
    pub fn requests_rebirth(&self) -> bool {
        match self {
            SubscriptionDecoder::SparkplugB(d) => d.requests_rebirth(),
            SubscriptionDecoder::Json(_) | SubscriptionDecoder::Number(_) => false,
        }
    }

    /// The readings of one message on `topic` (whose filter wildcards captured `captures`),
    /// received at `now`.
    pub fn decode(
        &mut self,
        topic: &str,
        captures: &[&str],
        payload: &[u8],
        now: Timestamp,
    ) -> Decoded {
        match self {
            SubscriptionDecoder::Json(d) => d.decode(topic, captures, payload, now),
            SubscriptionDecoder::Number(d) => d.decode(topic, captures, payload, now),
            SubscriptionDecoder::SparkplugB(d) => d.decode(topic, payload, now),
        }
    }
}
