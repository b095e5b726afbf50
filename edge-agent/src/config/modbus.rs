//! `[[modbus.device]]`: one Modbus device (TCP, or RTU on a serial bus), and where its points
//! stand in the site's topology.
//!
//! # Zones: the installer's site topology wins
//!
//! Correlation fuses conditions of one *zone*
//! (docs/ARCHITECTURE.md#correlation-and-incidents). A device profile may name zones for its
//! points (`fence-zone-3`, `fire-zone-4`), but those are the controller's own inputs, not
//! places on a site: only the installer knows where they are.
//! The zone of one point of a device is, first match wins:
//!
//! 1. a `[[rule]] zone` naming the point (or `device/*`), see [`super::rule`];
//! 2. the device's `zones` map entry for the point's profile zone;
//! 3. the device's `zone`;
//! 4. the point's profile zone, as a default for a device with neither.
//!
//! ```toml
//! [[modbus.device]]
//! id = "fire-panel"
//! profile = "fire-alarm-panel"
//! zone = "plant"                            # every point of the panel…
//! zones = { fire-zone-4 = "kitchen" }       # …but its zone-4 loop is in the kitchen
//! ```
//!
//! A `zones` key that names no zone of the device's profile is a config error (a typo would
//! otherwise silently leave the points elsewhere); [`check_zones`] checks it once profiles
//! are loaded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// The site zone of every point of the device, for correlation (overrides the zones its
    /// profile names; see the module doc).
    #[serde(default)]
    pub zone: Option<String>,
    /// A multi-zone controller's profile zones mapped to site zones, e.g.
    /// `{ fence-zone-3 = "north-perimeter" }`; a mapped profile zone wins over `zone`.
    #[serde(default)]
    pub zones: BTreeMap<String, String>,
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
    /// The site zone of one of the device's points whose profile gives it `profile_zone`
    /// (before any `[[rule]]`): the `zones` mapping of that zone, else the device's `zone`,
    /// else the profile zone itself.
    pub fn site_zone<'a>(&'a self, profile_zone: Option<&'a str>) -> Option<&'a str> {
        profile_zone
            .and_then(|z| self.zones.get(z))
            .map(String::as_str)
            .or(self.zone.as_deref())
            .or(profile_zone)
    }

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
        if let Some(zone) = &self.zone {
            if !super::rule::valid_zone(zone) {
                out.push(Problem::new(
                    key("zone"),
                    format!("{zone:?}: use 1-64 letters, digits, '-', '_' and '.'"),
                ));
            }
        }
        for (from, to) in &self.zones {
            if !super::rule::valid_zone(to) {
                out.push(Problem::new(
                    key(&format!("zones.{from}")),
                    format!("{to:?}: use 1-64 letters, digits, '-', '_' and '.'"),
                ));
            }
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

/// The checks of each device's `zones` against its loaded profile: every key must be a zone
/// the profile names for some point. `profiles` are the devices' profiles in config order
/// (as `check_cmd::load_checked` returns them).
pub fn check_zones(devices: &[ModbusDevice], profiles: &[vigil_profile::Profile]) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, (device, profile)) in devices.iter().zip(profiles).enumerate() {
        let known: BTreeSet<&str> = profile
            .points
            .iter()
            .filter_map(|p| p.zone.as_deref())
            .collect();
        for from in device.zones.keys() {
            if known.contains(from.as_str()) {
                continue;
            }
            let hint = if known.is_empty() {
                "it names no zones: set zone = \"...\" for all of the device's points instead"
                    .to_owned()
            } else {
                format!(
                    "its zones are {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                )
            };
            out.push(Problem::new(
                format!("modbus.device[{i}].zones.{from}"),
                format!(
                    "device {:?}: profile {:?} has no zone {from:?} ({hint})",
                    device.id, profile.name
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vigil_config::ConfigErrors;

    use super::*;
    use crate::config::AgentConfig;

    fn load(device: &str) -> Result<AgentConfig, ConfigErrors> {
        let text = format!(
            r#"[node]
id = "gw-1"
site = "ministry/p"
[uplink]
url = "mqtt://127.0.0.1:1883"
[store]
path = "/tmp/a.db"
[[modbus.device]]
id = "fence-north"
profile = "fence"
transport = "tcp"
address = "127.0.0.1:502"
{device}
"#
        );
        vigil_config::parse(Path::new("agent.toml"), &text)
    }

    fn fence(zones: &[&str]) -> vigil_profile::Profile {
        let mut text = "name: fence\nmanufacturer: x\nmodel: y\npoints:\n".to_owned();
        for (i, z) in zones.iter().enumerate() {
            text += &format!(
                "  - {{ name: zone{i}_alarm, table: discrete_input, address: {i}, type: bool, zone: {z} }}\n"
            );
        }
        text += "  - { name: supply_voltage, table: input, address: 10, type: u16 }\n";
        vigil_profile::parse_profile(Path::new("fence.yaml"), &text).expect("valid profile")
    }

    #[test]
    fn site_zone_precedence_is_mapping_then_zone_then_profile() {
        let config =
            load("zone = \"north\"\nzones = { fence-zone-3 = \"north-east\" }").expect("valid");
        let d = &config.modbus.device[0];
        assert_eq!(d.site_zone(Some("fence-zone-3")), Some("north-east"));
        assert_eq!(d.site_zone(Some("fence-zone-1")), Some("north"));
        assert_eq!(d.site_zone(None), Some("north"));
        let config = load("zones = { fence-zone-3 = \"north-east\" }").expect("valid");
        let d = &config.modbus.device[0];
        assert_eq!(d.site_zone(Some("fence-zone-3")), Some("north-east"));
        assert_eq!(d.site_zone(Some("fence-zone-1")), Some("fence-zone-1"));
        assert_eq!(d.site_zone(None), None);
    }

    #[test]
    fn a_zones_key_must_name_a_zone_of_the_profile() {
        let config = load("zones = { fence-zone-3 = \"north\", fence-zone-9 = \"north\" }")
            .expect("valid syntax");
        let got = check_zones(
            &config.modbus.device,
            &[fence(&["fence-zone-1", "fence-zone-3"])],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].key, "modbus.device[0].zones.fence-zone-9");
        assert_eq!(
            got[0].message,
            "device \"fence-north\": profile \"fence\" has no zone \"fence-zone-9\" (its zones are fence-zone-1, fence-zone-3)"
        );
        let got = check_zones(&config.modbus.device, &[fence(&[])]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].message.contains("it names no zones"), "{got:?}");
    }

    #[test]
    fn zone_names_are_checked() {
        let e = load("zone = \"north perimeter\"").expect_err("a space");
        assert_eq!(e.0[0].key, "modbus.device[0].zone", "{e}");
        assert_eq!(e.0[0].line, Some(13), "{e}");
        let e = load("zones = { fence-zone-3 = \"\" }").expect_err("empty");
        assert_eq!(e.0[0].key, "modbus.device[0].zones.fence-zone-3", "{e}");
        assert_eq!(e.0[0].line, Some(13), "{e}");
    }
}
