//! `vigil-hub`: parse the command line, load and validate the config, hand over to the
//! library.

use std::process::ExitCode;

use clap::Parser;
use vigil_hub::auth::command;
use vigil_hub::cli::{AuditCommand, Cli, Command};
use vigil_hub::cli_error::finish;
use vigil_hub::config::HubConfig;
use vigil_hub::enroll::command as enroll;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::EnrollToken(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::enroll_token(&args, &cfg)),
            Err(code) => code,
        },
        Command::Nodes(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::nodes(&args, &cfg)),
            Err(code) => code,
        },
        Command::Revoke(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::revoke(&args, &cfg)),
            Err(code) => code,
        },
        Command::Unbind(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::unbind(&args, &cfg)),
            Err(code) => code,
        },
        Command::BrokerConfig(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::broker_config(&args, &cfg)),
            Err(code) => code,
        },
        // A token in the arguments is refused (exit 2, like clap's usage errors) before
        // anything else: the process list and the shell history would show it.
        Command::Enroll(args) if args.token != "-" => {
            eprintln!("error: --token: {}", vigil_pki::TokenError::OnCommandLine);
            ExitCode::from(vigil_config::EXIT_CONFIG)
        }
        Command::Enroll(args) => match load_config(&args.config) {
            Ok(cfg) => finish(enroll::enroll(&args, &cfg, &args.config)),
            Err(code) => code,
        },
        Command::Audit {
            command: AuditCommand::Verify { config, node },
        } => {
            let cfg = match load_config(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            match vigil_hub::audit::verify(&cfg, node.as_deref()) {
                Ok(reports) => {
                    for report in &reports {
                        println!("{report}");
                    }
                    if reports.iter().all(|r| r.report.is_intact()) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match load_config(&config) {
            Ok(cfg) => {
                let report = vigil_hub::check::check(&cfg, &config, std::time::SystemTime::now());
                if let Err(code) = problems(&report, &config) {
                    return code;
                }
                println!("{}: ok", config.display());
                for line in &report.lines {
                    println!("  {line}");
                }
                for warning in &report.warnings {
                    println!("  warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::User { command } => {
            let cfg = match load_config(command.config()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            finish(command::user(&command, &cfg))
        }
        Command::Token { command } => {
            let cfg = match load_config(command.config()) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            finish(command::token(&command, &cfg))
        }
        Command::Run { config, log_format } => {
            vigil_runtime::init_logging(&log_format);
            let cfg = match load_config(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            // The parent part of `check`: a hub its parent would refuse does not start.
            let parent =
                vigil_hub::check::check_parent(&cfg, &config, std::time::SystemTime::now());
            if let Err(code) = problems(&parent, &config) {
                return code;
            }
            for warning in &parent.warnings {
                eprintln!("warning: {}: {warning}", config.display());
            }
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
                match vigil_hub::run::run(cfg, shutdown.token().clone(), None).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "hub failed");
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

/// Prints the problems `report` found in the config at `path` (file, line, key, what to do)
/// and returns exit code 2, if it found any.
fn problems(report: &vigil_hub::check::Report, path: &std::path::Path) -> Result<(), ExitCode> {
    if report.problems.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for e in report.errors(path, &text).0 {
        eprintln!("error: {e}");
    }
    Err(ExitCode::from(vigil_config::EXIT_CONFIG))
}

/// Loads and validates the config; on errors, prints each and returns exit code 2.
fn load_config(path: &std::path::Path) -> Result<HubConfig, ExitCode> {
    HubConfig::load(path).map_err(|errors| {
        for e in errors.0 {
            eprintln!("error: {e}");
        }
        ExitCode::from(vigil_config::EXIT_CONFIG)
    })
}
