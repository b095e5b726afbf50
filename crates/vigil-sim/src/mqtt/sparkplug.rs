//! A simulated Sparkplug B edge node's session: births, data and death, as pure state. The
//! protobuf and the topic namespace come from [`vigil_sparkplug`].
//!
//! Per MQTT session: the NDEATH will carries `bdSeq`; the NBIRTH carries the same `bdSeq`,
//! `seq` 0, and every node metric with its name, alias and datatype; a DBIRTH follows for
//! each device. Then each interval, NDATA and DDATA carry the metrics by alias only, `seq`
//! counting 0..=255 and wrapping across all of the node's messages. A rebirth (NCMD
//! `Node Control/Rebirth`) starts again from NBIRTH with `seq` 0. Aliases are unique across
//! the node and its devices (1, 2, … in config order).

use std::time::Duration;

use vigil_core::Value;
use vigil_sparkplug::{encode, next_seq, DataType, MessageType, Metric, Payload, Topic, BD_SEQ};

use crate::mqtt::payload::{Field, Message};
use crate::scenario::Scenario;

/// One metric: its field, alias and datatype.
#[derive(Debug, Clone)]
struct MetricDef {
    field: Field,
    alias: u64,
    datatype: DataType,
}

/// A device behind the node.
#[derive(Debug, Clone)]
struct DeviceDef {
    id: String,
    metrics: Vec<MetricDef>,
}

/// The state of one edge node's session.
#[derive(Debug, Clone)]
pub struct Session {
    group: String,
    node: String,
    bd_seq: u64,
    seq: u64,
    metrics: Vec<MetricDef>,
    devices: Vec<DeviceDef>,
}

/// The Sparkplug datatype a scenario's values are sent as: analog scenarios and any float
/// as `Double`, bools as `Boolean`, other numbers as `Int64`, text as `String`.
pub fn datatype_for(scenario: &Scenario) -> DataType {
    if scenario.is_analog() {
        return DataType::Double;
    }
    let values = scenario.declared_values();
    if values.iter().any(|v| matches!(v, Value::Text(_))) {
        DataType::String
    } else if values.iter().any(|v| matches!(v, Value::Float(_))) {
        DataType::Double
    } else if values.iter().all(|v| matches!(v, Value::Bool(_))) {
        DataType::Boolean
    } else {
        DataType::Int64
    }
}

/// A value as `datatype` takes it.
fn as_type(datatype: DataType, value: Value) -> Value {
    match (datatype, value) {
        (DataType::Boolean, v) => Value::Bool(v.as_f64().is_some_and(|x| x != 0.0)),
        (DataType::Double, v) => Value::Float(v.as_f64().unwrap_or(0.0)),
        #[allow(clippy::cast_possible_truncation)]
        (DataType::Int64, v) => Value::Int(v.as_f64().unwrap_or(0.0).round() as i64),
        (DataType::String, v) => Value::Text(v.to_string()),
        (_, v) => v,
    }
}

impl Session {
    /// A session of node `node` in `group`, with `bd_seq`, node `fields` and `devices`
    /// (device id and its fields).
    pub fn new(
        group: &str,
        node: &str,
        bd_seq: u64,
        fields: Vec<Field>,
        devices: Vec<(String, Vec<Field>)>,
    ) -> Self {
        let mut alias = 0;
        let mut def = |field: Field| {
            alias += 1;
            MetricDef {
                datatype: datatype_for(&field.scenario),
                field,
                alias,
            }
        };
        let metrics = fields.into_iter().map(&mut def).collect();
        let devices = devices
            .into_iter()
            .map(|(id, fields)| DeviceDef {
                id,
                metrics: fields.into_iter().map(&mut def).collect(),
            })
            .collect();
        Session {
            group: group.to_owned(),
            node: node.to_owned(),
            bd_seq: bd_seq % 256,
            seq: 0,
            metrics,
            devices,
        }
    }

    fn topic(&self, kind: MessageType, device: Option<&str>) -> String {
        match device {
            None => Topic::node(&self.group, kind, &self.node),
            Some(d) => Topic::device(&self.group, kind, &self.node, d),
        }
        .to_string()
    }

    fn bd_seq_metric(&self) -> Option<Metric> {
        let bd = i64::try_from(self.bd_seq).unwrap_or(0);
        Metric::with_value(BD_SEQ, None, DataType::Int64, Value::Int(bd)).ok()
    }

    /// The NDEATH (the MQTT will): `bdSeq` only, no `seq`.
    pub fn death(&self, ts_ms: u64) -> Message {
        let payload = Payload::new(ts_ms, None, self.bd_seq_metric().into_iter().collect());
        Message {
            topic: self.topic(MessageType::NDeath, None),
            payload: encode(&payload),
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = next_seq(seq);
        seq
    }

    fn metrics(defs: &[MetricDef], t: Duration, birth: bool) -> Vec<Metric> {
        defs.iter()
            .filter_map(|m| {
                let value = as_type(m.datatype, m.field.value_at(t));
                let metric = if birth {
                    Metric::with_value(m.field.name.clone(), Some(m.alias), m.datatype, value)
                } else {
                    Metric::aliased(m.alias, m.datatype, value)
                };
                metric
                    .map_err(|e| tracing::debug!(metric = %m.field.name, error = %e, "metric not encodable"))
                    .ok()
            })
            .collect()
    }

    /// NBIRTH (`seq` 0) and a DBIRTH per device, values at `t`.
    pub fn births(&mut self, t: Duration, ts_ms: u64) -> Vec<Message> {
        self.seq = 0;
        let mut metrics: Vec<Metric> = self.bd_seq_metric().into_iter().collect();
        metrics.extend(Self::metrics(&self.metrics, t, true));
        let seq = self.take_seq();
        let mut out = vec![Message {
            topic: self.topic(MessageType::NBirth, None),
            payload: encode(&Payload::new(ts_ms, Some(seq), metrics)),
        }];
        for i in 0..self.devices.len() {
            let metrics = Self::metrics(&self.devices[i].metrics, t, true);
            let seq = self.take_seq();
            out.push(Message {
                topic: self.topic(MessageType::DBirth, Some(&self.devices[i].id)),
                payload: encode(&Payload::new(ts_ms, Some(seq), metrics)),
            });
        }
        out
    }

    /// NDATA (when the node has metrics) and a DDATA per device, by alias, values at `t`.
    pub fn data(&mut self, t: Duration, ts_ms: u64) -> Vec<Message> {
        let mut out = Vec::new();
        if !self.metrics.is_empty() {
            let metrics = Self::metrics(&self.metrics, t, false);
            let seq = self.take_seq();
            out.push(Message {
                topic: self.topic(MessageType::NData, None),
                payload: encode(&Payload::new(ts_ms, Some(seq), metrics)),
            });
        }
        for i in 0..self.devices.len() {
            let metrics = Self::metrics(&self.devices[i].metrics, t, false);
            let seq = self.take_seq();
            out.push(Message {
                topic: self.topic(MessageType::DData, Some(&self.devices[i].id)),
                payload: encode(&Payload::new(ts_ms, Some(seq), metrics)),
            });
        }
        out
    }

    /// The NCMD topic the node listens on for rebirth requests.
    pub fn command_topic(&self) -> String {
        self.topic(MessageType::NCmd, None)
    }

    /// Whether an NCMD payload asks for a rebirth.
    pub fn is_rebirth(payload: &[u8]) -> bool {
        vigil_sparkplug::decode(payload).is_ok_and(|p| {
            p.metrics.iter().any(|m| {
                m.name.as_deref() == Some(vigil_sparkplug::REBIRTH)
                    && m.value_as(DataType::Boolean)
                        .is_ok_and(|v| v == Some(Value::Bool(true)))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vigil_sparkplug::decode;

    fn field(name: &str, scenario: Scenario) -> Field {
        let mut m = BTreeMap::new();
        m.insert(name.to_owned(), scenario);
        Field::all("n", &m, 0).remove(0)
    }

    fn session() -> Session {
        Session::new(
            "facility",
            "gw-sim",
            3,
            vec![field(
                "supply",
                Scenario::Constant {
                    value: Value::Float(24.1),
                    stuck_at: None,
                },
            )],
            vec![(
                "door-1".to_owned(),
                vec![field(
                    "open",
                    Scenario::Event {
                        at: Duration::from_secs(10),
                        value: Value::Bool(true),
                        normal: None,
                        duration: None,
                        stuck_at: None,
                    },
                )],
            )],
        )
    }

    #[test]
    fn births_then_data_by_alias_with_wrapping_seq() {
        let mut s = session();
        let births = s.births(Duration::ZERO, 1000);
        assert_eq!(births[0].topic, "spBv1.0/facility/NBIRTH/gw-sim");
        assert_eq!(births[1].topic, "spBv1.0/facility/DBIRTH/gw-sim/door-1");
        let nbirth = decode(&births[0].payload).expect("protobuf");
        assert_eq!(nbirth.seq, Some(0));
        assert_eq!(nbirth.metrics[0].name.as_deref(), Some(BD_SEQ));
        assert_eq!(
            nbirth.metrics[0].value().expect("typed"),
            Some(Value::Int(3))
        );
        assert_eq!(nbirth.metrics[1].name.as_deref(), Some("supply"));
        assert_eq!(nbirth.metrics[1].alias, Some(1));
        let dbirth = decode(&births[1].payload).expect("protobuf");
        assert_eq!(dbirth.seq, Some(1));
        assert_eq!(dbirth.metrics[0].alias, Some(2));
        assert_eq!(
            dbirth.metrics[0].value().expect("typed"),
            Some(Value::Bool(false))
        );
        let data = s.data(Duration::from_secs(11), 2000);
        let ddata = decode(&data[1].payload).expect("protobuf");
        assert_eq!(data[1].topic, "spBv1.0/facility/DDATA/gw-sim/door-1");
        assert_eq!(ddata.seq, Some(3));
        assert_eq!(ddata.metrics[0].name, None);
        assert_eq!(
            ddata.metrics[0].value_as(DataType::Boolean).expect("typed"),
            Some(Value::Bool(true))
        );
        for _ in 0..200 {
            s.data(Duration::ZERO, 0);
        }
        let last = decode(&s.data(Duration::ZERO, 0)[1].payload).expect("protobuf");
        assert_eq!(last.seq, Some((4 + 2 * 200 + 1) % 256));
        let death = decode(&s.death(5).payload).expect("protobuf");
        assert_eq!(death.seq, None);
        assert_eq!(
            death.metrics[0].value().expect("typed"),
            Some(Value::Int(3))
        );
    }

    #[test]
    fn rebirth_requests_are_recognised() {
        let ncmd = Payload::new(
            0,
            None,
            vec![Metric::with_value(
                vigil_sparkplug::REBIRTH,
                None,
                DataType::Boolean,
                Value::Bool(true),
            )
            .expect("metric")],
        );
        assert!(Session::is_rebirth(&encode(&ncmd)));
        assert!(!Session::is_rebirth(b"\xff\xff"));
    }
}
