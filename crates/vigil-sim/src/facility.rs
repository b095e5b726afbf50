//! A facility ready to simulate: `sim.toml` loaded and validated, and every device's profile
//! resolved and checked against the scenarios that name its points.
//!
//! This is the second pass after [`vigil_config`]'s schema and [`Validate`](vigil_config::Validate)
//! checks: it reads the profile files the config names, so it is the place for the problems
//! that need them — an unknown profile, a scenario on a point the profile does not have, text
//! on a numeric point. Each comes back as a [`ConfigError`] naming `sim.toml`'s line and key
//! (or the profile file's, for a broken profile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_config::{ConfigError, ConfigErrors, Problem};
use vigil_profile::{DataType, Profile, ProfileError};

use crate::config::SimConfig;
use crate::scenario::Yields;

/// A validated config with each device's profile.
#[derive(Debug, Clone)]
pub struct Facility {
    /// The config.
    pub config: SimConfig,
    /// Each device's profile, by device id.
    pub profiles: BTreeMap<String, Profile>,
}

impl Facility {
    /// Reads, validates and resolves `sim.toml`.
    pub fn load(path: &Path) -> Result<Facility, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: None,
                key: String::new(),
                message: format!("cannot read config: {e}"),
            }])
        })?;
        Facility::parse(path, &text)
    }

    /// Validates and resolves config text; `file` names it in errors, and relative profile
    /// paths are relative to its directory.
    pub fn parse(file: &Path, text: &str) -> Result<Facility, ConfigErrors> {
        let config: SimConfig = vigil_config::parse(file, text)?;
        let base = file.parent().unwrap_or(Path::new("."));
        Facility::resolve(config, base).map_err(|(problems, profile_errors)| {
            let mut errors: Vec<ConfigError> = problems
                .into_iter()
                .map(|p| ConfigError {
                    file: file.to_owned(),
                    line: vigil_config::locate(text, &p.key),
                    key: p.key,
                    message: p.message,
                })
                .collect();
            errors.extend(profile_errors.into_iter().map(|e| ConfigError {
                file: e.file,
                line: e.line,
                key: e.key,
                message: e.message,
            }));
            ConfigErrors(errors)
        })
    }

    /// Resolves the profiles of an already validated config; relative paths are relative to
    /// `base`. Errors: the problems in the config and the problems of broken profile files.
    pub fn resolve(
        config: SimConfig,
        base: &Path,
    ) -> Result<Facility, (Vec<Problem>, Vec<ProfileError>)> {
        let mut problems = Vec::new();
        let mut profile_errors = Vec::new();
        let mut by_name: BTreeMap<String, Profile> = BTreeMap::new();
        let dirs: Vec<PathBuf> = config.profiles.dirs.iter().map(|d| base.join(d)).collect();
        for (i, dir) in dirs.iter().enumerate() {
            if !dir.is_dir() {
                problems.push(Problem::new(
                    format!("profiles.dirs[{i}]"),
                    format!("{} is not a directory", dir.display()),
                ));
                continue;
            }
            match vigil_profile::load_dir(dir) {
                // An earlier directory wins, like a search path.
                Ok(profiles) => {
                    for p in profiles {
                        by_name.entry(p.name.clone()).or_insert(p);
                    }
                }
                Err(mut e) => profile_errors.append(&mut e),
            }
        }
        let mut profiles = BTreeMap::new();
        for (i, device) in config.devices.iter().enumerate() {
            let key = format!("device[{i}].profile");
            let name = device.profile.as_str();
            let is_path = name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml");
            let profile = if is_path {
                match vigil_profile::load_file(&base.join(name)) {
                    Ok(p) => p,
                    Err(mut e) => {
                        if e.iter().all(|e| e.line.is_none() && e.key.is_empty()) {
                            problems.push(Problem::new(
                                key,
                                e.iter()
                                    .map(|e| e.message.clone())
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            ));
                        } else {
                            profile_errors.append(&mut e);
                        }
                        continue;
                    }
                }
            } else if let Some(p) = by_name.get(name) {
                p.clone()
            } else {
                let message = if dirs.is_empty() {
                    format!("no profile {name:?}: there are no [profiles] dirs to look it up in; add dirs = [\"device-profiles\"] under [profiles], or give a path to a .yaml file")
                } else {
                    let known: Vec<&str> = by_name.keys().map(String::as_str).collect();
                    format!(
                        "no profile named {name:?} in [profiles] dirs; known profiles: {}",
                        known.join(", ")
                    )
                };
                problems.push(Problem::new(key, message));
                continue;
            };
            for (point, scenario) in &device.points {
                let key = format!("device[{i}].points.{point}");
                match profile.points.iter().find(|p| &p.name == point) {
                    None => {
                        let names: Vec<&str> =
                            profile.points.iter().map(|p| p.name.as_str()).collect();
                        problems.push(Problem::new(
                            key,
                            format!(
                                "profile {:?} has no point {point:?}; its points are {}",
                                profile.name,
                                names.join(", ")
                            ),
                        ));
                    }
                    Some(p)
                        if p.data_type != DataType::String && scenario.yields() == Yields::Text =>
                    {
                        problems.push(Problem::new(
                            key,
                            format!("point {point:?} is a {} point: its scenario must give numbers or bools, not text", p.data_type.as_str()),
                        ));
                    }
                    Some(_) => {}
                }
            }
            profiles.insert(device.id.clone(), profile);
        }
        if problems.is_empty() && profile_errors.is_empty() {
            Ok(Facility { config, profiles })
        } else {
            Err((problems, profile_errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles")
    }

    fn parse(text: &str) -> Result<Facility, ConfigErrors> {
        let text = format!(
            "[profiles]\ndirs = [{:?}]\n\n{text}",
            dir().display().to_string()
        );
        Facility::parse(Path::new("/tmp/sim.toml"), &text)
    }

    #[test]
    fn profiles_resolve_by_name_and_path() {
        let path = dir().join("ups.yaml");
        let f = parse(&format!(
            "[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n[[device]]\nid = \"b\"\nprofile = {:?}\nlisten = \"127.0.0.1:0\"\n",
            path.display().to_string()
        ))
        .expect("valid");
        assert_eq!(f.profiles["a"].name, "ups");
        assert_eq!(f.profiles["b"].name, "ups");
    }

    #[test]
    fn unknown_profiles_and_points_are_located() {
        let e = parse("[[device]]\nid = \"a\"\nprofile = \"upz\"\nlisten = \"127.0.0.1:0\"\n\n[[device]]\nid = \"b\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n[device.points.batery]\nkind = \"constant\"\nvalue = 3\n[device.points.battery_percent]\nkind = \"constant\"\nvalue = \"full\"\n")
            .expect_err("invalid");
        assert_eq!(e.0.len(), 3, "{e}");
        assert_eq!(e.0[0].key, "device[0].profile");
        assert_eq!(e.0[0].line, Some(6));
        assert!(
            e.0[0]
                .message
                .contains("known profiles: door-access-controller"),
            "{e}"
        );
        assert_eq!(e.0[1].key, "device[1].points.batery");
        assert_eq!(e.0[1].line, Some(13));
        assert!(e.0[1].message.contains("battery_percent"), "{e}");
        assert_eq!(e.0[2].key, "device[1].points.battery_percent");
        assert!(
            e.to_string()
                .starts_with("/tmp/sim.toml:6: device[0].profile: no profile named \"upz\""),
            "{e}"
        );
    }

    #[test]
    fn no_dirs_says_what_to_do() {
        let e = Facility::parse(
            Path::new("sim.toml"),
            "[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n",
        )
        .expect_err("no dirs");
        assert!(e.0[0].message.contains("[profiles]"), "{e}");
    }
}
