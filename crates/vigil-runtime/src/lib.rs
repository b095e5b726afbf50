//! What every Vigil binary (`vigil-agent`, `vigil-hub`, `vigil-sim`) does the same way, kept
//! once: structured logs on stderr ([`init_logging`]), a clean shutdown on SIGINT or SIGTERM
//! that waits a bounded time for the tasks it tracks ([`Shutdown`]), and the backoff every
//! retry uses ([`Backoff`]).

pub mod backoff;
pub mod shutdown;

pub use backoff::{Backoff, BackoffConfig, BackoffError};
pub use shutdown::{Shutdown, Stopped};
pub use tokio_util::sync::CancellationToken;

/// Logs on stderr with `tracing`: `text` for a terminal, `json` for a log collector. The
/// filter comes from `VIGIL_LOG` (e.g. `info,vigil_link=debug`), `info` by default.
pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
