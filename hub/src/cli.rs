//! The `vigil-hub` command line, exactly as DESIGN.md names it ("Interfaces"). A subcommand
//! appears here only once it does its job.

use clap::Parser;

/// Vigil command hub: receives alerts from the gateways and hubs below it, keeps them in
/// sync with the levels above, and serves the alarm console, the API and the feeds.
#[derive(Debug, Parser)]
#[command(name = "vigil-hub", version, arg_required_else_help = true)]
pub struct Cli {}
