//! The store's one error type, [`StoreError`], and the helper that gives SQLite errors their
//! context.
//!
//! Every SQLite failure is wrapped with the operation that failed, so a log line says
//! "append to the outbox failed: database is locked" rather than a bare "database is locked".
//! Rows that cannot be read back (corrupt JSON, a column value out of range) name the table
//! and the row. Protocol mistakes the caller can make — acknowledging what was never appended,
//! a batch numbered from zero — are their own variants, so the link engine can tell them from
//! I/O trouble.

use std::path::PathBuf;

use vigil_core::{EventId, Hlc, Lane, NodeId};

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("cannot open the store at {}: {source}: check that the directory exists and is writable", path.display())]
    Open {
        /// The file (or `:memory:`).
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// An SQLite operation failed.
    #[error("store: {op} failed: {source}")]
    Sqlite {
        /// What the store was doing, in words ("append to the outbox").
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer Vigil: its schema version is beyond the
    /// migrations this build knows. Nothing was changed.
    #[error(
        "the store has schema version {found}, but this build knows only up to {known}: \
         run the Vigil version that wrote it (or newer), or restore a backup made by this one"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The latest version this build's migrations reach.
        known: i64,
    },

    /// A migration's SQL failed; the transaction was rolled back and the schema is unchanged.
    #[error("store migration to schema version {version} failed: {source}")]
    Migration {
        /// The version whose SQL failed.
        version: i64,
        /// The SQLite error.
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A stored JSON document does not parse as what it should be.
    #[error("corrupt JSON in table {table}, row {row}: {source}")]
    CorruptJson {
        /// The table holding the row.
        table: &'static str,
        /// The row's key, in words.
        row: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored column value is outside what the schema allows (a negative sequence number,
    /// an id that is not 16 bytes, an unknown lane).
    #[error("corrupt value in table {table}, row {row}: {detail}")]
    CorruptValue {
        /// The table holding the row.
        table: &'static str,
        /// The row's key, in words.
        row: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// An acknowledgement names a sequence number the outbox has not yet handed out: the
    /// peer is confused (or talks to a different store). Nothing was deleted.
    #[error(
        "outbox {link}/{lane}: acknowledgement up to {upto} is beyond the last appended \
         sequence number {head}; nothing was deleted"
    )]
    AckBeyondHead {
        /// The link.
        link: String,
        /// The lane.
        lane: Lane,
        /// The acknowledged sequence number.
        upto: u64,
        /// The last sequence number appended.
        head: u64,
    },

    /// A batch's sequence numbers are not usable: they start at 0 or run past the range
    /// SQLite can store.
    #[error(
        "batch from {peer} on lane {lane} with first_seq {first_seq} and {len} events is \
         invalid: sequence numbers start at 1 and must stay below 2^63"
    )]
    InvalidBatch {
        /// The sending node.
        peer: NodeId,
        /// The lane.
        lane: Lane,
        /// The batch's first sequence number.
        first_seq: u64,
        /// How many events it carries.
        len: usize,
    },

    /// An event's HLC stamp is so far in the future that it cannot be stored as a packed
    /// 63-bit integer (wall time at or beyond 2^47 ms, about the year 6429).
    #[error("event {event} has HLC stamp {hlc}, beyond the range the store can hold")]
    HlcOutOfRange {
        /// The event.
        event: EventId,
        /// Its stamp.
        hlc: Hlc,
    },

    /// A sequence number would pass 2^63 - 1, the largest SQLite integer.
    #[error("outbox {link}/{lane}: sequence numbers are exhausted")]
    SeqExhausted {
        /// The link.
        link: String,
        /// The lane.
        lane: Lane,
    },
}

/// Wraps rusqlite errors with the operation that failed.
pub(crate) trait SqlContext<T> {
    /// Maps an SQLite error to [`StoreError::Sqlite`] naming `op`.
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}
