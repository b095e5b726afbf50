//! The `vigil-agent` command line: its subcommands and their flags, exactly as DESIGN.md
//! names them ("Interfaces"). A subcommand appears here only once it does its job.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Vigil edge agent: ingests field devices and cameras on a facility gateway, detects
/// anomalies and forwards alerts to the command hub.
#[derive(Debug, Parser)]
#[command(name = "vigil-agent", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Device profiles: the YAML description of a device model's points and alarm rules.
    #[command(subcommand)]
    Profile(ProfileCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Validate device profiles; every problem is reported with its file, line and key.
    /// Exits 0 when all are valid, 2 otherwise.
    Validate {
        /// Profile files (`*.yaml`) to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}
