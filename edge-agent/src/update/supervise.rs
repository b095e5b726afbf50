//! `vigil-agent supervise --config agent.toml`: the process an init system runs on a gateway
//! that takes updates.
//!
//! It runs the current version as a child, `<dir>/<version>/agent/vigil-agent run --config
//! CONFIG` (the version `state.json` names; the `current` symlink is re-pointed to match
//! first), where CONFIG is the version's own `config/agent.toml` when its bundle carried one,
//! and otherwise the config `supervise` was given. With no version installed it runs the
//! binary it is itself, so a fresh gateway works the same way.
//!
//! - **Signals**: SIGTERM and SIGINT are forwarded to the child's process group; the child
//!   has 15 s to stop before it is killed, then the supervisor exits.
//! - **Trial**: a version on trial is probed at `/healthz` on its `[metrics] listen` every
//!   500 ms ([`super::trial`] judges). If it exits or fails its probes before `[update] trial`
//!   has passed, the supervisor stops it, falls back to the previous version (state, symlink,
//!   audit record `update.fallback`) and starts that one at once. Once it has run healthy for
//!   the whole trial it is kept (`update.commit`), without a restart. A version started on
//!   trial [`MAX_TRIAL_STARTS`] times without a verdict (the gateway kept restarting) is
//!   given up the same way. When the commit cannot be recorded (`state.json` not writable),
//!   the supervisor keeps the version running and retries the record after 1 s, 2 s, 4 s …
//!   at most 30 s, until it is recorded or the supervisor stops.
//! - **Crashes** of a kept version: it is restarted after 1 s, 2 s, 4 s … at most 30 s; the
//!   delay starts again at 1 s after a run of a minute or more.
//! - **Applies while running**: `state.json` is re-read every second; when `update apply`
//!   has made another version current, the child is stopped and the new one started (on
//!   trial).
//!
//! The known gap: if the supervisor itself is killed with SIGKILL, its child keeps running
//! (systemd's default `KillMode=control-group` stops it too).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use semver::Version;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::MissedTickBehavior;
use vigil_runtime::backoff::{Backoff, BackoffConfig};

use super::audit::{AuditLog, SUPERVISOR};
use super::health;
use super::state::{shown, MAX_TRIAL_STARTS};
use super::trial::{TrialJudge, Verdict};
use super::versions::VersionsDir;
use super::{Settings, UpdateError, AGENT_BINARY, AGENT_CONFIG};
use crate::config::AgentConfig;

/// How long a child has to stop after SIGTERM/SIGINT before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// How often a version on trial is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How often `state.json` is re-read for a version applied meanwhile.
pub const POLL_STATE_EVERY: Duration = Duration::from_secs(1);
/// The first restart delay of a crashed kept version.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long resets the restart delay.
pub const STABLE_RUN: Duration = Duration::from_secs(60);

/// What to start.
#[derive(Debug, Clone)]
struct Launch {
    /// The version (`None`: the base install).
    version: Option<Version>,
    /// The agent binary.
    exe: PathBuf,
    /// The config it runs with.
    config: PathBuf,
    /// Whether it is on trial.
    on_trial: bool,
    /// Where to probe `/healthz`.
    health: Option<SocketAddr>,
}

/// Why a child's watch ended.
#[derive(Debug)]
enum Outcome {
    /// The supervisor was asked to stop.
    Signal(Signal),
    /// The version on trial failed it.
    TrialFailed(String),
    /// A kept version exited.
    Exited(String),
    /// Another version became current.
    Switched,
}

/// What recording a passed trial came to.
#[derive(Debug)]
enum Commit {
    /// Recorded (or nothing to record: the base install): the version is kept.
    Recorded,
    /// The version is no longer the one on trial (another was applied meanwhile).
    NotOnTrial,
    /// The record failed; try again later.
    Failed(UpdateError),
}

/// The restart delays of a crashing kept version (and the retry delays of a commit record):
/// the shared backoff's whole steps ([`vigil_runtime::backoff`]), 1 s doubling to 30 s —
/// one process retrying alone, so no jitter.
const RESTART: BackoffConfig = BackoffConfig {
    initial: FIRST_BACKOFF,
    max: MAX_BACKOFF,
};

/// SIGTERM and SIGINT, installed before the first child starts.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.interrupt.recv() => Signal::SIGINT,
        }
    }
}

/// The supervisor.
#[derive(Debug)]
pub struct Supervisor {
    settings: Settings,
    versions: VersionsDir,
    base_exe: PathBuf,
    log_format: String,
}

impl Supervisor {
    /// A supervisor for the gateway `settings` describe; `base_exe` is the binary run when no
    /// version is installed (normally `std::env::current_exe()`).
    pub fn new(settings: Settings, base_exe: PathBuf, log_format: String) -> Self {
        let versions = VersionsDir::new(&settings.dir);
        Supervisor {
            settings,
            versions,
            base_exe,
            log_format,
        }
    }

    fn audit(&self, action: &str, target: String, details: serde_json::Value) {
        let log = AuditLog {
            store_path: &self.settings.store_path,
            node: &self.settings.node,
        };
        match log.append(SUPERVISOR, action, target, details) {
            Ok(record) => tracing::debug!(action, seq = record.seq, "audited"),
            Err(e) => tracing::error!(action, error = %e, "cannot audit"),
        }
    }

    /// Runs until SIGTERM or SIGINT.
    pub async fn run(self) -> Result<(), UpdateError> {
        let mut signals = Signals::install().map_err(UpdateError::io("signal handlers"))?;
        let mut backoff = Backoff::new(RESTART);
        tracing::info!(dir = %self.versions.path().display(), trial = ?self.settings.trial, "supervisor starting");
        loop {
            let launch = self.prepare();
            tracing::info!(
                version = %shown(launch.version.as_ref()),
                exe = %launch.exe.display(),
                config = %launch.config.display(),
                on_trial = launch.on_trial,
                "starting the agent"
            );
            let started = Instant::now();
            let outcome = match self.spawn(&launch) {
                Ok(mut child) => {
                    let outcome = self.watch(&mut child, &launch, started, &mut signals).await;
                    let (sig, grace) = match &outcome {
                        Outcome::Signal(sig) => (*sig, STOP_GRACE),
                        _ => (Signal::SIGTERM, STOP_GRACE),
                    };
                    stop(&mut child, sig, grace).await;
                    outcome
                }
                Err(e) if launch.on_trial => {
                    Outcome::TrialFailed(format!("cannot start {}: {e}", launch.exe.display()))
                }
                Err(e) => Outcome::Exited(format!("cannot start {}: {e}", launch.exe.display())),
            };
            match outcome {
                Outcome::Signal(sig) => {
                    tracing::info!(signal = %sig, "supervisor stopped");
                    return Ok(());
                }
                Outcome::TrialFailed(reason) => {
                    self.fall_back(&launch, &reason);
                    backoff.reset();
                }
                Outcome::Switched => backoff.reset(),
                Outcome::Exited(how) => {
                    if started.elapsed() >= STABLE_RUN {
                        backoff.reset();
                    }
                    let delay = backoff.next_step();
                    tracing::error!(
                        version = %shown(launch.version.as_ref()),
                        how = %how,
                        restart_in = ?delay,
                        "the agent stopped; restarting"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        sig = signals.recv() => {
                            tracing::info!(signal = %sig, "supervisor stopped");
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Decides what to start: re-points `current`, counts a trial start, gives up a version
    /// started on trial too often. On a state that cannot be read it runs what `current`
    /// points at, as kept.
    fn prepare(&self) -> Launch {
        match self.prepare_locked() {
            Ok(launch) => launch,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the update state; running what `current` points at");
                self.launch_of(self.versions.current_target(), false)
            }
        }
    }

    fn prepare_locked(&self) -> Result<Launch, UpdateError> {
        let lock = self.versions.lock()?;
        let mut state = self.versions.load()?;
        while let Some(starts) = state.start_trial() {
            if starts <= MAX_TRIAL_STARTS {
                self.versions.save(&lock, &state)?;
                tracing::info!(start = starts, of = MAX_TRIAL_STARTS, "version on trial");
                break;
            }
            let Some(version) = state.current.clone() else {
                break;
            };
            let reason = format!(
                "started on trial {MAX_TRIAL_STARTS} times without finishing it \
                 (the supervisor or the gateway kept stopping)"
            );
            if let Some(fallback) = state.fall_back(&version, &reason, chrono::Utc::now()) {
                self.versions.save(&lock, &state)?;
                self.report_fallback(&fallback.from, fallback.to.as_ref(), &reason);
            }
        }
        self.versions.point_current(state.current.as_ref())?;
        Ok(self.launch_of(state.current.clone(), state.on_trial()))
    }

    fn launch_of(&self, version: Option<Version>, on_trial: bool) -> Launch {
        let (exe, config) = match &version {
            Some(v) => {
                let dir = self.versions.version_dir(v);
                let own = dir.join(AGENT_CONFIG);
                let config = if own.is_file() {
                    own
                } else {
                    self.settings.config_path.clone()
                };
                (dir.join(AGENT_BINARY), config)
            }
            None => (self.base_exe.clone(), self.settings.config_path.clone()),
        };
        let health = match AgentConfig::load(&config) {
            Ok(c) => health::probe_addr(c.metrics.listen),
            Err(e) => {
                tracing::warn!(config = %config.display(), error = %e, "the agent's config does not load; it will not start");
                None
            }
        };
        Launch {
            version,
            exe,
            config,
            on_trial,
            health,
        }
    }

    fn spawn(&self, launch: &Launch) -> std::io::Result<Child> {
        Command::new(&launch.exe)
            .arg("run")
            .arg("--config")
            .arg(&launch.config)
            .arg("--log-format")
            .arg(&self.log_format)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    }

    /// Watches a child until it exits, fails or passes its trial, another version becomes
    /// current, or a signal arrives.
    async fn watch(
        &self,
        child: &mut Child,
        launch: &Launch,
        started: Instant,
        signals: &mut Signals,
    ) -> Outcome {
        let mut judge = launch
            .on_trial
            .then(|| TrialJudge::new(started, self.settings.trial));
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(POLL_STATE_EVERY);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A passed trial whose commit could not be recorded: when to try again, and the delay.
        let mut retry: Option<(Instant, Backoff)> = None;
        loop {
            tokio::select! {
                sig = signals.recv() => return Outcome::Signal(sig),
                status = child.wait() => {
                    let how = describe(status);
                    return if judge.is_some() {
                        Outcome::TrialFailed(format!("{how} during its trial"))
                    } else {
                        Outcome::Exited(how)
                    };
                }
                _ = probe.tick(), if judge.is_some() => {
                    // The verdict is in once a commit is pending: only its record is retried.
                    if let Some((at, _)) = &retry {
                        if Instant::now() < *at {
                            continue;
                        }
                    } else {
                        let healthy = match launch.health {
                            Some(addr) => Some(health::probe(addr).await),
                            None => None,
                        };
                        let Some(j) = judge.as_mut() else { continue };
                        match j.on_probe(healthy, Instant::now()) {
                            Verdict::Continue => continue,
                            Verdict::Fail(reason) => return Outcome::TrialFailed(reason),
                            Verdict::Commit => {}
                        }
                    }
                    match self.commit(launch) {
                        Commit::Recorded => {
                            judge = None;
                            retry = None;
                        }
                        Commit::NotOnTrial => return Outcome::Switched,
                        Commit::Failed(e) => {
                            let mut backoff = retry.take().map_or_else(|| Backoff::new(RESTART), |(_, b)| b);
                            let delay = backoff.next_step();
                            tracing::error!(
                                version = %shown(launch.version.as_ref()),
                                error = %e,
                                retry_in = ?delay,
                                "the version passed its trial but its commit cannot be recorded; it keeps running, the record is retried"
                            );
                            retry = Some((Instant::now() + delay, backoff));
                        }
                    }
                }
                _ = poll.tick() => {
                    if let Ok(state) = self.versions.load() {
                        if state.current != launch.version {
                            tracing::info!(
                                from = %shown(launch.version.as_ref()),
                                to = %shown(state.current.as_ref()),
                                "another version was applied; switching"
                            );
                            return Outcome::Switched;
                        }
                    }
                }
            }
        }
    }

    /// Keeps the version on trial: records the commit in `state.json` and audits it.
    fn commit(&self, launch: &Launch) -> Commit {
        let Some(version) = &launch.version else {
            return Commit::Recorded;
        };
        let committed = (|| {
            let lock = self.versions.lock()?;
            let mut state = self.versions.load()?;
            if !state.commit(version) {
                return Ok(false);
            }
            self.versions.save(&lock, &state)?;
            Ok::<_, UpdateError>(true)
        })();
        match committed {
            Ok(true) => {
                let trial = humantime_serde::re::humantime::format_duration(self.settings.trial);
                tracing::info!(%version, %trial, "version passed its trial; kept");
                self.audit(
                    "update.commit",
                    format!("vigil-agent {version}"),
                    serde_json::json!({ "version": version.to_string(), "trial": trial.to_string() }),
                );
                Commit::Recorded
            }
            Ok(false) => Commit::NotOnTrial,
            Err(e) => Commit::Failed(e),
        }
    }

    /// Falls back from the version on trial to the previous one.
    fn fall_back(&self, launch: &Launch, reason: &str) {
        let Some(version) = &launch.version else {
            return;
        };
        let done = (|| {
            let lock = self.versions.lock()?;
            let mut state = self.versions.load()?;
            let Some(fallback) = state.fall_back(version, reason, chrono::Utc::now()) else {
                return Ok(None);
            };
            self.versions.save(&lock, &state)?;
            self.versions.point_current(state.current.as_ref())?;
            Ok::<_, UpdateError>(Some(fallback))
        })();
        match done {
            Ok(Some(fallback)) => {
                self.report_fallback(&fallback.from, fallback.to.as_ref(), reason);
            }
            Ok(None) => tracing::info!(%version, "no longer on trial; not falling back"),
            Err(e) => tracing::error!(%version, error = %e, "cannot record the fallback"),
        }
    }

    fn report_fallback(&self, from: &Version, to: Option<&Version>, reason: &str) {
        tracing::error!(%from, to = %shown(to), %reason, "version failed its trial; falling back");
        self.audit(
            "update.fallback",
            format!("vigil-agent {from}"),
            serde_json::json!({
                "from": from.to_string(),
                "to": shown(to),
                "reason": reason,
            }),
        );
    }
}

/// Sends `sig` to the child's process group, waits `grace`, then kills it.
async fn stop(child: &mut Child, sig: Signal, grace: Duration) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return; // already reaped
    };
    let _ = killpg(Pid::from_raw(pid), sig);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => tracing::info!(status = %describe(status), "the agent stopped"),
        Err(_) => {
            tracing::warn!(?grace, "the agent did not stop in time; killing it");
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.kill().await;
        }
    }
}

/// How a child ended, in words.
fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "exited".to_owned(),
        },
        Err(e) => format!("could not be waited for ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(RESTART);
        let delays: Vec<u64> = (0..7).map(|_| b.next_step().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_step(), FIRST_BACKOFF);
    }
}
