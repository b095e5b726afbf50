//! What every Vigil binary (`vigil-agent`, `vigil-hub`, `vigil-sim`) does the same way, kept
//! once: structured logs on stderr, and a clean shutdown on SIGINT or SIGTERM.

pub mod backoff;

pub use backoff::{Backoff, BackoffConfig, BackoffError};

use std::future::Future;

use tokio_util::sync::CancellationToken;

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

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives at once is not
/// missed), and returns the task that cancels `shutdown` when one of them arrives. Call it
/// inside the runtime, before announcing readiness.
pub fn stop_on_signal(shutdown: CancellationToken) -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown requested");
        shutdown.cancel();
    })
}
