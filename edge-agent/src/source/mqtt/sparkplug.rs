//! The `sparkplug_b` decoder: Sparkplug B births, data and deaths of edge nodes and their
//! devices, as readings.
//!
//! Sparkplug is stateful, so this decoder is too (and still pure: bytes in, readings out,
//! no I/O). A birth (NBIRTH, DBIRTH) lists every metric of an edge node or device with its
//! name, alias and datatype, and their current values; DATA messages (NDATA, DDATA) then
//! name metrics by alias only, often without a datatype. The decoder keeps one table per
//! edge node and per device, rebuilt by each birth:
//!
//! - point ids: the device is the `device_id` (DBIRTH/DDATA/DDEATH) or the `edge_node_id`
//!   (NBIRTH/NDATA/NDEATH), made a valid device name; the point is the metric name by the
//!   point-name rules (`Inputs/Temperature` → `inputs_temperature`). `bdSeq`,
//!   `Node Control/*` and `Device Control/*` are protocol metrics, not points; metrics of
//!   non-scalar types (data sets, templates, bytes, arrays) are not ingested.
//! - a DATA metric whose alias (or name) no birth bound is an `unknown_alias`
//!   (`unknown_metric`) error, counted once per message, until the next birth;
//! - an NBIRTH forgets the node's devices (they must be born again after it);
//! - NDEATH (unless its `bdSeq` is not the birth's: a stale will of an earlier session) and
//!   DDEATH give every point of the node (and its devices) or device a Bad-quality reading
//!   with its last value, and forget them;
//! - a null metric gives a Bad-quality reading with the last value; a historical one a
//!   reading with its own timestamp that does not become the last value;
//! - STATE, NCMD and DCMD are not readings and are ignored.
//!
//! A node's `seq` (0..=255, one more with each of its births, data and device deaths) is
//! followed from its NBIRTH on; a skip means lost messages. A repeat of the last `seq` is
//! taken for a QoS 1 redelivery, not a skip.
//!
//! When the decoder cannot interpret an edge node's messages without a new birth, it says so
//! in [`Decoded::rebirth`] (unless built [without](SparkplugDecoder::with_rebirth)): for
//! NDATA, DDATA, DBIRTH or DDEATH of a node whose NBIRTH it has not seen (or that died
//! since), for a DATA metric no birth bound, and for every message of a node whose `seq`
//! skipped, until its next NBIRTH. It only says so: the [route](super::Route) rate-limits
//! and the connection publishes the NCMD ([`rebirth`](super::rebirth)). The DATA it can
//! decode meanwhile it still decodes.

use std::collections::{HashMap, HashSet};

use tracing::{debug, info, warn};
use vigil_core::{PointId, Quality, Reading, Timestamp, Value};
use vigil_sparkplug::{next_seq, DataType, MessageType, Metric, MetricValue, Topic, BD_SEQ};

use super::error::{DecodeError, Decoded};
use super::naming::{point_name, sanitise_device, MAX_NAME};
use super::rebirth::{Rebirth, RebirthReason};

/// How many edge nodes and devices one subscription tracks at most.
pub const MAX_SCOPES: usize = 10_000;

/// 9999-12-31T23:59:59.999Z.
const LAST_MILLISECOND: u64 = 253_402_300_799_999;

/// The `sparkplug_b` decoder of one subscription, with what the births told it.
#[derive(Debug)]
pub struct SparkplugDecoder {
    /// By `(group_id, edge_node_id)`.
    nodes: HashMap<(String, String), Node>,
    /// Node and device tables held, for [`MAX_SCOPES`].
    scopes: usize,
    /// Whether to say which edge nodes need a rebirth.
    rebirth: bool,
}

impl Default for SparkplugDecoder {
    fn default() -> Self {
        SparkplugDecoder::new()
    }
}

/// What is known of one edge node.
#[derive(Debug, Default)]
struct Node {
    /// The `bdSeq` of its NBIRTH.
    bd_seq: Option<u64>,
    /// Its own metrics, once its NBIRTH is seen.
    table: Option<Table>,
    /// Its devices' metrics, by `device_id`.
    devices: HashMap<String, Table>,
    /// The `seq` of its last message since its NBIRTH.
    seq: Option<u64>,
    /// The first `seq` skip since its NBIRTH: `(expected, got)`.
    gap: Option<(u64, u64)>,
}

impl Node {
    /// How many tables it holds: its own (once born) and its devices'.
    fn tables(&self) -> usize {
        usize::from(self.table.is_some()) + self.devices.len()
    }

    /// Follows its `seq` through one more message (not an NBIRTH), noting the first skip.
    fn follow(&mut self, seq: Option<u64>) {
        let Some(got) = seq else {
            return;
        };
        if let Some(last) = self.seq {
            let expected = next_seq(last);
            if got != expected && got != last && self.gap.is_none() {
                self.gap = Some((expected, got));
            }
        }
        self.seq = Some(got);
    }
}

/// The metrics of one edge node or device, as its birth listed them.
#[derive(Debug)]
struct Table {
    /// `group/edge_node[/device]`, for messages.
    scope: String,
    metrics: Vec<Born>,
    by_alias: HashMap<u64, usize>,
    by_name: HashMap<String, usize>,
}

/// One metric of a birth.
#[derive(Debug)]
struct Born {
    name: String,
    datatype: DataType,
    /// `None` for metrics that are not points (protocol metrics, non-scalar types).
    point: Option<PointId>,
    /// The last real-time value, for Bad-quality readings on death or null.
    last: Option<Value>,
}

/// Whether a birth metric becomes a point.
fn is_point(name: &str, datatype: DataType) -> bool {
    datatype.is_scalar()
        && name != BD_SEQ
        && !name.starts_with("Node Control/")
        && !name.starts_with("Device Control/")
}

/// A Sparkplug timestamp (epoch ms, unsigned) as an instant, if it is one.
fn instant(ms: Option<u64>) -> Option<Timestamp> {
    ms.filter(|ms| *ms <= LAST_MILLISECOND)
        .and_then(|ms| i64::try_from(ms).ok())
        .map(Timestamp::from_millis)
}

fn reading(point: &PointId, ts: Timestamp, value: Value, quality: Quality) -> Reading {
    Reading {
        point: point.clone(),
        ts,
        value,
        quality,
    }
}

impl Table {
    /// The table a birth describes, and the readings of the values it carries.
    fn from_birth(
        scope: String,
        device: &str,
        metrics: &[Metric],
        sent: Timestamp,
        out: &mut Decoded,
    ) -> Table {
        let scope_text = scope.clone();
        let mut table = Table {
            scope,
            metrics: Vec::with_capacity(metrics.len()),
            by_alias: HashMap::new(),
            by_name: HashMap::new(),
        };
        let mut points = HashSet::new();
        for m in metrics {
            let bad = |problem| DecodeError::BadMetric {
                scope: scope_text.clone(),
                metric: m
                    .name
                    .clone()
                    .or_else(|| m.alias.map(|a| format!("alias {a}")))
                    .unwrap_or_default(),
                problem,
            };
            let Some(name) = m.name.as_deref() else {
                out.errors.push(bad("a birth metric has no name"));
                continue;
            };
            let datatype = match m.data_type() {
                Ok(Some(t)) => t,
                Ok(None) => {
                    out.errors.push(bad("a birth metric has no datatype"));
                    continue;
                }
                Err(_) => {
                    out.errors
                        .push(bad("the datatype is not a Sparkplug B data type"));
                    continue;
                }
            };
            let point = if is_point(name, datatype) {
                match point_name(name).map(|p| PointId::new(device, &p)) {
                    Some(Ok(point)) => {
                        if !points.insert(point.clone()) {
                            warn!(scope = %table.scope, metric = name, %point,
                                "two Sparkplug metrics make the same point name: their readings mix");
                        }
                        Some(point)
                    }
                    _ => {
                        out.errors.push(DecodeError::BadPointName(name.to_owned()));
                        None
                    }
                }
            } else {
                None
            };
            let index = table.metrics.len();
            table.by_name.insert(name.to_owned(), index);
            if let Some(alias) = m.alias {
                if table.by_alias.insert(alias, index).is_some() {
                    out.errors
                        .push(bad("the alias is bound twice in one birth"));
                }
            }
            table.metrics.push(Born {
                name: name.to_owned(),
                datatype,
                point,
                last: None,
            });
            table.update(index, m, sent, out);
        }
        table
    }

    /// Applies one metric's value to the metric at `index`, with its reading.
    fn update(&mut self, index: usize, m: &Metric, sent: Timestamp, out: &mut Decoded) {
        let Some(born) = self.metrics.get_mut(index) else {
            return;
        };
        let Some(point) = &born.point else {
            return;
        };
        let ts = instant(m.timestamp).unwrap_or(sent);
        match m.value_as(born.datatype) {
            Ok(Some(value)) => {
                if !m.is_historical() {
                    born.last = Some(value.clone());
                }
                out.readings.push(reading(point, ts, value, Quality::Good));
            }
            Ok(None) => {
                if let Some(last) = &born.last {
                    out.readings
                        .push(reading(point, ts, last.clone(), Quality::Bad));
                }
            }
            Err(source) => out.errors.push(DecodeError::BadValue {
                metric: format!("{}/{}", self.scope, born.name),
                source,
            }),
        }
    }

    /// Bad-quality readings of every point with a last value: the table's owner died.
    fn died(&self, ts: Timestamp, out: &mut Decoded) {
        for born in &self.metrics {
            if let (Some(point), Some(last)) = (&born.point, &born.last) {
                out.readings
                    .push(reading(point, ts, last.clone(), Quality::Bad));
            }
        }
    }
}

/// The `bdSeq` a payload carries, as its raw integer.
fn bd_seq(metrics: &[Metric]) -> Option<u64> {
    metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(BD_SEQ))
        .and_then(|m| match m.value {
            Some(MetricValue::IntValue(v)) => Some(u64::from(v)),
            Some(MetricValue::LongValue(v)) => Some(v),
            _ => None,
        })
}

impl SparkplugDecoder {
    /// A decoder that has seen no birth yet, and says which edge nodes need a rebirth.
    pub fn new() -> Self {
        SparkplugDecoder {
            nodes: HashMap::new(),
            scopes: 0,
            rebirth: true,
        }
    }

    /// This decoder, saying which edge nodes need a rebirth (`true`, the default) or never
    /// (`false`: `rebirth = false` in the subscription).
    #[must_use]
    pub fn with_rebirth(mut self, on: bool) -> Self {
        self.rebirth = on;
        self
    }

    /// Whether it says which edge nodes need a rebirth.
    pub fn requests_rebirth(&self) -> bool {
        self.rebirth
    }

    /// How many edge nodes and devices it holds a birth of.
    pub fn tracked(&self) -> usize {
        self.scopes
    }

    /// The readings of one message on `topic`, received at `now`; updates the tables.
    pub fn decode(&mut self, topic: &str, payload: &[u8], now: Timestamp) -> Decoded {
        let topic: Topic = match topic.parse() {
            Ok(t) => t,
            Err(e) => return DecodeError::BadTopic(e).into(),
        };
        let Topic::Edge {
            group_id,
            message_type,
            edge_node_id,
            device_id,
        } = topic
        else {
            return Decoded::default();
        };
        if matches!(message_type, MessageType::NCmd | MessageType::DCmd) {
            return Decoded::default();
        }
        let payload = match vigil_sparkplug::decode(payload) {
            Ok(p) => p,
            Err(e) => return DecodeError::Protobuf(e).into(),
        };
        let sent = instant(payload.timestamp).unwrap_or(now);
        let key = (group_id, edge_node_id);
        let scope = match &device_id {
            Some(d) => format!("{}/{}/{d}", key.0, key.1),
            None => format!("{}/{}", key.0, key.1),
        };
        let mut out = Decoded::default();
        // Births, data and device deaths after the NBIRTH carry the node's next `seq`.
        let follows = matches!(
            message_type,
            MessageType::DBirth | MessageType::NData | MessageType::DData | MessageType::DDeath
        );
        if follows {
            if let Some(node) = self.nodes.get_mut(&key).filter(|n| n.table.is_some()) {
                node.follow(payload.seq);
            }
        }
        let mut unknown_metric = false;
        match message_type {
            MessageType::NBirth | MessageType::DBirth => {
                let device = sanitise_device(device_id.as_deref().unwrap_or(&key.1));
                if device.len() > MAX_NAME {
                    return DecodeError::BadDevice(device).into();
                }
                let replaces = match (&device_id, self.nodes.get(&key)) {
                    (None, Some(node)) => node.tables(),
                    (Some(d), Some(node)) => usize::from(node.devices.contains_key(d)),
                    (_, None) => 0,
                };
                if self.scopes - replaces >= MAX_SCOPES {
                    return DecodeError::TooManyDevices(self.scopes, scope).into();
                }
                let table = Table::from_birth(scope, &device, &payload.metrics, sent, &mut out);
                debug!(scope = %table.scope, metrics = table.metrics.len(), "Sparkplug birth");
                self.scopes = self.scopes - replaces + 1;
                let node = self.nodes.entry(key.clone()).or_default();
                match device_id {
                    None => {
                        *node = Node {
                            bd_seq: bd_seq(&payload.metrics),
                            table: Some(table),
                            devices: HashMap::new(),
                            seq: payload.seq,
                            gap: None,
                        }
                    }
                    Some(d) => {
                        node.devices.insert(d, table);
                    }
                }
            }
            MessageType::NData | MessageType::DData => {
                let node = self.nodes.get_mut(&key);
                let mut table = match (&device_id, node) {
                    (None, Some(node)) => node.table.as_mut(),
                    (Some(d), Some(node)) => node.devices.get_mut(d),
                    (_, None) => None,
                };
                let mut unknown: Option<DecodeError> = None;
                for m in &payload.metrics {
                    let index = table.as_ref().and_then(|t| {
                        m.alias
                            .and_then(|a| t.by_alias.get(&a))
                            .or_else(|| m.name.as_ref().and_then(|n| t.by_name.get(n)))
                            .copied()
                    });
                    match index {
                        Some(i) => {
                            if let Some(t) = table.as_deref_mut() {
                                t.update(i, m, sent, &mut out);
                            }
                        }
                        None if unknown.is_some() => {}
                        None => {
                            unknown = Some(match (m.alias, &m.name) {
                                (Some(alias), _) => DecodeError::UnknownAlias {
                                    scope: scope.clone(),
                                    alias,
                                },
                                (None, Some(name)) => DecodeError::UnknownMetric {
                                    scope: scope.clone(),
                                    name: name.clone(),
                                },
                                (None, None) => DecodeError::BadMetric {
                                    scope: scope.clone(),
                                    metric: String::new(),
                                    problem: "a metric with neither name nor alias",
                                },
                            })
                        }
                    }
                }
                unknown_metric = matches!(
                    unknown,
                    Some(DecodeError::UnknownAlias { .. } | DecodeError::UnknownMetric { .. })
                );
                out.errors.extend(unknown);
            }
            MessageType::NDeath => {
                let Some(node) = self.nodes.get(&key) else {
                    return out;
                };
                let death = bd_seq(&payload.metrics);
                if let (Some(birth), Some(death)) = (node.bd_seq, death) {
                    if birth != death {
                        debug!(%scope, birth, death, "NDEATH of an earlier session ignored");
                        return out;
                    }
                }
                if let Some(node) = self.nodes.remove(&key) {
                    for table in node.table.iter().chain(node.devices.values()) {
                        table.died(sent, &mut out);
                    }
                    self.scopes -= node.tables();
                    info!(%scope, devices = node.devices.len(), points = out.readings.len(),
                        "Sparkplug edge node died: its points are Bad until its next birth");
                }
            }
            MessageType::DDeath => {
                let device = device_id.unwrap_or_default();
                if let Some(table) = self
                    .nodes
                    .get_mut(&key)
                    .and_then(|n| n.devices.remove(&device))
                {
                    table.died(sent, &mut out);
                    self.scopes -= 1;
                    info!(%scope, points = out.readings.len(),
                        "Sparkplug device died: its points are Bad until its next birth");
                }
            }
            MessageType::NCmd | MessageType::DCmd => {}
        }
        if follows && self.rebirth {
            let reason = match self.nodes.get(&key) {
                Some(node) if node.table.is_some() => match node.gap {
                    Some((expected, got)) => Some(RebirthReason::SeqGap { expected, got }),
                    None => unknown_metric.then_some(RebirthReason::UnknownMetric),
                },
                _ => Some(RebirthReason::NoBirth),
            };
            out.rebirth = reason.map(|reason| Rebirth {
                group_id: key.0,
                edge_node_id: key.1,
                reason,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_sparkplug::{encode, Payload};

    const NOW: Timestamp = Timestamp::from_millis(5_000);

    fn m(name: &str, alias: u64, datatype: DataType, value: Value) -> Metric {
        Metric::with_value(name, Some(alias), datatype, value).expect("fits")
    }

    fn data(alias: u64, datatype: DataType, value: Value) -> Metric {
        Metric::aliased(alias, datatype, value).expect("fits")
    }

    fn bytes(ts: u64, seq: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
        encode(&Payload::new(ts, seq, metrics))
    }

    fn summary(out: &Decoded) -> (Vec<String>, Vec<&'static str>) {
        (
            out.readings
                .iter()
                .map(|r| {
                    format!(
                        "{}={}@{}{}",
                        r.point,
                        r.value,
                        r.ts.as_millis(),
                        match r.quality {
                            Quality::Good => "",
                            Quality::Uncertain => "?",
                            Quality::Bad => "!",
                        }
                    )
                })
                .collect(),
            out.errors.iter().map(DecodeError::reason).collect(),
        )
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn node_birth() -> Vec<u8> {
        bytes(
            1_000,
            Some(0),
            vec![
                m(BD_SEQ, 0, DataType::Int64, Value::Int(3)),
                Metric::with_value(
                    "Node Control/Rebirth",
                    None,
                    DataType::Boolean,
                    Value::Bool(false),
                )
                .expect("fits"),
                m("Supply Voltage", 1, DataType::Float, Value::Float(24.5)),
                m("Temp", 2, DataType::Int8, Value::Int(-5)).with_timestamp(900),
            ],
        )
    }

    #[test]
    fn births_bind_aliases_and_data_uses_them() {
        let mut d = SparkplugDecoder::new();
        let out = d.decode("spBv1.0/prison-3/NBIRTH/gw-1", &node_birth(), NOW);
        assert_eq!(
            summary(&out),
            (
                s(&["gw-1/supply_voltage=24.5@1000", "gw-1/temp=-5@900"]),
                vec![]
            )
        );

        // The Int8 -1 sent as 0xFF, by alias and without datatype.
        let mut raw = data(2, DataType::Int8, Value::Int(0)).with_timestamp(1_500);
        raw.value = Some(MetricValue::IntValue(0xFF));
        let out = d.decode(
            "spBv1.0/prison-3/NDATA/gw-1",
            &bytes(2_000, Some(1), vec![raw]),
            NOW,
        );
        assert_eq!(summary(&out), (s(&["gw-1/temp=-1@1500"]), vec![]));

        let dbirth = bytes(
            2_100,
            Some(2),
            vec![
                m("Inputs/Door Open", 1, DataType::Boolean, Value::Bool(false)),
                m("Status", 2, DataType::String, Value::Text("ok".into())),
            ],
        );
        let out = d.decode("spBv1.0/prison-3/DBIRTH/gw-1/door 7", &dbirth, NOW);
        assert_eq!(
            summary(&out),
            (
                s(&[
                    "door_7/inputs_door_open=false@2100",
                    "door_7/status=ok@2100"
                ]),
                vec![]
            )
        );
        assert_eq!(d.tracked(), 2);

        // Device aliases are the device's own: alias 1 is the door here.
        let ddata = bytes(
            2_200,
            Some(3),
            vec![data(1, DataType::Boolean, Value::Bool(true))],
        );
        let out = d.decode("spBv1.0/prison-3/DDATA/gw-1/door 7", &ddata, NOW);
        assert_eq!(
            summary(&out),
            (s(&["door_7/inputs_door_open=true@2200"]), vec![])
        );

        // By name too.
        let named = bytes(
            2_300,
            Some(4),
            vec![Metric {
                name: Some("Status".into()),
                value: Some(MetricValue::StringValue("alarm".into())),
                ..Metric::default()
            }],
        );
        let out = d.decode("spBv1.0/prison-3/DDATA/gw-1/door 7", &named, NOW);
        assert_eq!(summary(&out), (s(&["door_7/status=alarm@2300"]), vec![]));
    }

    #[test]
    fn unknown_aliases_are_errors_until_the_next_birth() {
        let mut d = SparkplugDecoder::new();
        let early = bytes(
            1,
            Some(0),
            vec![
                data(1, DataType::Float, Value::Float(1.0)),
                data(2, DataType::Float, Value::Float(2.0)),
            ],
        );
        let out = d.decode("spBv1.0/g/NDATA/n", &early, NOW);
        assert_eq!(
            summary(&out),
            (vec![], vec!["unknown_alias"]),
            "counted once per message"
        );

        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        let mixed = bytes(
            2,
            Some(1),
            vec![
                data(1, DataType::Float, Value::Float(1.0)),
                data(9, DataType::Float, Value::Float(2.0)),
            ],
        );
        let out = d.decode("spBv1.0/g/NDATA/n", &mixed, NOW);
        assert_eq!(
            summary(&out),
            (s(&["n/supply_voltage=1@2"]), vec!["unknown_alias"])
        );

        let unnamed = bytes(
            3,
            Some(2),
            vec![Metric {
                name: Some("Nope".into()),
                ..Metric::default()
            }],
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDATA/n", &unnamed, NOW)).1,
            vec!["unknown_metric"]
        );

        let anonymous = bytes(3, Some(2), vec![Metric::default()]);
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDATA/n", &anonymous, NOW)).1,
            vec!["bad_metric"]
        );

        // A device never born.
        let ddata = bytes(
            3,
            Some(3),
            vec![data(1, DataType::Float, Value::Float(1.0))],
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/DDATA/n/x", &ddata, NOW)).1,
            vec!["unknown_alias"]
        );
    }

    /// The rebirth the decoder asks for, as `reason@group/node`.
    fn asks(out: &Decoded) -> Option<String> {
        out.rebirth
            .as_ref()
            .map(|r| format!("{}@{}/{}", r.reason.as_str(), r.group_id, r.edge_node_id))
    }

    fn volts(seq: u64) -> Vec<u8> {
        bytes(
            10,
            Some(seq),
            vec![data(1, DataType::Float, Value::Float(1.0))],
        )
    }

    #[test]
    fn data_without_a_birth_asks_for_one_and_a_birth_settles_it() {
        let mut d = SparkplugDecoder::new();
        // The agent subscribed after the node's NBIRTH: data only.
        let out = d.decode("spBv1.0/g/NDATA/n", &volts(7), NOW);
        assert_eq!(summary(&out).1, vec!["unknown_alias"]);
        assert_eq!(asks(&out).as_deref(), Some("no_birth@g/n"));
        assert_eq!(
            asks(&d.decode("spBv1.0/g/NDATA/n", &volts(8), NOW)).as_deref(),
            Some("no_birth@g/n"),
            "as long as the condition lasts (the route rate-limits)"
        );
        let ddata = bytes(1, Some(9), vec![data(1, DataType::UInt16, Value::Int(8))]);
        assert_eq!(
            asks(&d.decode("spBv1.0/g/DDATA/n/tank", &ddata, NOW)).as_deref(),
            Some("no_birth@g/n")
        );
        // A DBIRTH without its node's NBIRTH is decoded, and still asks.
        let dbirth = bytes(
            1,
            Some(10),
            vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
        );
        let out = d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW);
        assert_eq!(summary(&out), (s(&["tank/level=7@1"]), vec![]));
        assert_eq!(asks(&out).as_deref(), Some("no_birth@g/n"));
        // Another node of the same group is its own case.
        assert_eq!(
            asks(&d.decode("spBv1.0/g/NDATA/other", &volts(0), NOW)).as_deref(),
            Some("no_birth@g/other")
        );

        // The rebirth: NBIRTH (seq 0), DBIRTH (seq 1); then data decodes and asks nothing.
        let out = d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        assert_eq!(out.rebirth, None);
        let dbirth = bytes(
            1,
            Some(1),
            vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
        );
        assert_eq!(
            d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW).rebirth,
            None
        );
        let out = d.decode("spBv1.0/g/NDATA/n", &volts(2), NOW);
        assert_eq!(summary(&out), (s(&["n/supply_voltage=1@10"]), vec![]));
        assert_eq!(out.rebirth, None);
        let out = d.decode(
            "spBv1.0/g/DDATA/n/tank",
            &bytes(1, Some(3), vec![data(1, DataType::UInt16, Value::Int(9))]),
            NOW,
        );
        assert_eq!(summary(&out), (s(&["tank/level=9@1"]), vec![]));
        assert_eq!(out.rebirth, None);

        // After its death, the node is unborn again.
        let death = bytes(40, None, vec![m(BD_SEQ, 0, DataType::Int64, Value::Int(3))]);
        assert_eq!(d.decode("spBv1.0/g/NDEATH/n", &death, NOW).rebirth, None);
        assert_eq!(
            asks(&d.decode("spBv1.0/g/NDATA/n", &volts(4), NOW)).as_deref(),
            Some("no_birth@g/n")
        );
    }

    #[test]
    fn an_unknown_alias_asks_for_a_rebirth() {
        let mut d = SparkplugDecoder::new();
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        let mixed = bytes(
            2,
            Some(1),
            vec![
                data(1, DataType::Float, Value::Float(1.0)),
                data(9, DataType::Float, Value::Float(2.0)),
            ],
        );
        let out = d.decode("spBv1.0/g/NDATA/n", &mixed, NOW);
        assert_eq!(
            summary(&out),
            (s(&["n/supply_voltage=1@2"]), vec!["unknown_alias"]),
            "what it can decode, it decodes"
        );
        assert_eq!(asks(&out).as_deref(), Some("unknown_alias@g/n"));
        // A device never born (its node is): the node's rebirth brings its DBIRTH.
        let ddata = bytes(
            3,
            Some(2),
            vec![data(1, DataType::Float, Value::Float(1.0))],
        );
        assert_eq!(
            asks(&d.decode("spBv1.0/g/DDATA/n/x", &ddata, NOW)).as_deref(),
            Some("unknown_alias@g/n")
        );
        // A name no birth listed.
        let named = bytes(
            4,
            Some(3),
            vec![Metric {
                name: Some("Nope".into()),
                ..Metric::default()
            }],
        );
        assert_eq!(
            asks(&d.decode("spBv1.0/g/NDATA/n", &named, NOW)).as_deref(),
            Some("unknown_alias@g/n")
        );
        // A metric with neither name nor alias is broken whatever the birth: no rebirth.
        let anonymous = bytes(5, Some(4), vec![Metric::default()]);
        let out = d.decode("spBv1.0/g/NDATA/n", &anonymous, NOW);
        assert_eq!(summary(&out).1, vec!["bad_metric"]);
        assert_eq!(out.rebirth, None);
        // Garbage is not the node's births' fault either.
        let out = d.decode("spBv1.0/g/NDATA/n", b"\x12\x05\x0a", NOW);
        assert_eq!(out.rebirth, None);
    }

    #[test]
    fn a_seq_gap_asks_for_a_rebirth_until_the_next_nbirth() {
        let mut d = SparkplugDecoder::new();
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW); // seq 0
        for seq in 1..=3 {
            assert_eq!(
                d.decode("spBv1.0/g/NDATA/n", &volts(seq), NOW).rebirth,
                None
            );
        }
        // A QoS 1 redelivery repeats the last seq: not a gap.
        assert_eq!(d.decode("spBv1.0/g/NDATA/n", &volts(3), NOW).rebirth, None);
        // 4 and 5 were lost. The data still decodes.
        let out = d.decode("spBv1.0/g/NDATA/n", &volts(6), NOW);
        assert_eq!(summary(&out), (s(&["n/supply_voltage=1@10"]), vec![]));
        assert_eq!(
            out.rebirth.as_ref().map(|r| r.reason),
            Some(RebirthReason::SeqGap {
                expected: 4,
                got: 6
            })
        );
        // The node stays suspect (the request may be lost too) until its NBIRTH.
        let out = d.decode("spBv1.0/g/NDATA/n", &volts(7), NOW);
        assert_eq!(asks(&out).as_deref(), Some("seq_gap@g/n"));
        let dbirth = bytes(
            1,
            Some(8),
            vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
        );
        assert_eq!(
            asks(&d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW)).as_deref(),
            Some("seq_gap@g/n")
        );
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW); // seq 0
        assert_eq!(d.decode("spBv1.0/g/NDATA/n", &volts(1), NOW).rebirth, None);
        // Device messages count in the node's seq, and it wraps after 255.
        let ddata = |seq| bytes(1, Some(seq), vec![data(1, DataType::UInt16, Value::Int(1))]);
        d.decode(
            "spBv1.0/g/DBIRTH/n/tank",
            &bytes(
                1,
                Some(2),
                vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
            ),
            NOW,
        );
        for seq in 3..=255 {
            let out = d.decode("spBv1.0/g/DDATA/n/tank", &ddata(seq), NOW);
            assert_eq!(out.rebirth, None, "seq {seq}");
        }
        assert_eq!(d.decode("spBv1.0/g/NDATA/n", &volts(0), NOW).rebirth, None);
        let out = d.decode("spBv1.0/g/DDEATH/n/tank", &bytes(1, Some(2), vec![]), NOW);
        assert_eq!(
            out.rebirth.map(|r| r.reason),
            Some(RebirthReason::SeqGap {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn never_asks_when_rebirth_is_off() {
        let mut d = SparkplugDecoder::new().with_rebirth(false);
        assert!(!d.requests_rebirth());
        let out = d.decode("spBv1.0/g/NDATA/n", &volts(7), NOW);
        assert_eq!(summary(&out).1, vec!["unknown_alias"]);
        assert_eq!(out.rebirth, None);
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        assert_eq!(d.decode("spBv1.0/g/NDATA/n", &volts(9), NOW).rebirth, None);
    }

    #[test]
    fn deaths_make_points_bad_and_forget_them() {
        let mut d = SparkplugDecoder::new();
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        let dbirth = bytes(
            10,
            Some(1),
            vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
        );
        d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW);

        // A stale will of an earlier session (bdSeq 2, the birth said 3) changes nothing.
        let stale = bytes(20, None, vec![m(BD_SEQ, 0, DataType::Int64, Value::Int(2))]);
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDEATH/n", &stale, NOW)),
            (vec![], vec![])
        );
        assert_eq!(d.tracked(), 2);

        let ddeath = bytes(30, Some(2), vec![]);
        let out = d.decode("spBv1.0/g/DDEATH/n/tank", &ddeath, NOW);
        assert_eq!(summary(&out), (s(&["tank/level=7@30!"]), vec![]));
        assert_eq!(d.tracked(), 1);

        d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW);
        let death = bytes(40, None, vec![m(BD_SEQ, 0, DataType::Int64, Value::Int(3))]);
        let mut out = d.decode("spBv1.0/g/NDEATH/n", &death, NOW);
        out.readings.sort_by(|a, b| a.point.cmp(&b.point));
        assert_eq!(
            summary(&out),
            (
                s(&[
                    "n/supply_voltage=24.5@40!",
                    "n/temp=-5@40!",
                    "tank/level=7@40!"
                ]),
                vec![]
            )
        );
        assert_eq!(d.tracked(), 0);
        let ndata = bytes(
            50,
            Some(5),
            vec![data(1, DataType::Float, Value::Float(1.0))],
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDATA/n", &ndata, NOW)).1,
            vec!["unknown_alias"]
        );
    }

    #[test]
    fn an_nbirth_forgets_the_devices() {
        let mut d = SparkplugDecoder::new();
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        d.decode(
            "spBv1.0/g/DBIRTH/n/tank",
            &bytes(
                1,
                Some(1),
                vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
            ),
            NOW,
        );
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        assert_eq!(d.tracked(), 1);
        let ddata = bytes(3, Some(3), vec![data(1, DataType::UInt16, Value::Int(8))]);
        assert_eq!(
            summary(&d.decode("spBv1.0/g/DDATA/n/tank", &ddata, NOW)).1,
            vec!["unknown_alias"]
        );
    }

    #[test]
    fn a_device_born_before_its_node() {
        let mut d = SparkplugDecoder::new();
        let dbirth = bytes(
            1,
            Some(1),
            vec![m("Level", 1, DataType::UInt16, Value::Int(7))],
        );
        let out = d.decode("spBv1.0/g/DBIRTH/n/tank", &dbirth, NOW);
        assert_eq!(summary(&out), (s(&["tank/level=7@1"]), vec![]));
        assert_eq!(d.tracked(), 1);
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        assert_eq!(d.tracked(), 1);
        let death = bytes(40, None, vec![m(BD_SEQ, 0, DataType::Int64, Value::Int(3))]);
        d.decode("spBv1.0/g/NDEATH/n", &death, NOW);
        assert_eq!(d.tracked(), 0);
    }

    /// The tables counted are the tables held, whatever the order of births and deaths.
    fn held(d: &SparkplugDecoder) -> usize {
        d.nodes.values().map(Node::tables).sum()
    }

    proptest::proptest! {
        #[test]
        fn table_count_survives_any_sequence(
            steps in proptest::collection::vec((0usize..6, 0usize..2, 0usize..3), 0..40),
        ) {
            let mut d = SparkplugDecoder::new();
            let birth = node_birth();
            let dbirth = bytes(1, Some(1), vec![m("Level", 1, DataType::UInt16, Value::Int(7))]);
            let death = bytes(2, None, vec![m(BD_SEQ, 0, DataType::Int64, Value::Int(3))]);
            let empty = bytes(2, None, vec![]);
            for (kind, node, device) in steps {
                let (topic, payload) = match kind {
                    0 => (format!("spBv1.0/g/NBIRTH/n{node}"), &birth),
                    1 => (format!("spBv1.0/g/DBIRTH/n{node}/d{device}"), &dbirth),
                    2 => (format!("spBv1.0/g/NDEATH/n{node}"), &death),
                    3 => (format!("spBv1.0/g/DDEATH/n{node}/d{device}"), &empty),
                    4 => (format!("spBv1.0/g/NDATA/n{node}"), &dbirth),
                    _ => (format!("spBv1.0/g/DDATA/n{node}/d{device}"), &dbirth),
                };
                let _ = d.decode(&topic, payload, NOW);
                proptest::prop_assert_eq!(d.tracked(), held(&d));
            }
        }
    }

    #[test]
    fn null_and_historical_values() {
        let mut d = SparkplugDecoder::new();
        d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
        let mut historical = data(1, DataType::Float, Value::Float(20.0)).with_timestamp(1_100);
        historical.is_historical = Some(true);
        let null = Metric {
            alias: Some(1),
            is_null: Some(true),
            ..Metric::default()
        };
        let out = d.decode(
            "spBv1.0/g/NDATA/n",
            &bytes(1_200, Some(1), vec![historical, null]),
            NOW,
        );
        // The historical value does not replace the last real-time one (24.5).
        assert_eq!(
            summary(&out),
            (
                s(&["n/supply_voltage=20@1100", "n/supply_voltage=24.5@1200!"]),
                vec![]
            )
        );
    }

    #[test]
    fn bad_values_and_bad_births() {
        let mut d = SparkplugDecoder::new();
        let birth = bytes(
            1,
            Some(0),
            vec![
                Metric {
                    alias: Some(1),
                    datatype: Some(3),
                    ..Metric::default()
                },
                Metric {
                    name: Some("untyped".into()),
                    ..Metric::default()
                },
                Metric {
                    name: Some("odd".into()),
                    datatype: Some(99),
                    ..Metric::default()
                },
                Metric {
                    name: Some("温度".into()),
                    datatype: Some(9),
                    value: Some(MetricValue::FloatValue(1.0)),
                    ..Metric::default()
                },
                m("Table", 5, DataType::Int32, Value::Int(1)),
                Metric {
                    name: Some("Blob".into()),
                    alias: Some(6),
                    datatype: Some(17),
                    value: Some(MetricValue::BytesValue(vec![1])),
                    ..Metric::default()
                },
            ],
        );
        let out = d.decode("spBv1.0/g/NBIRTH/n", &birth, NOW);
        assert_eq!(
            summary(&out),
            (
                s(&["n/table=1@1"]),
                vec!["bad_metric", "bad_metric", "bad_metric", "bad_point_name"]
            )
        );
        // A string for an Int32, and a value for a bytes metric (not ingested: no error).
        let wrong = bytes(
            2,
            Some(1),
            vec![
                Metric {
                    alias: Some(5),
                    value: Some(MetricValue::StringValue("x".into())),
                    ..Metric::default()
                },
                Metric {
                    alias: Some(6),
                    value: Some(MetricValue::BytesValue(vec![2])),
                    ..Metric::default()
                },
            ],
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDATA/n", &wrong, NOW)),
            (vec![], vec!["bad_value"])
        );
    }

    #[test]
    fn not_sparkplug_at_all() {
        let mut d = SparkplugDecoder::new();
        assert_eq!(
            summary(&d.decode("facility/env/1", &node_birth(), NOW)).1,
            vec!["bad_topic"]
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NDATA/n", b"\x12\x05\x0a", NOW)).1,
            vec!["protobuf"]
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/g/NCMD/n", b"garbage", NOW)),
            (vec![], vec![])
        );
        assert_eq!(
            summary(&d.decode("spBv1.0/STATE/host", b"{\"online\":true}", NOW)),
            (vec![], vec![])
        );
    }

    #[test]
    fn the_number_of_tables_is_bounded() {
        let mut d = SparkplugDecoder::new();
        let birth = bytes(1, Some(0), vec![m("x", 1, DataType::Int32, Value::Int(1))]);
        for i in 0..MAX_SCOPES {
            let out = d.decode(&format!("spBv1.0/g/DBIRTH/n/d{i}"), &birth, NOW);
            assert!(out.errors.is_empty());
        }
        let out = d.decode("spBv1.0/g/DBIRTH/n/one-more", &birth, NOW);
        assert_eq!(summary(&out).1, vec!["too_many_devices"]);
        // A rebirth of a known device is still fine.
        assert!(d
            .decode("spBv1.0/g/DBIRTH/n/d0", &birth, NOW)
            .errors
            .is_empty());
        assert_eq!(d.tracked(), MAX_SCOPES);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(
            kind in proptest::sample::select(MessageType::ALL.to_vec()),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
        ) {
            let mut d = SparkplugDecoder::new();
            d.decode("spBv1.0/g/NBIRTH/n", &node_birth(), NOW);
            let topic = if kind.is_device() { format!("spBv1.0/g/{kind}/n/d") } else { format!("spBv1.0/g/{kind}/n") };
            let _ = d.decode(&topic, &payload, NOW);
        }
    }
}
