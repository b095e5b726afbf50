-- Schema version 10: site bindings (docs/ARCHITECTURE.md#site-bindings-and-admission).
--
-- A node is bound to a site subtree when its enrollment token is issued
-- (`vigil-hub enroll-token --node ID --site SITE`): the site is kept with the token and
-- with the certificate issued for it. Tokens and certificates from before this version
-- have no site (NULL): such a node is bound only once it is enrolled again or declared in
-- hub.toml (`[[child]]`).
ALTER TABLE enrollment_tokens ADD COLUMN site TEXT;
ALTER TABLE node_certificates ADD COLUMN site TEXT;
-- What the node said it is when it enrolled (`"kind"` of the request): a hub may report
-- the nodes enrolled below it; a gateway speaks only as itself. NULL: issued before kinds.
ALTER TABLE node_certificates ADD COLUMN kind TEXT CHECK (kind IS NULL OR kind IN ('hub', 'gateway'));

-- Every node this hub knows the site of, and how it knows it:
--   enrolled  the node enrolled here (its certificate's site); `via` and `parent` NULL;
--   config    a child declared in hub.toml (`[[child]]`, a child of an external broker);
--   reported  a node enrolled further down, reported in the status of the direct child
--             `via`, enrolled with `parent`.
-- A node has one binding here: the one it speaks under to this hub.
-- `kind` ('hub' or 'gateway') is known for a direct child (enrolled or config) and NULL
-- for a reported node: a gateway child speaks only as itself.
CREATE TABLE node_bindings (
    node       TEXT    PRIMARY KEY NOT NULL,
    site       TEXT    NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('enrolled', 'config', 'reported')),
    via        TEXT,
    parent     TEXT,
    kind       TEXT CHECK (kind IN ('hub', 'gateway')),
    updated_at INTEGER NOT NULL,
    CHECK ((source = 'reported') = (kind IS NULL))
) WITHOUT ROWID;

CREATE INDEX node_bindings_by_via ON node_bindings (via) WHERE via IS NOT NULL;

-- The direct child each alert came through (its first admitted event): actions on an
-- alert are accepted only from the child it came through.
CREATE TABLE alert_via (
    alert BLOB PRIMARY KEY NOT NULL CHECK (length(alert) = 16),
    via   TEXT NOT NULL
) WITHOUT ROWID;
