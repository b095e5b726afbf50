-- Schema version 6: console users, their sign-in sessions and API tokens (DESIGN.md,
-- "Security").
--
-- No secret is stored in a form that signs anyone in: a user's password as an argon2id PHC
-- string, a session's and a token's secret as its SHA-256 (the secrets are 256 random bits,
-- so a plain hash is enough; whoever reads the file cannot present them). Roles and scopes
-- are text the hub checks (`hub/src/auth/role.rs`); times are Unix milliseconds.

CREATE TABLE users (
    name          TEXT    PRIMARY KEY NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

-- One row per signed-in browser. Expired rows are purged as sessions are created.
CREATE TABLE sessions (
    secret_hash BLOB    PRIMARY KEY NOT NULL CHECK (length(secret_hash) = 32),
    user        TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (user);

-- Tokens for feeds and scripts (`Authorization: Bearer`). A revoked token keeps its row, so
-- its name is not reused and the audit log's references to it stay meaningful.
CREATE TABLE api_tokens (
    name        TEXT    PRIMARY KEY NOT NULL,
    secret_hash BLOB    NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    role        TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    last_used   INTEGER,
    revoked_at  INTEGER
);
