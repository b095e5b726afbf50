//! [`Store`]: one connection to a node's SQLite database, configured for durability.
//!
//! Opening a store sets the pragmas every other module relies on and brings the schema up to
//! date:
//!
//! - `journal_mode = WAL`: readers do not block the writer, and a commit is one append to the
//!   write-ahead log.
//! - `synchronous = FULL`: every commit is fsynced before it returns. What the store reports
//!   as committed — and so what a link acknowledges to a peer — survives power loss, not just
//!   a crash of the process.
//! - `busy_timeout`: another connection's write lock is waited for (up to
//!   [`BUSY_TIMEOUT`]) rather than failing at once.
//! - `foreign_keys = ON`.
//! - `cache_size` of [`CACHE_KIB`]: the pages a hub's ingest rewrites stay in memory.
//! - WAL checkpoints run on a thread of their own ([`crate::checkpoint`]), not inside the
//!   writer's commits.
//! - `temp_store = MEMORY`: the statement journals SQLite keeps inside a transaction (to undo
//!   one failed statement) stay in memory instead of temporary files. They are never needed
//!   after a crash — the WAL is what makes a commit durable — so this costs no durability
//!   and saves the hub's ingest a `pwrite` per page each alert write touches.
//!
//! Every write goes through one `BEGIN IMMEDIATE` transaction, which takes the write lock up
//! front so two connections never deadlock upgrading read locks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::checkpoint;
use crate::error::{Result, SqlContext, StoreError};
use crate::migrate;
use crate::views::{TxViews, ViewCache};

/// How long a write waits for another connection's lock before failing with "database is
/// locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most memory (KiB) a store's connection keeps database pages in (`cache_size`; SQLite's
/// default is 2 MiB). A hub's ingest rewrites alert rows and index pages all over the file;
/// with them cached, a transaction neither reads them back nor spills dirty pages into the
/// log before it commits. The cache only grows as pages are used.
pub const CACHE_KIB: i64 = 32 * 1024;

/// A node's store: the outbox of each link, the inbox cursors and the alert event store, in
/// one SQLite file.
///
/// Reads take `&self`; writes take `&mut self` and are each one durable transaction. Several
/// `Store`s (threads, processes) may open the same file; SQLite serialises their writes.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: Option<PathBuf>,
    /// The alert contexts the event writer last wrote ([`crate::views`]).
    views: ViewCache,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, configures it for durability and
    /// applies pending migrations.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] for a file written by a newer Vigil.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn, true).map_err(open_err)?;
        checkpoint::install(&mut conn, path).map_err(open_err)?;
        Store::finish(conn, Some(path.to_path_buf()))
    }

    /// A private, empty in-memory store (tests, tools). Nothing in it is durable.
    pub fn open_in_memory() -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn, false).map_err(open_err)?;
        Store::finish(conn, None)
    }

    fn finish(mut conn: Connection, path: Option<PathBuf>) -> Result<Store> {
        migrate::migrate(&mut conn)?;
        Ok(Store {
            conn,
            path,
            views: ViewCache::default(),
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the database (`PRAGMA user_version`); after a successful open,
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    pub fn schema_version(&self) -> Result<i64> {
        migrate::user_version(&self.conn)
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE`); `op` names the operation in errors.
    pub(crate) fn write_tx(&mut self, op: &'static str) -> Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .op(op)
    }

    /// [`Store::write_tx`] for a transaction that writes alert events: with the alert
    /// contexts it folds into ([`crate::views`]). After the transaction commits, call
    /// [`TxViews::commit`]; dropping the views instead leaves the cache as it was.
    pub(crate) fn write_tx_views(
        &mut self,
        op: &'static str,
    ) -> Result<(Transaction<'_>, TxViews<'_>)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .op(op)?;
        let views = self.views.begin(&tx)?;
        Ok((tx, views))
    }
}

/// Sets the pragmas a store relies on. `file` selects WAL (an in-memory database has no
/// journal file to put in WAL mode).
fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode is {mode}, WAL could not be enabled (is the file on a network file system?)"
            )));
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", CACHE_KIB.saturating_neg())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(store: &Store, name: &str) -> String {
        store
            .conn
            .pragma_query_value(None, name, |row| {
                Ok(match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                })
            })
            .expect("pragma")
    }

    #[test]
    fn a_file_store_is_durable_and_checks_foreign_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path).expect("open");
        assert_eq!(store.path(), Some(path.as_path()));
        assert_eq!(pragma(&store, "journal_mode"), "wal");
        assert_eq!(pragma(&store, "synchronous"), "2", "FULL");
        assert_eq!(pragma(&store, "foreign_keys"), "1");
        assert_eq!(pragma(&store, "temp_store"), "2", "MEMORY");
        assert_eq!(pragma(&store, "busy_timeout"), "5000");
        assert_eq!(
            store.schema_version().expect("version"),
            crate::SCHEMA_VERSION
        );
    }

    #[test]
    fn opening_a_directory_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("no-such-dir").join("vigil.db");
        let err = Store::open(&missing).expect_err("parent directory missing");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn in_memory_store_is_migrated() {
        let store = Store::open_in_memory().expect("open");
        assert_eq!(store.path(), None);
        assert_eq!(
            store.schema_version().expect("version"),
            crate::SCHEMA_VERSION
        );
    }
}
