//! Managing users and API tokens from the command line: `vigil-hub user add|list|disable`
//! and `vigil-hub token add|list|revoke` (see [`crate::cli`]). Each change commits with
//! its audit record, the actor being `cli:<unix user>` ([`cli_actor`]).
//!
//! These open the hub's store directly (beside a running hub, which is safe: SQLite
//! serialises the writes). `user add` and `token add` create the store when the hub has not
//! run yet, so the first admin can be added before the first start; the others need it to
//! exist.

use std::path::PathBuf;
use std::time::Duration;

use vigil_core::{SitePath, Timestamp};
use vigil_store::{AuditEntry, NewToken, NewUser, Store, StoreError, Token, User, UserError};

use super::password::{self, PasswordError};
use super::secret::{self, RandomError};
use super::{check_name, millis, Role};
use crate::config::HubConfig;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store's directory could not be created.
    #[error("cannot create the store's directory {} ([store] path): {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store does not exist yet (and this command must not create an empty one).
    #[error(
        "no store at {} ([store] path): check the config, or add a user first (vigil-hub user add)",
        .0.display()
    )]
    NoStore(PathBuf),
    /// A name that cannot be right.
    #[error("{0}")]
    Name(String),
    /// The password is refused or cannot be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// No randomness for a secret.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The change is refused (a taken name, an unknown one).
    #[error(transparent)]
    User(#[from] UserError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The actor of command-line changes: `cli:` and the Unix user running the command (from
/// `$USER` or `$LOGNAME`; whoever can run it can write the store anyway).
pub fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{}", user.trim())
}

/// The hub's store, opened for admin changes.
#[derive(Debug)]
pub struct Admin {
    store: Store,
    node: String,
    actor: String,
}

impl Admin {
    /// Opens the store `config` names, creating it (and its directory) when missing.
    pub fn open_or_create(config: &HubConfig, actor: String) -> Result<Admin, AdminError> {
        let path = &config.store.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| AdminError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(Admin {
            store: Store::open(path)?,
            node: config.node.id.to_string(),
            actor,
        })
    }

    /// Opens the store `config` names, which must exist.
    pub fn open(config: &HubConfig, actor: String) -> Result<Admin, AdminError> {
        if !config.store.path.is_file() {
            return Err(AdminError::NoStore(config.store.path.clone()));
        }
        Admin::open_or_create(config, actor)
    }

    fn audit(&self, action: &str, target: &str, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            at: Timestamp::now(),
            node: self.node.clone(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            details,
        }
    }

    /// Adds a user with `password` (checked, then hashed with argon2id).
    pub fn add_user(
        &mut self,
        name: &str,
        role: Role,
        scope: &SitePath,
        password: &str,
    ) -> Result<(), AdminError> {
        check_name(name).map_err(AdminError::Name)?;
        let password_hash = password::hash(password)?;
        let user = NewUser {
            name: name.to_owned(),
            password_hash,
            role: role.as_str().to_owned(),
            scope: scope.clone(),
            created_at: Timestamp::now(),
        };
        let audit = self.audit(
            "user_add",
            name,
            serde_json::json!({ "role": role.as_str(), "scope": scope.as_str() }),
        );
        self.store.user_add(&user, &audit)?;
        Ok(())
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, AdminError> {
        Ok(self.store.users()?)
    }

    /// Disables a user and ends their sessions.
    pub fn disable_user(&mut self, name: &str) -> Result<(), AdminError> {
        let audit = self.audit("user_disable", name, serde_json::json!({}));
        self.store.user_disable(name, &audit)?;
        Ok(())
    }

    /// Adds an API token valid for `ttl` (for ever without); returns its secret, which is
    /// not kept and cannot be shown again.
    pub fn add_token(
        &mut self,
        name: &str,
        role: Role,
        scope: &SitePath,
        ttl: Option<Duration>,
    ) -> Result<String, AdminError> {
        check_name(name).map_err(AdminError::Name)?;
        let token = secret::new_token()?;
        let now = Timestamp::now();
        let expires_at = ttl.map(|d| now.plus_millis(millis(d)));
        let new = NewToken {
            name: name.to_owned(),
            secret_hash: secret::digest(&token),
            role: role.as_str().to_owned(),
            scope: scope.clone(),
            created_at: now,
            expires_at,
        };
        let audit = self.audit(
            "token_add",
            name,
            serde_json::json!({
                "role": role.as_str(),
                "scope": scope.as_str(),
                "expires_at": expires_at.map(|t| t.to_string()),
            }),
        );
        self.store.token_add(&new, &audit)?;
        Ok(token)
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<Token>, AdminError> {
        Ok(self.store.tokens()?)
    }

    /// Revokes a token: it signs nothing in from now on.
    pub fn revoke_token(&mut self, name: &str) -> Result<(), AdminError> {
        let audit = self.audit("token_revoke", name, serde_json::json!({}));
        self.store.token_revoke(name, Timestamp::now(), &audit)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> HubConfig {
        let text = format!(
            "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"B\"\n[store]\npath = {:?}\n",
            dir.join("sub").join("hub.db").display().to_string()
        );
        vigil_config::parse(std::path::Path::new("hub.toml"), &text).expect("valid")
    }

    #[test]
    fn changes_are_audited_as_the_cli_actor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        assert!(matches!(
            Admin::open(&cfg, "cli:root".into()),
            Err(AdminError::NoStore(_))
        ));
        let mut admin = Admin::open_or_create(&cfg, "cli:root".into()).expect("open");
        let scope = SitePath::new("ministry/gd").expect("site");
        admin
            .add_user("li.na", Role::Operator, &scope, "a long enough password")
            .expect("add");
        assert!(matches!(
            admin.add_user("Li.Na", Role::Operator, &scope, "a long enough password"),
            Err(AdminError::Name(_))
        ));
        assert!(matches!(
            admin.add_user("x", Role::Operator, &scope, "short"),
            Err(AdminError::Password(_))
        ));
        let token = admin
            .add_token("feed", Role::Viewer, &scope, Some(Duration::from_secs(60)))
            .expect("token");
        assert!(token.starts_with(secret::TOKEN_PREFIX));
        admin.revoke_token("feed").expect("revoke");
        admin.disable_user("li.na").expect("disable");
        let users = admin.users().expect("users");
        assert!(users[0].disabled);
        assert!(users[0].password_hash.starts_with("$argon2id$"));
        assert!(!users[0].password_hash.contains("password"));
        let records = admin.store.audit_records(0, 10).expect("audit");
        let actions: Vec<&str> = records.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(
            actions,
            ["user_add", "token_add", "token_revoke", "user_disable"]
        );
        assert!(records.iter().all(|r| r.entry.actor == "cli:root"));
        assert!(
            !records
                .iter()
                .any(|r| r.entry.details.to_string().contains("long enough")),
            "no password in the audit log"
        );
    }
}
