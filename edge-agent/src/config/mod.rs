//! `agent.toml`: the agent's configuration (docs/ARCHITECTURE.md#configuration-files), as typed
//! serde structs with unknown keys rejected, and its semantic checks. Loading goes through
//! `vigil-config`, so every error names the file, the line and the key.

pub mod modbus;
pub mod mqtt;
pub mod posture;
pub mod rule;
pub mod tls;
pub mod update;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_config::{ConfigErrors, Problem, Validate};
use vigil_core::{NodeId, SitePath};

pub use modbus::{ModbusDevice, Parity, Transport};
pub use mqtt::{Decoder, MqttSubscription};
pub use rule::{PointPattern, RuleOverride};
pub use tls::TlsSection;
pub use update::{UpdatePaths, UpdateSection};

/// The whole `agent.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub node: NodeSection,
    pub uplink: UplinkSection,
    pub store: StoreSection,
    #[serde(default)]
    pub profiles: ProfilesSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub modbus: ModbusSection,
    #[serde(default)]
    pub mqtt: MqttSection,
    /// `[[camera]]`: accepted so that configs written for the camera pipeline load, but not
    /// acted on by this version ([`AgentConfig::ignored`] says so).
    #[serde(default)]
    pub camera: Vec<CameraConfig>,
    /// `[[detector]]`: accepted so that configs written for the streaming anomaly detectors
    /// load, but not acted on by this version ([`AgentConfig::ignored`] says so).
    #[serde(default)]
    pub detector: Vec<DetectorConfig>,
    /// `[[rule]]`: per-point overrides of the profiles' detection rules (see [`rule`]).
    #[serde(default)]
    pub rule: Vec<RuleOverride>,
    /// `[[posture]]`: the limits a `posture` directive from the hub arms for a while (see
    /// [`posture`]).
    #[serde(default)]
    pub posture: Vec<posture::PostureEntry>,
    /// `[update]`: trusted keys, versions directory and trial period of signed updates.
    #[serde(default)]
    pub update: UpdateSection,
    /// `[tls]`: the CA, certificate and key of an `mqtts://` uplink (see [`tls`]).
    #[serde(default)]
    pub tls: TlsSection,
    /// The sections of the file this version accepts but ignores, with their lines: filled
    /// by [`AgentConfig::load`], which knows the file (not a config key).
    #[serde(skip)]
    pub ignored: Vec<IgnoredSection>,
}

/// A section of `agent.toml` this version accepts but does not act on (`[[camera]]`,
/// `[[detector]]`): `check` prints it and `run` logs it as a warning, so nobody believes a
/// camera is watched when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSection {
    /// The config file.
    pub file: PathBuf,
    /// Its 1-based line, when it can be told.
    pub line: Option<usize>,
    /// The section, e.g. `[[camera]]`.
    pub section: &'static str,
    /// Which entry: the camera's id, the detector's type.
    pub name: String,
    /// What does not happen because it is ignored.
    pub consequence: &'static str,
}

impl fmt::Display for IgnoredSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(
            f,
            ": {} {} is not supported by this version and is ignored: {}",
            self.section, self.name, self.consequence
        )
    }
}

/// `[node]`: who this gateway is and where it stands in the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The gateway's node id, used in MQTT topics (`vigil/v1/up/{id}`).
    pub id: NodeId,
    /// The facility's site path, e.g. `ministry/guangdong/guangzhou/baiyun/prison-3`.
    pub site: SitePath,
}

/// `[uplink]`: the parent hub's broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkSection {
    /// `mqtt://host:port`, or `mqtts://host:port` once enrolled: checked as it is read
    /// ([`vigil_config::BrokerUrl`]), so a bad one names the file, line and key.
    pub url: vigil_config::BrokerUrl,
}

/// `[store]`: the agent's SQLite database (outbox and alert events).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The database file; a relative path is taken from the config file's directory.
    pub path: PathBuf,
}

/// `[profiles]`: where device profiles are looked up by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesSection {
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of `GET /metrics`; loopback unless configured otherwise.
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: default_metrics_listen(),
        }
    }
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}

/// `[modbus]`: `[[modbus.device]]` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusSection {
    #[serde(default)]
    pub device: Vec<ModbusDevice>,
}

/// `[mqtt]`: `[[mqtt.subscription]]` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    #[serde(default)]
    pub subscription: Vec<MqttSubscription>,
}

/// `[[camera]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub zone: Option<String>,
}

/// `[[detector]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub points: Vec<String>,
}

/// Whether `s` is usable as a device name in point ids (`device/point`).
pub(crate) fn valid_device_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Validate for AgentConfig {
    fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut ids = HashSet::new();
        for (i, d) in self.modbus.device.iter().enumerate() {
            if !ids.insert(d.id.as_str()) {
                out.push(Problem::new(
                    format!("modbus.device[{i}].id"),
                    format!("device id {:?} is used twice", d.id),
                ));
            }
            out.extend(d.validate(&format!("modbus.device[{i}]")));
        }
        out.extend(modbus::validate_buses(&self.modbus.device));
        out.extend(mqtt::validate_subscriptions(&self.mqtt.subscription));
        for (i, s) in self.mqtt.subscription.iter().enumerate() {
            out.extend(s.validate(&format!("mqtt.subscription[{i}]")));
        }
        for (i, c) in self.camera.iter().enumerate() {
            if !ids.insert(c.id.as_str()) {
                out.push(Problem::new(
                    format!("camera[{i}].id"),
                    format!("id {:?} is already used by another device or camera", c.id),
                ));
            }
            if !valid_device_name(&c.id) {
                out.push(Problem::new(
                    format!("camera[{i}].id"),
                    "use letters, digits, '-', '_' and '.'",
                ));
            }
        }
        out.extend(rule::validate_rules(self));
        out.extend(posture::validate_posture(&self.posture));
        out.extend(self.update.validate());
        out
    }
}

impl AgentConfig {
    /// Loads and validates `agent.toml`, and notes the sections it ignores.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let mut config: Self = vigil_config::load(path)?;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        config.ignored = config.ignored_sections(path, &text);
        Ok(config)
    }

    /// The `[[camera]]` and `[[detector]]` entries of this config, read from `text` (the
    /// file `path`): accepted, not acted on by this version.
    pub fn ignored_sections(&self, path: &Path, text: &str) -> Vec<IgnoredSection> {
        let cameras = self.camera.iter().enumerate().map(|(i, c)| IgnoredSection {
            file: path.to_owned(),
            line: vigil_config::locate(text, &format!("camera[{i}]")),
            section: "[[camera]]",
            name: c.id.clone(),
            consequence: "no video is analysed",
        });
        let detectors = self
            .detector
            .iter()
            .enumerate()
            .map(|(i, d)| IgnoredSection {
                file: path.to_owned(),
                line: vigil_config::locate(text, &format!("detector[{i}]")),
                section: "[[detector]]",
                name: format!("type {:?}", d.kind),
                consequence: if d.points.is_empty() {
                    "no streaming anomaly detection runs"
                } else {
                    "no streaming anomaly detection runs on its points"
                },
            });
        cameras.chain(detectors).collect()
    }
}
