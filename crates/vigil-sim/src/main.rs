//! `vigil-sim`: a simulated facility — Modbus devices serving device profiles, MQTT sensors
//! and scripted events — for the demo, the end-to-end tests and installer training.

use clap::Parser;

/// Vigil facility simulator: serves simulated Modbus devices and MQTT sensors driven by
/// scenarios.
#[derive(Debug, Parser)]
#[command(name = "vigil-sim", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
