//! WAL checkpoints off the writer's path.
//!
//! In WAL mode a commit appends the changed pages to the write-ahead log; a *checkpoint*
//! copies them back into the database file and fsyncs it, so the log can start over. By
//! default SQLite has the committing connection do that itself once the log holds 1,000
//! pages, inside its `COMMIT`: the writer (a hub's ingest) then stops for the copy and the
//! database file's fsync. A hub's ingest rewrites the same alert pages over and over, so
//! checkpointing less often also copies each page fewer times.
//!
//! A file store instead gets a **checkpointer**: a thread with its own connection to the
//! file. The writer's WAL hook wakes it after a commit once the log holds
//! [`WAKE_PAGES`] pages, and it runs a `PASSIVE` checkpoint (which never blocks the writer or
//! readers) while the writer goes on. Should it fall behind — the log past
//! [`INLINE_PAGES`] pages — the writer checkpoints itself, as SQLite would have.
//!
//! Durability is unchanged: the checkpointer's connection is `synchronous = FULL` too, and a
//! commit is durable once it is in the fsynced log, whoever copies it later. The thread
//! ends when the store's connection closes (which drops the hook and with it the thread's
//! wake-up channel).

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

use crate::store::BUSY_TIMEOUT;

/// The log size (pages) from which a commit wakes the checkpointer.
pub const WAKE_PAGES: i32 = 4_000;

/// The log size (pages) from which the writer checkpoints itself: the checkpointer has not
/// kept up (a long read keeps it from finishing, or it failed).
pub const INLINE_PAGES: i32 = 40_000;

/// Starts the checkpointer of the file at `path` and has `conn` (the store's connection, in
/// WAL mode) wake it.
pub(crate) fn install(conn: &mut Connection, path: &Path) -> rusqlite::Result<()> {
    let checkpointer = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    checkpointer.busy_timeout(BUSY_TIMEOUT)?;
    checkpointer.pragma_update(None, "synchronous", "FULL")?;
    let (wake, woken) = sync_channel::<()>(1);
    let name = path.display().to_string();
    thread::Builder::new()
        .name("vigil-checkpoint".into())
        .spawn(move || run(&checkpointer, &woken, &name))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages| {
        if pages >= INLINE_PAGES {
            // The commit has happened whatever this returns: a failure here must not
            // report it as failed.
            if let Err(error) = wal.checkpoint() {
                debug!(%error, pages, "inline checkpoint did not finish");
            }
        } else if pages >= WAKE_PAGES {
            match wake.try_send(()) {
                // Already woken and not yet run: that run covers this commit too.
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    // The checkpointer is gone: do its work here.
                    if let Err(error) = wal.checkpoint() {
                        debug!(%error, pages, "inline checkpoint did not finish");
                    }
                }
            }
        }
        Ok(())
    }))
}

/// The checkpointer's loop: one `PASSIVE` checkpoint per wake-up, until the store closes.
fn run(conn: &Connection, woken: &Receiver<()>, name: &str) {
    while woken.recv().is_ok() {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((log, copied)) => debug!(store = name, log, copied, "checkpoint"),
            Err(error) => {
                warn!(store = name, %error, "WAL checkpoint failed; the writer will checkpoint itself if the log keeps growing")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::Store;

    #[test]
    fn the_checkpointer_keeps_the_log_short_and_ends_with_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.db");
        let mut store = Store::open(&path).expect("open");
        // Well past the wake-up size: pages of 4 KiB, rows of 2 KiB.
        let payload = vec![7u8; 2048];
        for _ in 0..40 {
            let items = (0..500).map(|_| (vigil_core::Lane::Normal, payload.as_slice()));
            store.outbox_append_many("parent", items).expect("append");
        }
        // Pages reach the database file only through a checkpoint, and the writer has not
        // run one (the log is below the inline size): the checkpointer has.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&path).expect("db file").len() < 20 << 20 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint copied the log back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(store);
        let reopened = Store::open(&path).expect("reopen");
        assert_eq!(
            reopened
                .outbox_lane_state("parent", vigil_core::Lane::Normal)
                .expect("lane")
                .head_seq,
            20_000
        );
    }
}
