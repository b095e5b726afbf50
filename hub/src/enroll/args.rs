//! The command-line arguments of `vigil-hub enroll-token`, `revoke`, `unbind`, `nodes`,
//! `broker-config` and `enroll` (docs/ARCHITECTURE.md#commands); what each does is in [`super::command`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vigil_core::{NodeId, SitePath};
use vigil_store::NodeKind;

use super::MAX_TOKEN_TTL;

/// `hub` or `gateway`.
fn parse_kind(s: &str) -> Result<NodeKind, String> {
    NodeKind::parse(s).ok_or_else(|| format!("{s:?}: write hub or gateway"))
}

fn parse_node(s: &str) -> Result<NodeId, String> {
    NodeId::new(s).map_err(|e| e.to_string())
}

/// A token's time to live: like `1h`, `30m`, `7d`; more than 0 and at most 7 days.
fn parse_token_ttl(s: &str) -> Result<Duration, String> {
    let d = humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (write e.g. 1h, 30m or 2d)"))?;
    if d.is_zero() {
        return Err("must be longer than 0".to_owned());
    }
    if d > MAX_TOKEN_TTL {
        return Err(format!(
            "{s} is longer than 7d: a token that works for long is a token that leaks; issue one when the installer is on site"
        ));
    }
    Ok(d)
}

/// `vigil-hub enroll-token`.
#[derive(Debug, Clone, Args)]
pub struct EnrollTokenArgs {
    /// The child node the token enrolls (its certificate will name it), e.g. gw-prison-3.
    #[arg(long, value_parser = parse_node)]
    pub node: NodeId,
    /// The site subtree the node speaks for, e.g. ministry/gd/gz/baiyun/prison-3 (inside
    /// this hub's `[node] site`): this hub accepts from the node only alerts at sites
    /// inside it (docs/ARCHITECTURE.md#site-bindings-and-admission).
    #[arg(long, value_name = "SITE")]
    pub site: SitePath,
    /// What the node is: `gateway` (enrolls with `vigil-agent enroll`) or `hub` (a child
    /// hub, `vigil-hub enroll`: it may report and speak for the nodes enrolled below it).
    /// The hub refuses an enrollment of another kind with this token.
    #[arg(long, value_name = "hub|gateway", default_value = "gateway", value_parser = parse_kind)]
    pub kind: NodeKind,
    /// How long the token works (at most 7d).
    #[arg(long, default_value = "1h", value_parser = parse_token_ttl)]
    pub ttl: Duration,
    /// The hub's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `vigil-hub revoke`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The node whose certificates to revoke.
    #[arg(long, value_parser = parse_node)]
    pub node: NodeId,
    /// Only this certificate (its serial, hex, as `GET /api/v1/nodes/{id}/certificates`
    /// lists it); without it, every certificate of the node.
    #[arg(long)]
    pub serial: Option<String>,
    /// The hub's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `vigil-hub unbind`.
#[derive(Debug, Clone, Args)]
pub struct UnbindArgs {
    /// The node enrolled here whose binding to remove (its certificates are revoked with it).
    #[arg(long, value_parser = parse_node)]
    pub node: NodeId,
    /// The hub's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `vigil-hub nodes`.
#[derive(Debug, Clone, Args)]
pub struct NodesArgs {
    /// The hub's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `vigil-hub broker-config`.
#[derive(Debug, Clone, Args)]
pub struct BrokerConfigArgs {
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A host name or address children reach the broker by, for its certificate (repeat
    /// for more); the host of `[mqtt] url` and `[mqtt] names` are always included.
    #[arg(long = "name", value_name = "HOST")]
    pub names: Vec<String>,
    /// The address and port Mosquitto listens on; default: the host (when it is an IP
    /// address) and port of `[mqtt] url`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The user Mosquitto runs as (its `user` setting; Debian's default is `mosquitto`).
    /// Mosquitto drops to that user before it reads its key, CRL and ACL: make them
    /// readable by it (`chown` the directory's files).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The hub's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `vigil-hub enroll`.
#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    /// The parent hub's URL, https://host:port (or http://… on a trusted network).
    #[arg(long, value_name = "URL")]
    pub hub: String,
    /// `-`: the token the parent's `vigil-hub enroll-token --node <this hub's id>` printed
    /// is read from standard input (paste it when asked, or `<<<"$TOKEN"` in a script). A
    /// token given here instead is refused: the process list and the shell history would
    /// show it.
    #[arg(long, value_name = "-")]
    pub token: String,
    /// This hub's config file; its `[parent] url` is set to the parent's broker.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// How long to wait for the parent.
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Enroll even though this hub holds a valid certificate from this parent (a new key;
    /// the old certificate stays valid until the parent revokes it).
    #[arg(long)]
    pub force: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (write e.g. 30s or 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ttls() {
        assert_eq!(parse_token_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_token_ttl("7d"), Ok(MAX_TOKEN_TTL));
        assert!(parse_token_ttl("8d").is_err());
        assert!(parse_token_ttl("0s").is_err());
        assert!(parse_token_ttl("soon").is_err());
    }
}
