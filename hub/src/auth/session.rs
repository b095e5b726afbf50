//! Console sessions: the cookie, when a session ends, and the CSRF rule.
//!
//! - **Cookie** `vigil_session=<secret>; HttpOnly; SameSite=Strict; Path=/; Max-Age=…`, and
//!   `Secure` when `[auth] secure_cookie` (HTTPS). Script cannot read it; other sites'
//!   pages cannot make the browser send it.
//! - **Expiry**: a session ends `[auth] session_max` after sign-in whatever happens
//!   (absolute), or once unused for `[auth] session_idle` (idle), or when its user is
//!   disabled. An ended session is refused with 401 and its row dropped.
//! - **CSRF**: every request that is not `GET`, `HEAD` or `OPTIONS` and is authenticated by
//!   the cookie must carry `X-CSRF-Token` equal to the session's token (given at sign-in and
//!   by `GET /api/v1/session`), or it is refused with 403. Requests with a bearer token need
//!   none: a browser never adds that header by itself.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use vigil_core::Timestamp;
use vigil_store::{Session, User};

use super::millis;

/// The session cookie's name.
pub const COOKIE: &str = "vigil_session";

/// The header a cookie-authenticated state-changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` value that hands out `secret` for `max_age`.
pub fn set_cookie(secret: &str, max_age: Duration, secure: bool) -> String {
    let mut c = format!(
        "{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs()
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The `Set-Cookie` value that removes the cookie (sign-out, an ended session).
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

/// The session secret the request presents, if any (the first `vigil_session` cookie).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Why a stored session no longer signs anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Past its absolute expiry.
    Expired,
    /// Unused for the idle time.
    Idle,
    /// Its user is disabled.
    Disabled,
}

impl Ended {
    /// The reason, as metrics and logs name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Ended::Expired => "session_expired",
            Ended::Idle => "session_idle",
            Ended::Disabled => "user_disabled",
        }
    }
}

/// Whether `session` of `user` still holds at `now` with idle time `idle`.
pub fn check(session: &Session, user: &User, now: Timestamp, idle: Duration) -> Result<(), Ended> {
    if user.disabled {
        return Err(Ended::Disabled);
    }
    if now >= session.expires_at {
        return Err(Ended::Expired);
    }
    if now >= session.last_seen.plus_millis(millis(idle)) {
        return Err(Ended::Idle);
    }
    Ok(())
}

/// Whether `method` changes state (and so needs the CSRF token with a cookie).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request carries the session's CSRF token.
pub fn csrf_ok(headers: &HeaderMap, csrf: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .is_some_and(|v| super::secret::same(v.as_bytes(), csrf.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookie_flags() {
        let c = set_cookie("s3cret", Duration::from_secs(3600), false);
        assert_eq!(
            c,
            "vigil_session=s3cret; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"
        );
        assert!(set_cookie("s", Duration::from_secs(1), true).ends_with("; Secure"));
        assert!(clear_cookie(false).starts_with("vigil_session=; "));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("theme=dark; vigil_session=abc; x=y"),
        );
        assert_eq!(presented(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("vigil_session="),
        );
        assert_eq!(presented(&h), None);
    }

    #[test]
    fn sessions_end() {
        let t0 = Timestamp::from_millis(1_795_000_000_000);
        let s = Session {
            secret_hash: [0; 32],
            user: "li.na".into(),
            csrf: "c".into(),
            created_at: t0,
            expires_at: t0.plus_millis(10_000),
            last_seen: t0,
        };
        let mut u = User {
            name: "li.na".into(),
            password_hash: String::new(),
            role: "operator".into(),
            scope: "ministry".into(),
            created_at: t0,
            disabled: false,
        };
        let idle = Duration::from_secs(5);
        assert_eq!(check(&s, &u, t0.plus_millis(4_999), idle), Ok(()));
        assert_eq!(check(&s, &u, t0.plus_millis(5_000), idle), Err(Ended::Idle));
        let used = Session {
            last_seen: t0.plus_millis(8_000),
            ..s.clone()
        };
        assert_eq!(check(&used, &u, t0.plus_millis(9_000), idle), Ok(()));
        assert_eq!(
            check(&used, &u, t0.plus_millis(10_000), idle),
            Err(Ended::Expired)
        );
        u.disabled = true;
        assert_eq!(check(&s, &u, t0, idle), Err(Ended::Disabled));
    }

    #[test]
    fn csrf() {
        assert!(!changes_state(&Method::GET));
        assert!(changes_state(&Method::POST) && changes_state(&Method::DELETE));
        let mut h = HeaderMap::new();
        assert!(!csrf_ok(&h, "tok"));
        h.insert(CSRF_HEADER, HeaderValue::from_static("tok"));
        assert!(csrf_ok(&h, "tok"));
        assert!(!csrf_ok(&h, "other"));
    }
}
