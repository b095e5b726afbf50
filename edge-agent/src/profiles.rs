//! Finding the profile a device names: a profile name looked up in `[profiles] dirs`, or a
//! path to a `.yaml` file. Relative paths (of dirs and files) are taken from the directory of
//! the config file, so an agent started from anywhere reads the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_config::Problem;
use vigil_profile::Profile;

use crate::config::AgentConfig;

/// The profiles every `[[modbus.device]]` of a config uses, in device order.
pub fn resolve_devices(
    config: &AgentConfig,
    config_dir: &Path,
) -> Result<Vec<Profile>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut by_name: BTreeMap<String, (Profile, PathBuf)> = BTreeMap::new();
    for (i, dir) in config.profiles.dirs.iter().enumerate() {
        let dir = config_dir.join(dir);
        match vigil_profile::load_dir(&dir) {
            Ok(profiles) => {
                for p in profiles {
                    let file = dir.join(format!("{}.yaml", p.name));
                    by_name.entry(p.name.clone()).or_insert((p, file));
                }
            }
            Err(errors) => {
                for e in errors {
                    problems.push(Problem::new(format!("profiles.dirs[{i}]"), e.to_string()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, device) in config.modbus.device.iter().enumerate() {
        let key = format!("modbus.device[{i}].profile");
        let name = device.profile.as_str();
        if name.ends_with(".yaml") || name.ends_with(".yml") || name.contains('/') {
            match vigil_profile::load_file(&config_dir.join(name)) {
                Ok(p) => out.push(p),
                Err(errors) => problems.extend(
                    errors
                        .into_iter()
                        .map(|e| Problem::new(key.clone(), e.to_string())),
                ),
            }
        } else if let Some((p, _)) = by_name.get(name) {
            out.push(p.clone());
        } else {
            let known: Vec<&str> = by_name.keys().map(String::as_str).collect();
            problems.push(Problem::new(
                key,
                format!(
                    "no profile named {name:?} in [profiles] dirs ({}); known: {}",
                    config
                        .profiles
                        .dirs
                        .iter()
                        .map(|d| config_dir.join(d).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The directory a config file's relative paths are taken from.
pub fn config_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
