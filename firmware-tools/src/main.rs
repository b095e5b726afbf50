//! `vigil-fw`: keys, signing, verifying and packing of agent update bundles.
//!
//! Bundles carry the agent binary, config, device profiles and models with a manifest; the
//! agent applies only bundles signed by a trusted key. This binary is thin: it parses the
//! command line and calls the `vigil-bundle` library through [`commands`]. The bundle format is
//! documented in `vigil-bundle`'s crate docs.
//!
//! Exit codes: 0 success; 1 the bundle is refused or the command failed (the message names
//! what is wrong); 2 bad usage.

mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Vigil firmware tools: make keys, pack, sign and verify agent update bundles.
#[derive(Debug, Parser)]
#[command(name = "vigil-fw", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Make an ed25519 key pair: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub.
    ///
    /// The .pub file holds one line `vigil-ed25519:<base64> NAME`; append it to the agent's
    /// trusted keys. The secret key is never printed; keep it offline.
    Keygen {
        /// Directory for the key files (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Base name of the key files and the key's name in the .pub line.
        #[arg(long, value_name = "NAME", default_value = "vigil-fw")]
        name: String,
    },
    /// Pack an unsigned bundle from the agent binary, config, profiles and models.
    Pack {
        /// Bundle version (semver, e.g. 1.4.0); agents refuse versions not newer than theirs.
        #[arg(long, value_name = "SEMVER")]
        version: semver::Version,
        /// The bundle file to write.
        #[arg(long, value_name = "BUNDLE")]
        out: PathBuf,
        /// The agent binary, packed as agent/vigil-agent.
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
        /// The agent config, packed as config/agent.toml.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// A directory of device profiles, packed under profiles/.
        #[arg(long, value_name = "DIR")]
        profiles: Option<PathBuf>,
        /// A directory of models, packed under models/.
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
    },
    /// Sign a bundle in place (the signature and key id go into the bundle's header).
    Sign {
        /// The secret key file from `vigil-fw keygen`.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// The bundle to sign.
        bundle: PathBuf,
    },
    /// Verify a bundle: trusted signature, every file intact, and (optionally) no rollback.
    Verify {
        /// A trusted public key file (one or more `vigil-ed25519:` lines); repeat for more.
        #[arg(long, value_name = "PUBKEYFILE", required = true)]
        trusted: Vec<PathBuf>,
        /// Refuse the bundle unless its version is newer than this one.
        #[arg(long, value_name = "SEMVER")]
        current_version: Option<semver::Version>,
        /// The bundle to verify.
        bundle: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
