//! `[update]`: how this gateway takes signed update bundles (`vigil-agent update apply`) and
//! how `vigil-agent supervise` tries a new version before keeping it.
//!
//! ```toml
//! [update]
//! trusted_keys = ["keys/release.pub"]   # vigil-fw public key files; relative to this file
//! dir = "/var/lib/vigil/versions"       # where versions live; default: versions/ next to the store
//! trial = "60s"                         # how long a new version must run healthy to be kept
//! ```
//!
//! The section is optional: without it the agent runs as before, and `update apply` refuses
//! every bundle because no key is trusted. Paths are resolved by [`UpdateSection::resolve`];
//! reading the key files is left to the command that needs them, so `check` stays pure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_config::Problem;

/// The shortest trial accepted: a version must at least get to answer `/healthz`.
pub const MIN_TRIAL: Duration = Duration::from_secs(1);
/// The longest trial accepted.
pub const MAX_TRIAL: Duration = Duration::from_secs(24 * 3600);

/// `[update]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSection {
    /// Public key files in `vigil-fw keygen`'s format (`vigil-ed25519:<base64> NAME` lines);
    /// a bundle must be signed by one of their keys. Relative to the config file's directory.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// Where installed versions live (`<dir>/<version>/`, `<dir>/current`, `<dir>/state.json`).
    /// Default: `versions/` in the directory of `[store] path`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// How long a newly applied version must run and answer `/healthz` before it is kept.
    #[serde(default = "default_trial", with = "humantime_serde")]
    pub trial: Duration,
}

impl Default for UpdateSection {
    fn default() -> Self {
        UpdateSection {
            trusted_keys: Vec::new(),
            dir: None,
            trial: default_trial(),
        }
    }
}

const fn default_trial() -> Duration {
    Duration::from_secs(60)
}

/// `[update]` with every path made absolute (or relative to the working directory when the
/// config path itself is relative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePaths {
    /// The trusted key files.
    pub trusted_keys: Vec<PathBuf>,
    /// The versions directory.
    pub dir: PathBuf,
}

impl UpdateSection {
    /// Resolves the key files against `config_dir` and the versions directory against
    /// `config_dir`, or next to `store_path` (already resolved) when `dir` is not set.
    pub fn resolve(&self, config_dir: &Path, store_path: &Path) -> UpdatePaths {
        let dir = match &self.dir {
            Some(dir) => config_dir.join(dir),
            None => store_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(config_dir)
                .join("versions"),
        };
        UpdatePaths {
            trusted_keys: self
                .trusted_keys
                .iter()
                .map(|k| config_dir.join(k))
                .collect(),
            dir,
        }
    }

    /// The section's own checks.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.trial < MIN_TRIAL || self.trial > MAX_TRIAL {
            out.push(Problem::new(
                "update.trial",
                format!(
                    "{} is out of range: give between 1s and 24h (e.g. \"60s\")",
                    humantime_serde::re::humantime::format_duration(self.trial)
                ),
            ));
        }
        for (i, key) in self.trusted_keys.iter().enumerate() {
            if key.as_os_str().is_empty() {
                out.push(Problem::new(
                    format!("update.trusted_keys[{i}]"),
                    "empty path: name a public key file from `vigil-fw keygen` (e.g. \"keys/release.pub\")",
                ));
            }
        }
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            out.push(Problem::new(
                "update.dir",
                "empty path: leave it out for versions/ next to the store",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_config_and_the_store() {
        let section = UpdateSection {
            trusted_keys: vec!["keys/release.pub".into(), "/etc/vigil/other.pub".into()],
            ..UpdateSection::default()
        };
        let paths = section.resolve(
            Path::new("/etc/vigil"),
            Path::new("/var/lib/vigil/agent.db"),
        );
        assert_eq!(
            paths.trusted_keys,
            vec![
                PathBuf::from("/etc/vigil/keys/release.pub"),
                PathBuf::from("/etc/vigil/other.pub")
            ]
        );
        assert_eq!(paths.dir, PathBuf::from("/var/lib/vigil/versions"));
        let section = UpdateSection {
            dir: Some("versions".into()),
            ..UpdateSection::default()
        };
        let paths = section.resolve(
            Path::new("/etc/vigil"),
            Path::new("/var/lib/vigil/agent.db"),
        );
        assert_eq!(paths.dir, PathBuf::from("/etc/vigil/versions"));
    }

    #[test]
    fn trial_out_of_range_is_named() {
        let section = UpdateSection {
            trial: Duration::from_millis(10),
            ..UpdateSection::default()
        };
        let problems = section.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "update.trial");
    }
}
