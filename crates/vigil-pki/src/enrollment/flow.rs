//! The one enrollment flow of a node, shared by `vigil-agent enroll` (a gateway: `[uplink]`
//! and `[tls]` in `agent.toml`) and `vigil-hub enroll` (a hub joining its parent: `[parent]`
//! in `hub.toml`). Each binary parses its token (from standard input), loads and validates
//! its config, and describes itself in a [`NodeEnrollment`]; [`enroll_node`] does the rest,
//! reporting each step on the writer it is given:
//!
//! 1. **Before the one-time token is spent**, everything that could make the enrollment
//!    fail afterwards is tried: the hub URL parses; the config file resolves, reads, parses
//!    for editing and its directory can be written to; the directories of the CA,
//!    certificate and key exist or are created (0700) and can be written to; and the node
//!    is not already enrolled with this hub — a certificate in place from the CA the token
//!    pins, naming this node, valid for more than [`RENEW_WITHIN`] more, is refused unless
//!    `force` (`--force`) asks for a new one.
//! 2. A key pair and a CSR for the node are made here ([`crate::node_key_and_csr`]); the
//!    key never leaves the machine.
//! 3. `POST {hub}/api/v1/enroll` ([`super::client::enroll`]): over `https://` the hub's
//!    chain must hold the pinned CA before the token is sent; the answer is accepted only if
//!    its CA hashes to the pin and the certificate chains to it and names the node.
//! 4. The certificate must go with the key made in step 2.
//! 5. The key (0600), the certificate and the CA are written atomically, then the link's
//!    `url` in the config file is set to the hub's `mqtts://` broker ([`super::config_file`]).
//!
//! When anything fails, directories the flow created (still empty) are removed again; a
//! failure after step 3 says that the token is spent.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::UnixTime;
use vigil_core::{NodeId, SitePath};

use super::client::{self, EnrollError};
use super::config_file::{link_url, set_link_url, with_link_url};
use super::token::EnrollToken;
use crate::cert::{cert_from_pem, certs_from_pem, node_of_certificate};
use crate::files::{TlsFiles, TlsMaterial};
use crate::revocations::Revocations;
use crate::tls::{provider, NodeCertVerifier};

/// A certificate that expires within this long does not count as enrolled: enrolling
/// again renews it without `--force`.
pub const RENEW_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);

/// What one node's enrollment needs: who it is and where its config and files are.
#[derive(Debug, Clone)]
pub struct NodeEnrollment {
    /// The hub's HTTP base URL.
    pub hub: String,
    /// The one-time token.
    pub token: EnrollToken,
    /// The node enrolled (its config's `[node] id`).
    pub node: NodeId,
    /// The node's config file.
    pub config: PathBuf,
    /// The table of the config whose `url` becomes the hub's broker (`uplink`, `parent`).
    pub table: &'static str,
    /// Where the CA, the certificate and the key go.
    pub files: TlsFiles,
    /// The bound on the exchange with the hub.
    pub timeout: Duration,
    /// Enroll even when the node already holds a valid certificate from this hub.
    pub force: bool,
    /// What the node is (`vigil-hub enroll`: a hub; `vigil-agent enroll`: a gateway).
    pub kind: super::client::EnrollKind,
    /// The config's `[node] site`, when it has one: it must lie inside the site the hub
    /// binds the node to, or nothing is written.
    pub site: Option<SitePath>,
}

/// What an enrollment wrote.
#[derive(Debug, Clone)]
pub struct EnrolledNode {
    /// The node enrolled.
    pub node: NodeId,
    /// Where the CA, certificate and key were written.
    pub files: TlsFiles,
    /// The config file edited (resolved).
    pub config: PathBuf,
    /// The table whose `url` was set.
    pub table: &'static str,
    /// The table's `url` before, if it had one.
    pub previous_url: Option<String>,
    /// The link's new URL: the hub's broker.
    pub broker: String,
    /// When the certificate expires (as the hub said, RFC 3339).
    pub expires_at: String,
    /// The hub CA's SHA-256 fingerprint (the pin).
    pub ca_fingerprint: String,
    /// The hub and the hubs above it, nearest first, as it said.
    pub ancestors: Vec<NodeId>,
}

/// Why an enrollment failed. Nothing was written, and the token was not spent, unless the
/// variant says so.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A check before the token is spent failed (a file or directory that cannot be
    /// written, a config file that cannot be edited).
    #[error("{0} (the token was not used)")]
    Prepare(String),
    /// The node already holds a valid certificate from this hub.
    #[error("{node} is already enrolled with this hub: {cert} names it, from the CA the token pins, until {until}. The token was not used. To replace the key and certificate anyway, run the command again with --force (the old certificate stays valid until the hub's operator revokes it: `vigil-hub revoke --node {node} --serial {serial}`)")]
    AlreadyEnrolled {
        /// The node.
        node: String,
        /// Its certificate file.
        cert: String,
        /// When it expires (RFC 3339).
        until: String,
        /// Its serial (hex).
        serial: String,
    },
    /// The hub refused, could not be reached, or its answer failed a check.
    #[error("{0}")]
    Enroll(#[from] EnrollError),
    /// The config's `[node] site` is not inside the site the hub bound the node to.
    #[error("{config}: [node] site = \"{site}\" is not inside {bound}, the site the hub bound {node} to (the token's --site): nothing was written. The token is spent: ask the hub's operator for a new one with the right site (`vigil-hub enroll-token --node {node} --site SITE`, SITE holding {site}), or correct [node] site, then enroll again")]
    SiteOutsideBinding {
        /// The config file.
        config: String,
        /// The node.
        node: String,
        /// Its `[node] site`.
        site: String,
        /// The site the hub bound it to.
        bound: String,
    },
    /// Writing failed after the hub issued the certificate.
    #[error("{0}; the hub has issued the certificate and spent the token: fix this, then enroll again with a new token")]
    Write(String),
}

/// Enrolls the node `e` describes, reporting each step on `out`. On failure the
/// directories it created (still empty) are removed again.
pub async fn enroll_node(
    e: &NodeEnrollment,
    out: &mut dyn Write,
) -> Result<EnrolledNode, FlowError> {
    let mut created = Vec::new();
    let result = steps(e, out, &mut created).await;
    if result.is_err() {
        for dir in &created {
            // Only empty ones go: a directory something was written to stays.
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

fn step(out: &mut dyn Write, text: &str) {
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

async fn steps(
    e: &NodeEnrollment,
    out: &mut dyn Write,
    created: &mut Vec<PathBuf>,
) -> Result<EnrolledNode, FlowError> {
    let url = client::enroll_url(&e.hub)?;
    let node = &e.node;

    // 1. Everything that could fail after the token is spent, tried first.
    let config = fs::canonicalize(&e.config).map_err(|err| {
        FlowError::Prepare(format!("cannot resolve {}: {err}", e.config.display()))
    })?;
    let text = fs::read_to_string(&config)
        .map_err(|err| FlowError::Prepare(format!("cannot read {}: {err}", config.display())))?;
    with_link_url(&text, e.table, "mqtts://check")
        .map_err(|err| FlowError::Prepare(format!("{}: {err}", config.display())))?;
    if !e.force {
        if let Some(held) = held_certificate(&e.files, &e.token, node) {
            return Err(held);
        }
    }
    for dir in [
        parent(&e.files.ca),
        parent(&e.files.cert),
        parent(&e.files.key),
        parent(&config),
    ] {
        writable_dir(&dir, created).map_err(FlowError::Prepare)?;
    }
    if client::is_plain_http(&e.hub)? {
        step(out, &format!("warning: {url} is plain http: the token crosses the network in clear. Use http:// only on loopback or a trusted segment; the hub's CA is still checked against the token's pin."));
    }

    // 2. The key stays here.
    step(out, &format!("[1/4] making a key pair and a certificate request for {node} (the key stays on this machine)"));
    let request = crate::node_key_and_csr(node)
        .map_err(|err| FlowError::Prepare(format!("cannot make the key pair: {err}")))?;

    // 3. The one request that spends the token.
    step(out, &format!("[2/4] sending the request to {url}"));
    let enrolled =
        client::enroll_as(&e.hub, &e.token, &request.csr_pem, node, e.kind, e.timeout).await?;

    // 4. The certificate goes with the key.
    step(out, &format!("[3/4] checking the answer: the CA is the one the token pins (SHA-256 {}), the certificate chains to it and names {node}", enrolled.ca_fingerprint));
    let material = TlsMaterial {
        ca_pem: enrolled.ca_pem.clone(),
        cert_pem: enrolled.certificate_pem.clone(),
        key_pem: request.key_pem.clone(),
    };
    material.client_config().map_err(|err| {
        FlowError::Enroll(EnrollError::Chain {
            url: url.clone(),
            reason: format!("the certificate does not go with the key made here: {err}"),
        })
    })?;

    // The hub's binding must hold the node's own site (a hub that predates bindings says
    // none).
    if let (Some(site), Some(bound)) = (&e.site, &enrolled.site) {
        let inside = SitePath::new(bound.as_str()).is_ok_and(|bound| site.is_within(&bound));
        if !inside {
            return Err(FlowError::SiteOutsideBinding {
                config: config.display().to_string(),
                node: node.to_string(),
                site: site.to_string(),
                bound: bound.clone(),
            });
        }
    }

    // 5. The files, then the config (read again: another editor may have saved it).
    step(
        out,
        "[4/4] writing the key, the certificates and the config",
    );
    let write = |what: &Path, r: crate::Result<()>| {
        r.map_err(|err| FlowError::Write(format!("cannot write {}: {err}", what.display())))
    };
    write(
        &e.files.key,
        crate::write_private_key(&e.files.key, &request.key_pem),
    )?;
    write(
        &e.files.cert,
        crate::write_certificate(&e.files.cert, &enrolled.certificate_pem),
    )?;
    write(
        &e.files.ca,
        crate::write_certificate(&e.files.ca, &enrolled.ca_pem),
    )?;
    set_link_url(&config, e.table, &enrolled.broker).map_err(FlowError::Write)?;
    Ok(EnrolledNode {
        node: enrolled.node,
        files: e.files.clone(),
        config,
        table: e.table,
        previous_url: link_url(&text, e.table),
        broker: enrolled.broker,
        expires_at: enrolled.expires_at,
        ca_fingerprint: enrolled.ca_fingerprint,
        ancestors: enrolled.ancestors,
    })
}

/// [`FlowError::AlreadyEnrolled`] when `files` hold a certificate from the CA `token`
/// pins, naming `node`, valid now and for more than [`RENEW_WITHIN`]; `None` otherwise
/// (no files, another hub's CA, another node, or a certificate due for renewal).
fn held_certificate(files: &TlsFiles, token: &EnrollToken, node: &NodeId) -> Option<FlowError> {
    let ca_pem = fs::read_to_string(&files.ca).ok()?;
    let ca = cert_from_pem(&ca_pem, "ca").ok()?;
    if !token.pins(&ca) {
        return None;
    }
    let cert_pem = fs::read_to_string(&files.cert).ok()?;
    let certs = certs_from_pem(&cert_pem, "cert").ok()?;
    let (leaf, intermediates) = certs.split_first()?;
    let verifier = NodeCertVerifier::new(&ca_pem, Revocations::new(), provider()).ok()?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .ok()?;
    if &node_of_certificate(leaf).ok()? != node {
        return None;
    }
    let (_, not_after) = crate::validity_of_certificate(leaf).ok()?;
    if not_after < SystemTime::now() + RENEW_WITHIN {
        return None;
    }
    Some(FlowError::AlreadyEnrolled {
        node: node.to_string(),
        cert: files.cert.display().to_string(),
        until: rfc3339(not_after),
        serial: crate::serial_of_certificate(leaf).unwrap_or_default(),
    })
}

fn rfc3339(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    vigil_core::Timestamp::from_millis(ms).to_string()
}

/// Creates `dir` (and its parents, mode 0700) if needed, recording in `created` the
/// directories it made (deepest first), and checks a file can be created in it.
fn writable_dir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut missing = dir;
    while !missing.exists() {
        created.push(missing.to_owned());
        match missing.parent() {
            Some(p) if !p.as_os_str().is_empty() => missing = p,
            _ => break,
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let probe = dir.join(format!(".vigil-enroll-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| {
        format!(
            "cannot write in {}: {e} (run as the node's user, or as root)",
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

impl EnrolledNode {
    /// Writes what enrollment did and `next`, the step the operator takes now.
    pub fn report(&self, next: &str, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "enrolled {} (hub CA SHA-256 {})",
            self.node, self.ca_fingerprint
        )?;
        writeln!(
            out,
            "  wrote {}  private key, mode 0600",
            self.files.key.display()
        )?;
        writeln!(
            out,
            "  wrote {}  certificate, expires {}",
            self.files.cert.display(),
            self.expires_at
        )?;
        writeln!(out, "  wrote {}  the hub's CA", self.files.ca.display())?;
        let was = self
            .previous_url
            .as_ref()
            .map_or(String::new(), |u| format!(" (was \"{u}\")"));
        writeln!(
            out,
            "  set   [{}] url = \"{}\" in {}{was}",
            self.table,
            self.broker,
            self.config.display()
        )?;
        writeln!(out, "next: {next}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ca;

    fn setup() -> (tempfile::TempDir, Ca, NodeEnrollment) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(&dir.path().join("pki"), "test CA").expect("ca");
        let config = dir.path().join("agent.toml");
        fs::write(&config, "[uplink]\nurl = \"mqtt://127.0.0.1:1883\"\n").expect("config");
        let e = NodeEnrollment {
            // Nothing listens on port 1: a request would fail to connect.
            hub: "http://127.0.0.1:1".into(),
            token: EnrollToken::generate(ca.cert_der()).expect("token"),
            node: NodeId::new("gw-1").expect("node"),
            config,
            table: "uplink",
            files: TlsFiles::in_dir(&dir.path().join("tls")),
            timeout: Duration::from_secs(5),
            force: false,
            kind: crate::EnrollKind::Gateway,
            site: None,
        };
        (dir, ca, e)
    }

    fn hold(ca: &Ca, e: &NodeEnrollment, node: &str, valid: Duration) {
        let node = NodeId::new(node).expect("node");
        let request = crate::node_key_and_csr(&node).expect("csr");
        let issued = ca
            .issue_node(&request.csr_pem, &node, valid)
            .expect("issue");
        fs::create_dir_all(parent(&e.files.ca)).expect("dir");
        fs::write(&e.files.ca, ca.cert_pem()).expect("ca");
        fs::write(&e.files.cert, &issued.cert_pem).expect("cert");
    }

    #[tokio::test]
    async fn a_node_enrolled_with_this_hub_is_refused_before_the_token_is_spent() {
        let (_dir, ca, mut e) = setup();
        hold(&ca, &e, "gw-1", Duration::from_secs(365 * 86400));
        let mut out = Vec::new();
        let err = enroll_node(&e, &mut out).await.expect_err("already");
        assert!(matches!(err, FlowError::AlreadyEnrolled { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("--force") && text.contains("not used"),
            "{text}"
        );
        assert!(out.is_empty(), "no step was taken");

        // With --force, the flow goes on to the hub (here: nobody listens).
        e.force = true;
        let err = enroll_node(&e, &mut out).await.expect_err("no hub");
        assert!(
            matches!(err, FlowError::Enroll(EnrollError::Connect { .. })),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_certificate_due_for_renewal_another_nodes_or_another_hubs_is_no_enrollment() {
        for (node, valid, other_ca) in [
            ("gw-1", Duration::from_secs(86400), false),
            ("gw-2", Duration::from_secs(365 * 86400), false),
            ("gw-1", Duration::from_secs(365 * 86400), true),
        ] {
            let (dir, ca, e) = setup();
            let issuer = if other_ca {
                Ca::load_or_create(&dir.path().join("other"), "other CA").expect("ca")
            } else {
                ca
            };
            hold(&issuer, &e, node, valid);
            let err = enroll_node(&e, &mut Vec::new()).await.expect_err("no hub");
            assert!(
                matches!(err, FlowError::Enroll(EnrollError::Connect { .. })),
                "{node} {valid:?} {other_ca}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_config_that_cannot_be_edited_is_refused_and_created_directories_removed() {
        let (dir, _ca, e) = setup();
        fs::write(&e.config, "uplink = 1\n").expect("config");
        let err = enroll_node(&e, &mut Vec::new()).await.expect_err("bad");
        assert!(matches!(err, FlowError::Prepare(_)), "{err}");
        assert!(err.to_string().contains("[uplink]"), "{err}");
        assert!(!dir.path().join("tls").exists());

        // A failure after the directories were made: they go again.
        fs::write(&e.config, "[uplink]\n").expect("config");
        enroll_node(&e, &mut Vec::new()).await.expect_err("no hub");
        assert!(!dir.path().join("tls").exists());
    }
}
