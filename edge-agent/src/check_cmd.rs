//! `vigil-agent check --config agent.toml`: validates the config and everything it names
//! (device profiles) without running anything, and says what the agent would run.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use vigil_config::{ConfigError, ConfigErrors};

use crate::config::{AgentConfig, Transport};
use crate::profiles;

/// Loads and checks the config; on success returns it with the devices' profiles.
pub fn load_checked(
    path: &Path,
) -> Result<(AgentConfig, Vec<vigil_profile::Profile>), ConfigErrors> {
    let mut config = AgentConfig::load(path)?;
    let dir = profiles::config_dir(path);
    // Relative paths in the config are taken from the config file's directory.
    if config.store.path.is_relative() {
        config.store.path = dir.join(&config.store.path);
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let resolved = profiles::resolve_devices(&config, &dir).and_then(|profiles| {
        let unknown = crate::config::rule::check_points(&config, &profiles);
        if unknown.is_empty() {
            Ok(profiles)
        } else {
            Err(unknown)
        }
    });
    match resolved {
        Ok(profiles) => Ok((config, profiles)),
        Err(problems) => Err(ConfigErrors(
            problems
                .into_iter()
                .map(|p| ConfigError {
                    file: path.to_owned(),
                    line: vigil_config::locate(&text, &p.key),
                    key: p.key,
                    message: p.message,
                })
                .collect(),
        )),
    }
}

/// Runs the check, writing a summary to `out`.
pub fn check(path: &Path, out: &mut dyn Write) -> Result<Result<(), ConfigErrors>, std::io::Error> {
    let (config, profiles) = match load_checked(path) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let points: usize = profiles.iter().map(|p| p.points.len()).sum();
    let buses: BTreeSet<_> = config
        .modbus
        .device
        .iter()
        .filter(|d| d.transport == Transport::Rtu)
        .filter_map(|d| d.port.as_ref())
        .collect();
    let tcp = config
        .modbus
        .device
        .iter()
        .filter(|d| d.transport == Transport::Tcp)
        .count();
    writeln!(out, "{}: ok", path.display())?;
    writeln!(
        out,
        "  node      {} at {}",
        config.node.id, config.node.site
    )?;
    writeln!(out, "  uplink    {}", config.uplink.url)?;
    writeln!(out, "  store     {}", config.store.path.display())?;
    writeln!(out, "  metrics   http://{}/metrics", config.metrics.listen)?;
    writeln!(
        out,
        "  modbus    {} devices ({} tcp, {} rtu on {} bus(es)), {} points",
        config.modbus.device.len(),
        tcp,
        config.modbus.device.len() - tcp,
        buses.len(),
        points
    )?;
    writeln!(
        out,
        "  mqtt      {} subscriptions",
        config.mqtt.subscription.len()
    )?;
    writeln!(out, "  cameras   {}", config.camera.len())?;
    writeln!(out, "  detectors {}", config.detector.len())?;
    Ok(Ok(()))
}
