//! `[auth]`: console sign-in — session lifetimes and the sign-in limits (`crate::auth`).

use std::time::Duration;

use serde::Deserialize;
use vigil_config::Problem;

/// `[auth]`: console sign-in (see `crate::auth`). Users and tokens themselves live in the
/// store (`vigil-hub user add`, `vigil-hub token add`), never in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A session not used for this long ends (the idle expiry).
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// A session ends this long after its sign-in, however much it is used (the absolute
    /// expiry).
    #[serde(default = "default_session_max", with = "humantime_serde")]
    pub session_max: Duration,
    /// Mark the session cookie `Secure` (browsers then send it over HTTPS only). Set it when
    /// the console is served over HTTPS, directly or through a TLS-terminating proxy.
    #[serde(default)]
    pub secure_cookie: bool,
    /// Failed sign-ins per user name and per client address answered at once; after them,
    /// each failure makes the next attempt wait.
    #[serde(default = "default_free_failures")]
    pub sign_in_free_failures: u32,
    /// The wait after the first failure past the free ones; it doubles with each further
    /// failure.
    #[serde(default = "default_sign_in_delay", with = "humantime_serde")]
    pub sign_in_delay: Duration,
    /// The longest wait.
    #[serde(default = "default_sign_in_max_delay", with = "humantime_serde")]
    pub sign_in_max_delay: Duration,
    /// How many sign-ins may have their password checked at once, hub-wide (each check
    /// takes about 19 MiB and tens of milliseconds of a core); more are answered 503 with
    /// `Retry-After` at once.
    #[serde(default = "default_sign_in_concurrency")]
    pub sign_in_concurrency: usize,
    /// Serve `GET /metrics` without signing in (for a Prometheus scraper; it shows counts,
    /// never an alert's contents). `false`: a session or a bearer token of any role.
    #[serde(default = "default_open_metrics")]
    pub open_metrics: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            session_idle: default_session_idle(),
            session_max: default_session_max(),
            secure_cookie: false,
            sign_in_free_failures: default_free_failures(),
            sign_in_delay: default_sign_in_delay(),
            sign_in_max_delay: default_sign_in_max_delay(),
            sign_in_concurrency: default_sign_in_concurrency(),
            open_metrics: default_open_metrics(),
        }
    }
}

const fn default_sign_in_concurrency() -> usize {
    4
}

const fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}

const fn default_session_max() -> Duration {
    Duration::from_secs(12 * 60 * 60)
}

const fn default_free_failures() -> u32 {
    5
}

const fn default_sign_in_delay() -> Duration {
    Duration::from_secs(1)
}

const fn default_sign_in_max_delay() -> Duration {
    Duration::from_secs(15 * 60)
}

const fn default_open_metrics() -> bool {
    true
}

impl AuthSection {
    /// What is wrong with the section, each problem named by its key.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if self.session_idle.is_zero() {
            out.push(Problem::new(
                "auth.session_idle",
                "must be longer than 0, e.g. 30m",
            ));
        }
        if self.session_max < self.session_idle || self.session_max.is_zero() {
            out.push(Problem::new(
                "auth.session_max",
                "must be at least auth.session_idle, e.g. 12h",
            ));
        }
        if self.sign_in_delay.is_zero() {
            out.push(Problem::new(
                "auth.sign_in_delay",
                "must be longer than 0, e.g. 1s",
            ));
        }
        if self.sign_in_max_delay < self.sign_in_delay {
            out.push(Problem::new(
                "auth.sign_in_max_delay",
                "must be at least auth.sign_in_delay, e.g. 15m",
            ));
        }
        if self.sign_in_concurrency == 0 {
            out.push(Problem::new(
                "auth.sign_in_concurrency",
                "must be at least 1, e.g. 4",
            ));
        }
    }
}
