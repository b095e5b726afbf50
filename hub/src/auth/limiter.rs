//! Sign-in rate limiting: failures are counted per user name *from one client address* and
//! per client address, and past a few free ones each failure makes that pair (or that
//! address) wait before the next attempt is even checked — a delay that doubles with every
//! further failure, up to a bound.
//!
//! | failures of one name from one address | answer to the next attempt |
//! |---|---|
//! | fewer than `free` | checked at once |
//! | `free` | 429 with `Retry-After` for `delay` |
//! | `free + n` | 429 for `delay × 2ⁿ`, at most `max_delay` |
//!
//! **Per name and address.** A name's wait holds only at the address that earned it: an
//! attacker's failures keep the attacker waiting, while the operator signs in from their
//! own desk during the incident. An address also has a count of its own over every name it
//! tries, with four times as many free failures (a control room's operators may share one
//! address behind NAT), so one address cannot spray many names. IPv6 clients are counted by
//! their /64 network (one host owns a whole /64), IPv4-mapped IPv6 as the IPv4 address.
//!
//! **Counted before checking.** [`SignInLimiter::begin`] counts an attempt as a failure
//! *before* its password is checked and hands back an [`Attempt`]; only a success takes the
//! count back ([`Attempt::succeeded`]), or a check that did not happen ([`Attempt::cancel`]:
//! the hub was too busy). Parallel attempts therefore cannot all slip under the
//! limit while the first ones are being checked. An address has **one attempt at a time**:
//! while one is being checked, another from the same address is refused at once
//! ([`Refusal::InProgress`]). A waiting or refused attempt is answered without checking the
//! password, so guessing costs the attacker time and the hub nothing.
//!
//! The counts are in memory: a restart forgets them (and costs an attacker a restart of
//! the hub). A count is forgotten twice `max_delay` after its last failure. The table is
//! bounded: once it holds [`PRUNE_AT`] entries (looked at no more than every
//! [`PRUNE_EVERY`]), the forgotten counts are dropped; if it is still that full (attempts
//! from very many addresses), the counts that hold no wait now are dropped too, and past
//! [`MAX_ENTRIES`] the oldest half. New entries come only from attempts that get their
//! password checked, which the hub-wide bound on concurrent checks
//! (`[auth] sign_in_concurrency`) limits to a few hundred a second.
//!
//! Pure: the caller passes the time, so tests step it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_link::gate::admission::address_key;

use crate::config::AuthSection;

/// The size of the table at which forgotten counts are dropped.
pub const PRUNE_AT: usize = 10_000;

/// The table is pruned at most this often (pruning scans it under the lock).
pub const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The most entries the table keeps: past it, the oldest half is dropped.
pub const MAX_ENTRIES: usize = 100_000;

/// How many more free failures an address gets than a name.
pub const ADDRESS_FACTOR: u32 = 4;

/// The policy, from `[auth]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Failures of one name (from one address) answered at once.
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

    /// How long after its last failure a count is forgotten.
    fn horizon(&self) -> Duration {
        self.max_delay.saturating_mul(2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A name tried from an address.
    NameAt(String, IpAddr),
    /// An address, over every name.
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// Addresses with an attempt being checked.
    busy: HashSet<IpAddr>,
    /// When the table was last pruned.
    pruned_at: Option<Instant>,
}

impl Table {
    /// Keeps the table bounded (see the module docs); `horizon` is how long a count lasts.
    fn prune(&mut self, now: Instant, horizon: Duration) {
        if self.entries.len() < PRUNE_AT
            || self
                .pruned_at
                .is_some_and(|t| now.saturating_duration_since(t) < PRUNE_EVERY)
        {
            return;
        }
        self.pruned_at = Some(now);
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < horizon);
        if self.entries.len() >= PRUNE_AT {
            // Attempts from very many addresses: keep the counts that make someone wait
            // now; the others start over (a client that had failed less than its free
            // failures loses only what it had not yet spent).
            self.entries.retain(|_, e| e.until.is_some_and(|u| u > now));
        }
        if self.entries.len() >= MAX_ENTRIES {
            let mut lasts: Vec<Instant> = self.entries.values().map(|e| e.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() - MAX_ENTRIES / 2];
            self.entries.retain(|_, e| e.last >= cut);
        }
    }
}

/// Why an attempt is not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The name at this address, or the address, must wait this long.
    Wait(Duration),
    /// Another attempt from the same address is being checked.
    InProgress,
}

/// The limiter: cheap to clone, shared by every sign-in.
#[derive(Debug, Clone)]
pub struct SignInLimiter {
    policy: LimitPolicy,
    table: Arc<Mutex<Table>>,
}

/// The name as counted: case and length do not make a new name.
fn name_key(name: &str, addr: IpAddr) -> Key {
    Key::NameAt(
        name.trim()
            .chars()
            .take(128)
            .collect::<String>()
            .to_lowercase(),
        address_key(addr),
    )
}

impl SignInLimiter {
    /// A limiter with `policy` and no counts.
    pub fn new(policy: LimitPolicy) -> Self {
        SignInLimiter {
            policy,
            table: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds plain counts: a panic elsewhere cannot leave it inconsistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys(&self, name: &str, addr: IpAddr) -> [(Key, u32); 2] {
        [
            (name_key(name, addr), self.policy.free),
            (
                Key::Addr(address_key(addr)),
                self.policy.free.saturating_mul(ADDRESS_FACTOR),
            ),
        ]
    }

    /// The longer wait of `name` at `addr` and of `addr` at `now`, if any.
    fn wait_in(&self, table: &Table, name: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        self.keys(name, addr)
            .iter()
            .filter_map(|(k, _)| table.entries.get(k)?.until)
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// Counts one failure of `name` from `addr` at `now` in `table`; the wait it starts.
    fn count(&self, table: &mut Table, name: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let horizon = self.policy.horizon();
        table.prune(now, horizon);
        let mut longest: Option<Duration> = None;
        for (key, free) in self.keys(name, addr) {
            let e = table.entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
                until: None,
            });
            if now.saturating_duration_since(e.last) >= horizon {
                // Forgotten: the last failure is long past.
                e.failures = 0;
                e.until = None;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            if let Some(wait) = self.policy.wait(e.failures, free) {
                e.until = Some(now + wait);
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        longest
    }

    /// Starts an attempt to sign `name` in from `addr` at `now`: refused while the pair or
    /// the address waits or another attempt from the address is being checked; otherwise
    /// counted as a failure at once (taken back by [`Attempt::succeeded`]).
    pub fn begin(&self, name: &str, addr: IpAddr, now: Instant) -> Result<Attempt, Refusal> {
        let mut table = self.lock();
        if let Some(wait) = self.wait_in(&table, name, addr, now) {
            return Err(Refusal::Wait(wait));
        }
        let client = address_key(addr);
        if !table.busy.insert(client) {
            return Err(Refusal::InProgress);
        }
        // While the address is busy nothing else changes these two entries: what they were
        // is what cancel() puts back.
        let keys = self.keys(name, addr);
        let prior = keys.map(|(k, _)| (table.entries.get(&k).copied(), k));
        let wait = self.count(&mut table, name, addr, now);
        Ok(Attempt {
            limiter: self.clone(),
            name: name.to_owned(),
            addr,
            wait,
            prior: Some(prior),
            settled: false,
        })
    }

    /// `Err(wait)` when `name` at `addr`, or `addr`, must still wait at `now` (the longer
    /// of the two). Tests only: callers count before checking, with [`Self::begin`].
    #[cfg(test)]
    fn check(&self, name: &str, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let table = self.lock();
        self.wait_in(&table, name, addr, now).map_or(Ok(()), Err)
    }

    /// Counts a failure of `name` from `addr` at `now`; returns the wait it starts, if any.
    /// Tests only: callers count before checking, with [`Self::begin`].
    #[cfg(test)]
    fn failure(&self, name: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let mut table = self.lock();
        self.count(&mut table, name, addr, now)
    }
}

/// An attempt being checked, already counted as a failure. Dropping it without
/// [`Attempt::succeeded`] leaves the failure counted (a wrong password, an error, a client
/// that went away) and lets the address's next attempt in.
#[derive(Debug)]
#[must_use = "an attempt is settled by succeeded() or by being dropped as a failure"]
pub struct Attempt {
    limiter: SignInLimiter,
    name: String,
    addr: IpAddr,
    wait: Option<Duration>,
    prior: Option<[(Option<Entry>, Key); 2]>,
    settled: bool,
}

impl Attempt {
    /// The wait this attempt's failure starts (counted already), if any.
    pub fn wait(&self) -> Option<Duration> {
        self.wait
    }

    /// The password was not checked after all (the hub was too busy): the counts are as
    /// they were before [`SignInLimiter::begin`].
    pub fn cancel(mut self) {
        self.settled = true;
        let mut table = self.limiter.lock();
        for (entry, key) in self.prior.take().into_iter().flatten() {
            match entry {
                Some(e) => table.entries.insert(key, e),
                None => table.entries.remove(&key),
            };
        }
        table.busy.remove(&address_key(self.addr));
    }

    /// The password was right: the pair's count starts over, and the address's count
    /// loses the failure this attempt added (its earlier failures stay).
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut table = self.limiter.lock();
        table.entries.remove(&name_key(&self.name, self.addr));
        let addr_free = self.limiter.policy.free.saturating_mul(ADDRESS_FACTOR);
        if let Some(e) = table.entries.get_mut(&Key::Addr(address_key(self.addr))) {
            e.failures = e.failures.saturating_sub(1);
            if e.failures < addr_free {
                e.until = None;
            }
        }
        table.busy.remove(&address_key(self.addr));
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.lock().busy.remove(&address_key(self.addr));
        }
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

    /// One attempt that fails: the wait it started, or why it was refused.
    fn fail(
        l: &SignInLimiter,
        name: &str,
        addr: IpAddr,
        now: Instant,
    ) -> Result<Option<Duration>, Refusal> {
        l.begin(name, addr, now).map(|a| a.wait())
    }

    #[test]
    fn free_failures_then_a_doubling_bounded_wait() {
        let l = limiter(3);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(fail(&l, "li.na", ip(1), t0), Ok(None));
        }
        assert_eq!(fail(&l, "li.na", ip(1), t0), Ok(Some(S)));
        assert_eq!(fail(&l, "li.na", ip(1), t0), Err(Refusal::Wait(S)));
        assert_eq!(
            fail(&l, "LI.NA ", ip(1), t0),
            Err(Refusal::Wait(S)),
            "case and spaces make no new name"
        );
        let t1 = t0 + S;
        let mut waits = Vec::new();
        let mut t = t1;
        for _ in 0..5 {
            let w = fail(&l, "li.na", ip(1), t)
                .expect("checked")
                .expect("a wait");
            waits.push(w.as_secs());
            t += w;
        }
        assert_eq!(waits, [2, 4, 8, 8, 8], "doubles, bounded");
        l.begin("li.na", ip(1), t).expect("checked").succeeded();
        assert_eq!(fail(&l, "li.na", ip(1), t), Ok(None), "counts start over");
    }

    #[test]
    fn a_name_waits_only_at_the_address_that_failed() {
        let l = limiter(2);
        let t0 = Instant::now();
        fail(&l, "li.na", ip(1), t0).expect("checked");
        fail(&l, "li.na", ip(1), t0).expect("checked");
        assert_eq!(fail(&l, "li.na", ip(1), t0), Err(Refusal::Wait(S)));
        let from_desk = l
            .begin("li.na", ip(2), t0)
            .expect("the operator's own address");
        from_desk.succeeded();
        assert_eq!(
            l.check("li.na", ip(1), t0),
            Err(S),
            "a success elsewhere does not free the attacker"
        );
    }

    #[test]
    fn an_attempt_is_counted_before_it_is_checked_and_one_runs_per_address() {
        let l = limiter(1);
        let t0 = Instant::now();
        let first = l.begin("li.na", ip(1), t0).expect("checked");
        assert_eq!(first.wait(), Some(S), "counted already: the next must wait");
        assert_eq!(
            l.begin("zhang.wei", ip(1), t0).map(|a| a.wait()),
            Err(Refusal::InProgress),
            "one attempt at a time per address"
        );
        assert!(
            l.begin("zhang.wei", ip(2), t0).is_ok(),
            "other addresses go on"
        );
        drop(first);
        assert_eq!(
            l.begin("li.na", ip(1), t0).map(|a| a.wait()),
            Err(Refusal::Wait(S))
        );
        assert_eq!(
            fail(&l, "zhang.wei", ip(1), t0),
            Ok(Some(S)),
            "freed on drop"
        );
        let busy = l.begin("li.na", ip(3), t0).expect("checked");
        assert_eq!(busy.wait(), Some(S));
        busy.cancel();
        let ok = l
            .begin("li.na", ip(3), t0)
            .expect("not counted after a cancel");
        assert_eq!(ok.wait(), Some(S), "as if the cancelled one never was");
        ok.succeeded();
        assert_eq!(
            fail(&l, "li.na", ip(3), t0),
            Ok(Some(S)),
            "the count was taken back"
        );
    }

    #[test]
    fn an_address_trying_many_names_waits_too() {
        let l = limiter(2);
        let t0 = Instant::now();
        let mut first_wait = None;
        for n in 0..(2 * ADDRESS_FACTOR) {
            let w = fail(&l, &format!("user{n}"), ip(9), t0).expect("checked");
            if w.is_some() && first_wait.is_none() {
                first_wait = Some(n + 1);
            }
        }
        assert_eq!(first_wait, Some(2 * ADDRESS_FACTOR));
        assert!(l.check("someone-else", ip(9), t0).is_err());
        assert!(l.check("someone-else", ip(8), t0).is_ok());
    }

    #[test]
    fn the_table_stays_bounded_under_attempts_from_very_many_addresses() {
        let l = limiter(1);
        let t0 = Instant::now();
        // Two failures per address (one free, one that starts a wait), from 3 * PRUNE_AT
        // addresses, each a millisecond apart: nothing is old enough to forget.
        for i in 0..(3 * PRUNE_AT) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
            let t = t0 + Duration::from_millis(i as u64);
            for _ in 0..2 {
                if let Ok(attempt) = l.begin("li.na", addr, t) {
                    drop(attempt);
                }
            }
        }
        let len = l.lock().entries.len();
        assert!(len < MAX_ENTRIES, "{len} entries");
        // The waits in force are kept: the last address still waits.
        let last = IpAddr::from(std::net::Ipv4Addr::from(
            0x0a00_0000 + (3 * PRUNE_AT - 1) as u32,
        ));
        let t = t0 + Duration::from_millis(3 * PRUNE_AT as u64);
        assert!(matches!(l.begin("li.na", last, t), Err(Refusal::Wait(_))));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2::10".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::10".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(address_key(mapped), ip(1));
        let l = limiter(1);
        let t0 = Instant::now();
        assert_eq!(fail(&l, "li.na", a, t0), Ok(Some(S)));
        assert_eq!(fail(&l, "li.na", b, t0), Err(Refusal::Wait(S)));
        assert!(fail(&l, "li.na", c, t0).is_ok());
    }

    #[test]
    fn counts_are_forgotten_and_the_table_is_bounded() {
        let l = limiter(100);
        let t0 = Instant::now();
        for n in 0..PRUNE_AT {
            l.failure(&format!("u{n}"), ip(1), t0);
        }
        let later = t0 + 20 * S;
        for n in 0..PRUNE_AT {
            l.failure(&format!("v{n}"), ip(2), later);
        }
        let len = l.lock().entries.len();
        assert!(len < 2 * PRUNE_AT, "bounded: {len}");
        assert!(
            l.lock()
                .entries
                .values()
                .all(|e| later.saturating_duration_since(e.last) < 16 * S),
            "none of the first round is left"
        );
        let l = limiter(1);
        assert_eq!(fail(&l, "li.na", ip(1), t0), Ok(Some(S)));
        assert_eq!(
            fail(&l, "li.na", ip(1), t0 + 16 * S),
            Ok(Some(S)),
            "after twice max_delay the count starts over"
        );
    }
}
