//! `vigil-agent`: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use vigil_agent::cli::{Cli, Command, ModbusCommand, ProfileCommand, TargetArgs, UpdateCommand};
use vigil_agent::modbus_cmd::{self, Target};

/// Exit status for invalid configuration or profiles (docs/ARCHITECTURE.md#commands: config errors
/// exit 2).
const EXIT_INVALID: u8 = vigil_config::EXIT_CONFIG;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => {
            let mut out = std::io::stdout();
            match vigil_agent::check_cmd::check(&config, &mut out) {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(errors)) => {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                    ExitCode::from(EXIT_INVALID)
                }
                Err(e) => {
                    eprintln!("error: cannot write output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Enroll {
            hub,
            token,
            config,
            timeout,
            force,
        } => {
            // `--token -` only: the token comes on standard input, never in the arguments.
            let token = match vigil_pki::enrollment::token::token_from_arg(&token) {
                Ok(token) => token.to_string(),
                Err(e) => {
                    eprintln!("error: --token: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let args = vigil_agent::enroll::EnrollArgs {
                hub,
                token,
                config,
                timeout,
                force,
            };
            block_on(async move {
                let mut out = std::io::stdout();
                match vigil_agent::enroll::enroll(&args, &mut out).await {
                    Ok(done) => {
                        let _ = vigil_agent::enroll::report(&done, &args.config, &mut out);
                        ExitCode::SUCCESS
                    }
                    Err(vigil_agent::enroll::EnrollCmdError::Config(errors)) => {
                        for e in errors.0 {
                            eprintln!("error: {e}");
                        }
                        ExitCode::from(EXIT_INVALID)
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(e.exit_code())
                    }
                }
            })
        }
        Command::Run { config, log_format } => {
            vigil_runtime::init_logging(&log_format);
            let (cfg, profiles) = match vigil_agent::check_cmd::load_checked(&config) {
                Ok(x) => x,
                Err(errors) => {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async move {
                let shutdown = vigil_runtime::Shutdown::new();
                if let Err(e) = shutdown.stop_on_signal() {
                    eprintln!("error: cannot install signal handlers: {e}");
                    return ExitCode::FAILURE;
                }
                match vigil_agent::run::run(cfg, profiles, shutdown.token().clone(), None).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "agent failed");
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
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
        Command::Update(UpdateCommand::Apply { bundle, config }) => {
            if std::env::var_os("VIGIL_LOG").is_some() {
                vigil_runtime::init_logging("text");
            }
            let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
            ExitCode::from(vigil_agent::update::apply::run(
                &config, &bundle, &mut out, &mut err,
            ))
        }
        Command::Update(UpdateCommand::Status { config, json }) => {
            let settings = match vigil_agent::update::Settings::load(&config) {
                Ok(s) => s,
                Err(errors) => {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            match vigil_agent::update::status::status(&settings, json, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Supervise { config, log_format } => {
            vigil_runtime::init_logging(&log_format);
            let settings = match vigil_agent::update::Settings::load(&config) {
                Ok(s) => s,
                Err(errors) => {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let base = match std::env::current_exe() {
                Ok(exe) => exe,
                Err(e) => {
                    eprintln!("error: cannot tell which binary this is: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let supervisor =
                vigil_agent::update::supervise::Supervisor::new(settings, base, log_format);
            block_on(async move {
                match supervisor.run().await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
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
