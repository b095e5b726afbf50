//! Versioned schema migrations.
//!
//! The schema is a list of `(version, SQL)` steps, applied in order. The version a database
//! has reached is SQLite's `PRAGMA user_version` (0 for a new file). On open, every step
//! above that version runs inside one write transaction together with the version bump, so a
//! crash mid-migration leaves the previous schema intact and the next open tries again.
//!
//! A file whose version is above the last step this build knows was written by a newer Vigil;
//! opening it is [`StoreError::SchemaTooNew`] and changes nothing, rather than running old code
//! against a schema it does not understand.
//!
//! Steps are append-only: a released step is never edited, a change is a new step.

use rusqlite::{Connection, TransactionBehavior};
use tracing::info;

use crate::error::{Result, SqlContext, StoreError};

/// One schema step: the SQL that takes the schema from `version - 1` to `version`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The schema version after this step (1, 2, … without gaps).
    pub(crate) version: i64,
    /// The statements of the step. No `BEGIN`/`COMMIT`: the runner owns the transaction.
    pub(crate) sql: &'static str,
}

/// Every step of the schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/0002_alert_queries.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/0003_alert_write_cost.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/0004_alerts_without_event_fk.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/0005_audit.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/0006_users.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/0007_enrollment.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/0008_audit_remote.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../migrations/0009_alert_order_on_closed.sql"),
    },
    Migration {
        version: 10,
        sql: include_str!("../migrations/0010_node_bindings.sql"),
    },
    Migration {
        version: 11,
        sql: include_str!("../migrations/0011_directives.sql"),
    },
    Migration {
        version: 12,
        sql: include_str!("../migrations/0012_clock_skew.sql"),
    },
    Migration {
        version: 13,
        sql: include_str!("../migrations/0013_token_kind.sql"),
    },
    Migration {
        version: 14,
        sql: include_str!("../migrations/0014_ancestors.sql"),
    },
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = latest(MIGRATIONS);

const fn latest(migrations: &[Migration]) -> i64 {
    match migrations.last() {
        Some(m) => m.version,
        None => 0,
    }
}

/// Brings the database up to [`SCHEMA_VERSION`]; returns the version it is now at.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64> {
    migrate_with(conn, MIGRATIONS)
}

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .op("read the schema version")
}

/// Applies the steps of `migrations` above the database's version, all in one transaction.
pub(crate) fn migrate_with(conn: &mut Connection, migrations: &[Migration]) -> Result<i64> {
    let known = latest(migrations);
    let check = |found: i64| {
        if found > known {
            Err(StoreError::SchemaTooNew { found, known })
        } else {
            Ok(found)
        }
    };
    // The common case, an up-to-date file, takes no write lock.
    if check(user_version(conn)?)? == known {
        return Ok(known);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .op("begin the schema migration")?;
    // Another process may have migrated between the check and the lock.
    let current = check(user_version(&tx)?)?;
    for step in migrations.iter().filter(|m| m.version > current) {
        let failed = |source| StoreError::Migration {
            version: step.version,
            source,
        };
        tx.execute_batch(step.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(failed)?;
        info!(version = step.version, "store schema migrated");
    }
    tx.commit().op("commit the schema migration")?;
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .expect("query sqlite_schema")
            == 1
    }

    #[test]
    fn steps_are_numbered_one_up_without_gaps() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i as i64 + 1, "step {i}");
        }
        assert_eq!(SCHEMA_VERSION, MIGRATIONS.len() as i64);
    }

    #[test]
    fn applies_only_the_steps_above_the_current_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        let v1 = [Migration {
            version: 1,
            sql: "CREATE TABLE a (x INTEGER);",
        }];
        assert_eq!(migrate_with(&mut conn, &v1).expect("v1"), 1);
        conn.execute("INSERT INTO a VALUES (42)", [])
            .expect("insert");

        // Re-running step 1 would fail (table exists): only step 2 may run.
        let v2 = [
            v1[0],
            Migration {
                version: 2,
                sql: "CREATE TABLE b (y INTEGER); INSERT INTO b SELECT x FROM a;",
            },
        ];
        assert_eq!(migrate_with(&mut conn, &v2).expect("v2"), 2);
        assert_eq!(user_version(&conn).expect("version"), 2);
        let y: i64 = conn
            .query_row("SELECT y FROM b", [], |row| row.get(0))
            .expect("b has the row");
        assert_eq!(y, 42);
        // Up to date: a no-op.
        assert_eq!(migrate_with(&mut conn, &v2).expect("again"), 2);
    }

    #[test]
    fn a_failing_step_rolls_back_every_step_of_the_run() {
        let mut conn = Connection::open_in_memory().expect("open");
        let steps = [
            Migration {
                version: 1,
                sql: "CREATE TABLE a (x INTEGER);",
            },
            Migration {
                version: 2,
                sql: "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;",
            },
        ];
        let err = migrate_with(&mut conn, &steps).expect_err("step 2 fails");
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err}"
        );
        assert_eq!(user_version(&conn).expect("version"), 0);
        assert!(!table_exists(&conn, "a"), "step 1 rolled back too");
        assert!(!table_exists(&conn, "b"));
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set version");
        let err = migrate(&mut conn).expect_err("too new");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err}"
        );
        assert!(!table_exists(&conn, "outbox_lanes"));
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION + 1);
    }

    #[test]
    fn the_real_schema_applies_to_an_empty_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut conn).expect("migrate"), SCHEMA_VERSION);
        for table in [
            "outbox_lanes",
            "outbox_records",
            "inbox_cursors",
            "events",
            "alerts",
            "audit",
            "users",
            "sessions",
            "api_tokens",
            "enrollment_tokens",
            "node_certificates",
        ] {
            assert!(table_exists(&conn, table), "{table}");
        }
    }
}
