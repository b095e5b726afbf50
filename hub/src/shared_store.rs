//! [`SharedStore`]: the hub's one store connection, shared by the API, the feed and the link
//! side without ever blocking the async runtime.
//!
//! `vigil-store` is synchronous (rusqlite) and every write is an fsynced transaction, which
//! can take milliseconds. So the store sits behind a `std::sync::Mutex`, and async code
//! reaches it only through [`SharedStore::call`], which runs the closure on Tokio's blocking
//! pool. One mutex means one writer at a time in this process, which is also what makes an
//! operator action's read-check-write atomic (see `action::record`).
//!
//! A panic inside a closure poisons the mutex; the store itself is still consistent (an
//! unfinished rusqlite transaction rolls back when it is dropped), so the poison is cleared
//! and the next caller proceeds.

use std::sync::{Arc, Mutex, PoisonError};

use vigil_store::Store;

/// The hub's store, shared.
#[derive(Debug, Clone)]
pub struct SharedStore(Arc<Mutex<Store>>);

/// A store closure that did not finish: it panicked, or the runtime is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("store task failed: {0}")]
pub struct StoreTaskError(String);

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: Store) -> Self {
        SharedStore(Arc::new(Mutex::new(store)))
    }

    /// The mutex itself, for a component that wraps it in its own handle (e.g.
    /// `vigil_link::SharedStore::from_arc`), so the hub keeps one connection.
    pub fn as_arc(&self) -> &Arc<Mutex<Store>> {
        &self.0
    }

    /// Runs `f` with exclusive access to the store on the blocking pool and returns what it
    /// returns. For async callers; never blocks the runtime.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreTaskError>
    where
        F: FnOnce(&mut Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.blocking(f))
            .await
            .map_err(|e| StoreTaskError(e.to_string()))
    }

    /// Runs `f` with exclusive access to the store on the calling thread. For threads that
    /// may block (a dedicated link thread, `spawn_blocking`); never call it on the runtime.
    pub fn blocking<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut store)
    }
}
