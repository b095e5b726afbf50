//! The `vigil-hub` command line, exactly as DESIGN.md names it ("Interfaces"). A subcommand
//! appears here only once it does its job.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Verify the audit chain: print `audit chain ok: N records, head <hash>` and exit 0, or
    /// name the first bad record and exit 1. Config errors exit 2.
    ///
    /// A chain whose last records were cut off still verifies: compare the head printed here
    /// with one reported earlier to see that.
    Verify {
        /// The hub's config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}
