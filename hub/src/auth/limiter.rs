//! Sign-in rate limiting: failures are counted per user name and per client address, and
//! past a few free ones each failure makes that name (or address) wait before the next
//! attempt is even checked — a delay that doubles with every further failure, up to a
//! bound. A successful sign-in clears the name's and the address's counts.
//!
//! | failures of one name | answer to the next attempt |
//! |---|---|
//! | fewer than `free` | checked at once |
//! | `free` | 429 with `Retry-After` for `delay` |
//! | `free + n` | 429 for `delay × 2ⁿ`, at most `max_delay` |
//!
//! An address gets four times as many free failures as a name (a control room's
//! operators may share one address behind NAT), then the same delays. A waiting attempt is
//! answered 429 without checking the password, so guessing costs the attacker time and the
//! hub nothing. The counts are in memory: a restart forgets them (and costs an attacker a
//! restart of the hub). The table is bounded: counts whose last failure is older than
//! twice `max_delay` are forgotten once it holds [`PRUNE_AT`] entries.
//!
//! Pure: the caller passes the time, so tests step it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::AuthSection;

/// The size of the table at which old counts are forgotten.
pub const PRUNE_AT: usize = 10_000;

/// How many more free failures an address gets than a name.
pub const ADDRESS_FACTOR: u32 = 4;

/// The policy, from `[auth]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Failures of one name answered at once.
    pub free: u32,
    /// The first wait.
    pub delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl LimitPolicy {
    /// The policy `[auth]` describes.
    pub fn from_config(auth: &AuthSection) -> Self {
        LimitPolicy {
            free: auth.sign_in_free_failures,
            delay: auth.sign_in_delay,
            max_delay: auth.sign_in_max_delay,
        }
    }

    /// The wait after `failures` failures when `free` of them are free; `None` while under.
    fn wait(&self, failures: u32, free: u32) -> Option<Duration> {
        let past = failures.checked_sub(free)?;
        let factor = 1u32.checked_shl(past.min(31)).unwrap_or(u32::MAX);
        Some(
            self.delay
                .checked_mul(factor)
                .unwrap_or(self.max_delay)
                .min(self.max_delay),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    until: Option<Instant>,
}

/// The limiter: cheap to clone, shared by every sign-in.
#[derive(Debug, Clone)]
pub struct SignInLimiter {
    policy: LimitPolicy,
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

/// The name as counted: case and length do not make a new name.
fn name_key(name: &str) -> Key {
    Key::Name(
        name.trim()
            .chars()
            .take(128)
            .collect::<String>()
            .to_lowercase(),
    )
}

impl SignInLimiter {
    /// A limiter with `policy` and no counts.
    pub fn new(policy: LimitPolicy) -> Self {
        SignInLimiter {
            policy,
            entries: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map holds plain counts: a panic elsewhere cannot leave it inconsistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err(wait)` when `name` or `addr` must still wait at `now` (the longer of the two).
    pub fn check(&self, name: &str, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let entries = self.lock();
        let wait = [name_key(name), Key::Addr(addr)]
            .iter()
            .filter_map(|k| entries.get(k)?.until)
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Counts a failure of `name` from `addr` at `now`; returns the wait it starts, if any.
    pub fn failure(&self, name: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let mut entries = self.lock();
        if entries.len() >= PRUNE_AT {
            let horizon = self.policy.max_delay.saturating_mul(2);
            entries.retain(|_, e| now.saturating_duration_since(e.last) < horizon);
        }
        let mut longest: Option<Duration> = None;
        for (key, free) in [
            (name_key(name), self.policy.free),
            (
                Key::Addr(addr),
                self.policy.free.saturating_mul(ADDRESS_FACTOR),
            ),
        ] {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
                until: None,
            });
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if let Some(wait) = self.policy.wait(e.failures, free) {
                e.until = Some(now + wait);
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        longest
    }

    /// A successful sign-in of `name` from `addr`: both counts start over.
    pub fn success(&self, name: &str, addr: IpAddr) {
        let mut entries = self.lock();
        entries.remove(&name_key(name));
        entries.remove(&Key::Addr(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limiter(free: u32) -> SignInLimiter {
        SignInLimiter::new(LimitPolicy {
            free,
            delay: S,
            max_delay: 8 * S,
        })
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn free_failures_then_a_doubling_bounded_wait() {
        let l = limiter(3);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(l.failure("li.na", ip(1), t0), None);
            assert_eq!(l.check("li.na", ip(1), t0), Ok(()));
        }
        assert_eq!(l.failure("li.na", ip(1), t0), Some(S));
        assert_eq!(l.check("li.na", ip(1), t0), Err(S));
        assert_eq!(
            l.check("LI.NA ", ip(2), t0),
            Err(S),
            "the name waits anywhere"
        );
        assert_eq!(
            l.check("zhang.wei", ip(1), t0),
            Ok(()),
            "the address is under its limit"
        );
        let t1 = t0 + S;
        assert_eq!(l.check("li.na", ip(1), t1), Ok(()));
        let mut waits = Vec::new();
        let mut t = t1;
        for _ in 0..5 {
            let w = l.failure("li.na", ip(1), t).expect("a wait");
            waits.push(w.as_secs());
            t += w;
        }
        assert_eq!(waits, [2, 4, 8, 8, 8], "doubles, bounded");
        l.success("li.na", ip(1));
        assert_eq!(l.check("li.na", ip(1), t), Ok(()));
        assert_eq!(l.failure("li.na", ip(1), t), None, "counts start over");
    }

    #[test]
    fn an_address_trying_many_names_waits_too() {
        let l = limiter(2);
        let t0 = Instant::now();
        let mut first_wait = None;
        for n in 0..(2 * ADDRESS_FACTOR) {
            let w = l.failure(&format!("user{n}"), ip(9), t0);
            if w.is_some() && first_wait.is_none() {
                first_wait = Some(n + 1);
            }
        }
        assert_eq!(first_wait, Some(2 * ADDRESS_FACTOR));
        assert!(l.check("someone-else", ip(9), t0).is_err());
        assert!(l.check("someone-else", ip(8), t0).is_ok());
    }

    #[test]
    fn the_table_is_bounded() {
        let l = limiter(100);
        let t0 = Instant::now();
        for n in 0..PRUNE_AT {
            l.failure(&format!("u{n}"), ip(1), t0);
        }
        let later = t0 + 20 * S;
        l.failure("fresh", ip(2), later);
        assert!(
            l.lock().len() <= 3,
            "old counts forgotten: {}",
            l.lock().len()
        );
    }
}
