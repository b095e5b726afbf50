//! `vigil-hub check --config hub.toml`: the config, the certificates and the store checked
//! without running anything (nothing is created, migrated or listened on), so an operator
//! can tell before a start — or on a running hub — that the hub will come up.
//!
//! - **store** (`[store] path`): absent (created at the first start), current, older
//!   (migrated at the next start), from a newer `vigil-hub` (refused), or damaged
//!   (`PRAGMA quick_check`);
//! - **CA** (`[ca] dir`): absent (created at the first start) or a CA that loads, with its
//!   expiry;
//! - **parent** (`[parent]` with `mqtts://`): the identity `vigil-hub enroll` wrote — the
//!   three files, a key that goes with the certificate, a certificate for `[node] id`, not
//!   expired, and issued by the CA in `[parent] ca` (it verifies against it as the parent's
//!   broker will verify it). `vigil-hub run` makes this same check ([`check_parent`]) before
//!   it starts anything: a hub whose parent would refuse it exits 2 instead of retrying
//!   forever;
//! - **HTTPS** (`[http] tls` with the operator's `cert` and `key`): they load as a server
//!   identity.
//!
//! A problem is reported like a config error — file, line, key — and makes the command exit
//! 2; a certificate within [`EXPIRY_WARNING`] of its end is a warning.

use std::path::Path;
use std::time::{Duration, SystemTime};

use vigil_config::{ConfigError, ConfigErrors, Problem};

use crate::config::HubConfig;

/// Certificates this close to their end are warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// What [`check`] found: a line per part, warnings, and problems (by config key).
#[derive(Debug, Default)]
pub struct Report {
    /// One line per part checked, for the operator.
    pub lines: Vec<String>,
    /// What works now but will not for long.
    pub warnings: Vec<String>,
    /// What stops the hub from starting or from linking up, by config key.
    pub problems: Vec<Problem>,
}

impl Report {
    /// The problems as config errors of `file` (`text` is its content, to find the lines).
    pub fn errors(&self, file: &Path, text: &str) -> ConfigErrors {
        ConfigErrors(
            self.problems
                .iter()
                .map(|p| ConfigError {
                    file: file.to_owned(),
                    line: vigil_config::locate(text, &p.key),
                    key: p.key.clone(),
                    message: p.message.clone(),
                })
                .collect(),
        )
    }
}

/// Checks what `config` (loaded and validated) names, at `now`; see the module docs.
/// `config_path` names the config file in hints.
pub fn check(config: &HubConfig, config_path: &Path, now: SystemTime) -> Report {
    let mut report = Report::default();
    store(config, &mut report);
    ca(config, now, &mut report);
    parent(config, config_path, now, &mut report);
    https(config, &mut report);
    report
}

/// The parent part of [`check`] alone: what `vigil-hub run` checks before it starts.
pub fn check_parent(config: &HubConfig, config_path: &Path, now: SystemTime) -> Report {
    let mut report = Report::default();
    parent(config, config_path, now, &mut report);
    report
}

fn store(config: &HubConfig, report: &mut Report) {
    let path = &config.store.path;
    match vigil_store::inspect(path) {
        Ok(None) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            match dir {
                Some(dir) if dir.exists() && !writable(dir) => report.problems.push(Problem::new(
                    "store.path",
                    format!(
                        "{} does not exist and {} is not writable: the hub cannot create its store there",
                        path.display(),
                        dir.display()
                    ),
                )),
                _ => report.lines.push(format!(
                    "store     {} does not exist yet: created at the first start",
                    path.display()
                )),
            }
        }
        Ok(Some(found)) if found.damage.is_some() => report.problems.push(Problem::new(
            "store.path",
            format!(
                "{} is damaged (SQLite's check says: {}); restore it from a backup",
                path.display(),
                found.damage.unwrap_or_default()
            ),
        )),
        Ok(Some(found)) if found.schema_version > found.known_version => {
            report.problems.push(Problem::new(
                "store.path",
                format!(
                    "{} was written by a newer vigil-hub (schema {}; this one knows up to {}): run that version",
                    path.display(),
                    found.schema_version,
                    found.known_version
                ),
            ))
        }
        Ok(Some(found)) if found.schema_version < found.known_version => {
            report.lines.push(format!(
                "store     {} (schema {}): migrated to schema {} at the next start",
                path.display(),
                found.schema_version,
                found.known_version
            ))
        }
        Ok(Some(found)) => report.lines.push(format!(
            "store     {} (schema {}, consistent)",
            path.display(),
            found.schema_version
        )),
        Err(e) => report.problems.push(Problem::new(
            "store.path",
            format!("{} cannot be read as a store: {e}", path.display()),
        )),
    }
}

/// Whether a file could be created in `dir` (its permission bits allow this process to).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".vigil-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

fn ca(config: &HubConfig, now: SystemTime, report: &mut Report) {
    let dir = config.ca_dir();
    let cert = dir.join(vigil_pki::ca::CA_CERT_FILE);
    if !cert.exists() && !dir.join(vigil_pki::ca::CA_KEY_FILE).exists() {
        report.lines.push(format!(
            "ca        {} holds no CA yet: created at the first start",
            dir.display()
        ));
        return;
    }
    let loaded = vigil_pki::Ca::load(&dir).and_then(|ca| {
        let der = vigil_pki::cert::cert_from_pem(ca.cert_pem(), &cert.display().to_string())?;
        Ok((
            ca.fingerprint(),
            vigil_pki::validity_of_certificate(&der)?.1,
        ))
    });
    match loaded {
        Ok((fingerprint, not_after)) => {
            let left = expiry(not_after, now);
            report.lines.push(format!(
                "ca        {} (sha256 {fingerprint}), expires {}",
                dir.display(),
                date(not_after)
            ));
            match left {
                None => report.problems.push(Problem::new(
                    "ca.dir",
                    format!(
                        "the CA in {} expired on {}: no child can connect",
                        dir.display(),
                        date(not_after)
                    ),
                )),
                Some(d) if d < EXPIRY_WARNING => report.warnings.push(format!(
                    "the CA in {} expires in {} days",
                    dir.display(),
                    d.as_secs() / 86400
                )),
                Some(_) => {}
            }
        }
        Err(e) => report
            .problems
            .push(Problem::new("ca.dir", format!("{}: {e}", dir.display()))),
    }
}

fn parent(config: &HubConfig, config_path: &Path, now: SystemTime, report: &mut Report) {
    let Some(url) = config.parent_url() else {
        return;
    };
    let hint = format!(
        "run `vigil-hub enroll --hub URL --token - --config {}` with a token from the parent's operator",
        config_path.display()
    );
    if config.node.site.is_none() {
        // docs/ARCHITECTURE.md#site-bindings-and-admission: the parent applies from this hub
        // only what lies inside the site it bound it to.
        report.warnings.push(
            "[node] site is not set: the parent takes from this hub only what lies inside the \
             site it bound it to (enroll-token --site), and this hub's own alarms about nodes \
             it holds no binding for (its broker's refused handshakes) are raised at a site \
             named after the hub; set [node] site to that binding"
                .to_owned(),
        );
    }
    if !url.tls {
        report.lines.push(format!(
            "parent    {url}: plain mqtt://, no certificate; to link up over mTLS, {hint}"
        ));
        return;
    }
    let Some(files) = config.parent_tls_files() else {
        return;
    };
    for (key, path) in [
        ("parent.ca", &files.ca),
        ("parent.cert", &files.cert),
        ("parent.key", &files.key),
    ] {
        if !path.exists() {
            report.problems.push(Problem::new(
                key,
                format!(
                    "{} does not exist; an mqtts:// parent needs it: {hint}",
                    path.display()
                ),
            ));
        }
    }
    if !report.problems.iter().any(|p| p.key.starts_with("parent.")) {
        match files.identity() {
            Err(e) => report
                .problems
                .push(Problem::new("parent.cert", format!("{e}; or {hint}"))),
            Ok(identity) if identity.node != config.node.id => report.problems.push(Problem::new(
                "node.id",
                format!(
                    "[node] id is {:?} but {} was issued to \"{}\": the parent's broker lets this hub publish only as \"{}\"; enroll again with a token for {:?}",
                    config.node.id.as_str(),
                    files.cert.display(),
                    identity.node,
                    identity.node,
                    config.node.id.as_str()
                ),
            )),
            Ok(identity) => {
                match expiry(identity.not_after, now).map(|_| files.verify_issuer(now)) {
                    Some(Err(e)) => report.problems.push(Problem::new(
                        "parent.ca",
                        format!(
                            "{e}; the parent's broker will refuse this hub: put the parent's CA \
                             certificate at [parent] ca ({}), or {hint}",
                            files.ca.display()
                        ),
                    )),
                    _ => report.lines.push(format!(
                        "parent    {url}: certificate for {} (matches [node] id, issued by the CA \
                         in {}), expires {}",
                        identity.node,
                        files.ca.display(),
                        date(identity.not_after)
                    )),
                }
                match expiry(identity.not_after, now) {
                    None => report.problems.push(Problem::new(
                        "parent.cert",
                        format!(
                            "{} expired on {}: {hint}",
                            files.cert.display(),
                            date(identity.not_after)
                        ),
                    )),
                    Some(d) if d < EXPIRY_WARNING => report.warnings.push(format!(
                        "the certificate towards the parent expires in {} days: enroll again before then ({hint})",
                        d.as_secs() / 86400
                    )),
                    Some(_) => {}
                }
            }
        }
    }
}

fn https(config: &HubConfig, report: &mut Report) {
    let http = &config.http;
    if !http.tls {
        return;
    }
    let (Some(cert), Some(key)) = (&http.cert, &http.key) else {
        report.lines.push(format!(
            "https     {}: a certificate from the hub's CA, issued at start",
            http.listen
        ));
        return;
    };
    let loaded = vigil_pki::files::read_text(cert).and_then(|cert_pem| {
        let key_pem = vigil_pki::read_private_key(key)?;
        vigil_pki::server_config(&cert_pem, &key_pem)
    });
    match loaded {
        Ok(_) => report.lines.push(format!(
            "https     {}: {} and its key",
            http.listen,
            cert.display()
        )),
        Err(e) => report
            .problems
            .push(Problem::new("http.cert", e.to_string())),
    }
}

/// How long until `not_after`; `None` when it has passed.
fn expiry(not_after: SystemTime, now: SystemTime) -> Option<Duration> {
    not_after.duration_since(now).ok()
}

/// `t` as the hub writes times (RFC 3339, UTC).
fn date(t: SystemTime) -> String {
    let ms = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    vigil_core::Timestamp::from_millis(ms).to_string()
}
