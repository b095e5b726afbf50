//! `vigil-agent`: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use vigil_agent::cli::{Cli, Command, ModbusCommand, ProfileCommand, TargetArgs};
use vigil_agent::modbus_cmd::{self, Target};

/// Exit status for invalid configuration or profiles (DESIGN.md: config errors exit 2).
const EXIT_INVALID: u8 = vigil_config::EXIT_CONFIG;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Profile(ProfileCommand::Validate { files }) => {
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            match vigil_agent::profile_cmd::validate(&files, &mut out, &mut err) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(EXIT_INVALID),
                Err(e) => {
                    eprintln!("error: cannot write output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Modbus(cmd) => block_on(async move {
            let mut out = std::io::stdout();
            let result = match cmd {
                ModbusCommand::Read {
                    target,
                    unit,
                    profile,
                    json,
                } => modbus_cmd::read(&target_of(target), unit, &profile, json, &mut out).await,
                ModbusCommand::Scan { target, units } => match modbus_cmd::parse_units(&units) {
                    Ok(units) => modbus_cmd::find_units(&target_of(target), &units, true, &mut out)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(modbus_cmd::CommandError::Profile(msg)) => {
                    eprintln!(
                        "{}",
                        msg.lines()
                            .map(|l| format!("error: {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                    ExitCode::from(EXIT_INVALID)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
    }
}

fn target_of(t: TargetArgs) -> Target {
    match (t.addr, t.serial) {
        (_, Some(port)) => Target::serial(port, t.baud, t.parity, t.stop_bits, t.timeout),
        (Some(addr), None) => Target::tcp(&addr, t.timeout),
        // clap's argument group requires exactly one of them.
        (None, None) => Target::tcp("", t.timeout),
    }
}

fn block_on(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
