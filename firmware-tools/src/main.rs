//! `vigil-fw`: keys, signing, verifying and packing of agent update bundles.
//!
//! Bundles carry the agent binary, config, device profiles and models with a manifest; the
//! agent applies only bundles signed by a trusted key. A subcommand appears here only once it
//! does its job.

use clap::Parser;

/// Vigil firmware tools: make keys, pack, sign and verify agent update bundles.
#[derive(Debug, Parser)]
#[command(name = "vigil-fw", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
