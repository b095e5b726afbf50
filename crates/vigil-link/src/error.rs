//! [`LinkError`]: what can stop a link from starting, or fail an owner's request to it.
//!
//! A running link does not die of what its peers send or of a broker that goes away: bad
//! payloads are counted and dropped, lost connections are retried with backoff, and store
//! trouble while sending is logged and retried. What is left here is what the owner must
//! hear about: a configuration that cannot work, a store that cannot be used, metrics that
//! cannot be registered.

use vigil_store::StoreError;

/// Why a link could not start, or an owner's request to it failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker URL is not `mqtt://host[:port]`.
    #[error("invalid broker URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it, and what is expected.
        reason: String,
    },
    /// A setting that cannot work (a zero window, a timeout of zero, …).
    #[error("invalid link setting {key}: {reason}")]
    Config {
        /// The setting, as named in the config struct (e.g. `sender.window`).
        key: &'static str,
        /// Why it is refused, and what to use instead.
        reason: String,
    },
    /// The store refused an operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking store task could not run to completion (the runtime is shutting down).
    #[error("a store task did not complete: {0}")]
    StoreTask(String),
    /// The link's metrics could not be registered (e.g. registered twice in one registry).
    #[error("cannot register link metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A thread of the link could not be started.
    #[error("cannot start the link's {name} thread: {source}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}
