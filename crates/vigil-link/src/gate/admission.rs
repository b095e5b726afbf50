//! Who may start a handshake with the gate: at most [`SecureBrokerConfig::max_connections`]
//! connections at once, and at most [`SecureBrokerConfig::max_pending_per_address`] of them
//! from one client address *before they authenticate* (the TLS handshake and the MQTT
//! CONNECT), and at most [`SecureBrokerConfig::max_pending`] unauthenticated ones in all. A
//! client without a certificate can only ever hold pre-authentication places, so neither
//! one address nor many can fill the gate with handshakes that never finish: places for
//! enrolled nodes stay free; an enrolled node
//! gives its place back as soon as its CONNECT is accepted, so many nodes behind one NAT
//! are not limited once connected (docs/ARCHITECTURE.md#security-hardening).
//!
//! An IPv6 client is counted by its /64 (one host usually holds a whole /64), an
//! IPv4-mapped IPv6 address as the IPv4 address ([`address_key`]).
//!
//! The hub's HTTP listener takes its connections through the same [`Admission`]: its
//! clients never authenticate at the connection, so their per-address places are held for
//! the connection's life.
//!
//! [`SecureBrokerConfig::max_connections`]: super::SecureBrokerConfig::max_connections
//! [`SecureBrokerConfig::max_pending_per_address`]: super::SecureBrokerConfig::max_pending_per_address
//! [`SecureBrokerConfig::max_pending`]: super::SecureBrokerConfig::max_pending

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The address a client is counted as: an IPv6 client by its /64 network, an IPv4-mapped
/// IPv6 address as the IPv4 address, an IPv4 address as itself.
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Why a connection was refused before its handshake: the `reason` label of
/// `vigil_gate_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The gate holds `max_connections` already.
    Capacity,
    /// The client's address holds `max_pending_per_address` unauthenticated connections.
    PerAddress,
    /// The gate holds `max_pending` unauthenticated connections, from all addresses.
    Pending,
}

impl Refusal {
    /// Every reason, for metrics.
    pub const ALL: [Refusal; 3] = [Refusal::Capacity, Refusal::PerAddress, Refusal::Pending];

    /// Its label: `capacity`, `per_address`, `pending`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::PerAddress => "per_address",
            Refusal::Pending => "pending",
        }
    }
}

/// The places of a listener: a total, and pre-authentication places per address and in all.
#[derive(Debug, Clone)]
pub struct Admission {
    total: Arc<Semaphore>,
    pending: Arc<Mutex<PendingTable>>,
    max_pending: usize,
    max_pending_total: usize,
    /// `vigil_gate_pending_connections`.
    gauge: prometheus::IntGauge,
}

/// A connection's place in the gate, held until it closes; its pre-authentication place
/// is held until [`authenticated`](Admitted::authenticated) (or the close).
#[derive(Debug)]
pub struct Admitted {
    _total: OwnedSemaphorePermit,
    pending: Option<Pending>,
}

/// The unauthenticated connections: per address, and in all.
#[derive(Debug, Default)]
struct PendingTable {
    per_address: HashMap<IpAddr, usize>,
    total: usize,
}

#[derive(Debug)]
struct Pending {
    key: IpAddr,
    counts: Arc<Mutex<PendingTable>>,
    gauge: prometheus::IntGauge,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.gauge.dec();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_address.remove(&self.key);
            }
        }
    }
}

impl Admitted {
    /// The node authenticated (its CONNECT was accepted): its address's
    /// pre-authentication place is free again.
    pub fn authenticated(&mut self) {
        self.pending = None;
    }
}

impl Admission {
    /// Places for `max_total` connections, `max_pending` of them unauthenticated per
    /// address and `max_pending_total` unauthenticated in all; `gauge` shows the
    /// unauthenticated ones.
    pub fn new(
        max_total: usize,
        max_pending: usize,
        max_pending_total: usize,
        gauge: prometheus::IntGauge,
    ) -> Admission {
        Admission {
            total: Arc::new(Semaphore::new(max_total)),
            pending: Arc::default(),
            max_pending,
            max_pending_total,
            gauge,
        }
    }

    /// A place for a connection from `peer`, or why there is none.
    pub fn admit(&self, peer: IpAddr) -> Result<Admitted, Refusal> {
        let key = address_key(peer);
        let total = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refusal::Capacity)?;
        {
            let mut counts = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if counts.total >= self.max_pending_total {
                return Err(Refusal::Pending);
            }
            let n = counts.per_address.entry(key).or_insert(0);
            if *n >= self.max_pending {
                return Err(Refusal::PerAddress);
            }
            *n += 1;
            counts.total += 1;
        }
        self.gauge.inc();
        Ok(Admitted {
            _total: total,
            pending: Some(Pending {
                key,
                counts: Arc::clone(&self.pending),
                gauge: self.gauge.clone(),
            }),
        })
    }

    /// The addresses holding pre-authentication places (for tests).
    #[cfg(test)]
    fn pending_addresses(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_address
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(address_key(ip("10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn pending_places_per_address_free_on_authentication_or_close() {
        let gauge = prometheus::IntGauge::new("pending", "pending").expect("gauge");
        let admission = Admission::new(10, 2, 10, gauge.clone());
        let a = ip("10.0.0.1");
        let mut first = admission.admit(a).expect("1st");
        let second = admission.admit(a).expect("2nd");
        assert_eq!(admission.admit(a).map(|_| ()), Err(Refusal::PerAddress));
        // Another address (and another host of the same /64 for IPv6) is counted apart.
        assert!(admission.admit(ip("10.0.0.2")).is_ok());
        let _v6 = admission.admit(ip("2001:db8::1")).expect("v6");
        let _v6b = admission.admit(ip("2001:db8::2")).expect("same /64");
        assert_eq!(
            admission.admit(ip("2001:db8::3")).map(|_| ()),
            Err(Refusal::PerAddress)
        );

        // An authenticated connection keeps its total place, not its pending one.
        first.authenticated();
        let third = admission.admit(a).expect("after authentication");
        drop((second, third));
        let _again = admission.admit(a).expect("after a close");
        drop(first);
        drop(_again);
        drop((_v6, _v6b));
        assert_eq!(admission.pending_addresses(), 0, "nothing left behind");
        assert_eq!(gauge.get(), 0, "every pending place given back");
    }

    #[test]
    fn the_total_is_a_cap_over_every_address() {
        let gauge = prometheus::IntGauge::new("pending", "pending").expect("gauge");
        let admission = Admission::new(2, 2, 2, gauge);
        let mut a = admission.admit(ip("10.0.0.1")).expect("a");
        a.authenticated();
        let _b = admission.admit(ip("10.0.0.2")).expect("b");
        assert_eq!(
            admission.admit(ip("10.0.0.3")).map(|_| ()),
            Err(Refusal::Capacity)
        );
        drop(a);
        assert!(admission.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn unauthenticated_connections_are_capped_in_all_leaving_places_for_nodes() {
        let gauge = prometheus::IntGauge::new("pending", "pending").expect("gauge");
        let admission = Admission::new(10, 2, 3, gauge);
        let a = admission.admit(ip("10.0.0.1")).expect("a");
        let _b = admission.admit(ip("10.0.0.2")).expect("b");
        let mut c = admission.admit(ip("10.0.0.3")).expect("c");
        // Three handshakes from three addresses: the fourth address waits, whatever it is.
        assert_eq!(
            admission.admit(ip("10.0.0.4")).map(|_| ()),
            Err(Refusal::Pending)
        );
        // A node that authenticates gives its pending place back.
        c.authenticated();
        let _d = admission
            .admit(ip("10.0.0.4"))
            .expect("after an authentication");
        drop(a);
        assert!(admission.admit(ip("10.0.0.5")).is_ok(), "after a close");
    }
}
