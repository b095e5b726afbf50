//! Site bindings: which site subtree each node speaks for, as this hub knows it
//! (docs/ARCHITECTURE.md#site-bindings-and-admission; schema version 10).
//!
//! A node is bound to a site subtree when its enrollment token is issued
//! (`vigil-hub enroll-token --node ID --site SITE`): the site is stored with the token and,
//! in the transaction that issues the certificate, with the certificate and here, as an
//! [`BindingSource::Enrolled`] binding. A child of an external broker that did not enroll
//! here is declared in hub.toml (`[[child]]`, [`BindingSource::Config`], synced at start by
//! [`Store::bindings_sync_config`]). The nodes enrolled further down are reported by each
//! child hub in its status ([`BindingSource::Reported`], through the direct child `via`,
//! enrolled with `parent`; [`Store::bindings_replace_reported`]).
//!
//! One binding per node: an enrolled or configured binding is never replaced by a reported
//! one (the caller judges a child's report before it records it: `vigil_link::admission`).
//!
//! [`Store::alert_via`] and the `alert_via` table record, per alert, the direct child the
//! alert came through: actions on an alert are admitted only from that child.

use rusqlite::{params, Connection, OptionalExtension, Row};
use vigil_core::{AlertId, NodeId, SitePath, Timestamp};

use crate::error::{Result, SqlContext, StoreError};
use crate::store::Store;

/// How this hub knows a node's site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindingSource {
    /// The node enrolled here: the site its token and certificate were issued with.
    Enrolled,
    /// Declared in hub.toml (`[[child]]`): a child connecting through an external broker.
    Config,
    /// Reported by a child hub: a node enrolled in that child's subtree.
    Reported,
}

impl BindingSource {
    /// `enrolled`, `config`, `reported` (as stored and listed).
    pub const fn as_str(self) -> &'static str {
        match self {
            BindingSource::Enrolled => "enrolled",
            BindingSource::Config => "config",
            BindingSource::Reported => "reported",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "enrolled" => Some(BindingSource::Enrolled),
            "config" => Some(BindingSource::Config),
            "reported" => Some(BindingSource::Reported),
            _ => None,
        }
    }
}

/// What a directly connected node is: a hub may report the nodes enrolled below it and
/// relay their events; a gateway speaks only as itself
/// (docs/ARCHITECTURE.md#site-bindings-and-admission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NodeKind {
    /// A hub (`vigil-hub enroll`, or `kind = "hub"` in `[[child]]`).
    Hub,
    /// A gateway (`vigil-agent enroll`; the default).
    #[default]
    Gateway,
}

impl NodeKind {
    /// `hub`, `gateway` (as stored, sent and listed).
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeKind::Hub => "hub",
            NodeKind::Gateway => "gateway",
        }
    }

    /// The kind named `text` (`hub`, `gateway`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hub" => Some(NodeKind::Hub),
            "gateway" => Some(NodeKind::Gateway),
            _ => None,
        }
    }
}

/// A node's site binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeBinding {
    /// The node.
    pub node: NodeId,
    /// The site subtree it speaks for.
    pub site: SitePath,
    /// How this hub knows it.
    pub source: BindingSource,
    /// For a reported binding: the direct child of this hub that reported it (the node's
    /// events come through it). `None` for an enrolled or configured one (a direct child).
    pub via: Option<NodeId>,
    /// For a reported binding: the node it is enrolled with (its parent).
    pub parent: Option<NodeId>,
    /// For a direct child (enrolled or configured): whether it is a hub or a gateway.
    /// `None` for a reported binding.
    pub kind: Option<NodeKind>,
    /// When it was recorded or last confirmed.
    pub updated_at: Timestamp,
}

impl NodeBinding {
    /// The direct child of this hub the node's events come through: `via` for a reported
    /// binding, the node itself otherwise.
    pub fn direct_child(&self) -> &NodeId {
        self.via.as_ref().unwrap_or(&self.node)
    }
}

/// A binding a child reports for a node enrolled in its subtree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportedBinding {
    /// The node.
    pub node: NodeId,
    /// Its site subtree.
    pub site: SitePath,
    /// The node it is enrolled with.
    pub parent: NodeId,
}

const COLUMNS: &str = "node, site, source, via, parent, updated_at, kind";

fn corrupt(row: &str, detail: String) -> StoreError {
    StoreError::CorruptValue {
        table: "node_bindings",
        row: format!("node {row}"),
        detail,
    }
}

type RawBinding = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawBinding> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn binding(raw: RawBinding) -> Result<NodeBinding> {
    let (node, site, source, via, parent, updated_at, kind) = raw;
    let kind = match kind {
        None => None,
        Some(k) => {
            Some(NodeKind::parse(&k).ok_or_else(|| corrupt(&node, format!("unknown kind {k:?}")))?)
        }
    };
    let id = |text: String| NodeId::new(text).map_err(|e| corrupt(&node, e.to_string()));
    Ok(NodeBinding {
        node: id(node.clone())?,
        site: SitePath::new(site).map_err(|e| corrupt(&node, e.to_string()))?,
        source: BindingSource::parse(&source)
            .ok_or_else(|| corrupt(&node, format!("unknown source {source:?}")))?,
        via: via.map(id).transpose()?,
        parent: parent.map(id).transpose()?,
        kind,
        updated_at: Timestamp::from_millis(updated_at),
    })
}

/// Every binding, by node, read on `conn` (inside a transaction or not).
pub(crate) fn load_in(conn: &Connection) -> Result<Vec<NodeBinding>> {
    let raws = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM node_bindings ORDER BY node"
        ))
        .and_then(|mut stmt| {
            stmt.query_map([], raw_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .op("list the node bindings")?;
    raws.into_iter().map(binding).collect()
}

/// Records `node`'s enrolled binding to `site` as a `kind` (replacing whatever binding it
/// had).
pub(crate) fn set_enrolled_in(
    conn: &Connection,
    node: &str,
    site: &str,
    kind: NodeKind,
    at: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO node_bindings (node, site, source, via, parent, updated_at, kind)
         VALUES (?1, ?2, 'enrolled', NULL, NULL, ?3, ?4)
         ON CONFLICT (node) DO UPDATE SET site = excluded.site, source = 'enrolled',
             via = NULL, parent = NULL, updated_at = excluded.updated_at,
             kind = excluded.kind",
    )
    .and_then(|mut stmt| stmt.execute(params![node, site, at.as_millis(), kind.as_str()]))
    .op("record a node's enrolled binding")?;
    Ok(())
}

/// The child each of `alerts` came through, where known, read on `conn`.
pub(crate) fn alert_via_in(conn: &Connection, alert: &AlertId) -> Result<Option<NodeId>> {
    let via: Option<String> = conn
        .prepare_cached("SELECT via FROM alert_via WHERE alert = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([&alert.as_bytes()[..]], |row| row.get(0))
                .optional()
        })
        .op("read the child an alert came through")?;
    via.map(|v| {
        NodeId::new(v).map_err(|e| StoreError::CorruptValue {
            table: "alert_via",
            row: format!("alert {alert}"),
            detail: e.to_string(),
        })
    })
    .transpose()
}

/// Records that `alert` came through `via`, unless it is recorded already (the first
/// child wins).
pub(crate) fn tie_alert_in(conn: &Connection, alert: &AlertId, via: &NodeId) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO alert_via (alert, via) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![&alert.as_bytes()[..], via.as_str()]))
        .op("record the child an alert came through")?;
    Ok(())
}

/// Which child an alert came through, as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertVia {
    /// Recorded: it came through this child.
    Child(NodeId),
    /// Held here, through no child (this node's own alert, or one held from before
    /// bindings): its key's origin, when the key reads.
    Untied(Option<NodeId>),
    /// Not held here.
    Unknown,
}

/// What an admission may read and record inside the transaction that applies a batch
/// ([`Store::apply_batches_admitted_and_forward`]).
#[derive(Debug, Clone, Copy)]
pub struct AdmitTx<'a> {
    pub(crate) conn: &'a Connection,
}

impl AdmitTx<'_> {
    /// The binding of `node`, if this node holds one.
    pub fn binding(&self, node: &NodeId) -> Result<Option<NodeBinding>> {
        let raw = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM node_bindings WHERE node = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([node.as_str()], raw_row).optional())
            .op("read a node's binding")?;
        raw.map(binding).transpose()
    }

    /// Which child `alert` came through (one statement: the recorded child, else whether
    /// the alert is held here and its key's origin).
    pub fn alert_via(&self, alert: &AlertId) -> Result<AlertVia> {
        let row: (Option<String>, Option<String>, bool) = self
            .conn
            .prepare_cached(
                "SELECT v.via, a.origin, a.id IS NOT NULL
                 FROM (SELECT ?1 AS id) AS q
                 LEFT JOIN alert_via AS v ON v.alert = q.id
                 LEFT JOIN alerts AS a ON a.id = q.id",
            )
            .and_then(|mut stmt| {
                stmt.query_row([&alert.as_bytes()[..]], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
            })
            .op("read the child an alert came through")?;
        Ok(match row {
            (Some(via), _, _) => {
                AlertVia::Child(NodeId::new(via).map_err(|e| StoreError::CorruptValue {
                    table: "alert_via",
                    row: format!("alert {alert}"),
                    detail: e.to_string(),
                })?)
            }
            (None, origin, true) => AlertVia::Untied(origin.and_then(|o| NodeId::new(o).ok())),
            (None, _, false) => AlertVia::Unknown,
        })
    }

    /// Records that `alert` came through `via`, unless it is recorded already.
    pub fn tie(&self, alert: &AlertId, via: &NodeId) -> Result<()> {
        tie_alert_in(self.conn, alert, via)
    }

    /// This node's ancestors ([`Store::ancestors`]).
    pub fn ancestors(&self) -> Result<Vec<NodeId>> {
        ancestors_in(self.conn)
    }
}

fn ancestors_in(conn: &Connection) -> Result<Vec<NodeId>> {
    let nodes = conn
        .prepare_cached("SELECT node FROM ancestors ORDER BY depth")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .op("read the ancestors")?;
    nodes
        .into_iter()
        .map(|n| {
            NodeId::new(&n).map_err(|e| StoreError::CorruptValue {
                table: "ancestors",
                row: format!("node {n}"),
                detail: e.to_string(),
            })
        })
        .collect()
}

/// Why [`Store::bindings_sync_config`] did not take a `[[child]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigConflict {
    /// The node declared.
    pub node: NodeId,
    /// The site hub.toml declares.
    pub declared: SitePath,
    /// The binding the store holds, which stays.
    pub held: NodeBinding,
}

/// What [`Store::binding_unbind`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbound {
    /// The binding removed.
    pub binding: NodeBinding,
    /// The node's certificates revoked with it (those not revoked already).
    pub revoked: Vec<String>,
    /// The nodes reported through it whose bindings went with it (a child hub's subtree).
    pub reported: Vec<NodeId>,
}

/// Why [`Store::binding_unbind`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UnbindError {
    /// The node has no binding here.
    #[error("node {0} is not bound here (`vigil-hub nodes` lists the bound nodes)")]
    NotBound(NodeId),
    /// The binding is not one made by enrollment here: declared in hub.toml, or reported by
    /// a child hub.
    #[error("{}", not_enrolled(.0))]
    NotEnrolled(NodeBinding),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn not_enrolled(b: &NodeBinding) -> String {
    match (&b.source, &b.via) {
        (BindingSource::Reported, Some(via)) => format!(
            "node {} is not enrolled here: child hub {via} reports it (enrolled with {}); unbind it there",
            b.node,
            b.parent.as_ref().map_or("?", NodeId::as_str)
        ),
        _ => format!(
            "node {} is bound by [[child]] in hub.toml: remove it from hub.toml and restart the hub",
            b.node
        ),
    }
}

impl Store {
    /// Removes `node`'s enrolled binding, with the bindings reported through it, and
    /// revokes its certificates, at `at` by `by`, with the audit record `audit` makes, in
    /// one transaction (docs/ARCHITECTURE.md#site-bindings-and-admission). A binding from
    /// hub.toml or reported by a child hub is not removed here ([`UnbindError`]).
    pub fn binding_unbind(
        &mut self,
        node: &NodeId,
        at: Timestamp,
        by: &str,
        audit: impl FnOnce(&Unbound) -> crate::AuditEntry,
    ) -> std::result::Result<Unbound, UnbindError> {
        let tx = self.write_tx("begin unbinding a node")?;
        let raw = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM node_bindings WHERE node = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([node.as_str()], raw_row).optional())
            .op("read a node's binding")?;
        let Some(held) = raw.map(binding).transpose()? else {
            return Err(UnbindError::NotBound(node.clone()));
        };
        if held.source != BindingSource::Enrolled {
            return Err(UnbindError::NotEnrolled(held));
        }
        let reported: Vec<String> = tx
            .prepare_cached("SELECT node FROM node_bindings WHERE via = ?1 ORDER BY node")
            .and_then(|mut stmt| {
                stmt.query_map([node.as_str()], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .op("list the bindings reported through a node")?;
        tx.execute(
            "DELETE FROM node_bindings WHERE node = ?1 OR via = ?1",
            [node.as_str()],
        )
        .op("remove a node's binding")?;
        let revoked =
            crate::enrollment::revoke_in(&tx, node.as_str(), None, at, by)?.unwrap_or_default();
        let unbound = Unbound {
            binding: held,
            revoked,
            reported: reported
                .into_iter()
                .filter_map(|n| NodeId::new(n).ok())
                .collect(),
        };
        crate::audit::append_in(&tx, &audit(&unbound))?;
        tx.commit().op("commit unbinding a node")?;
        Ok(unbound)
    }

    /// This hub's ancestors, nearest first: its `[parent]` node, then the hubs above it
    /// (schema 14). No child may speak as one of them.
    pub fn ancestors(&self) -> Result<Vec<NodeId>> {
        ancestors_in(&self.conn)
    }

    /// Makes this hub's ancestors exactly `chain` (nearest first; a node named twice is
    /// kept at its first place). Returns whether they changed.
    pub fn ancestors_set(&mut self, chain: &[NodeId]) -> Result<bool> {
        let tx = self.write_tx("begin recording the ancestors")?;
        let mut unique: Vec<&NodeId> = Vec::with_capacity(chain.len());
        for node in chain {
            if !unique.contains(&node) {
                unique.push(node);
            }
        }
        let held = ancestors_in(&tx)?;
        if held.iter().eq(unique.iter().copied()) {
            return Ok(false);
        }
        tx.execute("DELETE FROM ancestors", [])
            .op("clear the ancestors")?;
        for (depth, node) in (1i64..).zip(unique) {
            tx.execute(
                "INSERT INTO ancestors (depth, node) VALUES (?1, ?2)",
                params![depth, node.as_str()],
            )
            .op("record an ancestor")?;
        }
        tx.commit().op("commit the ancestors")?;
        Ok(true)
    }

    /// Every binding this hub holds, by node.
    pub fn node_bindings(&self) -> Result<Vec<NodeBinding>> {
        load_in(&self.conn)
    }

    /// The binding of `node`, if this hub holds one.
    pub fn node_binding(&self, node: &NodeId) -> Result<Option<NodeBinding>> {
        let raw = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM node_bindings WHERE node = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([node.as_str()], raw_row).optional())
            .op("read a node's binding")?;
        raw.map(binding).transpose()
    }

    /// Makes the configured bindings exactly `declared` (hub.toml's `[[child]]` tables):
    /// adds or updates each, removes configured ones no longer declared. A node bound here
    /// by enrollment keeps its enrolled binding: it is returned as a conflict for the caller
    /// to report. A reported binding is replaced by the declared one.
    ///
    /// Every node declared here is a gateway: [`Store::bindings_sync_config_kinds`] says
    /// which are hubs.
    pub fn bindings_sync_config(
        &mut self,
        declared: &[(NodeId, SitePath)],
        at: Timestamp,
    ) -> Result<Vec<ConfigConflict>> {
        let declared: Vec<(NodeId, SitePath, NodeKind)> = declared
            .iter()
            .map(|(n, s)| (n.clone(), s.clone(), NodeKind::Gateway))
            .collect();
        self.bindings_sync_config_kinds(&declared, at)
    }

    /// [`Store::bindings_sync_config`] with each declared node's kind.
    pub fn bindings_sync_config_kinds(
        &mut self,
        declared: &[(NodeId, SitePath, NodeKind)],
        at: Timestamp,
    ) -> Result<Vec<ConfigConflict>> {
        let tx = self.write_tx("begin syncing the configured bindings")?;
        let held = load_in(&tx)?;
        let mut conflicts = Vec::new();
        for b in held.iter().filter(|b| b.source == BindingSource::Config) {
            if !declared.iter().any(|(n, _, _)| n == &b.node) {
                tx.execute(
                    "DELETE FROM node_bindings WHERE node = ?1",
                    [b.node.as_str()],
                )
                .op("remove a configured binding")?;
            }
        }
        for (node, site, kind) in declared {
            if let Some(b) = held
                .iter()
                .find(|b| &b.node == node && b.source == BindingSource::Enrolled)
            {
                if &b.site != site {
                    conflicts.push(ConfigConflict {
                        node: node.clone(),
                        declared: site.clone(),
                        held: b.clone(),
                    });
                }
                continue;
            }
            tx.execute(
                "INSERT INTO node_bindings (node, site, source, via, parent, updated_at, kind)
                 VALUES (?1, ?2, 'config', NULL, NULL, ?3, ?4)
                 ON CONFLICT (node) DO UPDATE SET site = excluded.site, source = 'config',
                     via = NULL, parent = NULL, updated_at = excluded.updated_at,
                     kind = excluded.kind",
                params![node.as_str(), site.as_str(), at.as_millis(), kind.as_str()],
            )
            .op("record a configured binding")?;
        }
        tx.commit().op("commit the configured bindings")?;
        Ok(conflicts)
    }

    /// Makes the bindings reported through the direct child `via` exactly `reported`
    /// (what its last status said, already judged by the caller): adds or updates each,
    /// removes the ones `via` no longer reports. A node bound here by enrollment or
    /// configuration, or reported through another child, is left alone (the caller refuses
    /// such a report before it gets here), and so is one of this hub's ancestors
    /// ([`Store::ancestors`]). Returns whether anything changed.
    pub fn bindings_replace_reported(
        &mut self,
        via: &NodeId,
        reported: &[ReportedBinding],
        at: Timestamp,
    ) -> Result<bool> {
        let tx = self.write_tx("begin recording reported bindings")?;
        let held = load_in(&tx)?;
        // Never a binding for one of this hub's ancestors: no child speaks as them, and
        // this hub reports its bindings up to them.
        let ancestors = ancestors_in(&tx)?;
        let reported: Vec<&ReportedBinding> = reported
            .iter()
            .filter(|r| !ancestors.contains(&r.node))
            .collect();
        let mut changed = false;
        for b in held
            .iter()
            .filter(|b| b.source == BindingSource::Reported && b.via.as_ref() == Some(via))
        {
            if !reported.iter().any(|r| r.node == b.node) {
                tx.execute(
                    "DELETE FROM node_bindings WHERE node = ?1",
                    [b.node.as_str()],
                )
                .op("remove a reported binding")?;
                changed = true;
            }
        }
        for r in reported {
            match held.iter().find(|b| b.node == r.node) {
                Some(b) if b.source != BindingSource::Reported || b.via.as_ref() != Some(via) => {
                    continue
                }
                Some(b) if b.site == r.site && b.parent.as_ref() == Some(&r.parent) => continue,
                _ => {}
            }
            tx.execute(
                "INSERT INTO node_bindings (node, site, source, via, parent, updated_at)
                 VALUES (?1, ?2, 'reported', ?3, ?4, ?5)
                 ON CONFLICT (node) DO UPDATE SET site = excluded.site,
                     parent = excluded.parent, updated_at = excluded.updated_at
                 WHERE node_bindings.source = 'reported' AND node_bindings.via = ?3",
                params![
                    r.node.as_str(),
                    r.site.as_str(),
                    via.as_str(),
                    r.parent.as_str(),
                    at.as_millis()
                ],
            )
            .op("record a reported binding")?;
            changed = true;
        }
        tx.commit().op("commit reported bindings")?;
        Ok(changed)
    }

    /// The direct child `alert` came through, if recorded.
    pub fn alert_via(&self, alert: &AlertId) -> Result<Option<NodeId>> {
        alert_via_in(&self.conn, alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("node")
    }

    fn site(s: &str) -> SitePath {
        SitePath::new(s).expect("site")
    }

    #[test]
    fn configured_bindings_follow_the_config_and_never_replace_an_enrolled_one() {
        let mut store = Store::open_in_memory().expect("store");
        set_enrolled_in(
            &store.conn,
            "gw-1",
            "m/p/c/k/f1",
            NodeKind::Gateway,
            Timestamp::from_millis(1),
        )
        .expect("enrolled");
        let at = Timestamp::from_millis(2);
        let conflicts = store
            .bindings_sync_config(
                &[
                    (id("gw-1"), site("m/p/c/k/f9")),
                    (id("gw-2"), site("m/p/c/k/f2")),
                ],
                at,
            )
            .expect("sync");
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].held.site, site("m/p/c/k/f1"));
        let b = store
            .node_binding(&id("gw-2"))
            .expect("read")
            .expect("bound");
        assert_eq!(b.source, BindingSource::Config);
        assert_eq!(b.direct_child(), &id("gw-2"));
        // gw-2 no longer declared: gone; gw-1 stays enrolled.
        store.bindings_sync_config(&[], at).expect("sync");
        assert!(store.node_binding(&id("gw-2")).expect("read").is_none());
        let b = store
            .node_binding(&id("gw-1"))
            .expect("read")
            .expect("bound");
        assert_eq!(b.source, BindingSource::Enrolled);
    }

    #[test]
    fn unbinding_removes_an_enrolled_binding_with_its_subtree_and_revokes_its_certificates() {
        let mut store = Store::open_in_memory().expect("store");
        for serial in ["a1", "a2"] {
            store
                .certificate_record(
                    &crate::NewCertificate {
                        serial: serial.into(),
                        node: "city-1".into(),
                        not_before: Timestamp::from_millis(0),
                        not_after: Timestamp::from_millis(10),
                        issued_at: Timestamp::from_millis(1),
                        fingerprint: "ff".into(),
                        site: Some("m/p/c".into()),
                        kind: NodeKind::Hub,
                    },
                    None,
                )
                .expect("certificate");
        }
        let at = Timestamp::from_millis(2);
        store
            .bindings_replace_reported(
                &id("city-1"),
                &[ReportedBinding {
                    node: id("gw-1"),
                    site: site("m/p/c/f1"),
                    parent: id("city-1"),
                }],
                at,
            )
            .expect("report");
        store
            .bindings_sync_config(&[(id("gw-ext"), site("m/p/x"))], at)
            .expect("config");
        let entry = |_: &Unbound| crate::AuditEntry {
            at,
            node: "prov".into(),
            actor: "cli:root".into(),
            action: "node.unbind".into(),
            target: "x".into(),
            details: serde_json::json!({}),
        };
        // Declared in hub.toml, reported by a child, unknown: nothing changes.
        let refused = store.binding_unbind(&id("gw-ext"), at, "cli:root", entry);
        assert!(
            matches!(&refused, Err(e @ UnbindError::NotEnrolled(_)) if e.to_string().contains("remove it from hub.toml")),
            "{refused:?}"
        );
        let refused = store.binding_unbind(&id("gw-1"), at, "cli:root", entry);
        assert!(
            matches!(&refused, Err(e @ UnbindError::NotEnrolled(_)) if e.to_string().contains("city-1 reports it")),
            "{refused:?}"
        );
        assert!(matches!(
            store.binding_unbind(&id("gw-9"), at, "cli:root", entry),
            Err(UnbindError::NotBound(_))
        ));
        assert_eq!(store.audit_head().expect("head").seq, 0);

        let unbound = store
            .binding_unbind(&id("city-1"), at, "cli:root", entry)
            .expect("unbound");
        assert_eq!(unbound.binding.source, BindingSource::Enrolled);
        assert_eq!(unbound.revoked, ["a1", "a2"]);
        assert_eq!(unbound.reported, [id("gw-1")]);
        assert!(store.node_binding(&id("city-1")).expect("read").is_none());
        assert!(store.node_binding(&id("gw-1")).expect("read").is_none());
        assert!(store.node_binding(&id("gw-ext")).expect("read").is_some());
        assert_eq!(store.revoked_certificates().expect("revoked").len(), 2);
        assert_eq!(store.audit_head().expect("head").seq, 1);
    }

    #[test]
    fn ancestors_are_kept_nearest_first_once_each() {
        let mut store = Store::open_in_memory().expect("store");
        assert!(store.ancestors().expect("read").is_empty());
        let chain = [id("city-1"), id("prov-1"), id("city-1"), id("ministry")];
        assert!(store.ancestors_set(&chain).expect("set"));
        assert_eq!(
            store.ancestors().expect("read"),
            [id("city-1"), id("prov-1"), id("ministry")]
        );
        assert!(store.ancestors_set(&chain[..2]).expect("set"));
        assert_eq!(
            store.ancestors().expect("read"),
            [id("city-1"), id("prov-1")]
        );
        assert!(!store.ancestors_set(&chain[..2]).expect("same"));
        // A child's report never binds an ancestor.
        let report = |node: &str| ReportedBinding {
            node: id(node),
            site: site("m/p/c/k"),
            parent: id("county-1"),
        };
        store
            .bindings_replace_reported(
                &id("county-1"),
                &[report("prov-1"), report("gw-1")],
                Timestamp::from_millis(1),
            )
            .expect("report");
        assert!(store.node_binding(&id("prov-1")).expect("read").is_none());
        assert!(store.node_binding(&id("gw-1")).expect("read").is_some());
        assert!(store.ancestors_set(&[]).expect("clear"));
        assert!(AdmitTx { conn: &store.conn }
            .ancestors()
            .expect("read")
            .is_empty());
    }

    #[test]
    fn reported_bindings_are_replaced_per_child_and_leave_others_alone() {
        let mut store = Store::open_in_memory().expect("store");
        set_enrolled_in(
            &store.conn,
            "city-1",
            "m/p/c",
            NodeKind::Hub,
            Timestamp::from_millis(1),
        )
        .expect("enrolled");
        let at = Timestamp::from_millis(2);
        let report = |node: &str, s: &str, parent: &str| ReportedBinding {
            node: id(node),
            site: site(s),
            parent: id(parent),
        };
        let changed = store
            .bindings_replace_reported(
                &id("city-1"),
                &[
                    report("county-1", "m/p/c/k", "city-1"),
                    report("gw-1", "m/p/c/k/f1", "county-1"),
                    // Enrolled here: left alone.
                    report("city-1", "m/p", "city-1"),
                ],
                at,
            )
            .expect("report");
        assert!(changed);
        let gw = store
            .node_binding(&id("gw-1"))
            .expect("read")
            .expect("bound");
        assert_eq!(gw.direct_child(), &id("city-1"));
        assert_eq!(gw.parent, Some(id("county-1")));
        let city = store
            .node_binding(&id("city-1"))
            .expect("read")
            .expect("bound");
        assert_eq!(city.site, site("m/p/c"));
        assert!(!store
            .bindings_replace_reported(
                &id("city-1"),
                &[
                    report("county-1", "m/p/c/k", "city-1"),
                    report("gw-1", "m/p/c/k/f1", "county-1"),
                ],
                at,
            )
            .expect("same report"));
        store
            .bindings_replace_reported(
                &id("city-1"),
                &[report("county-1", "m/p/c/k", "city-1")],
                at,
            )
            .expect("report");
        assert!(store.node_binding(&id("gw-1")).expect("read").is_none());
        assert_eq!(store.node_bindings().expect("all").len(), 2);
    }

    #[test]
    fn the_first_child_an_alert_came_through_stays() {
        let store = Store::open_in_memory().expect("store");
        let alert = AlertId::from_bytes([7; 16]);
        assert_eq!(alert_via_in(&store.conn, &alert).expect("read"), None);
        tie_alert_in(&store.conn, &alert, &id("gw-1")).expect("tie");
        tie_alert_in(&store.conn, &alert, &id("gw-2")).expect("tie");
        assert_eq!(store.alert_via(&alert).expect("read"), Some(id("gw-1")));
    }
}
