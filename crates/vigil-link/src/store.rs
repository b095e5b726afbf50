//! [`SharedStore`]: the node's store, shared between its owner and its links, used from async
//! code without blocking the runtime.
//!
//! A store is one SQLite connection behind a mutex. The link calls it only through
//! [`SharedStore::call`], which runs the closure on tokio's blocking pool — a commit waits for
//! an fsync (`synchronous = FULL`), which must not stall the event loop. The owner may share
//! the same `SharedStore` (one connection, calls serialised by the mutex) or give the link a
//! store of its own opened on the same file (two connections, serialised by SQLite).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use vigil_store::{Store, StoreError};

use crate::error::LinkError;

/// A [`Store`] shared between tasks. Clones share the store.
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

    /// Shares a store the owner already holds behind a mutex.
    pub fn from_arc(inner: Arc<Mutex<Store>>) -> Self {
        SharedStore { inner }
    }

    /// The mutex, for owners that lock it themselves.
    pub fn as_arc(&self) -> &Arc<Mutex<Store>> {
        &self.inner
    }

    /// Locks the store on the current thread. Blocking: from async code prefer
    /// [`SharedStore::call`].
    pub fn lock(&self) -> Result<MutexGuard<'_, Store>, LinkError> {
        self.inner.lock().map_err(|_| LinkError::StorePoisoned)
    }

    /// Runs `op` on the store on tokio's blocking pool and returns its result.
    pub async fn call<T, F>(&self, op: F) -> Result<T, LinkError>
    where
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut store = inner.lock().map_err(|_| LinkError::StorePoisoned)?;
            op(&mut store).map_err(LinkError::from)
        })
        .await
        .map_err(|e| LinkError::StoreTask(e.to_string()))?
    }
}
