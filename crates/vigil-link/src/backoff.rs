//! Reconnect backoff of a link's broker connection: the one backoff of every Vigil component
//! ([`vigil_runtime::backoff`]), drawn with random jitter by the connection's pump; here only
//! how its config errors read as the link's (`backoff.initial`, `backoff.max`).

pub use vigil_runtime::backoff::{Backoff, BackoffConfig, BackoffError};

use crate::error::LinkError;

impl From<BackoffError> for LinkError {
    fn from(e: BackoffError) -> Self {
        let key = match e.field() {
            "initial" => "backoff.initial",
            _ => "backoff.max",
        };
        LinkError::Config {
            key,
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn config_errors_name_the_link_setting() {
        let inverted = BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
        };
        let err = LinkError::from(inverted.validate().expect_err("max below initial"));
        assert!(err.to_string().contains("backoff.max"), "{err}");
        let zero = BackoffConfig {
            initial: Duration::ZERO,
            ..BackoffConfig::default()
        };
        let err = LinkError::from(zero.validate().expect_err("zero"));
        assert!(err.to_string().contains("backoff.initial"), "{err}");
    }
}
