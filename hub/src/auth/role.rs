//! Roles and what each may do: **the one permission table**
//! (docs/ARCHITECTURE.md#users-roles-and-scope). Every
//! check in the API asks [`Role::allows`]; README's "Users, roles and scope" shows the same
//! table, and a test keeps the two in step ([`Role::table_markdown`]).
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read alerts, the tree, the live stream and the feeds |
//! | `operator` | what a viewer may, and acknowledge, shelve and unshelve, comment, assign |
//! | `supervisor` | what an operator may, and close and reset alerts |
//! | `installer` | read, and manage nodes and their enrollment |
//! | `auditor` | read, and read the audit log |
//! | `admin` | everything, users and tokens included |
//!
//! Whatever the role, a user sees and acts only within their scope (see
//! [`super::Principal`]).

use std::fmt;
use std::str::FromStr;

/// A console user's or an API token's role. A closed set: adding one is one arm here and
/// one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Watches: reads alerts, the tree, the stream, the feeds.
    Viewer,
    /// Handles alarms: a viewer who also acknowledges, shelves, comments and assigns.
    Operator,
    /// Runs the control room: an operator who also closes and resets alerts.
    Supervisor,
    /// Installs gateways: reads, and manages nodes and their enrollment.
    Installer,
    /// Administers the hub: everything, users and tokens included.
    Admin,
    /// Checks the record: reads, and reads the audit log.
    Auditor,
}

/// Something a request needs leave to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read alerts, the tree, the live stream, the feeds.
    Read,
    /// Acknowledge an alert.
    Ack,
    /// Shelve and unshelve an alert.
    Shelve,
    /// Comment on an alert.
    Comment,
    /// Assign an alert.
    Assign,
    /// Close an alert's episode.
    Close,
    /// Reset a latched alert.
    Reset,
    /// Manage nodes and their enrollment.
    ManageNodes,
    /// Read the audit log.
    ReadAudit,
    /// Manage users and API tokens.
    ManageUsers,
}

impl Permission {
    /// Every permission, in the table's order.
    pub const ALL: [Permission; 10] = [
        Permission::Read,
        Permission::Ack,
        Permission::Shelve,
        Permission::Comment,
        Permission::Assign,
        Permission::Close,
        Permission::Reset,
        Permission::ManageNodes,
        Permission::ReadAudit,
        Permission::ManageUsers,
    ];

    /// The permission's name, as the table and refusals write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Ack => "ack",
            Permission::Shelve => "shelve",
            Permission::Comment => "comment",
            Permission::Assign => "assign",
            Permission::Close => "close",
            Permission::Reset => "reset",
            Permission::ManageNodes => "nodes",
            Permission::ReadAudit => "audit",
            Permission::ManageUsers => "users",
        }
    }
}

impl Role {
    /// Every role, in the table's order.
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Operator,
        Role::Supervisor,
        Role::Installer,
        Role::Auditor,
        Role::Admin,
    ];

    /// **The permission table.**
    pub const fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Viewer => matches!(p, P::Read),
            Role::Operator => matches!(p, P::Read | P::Ack | P::Shelve | P::Comment | P::Assign),
            Role::Supervisor => matches!(
                p,
                P::Read | P::Ack | P::Shelve | P::Comment | P::Assign | P::Close | P::Reset
            ),
            Role::Installer => matches!(p, P::Read | P::ManageNodes),
            Role::Auditor => matches!(p, P::Read | P::ReadAudit),
            Role::Admin => true,
        }
    }

    /// The role's name (`viewer`, …), as stored, configured and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Installer => "installer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// The table as Markdown: one row per role, one column per permission (`✓` or blank).
    pub fn table_markdown() -> String {
        let mut out = String::from("| role |");
        for p in Permission::ALL {
            out.push_str(&format!(" {} |", p.as_str()));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(Permission::ALL.len()));
        out.push('\n');
        for role in Role::ALL {
            out.push_str(&format!("| `{}` |", role.as_str()));
            for p in Permission::ALL {
                out.push_str(if role.allows(p) { " ✓ |" } else { "  |" });
            }
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use viewer, operator, supervisor, installer, auditor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn the_ladder_holds() {
        for p in Permission::ALL {
            if Role::Viewer.allows(p) {
                assert!(Role::Operator.allows(p), "{p:?}");
            }
            if Role::Operator.allows(p) {
                assert!(Role::Supervisor.allows(p), "{p:?}");
            }
            assert!(Role::Admin.allows(p));
        }
        for role in Role::ALL {
            assert!(role.allows(Permission::Read), "{role} reads");
            assert_eq!(
                role.allows(Permission::ManageUsers),
                role == Role::Admin,
                "only admins manage users"
            );
        }
        assert!(!Role::Viewer.allows(Permission::Ack));
        assert!(!Role::Operator.allows(Permission::Close));
        assert!(!Role::Installer.allows(Permission::Ack));
        assert!(!Role::Auditor.allows(Permission::Comment));
    }

    /// README's "Users, roles and scope" shows this very table.
    #[test]
    fn readme_shows_the_table() {
        let readme = include_str!("../../../README.md");
        let table = Role::table_markdown();
        assert!(
            readme.contains(&table),
            "README.md must hold the permission table exactly as Role::table_markdown() \
             writes it:\n{table}"
        );
    }
}
