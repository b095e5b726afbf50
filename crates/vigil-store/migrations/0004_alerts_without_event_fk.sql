-- Schema version 4: `alerts` without the foreign key from `last_event_id` to `events`.
--
-- With the key, every write of an alert row made SQLite check the key and keep a statement
-- journal (to undo the statement if the check failed): about a sixth of a hub's ingest time.
-- The store's writer is the only one that sets `last_event_id`, and only to the id of an
-- event it has just stored or read back from `events` in the same transaction, and events
-- are never deleted: the key could never fail. `alerts` keeps every other column,
-- constraint and index, and every row.
--
-- SQLite cannot drop a foreign key in place: the table is rebuilt (create, copy, drop,
-- rename), in the migration's transaction. Nothing references `alerts`, so dropping it
-- with `foreign_keys = ON` checks nothing. The generated `origin` column is recomputed from
-- `key`, not copied.

CREATE TABLE alerts_v4 (
    id            BLOB    PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    key           TEXT,
    site          TEXT,
    severity      TEXT    NOT NULL,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    acknowledged  INTEGER NOT NULL CHECK (acknowledged IN (0, 1)),
    closed        INTEGER NOT NULL CHECK (closed IN (0, 1)),
    updated_at    INTEGER NOT NULL,
    last_hlc      INTEGER NOT NULL,
    last_event_id BLOB    NOT NULL,
    event_count   INTEGER NOT NULL,
    view          TEXT    NOT NULL,
    origin        TEXT
        GENERATED ALWAYS AS (CASE WHEN instr(key, '/') > 1 THEN substr(key, 1, instr(key, '/') - 1) END) VIRTUAL,
    shelved_until  TEXT,
    suppressed     INTEGER,
    out_of_service INTEGER,
    awaiting_reset INTEGER,
    peak_severity  TEXT
);

INSERT INTO alerts_v4 (id, key, site, severity, active, acknowledged, closed, updated_at,
                       last_hlc, last_event_id, event_count, view, shelved_until, suppressed,
                       out_of_service, awaiting_reset, peak_severity)
SELECT id, key, site, severity, active, acknowledged, closed, updated_at,
       last_hlc, last_event_id, event_count, view, shelved_until, suppressed,
       out_of_service, awaiting_reset, peak_severity
FROM alerts;

DROP TABLE alerts;
ALTER TABLE alerts_v4 RENAME TO alerts;

-- The indexes of versions 1 and 2, as they were (dropped with the old table).
CREATE INDEX alerts_open_by_key ON alerts (key, last_hlc, id) WHERE closed = 0;
CREATE INDEX alerts_by_updated ON alerts (updated_at, last_hlc, id);
CREATE INDEX alerts_open_by_updated ON alerts (updated_at, last_hlc, id) WHERE closed = 0;
CREATE INDEX alerts_by_site ON alerts (site, updated_at, last_hlc, id);
CREATE INDEX alerts_open_by_origin ON alerts (origin, site, severity, active, acknowledged)
    WHERE closed = 0;
