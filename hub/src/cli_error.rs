//! Why a `vigil-hub` command other than `run` failed, and the exit status it leaves: the one
//! error type of `user`, `token`, `enroll-token`, `revoke`, `unbind`, `broker-config` and
//! `enroll`.
//! Exit 1 for all of them but a bad argument ([`CommandError::Usage`]: exit 2, like clap's
//! usage errors and `vigil-agent`'s); a config that does not load exits 2 before any command
//! starts ([`vigil_config::EXIT_CONFIG`], in `main`).

use std::process::ExitCode;

use crate::auth::admin::AdminError;

/// Why a command failed (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
    /// The CA or a certificate failed.
    #[error(transparent)]
    Pki(#[from] vigil_pki::PkiError),
    /// Nothing to revoke.
    #[error(transparent)]
    Revoke(#[from] vigil_store::RevokeError),
    /// Nothing to unbind.
    #[error(transparent)]
    Unbind(#[from] vigil_store::UnbindError),
    /// Enrolling with the parent failed.
    #[error(transparent)]
    Enroll(#[from] vigil_pki::FlowError),
    /// A user or token change failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// No password could be had.
    #[error("{0}")]
    Password(String),
    /// Reading or writing the terminal failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An argument the command cannot take (a malformed `--token`): exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else, said in words.
    #[error("{0}")]
    Message(String),
}

/// Exit 0, or print the error and exit 1 (2 for [`CommandError::Usage`]).
pub fn finish(result: Result<(), CommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                CommandError::Usage(_) => ExitCode::from(vigil_config::EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every failure of a command exits 1 (2 is the config's, before the command runs), and
    /// the errors of both command families convert into the one type.
    #[test]
    fn failures_exit_1() {
        assert_eq!(finish(Ok(())), ExitCode::SUCCESS);
        let io = CommandError::from(std::io::Error::other("terminal gone"));
        assert_eq!(io.to_string(), "terminal gone");
        assert_eq!(finish(Err(io)), ExitCode::FAILURE);
        let words = CommandError::Message("no such node".into());
        assert_eq!(finish(Err(words)), ExitCode::FAILURE);
        assert_ne!(ExitCode::FAILURE, ExitCode::from(vigil_config::EXIT_CONFIG));
        let usage = CommandError::Usage("--token: not a token".into());
        assert_eq!(
            finish(Err(usage)),
            ExitCode::from(vigil_config::EXIT_CONFIG)
        );
    }
}
