//! Node health as alarms (docs/ARCHITECTURE.md#node-health-alarms): a direct child that goes
//! offline raises `node_offline` about it at this hub, cleared when it returns; a child whose
//! reported backlog reaches `[link] backlog_alarm` raises `link_backlog`, cleared once it is
//! below half of it. The alerts are the hub's own ([`crate::alarms`]): they are listed, streamed
//! and escalated like any alert.
//!
//! **Offline** is the link engine's verdict (the child's last will, or its own `offline`
//! status: `ChildInfo::state`) or silence: no status and no traffic (a batch, an ack) for
//! `[link] offline_after`. A connected child republishes its status every 30 s by default,
//! so the default 90 s tolerates two lost statuses. A child comes back with its next
//! status or traffic.
//!
//! **Backlog** is what the child reports in its status: records waiting in its outbox
//! towards this hub, both lanes. It is judged only while the child is online (a last will
//! keeps the last figures, which say nothing new). Between half the limit and the limit
//! the alarm keeps its state (hysteresis), so a backlog hovering at the limit does not
//! flap.
//!
//! [`NodeHealth`] is the pure decision: table snapshots and the time in, raise/clear
//! actions out, tested without I/O. [`run`] feeds it the link engine's table of the
//! children (`DownlinksHandle::watch_children`, which the hub's `Children` follows too) at
//! every change — every status, last will or first traffic — and on a timer for silence
//! (every second, or `offline_after / 2` when shorter), and hands its actions to
//! [`HubAlarms::condition`] (which waits for room: a change is never dropped). After a
//! restart every child is judged afresh; the alarm writer finds the open alerts in the
//! store, so an offline child that is still offline is not raised twice, and one that came
//! back clears its alert.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil_core::{NodeId, Timestamp};
use vigil_link::{ChildInfo, Children as ChildTable};
use vigil_wire::NodeState;

use crate::alarms::{AlarmKind, HubAlarms};
use crate::config::LinkSection;

/// One raise or clear decided by [`NodeHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthAction {
    /// The child.
    pub node: NodeId,
    /// `node_offline` or `link_backlog`.
    pub kind: AlarmKind,
    /// Raise (`true`) or clear.
    pub active: bool,
    /// What the operator reads.
    pub message: String,
}

/// What was last told the alarms about a child (`None`: nothing yet, since this hub started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Told {
    offline: Option<bool>,
    backlog: Option<bool>,
}

/// The pure state machine behind node health; see the module docs.
#[derive(Debug, Clone)]
pub struct NodeHealth {
    offline_after: i64,
    backlog_alarm: u64,
    told: BTreeMap<NodeId, Told>,
}

impl NodeHealth {
    /// Judges by `[link]`.
    pub fn new(link: &LinkSection) -> Self {
        NodeHealth {
            offline_after: i64::try_from(link.offline_after.as_millis()).unwrap_or(i64::MAX),
            backlog_alarm: link.backlog_alarm.max(1),
            told: BTreeMap::new(),
        }
    }

    /// The raises and clears that `children` (the table as it is at `now`) calls for.
    pub fn observe(&mut self, children: &[ChildInfo], now: Timestamp) -> Vec<HealthAction> {
        let mut out = Vec::new();
        for child in children {
            let told = self.told.entry(child.node.clone()).or_default();
            let silent_ms = now.as_millis().saturating_sub(child.last_seen.as_millis());
            let gone = child.state == NodeState::Offline;
            let silent = !gone && silent_ms >= self.offline_after;
            let offline = gone || silent;
            if told.offline != Some(offline) {
                told.offline = Some(offline);
                let message = if gone {
                    format!(
                        "{} is offline: its link to this hub dropped (last will)",
                        child.node
                    )
                } else if silent {
                    format!(
                        "{} is offline: no status and no traffic for {} s ([link] offline_after = {} s)",
                        child.node,
                        silent_ms / 1000,
                        self.offline_after / 1000
                    )
                } else {
                    format!("{} is online", child.node)
                };
                out.push(HealthAction {
                    node: child.node.clone(),
                    kind: AlarmKind::NodeOffline,
                    active: offline,
                    message,
                });
            }
            if offline {
                continue;
            }
            let backlog = child.backlog.critical.saturating_add(child.backlog.normal);
            let verdict = if backlog >= self.backlog_alarm {
                Some(true)
            } else if backlog < self.backlog_alarm.div_ceil(2) {
                Some(false)
            } else {
                None // between half and the limit: as it was
            };
            if let Some(over) = verdict.filter(|v| told.backlog != Some(*v)) {
                told.backlog = Some(over);
                out.push(HealthAction {
                    node: child.node.clone(),
                    kind: AlarmKind::LinkBacklog,
                    active: over,
                    message: format!(
                        "{} reports {backlog} records waiting to reach this hub \
                         (critical {}, normal {}; [link] backlog_alarm = {})",
                        child.node,
                        child.backlog.critical,
                        child.backlog.normal,
                        self.backlog_alarm
                    ),
                });
            }
        }
        out
    }
}

/// How often the table is looked at: every second, or `offline_after / 2` when shorter.
pub fn tick(link: &LinkSection) -> Duration {
    (link.offline_after / 2).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Until `shutdown`: judges the children's table (the link engine's,
/// `DownlinksHandle::watch_children`) at every change and every [`tick`] (silence is
/// judged by the clock), and raises or clears the alarms it calls for.
pub async fn run(
    mut table: watch::Receiver<ChildTable>,
    alarms: HubAlarms,
    link: LinkSection,
    shutdown: CancellationToken,
) {
    let mut health = NodeHealth::new(&link);
    let mut every = tokio::time::interval(tick(&link));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watching = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = table.changed(), if watching => {
                // The links stopped: judge silence on the last table until shutdown.
                watching = changed.is_ok();
            }
            _ = every.tick() => {}
        }
        let snapshot: Vec<ChildInfo> = table.borrow_and_update().iter().cloned().collect();
        for action in health.observe(&snapshot, Timestamp::now()) {
            tracing::info!(
                node = %action.node, kind = %action.kind, active = action.active,
                "{}", action.message
            );
            alarms
                .condition(&action.node, action.kind, action.active, action.message)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_wire::Backlog;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("node")
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(1_795_000_000_000 + s * 1000)
    }

    fn link() -> LinkSection {
        LinkSection {
            offline_after: Duration::from_secs(90),
            backlog_alarm: 100,
            ..LinkSection::default()
        }
    }

    fn child(id: &str, state: NodeState, last_seen: Timestamp, backlog: u64) -> ChildInfo {
        let mut table = vigil_link::Children::new();
        let mut status = vigil_wire::Status::online(node(id), None, last_seen);
        status.backlog = Backlog {
            critical: backlog / 4,
            normal: backlog - backlog / 4,
        };
        table.on_status(status, last_seen);
        if state == NodeState::Offline {
            table.on_status(vigil_wire::Status::last_will(node(id)), last_seen);
        }
        table.get(&node(id)).expect("child").clone()
    }

    fn summary(actions: &[HealthAction]) -> Vec<(String, &'static str, bool)> {
        actions
            .iter()
            .map(|a| (a.node.to_string(), a.kind.as_str(), a.active))
            .collect()
    }

    #[test]
    fn a_last_will_raises_and_a_return_clears() {
        let mut h = NodeHealth::new(&link());
        let online = child("gw-1", NodeState::Online, t(0), 0);
        assert_eq!(
            summary(&h.observe(std::slice::from_ref(&online), t(1))),
            [
                ("gw-1".into(), "node_offline", false),
                ("gw-1".into(), "link_backlog", false)
            ],
            "first sight: the store's open alerts (after a restart) are cleared"
        );
        assert!(h.observe(std::slice::from_ref(&online), t(2)).is_empty());
        let gone = child("gw-1", NodeState::Offline, t(3), 0);
        let actions = h.observe(std::slice::from_ref(&gone), t(3));
        assert_eq!(summary(&actions), [("gw-1".into(), "node_offline", true)]);
        assert!(
            actions[0].message.contains("last will"),
            "{}",
            actions[0].message
        );
        assert!(h.observe(std::slice::from_ref(&gone), t(400)).is_empty());
        let back = child("gw-1", NodeState::Online, t(500), 0);
        assert_eq!(
            summary(&h.observe(&[back], t(500))),
            [("gw-1".into(), "node_offline", false)]
        );
    }

    #[test]
    fn silence_past_offline_after_is_offline() {
        let mut h = NodeHealth::new(&link());
        let quiet = child("gw-1", NodeState::Online, t(0), 0);
        h.observe(std::slice::from_ref(&quiet), t(0));
        assert!(h.observe(std::slice::from_ref(&quiet), t(89)).is_empty());
        let actions = h.observe(std::slice::from_ref(&quiet), t(90));
        assert_eq!(summary(&actions), [("gw-1".into(), "node_offline", true)]);
        assert!(
            actions[0].message.contains("offline_after"),
            "{}",
            actions[0].message
        );
        // Heard from again.
        let heard = child("gw-1", NodeState::Online, t(120), 0);
        assert_eq!(
            summary(&h.observe(&[heard], t(121))),
            [("gw-1".into(), "node_offline", false)]
        );
    }

    #[test]
    fn a_backlog_raises_at_the_limit_and_clears_below_half() {
        let mut h = NodeHealth::new(&link());
        let at = |backlog| child("gw-1", NodeState::Online, t(0), backlog);
        h.observe(&[at(10)], t(0));
        assert!(h.observe(&[at(99)], t(1)).is_empty());
        let actions = h.observe(&[at(100)], t(1));
        assert_eq!(summary(&actions), [("gw-1".into(), "link_backlog", true)]);
        assert!(
            actions[0].message.contains("100 records"),
            "{}",
            actions[0].message
        );
        assert!(h.observe(&[at(500)], t(1)).is_empty(), "raised once");
        assert!(
            h.observe(&[at(50)], t(1)).is_empty(),
            "half is not below half"
        );
        assert_eq!(
            summary(&h.observe(&[at(49)], t(1))),
            [("gw-1".into(), "link_backlog", false)]
        );
        // First sight between half and the limit: nothing said either way.
        let mut fresh = NodeHealth::new(&link());
        assert_eq!(
            summary(&fresh.observe(&[at(70)], t(1))),
            [("gw-1".into(), "node_offline", false)]
        );
    }

    #[test]
    fn an_offline_childs_stale_backlog_is_not_judged() {
        let mut h = NodeHealth::new(&link());
        let gone = child("gw-1", NodeState::Offline, t(0), 1_000);
        assert_eq!(
            summary(&h.observe(&[gone], t(0))),
            [("gw-1".into(), "node_offline", true)]
        );
    }

    #[test]
    fn the_tick_follows_offline_after() {
        assert_eq!(tick(&link()), Duration::from_secs(1));
        let short = LinkSection {
            offline_after: Duration::from_millis(600),
            ..link()
        };
        assert_eq!(tick(&short), Duration::from_millis(300));
    }
}
