//! [`Revocations`]: the set of revoked certificate serials, shared by everything that
//! accepts certificates — the TLS verifier refuses them at the handshake, and the gate
//! closes the live connections that presented them when they are revoked.
//!
//! The owner (the hub) loads the set from its store at start ([`Revocations::load`]) and
//! calls [`Revocations::revoke`] when an operator revokes a node; there is no CRL file to
//! distribute for the embedded broker. Listeners [`subscribe`](Revocations::subscribe) to a
//! change counter and check their own serial when it moves: no revocation can be missed,
//! however many come at once.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use crate::cert::normalize_serial;

/// A shared set of revoked serials. Cheap to clone: clones share the set.
#[derive(Debug, Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    serials: RwLock<HashSet<String>>,
    changes: watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations::new()
    }
}

impl Revocations {
    /// An empty set.
    pub fn new() -> Revocations {
        Revocations {
            inner: Arc::new(Inner {
                serials: RwLock::new(HashSet::new()),
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// Revokes `serial` (any case, with or without colons or leading zeros). Returns
    /// whether it was newly revoked. Wakes every subscriber.
    pub fn revoke(&self, serial: &str) -> bool {
        let added = self
            .inner
            .serials
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(normalize_serial(serial));
        if added {
            self.inner.changes.send_modify(|n| *n += 1);
        }
        added
    }

    /// Adds every serial of `serials` (e.g. from the store, at start). Wakes every
    /// subscriber once.
    pub fn load<I, S>(&self, serials: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        {
            let mut set = self
                .inner
                .serials
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            set.extend(serials.into_iter().map(|s| normalize_serial(s.as_ref())));
        }
        self.inner.changes.send_modify(|n| *n += 1);
    }

    /// Whether `serial` is revoked.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.inner
            .serials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&normalize_serial(serial))
    }

    /// How many serials are revoked.
    pub fn len(&self) -> usize {
        self.inner
            .serials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no serial is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver whose value changes after every revocation: wait on
    /// [`changed`](watch::Receiver::changed), then check your own serial with
    /// [`is_revoked`](Revocations::is_revoked). Subscribe *before* the first check, so a
    /// revocation between the two is not missed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_normalises_and_notifies() {
        let revocations = Revocations::new();
        let mut changes = revocations.subscribe();
        assert!(!changes.has_changed().expect("open"));
        assert!(revocations.revoke("00:AB:CD"));
        assert!(!revocations.revoke("abcd"), "already revoked");
        assert!(changes.has_changed().expect("open"));
        changes.mark_unchanged();
        assert!(revocations.clone().is_revoked("ABCD"));
        assert!(!revocations.is_revoked("abce"));
        revocations.load(["01", "02"]);
        assert!(changes.has_changed().expect("open"));
        assert_eq!(revocations.len(), 3);
    }
}
