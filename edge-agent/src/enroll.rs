//! `vigil-agent enroll --hub URL --token - --config agent.toml`: the gateway's side of
//! enrollment (`docs/ARCHITECTURE.md#trust-model`).
//!
//! The token is parsed first (a mistyped token fails before anything else happens), then
//! the config (its `[node] id` is who is enrolled, its `[tls]` paths where the files go).
//! The rest is the one flow every node shares, [`vigil_pki::enroll_node`]: the checks made
//! before the one-time token is spent, the key made here, the request, the answer checked
//! against the token's pin, then `[tls] key` (0600), `cert`, `ca` written and `[uplink] url`
//! set to the hub's `mqtts://` broker.
//!
//! `main` reads the token from standard input (`--token -`); a token given on the command
//! line is refused there ([`vigil_pki::enrollment::token::token_from_arg`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_config::ConfigErrors;
use vigil_pki::{EnrollToken, EnrolledNode, FlowError, NodeEnrollment, TokenError};

use crate::config::AgentConfig;
use crate::profiles::config_dir;

/// What `enroll` is asked to do.
#[derive(Debug, Clone)]
pub struct EnrollArgs {
    /// The hub's HTTP base URL.
    pub hub: String,
    /// The token's text (read from standard input by `main`).
    pub token: String,
    /// The agent's config file.
    pub config: PathBuf,
    /// The bound on the exchange with the hub.
    pub timeout: Duration,
    /// Enroll even though the gateway holds a valid certificate from this hub.
    pub force: bool,
}

/// What enrollment wrote.
pub type Enrolled = EnrolledNode;

/// Why enrollment failed; nothing was written unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum EnrollCmdError {
    /// The token is not a token.
    #[error("--token: {0}")]
    Token(#[from] TokenError),
    /// The config does not load.
    #[error("{0}")]
    Config(ConfigErrors),
    /// A check failed, the hub refused, or writing failed (the flow's error says which,
    /// and whether the token was spent).
    #[error("{0}")]
    Flow(#[from] FlowError),
}

impl EnrollCmdError {
    /// The exit status: 2 for a bad token or config, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            EnrollCmdError::Token(_) | EnrollCmdError::Config(_) => vigil_config::EXIT_CONFIG,
            EnrollCmdError::Flow(_) => 1,
        }
    }
}

/// Enrolls the gateway of `args.config` with the hub, reporting each step on `out`.
pub async fn enroll(args: &EnrollArgs, out: &mut dyn Write) -> Result<Enrolled, EnrollCmdError> {
    let token: EnrollToken = args.token.parse()?;
    let config = AgentConfig::load(&args.config).map_err(EnrollCmdError::Config)?;
    let enrollment = NodeEnrollment {
        hub: args.hub.clone(),
        token,
        node: config.node.id.clone(),
        config: args.config.clone(),
        table: "uplink",
        files: config.tls.files(&config_dir(&args.config)),
        timeout: args.timeout,
        force: args.force,
        kind: vigil_pki::EnrollKind::Gateway,
        site: Some(config.node.site.clone()),
    };
    Ok(vigil_pki::enroll_node(&enrollment, out).await?)
}

/// Writes what enrollment did and the next step.
pub fn report(e: &Enrolled, config: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    e.report(
        &format!(
            "`vigil-agent check --config {0}`, then start (or restart) the agent: `vigil-agent run --config {0}`",
            config.display()
        ),
        out,
    )
}
