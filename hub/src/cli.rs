//! The `vigil-hub` command line, as docs/ARCHITECTURE.md#commands names it. A subcommand
//! appears here only once it does its job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vigil_core::SitePath;

use crate::auth::Role;

/// Vigil command hub: receives alerts from the gateways and hubs below it, keeps them in
/// sync with the levels above, and serves the alarm console, the API and the feeds.
#[derive(Debug, Parser)]
#[command(name = "vigil-hub", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: the HTTP API and live stream, the store, the links. Config errors exit 2,
    /// each named with its file, line and key.
    Run {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log format: `text` for a terminal, `json` for a log collector. The level comes from
        /// `VIGIL_LOG` (e.g. `info`, `vigil_hub=debug`).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Check the config, the certificates and the store, and run nothing (nothing is
    /// created or migrated): exit 0 when the hub would start, 2 with each problem named by
    /// its file, line and key.
    Check {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Console users: add, list, disable. Every change is audited.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens for feeds and scripts (`Authorization: Bearer`): add, list, revoke.
    /// Every change is audited.
    Token {
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Issue a one-time enrollment token for a child node, bound to a site subtree
    /// (`--site`), and print it, with the `vigil-agent enroll` line to run on the gateway.
    /// Audited.
    EnrollToken(crate::enroll::args::EnrollTokenArgs),
    /// List the nodes bound to this hub: node, site, how it is known (enrolled, config,
    /// reported by a child hub), and its certificates (serial, expiry, revoked).
    Nodes(crate::enroll::args::NodesArgs),
    /// Revoke a node's certificates (all of them, or one --serial): a running hub drops its
    /// connections within seconds. Audited.
    Revoke(crate::enroll::args::RevokeArgs),
    /// Remove a node's site binding made by enrollment here (with the nodes it reported,
    /// for a child hub) and revoke its certificates: `vigil-hub nodes` no longer lists it
    /// as bound, and a running hub holds back whatever it still sends. A `[[child]]` of
    /// hub.toml is refused (remove it there). Audited.
    Unbind(crate::enroll::args::UnbindArgs),
    /// Write what an external Mosquitto needs to be this hub's broker with mTLS: CA,
    /// server certificate and key, ACL, CRL, mosquitto.conf.
    BrokerConfig(crate::enroll::args::BrokerConfigArgs),
    /// Enroll this hub with its parent (key and CSR made here; the parent's CA pinned by
    /// the token); writes parent/ca.pem, node.pem, node.key and sets [parent] url.
    Enroll(crate::enroll::args::EnrollArgs),
    /// The audit log of operator and admin actions.
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `vigil-hub audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit chains: this hub's own (`audit chain ok: N records, head <hash>`)
    /// and each trail it holds of the nodes below it (`node ID: audit chain ok: …`). Exit 0
    /// when all verify; otherwise each bad one names its node and first bad record, and the
    /// exit is 1. Config errors exit 2.
    ///
    /// A chain whose last records were cut off still verifies: compare the head printed here
    /// with one reported earlier, or a child's own head with the one its parent holds.
    Verify {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Verify only this node's chain (this hub's id: its own log).
        #[arg(long, value_name = "ID")]
        node: Option<String>,
    },
}

/// A user or token name, checked as the store will check it.
fn parse_name(s: &str) -> Result<String, String> {
    crate::auth::check_name(s).map(|()| s.to_owned())
}

/// A duration like `90d`, `12h` or `30m`.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (write e.g. 90d, 12h or 30m)"))
        .and_then(|d| {
            if d.is_zero() {
                Err("must be longer than 0".to_owned())
            } else {
                Ok(d)
            }
        })
}

/// `vigil-hub user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a console user. The password comes from standard input with --password-stdin,
    /// is typed twice (not echoed) on a terminal, or is generated with --generate and printed
    /// once on standard output. There is no default user and no default password.
    Add {
        /// The sign-in name: lower-case letters, digits, '.', '_', '-' (e.g. li.na).
        #[arg(value_parser = parse_name)]
        name: String,
        /// viewer, operator, supervisor, installer, auditor or admin (see README, "Users,
        /// roles and scope").
        #[arg(long)]
        role: Role,
        /// The site subtree the user sees and acts on (e.g. ministry/guangdong/guangzhou).
        #[arg(long, value_name = "SITE")]
        scope: SitePath,
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Read the password from standard input (one line; the trailing newline is dropped).
        #[arg(long, conflicts_with = "generate")]
        password_stdin: bool,
        /// Generate a password and print it once on standard output.
        #[arg(long)]
        generate: bool,
    },
    /// List the users: name, role, scope, created, disabled.
    List {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Disable a user: no more sign-ins, and their sessions end now.
    Disable {
        /// The user's name.
        name: String,
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

impl UserCommand {
    /// The config file the command names.
    pub fn config(&self) -> &std::path::Path {
        match self {
            UserCommand::Add { config, .. }
            | UserCommand::List { config }
            | UserCommand::Disable { config, .. } => config,
        }
    }
}

/// `vigil-hub token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add an API token and print it once on standard output (only its hash is kept).
    Add {
        /// The token's name (the audit log names its actor token:NAME).
        #[arg(value_parser = parse_name)]
        name: String,
        /// viewer, operator, supervisor, installer, auditor or admin.
        #[arg(long)]
        role: Role,
        /// The site subtree the token sees and acts on.
        #[arg(long, value_name = "SITE")]
        scope: SitePath,
        /// How long the token works (e.g. 90d); without, until revoked.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// List the tokens: name, role, scope, expiry, last use, revoked.
    List {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Revoke a token: requests with it are refused (401) from now on.
    Revoke {
        /// The token's name.
        name: String,
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

impl TokenCommand {
    /// The config file the command names.
    pub fn config(&self) -> &std::path::Path {
        match self {
            TokenCommand::Add { config, .. }
            | TokenCommand::List { config }
            | TokenCommand::Revoke { config, .. } => config,
        }
    }
}
