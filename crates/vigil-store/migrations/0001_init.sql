-- Schema version 1: the outbox, the inbox cursors and the alert event store.

-- One row per (link, lane): the lane's sequence counter and acknowledged position. The row
-- outlives the records it counts, so deleting acknowledged records never lets a sequence
-- number be handed out twice. The backlog counters are kept in step by every append and
-- acknowledgement, so a status report never scans the records.
CREATE TABLE outbox_lanes (
    id              INTEGER PRIMARY KEY,
    link            TEXT    NOT NULL,
    lane            INTEGER NOT NULL CHECK (lane IN (0, 1)),
    head_seq        INTEGER NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
    acked_upto      INTEGER NOT NULL DEFAULT 0 CHECK (acked_upto >= 0 AND acked_upto <= head_seq),
    backlog_records INTEGER NOT NULL DEFAULT 0 CHECK (backlog_records >= 0),
    backlog_bytes   INTEGER NOT NULL DEFAULT 0 CHECK (backlog_bytes >= 0),
    UNIQUE (link, lane)
);

-- The records not yet acknowledged: exactly the sequence numbers acked_upto+1 ..= head_seq
-- of their lane.
CREATE TABLE outbox_records (
    lane_id INTEGER NOT NULL REFERENCES outbox_lanes (id),
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    payload BLOB    NOT NULL,
    PRIMARY KEY (lane_id, seq)
);

-- The receiving side of each link: per sending peer and lane, the highest sequence number
-- whose events are committed here (what the next Ack acknowledges).
CREATE TABLE inbox_cursors (
    peer         TEXT    NOT NULL,
    lane         INTEGER NOT NULL CHECK (lane IN (0, 1)),
    applied_upto INTEGER NOT NULL CHECK (applied_upto >= 0),
    PRIMARY KEY (peer, lane)
) WITHOUT ROWID;

-- Every alert event this node holds, once each (the id is the idempotency key). `hlc` is
-- Hlc::pack, which orders like the stamp; `body` is the whole AlertEvent as JSON.
CREATE TABLE events (
    id     BLOB    PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    alert  BLOB    NOT NULL CHECK (length(alert) = 16),
    hlc    INTEGER NOT NULL CHECK (hlc >= 0),
    origin TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    body   TEXT    NOT NULL
);
-- An alert's events in fold order (HLC, event id).
CREATE INDEX events_by_alert ON events (alert, hlc, id);
-- The greatest stamp, to resume the node's clock.
CREATE INDEX events_by_hlc ON events (hlc);

-- Each alert's folded view (AlertView as JSON in `view`), with the columns queries filter
-- and sort on. `last_hlc`/`last_event_id` are the fold position of the last event applied.
CREATE TABLE alerts (
    id            BLOB    PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    key           TEXT,
    site          TEXT,
    severity      TEXT    NOT NULL,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    acknowledged  INTEGER NOT NULL CHECK (acknowledged IN (0, 1)),
    closed        INTEGER NOT NULL CHECK (closed IN (0, 1)),
    updated_at    INTEGER NOT NULL,
    last_hlc      INTEGER NOT NULL,
    last_event_id BLOB    NOT NULL REFERENCES events (id),
    event_count   INTEGER NOT NULL,
    view          TEXT    NOT NULL
);
-- The open alert of a key (a re-raise updates it rather than opening a second one).
CREATE INDEX alerts_open_by_key ON alerts (key, last_hlc, id) WHERE closed = 0;
-- The console's list, most recently updated first.
CREATE INDEX alerts_by_updated ON alerts (updated_at, last_hlc, id);
