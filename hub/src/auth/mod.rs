//! Who is calling, and what they may do (docs/ARCHITECTURE.md#users-roles-and-scope).
//!
//! Every request under `/api/` (and `/feeds/`) comes from a [`Principal`] or is refused
//! with 401 ([`middleware`]): a console user signed in with a session cookie, or a script
//! or feed reader with an API token. The one exception is `POST /api/v1/session`, the
//! sign-in itself. `GET /healthz` is always open; `GET /metrics` is open unless
//! `[auth] open_metrics = false` (it shows counts, never an alert's contents, and the
//! listener is loopback unless configured otherwise).
//!
//! - [`role`]: the roles and **the permission table**;
//! - a principal's **scope** is a site subtree: it sees and acts on the alerts whose site
//!   lies at or below it, on whole segments (`a/b` covers `a/b` and `a/b/c`, not `a/bc`);
//!   an alert whose raise has not arrived has no site and is in nobody's scope;
//! - [`password`]: argon2id hashes, the same work for unknown users;
//! - [`secret`]: session, CSRF and token secrets, stored only as SHA-256;
//! - [`limiter`]: sign-in rate limiting per name at a client address and per address,
//!   counted before the password is checked, one attempt at a time per address;
//! - [`session`]: the cookie, expiry, CSRF;
//! - [`middleware`]: resolving the principal of each request;
//! - [`admin`] and [`command`]: `vigil-hub user …` and `vigil-hub token …`, every change
//!   audited with the actor `cli:<unix user>`.
//!
//! Every sign-in, successful or not, every sign-out, every admin change and every request
//! refused for its role or its scope is appended to the audit log. Passwords are never
//! logged or audited.

pub mod admin;
pub mod command;
pub mod limiter;
pub mod middleware;
pub mod password;
pub mod role;
pub mod secret;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use vigil_core::{SitePath, Timestamp};

pub use limiter::{LimitPolicy, SignInLimiter};
pub use role::{Permission, Role};

use crate::config::AuthSection;

/// The longest user or token name, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// What an API token's actor is called in the audit log and on alert events: `token:NAME`
/// (user names cannot contain `:`, so the two never collide).
pub const TOKEN_ACTOR_PREFIX: &str = "token:";

/// Checks a user or token name: 1–64 characters, lower-case ASCII letters, digits, `.`,
/// `_` and `-`, starting with a letter or a digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: use 1-{MAX_NAME_LEN} lower-case letters, digits, \
             '.', '_' or '-', starting with a letter or a digit (e.g. li.na)"
        ))
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A console session (cookie `vigil_session`).
    Session {
        /// SHA-256 of the session's secret.
        secret_hash: [u8; 32],
        /// The session's CSRF token.
        csrf: String,
        /// When it ends at the latest.
        expires_at: Timestamp,
    },
    /// An API token (`Authorization: Bearer`).
    Token {
        /// The token's name.
        name: String,
    },
}

/// The caller of a request: who, with which role, over which part of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The actor as events and the audit log name it: the user name, or `token:NAME`.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The site subtree it sees and acts on.
    pub scope: SitePath,
    /// Session or token.
    pub via: Via,
}

impl Principal {
    /// Whether the role allows `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }

    /// Whether an alert at `site` is in scope; an alert without a site (its raise has not
    /// arrived) is in nobody's.
    pub fn sees(&self, site: Option<&SitePath>) -> bool {
        site.is_some_and(|s| s.is_within(&self.scope))
    }

    /// The site filter a list runs with when the caller asks for `requested`: the narrower
    /// of the two, or `None` when they do not overlap (nothing to list).
    pub fn narrow(&self, requested: Option<&SitePath>) -> Option<SitePath> {
        match requested {
            None => Some(self.scope.clone()),
            Some(r) if r.is_within(&self.scope) => Some(r.clone()),
            Some(r) if self.scope.is_within(r) => Some(self.scope.clone()),
            Some(_) => None,
        }
    }

    /// Whether a node placed at `site` belongs in this principal's tree: its site and the
    /// scope overlap (one lies within the other).
    pub fn overlaps(&self, site: &SitePath) -> bool {
        site.is_within(&self.scope) || self.scope.is_within(site)
    }
}

/// Sign-in settings and state the API shares.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in.
    pub session_max: Duration,
    /// Mark the cookie `Secure`.
    pub secure_cookie: bool,
    /// `GET /metrics` without credentials.
    pub open_metrics: bool,
    /// The failed sign-in counts.
    pub limiter: SignInLimiter,
    /// The password checks that may run at once, hub-wide (`[auth] sign_in_concurrency`):
    /// each holds about 19 MiB while it runs.
    pub password_checks: Arc<tokio::sync::Semaphore>,
}

impl AuthContext {
    /// The context `[auth]` describes, with fresh counts.
    pub fn from_config(auth: &AuthSection) -> Self {
        AuthContext {
            session_idle: auth.session_idle,
            session_max: auth.session_max,
            secure_cookie: auth.secure_cookie,
            open_metrics: auth.open_metrics,
            limiter: SignInLimiter::new(LimitPolicy::from_config(auth)),
            password_checks: Arc::new(tokio::sync::Semaphore::new(auth.sign_in_concurrency)),
        }
    }

    /// How stale a session's `last_seen` may get before a request refreshes it: a quarter
    /// of the idle time, at most 15 s (one write per session per interval, not per request).
    pub fn touch_interval(&self) -> Duration {
        (self.session_idle / 4).min(Duration::from_secs(15))
    }
}

/// `Duration` as milliseconds for [`Timestamp`] arithmetic, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scope: &str) -> Principal {
        Principal {
            name: "li.na".into(),
            role: Role::Operator,
            scope: SitePath::new(scope).expect("site"),
            via: Via::Token { name: "t".into() },
        }
    }

    fn site(s: &str) -> SitePath {
        SitePath::new(s).expect("site")
    }

    #[test]
    fn scope_is_a_subtree_of_whole_segments() {
        let p = principal("a/b");
        assert!(p.sees(Some(&site("a/b"))));
        assert!(p.sees(Some(&site("a/b/c"))));
        assert!(!p.sees(Some(&site("a/bc"))));
        assert!(!p.sees(Some(&site("a"))));
        assert!(!p.sees(None));
        assert_eq!(p.narrow(None), Some(site("a/b")));
        assert_eq!(p.narrow(Some(&site("a/b/c"))), Some(site("a/b/c")));
        assert_eq!(p.narrow(Some(&site("a"))), Some(site("a/b")));
        assert_eq!(p.narrow(Some(&site("a/bc"))), None);
        assert!(p.overlaps(&site("a")) && p.overlaps(&site("a/b/c")));
        assert!(!p.overlaps(&site("a/bc")));
    }

    #[test]
    fn names() {
        for good in ["li.na", "zhang_wei", "op-1", "1st"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Li.Na",
            "-x",
            ".x",
            "a:b",
            "a b",
            "token:x",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
