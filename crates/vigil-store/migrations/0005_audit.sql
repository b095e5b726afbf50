-- Schema version 5: the audit log (DESIGN.md, "Security").
--
-- Every operator and admin action is one row, numbered 1, 2, … without gaps. Each row's
-- `hash` is SHA-256 over the canonical encoding of its other columns (see `src/audit.rs`),
-- and `prev_hash` is the previous row's `hash` (32 zero bytes for row 1), so editing,
-- removing or reordering a row breaks the chain at that row.
--
-- The triggers make the table append-only for everything that goes through SQLite
-- honestly. They are a guard against mistakes, not against someone who can write the file:
-- that is what the hash chain (and an anchor kept elsewhere) is for.

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    at        INTEGER NOT NULL,
    node      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    details   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
