//! The plain MQTT payloads of a simulated sensor: one JSON object per interval, or one
//! plain-number message per field. Pure: values in, topics and bytes out.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_core::Value;

use crate::scenario::{noise_key, Scenario};

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// One field of a sensor: its name, scenario and noise key.
#[derive(Debug, Clone)]
pub struct Field {
    /// The field's name (JSON key, `{field}` in topics, Sparkplug metric name).
    pub name: String,
    /// What drives it.
    pub scenario: Scenario,
    /// Its noise key.
    pub key: u64,
}

impl Field {
    /// The fields of a sensor `owner` (its id, or `node/device` for Sparkplug devices).
    pub fn all(owner: &str, fields: &BTreeMap<String, Scenario>, seed: u64) -> Vec<Field> {
        fields
            .iter()
            .map(|(name, scenario)| Field {
                name: name.clone(),
                scenario: scenario.clone(),
                key: noise_key(seed, owner, name),
            })
            .collect()
    }

    /// The field's value at `t`, analog values rounded to a sensor's resolution (0.001).
    pub fn value_at(&self, t: Duration) -> Value {
        match self.scenario.value_at(t, self.key) {
            Value::Float(x) => Value::Float((x * 1000.0).round() / 1000.0),
            v => v,
        }
    }
}

/// Fills `{id}` and `{field}` in a topic template.
pub fn topic(template: &str, id: &str, field: &str) -> String {
    template.replace("{id}", id).replace("{field}", field)
}

/// The JSON telemetry message: `{"ts": <epoch ms>, "<field>": <value>, …}`.
pub fn json(topic: String, ts_ms: i64, fields: &[Field], t: Duration) -> Message {
    let mut object = serde_json::Map::new();
    object.insert("ts".into(), ts_ms.into());
    for f in fields {
        let v = match f.value_at(t) {
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => i.into(),
            Value::Float(x) => serde_json::Number::from_f64(x)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Text(s) => serde_json::Value::String(s),
        };
        object.insert(f.name.clone(), v);
    }
    Message {
        topic,
        payload: serde_json::Value::Object(object).to_string().into_bytes(),
    }
}

/// The plain-number messages, one per field: `21.5`; bools as `1`/`0`; text as is.
pub fn numbers(template: &str, id: &str, fields: &[Field], t: Duration) -> Vec<Message> {
    fields
        .iter()
        .map(|f| {
            let text = match f.value_at(t) {
                Value::Bool(b) => u8::from(b).to_string(),
                v => v.to_string(),
            };
            Message {
                topic: topic(template, id, &f.name),
                payload: text.into_bytes(),
            }
        })
        .collect()
}

/// A garbage payload for the `malformed` fault: starts with bytes that are neither UTF-8
/// nor a valid protobuf tag, so that no decoder can take it for a message.
pub fn garbage(random: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFF];
    out.extend(random);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<Field> {
        let mut m = BTreeMap::new();
        m.insert(
            "temp".to_owned(),
            Scenario::Constant {
                value: Value::Float(21.5),
                stuck_at: None,
            },
        );
        m.insert(
            "door".to_owned(),
            Scenario::Constant {
                value: Value::Bool(true),
                stuck_at: None,
            },
        );
        Field::all("env-1", &m, 0)
    }

    #[test]
    fn json_telemetry() {
        let m = json(
            "facility/env/env-1/telemetry".into(),
            1700,
            &fields(),
            Duration::ZERO,
        );
        let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"ts": 1700, "temp": 21.5, "door": true})
        );
    }

    #[test]
    fn plain_numbers() {
        let m = numbers(
            "facility/env/{id}/{field}",
            "env-1",
            &fields(),
            Duration::ZERO,
        );
        assert_eq!(m[0].topic, "facility/env/env-1/door");
        assert_eq!(m[0].payload, b"1");
        assert_eq!(m[1].payload, b"21.5");
    }

    #[test]
    fn garbage_is_not_text() {
        assert!(std::str::from_utf8(&garbage(b"abc")).is_err());
        assert!(serde_json::from_slice::<serde_json::Value>(&garbage(b"1")).is_err());
    }
}
