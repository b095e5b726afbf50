//! Looking at a store file without changing it, for the `check` commands: whether it exists,
//! its schema version against this build's, and SQLite's own consistency check. Opened
//! read-only: no migration runs, nothing is created, a running node is not disturbed.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, SqlContext};
use crate::migrate::SCHEMA_VERSION;

/// What [`inspect`] found in an existing store file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The file's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// The version this build writes ([`SCHEMA_VERSION`]): a file below it is migrated at
    /// the next open, one above it was written by a newer build and is refused.
    pub known_version: i64,
    /// The first problem `PRAGMA quick_check` reports, or `None` when it says `ok`.
    pub damage: Option<String>,
}

impl Inspection {
    /// Whether this build can open the file (it is not from a newer build, not damaged).
    pub fn usable(&self) -> bool {
        self.schema_version <= self.known_version && self.damage.is_none()
    }
}

/// Inspects the store at `path`; `None` when there is no file yet (a node creates it at its
/// first start).
pub fn inspect(path: &Path) -> Result<Option<Inspection>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .op("open the store read-only")?;
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .op("read the schema version")?;
    let first: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .op("check the store")?;
    Ok(Some(Inspection {
        schema_version,
        known_version: SCHEMA_VERSION,
        damage: (first != "ok").then_some(first),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_missing_file_is_none_and_a_fresh_store_is_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.db");
        assert_eq!(inspect(&path).expect("inspect"), None);
        drop(Store::open(&path).expect("open"));
        let found = inspect(&path).expect("inspect").expect("a file");
        assert_eq!(found.schema_version, SCHEMA_VERSION);
        assert!(found.usable(), "{found:?}");
    }

    #[test]
    fn a_file_from_a_newer_build_is_not_usable_and_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.db");
        drop(Store::open(&path).expect("open"));
        {
            let conn = Connection::open(&path).expect("raw");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("bump");
        }
        let found = inspect(&path).expect("inspect").expect("a file");
        assert_eq!(found.schema_version, SCHEMA_VERSION + 1);
        assert!(!found.usable());
        // Read-only: still the newer version.
        assert_eq!(
            inspect(&path)
                .expect("again")
                .expect("a file")
                .schema_version,
            SCHEMA_VERSION + 1
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.db");
        std::fs::write(
            &path,
            b"not a database at all, just some text that is long enough",
        )
        .expect("write");
        assert!(inspect(&path).is_err());
    }
}
