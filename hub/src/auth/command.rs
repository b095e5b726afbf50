//! What `vigil-hub user …` and `vigil-hub token …` do once their config is loaded: read or
//! make the password, call [`Admin`], print. Secrets (a generated password, a new token)
//! alone go to standard output, once, so a script can capture them; everything else to
//! standard error.

use std::io::{BufRead, IsTerminal, Write};

use vigil_core::Timestamp;

use super::admin::{cli_actor, Admin, AdminError};
use super::password;
use crate::cli::{TokenCommand, UserCommand};
pub use crate::cli_error::CommandError;
use crate::config::HubConfig;

/// The password for `vigil-hub user add NAME`, as its flags say.
fn password_for(name: &str, stdin: bool, generate: bool) -> Result<(String, bool), CommandError> {
    if generate {
        let p = password::generate().map_err(AdminError::from)?;
        return Ok((p, true));
    }
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let p = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned();
        return Ok((p, false));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Password(
            "no password: pipe one with --password-stdin, use --generate, or run on a terminal \
             to type it"
                .to_owned(),
        ));
    }
    let first = rpassword::prompt_password(format!("Password for {name}: "))?;
    password::check(&first).map_err(|e| CommandError::Password(e.to_string()))?;
    let second = rpassword::prompt_password("The same password again: ")?;
    if first != second {
        return Err(CommandError::Password(
            "the two passwords differ: nothing was changed".to_owned(),
        ));
    }
    Ok((first, false))
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

/// Runs `vigil-hub user …` against the hub `config` describes.
pub fn user(command: &UserCommand, config: &HubConfig) -> Result<(), CommandError> {
    match command {
        UserCommand::Add {
            name,
            role,
            scope,
            password_stdin,
            generate,
            ..
        } => {
            let (password, generated) = password_for(name, *password_stdin, *generate)?;
            let mut admin = Admin::open_or_create(config, cli_actor())?;
            admin.add_user(name, *role, scope, &password)?;
            eprintln!("user {name} added: role {role}, scope {scope}");
            if generated {
                eprintln!("its password is printed below, once: pass it on now");
                println!("{password}");
            }
            Ok(())
        }
        UserCommand::List { .. } => {
            let admin = Admin::open(config, cli_actor())?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "NAME\tROLE\tSCOPE\tCREATED\tDISABLED")?;
            for u in admin.users()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    u.name,
                    u.role,
                    u.scope,
                    u.created_at,
                    if u.disabled { "yes" } else { "no" }
                )?;
            }
            Ok(())
        }
        UserCommand::Disable { name, .. } => {
            let mut admin = Admin::open(config, cli_actor())?;
            admin.disable_user(name)?;
            eprintln!("user {name} disabled; their sessions have ended");
            Ok(())
        }
    }
}

/// Runs `vigil-hub token …` against the hub `config` describes.
pub fn token(command: &TokenCommand, config: &HubConfig) -> Result<(), CommandError> {
    match command {
        TokenCommand::Add {
            name,
            role,
            scope,
            ttl,
            ..
        } => {
            let mut admin = Admin::open_or_create(config, cli_actor())?;
            let token = admin.add_token(name, *role, scope, *ttl)?;
            let until = ttl.map_or_else(
                || "until revoked".to_owned(),
                |d| format!("for {}", humantime_serde::re::humantime::format_duration(d)),
            );
            eprintln!(
                "token {name} added: role {role}, scope {scope}, {until}; it is printed below, \
                 once: send it as Authorization: Bearer <token>"
            );
            println!("{token}");
            Ok(())
        }
        TokenCommand::List { .. } => {
            let admin = Admin::open(config, cli_actor())?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "NAME\tROLE\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tREVOKED"
            )?;
            for t in admin.tokens()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.name,
                    t.role,
                    t.scope,
                    t.created_at,
                    time(t.expires_at),
                    time(t.last_used),
                    time(t.revoked_at)
                )?;
            }
            Ok(())
        }
        TokenCommand::Revoke { name, .. } => {
            let mut admin = Admin::open(config, cli_actor())?;
            admin.revoke_token(name)?;
            eprintln!("token {name} revoked");
            Ok(())
        }
    }
}
