//! `vigil-agent enroll --hub URL --token TOKEN --config agent.toml`: the gateway's side of
//! enrollment (docs/ARCHITECTURE.md#certificate-authority-and-enrollment).
//!
//! 1. The token is parsed first (a mistyped token fails before anything else happens), then
//!    the config (its `[node] id` is who is enrolled, its `[tls]` paths where the files go).
//! 2. Everything that could fail *after* the one-time token is spent is tried before: the
//!    `[tls]` directories are created and written to, the config is parsed for editing and
//!    its directory written to.
//! 3. A key pair and a CSR for `[node] id` are made here ([`vigil_pki::node_key_and_csr`]);
//!    the key never leaves the gateway.
//! 4. `POST {hub}/api/v1/enroll` ([`vigil_pki::enroll`]); the answer is accepted only if
//!    the CA hashes to the token's pin, the certificate chains to it and names `[node] id`,
//!    and the certificate belongs to the key made in step 3. Otherwise nothing is written.
//! 5. `node.key` (0600), `node.pem` and `ca.pem` are written atomically, and `[uplink] url`
//!    is set to the hub's `mqtts://` broker with `toml_edit`, the file's comments and layout
//!    kept ([`set_uplink_url`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_config::ConfigErrors;
use vigil_pki::{EnrollError, EnrollToken, TlsFiles, TlsMaterial, TokenError};

use crate::config::AgentConfig;
use crate::profiles::config_dir;

/// What `enroll` is asked to do.
#[derive(Debug, Clone)]
pub struct EnrollArgs {
    /// The hub's HTTP base URL.
    pub hub: String,
    /// The token's text.
    pub token: String,
    /// The agent's config file.
    pub config: PathBuf,
    /// The bound on the exchange with the hub.
    pub timeout: Duration,
}

/// What enrollment wrote.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The node enrolled.
    pub node: vigil_core::NodeId,
    /// Where the CA, certificate and key were written.
    pub files: TlsFiles,
    /// The uplink's new URL.
    pub broker: String,
    /// The uplink's URL before.
    pub previous_url: String,
    /// When the certificate expires (as the hub said).
    pub expires_at: String,
    /// The hub CA's SHA-256 fingerprint.
    pub ca_fingerprint: String,
}

/// Why enrollment failed; nothing was written unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum EnrollCmdError {
    /// The token is not a token.
    #[error("--token: {0}")]
    Token(#[from] TokenError),
    /// The config does not load.
    #[error("{0}")]
    Config(ConfigErrors),
    /// A file or directory enrollment must write cannot be written (checked before the
    /// token is spent).
    #[error("{0}")]
    Prepare(String),
    /// The hub refused, could not be reached, or its answer failed a check.
    #[error("{0}")]
    Enroll(#[from] EnrollError),
    /// Writing the files failed after the hub issued the certificate.
    #[error("{0}; the hub has issued the certificate and spent the token: fix this, then enroll again with a new token")]
    Write(String),
}

impl EnrollCmdError {
    /// The exit status: 2 for a bad token or config, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            EnrollCmdError::Token(_) | EnrollCmdError::Config(_) => vigil_config::EXIT_CONFIG,
            _ => 1,
        }
    }
}

/// Sets `[uplink] url` in the TOML `text` to `url`, keeping every comment, the layout and
/// the value's own trailing comment. Fails if there is no `[uplink]` table.
pub fn set_uplink_url(text: &str, url: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let uplink = doc
        .get_mut("uplink")
        .and_then(|u| u.as_table_like_mut())
        .ok_or("has no [uplink] table")?;
    match uplink.get_mut("url").and_then(|v| v.as_value_mut()) {
        Some(value) => {
            let decor = value.decor().clone();
            *value = toml_edit::Value::from(url);
            *value.decor_mut() = decor;
        }
        None => {
            uplink.insert("url", toml_edit::value(url));
        }
    }
    Ok(doc.to_string())
}

/// Creates `dir` (and its parents) if needed, recording in `created` the directories it
/// made (deepest first), and checks a file can be created in it.
fn writable_dir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut missing = dir;
    while !missing.exists() {
        created.push(missing.to_owned());
        match missing.parent() {
            Some(p) if !p.as_os_str().is_empty() => missing = p,
            _ => break,
        }
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let probe = dir.join(format!(".vigil-enroll-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| {
        format!(
            "cannot write in {}: {e} (run as the agent's user, or as root)",
            dir.display()
        )
    })?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Enrolls the gateway of `args.config` with the hub, reporting each step on `out`. On
/// failure the directories it created (still empty) are removed again.
pub async fn enroll(args: &EnrollArgs, out: &mut dyn Write) -> Result<Enrolled, EnrollCmdError> {
    let mut created = Vec::new();
    let result = enroll_steps(args, out, &mut created).await;
    if result.is_err() {
        for dir in &created {
            // Only empty ones go: a directory something was written to stays.
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

async fn enroll_steps(
    args: &EnrollArgs,
    out: &mut dyn Write,
    created: &mut Vec<PathBuf>,
) -> Result<Enrolled, EnrollCmdError> {
    let token: EnrollToken = if args.token == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| {
            EnrollCmdError::Prepare(format!("cannot read the token from standard input: {e}"))
        })?;
        line.parse()?
    } else {
        args.token.parse()?
    };
    let config = AgentConfig::load(&args.config).map_err(EnrollCmdError::Config)?;
    let node = config.node.id.clone();
    let dir = config_dir(&args.config);
    let files = config.tls.files(&dir);
    let url = vigil_pki::enroll_client::enroll_url(&args.hub)?;
    let step = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };

    // Everything that could fail after the token is spent, tried first.
    let config_path = fs::canonicalize(&args.config).map_err(|e| {
        EnrollCmdError::Prepare(format!("cannot resolve {}: {e}", args.config.display()))
    })?;
    let config_text = fs::read_to_string(&config_path).map_err(|e| {
        EnrollCmdError::Prepare(format!("cannot read {}: {e}", config_path.display()))
    })?;
    set_uplink_url(&config_text, "mqtts://check")
        .map_err(|e| EnrollCmdError::Prepare(format!("{}: {e}", config_path.display())))?;
    let config_mode = fs::metadata(&config_path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    for d in [
        parent(&files.ca),
        parent(&files.cert),
        parent(&files.key),
        parent(&config_path),
    ] {
        writable_dir(&d, created).map_err(EnrollCmdError::Prepare)?;
    }

    if vigil_pki::enroll_client::is_plain_http(&args.hub)? {
        step(
            out,
            format!("warning: {url} is plain http: the token crosses the network in clear. Use http:// only on loopback or a trusted segment; the hub's CA is still checked against the token's pin."),
        );
    }
    step(out, format!("[1/4] making a key pair and a certificate request for {node} (the key stays on this gateway)"));
    let request = vigil_pki::node_key_and_csr(&node)
        .map_err(|e| EnrollCmdError::Prepare(format!("cannot make the key pair: {e}")))?;

    step(out, format!("[2/4] sending the request to {url}"));
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("waiting for {url}"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let answer = vigil_pki::enroll(&args.hub, &token, &request.csr_pem, &node, args.timeout).await;
    spinner.finish_and_clear();
    let enrolled = answer?;

    step(
        out,
        format!(
            "[3/4] checking the answer: the CA is the one the token pins (SHA-256 {}), the certificate chains to it and names {node}",
            enrolled.ca_fingerprint
        ),
    );
    let material = TlsMaterial {
        ca_pem: enrolled.ca_pem.clone(),
        cert_pem: enrolled.certificate_pem.clone(),
        key_pem: request.key_pem.clone(),
    };
    material.client_config().map_err(|e| {
        EnrollCmdError::Enroll(EnrollError::Chain {
            url: url.clone(),
            reason: format!("the certificate does not go with the key made here: {e}"),
        })
    })?;

    step(
        out,
        "[4/4] writing the key, the certificates and the config".to_owned(),
    );
    let write = |what: &Path, r: vigil_pki::Result<()>| {
        r.map_err(|e| EnrollCmdError::Write(format!("cannot write {}: {e}", what.display())))
    };
    write(
        &files.key,
        vigil_pki::write_private_key(&files.key, &request.key_pem),
    )?;
    write(
        &files.cert,
        vigil_pki::write_certificate(&files.cert, &enrolled.certificate_pem),
    )?;
    write(
        &files.ca,
        vigil_pki::write_certificate(&files.ca, &enrolled.ca_pem),
    )?;
    // Read again: another editor may have saved it meanwhile.
    let config_text = fs::read_to_string(&config_path).map_err(|e| {
        EnrollCmdError::Write(format!("cannot read {}: {e}", config_path.display()))
    })?;
    let edited = set_uplink_url(&config_text, &enrolled.broker)
        .map_err(|e| EnrollCmdError::Write(format!("{}: {e}", config_path.display())))?;
    write(
        &config_path,
        vigil_pki::files::write_atomic(&config_path, edited.as_bytes(), config_mode),
    )?;
    Ok(Enrolled {
        node,
        files,
        broker: enrolled.broker,
        previous_url: config.uplink.url,
        expires_at: enrolled.expires_at,
        ca_fingerprint: enrolled.ca_fingerprint,
    })
}

/// Writes what enrollment did and the next step.
pub fn report(e: &Enrolled, config: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "enrolled {} (hub CA SHA-256 {})",
        e.node, e.ca_fingerprint
    )?;
    writeln!(
        out,
        "  wrote {}  private key, mode 0600",
        e.files.key.display()
    )?;
    writeln!(
        out,
        "  wrote {}  certificate, expires {}",
        e.files.cert.display(),
        e.expires_at
    )?;
    writeln!(out, "  wrote {}  the hub's CA", e.files.ca.display())?;
    writeln!(
        out,
        "  set   [uplink] url = \"{}\" in {} (was \"{}\")",
        e.broker,
        config.display(),
        e.previous_url
    )?;
    writeln!(
        out,
        "next: `vigil-agent check --config {0}`, then start (or restart) the agent: `vigil-agent run --config {0}`",
        config.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# The gateway at prison 3.
[node]
id = "gw-prison-3"   # from the asset register
site = "ministry/p/c/county/prison-3"

[uplink]
# the county hub's broker
url = "mqtt://127.0.0.1:1883"   # mqtts:// once enrolled

[store]
path = "agent.db"
"#;

    #[test]
    fn the_url_is_replaced_and_everything_else_kept() {
        let edited = set_uplink_url(CONFIG, "mqtts://hub.example:8883").expect("edit");
        assert_eq!(
            edited,
            CONFIG.replace("mqtt://127.0.0.1:1883", "mqtts://hub.example:8883")
        );
    }

    #[test]
    fn an_inline_uplink_or_a_missing_url_works_and_no_uplink_is_refused() {
        let edited =
            set_uplink_url("uplink = { url = \"mqtt://a\" }\n", "mqtts://b:1").expect("inline");
        assert_eq!(edited, "uplink = { url = \"mqtts://b:1\" }\n");
        let edited = set_uplink_url("[uplink]\n", "mqtts://b:1").expect("missing");
        assert_eq!(edited, "[uplink]\nurl = \"mqtts://b:1\"\n");
        assert!(set_uplink_url("[node]\nid = \"x\"\n", "mqtts://b:1").is_err());
        assert!(set_uplink_url("[uplink\n", "mqtts://b:1").is_err());
    }
}
