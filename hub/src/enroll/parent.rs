//! `vigil-hub enroll --hub URL --token - --config hub.toml`: this hub enrolls with its
//! parent through the one flow every node shares ([`vigil_pki::enroll_node`]), as a gateway
//! does: the checks made before the one-time token is spent, its key and CSR made here (the
//! key never leaves), the parent's CA checked against the token's pin; the answer written
//! to `[parent] ca`, `cert` and `key` (by default `parent/ca.pem`, `parent/node.pem` and
//! `parent/node.key` (0600) next to the store); and `[parent] url` in `hub.toml` set to the
//! parent's `mqtts://` broker, the file's comments and layout kept. Restart the hub to link
//! up.
//!
//! The parent's answer names it and the hubs above it (`ancestors`); they are recorded in
//! the store (`Store::ancestors_set`), and this hub never takes one of them as an origin
//! from its children (docs/ARCHITECTURE.md#site-bindings-and-admission).
//!
//! What is this hub's own to check comes first: the ministry has no parent.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use vigil_pki::{EnrollToken, EnrolledNode, NodeEnrollment};

use super::command::CommandError;
use crate::config::HubConfig;

/// The table of `hub.toml` whose `url` enrollment sets.
pub const PARENT_TABLE: &str = "parent";

/// Enrolls the hub `config` (read from `config_path`) at the parent `hub_url` with the
/// token's text `token`; returns what it wrote. Never replaces a valid certificate from
/// the same parent ([`enroll_parent`] with `force` does).
pub async fn enroll_with_parent(
    config: &HubConfig,
    config_path: &Path,
    hub_url: &str,
    token: &str,
) -> Result<EnrolledNode, CommandError> {
    enroll_parent(
        config,
        config_path,
        hub_url,
        token,
        false,
        vigil_pki::enrollment::client::DEFAULT_TIMEOUT,
        &mut std::io::sink(),
    )
    .await
}

/// [`enroll_with_parent`], reporting each step on `out`, with the bound `timeout` on the
/// exchange and `force` to replace a valid certificate from the same parent.
pub async fn enroll_parent(
    config: &HubConfig,
    config_path: &Path,
    hub_url: &str,
    token: &str,
    force: bool,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<EnrolledNode, CommandError> {
    let token: EnrollToken = token
        .parse()
        .map_err(|e: vigil_pki::TokenError| CommandError::Usage(format!("--token: {e}")))?;
    if config.node.level == vigil_core::Level::Ministry {
        return Err(CommandError::Message(format!(
            "{}: [node] level = \"ministry\": the ministry is the top of the network and has \
             no parent to enroll with (the token was not used)",
            config_path.display()
        )));
    }
    let enrollment = NodeEnrollment {
        hub: hub_url.to_owned(),
        token,
        node: config.node.id.clone(),
        config: config_path.to_owned(),
        table: PARENT_TABLE,
        files: config
            .parent_tls_files()
            .unwrap_or_else(|| vigil_pki::TlsFiles::in_dir(&config.parent_dir())),
        timeout,
        force,
        kind: vigil_pki::EnrollKind::Hub,
        site: config.node.site.clone(),
    };
    let enrolled = vigil_pki::enroll_node(&enrollment, out).await?;
    // The parent and the hubs above it, as it said: no child of this hub may speak as one
    // of them (docs/ARCHITECTURE.md#site-bindings-and-admission).
    let mut store = super::command::open_store(config)?;
    store.ancestors_set(&enrolled.ancestors)?;
    if !enrolled.ancestors.is_empty() {
        let _ = writeln!(
            out,
            "the hubs above this one, recorded in {} (never taken as an origin from its children): {}",
            config.store.path.display(),
            enrolled
                .ancestors
                .iter()
                .map(vigil_core::NodeId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(enrolled)
}
