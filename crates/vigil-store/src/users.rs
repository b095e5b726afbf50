//! Console users, their sign-in sessions and API tokens
//! (docs/ARCHITECTURE.md#users-roles-and-scope; schema version 6).
//!
//! The store keeps the rows; the hub owns the policy (what a role may do, when a session
//! expires, how a password is hashed and checked). What the store guarantees:
//!
//! - **no usable secret at rest**: a password arrives here already hashed (an argon2id PHC
//!   string), a session's or a token's secret as its SHA-256 — the lookup key;
//! - **admin actions are audited in the same transaction** as the change they describe
//!   ([`Store::user_add`], [`Store::user_disable`], [`Store::token_add`],
//!   [`Store::token_revoke`]), as operator actions are ([`Store::record_action`]); so is a
//!   sign-in ([`Store::session_create`]);
//! - **disabling a user ends their sessions** at once (the rows go with the change).
//!
//! Roles and scopes are stored as text: the store does not interpret them.

use rusqlite::{params, OptionalExtension, Row};
use vigil_core::{SitePath, Timestamp};

use crate::audit::{self, AuditEntry, AuditRecord};
use crate::error::{SqlContext, StoreError};
use crate::store::Store;

/// Why a user or token change was not made.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user of that name exists already.
    #[error("a user named {0:?} exists already")]
    UserExists(String),
    /// No user of that name.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// A token of that name exists already (revoked ones too: names are not reused).
    #[error("a token named {0:?} exists already (names of revoked tokens are not reused)")]
    TokenExists(String),
    /// No token of that name.
    #[error("no token named {0:?}")]
    NoSuchToken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The sign-in name.
    pub name: String,
    /// The password as an argon2id PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
    /// The role, as the hub names it (`operator`, …).
    pub role: String,
    /// The subtree of the network the user sees and acts on.
    pub scope: SitePath,
    /// When the user was added.
    pub created_at: Timestamp,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The sign-in name.
    pub name: String,
    /// The password as an argon2id PHC string.
    pub password_hash: String,
    /// The role, as stored.
    pub role: String,
    /// The subtree the user sees and acts on, as stored (checked by the hub).
    pub scope: String,
    /// When the user was added.
    pub created_at: Timestamp,
    /// A disabled user cannot sign in and has no sessions.
    pub disabled: bool,
}

/// A session to create at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the session's secret (the cookie's value).
    pub secret_hash: [u8; 32],
    /// The signed-in user.
    pub user: String,
    /// The CSRF token every state-changing request of the session must carry.
    pub csrf: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it ends whatever happens (the absolute expiry).
    pub expires_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the session's secret.
    pub secret_hash: [u8; 32],
    /// The signed-in user.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its absolute expiry.
    pub expires_at: Timestamp,
    /// When it was last used (kept to within a touch interval, see [`Store::session_touch`]).
    pub last_seen: Timestamp,
}

/// An API token to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The token's name (what the audit log names as its actor).
    pub name: String,
    /// SHA-256 of the token's secret.
    pub secret_hash: [u8; 32],
    /// The role, as the hub names it.
    pub role: String,
    /// The subtree the token sees and acts on.
    pub scope: SitePath,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

/// A stored API token (its secret is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token's name.
    pub name: String,
    /// The role, as stored.
    pub role: String,
    /// The scope, as stored.
    pub scope: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was last presented (kept to within a touch interval).
    pub last_used: Option<Timestamp>,
    /// When it was revoked; a revoked token signs nothing in.
    pub revoked_at: Option<Timestamp>,
}

const USER_COLUMNS: &str = "name, password_hash, role, scope, created_at, disabled";
const TOKEN_COLUMNS: &str = "name, role, scope, created_at, expires_at, last_used, revoked_at";

fn user_row(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        name: row.get(at)?,
        password_hash: row.get(at + 1)?,
        role: row.get(at + 2)?,
        scope: row.get(at + 3)?,
        created_at: Timestamp::from_millis(row.get(at + 4)?),
        disabled: row.get::<_, i64>(at + 5)? != 0,
    })
}

fn token_row(row: &Row<'_>) -> rusqlite::Result<Token> {
    let time = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
    };
    Ok(Token {
        name: row.get(0)?,
        role: row.get(1)?,
        scope: row.get(2)?,
        created_at: Timestamp::from_millis(row.get(3)?),
        expires_at: time(4)?,
        last_used: time(5)?,
        revoked_at: time(6)?,
    })
}

fn hash_from_sql(bytes: Vec<u8>, table: &'static str) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::CorruptValue {
        table,
        row: "secret_hash".to_owned(),
        detail: "not 32 bytes".to_owned(),
    })
}

impl Store {
    /// Adds `user` and its audit record in one transaction; a taken name is
    /// [`UserError::UserExists`].
    pub fn user_add(
        &mut self,
        user: &NewUser,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, UserError> {
        let tx = self.write_tx("begin adding a user")?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [&user.name],
                |row| row.get(0),
            )
            .op("look up a user")?;
        if exists {
            return Err(UserError::UserExists(user.name.clone()));
        }
        tx.execute(
            "INSERT INTO users (name, password_hash, role, scope, created_at, disabled)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)",
            params![
                user.name,
                user.password_hash,
                user.role,
                user.scope.as_str(),
                user.created_at.as_millis()
            ],
        )
        .op("add a user")?;
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit adding a user")?;
        Ok(record)
    }

    /// The user named `name`, disabled or not.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))
            .and_then(|mut stmt| stmt.query_row([name], |row| user_row(row, 0)).optional())
            .op("look up a user")
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.conn
            .prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .and_then(|mut stmt| {
                stmt.query_map([], |row| user_row(row, 0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list users")
    }

    /// Disables the user `name` and ends their sessions, with its audit record, in one
    /// transaction. Disabling a disabled user changes nothing but is audited all the same.
    pub fn user_disable(
        &mut self,
        name: &str,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, UserError> {
        let tx = self.write_tx("begin disabling a user")?;
        let changed = tx
            .execute("UPDATE users SET disabled = 1 WHERE name = ?1", [name])
            .op("disable a user")?;
        if changed == 0 {
            return Err(UserError::NoSuchUser(name.to_owned()));
        }
        tx.execute("DELETE FROM sessions WHERE user = ?1", [name])
            .op("end a disabled user's sessions")?;
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit disabling a user")?;
        Ok(record)
    }

    /// Creates a session at sign-in, together with the sign-in's audit record, and drops
    /// the sessions that have ended: past their absolute expiry at `session.created_at`, or
    /// unused since `idle_before`.
    pub fn session_create(
        &mut self,
        session: &NewSession,
        idle_before: Timestamp,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, StoreError> {
        let tx = self.write_tx("begin a sign-in")?;
        tx.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen < ?2",
            params![session.created_at.as_millis(), idle_before.as_millis()],
        )
        .op("drop ended sessions")?;
        tx.execute(
            "INSERT INTO sessions (secret_hash, user, csrf, created_at, expires_at, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
            params![
                &session.secret_hash[..],
                session.user,
                session.csrf,
                session.created_at.as_millis(),
                session.expires_at.as_millis()
            ],
        )
        .op("create a session")?;
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit a sign-in")?;
        Ok(record)
    }

    /// The session whose secret hashes to `secret_hash`, with its user; whether it is still
    /// good is the caller's judgement (expiry, idle time, a disabled user).
    pub fn session(&self, secret_hash: &[u8; 32]) -> Result<Option<(Session, User)>, StoreError> {
        let found = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.secret_hash, s.user, s.csrf, s.created_at, s.expires_at, s.last_seen,
                        {}
                 FROM sessions s JOIN users u ON u.name = s.user
                 WHERE s.secret_hash = ?1",
                USER_COLUMNS
                    .split(", ")
                    .map(|c| format!("u.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .and_then(|mut stmt| {
                stmt.query_row([&secret_hash[..]], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                        user_row(row, 6)?,
                    ))
                })
                .optional()
            })
            .op("look up a session")?;
        let Some((hash, user_name, csrf, created, expires, seen, user)) = found else {
            return Ok(None);
        };
        Ok(Some((
            Session {
                secret_hash: hash_from_sql(hash, "sessions")?,
                user: user_name,
                csrf,
                created_at: Timestamp::from_millis(created),
                expires_at: Timestamp::from_millis(expires),
                last_seen: Timestamp::from_millis(seen),
            },
            user,
        )))
    }

    /// Records that the session was used at `now` (the idle expiry counts from here).
    pub fn session_touch(
        &mut self,
        secret_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET last_seen = max(last_seen, ?2) WHERE secret_hash = ?1",
                params![&secret_hash[..], now.as_millis()],
            )
            .op("touch a session")?;
        Ok(())
    }

    /// Ends a session (sign-out, or one found expired), with `audit` when given, in one
    /// transaction. Returns whether it existed.
    pub fn session_delete(
        &mut self,
        secret_hash: &[u8; 32],
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        let tx = self.write_tx("begin ending a session")?;
        let deleted = tx
            .execute(
                "DELETE FROM sessions WHERE secret_hash = ?1",
                [&secret_hash[..]],
            )
            .op("end a session")?;
        if let Some(audit) = audit {
            audit::append_in(&tx, audit)?;
        }
        tx.commit().op("commit ending a session")?;
        Ok(deleted > 0)
    }

    /// Sets a session's absolute expiry (tools and tests that age a session).
    pub fn session_set_expiry(
        &mut self,
        secret_hash: &[u8; 32],
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE sessions SET expires_at = ?2 WHERE secret_hash = ?1",
                params![&secret_hash[..], expires_at.as_millis()],
            )
            .op("set a session's expiry")?;
        Ok(changed > 0)
    }

    /// How many sessions are stored (ended ones not yet dropped included).
    pub fn session_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
            .op("count sessions")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Adds an API token and its audit record in one transaction; a taken name (revoked
    /// tokens' included) is [`UserError::TokenExists`].
    pub fn token_add(
        &mut self,
        token: &NewToken,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, UserError> {
        let tx = self.write_tx("begin adding a token")?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1)",
                [&token.name],
                |row| row.get(0),
            )
            .op("look up a token")?;
        if exists {
            return Err(UserError::TokenExists(token.name.clone()));
        }
        tx.execute(
            "INSERT INTO api_tokens (name, secret_hash, role, scope, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.name,
                &token.secret_hash[..],
                token.role,
                token.scope.as_str(),
                token.created_at.as_millis(),
                token.expires_at.map(Timestamp::as_millis)
            ],
        )
        .op("add a token")?;
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit adding a token")?;
        Ok(record)
    }

    /// The token whose secret hashes to `secret_hash`, revoked or expired ones included.
    pub fn token_by_secret(&self, secret_hash: &[u8; 32]) -> Result<Option<Token>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([&secret_hash[..]], token_row).optional())
            .op("look up a token")
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], token_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list tokens")
    }

    /// Records that the token `name` was presented at `now`.
    pub fn token_touch(&mut self, name: &str, now: Timestamp) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE api_tokens SET last_used = max(coalesce(last_used, 0), ?2) WHERE name = ?1",
                params![name, now.as_millis()],
            )
            .op("touch a token")?;
        Ok(())
    }

    /// Revokes the token `name` at `now`, with its audit record, in one transaction. A token
    /// revoked before keeps its first revocation time.
    pub fn token_revoke(
        &mut self,
        name: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, UserError> {
        let tx = self.write_tx("begin revoking a token")?;
        let changed = tx
            .execute(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE name = ?1",
                params![name, now.as_millis()],
            )
            .op("revoke a token")?;
        if changed == 0 {
            return Err(UserError::NoSuchToken(name.to_owned()));
        }
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit revoking a token")?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditReport;

    const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

    fn entry(action: &str, target: &str) -> AuditEntry {
        AuditEntry {
            at: T0,
            node: "county-baiyun".into(),
            actor: "cli:root".into(),
            action: action.into(),
            target: target.into(),
            details: serde_json::json!({}),
        }
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: "operator".into(),
            scope: SitePath::new("ministry/gd").expect("site"),
            created_at: T0,
        }
    }

    #[test]
    fn users_are_added_once_listed_and_disabled_with_their_sessions() {
        let mut store = Store::open_in_memory().expect("open");
        store
            .user_add(&new_user("li.na"), &entry("user_add", "li.na"))
            .expect("add");
        assert!(matches!(
            store.user_add(&new_user("li.na"), &entry("user_add", "li.na")),
            Err(UserError::UserExists(_))
        ));
        store
            .user_add(&new_user("a.b"), &entry("user_add", "a.b"))
            .expect("add");
        let names: Vec<String> = store
            .users()
            .expect("list")
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["a.b", "li.na"]);
        let u = store.user("li.na").expect("read").expect("exists");
        assert_eq!(
            (u.role.as_str(), u.scope.as_str()),
            ("operator", "ministry/gd")
        );
        assert!(!u.disabled);

        let hash = [7u8; 32];
        store
            .session_create(
                &NewSession {
                    secret_hash: hash,
                    user: "li.na".into(),
                    csrf: "c".into(),
                    created_at: T0,
                    expires_at: T0.plus_millis(1000),
                },
                T0,
                &entry("sign_in", "li.na"),
            )
            .expect("session");
        let (s, u) = store.session(&hash).expect("read").expect("exists");
        assert_eq!(
            (s.user.as_str(), s.last_seen, u.name.as_str()),
            ("li.na", T0, "li.na")
        );
        store
            .session_touch(&hash, T0.plus_millis(5))
            .expect("touch");
        assert_eq!(
            store
                .session(&hash)
                .expect("read")
                .expect("exists")
                .0
                .last_seen,
            T0.plus_millis(5)
        );
        store
            .user_disable("li.na", &entry("user_disable", "li.na"))
            .expect("disable");
        assert!(store.user("li.na").expect("read").expect("exists").disabled);
        assert!(
            store.session(&hash).expect("read").is_none(),
            "sessions ended"
        );
        assert!(matches!(
            store.user_disable("nobody", &entry("user_disable", "nobody")),
            Err(UserError::NoSuchUser(_))
        ));
        // Every change is in the chain; the refused ones are not.
        let AuditReport::Intact { records, .. } = store.audit_verify().expect("verify") else {
            panic!("intact");
        };
        assert_eq!(records, 4);
    }

    #[test]
    fn ended_sessions_are_dropped_at_the_next_sign_in() {
        let mut store = Store::open_in_memory().expect("open");
        store
            .user_add(&new_user("li.na"), &entry("user_add", "li.na"))
            .expect("add");
        let session = |n: u8, at: Timestamp, expires: Timestamp| NewSession {
            secret_hash: [n; 32],
            user: "li.na".into(),
            csrf: "c".into(),
            created_at: at,
            expires_at: expires,
        };
        let e = entry("sign_in", "li.na");
        store
            .session_create(&session(1, T0, T0.plus_millis(10)), T0, &e)
            .expect("1");
        store
            .session_create(&session(2, T0, T0.plus_millis(1000)), T0, &e)
            .expect("2");
        assert_eq!(store.session_count().expect("count"), 2);
        // At T0+20: session 1 is past its expiry, session 2 idle since before T0+1.
        store
            .session_create(
                &session(3, T0.plus_millis(20), T0.plus_millis(1000)),
                T0.plus_millis(1),
                &e,
            )
            .expect("3");
        assert_eq!(store.session_count().expect("count"), 1);
        assert!(store.session(&[3; 32]).expect("read").is_some());
        assert!(store.session_delete(&[3; 32], Some(&e)).expect("delete"));
        assert!(!store.session_delete(&[3; 32], None).expect("delete"));
    }

    #[test]
    fn tokens_are_found_by_secret_touched_and_revoked_once() {
        let mut store = Store::open_in_memory().expect("open");
        let token = NewToken {
            name: "cap-feed".into(),
            secret_hash: [9; 32],
            role: "viewer".into(),
            scope: SitePath::new("ministry").expect("site"),
            created_at: T0,
            expires_at: Some(T0.plus_millis(1000)),
        };
        store
            .token_add(&token, &entry("token_add", "cap-feed"))
            .expect("add");
        assert!(matches!(
            store.token_add(&token, &entry("token_add", "cap-feed")),
            Err(UserError::TokenExists(_))
        ));
        let t = store
            .token_by_secret(&[9; 32])
            .expect("read")
            .expect("found");
        assert_eq!(
            (t.name.as_str(), t.expires_at),
            ("cap-feed", Some(T0.plus_millis(1000)))
        );
        assert_eq!(t.last_used, None);
        assert!(store.token_by_secret(&[8; 32]).expect("read").is_none());
        store
            .token_touch("cap-feed", T0.plus_millis(3))
            .expect("touch");
        store
            .token_revoke(
                "cap-feed",
                T0.plus_millis(4),
                &entry("token_revoke", "cap-feed"),
            )
            .expect("revoke");
        store
            .token_revoke(
                "cap-feed",
                T0.plus_millis(9),
                &entry("token_revoke", "cap-feed"),
            )
            .expect("again");
        let t = &store.tokens().expect("list")[0];
        assert_eq!(t.last_used, Some(T0.plus_millis(3)));
        assert_eq!(
            t.revoked_at,
            Some(T0.plus_millis(4)),
            "the first revocation stands"
        );
        assert!(matches!(
            store.token_revoke("nope", T0, &entry("token_revoke", "nope")),
            Err(UserError::NoSuchToken(_))
        ));
    }
}
