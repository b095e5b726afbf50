//! The network under this hub, with each node's health: what `GET /api/v1/tree` answers.
//!
//! Built, without I/O, from three sources:
//!
//! - the [`Children`](crate::children::Children) registry: each direct child's health as
//!   the link engine keeps it (online or offline, since when, devices, its backlog towards
//!   us, its own children);
//! - the store's counts of open alerts per origin node and site: each alert is counted at
//!   the direct child it came through (a noted route, a child whose status lists the origin,
//!   or the origin itself) and, when the origin is one of that child's own children, there
//!   too. An origin that no child accounts for yet (its status has not arrived since the hub
//!   started) still appears, as a child in state `unknown`;
//! - the outbox lanes: the backlog of each child's downlink and of this hub's uplink.
//!
//! A node's `site` is the one its config gives (this hub) or the longest site path its
//! alerts share, cut to the node's level when the level is known.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::{Lane, Level, NodeId, Severity, SitePath, Timestamp};
use vigil_store::{LaneState, OpenAlertCount};
use vigil_wire::{Backlog, ChildStatus, NodeState};

use vigil_link::ChildInfo;

use crate::children::{child_link, PARENT_LINK};

/// Whether a node is up, as far as this hub knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Its last status said online.
    Online,
    /// Its last status (or last will) said offline.
    Offline,
    /// No status heard since the hub started; only its alerts are known.
    Unknown,
}

impl From<NodeState> for Health {
    fn from(state: NodeState) -> Self {
        match state {
            NodeState::Online => Health::Online,
            NodeState::Offline => Health::Offline,
        }
    }
}

/// Open alerts of a node's subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    /// Open (not closed) alerts.
    pub open: u64,
    /// Of those, the ones whose condition is active.
    pub active: u64,
    /// Of those, the ones not acknowledged.
    pub unacknowledged: u64,
    /// Open alerts per severity (severities without alerts left out).
    pub by_severity: BTreeMap<Severity, u64>,
}

impl AlertCounts {
    fn add(&mut self, c: &OpenAlertCount) {
        self.open += c.open;
        self.active += c.active;
        self.unacknowledged += c.unacknowledged;
        *self.by_severity.entry(c.severity).or_default() += c.open;
    }
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    /// The node's id.
    pub id: NodeId,
    /// Its level, when known.
    pub level: Option<Level>,
    /// Its name (this hub's, from its config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its site path, when known.
    pub site: Option<SitePath>,
    /// Up, down or unknown.
    pub state: Health,
    /// Since when it has been in that state, when reported.
    pub since: Option<Timestamp>,
    /// When this hub last heard from it (direct children only).
    pub last_seen: Option<Timestamp>,
    /// Devices answering in its subtree, as reported.
    pub devices_online: u64,
    /// Devices configured in its subtree, as reported.
    pub devices_total: u64,
    /// Events waiting in its uplink towards its parent: as it reported (a child), or this
    /// hub's own `parent` outbox.
    pub backlog: Backlog,
    /// Events waiting in this hub's downlink outbox towards it (direct children only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downlink_backlog: Option<Backlog>,
    /// Open alerts of its subtree.
    pub alerts: AlertCounts,
    /// The nodes below it, by id.
    pub children: Vec<TreeNode>,
}

/// This hub, as its config describes it.
#[derive(Debug, Clone)]
pub struct ThisHub {
    /// Its node id.
    pub id: NodeId,
    /// Its level.
    pub level: Level,
    /// Its name.
    pub name: String,
    /// Its site, when configured.
    pub site: Option<SitePath>,
}

fn backlog_of(lanes: &[(String, Lane, LaneState)], link: &str) -> Backlog {
    let mut b = Backlog::default();
    for (l, lane, state) in lanes {
        if l == link {
            match lane {
                Lane::Critical => b.critical = state.backlog_records,
                Lane::Normal => b.normal = state.backlog_records,
            }
        }
    }
    b
}

/// The longest site path all of `sites` lie within, cut to `level`'s depth.
fn common_site<'a>(
    sites: impl IntoIterator<Item = &'a SitePath>,
    level: Option<Level>,
) -> Option<SitePath> {
    let mut prefix: Option<Vec<&str>> = None;
    for site in sites {
        let segments: Vec<&str> = site.segments().collect();
        prefix = Some(match prefix {
            None => segments,
            Some(p) => p
                .iter()
                .zip(&segments)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    let mut prefix = prefix?;
    if let Some(level) = level {
        if prefix.len() < level.depth() {
            // The alerts do not say enough to place the node itself.
            return None;
        }
        prefix.truncate(level.depth());
    }
    if prefix.is_empty() {
        return None;
    }
    SitePath::new(prefix.join("/")).ok()
}

fn grandchild(status: &ChildStatus, counts: &[&OpenAlertCount]) -> TreeNode {
    let mine: Vec<&OpenAlertCount> = counts
        .iter()
        .copied()
        .filter(|c| c.origin.as_ref() == Some(&status.node))
        .collect();
    let mut alerts = AlertCounts::default();
    mine.iter().for_each(|c| alerts.add(c));
    TreeNode {
        id: status.node.clone(),
        level: status.level,
        name: None,
        site: common_site(mine.iter().filter_map(|c| c.site.as_ref()), status.level),
        state: status.state.into(),
        since: status.since,
        last_seen: None,
        devices_online: status.devices_online,
        devices_total: status.devices_total,
        backlog: status.backlog,
        downlink_backlog: None,
        alerts,
        children: Vec::new(),
    }
}

/// The tree under `this`; see the module docs.
pub fn build(
    this: &ThisHub,
    children: Vec<ChildInfo>,
    routes: &BTreeMap<NodeId, NodeId>,
    counts: &[OpenAlertCount],
    lanes: &[(String, Lane, LaneState)],
) -> TreeNode {
    let registry: BTreeMap<NodeId, ChildInfo> =
        children.into_iter().map(|c| (c.node.clone(), c)).collect();
    // Which direct child each count belongs to (`None`: this hub's own alerts).
    let mut per_child: BTreeMap<NodeId, Vec<&OpenAlertCount>> =
        registry.keys().map(|id| (id.clone(), Vec::new())).collect();
    let mut total = AlertCounts::default();
    for c in counts {
        total.add(c);
        let Some(origin) = &c.origin else { continue };
        if origin == &this.id {
            continue;
        }
        let via = routes
            .get(origin)
            .cloned()
            .or_else(|| {
                registry
                    .iter()
                    .find(|(_, e)| e.children.iter().any(|g| &g.node == origin))
                    .map(|(id, _)| id.clone())
            })
            .unwrap_or_else(|| origin.clone());
        per_child.entry(via).or_default().push(c);
    }
    let nodes = per_child
        .into_iter()
        .map(|(id, mine)| {
            let mut alerts = AlertCounts::default();
            mine.iter().for_each(|c| alerts.add(c));
            let entry = registry.get(&id);
            let level = entry.and_then(|e| e.level);
            let grandchildren = entry
                .map(|e| e.children.iter().map(|g| grandchild(g, &mine)).collect())
                .unwrap_or_default();
            TreeNode {
                site: common_site(mine.iter().filter_map(|c| c.site.as_ref()), level),
                level,
                name: None,
                state: entry.map_or(Health::Unknown, |e| e.state.into()),
                since: entry.map(|e| e.since),
                last_seen: entry.map(|e| e.last_seen),
                devices_online: entry.map_or(0, |e| e.devices_online),
                devices_total: entry.map_or(0, |e| e.devices_total),
                backlog: entry.map(|e| e.backlog).unwrap_or_default(),
                downlink_backlog: Some(backlog_of(lanes, &child_link(&id))),
                alerts,
                children: grandchildren,
                id,
            }
        })
        .collect::<Vec<_>>();
    let devices_online = nodes.iter().map(|n| n.devices_online).sum();
    let devices_total = nodes.iter().map(|n| n.devices_total).sum();
    TreeNode {
        id: this.id.clone(),
        level: Some(this.level),
        name: Some(this.name.clone()),
        site: this.site.clone().or_else(|| {
            common_site(
                counts.iter().filter_map(|c| c.site.as_ref()),
                Some(this.level),
            )
        }),
        state: Health::Online,
        since: None,
        last_seen: None,
        devices_online,
        devices_total,
        backlog: backlog_of(lanes, PARENT_LINK),
        downlink_backlog: None,
        alerts: total,
        children: nodes,
    }
}

#[cfg(test)]
mod tests {
    use vigil_wire::Status;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    fn count(
        origin: &str,
        site: &str,
        severity: Severity,
        open: u64,
        active: u64,
    ) -> OpenAlertCount {
        OpenAlertCount {
            origin: Some(node(origin)),
            site: Some(SitePath::new(site).expect("site")),
            severity,
            open,
            active,
            unacknowledged: open,
        }
    }

    fn hub() -> ThisHub {
        ThisHub {
            id: node("city-gz"),
            level: Level::City,
            name: "Guangzhou".into(),
            site: None,
        }
    }

    #[test]
    fn alerts_are_counted_at_the_child_they_came_through() {
        let t = Timestamp::from_millis(1_000);
        let mut county = Status::online(node("county-by"), Some(Level::County), t);
        county.devices_online = 5;
        county.devices_total = 6;
        county.children = vec![ChildStatus::new(node("gw-1"), NodeState::Online)];
        let mut table = vigil_link::Children::new();
        table.on_status(county, t);
        let children: Vec<ChildInfo> = table.iter().cloned().collect();
        let counts = vec![
            count("gw-1", "ministry/gd/gz/by/p1", Severity::Critical, 2, 1),
            count("gw-2", "ministry/gd/gz/by/p2", Severity::Minor, 1, 1),
            count("gw-9", "ministry/gd/gz/th/p9", Severity::Major, 3, 0),
        ];
        let mut routes = BTreeMap::new();
        routes.insert(node("gw-2"), node("county-by"));
        let lanes = vec![
            (
                "child:county-by".to_owned(),
                Lane::Normal,
                LaneState {
                    backlog_records: 4,
                    ..LaneState::default()
                },
            ),
            (
                "parent".to_owned(),
                Lane::Critical,
                LaneState {
                    backlog_records: 2,
                    ..LaneState::default()
                },
            ),
        ];
        let tree = build(&hub(), children, &routes, &counts, &lanes);
        assert_eq!(tree.alerts.open, 6);
        assert_eq!(tree.backlog.critical, 2);
        assert_eq!(
            tree.site.as_ref().map(SitePath::as_str),
            Some("ministry/gd/gz")
        );
        assert_eq!(tree.children.len(), 2);

        let by = &tree.children[0];
        assert_eq!(by.id.as_str(), "county-by");
        assert_eq!(by.state, Health::Online);
        assert_eq!(by.alerts.open, 3);
        assert_eq!(by.alerts.by_severity.get(&Severity::Critical), Some(&2));
        assert_eq!(
            by.site.as_ref().map(SitePath::as_str),
            Some("ministry/gd/gz/by")
        );
        assert_eq!(by.downlink_backlog.map(|b| b.normal), Some(4));
        assert_eq!(by.children.len(), 1);
        assert_eq!(by.children[0].alerts.open, 2, "gw-1's own alerts");
        assert_eq!(
            by.children[0].site.as_ref().map(SitePath::as_str),
            Some("ministry/gd/gz/by/p1")
        );

        let unknown = &tree.children[1];
        assert_eq!(unknown.id.as_str(), "gw-9");
        assert_eq!(unknown.state, Health::Unknown);
        assert_eq!(unknown.alerts.open, 3);
        assert_eq!(tree.devices_total, 6);
    }

    #[test]
    fn common_sites() {
        let s = |p: &str| SitePath::new(p).expect("site");
        let sites = [s("a/b/c/d/e"), s("a/b/c/d/f")];
        assert_eq!(common_site(&sites, None), Some(s("a/b/c/d")));
        assert_eq!(common_site(&sites, Some(Level::City)), Some(s("a/b/c")));
        assert_eq!(common_site(&sites, Some(Level::Facility)), None);
        assert_eq!(common_site(&[s("a/b"), s("x/y")], None), None);
        assert_eq!(common_site(&[], None), None);
    }
}
