//! The writer's cache of alert contexts: each alert's folded view and peak severity as the
//! store last wrote them, so that folding a new event does not read and parse the alert's
//! row again.
//!
//! The `alerts` row stays the durable copy; the cache only saves reading it back. It is kept
//! right on every path that writes an alert row, because there is one: the event writer
//! ([`crate::events`]), which every way of adding events goes through (a child's batches, a
//! parent's, local events, operator actions and resets). The rules:
//!
//! - a write transaction works on a [`TxViews`]: what it folds is staged there, and joins
//!   the cache only once the transaction has committed ([`TxViews::commit`]). A transaction
//!   that fails or is rolled back leaves the cache as it was, like the file;
//! - a commit by **another connection** (another `Store` on the same file, a tool) may have
//!   changed any row: the cache is dropped whole when `PRAGMA data_version` says so, checked
//!   at the start of each write transaction, with the write lock held (no other connection
//!   can commit between the check and the end of the transaction);
//! - it holds at most [`CAPACITY`] alerts; past that, the less recently used half goes.
//!
//! A row damaged by hand through the store's own connection is not seen while the alert is
//! cached; the next event rewrites the row from the cached view anyway.

use std::collections::HashMap;

use rusqlite::Connection;
use vigil_core::AlertId;

use crate::context::AlertContext;
use crate::error::{Result, SqlContext};

/// The most alerts the cache holds. An alert's context is about a kilobyte, so a full cache
/// takes some 30 MiB; a hub whose children keep more alerts busy than this reads the rest
/// from their rows, as it would without a cache.
pub const CAPACITY: usize = 32_768;

/// One cached alert.
#[derive(Debug)]
struct Entry {
    context: AlertContext,
    /// When it was last used ([`ViewCache::tick`]).
    used: u64,
}

/// The committed alert contexts of one connection; see the module docs.
#[derive(Debug)]
pub(crate) struct ViewCache {
    entries: HashMap<AlertId, Entry>,
    /// Counts uses, for the recency of entries.
    tick: u64,
    capacity: usize,
    /// `PRAGMA data_version` at the start of the last write transaction: another
    /// connection's commit since then changes it.
    data_version: Option<i64>,
}

impl Default for ViewCache {
    fn default() -> Self {
        ViewCache::with_capacity(CAPACITY)
    }
}

impl ViewCache {
    pub(crate) fn with_capacity(capacity: usize) -> ViewCache {
        ViewCache {
            entries: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
            data_version: None,
        }
    }

    /// Starts a write transaction's view of the cache. `conn` must be inside the write
    /// transaction (`BEGIN IMMEDIATE`), so no other connection commits until it ends.
    pub(crate) fn begin<'c>(&'c mut self, conn: &Connection) -> Result<TxViews<'c>> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .op("read the data version")?;
        if self.data_version != Some(version) {
            self.entries.clear();
            self.data_version = Some(version);
        }
        Ok(TxViews {
            cache: self,
            staged: HashMap::new(),
        })
    }

    /// How many alerts are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn insert(&mut self, context: AlertContext) {
        self.tick += 1;
        let used = self.tick;
        self.entries
            .insert(context.view.id, Entry { context, used });
        if self.entries.len() > self.capacity {
            self.evict();
        }
    }

    /// Drops the less recently used half of the entries.
    fn evict(&mut self) {
        let mut uses: Vec<u64> = self.entries.values().map(|e| e.used).collect();
        let middle = uses.len() / 2;
        let (_, &mut cut, _) = uses.select_nth_unstable(middle);
        self.entries.retain(|_, e| e.used >= cut);
    }
}

/// The cache as one write transaction sees it: the alerts it has folded so far (staged),
/// over the committed cache.
#[derive(Debug)]
pub(crate) struct TxViews<'c> {
    cache: &'c mut ViewCache,
    staged: HashMap<AlertId, AlertContext>,
}

impl TxViews<'_> {
    /// Takes `alert`'s context out to fold into it (it is [`put`](Self::put) back
    /// after): the transaction's own if it has folded the alert, else the committed one.
    /// `None` when neither holds it: the caller reads the row.
    pub(crate) fn take(&mut self, alert: AlertId) -> Option<AlertContext> {
        if let Some(context) = self.staged.remove(&alert) {
            return Some(context);
        }
        // Out of the committed cache too: if the transaction fails, the alert is read from
        // its row next time, which the rollback left as it was.
        self.cache.entries.remove(&alert).map(|e| e.context)
    }

    /// Stages the context an alert's row was just written from.
    /// Room for `additional` more staged alerts.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.staged.reserve(additional);
    }

    pub(crate) fn put(&mut self, context: AlertContext) {
        self.staged.insert(context.view.id, context);
    }

    /// The context of an alert this transaction folded.
    pub(crate) fn staged(&self, alert: &AlertId) -> Option<&AlertContext> {
        self.staged.get(alert)
    }

    /// The transaction committed: what it staged joins the cache.
    pub(crate) fn commit(self) {
        for (_, context) in self.staged {
            self.cache.insert(context);
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::AlertView;

    use super::*;

    fn context(n: u8) -> AlertContext {
        AlertContext {
            view: AlertView::empty(AlertId::from_bytes([n; 16])),
            peak_severity: None,
        }
    }

    #[test]
    fn only_committed_transactions_fill_the_cache() {
        let conn = Connection::open_in_memory().expect("open");
        let mut cache = ViewCache::default();
        let mut tx = cache.begin(&conn).expect("begin");
        tx.put(context(1));
        assert!(tx.staged(&AlertId::from_bytes([1; 16])).is_some());
        drop(tx); // rolled back
        assert_eq!(cache.len(), 0);
        let mut tx = cache.begin(&conn).expect("begin");
        tx.put(context(1));
        tx.commit();
        let mut tx = cache.begin(&conn).expect("begin");
        assert!(tx.take(AlertId::from_bytes([1; 16])).is_some());
        // Taken and not put back: a failed transaction leaves it uncached.
        drop(tx);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn another_connections_commit_empties_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.db");
        let conn = Connection::open(&path).expect("open");
        let other = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (x)").expect("table");
        let mut cache = ViewCache::default();
        let mut tx = cache.begin(&conn).expect("begin");
        tx.put(context(1));
        tx.commit();
        // Our own commits do not change the data version.
        conn.execute_batch("INSERT INTO t VALUES (1)")
            .expect("insert");
        cache.begin(&conn).expect("begin").commit();
        assert_eq!(cache.len(), 1);
        other
            .execute_batch("INSERT INTO t VALUES (2)")
            .expect("insert");
        cache.begin(&conn).expect("begin").commit();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_keeps_the_recently_used_half() {
        let conn = Connection::open_in_memory().expect("open");
        let mut cache = ViewCache::with_capacity(4);
        for n in 1..=5 {
            let mut tx = cache.begin(&conn).expect("begin");
            tx.put(context(n));
            tx.commit();
        }
        assert!(cache.len() <= 4, "{}", cache.len());
        let mut tx = cache.begin(&conn).expect("begin");
        assert!(
            tx.take(AlertId::from_bytes([5; 16])).is_some(),
            "newest kept"
        );
        assert!(
            tx.take(AlertId::from_bytes([1; 16])).is_none(),
            "oldest gone"
        );
    }
}
