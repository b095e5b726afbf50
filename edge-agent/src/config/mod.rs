//! `agent.toml`: the agent's configuration (docs/ARCHITECTURE.md#configuration-files), as typed
//! serde structs with unknown keys rejected, and its semantic checks. Loading goes through
//! `vigil-config`, so every error names the file, the line and the key.

pub mod modbus;
pub mod mqtt;
pub mod rule;
pub mod tls;
pub mod update;

use std::collections::HashSet;
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
    /// Cameras (the camera pipeline reads these).
    #[serde(default)]
    pub camera: Vec<CameraConfig>,
    /// Streaming anomaly detectors (the detection pipeline reads these).
    #[serde(default)]
    pub detector: Vec<DetectorConfig>,
    /// `[[rule]]`: per-point overrides of the profiles' detection rules (see [`rule`]).
    #[serde(default)]
    pub rule: Vec<RuleOverride>,
    /// `[update]`: trusted keys, versions directory and trial period of signed updates.
    #[serde(default)]
    pub update: UpdateSection,
    /// `[tls]`: the CA, certificate and key of an `mqtts://` uplink (see [`tls`]).
    #[serde(default)]
    pub tls: TlsSection,
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
    /// `mqtt://host:port`, or `mqtts://host:port` once enrolled.
    pub url: String,
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
        if !(self.uplink.url.starts_with("mqtt://") || self.uplink.url.starts_with("mqtts://")) {
            out.push(Problem::new(
                "uplink.url",
                format!("{:?} must start with mqtt:// or mqtts://", self.uplink.url),
            ));
        }
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
        out.extend(self.update.validate());
        out
    }
}

impl AgentConfig {
    /// Loads and validates `agent.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        vigil_config::load(path)
    }
}
