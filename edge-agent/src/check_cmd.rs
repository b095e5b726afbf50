//! `vigil-agent check --config agent.toml`: validates the config and everything it names
//! (device profiles) without running anything, and says what the agent would run.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

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
    config.tls.resolve(&dir);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let resolved = profiles::resolve_devices(&config, &dir).and_then(|profiles| {
        let mut unknown = crate::config::rule::check_points(&config, &profiles);
        unknown.extend(crate::config::modbus::check_zones(
            &config.modbus.device,
            &profiles,
        ));
        if config.uplink.url.tls {
            unknown.extend(crate::config::tls::check_files(
                &config.tls.files(Path::new("")),
                path,
            ));
        }
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
    if let Err(errors) = report_tls(&config, path, out)? {
        return Ok(Err(errors));
    }
    if let Err(errors) = report_update(&config, path, out)? {
        return Ok(Err(errors));
    }
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
    let not_run = |n: usize| {
        if n > 0 {
            " (ignored: not supported by this version)"
        } else {
            ""
        }
    };
    writeln!(
        out,
        "  cameras   {}{}",
        config.camera.len(),
        not_run(config.camera.len())
    )?;
    writeln!(
        out,
        "  detectors {}{}",
        config.detector.len(),
        not_run(config.detector.len())
    )?;
    for section in &config.ignored {
        writeln!(out, "  warning: {section}")?;
    }
    Ok(Ok(()))
}

/// The `updates` line of `check`: the trusted keys of `[update]` must be readable public keys
/// (or `update apply` would refuse every bundle), and where the versions live.
fn report_update(
    config: &AgentConfig,
    path: &Path,
    out: &mut dyn Write,
) -> std::io::Result<Result<(), ConfigErrors>> {
    if config.update.trusted_keys.is_empty() {
        writeln!(
            out,
            "  updates   no trusted keys: every bundle is refused (set [update] trusted_keys)"
        )?;
        return Ok(Ok(()));
    }
    let settings = match crate::update::Settings::load(path) {
        Ok(settings) => settings,
        Err(errors) => return Ok(Err(errors)),
    };
    match settings.read_trusted_keys() {
        Ok(keys) => {
            writeln!(
                out,
                "  updates   {} trusted key(s), versions in {}",
                keys.len(),
                settings.dir.display()
            )?;
            Ok(Ok(()))
        }
        Err(errors) => Ok(Err(errors)),
    }
}

/// Certificates this close to expiry are warned about.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// The `tls` line of `check`: the certificate's node, its expiry (a warning under 30 days)
/// and whether it names `[node] id`. An expired certificate, or one for another node, is an
/// error: the hub's broker would refuse the gateway. Plain `mqtt://` says enrollment is due.
fn report_tls(
    config: &AgentConfig,
    path: &Path,
    out: &mut dyn Write,
) -> std::io::Result<Result<(), ConfigErrors>> {
    if !config.uplink.url.tls {
        writeln!(
            out,
            "  tls       not used: the uplink is plain mqtt://; to enroll, {}",
            crate::config::tls::enroll_hint(path)
        )?;
        return Ok(Ok(()));
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let error = |key: &str, message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.to_owned(),
            line: vigil_config::locate(&text, key),
            key: key.to_owned(),
            message,
        }])
    };
    let cert_path = &config.tls.cert;
    // The same reading `vigil-hub check` makes of its parent identity: the three files, a
    // key that goes with the certificate, who the certificate names and until when.
    let (node, not_after) = match config.tls.files(Path::new("")).identity() {
        Ok(identity) => (identity.node, identity.not_after),
        Err(e) => return Ok(Err(error("tls.cert", e.to_string()))),
    };
    let expires = chrono::DateTime::<chrono::Utc>::from(not_after).format("%Y-%m-%d %H:%M UTC");
    let left = not_after.duration_since(SystemTime::now()).ok();
    let matches = node == config.node.id;
    writeln!(
        out,
        "  tls       certificate for {node} ({}), expires {expires}{}",
        if matches {
            "matches [node] id"
        } else {
            "does NOT match [node] id"
        },
        left.map(|d| format!(" (in {} days)", d.as_secs() / 86400))
            .unwrap_or_default()
    )?;
    if !matches {
        return Ok(Err(error(
            "node.id",
            format!(
                "[node] id is {:?} but {} was issued to \"{node}\": the hub's broker lets this gateway publish only as \"{node}\"; enroll again with a token for {:?}, or set [node] id = \"{node}\"",
                config.node.id.as_str(),
                cert_path.display(),
                config.node.id.as_str(),
            ),
        )));
    }
    match left {
        None => {
            return Ok(Err(error(
                "tls.cert",
                format!(
                    "{} expired on {expires}: {}",
                    cert_path.display(),
                    crate::config::tls::enroll_hint(path)
                ),
            )))
        }
        Some(d) if d < EXPIRY_WARNING => writeln!(
            out,
            "  warning: the certificate expires in {} days: enroll again before then ({})",
            d.as_secs() / 86400,
            crate::config::tls::enroll_hint(path)
        )?,
        Some(_) => {}
    }
    Ok(Ok(()))
}
