//! `vigil-agent update status --config agent.toml [--json]`: what is installed, what runs,
//! what is on trial, the rollback floor, the last fallback and the trusted keys.

use std::io::Write;

use super::state::shown;
use super::versions::VersionsDir;
use super::{own_version, Settings, UpdateError, AGENT_BINARY, AGENT_CONFIG};

/// Writes the status to `out`, as text or as one JSON object.
pub fn status(settings: &Settings, json: bool, out: &mut dyn Write) -> Result<(), UpdateError> {
    let versions = VersionsDir::new(&settings.dir);
    let state = versions.load()?;
    let own = own_version();
    let floor = state.floor(&own);
    let link = versions.current_target();
    let keys: Vec<String> = match settings.read_trusted_keys() {
        Ok(keys) => keys.iter().map(|k| k.key_id().to_string()).collect(),
        Err(e) => vec![format!("unreadable: {e}")],
    };
    let (binary, config) = match &state.current {
        Some(v) => {
            let dir = versions.version_dir(v);
            let config = dir.join(AGENT_CONFIG);
            let config = if config.is_file() {
                config
            } else {
                settings.config_path.clone()
            };
            (dir.join(AGENT_BINARY).display().to_string(), config)
        }
        None => (
            "this binary (base install)".to_owned(),
            settings.config_path.clone(),
        ),
    };
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        if json {
            let value = serde_json::json!({
                "dir": settings.dir.display().to_string(),
                "current": state.current.as_ref().map(ToString::to_string),
                "previous": state.previous.as_ref().map(ToString::to_string),
                "on_trial": state.on_trial(),
                "trial": state.trial,
                "trial_period": humantime_serde::re::humantime::format_duration(settings.trial).to_string(),
                "highest": state.highest.as_ref().map(ToString::to_string),
                "floor": floor.to_string(),
                "current_link": link.as_ref().map(ToString::to_string),
                "last_fallback": state.last_fallback,
                "binary": binary,
                "config": config.display().to_string(),
                "trusted_keys": keys,
                "agent_version": own.to_string(),
            });
            return writeln!(out, "{value}");
        }
        writeln!(out, "versions  {}", settings.dir.display())?;
        match (&state.current, &state.trial) {
            (Some(v), Some(t)) if state.on_trial() => writeln!(
                out,
                "current   {v} (on trial for {}: applied {}, started {} of at most {} times)",
                humantime_serde::re::humantime::format_duration(settings.trial),
                t.applied_at.format("%Y-%m-%d %H:%M:%S UTC"),
                t.starts,
                super::state::MAX_TRIAL_STARTS,
            )?,
            (Some(v), _) => writeln!(out, "current   {v} (kept)")?,
            (None, _) => writeln!(out, "current   base install ({own}; no bundle applied)")?,
        }
        writeln!(out, "runs      {binary}")?;
        writeln!(out, "config    {}", config.display())?;
        writeln!(out, "previous  {}", shown(state.previous.as_ref()))?;
        writeln!(
            out,
            "floor     {floor} (a bundle must be newer; highest applied: {})",
            state
                .highest
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string)
        )?;
        if link != state.current {
            writeln!(
                out,
                "note      the `current` symlink points at {}; the supervisor re-points it at start",
                shown(link.as_ref())
            )?;
        }
        if let Some(f) = &state.last_fallback {
            writeln!(
                out,
                "fallback  {} -> {} at {}: {}",
                f.from,
                shown(f.to.as_ref()),
                f.at.format("%Y-%m-%d %H:%M:%S UTC"),
                f.reason
            )?;
        }
        if keys.is_empty() {
            writeln!(
                out,
                "keys      none trusted: every bundle is refused (set [update] trusted_keys)"
            )
        } else {
            writeln!(out, "keys      {}", keys.join(", "))
        }
    };
    write(out).map_err(UpdateError::io("stdout"))
}
