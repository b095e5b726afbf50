//! `vigil-hub enroll-token --node ID --site SITE [--kind hub] --ttl 1h`: a one-time token
//! for a child node, bound to a site subtree, for a node of one kind (a gateway unless
//! `--kind hub`: the enrollment endpoint refuses a request of another kind, so a node does
//! not choose its own).
//!
//! The token is `VGL1.<id>.<secret>.<pin>`, made and looked up by its one format
//! (`vigil_pki::enrollment::token`); the store keeps its id, the SHA-256 of its secret, the
//! node, the site it binds the node to, when it was made and when it expires, and the
//! audit log records who made it (actor `cli:<unix user>`, action `enroll_token.add`). The
//! secret is printed once and never stored. The site must lie inside this hub's own
//! `[node] site` (when it has one): a hub cannot let a child speak for sites it does not
//! speak for itself (docs/ARCHITECTURE.md#site-bindings-and-admission).

use std::net::IpAddr;
use std::time::Duration;

use vigil_core::{NodeId, SitePath, Timestamp};
use vigil_pki::EnrollToken;
use vigil_store::{NewEnrollmentToken, NodeKind, Store};

use super::{audit_entry, ACTION_TOKEN};
use crate::config::HubConfig;
use crate::pki::HubPki;

/// A token just issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token (print it once).
    pub token: EnrollToken,
    /// The node it enrolls.
    pub node: NodeId,
    /// The site subtree the node is bound to.
    pub site: SitePath,
    /// The kind of node it enrolls.
    pub kind: NodeKind,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// The hub URL the node enrolls at.
    pub hub_url: String,
}

impl IssuedToken {
    /// The command the installer runs on the node: [`agent_command`](Self::agent_command)
    /// for a gateway, [`hub_command`](Self::hub_command) for a hub.
    pub fn command(&self) -> String {
        match self.kind {
            NodeKind::Hub => self.hub_command(),
            NodeKind::Gateway => self.agent_command(),
        }
    }

    /// The command the installer runs on the gateway: the token goes on its standard
    /// input, never in its arguments (where `ps` and the shell history would show it).
    pub fn agent_command(&self) -> String {
        format!(
            "vigil-agent enroll --hub {} --token - --config /etc/vigil/agent.toml",
            self.hub_url
        )
    }

    /// The command a child hub's operator runs, likewise.
    pub fn hub_command(&self) -> String {
        format!(
            "vigil-hub enroll --hub {} --token - --config /etc/vigil/hub.toml",
            self.hub_url
        )
    }
}

/// The URL of this hub's HTTP listener as a node reaches it: `https://` when `[http] tls`;
/// the host is the first of `[http] names`, else the listen address (`HUB-ADDRESS` when it
/// is unspecified, for the installer to fill in).
pub fn hub_url(config: &HubConfig) -> String {
    let scheme = if config.http.tls { "https" } else { "http" };
    let port = config.http.listen.port();
    let host = match config.http.names.first() {
        Some(name) => bracket(name),
        None => match config.http.listen.ip() {
            ip if ip.is_unspecified() => "HUB-ADDRESS".to_owned(),
            ip => bracket(&ip.to_string()),
        },
    };
    format!("{scheme}://{host}:{port}")
}

fn bracket(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

/// Checks that `site` may be bound to a child of the hub `config` describes: inside the
/// hub's own `[node] site`, when it has one.
pub fn check_site(config: &HubConfig, site: &SitePath) -> Result<(), String> {
    match &config.node.site {
        Some(own) if !site.is_within(own) => Err(format!(
            "--site {site} is not inside this hub's site {own} ([node] site): a child speaks only for sites inside its parent's; give a site under {own}"
        )),
        _ => Ok(()),
    }
}

/// Issues a token for `node`, a node of `kind`, bound to `site`, valid for `ttl`, made by
/// `actor`: stored (the secret as its hash) and audited in one transaction. Creates the CA
/// if the hub has none yet (the token pins it). Refuses the hub's own id (a child enrolled
/// under it would be trusted as the hub: its broker access, its session) and a site
/// outside the hub's own.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    store: &mut Store,
    pki: &HubPki,
    config: &HubConfig,
    node: &NodeId,
    site: &SitePath,
    kind: NodeKind,
    ttl: Duration,
    actor: &str,
) -> Result<IssuedToken, super::command::CommandError> {
    if node == &config.node.id {
        return Err(super::command::CommandError::Message(format!(
            "--node {node} is this hub's own id ([node] id): a child enrolled under it would be trusted as this hub; give the child its own id"
        )));
    }
    check_site(config, site).map_err(super::command::CommandError::Message)?;
    let token = EnrollToken::generate(pki.ca().cert_der())
        .map_err(|e| super::command::CommandError::Message(e.to_string()))?;
    let (id, secret_hash) = token.lookup_key().ok_or_else(|| {
        super::command::CommandError::Message("a generated token does not decode".to_owned())
    })?;
    let now = Timestamp::now();
    let expires_at = now.plus_millis(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let row = NewEnrollmentToken {
        id,
        secret_hash,
        node: node.to_string(),
        created_at: now,
        expires_at,
        created_by: actor.to_owned(),
        site: site.to_string(),
        kind,
    };
    let audit = audit_entry(
        &config.node.id,
        actor,
        ACTION_TOKEN,
        node.as_str(),
        serde_json::json!({
            "token": token.id(),
            "site": site.as_str(),
            "kind": kind.as_str(),
            "expires_at": expires_at.to_string(),
        }),
    );
    store.enrollment_token_add(&row, &audit)?;
    Ok(IssuedToken {
        token,
        node: node.clone(),
        site: site.clone(),
        kind,
        expires_at,
        hub_url: hub_url(config),
    })
}
