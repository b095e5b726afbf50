//! [`SharedStore`]: the one handle on a node's store shared between tasks — the agent's
//! alert pipeline, HTTP readers and link; the hub's API, links and feeds — used from async
//! code without blocking the runtime.
//!
//! A store is one SQLite connection behind a mutex. Async code reaches it through
//! [`SharedStore::call`], which runs the closure on tokio's blocking pool — a commit waits for
//! an fsync (`synchronous = FULL`), which must not stall the event loop. Owners may share one
//! `SharedStore` (one connection, calls serialised by the mutex) or open a second store on
//! the same file for readers (two connections, serialised by SQLite).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use vigil_store::{Store, StoreError};

use crate::error::LinkError;

/// A [`Store`] shared between tasks. Clones share the store.
///
/// **A poisoned lock is recovered**, not turned into an error: a lock is poisoned when a
/// closure panicked while holding the store, and what it left is still consistent — every
/// write runs in one SQLite transaction (`BEGIN IMMEDIATE` through a rusqlite
/// `Transaction`, rolled back when the panic unwinds through it), and the store's cache of
/// alert contexts keeps a transaction's changes staged until it has committed. Refusing every
/// later call instead would stop a gateway's alerts and a hub's API for good over one
/// panicked request. The recovery is logged (`tracing` warn) and the poison cleared, so it is
/// logged once per panic.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Mutex<Store>>,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore").finish_non_exhaustive()
    }
}

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: Store) -> Self {
        SharedStore {
            inner: Arc::new(Mutex::new(store)),
        }
    }

    /// Locks the store on the current thread, recovering a poisoned lock (see the type's
    /// docs). Blocking: from async code prefer [`SharedStore::call`].
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        lock(&self.inner)
    }

    /// Runs `op` on the store on tokio's blocking pool and returns its result.
    pub async fn call<T, F>(&self, op: F) -> Result<T, LinkError>
    where
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&mut lock(&inner)).map_err(LinkError::from))
            .await
            .map_err(|e| LinkError::StoreTask(e.to_string()))?
    }
}

fn lock(inner: &Mutex<Store>) -> MutexGuard<'_, Store> {
    match inner.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            tracing::warn!(
                "a task panicked while holding the store; its transaction was rolled back, the store is used on"
            );
            inner.clear_poison();
            poisoned.into_inner()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::Timestamp;
    use vigil_store::{AuditEntry, NewCertificate, NewEnrollmentToken, RedeemError};

    fn audit(action: &str) -> AuditEntry {
        AuditEntry {
            at: Timestamp::from_millis(1),
            node: "county".into(),
            actor: "cli:root".into(),
            action: action.into(),
            target: "gw-1".into(),
            details: serde_json::Value::Null,
        }
    }

    /// Redeems the one token; `issue` runs inside the store's write transaction.
    fn redeem(
        store: &mut Store,
        issue: impl FnOnce() -> NewCertificate,
    ) -> Result<(), RedeemError<&'static str>> {
        store
            .enrollment_redeem(
                &[1; 8],
                &[1; 32],
                Timestamp::from_millis(2),
                "127.0.0.1",
                |_| Ok(((), issue(), audit("node.enroll"))),
            )
            .map(|_| ())
    }

    fn certificate() -> NewCertificate {
        NewCertificate {
            serial: "01".into(),
            node: "gw-1".into(),
            not_before: Timestamp::from_millis(0),
            not_after: Timestamp::from_millis(10),
            issued_at: Timestamp::from_millis(2),
            fingerprint: "ff".into(),
            site: None,
            kind: vigil_store::NodeKind::Gateway,
        }
    }

    /// A closure that panics inside a write transaction poisons the lock; later calls still
    /// work, on the store as it was before that transaction.
    #[tokio::test]
    async fn a_panic_mid_transaction_rolls_back_and_the_store_is_used_on() {
        let shared = SharedStore::new(Store::open_in_memory().expect("store"));
        let token = NewEnrollmentToken {
            id: [1; 8],
            secret_hash: [1; 32],
            node: "gw-1".into(),
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(100),
            created_by: "cli:root".into(),
            site: "m/p/c/k/f".into(),
            kind: vigil_store::NodeKind::Gateway,
        };
        shared
            .call(move |s| s.enrollment_token_add(&token, &audit("enroll_token.add")))
            .await
            .expect("token");

        let panicking = shared.clone();
        let joined = std::thread::spawn(move || {
            let mut store = panicking.lock();
            let _ = redeem(&mut store, || {
                panic!("a bug while the token is being redeemed")
            });
        })
        .join();
        assert!(joined.is_err(), "the closure panicked");
        assert!(shared.inner.is_poisoned());

        let (tokens, certificates, head) = shared
            .call(|s| {
                Ok((
                    s.enrollment_tokens()?,
                    s.node_certificates("gw-1")?,
                    s.audit_head()?,
                ))
            })
            .await
            .expect("the store is used on");
        assert!(
            !shared.inner.is_poisoned(),
            "the poison is cleared once recovered"
        );
        assert_eq!(tokens[0].used_at, None, "the redeem was rolled back");
        assert!(certificates.is_empty());
        assert_eq!(head.seq, 1, "only the token's audit record");

        // No transaction was left open: the next one begins and commits.
        let mut store = shared.lock();
        redeem(&mut store, certificate).expect("redeemed after the panic");
        assert_eq!(store.node_certificates("gw-1").expect("certs").len(), 1);
    }
}
