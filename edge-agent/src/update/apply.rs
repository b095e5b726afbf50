//! `vigil-agent update apply BUNDLE --config agent.toml`.
//!
//! In order, with the versions directory locked throughout (so an apply and the supervisor
//! never interleave their changes):
//!
//! 1. read the trusted keys (`[update] trusted_keys`); none configured is a refusal;
//! 2. `vigil_bundle::verify` against them and the rollback floor (the highest version ever
//!    applied, or the agent's own version on a fresh gateway): unsigned, untrusted key, bad
//!    signature, tampered file, unsafe path and not-newer bundles are refused there;
//! 3. require `agent/vigil-agent` in the bundle: a version is a complete agent;
//! 4. extract into `<dir>/.staging-<version>-<pid>/` (the extraction re-checks every digest),
//!    then rename it to `<dir>/<version>/`;
//! 5. record the new state (`current` = the new version on trial, `previous` = the last kept
//!    one), then re-point the `current` symlink, then prune versions no longer needed.
//!
//! A refusal or failure before step 5 leaves the state, `current` and every installed version
//! as they were (a staging directory is removed). The caller audits the outcome
//! ([`super::audit`]); [`run`] does both and prints for the installer.

use std::io::Write;
use std::path::{Path, PathBuf};

use semver::Version;
use vigil_bundle::KeyId;

use super::audit::{local_actor, AuditLog};
use super::state::shown;
use super::versions::{remove_any, VersionsDir};
use super::{own_version, Settings, UpdateError, AGENT_BINARY};

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The version installed and made current.
    pub version: Version,
    /// The fallback target while it is on trial (`None`: the base install).
    pub previous: Option<Version>,
    /// The key that signed the bundle.
    pub key_id: KeyId,
    /// How many files the bundle holds.
    pub files: usize,
    /// The version's directory.
    pub dir: PathBuf,
    /// Version directories removed because nothing needs them any more.
    pub pruned: Vec<PathBuf>,
}

/// Verifies and installs `bundle`; prints progress to `out`. Nothing is changed on error.
pub fn apply(
    settings: &Settings,
    bundle: &Path,
    out: &mut dyn Write,
) -> Result<Applied, UpdateError> {
    if settings.trusted_keys.is_empty() {
        return Err(UpdateError::NoTrustedKeys {
            config: settings.config_path.clone(),
        });
    }
    let keys = settings.read_trusted_keys().map_err(UpdateError::Config)?;
    let versions = VersionsDir::new(&settings.dir);
    let lock = versions.lock()?;
    let mut state = versions.load()?;
    let floor = state.floor(&own_version());
    let _ = writeln!(
        out,
        "verifying {} against {} trusted key(s); it must be newer than {floor}",
        bundle.display(),
        keys.len()
    );
    tracing::info!(bundle = %bundle.display(), keys = keys.len(), %floor, "verifying update bundle");
    let verified = vigil_bundle::verify(bundle, &keys, Some(&floor))?;
    let manifest = verified.manifest();
    let version = manifest.version.clone();
    let _ = writeln!(
        out,
        "ok: version {version} signed by trusted key {}, {} files intact",
        verified.key_id(),
        manifest.files.len()
    );
    if !manifest.files.iter().any(|f| f.path == AGENT_BINARY) {
        return Err(UpdateError::NoAgentBinary { version });
    }

    let staging = versions.staging_dir(&version);
    let _ = writeln!(out, "extracting into {}", staging.display());
    if let Err(e) = verified.extract_to(&staging) {
        let _ = remove_any(&staging);
        return Err(e.into());
    }
    let dir = match versions.install(&lock, &staging, &version) {
        Ok(dir) => dir,
        Err(e) => {
            let _ = remove_any(&staging);
            return Err(e);
        }
    };

    let before = state.current.clone();
    state.install(version.clone(), chrono::Utc::now());
    versions.save(&lock, &state)?;
    versions.point_current(state.current.as_ref())?;
    let pruned = versions.prune(&lock, &state.keep())?;
    let _ = writeln!(
        out,
        "current -> {version} (was {}); on trial: `vigil-agent supervise` keeps it once it has \
         run healthy for {}, and otherwise falls back to {}",
        shown(before.as_ref()),
        humantime_serde::re::humantime::format_duration(settings.trial),
        shown(state.previous.as_ref()),
    );
    tracing::info!(%version, previous = %shown(state.previous.as_ref()), "update applied, on trial");
    Ok(Applied {
        version,
        previous: state.previous.clone(),
        key_id: verified.key_id(),
        files: verified.manifest().files.len(),
        dir,
        pruned,
    })
}

/// The command: opens the audit log first (nothing is applied that cannot be audited),
/// applies, audits the outcome and reports. Returns the process exit status: 0 applied,
/// 1 refused or failed, 2 the config or a key file is invalid.
pub fn run(config: &Path, bundle: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors.0 {
                let _ = writeln!(err, "error: {e}");
            }
            return vigil_config::EXIT_CONFIG;
        }
    };
    let log = AuditLog {
        store_path: &settings.store_path,
        node: &settings.node,
    };
    let mut store = match log.open() {
        Ok(store) => store,
        Err(e) => {
            let _ = writeln!(err, "error: {e}; nothing applied");
            return 1;
        }
    };
    let actor = local_actor();
    let bundle_name = bundle.file_name().map_or_else(
        || bundle.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match apply(&settings, bundle, out) {
        Ok(applied) => {
            let details = serde_json::json!({
                "bundle": bundle.display().to_string(),
                "version": applied.version.to_string(),
                "key_id": applied.key_id.to_string(),
                "previous": applied.previous.as_ref().map(ToString::to_string),
                "files": applied.files,
            });
            let target = format!("vigil-agent {}", applied.version);
            if let Err(e) = log.record(&mut store, &actor, "update.apply", target, details) {
                let _ = writeln!(
                    err,
                    "error: version {} is installed, but {e}",
                    applied.version
                );
                return 1;
            }
            let _ = writeln!(out, "applied {} (audited)", applied.version);
            0
        }
        Err(e) => {
            let (action, verb) = if e.is_refusal() {
                ("update.refuse", "refused")
            } else {
                ("update.fail", "failed")
            };
            tracing::warn!(bundle = %bundle.display(), reason = %e, "update {verb}");
            let details = serde_json::json!({
                "bundle": bundle.display().to_string(),
                "reason": e.to_string(),
            });
            let audited = log.record(
                &mut store,
                &actor,
                action,
                format!("bundle {bundle_name}"),
                details,
            );
            let _ = writeln!(err, "error: {} {verb}: {e}", bundle.display());
            let _ = writeln!(
                err,
                "nothing was changed: the running version stays as it was"
            );
            if let Err(a) = audited {
                let _ = writeln!(err, "error: {a}");
            }
            if matches!(e, UpdateError::Config(_)) {
                vigil_config::EXIT_CONFIG
            } else {
                1
            }
        }
    }
}
