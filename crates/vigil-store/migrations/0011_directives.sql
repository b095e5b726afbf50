-- Schema version 11: directives down the tree (docs/ARCHITECTURE.md#directives).
--
-- `directives` holds every directive this node issued (`local` = 1) or received from its
-- parent (`received_from`), one row per id, written once; `record` is the directive as it
-- travels (`vigil_wire::Directive` JSON). `handled` turns 1 when this node has done its part
-- in one transaction: passed the directive to its children (a hub) or applied it (an agent),
-- and queued its own acknowledgement up (`own_outcome`).
--
-- `directive_deliveries`: the children this node passed a directive to (whose subtree
-- acknowledgements it expects).
--
-- `directive_acks`: every acknowledgement this node holds — its own and those that came up
-- from its subtree — one per (directive, node), the first one wins; `via` is the child it
-- came through (NULL for this node's own); `relayed_to` the JSON array of the children a hub
-- passed it to (the nodes whose acknowledgements are then expected too).

CREATE TABLE directives (
    id            BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    origin        TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    issued_at     INTEGER NOT NULL,
    deadline      INTEGER NOT NULL,
    record        TEXT    NOT NULL,
    local         INTEGER NOT NULL CHECK (local IN (0, 1)),
    received_from TEXT,
    received_at   INTEGER NOT NULL,
    handled       INTEGER NOT NULL DEFAULT 0 CHECK (handled IN (0, 1)),
    own_outcome   TEXT
) WITHOUT ROWID;

CREATE INDEX directives_pending ON directives (handled, received_at);
CREATE INDEX directives_issued ON directives (issued_at);

CREATE TABLE directive_deliveries (
    directive BLOB NOT NULL REFERENCES directives (id),
    child     TEXT NOT NULL,
    PRIMARY KEY (directive, child)
) WITHOUT ROWID;

CREATE TABLE directive_acks (
    directive   BLOB    NOT NULL REFERENCES directives (id),
    node        TEXT    NOT NULL,
    via         TEXT,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('applied', 'not_applicable', 'failed')),
    reason      TEXT,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    relayed_to  TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (directive, node)
) WITHOUT ROWID;
