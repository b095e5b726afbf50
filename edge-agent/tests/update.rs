//! Signed updates on a gateway, end to end: the real `vigil-agent` binary, real config files,
//! keys and bundles made with `vigil-bundle` in a temporary directory.
//!
//! - `update apply` installs a signed bundle and points `current` at it; unsigned, tampered,
//!   untrusted-key, rolled-back and agent-less bundles are refused with nothing changed;
//!   every apply and refusal is in the store's audit chain.
//! - `supervise` commits a healthy version after its trial and falls back to the previous one
//!   from a version that exits or never answers `/healthz`. The healthy versions' agent is a
//!   two-line `exec` of the real `vigil-agent` binary (so the process that runs and answers
//!   `/healthz` is the real agent, without copying 150 MB into every bundle); the broken ones
//!   are scripts that exit 1 or sleep.
//!
//! Every wait is bounded; the supervisor is stopped with SIGTERM (then SIGKILL) on failure.

use std::io::Read as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use semver::Version;
use vigil_bundle::{BundleInputs, NoProgress, SecretKey};
use vigil_store::{AuditReport, Store};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const AGENT: &str = env!("CARGO_BIN_EXE_vigil-agent");

fn free_port() -> Res<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// A gateway in a temporary directory: `agent.toml`, `keys/release.pub` trusted,
/// `keys/stranger.*` not, the store `agent.db`, versions in `versions/`.
struct Gateway {
    dir: tempfile::TempDir,
    config: PathBuf,
    release: SecretKey,
    stranger: SecretKey,
    http: String,
}

impl Gateway {
    fn new(update_section: &str) -> Res<Self> {
        let dir = tempfile::tempdir()?;
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys)?;
        let release = vigil_bundle::generate_keypair()?;
        vigil_bundle::write_keypair(&release, &keys, "release")?;
        let stranger = vigil_bundle::generate_keypair()?;
        vigil_bundle::write_keypair(&stranger, &keys, "stranger")?;
        let http = free_port()?;
        let text = format!(
            r#"[node]
id = "gw-update"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://{uplink}"

[store]
path = "agent.db"

[metrics]
listen = "{http}"
{update_section}"#,
            uplink = free_port()?,
        );
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, text)?;
        Ok(Gateway {
            dir,
            config,
            release,
            stranger,
            http,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn versions(&self) -> PathBuf {
        self.path("versions")
    }

    /// A signed (by `key`, unless `None`) bundle of `version` whose agent is `agent_script`.
    fn bundle(&self, version: &str, agent_script: &str, key: Option<&SecretKey>) -> Res<PathBuf> {
        let name = format!("agent-{version}-{}", rand_suffix());
        let src = self.path(&name);
        std::fs::create_dir_all(src.join("profiles"))?;
        let agent = src.join("vigil-agent");
        std::fs::write(&agent, agent_script)?;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(
            src.join("profiles/door.yaml"),
            format!("name: door\n# TAMPER-ME {version}\n"),
        )?;
        let mut inputs = BundleInputs::new();
        inputs.agent(&agent)?.profiles(&src.join("profiles"))?;
        let out = self.path(&format!("{name}.vgb"));
        vigil_bundle::pack(&inputs, &Version::parse(version)?, &out, &mut NoProgress)?;
        if let Some(key) = key {
            vigil_bundle::sign(&out, key)?;
        }
        Ok(out)
    }

    fn agent(&self) -> Command {
        let mut cmd = Command::new(AGENT);
        cmd.env_remove("VIGIL_LOG");
        cmd
    }

    fn apply(&self, bundle: &Path) -> Res<Output> {
        Ok(self
            .agent()
            .args(["update", "apply"])
            .arg(bundle)
            .arg("--config")
            .arg(&self.config)
            .output()?)
    }

    fn status(&self) -> Res<serde_json::Value> {
        let out = self
            .agent()
            .args(["update", "status", "--json", "--config"])
            .arg(&self.config)
            .output()?;
        assert!(out.status.success(), "{}", text(&out.stderr));
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// The audit records' (action, target, details).
    fn audit(&self) -> Res<Vec<(String, String, serde_json::Value)>> {
        let store = Store::open(self.path("agent.db"))?;
        assert!(
            matches!(store.audit_verify()?, AuditReport::Intact { .. }),
            "the audit chain is broken"
        );
        Ok(store
            .audit_records(0, 1000)?
            .into_iter()
            .map(|r| (r.entry.action, r.entry.target, r.entry.details))
            .collect())
    }

    /// Every file and link under `versions/` with its contents or target: what "nothing
    /// changed" compares.
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(&self.versions(), &self.versions(), &mut out);
        out.retain(|(p, _)| p != ".lock");
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            out.push((name, format!("-> {}", target.display())));
        } else if meta.is_dir() {
            out.push((name, "dir".to_owned()));
            walk(root, &path, out);
        } else {
            out.push((
                name,
                String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned(),
            ));
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An agent that is the real `vigil-agent`.
fn real_agent() -> String {
    format!("#!/bin/sh\nexec '{AGENT}' \"$@\"\n")
}

const EXITS_1: &str = "#!/bin/sh\necho 'broken build' >&2\nexit 1\n";
const NEVER_HEALTHY: &str = "#!/bin/sh\nexec sleep 600\n";

const UPDATE: &str = "\n[update]\ntrusted_keys = [\"keys/release.pub\"]\ntrial = \"2s\"\n";

#[test]
fn a_signed_bundle_is_applied_and_current_points_at_it() -> TestResult {
    let gw = Gateway::new(UPDATE)?;
    let check = gw
        .agent()
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("updates   1 trusted key(s), versions in"),
        "{}",
        text(&check.stdout)
    );
    let bundle = gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?;
    let out = gw.apply(&bundle)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok: version 1.0.0 signed by trusted key"),
        "{stdout}"
    );
    assert!(stdout.contains("current -> 1.0.0 (was base)"), "{stdout}");

    let versions = gw.versions();
    assert_eq!(
        std::fs::read_link(versions.join("current"))?,
        PathBuf::from("1.0.0")
    );
    let binary = versions.join("current/agent/vigil-agent");
    assert_eq!(std::fs::read_to_string(&binary)?, real_agent());
    assert_eq!(
        std::fs::metadata(&binary)?.permissions().mode() & 0o111,
        0o111,
        "the agent binary is executable"
    );
    assert!(versions.join("1.0.0/profiles/door.yaml").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&versions)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    let status = gw.status()?;
    assert_eq!(status["current"], "1.0.0");
    assert_eq!(status["on_trial"], true);
    assert_eq!(status["previous"], serde_json::Value::Null);
    assert_eq!(status["floor"], "1.0.0");

    // A newer one replaces it; the untried 1.0.0 is not a fallback target.
    let bundle = gw.bundle("1.1.0", &real_agent(), Some(&gw.release))?;
    let out = gw.apply(&bundle)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_link(versions.join("current"))?,
        PathBuf::from("1.1.0")
    );
    assert_eq!(gw.status()?["previous"], serde_json::Value::Null);
    assert!(!versions.join("1.0.0").exists(), "unneeded version pruned");

    let audit = gw.audit()?;
    let applied: Vec<_> = audit
        .iter()
        .filter(|(action, _, _)| action == "update.apply")
        .collect();
    assert_eq!(applied.len(), 2, "{audit:?}");
    assert_eq!(applied[0].1, "vigil-agent 1.0.0");
    assert_eq!(applied[0].2["version"], "1.0.0");
    assert_eq!(
        applied[0].2["key_id"],
        gw.release.public_key(None).key_id().to_string()
    );
    assert_eq!(applied[1].1, "vigil-agent 1.1.0");
    Ok(())
}

#[test]
fn bad_bundles_are_refused_audited_and_change_nothing() -> TestResult {
    let gw = Gateway::new(UPDATE)?;
    let good = gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?;
    assert!(gw.apply(&good)?.status.success());
    let before = gw.snapshot();
    assert!(before
        .iter()
        .any(|(p, t)| p == "current" && t == "-> 1.0.0"));

    let unsigned = gw.bundle("2.0.0", &real_agent(), None)?;
    let untrusted = gw.bundle("2.0.0", &real_agent(), Some(&gw.stranger))?;
    let tampered = gw.bundle("2.0.0", &real_agent(), Some(&gw.release))?;
    let mut bytes = std::fs::read(&tampered)?;
    let at = bytes
        .windows(9)
        .position(|w| w == b"TAMPER-ME")
        .ok_or("profile bytes not found")?;
    bytes[at] ^= 0x20;
    std::fs::write(&tampered, bytes)?;
    let same = gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?;
    let older = gw.bundle("0.9.0", &real_agent(), Some(&gw.release))?;
    let no_agent = {
        let src = gw.path("no-agent");
        std::fs::create_dir_all(&src)?;
        std::fs::write(src.join("door.yaml"), "name: door\n")?;
        let mut inputs = BundleInputs::new();
        inputs.profiles(&src)?;
        let out = gw.path("no-agent.vgb");
        vigil_bundle::pack(&inputs, &Version::new(3, 0, 0), &out, &mut NoProgress)?;
        vigil_bundle::sign(&out, &gw.release)?;
        out
    };

    let cases = [
        (&unsigned, "bundle is unsigned"),
        (&untrusted, "which is not a trusted key"),
        (&tampered, "tampered file profiles/door.yaml"),
        (
            &same,
            "not newer than the current version 1.0.0; refusing rollback",
        ),
        (&older, "bundle version 0.9.0 is not newer"),
        (&no_agent, "carries no agent/vigil-agent"),
    ];
    for (bundle, reason) in &cases {
        let out = gw.apply(bundle)?;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{reason}: {stderr}");
        assert!(stderr.contains("refused"), "{reason}: {stderr}");
        assert!(stderr.contains(reason), "{reason}: {stderr}");
        assert!(stderr.contains("nothing was changed"), "{stderr}");
        assert_eq!(gw.snapshot(), before, "{reason}: the versions changed");
    }

    let audit = gw.audit()?;
    let refusals: Vec<_> = audit
        .iter()
        .filter(|(action, _, _)| action == "update.refuse")
        .collect();
    assert_eq!(refusals.len(), cases.len(), "{audit:?}");
    for ((_, target, details), (bundle, reason)) in refusals.iter().zip(&cases) {
        let name = bundle.file_name().ok_or("name")?.to_string_lossy();
        assert_eq!(*target, format!("bundle {name}"));
        let recorded = details["reason"].as_str().ok_or("reason")?;
        assert!(recorded.contains(reason), "{recorded}");
    }
    assert_eq!(audit[0].0, "update.apply");
    Ok(())
}

#[test]
fn without_trusted_keys_every_bundle_is_refused() -> TestResult {
    let gw = Gateway::new("")?;
    let bundle = gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?;
    let out = gw.apply(&bundle)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no trusted keys"), "{stderr}");
    assert!(!gw.versions().exists(), "nothing installed");
    let audit = gw.audit()?;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "update.refuse");
    Ok(())
}

#[test]
fn update_config_errors_name_file_line_and_key() -> TestResult {
    let gw = Gateway::new("\n[update]\ntrusted_keys = [\"keys/missing.pub\"]\n")?;
    let bundle = gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?;
    let out = gw.apply(&bundle)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let p = gw.config.display();
    assert!(
        stderr.contains(&format!("{p}:15: update.trusted_keys[0]: key file")),
        "{stderr}"
    );
    // `check` finds the missing key before any bundle is tried.
    let out = gw
        .agent()
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{p}:15: update.trusted_keys[0]: key file")),
        "{stderr}"
    );

    std::fs::write(
        &gw.config,
        std::fs::read_to_string(&gw.config)?.replace("trusted_keys", "trusted_key"),
    )?;
    let out = gw.apply(&bundle)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{p}:15: update.trusted_key: unknown field `trusted_key`"
        )),
        "{stderr}"
    );
    assert!(!gw.versions().exists());
    Ok(())
}

/// `vigil-agent supervise`, stopped with SIGTERM (then killed) when dropped.
struct Supervisor {
    child: Child,
    log: PathBuf,
}

impl Supervisor {
    fn start(gw: &Gateway) -> Res<Self> {
        let log = gw.path("supervise.log");
        let child = gw
            .agent()
            .args(["supervise", "--config"])
            .arg(&gw.config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(Supervisor { child, log })
    }

    fn log(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).ok()?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn healthz(addr: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.starts_with("HTTP/1.1 200")
}

/// Waits up to `secs` for `what` to hold, showing the supervisor's log if it does not.
fn wait_for(
    sup: &Supervisor,
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> Res<bool>,
) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "not within {secs}s: {what}\n--- supervisor log ---\n{}",
        sup.log()
    )
    .into())
}

/// Applies `bundle`, which must succeed.
fn apply_ok(gw: &Gateway, bundle: &Path) -> TestResult {
    let out = gw.apply(bundle)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    Ok(())
}

fn committed(gw: &Gateway, version: &str) -> Res<bool> {
    let s = gw.status()?;
    Ok(s["current"] == version && s["on_trial"] == false)
}

#[test]
fn supervise_commits_a_healthy_version_and_falls_back_from_one_that_exits() -> TestResult {
    let gw = Gateway::new(UPDATE)?;
    apply_ok(&gw, &gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?)?;
    let mut sup = Supervisor::start(&gw)?;
    wait_for(&sup, 30, "1.0.0 committed after its 2 s trial", || {
        committed(&gw, "1.0.0")
    })?;
    assert!(healthz(&gw.http), "the real agent answers /healthz");

    // 2.0.0 exits at once: the supervisor switches to it, sees it fail, returns to 1.0.0.
    apply_ok(&gw, &gw.bundle("2.0.0", EXITS_1, Some(&gw.release))?)?;
    wait_for(&sup, 30, "fallback from 2.0.0 to 1.0.0", || {
        let s = gw.status()?;
        Ok(s["current"] == "1.0.0" && s["last_fallback"]["from"] == "2.0.0")
    })?;
    let status = gw.status()?;
    assert_eq!(status["last_fallback"]["to"], "1.0.0");
    let reason = status["last_fallback"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("exited with status 1"), "{reason}");
    assert_eq!(
        std::fs::read_link(gw.versions().join("current"))?,
        PathBuf::from("1.0.0")
    );
    wait_for(&sup, 20, "1.0.0 answers /healthz again", || {
        Ok(healthz(&gw.http))
    })?;
    // The failed version is not retried: the floor stays at 2.0.0.
    let again = gw.apply(&gw.bundle("2.0.0", &real_agent(), Some(&gw.release))?)?;
    assert_eq!(again.status.code(), Some(1));

    let status = sup
        .terminate()
        .ok_or("supervisor did not stop on SIGTERM")?;
    assert!(status.success(), "{}", sup.log());
    assert!(!healthz(&gw.http), "the agent stopped with its supervisor");

    let actions: Vec<(String, String)> = gw
        .audit()?
        .into_iter()
        .map(|(action, target, _)| (action, target))
        .collect();
    let expected = [
        ("update.apply", "vigil-agent 1.0.0"),
        ("update.commit", "vigil-agent 1.0.0"),
        ("update.apply", "vigil-agent 2.0.0"),
        ("update.fallback", "vigil-agent 2.0.0"),
        ("update.refuse", ""),
    ];
    assert_eq!(actions.len(), expected.len(), "{actions:?}");
    for ((action, target), (want_action, want_target)) in actions.iter().zip(expected) {
        assert_eq!(action, want_action, "{actions:?}");
        assert!(target.starts_with(want_target), "{actions:?}");
    }
    Ok(())
}

#[test]
fn supervise_falls_back_from_a_silent_version_and_keeps_a_healthy_one() -> TestResult {
    let gw = Gateway::new(UPDATE)?;
    apply_ok(&gw, &gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?)?;
    let sup = Supervisor::start(&gw)?;
    wait_for(&sup, 30, "1.0.0 committed", || committed(&gw, "1.0.0"))?;

    // 2.0.0 stays up but never serves /healthz.
    apply_ok(&gw, &gw.bundle("2.0.0", NEVER_HEALTHY, Some(&gw.release))?)?;
    wait_for(&sup, 30, "fallback from the silent 2.0.0", || {
        let s = gw.status()?;
        Ok(s["current"] == "1.0.0" && s["last_fallback"]["from"] == "2.0.0")
    })?;
    let reason = gw.status()?["last_fallback"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(reason.contains("did not answer /healthz"), "{reason}");
    wait_for(&sup, 20, "1.0.0 answers again", || Ok(healthz(&gw.http)))?;

    // 3.0.0 is healthy: kept after its trial, with 1.0.0 as the previous version.
    apply_ok(&gw, &gw.bundle("3.0.0", &real_agent(), Some(&gw.release))?)?;
    wait_for(&sup, 30, "3.0.0 committed", || committed(&gw, "3.0.0"))?;
    let status = gw.status()?;
    assert_eq!(status["previous"], "1.0.0");
    assert!(healthz(&gw.http));
    assert!(
        !gw.versions().join("2.0.0").exists(),
        "the failed version pruned"
    );
    let audit = gw.audit()?;
    let last = audit.last().ok_or("audit")?;
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("update.commit", "vigil-agent 3.0.0")
    );
    assert_eq!(last.2["version"], "3.0.0");
    drop(sup);
    Ok(())
}

#[test]
fn supervise_runs_its_own_binary_on_a_fresh_gateway() -> TestResult {
    let gw = Gateway::new(UPDATE)?;
    let sup = Supervisor::start(&gw)?;
    wait_for(&sup, 30, "the base install answers /healthz", || {
        Ok(healthz(&gw.http))
    })?;
    let status = gw.status()?;
    assert_eq!(status["current"], serde_json::Value::Null);
    drop(sup);
    Ok(())
}

#[test]
fn supervise_retries_a_commit_it_could_not_record() -> TestResult {
    // A 5 s trial: time to block state.json's replacement after the trial start is saved.
    let gw = Gateway::new(&UPDATE.replace("\"2s\"", "\"5s\""))?;
    apply_ok(&gw, &gw.bundle("1.0.0", &real_agent(), Some(&gw.release))?)?;
    let sup = Supervisor::start(&gw)?;
    // The supervisor logs the trial start once it has saved it; from then on state.json
    // cannot be replaced: its temporary file's name is taken by a directory.
    wait_for(&sup, 20, "1.0.0 started on trial", || {
        Ok(sup.log().contains("version on trial"))
    })?;
    let blocker = gw.versions().join("state.json.tmp");
    std::fs::create_dir(&blocker)?;
    wait_for(&sup, 30, "a failed commit record", || {
        Ok(sup.log().contains("its commit cannot be recorded"))
    })?;
    assert!(!committed(&gw, "1.0.0")?, "not recorded while blocked");
    assert!(healthz(&gw.http), "the version keeps running meanwhile");

    // Once state.json can be written again, the commit is recorded without a restart.
    std::fs::remove_dir(&blocker)?;
    wait_for(&sup, 60, "1.0.0 committed by a retry", || {
        committed(&gw, "1.0.0")
    })?;
    let log = sup.log();
    assert_eq!(
        log.matches("starting the agent").count(),
        1,
        "one start, no restart:\n{log}"
    );
    let commits: Vec<String> = gw
        .audit()?
        .into_iter()
        .filter(|(action, _, _)| action == "update.commit")
        .map(|(_, target, _)| target)
        .collect();
    assert_eq!(commits, ["vigil-agent 1.0.0"]);
    drop(sup);
    Ok(())
}
