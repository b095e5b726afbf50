-- Schema version 8: audit trails travel up the links (README, "Audit log").
--
-- `audit_remote` holds the audit records of other nodes (this hub's children, and theirs),
-- as their origins stored them: one row per (origin, seq), written once. A record arrives
-- over the link protocol (`vigil_wire::AuditEvent`) and is inserted idempotently; a record
-- whose prev_hash does not match the hash of the origin's record before it (or whose hash
-- is not the next record's prev_hash), as held here when it arrived, is still stored, with
-- `chain_ok = 0`, and counted: `vigil-hub audit verify` names it. `via` is the child it came
-- from (the origin itself, or a hub that relayed it).
--
-- Like `audit`, the table refuses UPDATE and DELETE: a guard against mistakes, not against
-- someone who can write the file (that is what the hashes and the origin's own copy are for).
--
-- `audit_forward` is this node's own setting (one row): the outbox link its audit records are
-- queued on as they are appended (NULL: none), the node id they travel as, and the highest
-- record number queued so far, so records appended before the node had an uplink are queued
-- once when it gets one.

CREATE TABLE audit_remote (
    origin    TEXT    NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq >= 1),
    at        INTEGER NOT NULL,
    node      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    details   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    via       TEXT    NOT NULL,
    received  INTEGER NOT NULL,
    chain_ok  INTEGER NOT NULL CHECK (chain_ok IN (0, 1)),
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;

CREATE INDEX audit_remote_by_time ON audit_remote (at, origin, seq);

CREATE TRIGGER audit_remote_no_update BEFORE UPDATE ON audit_remote
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_remote_no_delete BEFORE DELETE ON audit_remote
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE audit_forward (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    link        TEXT,
    origin      TEXT,
    queued_upto INTEGER NOT NULL DEFAULT 0 CHECK (queued_upto >= 0)
);

INSERT INTO audit_forward (id, link, origin, queued_upto) VALUES (1, NULL, NULL, 0);
