//! `[[modbus.device]]`: one Modbus device (TCP, or RTU on a serial bus).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_config::Problem;

/// How the agent reaches a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Modbus TCP (MBAP framing) to `address`.
    Tcp,
    /// Modbus RTU on the serial `port`; devices on one port share the bus.
    Rtu,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// One device instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusDevice {
    /// The device's name; its points are `id/point`.
    pub id: String,
    /// A profile name from `[profiles] dirs`, or a path to a `.yaml` file.
    pub profile: String,
    pub transport: Transport,
    /// TCP: `host:port`.
    #[serde(default)]
    pub address: Option<String>,
    /// RTU: the serial device, e.g. `/dev/ttyS1`.
    #[serde(default)]
    pub port: Option<PathBuf>,
    /// RTU: bits per second.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// RTU: parity.
    #[serde(default)]
    pub parity: Parity,
    /// RTU: stop bits (1 or 2).
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// Unit id (slave address): 1-247 on RTU; on TCP whatever the gateway expects.
    #[serde(default = "default_unit")]
    pub unit: u8,
    /// Scan interval.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll: Duration,
    /// How long to wait for each response.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of a failed request within one scan before the scan counts as failed.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The largest gap of unused registers (or bits) bridged to merge two reads into one.
    #[serde(default = "default_max_gap")]
    pub max_gap: u16,
    /// The zone the device's points belong to, for correlation.
    #[serde(default)]
    pub zone: Option<String>,
}

const fn default_baud() -> u32 {
    9600
}
const fn default_stop_bits() -> u8 {
    1
}
const fn default_unit() -> u8 {
    1
}
const fn default_poll() -> Duration {
    Duration::from_secs(1)
}
const fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
const fn default_retries() -> u32 {
    1
}
const fn default_max_gap() -> u16 {
    16
}

impl ModbusDevice {
    /// The semantic checks of one device; `at` is its key path.
    pub fn validate(&self, at: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let key = |k: &str| format!("{at}.{k}");
        if !super::valid_device_name(&self.id) {
            out.push(Problem::new(
                key("id"),
                format!("{:?}: use 1-64 letters, digits, '-', '_' and '.'", self.id),
            ));
        }
        match self.transport {
            Transport::Tcp => {
                match &self.address {
                    None => out.push(Problem::new(
                        key("address"),
                        "a tcp device needs address = \"host:port\"",
                    )),
                    Some(a) => {
                        let port_ok = a.rsplit_once(':').is_some_and(|(h, p)| {
                            !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                        });
                        if !port_ok {
                            out.push(Problem::new(
                                key("address"),
                                format!("{a:?} must be host:port, e.g. \"10.1.2.3:502\""),
                            ));
                        }
                    }
                }
                if self.port.is_some() {
                    out.push(Problem::new(
                        key("port"),
                        "'port' is the serial device of an rtu device; a tcp device uses 'address'",
                    ));
                }
            }
            Transport::Rtu => {
                if self.port.is_none() {
                    out.push(Problem::new(
                        key("port"),
                        "an rtu device needs port = \"/dev/ttyS1\" (its serial device)",
                    ));
                }
                if self.address.is_some() {
                    out.push(Problem::new(
                        key("address"),
                        "'address' is for tcp devices; an rtu device uses 'port'",
                    ));
                }
                if !(1..=247).contains(&self.unit) {
                    out.push(Problem::new(
                        key("unit"),
                        format!("unit {} is out of range: RTU unit ids are 1-247", self.unit),
                    ));
                }
            }
        }
        if !matches!(self.stop_bits, 1 | 2) {
            out.push(Problem::new(key("stop_bits"), "must be 1 or 2"));
        }
        if self.baud == 0 {
            out.push(Problem::new(key("baud"), "must be > 0"));
        }
        if self.poll.is_zero() {
            out.push(Problem::new(key("poll"), "must be longer than 0s"));
        }
        if self.timeout.is_zero() {
            out.push(Problem::new(key("timeout"), "must be longer than 0s"));
        }
        if self.max_gap > 124 {
            out.push(Problem::new(
                key("max_gap"),
                "must be at most 124 (a read is at most 125 registers)",
            ));
        }
        out
    }
}

/// Devices on one serial port share its settings: a bus has one baud rate.
pub fn validate_buses(devices: &[ModbusDevice]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut buses: HashMap<&PathBuf, (usize, &ModbusDevice)> = HashMap::new();
    let mut units: HashMap<(&PathBuf, u8), usize> = HashMap::new();
    for (i, d) in devices.iter().enumerate() {
        let (Transport::Rtu, Some(port)) = (d.transport, &d.port) else {
            continue;
        };
        if let Some((j, first)) = buses.get(port) {
            if (first.baud, first.parity, first.stop_bits) != (d.baud, d.parity, d.stop_bits) {
                out.push(Problem::new(
                    format!("modbus.device[{i}].baud"),
                    format!("port {} is also used by modbus.device[{j}] with other serial settings: one bus has one baud, parity and stop bits", port.display()),
                ));
            }
        } else {
            buses.insert(port, (i, d));
        }
        if let Some(j) = units.insert((port, d.unit), i) {
            out.push(Problem::new(
                format!("modbus.device[{i}].unit"),
                format!(
                    "unit {} on {} is already modbus.device[{j}]",
                    d.unit,
                    port.display()
                ),
            ));
        }
    }
    out
}
