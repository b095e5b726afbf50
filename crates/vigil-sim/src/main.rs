//! `vigil-sim`: a simulated facility — Modbus devices serving device profiles, MQTT sensors
//! and scripted events — for the demo, the end-to-end tests and installer training.
//!
//! Thin: parse the command line, load and validate `sim.toml` (every problem printed as
//! `file:line: key: message`, exit 2), start the simulation, print what it serves, run until
//! Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use vigil_sim::{Endpoint, Facility, Simulator};

/// Vigil facility simulator: serves simulated Modbus devices (TCP and RTU) and MQTT sensors
/// driven by scenarios, with scripted faults.
#[derive(Debug, Parser)]
#[command(name = "vigil-sim", version, arg_required_else_help = true)]
struct Cli {
    /// The facility to simulate (sim.toml; see crates/vigil-sim/examples/facility.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the config and the profiles it names, then exit (0: valid, 2: not).
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vigil_runtime::init_logging("text");
    let facility = match Facility::load(&cli.config) {
        Ok(f) => f,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return ExitCode::from(vigil_config::EXIT_CONFIG);
        }
    };
    if cli.check {
        println!(
            "{}: {} devices, {} MQTT sensors: OK",
            cli.config.display(),
            facility.config.devices.len(),
            facility.config.mqtt.len()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(facility))
}

async fn run(facility: Facility) -> ExitCode {
    let sim = match Simulator::start(facility).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("vigil-sim serving:");
    for d in sim.devices() {
        let at = match &d.endpoint {
            Endpoint::Tcp(addr) => format!("modbus-tcp {addr}"),
            Endpoint::Rtu { bus, port } => format!("modbus-rtu {} (bus {bus})", port.display()),
        };
        let via = d
            .gateway
            .as_ref()
            .map(|g| format!(" via gateway {g}"))
            .unwrap_or_default();
        println!(
            "  device {:<20} {:<28} {at} unit {}{via}",
            d.id, d.profile, d.unit
        );
    }
    for m in sim.mqtt() {
        println!(
            "  mqtt   {:<20} {:<28} {} {}",
            m.id,
            m.format.as_str(),
            m.url,
            m.topic
        );
    }
    // The handlers are installed before the banner says Ctrl-C stops the simulator, so a
    // signal sent as soon as the banner appears is caught.
    let shutdown = vigil_runtime::Shutdown::new();
    if let Err(e) = shutdown.stop_on_signal() {
        eprintln!("vigil-sim: cannot install signal handlers: {e}");
        sim.stop().await;
        return ExitCode::FAILURE;
    }
    println!("Ctrl-C to stop.");
    shutdown.cancelled().await;
    sim.stop().await;
    ExitCode::SUCCESS
}
