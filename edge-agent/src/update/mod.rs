//! Signed updates on the gateway: `vigil-agent update apply`, `update status` and
//! `supervise` (docs/ARCHITECTURE.md#signed-updates: an agent applies nothing whose signature does
//! not verify).
//!
//! The parts, each in its own file:
//!
//! - [`state`]: what is installed — the current version, the previous (last kept) one, the
//!   version on trial, the highest version ever applied (the rollback floor) — and its pure
//!   transitions (install, commit, fall back).
//! - [`versions`]: the versions directory on disk: `<dir>/<version>/` per installed version,
//!   the `current` symlink, `state.json`, the lock, staging and pruning.
//! - [`apply`]: verify a bundle with `vigil-bundle` against the trusted keys and the rollback
//!   floor, extract it into staging, rename it into place, switch `current`.
//! - [`trial`]: the pure judge of a version on trial (alive, answering `/healthz`, for how
//!   long); [`health`] probes `/healthz`.
//! - [`supervise`]: the process an init system runs; it runs the current version, forwards
//!   signals, commits a version that passes its trial and falls back from one that does not.
//! - [`audit`]: every apply, refusal, failure, fallback and commit goes to the agent store's
//!   hash-chained audit log, so that it can travel up the link like any other audit record.
//!
//! Verification itself lives in `vigil-bundle` and is never redone here.

pub mod apply;
pub mod audit;
pub mod health;
pub mod state;
pub mod status;
pub mod supervise;
pub mod trial;
pub mod versions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_bundle::{BundleError, KeyError};
use vigil_config::{ConfigError, ConfigErrors};

use crate::config::AgentConfig;

/// The agent binary's path inside a bundle and inside a version directory.
pub const AGENT_BINARY: &str = "agent/vigil-agent";
/// The agent config's path inside a bundle and inside a version directory.
pub const AGENT_CONFIG: &str = "config/agent.toml";

/// The version of the binary that is running now (the rollback floor of a fresh gateway).
pub fn own_version() -> semver::Version {
    semver::Version::parse(env!("CARGO_PKG_VERSION")).unwrap_or(semver::Version::new(0, 0, 0))
}

/// What the update commands need from `agent.toml`, with every path resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file, absolute.
    pub config_path: PathBuf,
    /// The config's text (to name lines in errors).
    pub config_text: String,
    /// `[node] id`: the node the audit records name.
    pub node: String,
    /// `[store] path`, resolved: where the audit log lives.
    pub store_path: PathBuf,
    /// `[update] trusted_keys`, resolved.
    pub trusted_keys: Vec<PathBuf>,
    /// `[update] dir`, resolved.
    pub dir: PathBuf,
    /// `[update] trial`.
    pub trial: Duration,
}

impl Settings {
    /// Loads `agent.toml` (schema and semantic checks, not the profiles: an update must be
    /// possible even when the running config's profiles are what it fixes).
    pub fn load(config_path: &Path) -> Result<Self, ConfigErrors> {
        let config = AgentConfig::load(config_path)?;
        let config_path = std::path::absolute(config_path).unwrap_or(config_path.to_owned());
        let config_dir = crate::profiles::config_dir(&config_path);
        let store_path = config_dir.join(&config.store.path);
        let paths = config.update.resolve(&config_dir, &store_path);
        Ok(Settings {
            config_text: std::fs::read_to_string(&config_path).unwrap_or_default(),
            config_path,
            node: config.node.id.to_string(),
            store_path,
            trusted_keys: paths.trusted_keys,
            dir: paths.dir,
            trial: config.update.trial,
        })
    }

    /// Reads every trusted key; a file that cannot be read is a config error naming the
    /// file, line and key of its entry.
    pub fn read_trusted_keys(&self) -> Result<Vec<vigil_bundle::PublicKey>, ConfigErrors> {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for (i, path) in self.trusted_keys.iter().enumerate() {
            match vigil_bundle::PublicKey::read_file(path) {
                Ok(found) => keys.extend(found),
                Err(e) => {
                    let key = format!("update.trusted_keys[{i}]");
                    errors.push(ConfigError {
                        file: self.config_path.clone(),
                        line: vigil_config::locate(&self.config_text, &key),
                        key,
                        message: e.to_string(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(keys)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Why an update command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// `[update] trusted_keys` is empty: nothing can be verified, so nothing is applied.
    #[error(
        "no trusted keys: add `trusted_keys = [\"keys/release.pub\"]` to [update] in {config} \
         (public key files from `vigil-fw keygen`); nothing is applied without one"
    )]
    NoTrustedKeys {
        /// The config file.
        config: PathBuf,
    },
    /// A trusted key file cannot be read.
    #[error("{0}")]
    Config(ConfigErrors),
    /// `vigil-bundle` refused the bundle (unsigned, untrusted key, bad signature, tampered
    /// file, not newer, unsafe path) or could not read it.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// A key file is malformed.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// The bundle verifies but carries no agent binary: a version is a complete agent.
    #[error(
        "bundle version {version} carries no {AGENT_BINARY}: pack it with \
         `vigil-fw pack --agent PATH`"
    )]
    NoAgentBinary {
        /// The bundle's version.
        version: semver::Version,
    },
    /// Reading or writing the versions directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `state.json` cannot be read as update state.
    #[error("{path}: not a valid update state ({reason}); move it aside to start afresh")]
    BadState {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The audit log cannot be written.
    #[error("audit log in {path}: {reason}")]
    Audit {
        /// The store.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl UpdateError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// Whether the bundle itself was refused (as opposed to the gateway failing to install a
    /// good one): the audit log records `update.refuse` or `update.fail` accordingly.
    pub fn is_refusal(&self) -> bool {
        match self {
            UpdateError::NoTrustedKeys { .. }
            | UpdateError::Config(_)
            | UpdateError::Key(_)
            | UpdateError::NoAgentBinary { .. } => true,
            UpdateError::Bundle(BundleError::Io { .. } | BundleError::BadTarget { .. }) => false,
            UpdateError::Bundle(_) => true,
            UpdateError::Io { .. } | UpdateError::BadState { .. } | UpdateError::Audit { .. } => {
                false
            }
        }
    }
}
