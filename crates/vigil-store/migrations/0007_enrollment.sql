-- Schema version 7: enrollment tokens and the certificates a hub's CA issued to its
-- children (DESIGN.md, "Security").
--
-- A token's secret is kept only as its SHA-256 (256 random bits: a plain hash is enough;
-- whoever reads the file cannot present it). A token is used once: `used_at` and `used_by`
-- are set in the transaction that records the certificate it was exchanged for. Rows are
-- kept after use or expiry, so the audit log's references to them stay meaningful.
-- Serials are lowercase hex without leading zeros; times are Unix milliseconds.

CREATE TABLE enrollment_tokens (
    id          BLOB    PRIMARY KEY NOT NULL CHECK (length(id) = 8),
    secret_hash BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    node        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    used_at     INTEGER,
    used_by     TEXT
);

-- Every certificate issued to a child. A revoked certificate keeps its row: the revoked
-- serials are what the broker gate refuses (loaded at start, re-read while running) and
-- what an external broker's CRL lists.
CREATE TABLE node_certificates (
    serial      TEXT    PRIMARY KEY NOT NULL,
    node        TEXT    NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    fingerprint TEXT    NOT NULL,
    token_id    BLOB,
    revoked_at  INTEGER,
    revoked_by  TEXT
);

CREATE INDEX node_certificates_by_node ON node_certificates (node);
CREATE INDEX node_certificates_revoked ON node_certificates (revoked_at)
    WHERE revoked_at IS NOT NULL;
