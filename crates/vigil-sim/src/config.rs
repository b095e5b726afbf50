//! The `sim.toml` schema: typed serde structs with unknown keys rejected, and the checks
//! that need nothing but the config itself ([`Validate`]). The checks that need the device
//! profiles (a profile that does not exist, a scenario on a point the profile lacks) live in
//! [`crate::facility`], which loads the profiles.
//!
//! Every duration is written like `"500ms"` or `"5m"`; every time in a scenario or fault is an
//! offset from the simulator's start. In short (`examples/facility.toml` is a whole facility):
//!
//! ```toml
//! seed = 42                                  # same seed, same run (noise, garbage, probabilities)
//!
//! [profiles]
//! dirs = ["../device-profiles"]              # relative to this file
//!
//! [[gateway]]                                # one TCP listener, several unit ids behind it
//! id = "gw-plant"
//! listen = "127.0.0.1:15030"                 # port 0: any free port (the handle tells which)
//!
//! [[bus]]                                    # Modbus RTU on a serial port
//! id = "rs485-1"
//! port = "/dev/ttyUSB0"
//! baud = 9600                                # parity = "none"|"even"|"odd", stop_bits = 1|2, data_bits = 7|8
//!
//! [[device]]
//! id = "fence-north"
//! profile = "perimeter-fence-controller"     # a name from [profiles] dirs, or a path to a .yaml
//! transport = "tcp"                          # tcp (default): listen or gateway | rtu: bus
//! listen = "127.0.0.1:15020"
//! unit = 1                                   # 1-247, unique per gateway and bus
//! [device.points.zone3_alarm]                # scenario of one point; others start normal
//! kind = "event"
//! at = "60s"
//! duration = "20s"
//! [[device.fault]]                           # silent | delay | exception | garbage | wrong_unit
//! kind = "silent"                            # | wrong_transaction | drop_connection
//! from = "8m"                                # default: from the start
//! until = "9m30s"                            # default: forever
//! probability = 1.0                          # share of requests hit while active
//!
//! [[mqtt]]
//! id = "env-1"
//! url = "mqtt://127.0.0.1:1883"
//! format = "json"                            # json | number | sparkplug_b (needs group)
//! interval = "5s"
//! [mqtt.fields.temp]
//! kind = "noise"
//! mean = 21.5
//! amplitude = 0.2
//! [[mqtt.fault]]
//! kind = "malformed"                         # malformed | silent
//! probability = 0.02
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_config::{Problem, Validate};

use crate::scenario::Scenario;

/// A whole simulated facility.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seeds every random choice (noise, garbage bytes, fault probabilities): the same seed
    /// gives the same run.
    #[serde(default)]
    pub seed: u64,
    /// Where device profiles are found.
    #[serde(default)]
    pub profiles: ProfilesConfig,
    /// Modbus TCP listeners shared by several unit ids (a serial-to-Ethernet gateway).
    #[serde(default, rename = "gateway")]
    pub gateways: Vec<GatewayConfig>,
    /// Serial buses (RS-485) for Modbus RTU devices.
    #[serde(default, rename = "bus")]
    pub buses: Vec<BusConfig>,
    /// Simulated Modbus devices.
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceConfig>,
    /// Simulated MQTT sensors and Sparkplug B edge nodes.
    #[serde(default)]
    pub mqtt: Vec<MqttConfig>,
}

/// `[profiles]`: where profile names are looked up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesConfig {
    /// Directories of `<name>.yaml` profiles; relative paths are relative to the config
    /// file's directory.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

/// `[[gateway]]`: one Modbus TCP listener that several devices (unit ids) share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway's id, which devices name in `gateway = "…"`.
    pub id: String,
    /// The address to listen on, e.g. `"127.0.0.1:15030"` (port 0: any free port).
    pub listen: SocketAddr,
}

/// `[[bus]]`: one serial port with Modbus RTU devices on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// The bus's id, which devices name in `bus = "…"`.
    pub id: String,
    /// The serial port, e.g. `"/dev/ttyUSB0"` or one end of a `socat` pty pair.
    pub port: PathBuf,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Parity: `none`, `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// Stop bits: 1 or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Data bits: 7 or 8 (Modbus RTU uses 8).
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
}

const fn default_baud() -> u32 {
    9600
}

const fn default_stop_bits() -> u8 {
    1
}

const fn default_data_bits() -> u8 {
    8
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity (the Modbus default on many devices).
    Even,
    /// Odd parity.
    Odd,
}

/// How a Modbus device is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP (MBAP framing): `listen` or `gateway`.
    #[default]
    Tcp,
    /// Modbus RTU on a serial bus: `bus`.
    Rtu,
}

/// `[[device]]`: one simulated Modbus device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The device's id (unique in the facility), as the agent names it.
    pub id: String,
    /// A profile name from `[profiles] dirs`, or a path to a `.yaml` profile.
    pub profile: String,
    /// `tcp` (default) or `rtu`.
    #[serde(default)]
    pub transport: Transport,
    /// TCP: the device's own listener, e.g. `"127.0.0.1:15020"` (port 0: any free port).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// TCP: the id of a `[[gateway]]` whose listener the device shares.
    #[serde(default)]
    pub gateway: Option<String>,
    /// RTU: the id of the `[[bus]]` the device is on.
    #[serde(default)]
    pub bus: Option<String>,
    /// The Modbus unit id (slave address), 1-247.
    #[serde(default = "default_unit")]
    pub unit: u8,
    /// Scenarios of points by point name; points not named get a normal default value.
    #[serde(default)]
    pub points: BTreeMap<String, Scenario>,
    /// Scripted faults, each in a time window or always.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultConfig>,
}

const fn default_unit() -> u8 {
    1
}

/// The kinds of scripted faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Modbus: the request is read and dropped; no answer (the client times out).
    /// MQTT: nothing is published.
    Silent,
    /// Modbus: answer after `delay`.
    Delay,
    /// Modbus: answer every request with exception `code`.
    Exception,
    /// Modbus: answer with random bytes (TCP: behind a broken MBAP header).
    Garbage,
    /// Modbus: answer with another unit id (`unit`, default the device's unit + 1).
    WrongUnit,
    /// Modbus TCP: answer with another transaction id.
    WrongTransaction,
    /// Modbus TCP: close the connection instead of answering.
    DropConnection,
    /// MQTT: publish a garbage payload instead of the message.
    Malformed,
}

impl FaultKind {
    /// The name used in `sim.toml` and in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Silent => "silent",
            FaultKind::Delay => "delay",
            FaultKind::Exception => "exception",
            FaultKind::Garbage => "garbage",
            FaultKind::WrongUnit => "wrong_unit",
            FaultKind::WrongTransaction => "wrong_transaction",
            FaultKind::DropConnection => "drop_connection",
            FaultKind::Malformed => "malformed",
        }
    }
}

/// `[[device.fault]]` / `[[mqtt.fault]]`: one scripted fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// What goes wrong.
    pub kind: FaultKind,
    /// When it starts (default: at the simulator's start).
    #[serde(default, with = "humantime_serde")]
    pub from: Option<Duration>,
    /// When it ends (default: never).
    #[serde(default, with = "humantime_serde")]
    pub until: Option<Duration>,
    /// The share of requests (or messages) it hits while active, 0-1 (default 1: all).
    #[serde(default = "default_probability")]
    pub probability: f64,
    /// `delay`: how long to wait before answering.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    /// `exception`: the exception code to answer with (1-255; 4 = server device failure).
    #[serde(default)]
    pub code: Option<u8>,
    /// `wrong_unit`: the unit id to answer with (default the device's unit + 1).
    #[serde(default)]
    pub unit: Option<u8>,
}

const fn default_probability() -> f64 {
    1.0
}

/// `[[mqtt]]`: one simulated MQTT client — a sensor, or a Sparkplug B edge node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// The sensor's id (unique among MQTT sensors); `{id}` in topics. For Sparkplug B, the
    /// edge node id.
    pub id: String,
    /// The broker, `mqtt://host:port` (port default 1883).
    pub url: String,
    /// The payload format: `json`, `number` or `sparkplug_b`.
    #[serde(default)]
    pub format: MqttFormat,
    /// How often to publish.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// The topic. `json` default `facility/env/{id}/telemetry`; `number` default
    /// `facility/env/{id}/{field}` (one message per field); `sparkplug_b` ignores it (the
    /// Sparkplug topic namespace applies). `{id}` and `{field}` are replaced.
    #[serde(default)]
    pub topic: Option<String>,
    /// MQTT QoS of the publications: 0 or 1.
    #[serde(default)]
    pub qos: u8,
    /// Publish retained.
    #[serde(default)]
    pub retain: bool,
    /// The MQTT client id (default `vigil-sim-{id}`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// `sparkplug_b`: the Sparkplug group id.
    #[serde(default)]
    pub group: Option<String>,
    /// The published fields (JSON keys, `{field}` in number topics, Sparkplug node metrics)
    /// and their scenarios.
    #[serde(default)]
    pub fields: BTreeMap<String, Scenario>,
    /// `sparkplug_b`: devices behind the edge node (DBIRTH/DDATA).
    #[serde(default, rename = "device")]
    pub devices: Vec<SparkplugDeviceConfig>,
    /// Scripted faults: `malformed` or `silent`.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultConfig>,
}

const fn default_interval() -> Duration {
    Duration::from_secs(1)
}

/// MQTT payload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MqttFormat {
    /// One JSON object per interval: `{"ts": <epoch ms>, "<field>": <value>, …}`.
    #[default]
    Json,
    /// One message per field per interval, the payload a plain number (`21.5`; bools `1`/`0`).
    Number,
    /// Sparkplug B: NBIRTH then NDATA (and DBIRTH/DDATA for devices), protobuf.
    SparkplugB,
}

impl MqttFormat {
    /// The name used in `sim.toml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MqttFormat::Json => "json",
            MqttFormat::Number => "number",
            MqttFormat::SparkplugB => "sparkplug_b",
        }
    }
}

/// `[[mqtt.device]]`: a Sparkplug B device behind an edge node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkplugDeviceConfig {
    /// The Sparkplug device id.
    pub id: String,
    /// The device's metrics and their scenarios.
    pub fields: BTreeMap<String, Scenario>,
}

/// Whether `s` is a usable id: 1-64 of letters, digits, `-`, `_`, `.`.
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_id(out: &mut Vec<Problem>, key: String, id: &str) {
    if !valid_id(id) {
        out.push(Problem::new(
            key,
            format!("{id:?} is not a valid id: use 1-64 letters, digits, '-', '_' and '.'"),
        ));
    }
}

fn check_faults(out: &mut Vec<Problem>, at: &str, faults: &[FaultConfig], allowed: &[FaultKind]) {
    for (i, f) in faults.iter().enumerate() {
        let key = |k: &str| format!("{at}.fault[{i}].{k}");
        if !allowed.contains(&f.kind) {
            let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
            out.push(Problem::new(
                key("kind"),
                format!(
                    "a {} fault does not apply here: use one of {}",
                    f.kind.as_str(),
                    names.join(", ")
                ),
            ));
        }
        if let (Some(from), Some(until)) = (f.from, f.until) {
            if until <= from {
                out.push(Problem::new(
                    key("until"),
                    "must be later than `from` (or left out: the fault never ends)",
                ));
            }
        }
        if !(f.probability.is_finite() && f.probability > 0.0 && f.probability <= 1.0) {
            out.push(Problem::new(
                key("probability"),
                format!("{} is not in (0, 1]", f.probability),
            ));
        }
        match (f.kind, f.delay) {
            (FaultKind::Delay, None) => out.push(Problem::new(
                key("delay"),
                "a delay fault needs `delay`, e.g. delay = \"800ms\"",
            )),
            (k, Some(_)) if k != FaultKind::Delay => out.push(Problem::new(
                key("delay"),
                "`delay` applies only to a delay fault",
            )),
            _ => {}
        }
        match (f.kind, f.code) {
            (FaultKind::Exception, None) => out.push(Problem::new(
                key("code"),
                "an exception fault needs `code`, e.g. code = 4 (server device failure)",
            )),
            (k, Some(_)) if k != FaultKind::Exception => out.push(Problem::new(
                key("code"),
                "`code` applies only to an exception fault",
            )),
            _ => {}
        }
        if f.unit.is_some() && f.kind != FaultKind::WrongUnit {
            out.push(Problem::new(
                key("unit"),
                "`unit` applies only to a wrong_unit fault",
            ));
        }
        if f.code == Some(0) {
            out.push(Problem::new(key("code"), "exception code 0 does not exist"));
        }
    }
}

fn check_scenarios(out: &mut Vec<Problem>, at: &str, scenarios: &BTreeMap<String, Scenario>) {
    for (name, s) in scenarios {
        for (k, m) in s.problems() {
            out.push(Problem::new(format!("{at}.{name}.{k}"), m));
        }
    }
}

const MODBUS_FAULTS: [FaultKind; 7] = [
    FaultKind::Silent,
    FaultKind::Delay,
    FaultKind::Exception,
    FaultKind::Garbage,
    FaultKind::WrongUnit,
    FaultKind::WrongTransaction,
    FaultKind::DropConnection,
];
const RTU_FAULTS: [FaultKind; 5] = [
    FaultKind::Silent,
    FaultKind::Delay,
    FaultKind::Exception,
    FaultKind::Garbage,
    FaultKind::WrongUnit,
];
const MQTT_FAULTS: [FaultKind; 2] = [FaultKind::Malformed, FaultKind::Silent];

impl Validate for SimConfig {
    fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut gateways = HashMap::new();
        let mut listens: HashMap<SocketAddr, String> = HashMap::new();
        let mut claim = |out: &mut Vec<Problem>, key: String, addr: SocketAddr| {
            if addr.port() == 0 {
                return;
            }
            if let Some(other) = listens.insert(addr, key.clone()) {
                out.push(Problem::new(
                    key,
                    format!("{addr} is already the listener of {other}: to share one listener between unit ids, declare a [[gateway]] and name it in each device"),
                ));
            }
        };
        for (i, g) in self.gateways.iter().enumerate() {
            check_id(&mut out, format!("gateway[{i}].id"), &g.id);
            if gateways.insert(g.id.as_str(), i).is_some() {
                out.push(Problem::new(
                    format!("gateway[{i}].id"),
                    format!("gateway {:?} is declared twice", g.id),
                ));
            }
            claim(&mut out, format!("gateway[{i}].listen"), g.listen);
        }
        let mut buses = HashMap::new();
        for (i, b) in self.buses.iter().enumerate() {
            check_id(&mut out, format!("bus[{i}].id"), &b.id);
            if buses.insert(b.id.as_str(), i).is_some() {
                out.push(Problem::new(
                    format!("bus[{i}].id"),
                    format!("bus {:?} is declared twice", b.id),
                ));
            }
            if b.baud == 0 {
                out.push(Problem::new(format!("bus[{i}].baud"), "must be above 0"));
            }
            if !matches!(b.stop_bits, 1 | 2) {
                out.push(Problem::new(
                    format!("bus[{i}].stop_bits"),
                    "must be 1 or 2",
                ));
            }
            if !matches!(b.data_bits, 7 | 8) {
                out.push(Problem::new(
                    format!("bus[{i}].data_bits"),
                    "must be 7 or 8",
                ));
            }
        }
        let mut ids = HashMap::new();
        // (gateway or bus id) → unit → device index
        let mut units: HashMap<(&'static str, String, u8), usize> = HashMap::new();
        for (i, d) in self.devices.iter().enumerate() {
            let at = format!("device[{i}]");
            check_id(&mut out, format!("{at}.id"), &d.id);
            if let Some(first) = ids.insert(d.id.as_str(), i) {
                out.push(Problem::new(
                    format!("{at}.id"),
                    format!(
                        "device {:?} is already declared as device[{first}]: device ids must be unique",
                        d.id
                    ),
                ));
            }
            if !(1..=247).contains(&d.unit) {
                out.push(Problem::new(
                    format!("{at}.unit"),
                    format!(
                        "unit {} is out of range: use 1-247 (0 is broadcast, 248-255 are reserved)",
                        d.unit
                    ),
                ));
            }
            let mut shared_unit = |out: &mut Vec<Problem>, kind: &'static str, owner: &str| {
                if let Some(other) = units.insert((kind, owner.to_owned(), d.unit), i) {
                    out.push(Problem::new(
                        format!("{at}.unit"),
                        format!(
                            "unit {} is already used by device {:?} on {kind} {owner:?}: each unit id answers once per {kind}",
                            d.unit, self.devices[other].id
                        ),
                    ));
                }
            };
            match d.transport {
                Transport::Tcp => {
                    if d.bus.is_some() {
                        out.push(Problem::new(
                            format!("{at}.bus"),
                            "`bus` is for RTU devices: set transport = \"rtu\", or use `listen`/`gateway`",
                        ));
                    }
                    match (&d.listen, &d.gateway) {
                        (Some(_), Some(_)) => out.push(Problem::new(
                            format!("{at}.gateway"),
                            "give either `listen` (the device's own listener) or `gateway` (a shared one), not both",
                        )),
                        (None, None) => out.push(Problem::new(
                            format!("{at}.listen"),
                            "a TCP device needs `listen = \"127.0.0.1:15020\"` or `gateway = \"<[[gateway]] id>\"`",
                        )),
                        (Some(addr), None) => {
                            claim(&mut out, format!("{at}.listen"), *addr);
                        }
                        (None, Some(g)) => {
                            if gateways.contains_key(g.as_str()) {
                                shared_unit(&mut out, "gateway", g);
                            } else {
                                out.push(Problem::new(
                                    format!("{at}.gateway"),
                                    format!("no [[gateway]] has id {g:?}"),
                                ));
                            }
                        }
                    }
                    check_faults(&mut out, &at, &d.faults, &MODBUS_FAULTS);
                }
                Transport::Rtu => {
                    for (k, present) in [
                        ("listen", d.listen.is_some()),
                        ("gateway", d.gateway.is_some()),
                    ] {
                        if present {
                            out.push(Problem::new(
                                format!("{at}.{k}"),
                                format!("`{k}` is for TCP devices: an RTU device names its `bus`"),
                            ));
                        }
                    }
                    match &d.bus {
                        None => out.push(Problem::new(
                            format!("{at}.bus"),
                            "an RTU device needs `bus = \"<[[bus]] id>\"`",
                        )),
                        Some(b) if !buses.contains_key(b.as_str()) => out.push(Problem::new(
                            format!("{at}.bus"),
                            format!("no [[bus]] has id {b:?}"),
                        )),
                        Some(b) => shared_unit(&mut out, "bus", b),
                    }
                    check_faults(&mut out, &at, &d.faults, &RTU_FAULTS);
                }
            }
            check_scenarios(&mut out, &format!("{at}.points"), &d.points);
        }
        let mut mqtt_ids = HashMap::new();
        for (i, m) in self.mqtt.iter().enumerate() {
            let at = format!("mqtt[{i}]");
            check_id(&mut out, format!("{at}.id"), &m.id);
            if mqtt_ids.insert(m.id.as_str(), i).is_some() {
                out.push(Problem::new(
                    format!("{at}.id"),
                    format!("MQTT sensor {:?} is declared twice", m.id),
                ));
            }
            if let Err(e) = crate::mqtt::plain_broker(&m.url) {
                out.push(Problem::new(format!("{at}.url"), e.to_string()));
            }
            if m.interval.is_zero() {
                out.push(Problem::new(
                    format!("{at}.interval"),
                    "must be longer than 0s",
                ));
            }
            if m.qos > 1 {
                out.push(Problem::new(format!("{at}.qos"), "must be 0 or 1"));
            }
            let sparkplug = m.format == MqttFormat::SparkplugB;
            if sparkplug && m.group.is_none() {
                out.push(Problem::new(
                    format!("{at}.group"),
                    "a sparkplug_b sensor needs the Sparkplug `group` id",
                ));
            }
            if !sparkplug {
                if m.group.is_some() {
                    out.push(Problem::new(
                        format!("{at}.group"),
                        "`group` applies only to format = \"sparkplug_b\"",
                    ));
                }
                if !m.devices.is_empty() {
                    out.push(Problem::new(
                        format!("{at}.device"),
                        "devices apply only to format = \"sparkplug_b\"",
                    ));
                }
            }
            if m.fields.is_empty() && m.devices.is_empty() {
                out.push(Problem::new(
                    format!("{at}.fields"),
                    "give at least one field, e.g. [mqtt.fields.temp] kind = \"noise\" …",
                ));
            }
            check_scenarios(&mut out, &format!("{at}.fields"), &m.fields);
            let mut dev_ids = HashMap::new();
            for (j, d) in m.devices.iter().enumerate() {
                check_id(&mut out, format!("{at}.device[{j}].id"), &d.id);
                if dev_ids.insert(d.id.as_str(), j).is_some() {
                    out.push(Problem::new(
                        format!("{at}.device[{j}].id"),
                        format!("Sparkplug device {:?} is declared twice", d.id),
                    ));
                }
                check_scenarios(&mut out, &format!("{at}.device[{j}].fields"), &d.fields);
            }
            check_faults(&mut out, &at, &m.faults, &MQTT_FAULTS);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<SimConfig, vigil_config::ConfigErrors> {
        vigil_config::parse(Path::new("sim.toml"), text)
    }

    const GOOD: &str = r#"
seed = 7

[[gateway]]
id = "gw"
listen = "127.0.0.1:0"

[[device]]
id = "a"
profile = "ups"
listen = "127.0.0.1:0"

[[device]]
id = "b"
profile = "ups"
gateway = "gw"
unit = 2

[device.points.battery_percent]
kind = "drift"
start = 100
rate = -0.5

[[device.fault]]
kind = "silent"
from = "10s"
until = "20s"
"#;

    #[test]
    fn a_good_config_parses() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.seed, 7);
        assert_eq!(c.devices.len(), 2);
        assert_eq!(c.devices[1].faults[0].until, Some(Duration::from_secs(20)));
        assert!(c.devices[1].points.contains_key("battery_percent"));
    }

    fn keys(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn duplicates_are_named() {
        let text = format!(
            "{GOOD}\n[[device]]\nid = \"b\"\nprofile = \"ups\"\ngateway = \"gw\"\nunit = 2\n"
        );
        let k = keys(&text);
        assert!(k.contains(&"device[2].id".to_owned()), "{k:?}");
        assert!(k.contains(&"device[2].unit".to_owned()), "{k:?}");
    }

    #[test]
    fn transports_need_their_keys() {
        let k = keys("[[device]]\nid = \"a\"\nprofile = \"ups\"\n\n[[device]]\nid = \"b\"\nprofile = \"ups\"\ntransport = \"rtu\"\nlisten = \"127.0.0.1:1\"\n");
        assert_eq!(k, ["device[0].listen", "device[1].listen", "device[1].bus"]);
    }

    #[test]
    fn faults_are_checked() {
        let text = "[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n[[device.fault]]\nkind = \"delay\"\n[[device.fault]]\nkind = \"malformed\"\ncode = 3\n";
        let e = parse(text).expect_err("invalid");
        let k: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            k,
            [
                "device[0].fault[0].delay",
                "device[0].fault[1].kind",
                "device[0].fault[1].code"
            ]
        );
        assert_eq!(e.0[0].line, Some(5), "{e}");
    }

    #[test]
    fn same_port_twice_suggests_a_gateway() {
        let text = "[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:1502\"\n[[device]]\nid = \"b\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:1502\"\nunit = 2\n";
        let e = parse(text).expect_err("invalid");
        assert_eq!(e.0[0].key, "device[1].listen");
        assert!(e.0[0].message.contains("[[gateway]]"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = parse(
            "[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\nadress = 1\n",
        )
        .expect_err("typo");
        assert_eq!(e.0[0].key, "device[0].adress");
        assert_eq!(e.0[0].line, Some(5));
    }
}
