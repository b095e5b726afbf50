//! `vigil-agent`: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use vigil_agent::cli::{Cli, Command, ProfileCommand};

/// Exit status for invalid configuration or profiles (DESIGN.md: config errors exit 2).
const EXIT_INVALID: u8 = 2;

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
    }
}
