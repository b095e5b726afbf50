//! What the children's links refused or flagged ([`vigil_link::Finding`]), made visible:
//! every finding raises (or counts into) a `security` alarm about the child
//! ([`HubAlarms::security_counted`], docs/ARCHITECTURE.md#site-bindings-and-admission) — a
//! forged event is an alarm an operator sees and that escalates, not just a log line — and
//! is written to the audit log, aggregated per child and reason over [`AUDIT_WINDOW`] like
//! the gate's denials (`crate::link::denials`): a child that keeps forging costs one record
//! per window and reason, whose `count` says how many refusals it stands for.
//!
//! The findings are counted where they are made (`vigil_link_refused_events_total{reason}`).
//! A clock-skew finding is the clock's own alarm's (`crate::alarms::HubAlarms::clock_skew`)
//! and is only audited here.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_core::{NodeId, Timestamp};
use vigil_link::{Finding, FindingReason, SharedStore};
use vigil_store::AuditEntry;

use crate::alarms::HubAlarms;

/// Audit action of what a child sent that was refused or flagged.
pub const ACTION_REFUSED: &str = "link.refused";

/// How long refusals of one child and reason are gathered into one audit record.
pub const AUDIT_WINDOW: Duration = Duration::from_secs(2);

/// Refusals of one child and reason not yet audited.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    count: u64,
    detail: String,
    first_at: Timestamp,
    last_at: Timestamp,
}

/// The findings gathered per child and reason, to be written once per window.
#[derive(Debug, Default)]
pub struct Gathered {
    pending: BTreeMap<(NodeId, FindingReason), Pending>,
}

impl Gathered {
    /// Adds `finding`, seen at `at`.
    pub fn add(&mut self, finding: Finding, at: Timestamp) {
        let Finding {
            child,
            reason,
            detail,
            count,
        } = finding;
        self.pending
            .entry((child, reason))
            .and_modify(|p| {
                p.count += count;
                p.last_at = at;
            })
            .or_insert(Pending {
                count,
                detail,
                first_at: at,
                last_at: at,
            });
    }

    /// The audit records of everything gathered, on hub `hub` (one per child and reason);
    /// empties the gathering.
    pub fn drain(&mut self, hub: &NodeId) -> Vec<AuditEntry> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|((child, reason), p)| AuditEntry {
                at: p.last_at,
                node: hub.to_string(),
                actor: child.to_string(),
                action: ACTION_REFUSED.to_owned(),
                target: reason.as_str().to_owned(),
                details: serde_json::json!({
                    "reason": reason.as_str(),
                    "count": p.count,
                    "detail": p.detail,
                    "first_at": p.first_at.to_string(),
                    "last_at": p.last_at.to_string(),
                }),
            })
            .collect()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Until `shutdown` (or the link stops): raises each finding as a `security` alarm about
/// its child at once, and audits them, gathered per child and reason, every
/// [`AUDIT_WINDOW`] (what is gathered at shutdown is written before returning).
pub async fn run(
    mut findings: mpsc::Receiver<Finding>,
    hub: NodeId,
    store: SharedStore,
    alarms: HubAlarms,
    shutdown: CancellationToken,
) {
    let mut gathered = Gathered::default();
    let mut tick = tokio::time::interval(AUDIT_WINDOW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            finding = findings.recv() => match finding {
                Some(finding) => {
                    if finding.reason != FindingReason::ClockSkew {
                        alarms.security_counted(
                            &finding.child,
                            finding.reason.as_str(),
                            finding.detail.clone(),
                            finding.count,
                        );
                    }
                    gathered.add(finding, Timestamp::now());
                }
                None => break,
            },
            _ = tick.tick() => write(&store, &hub, &mut gathered).await,
        }
    }
    write(&store, &hub, &mut gathered).await;
}

async fn write(store: &SharedStore, hub: &NodeId, gathered: &mut Gathered) {
    if gathered.is_empty() {
        return;
    }
    let entries = gathered.drain(hub);
    let count = entries.len();
    let result = store
        .call(move |s| {
            for entry in &entries {
                s.audit_append(entry)?;
            }
            Ok(())
        })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, records = count, "cannot audit what the children's links refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_gather_per_child_and_reason() {
        let hub = NodeId::new("county").expect("id");
        let x = NodeId::new("gw-x").expect("id");
        let finding = |reason, count| Finding {
            child: x.clone(),
            reason,
            detail: format!("{reason:?}"),
            count,
        };
        let mut g = Gathered::default();
        g.add(
            finding(FindingReason::ForeignOrigin, 2),
            Timestamp::from_millis(1),
        );
        g.add(
            finding(FindingReason::ForeignOrigin, 3),
            Timestamp::from_millis(5),
        );
        g.add(
            finding(FindingReason::ForeignAudit, 1),
            Timestamp::from_millis(6),
        );
        let entries = g.drain(&hub);
        assert!(g.is_empty());
        assert_eq!(entries.len(), 2);
        let origin = entries
            .iter()
            .find(|e| e.target == "foreign_origin")
            .expect("foreign_origin");
        assert_eq!(origin.actor, "gw-x");
        assert_eq!(origin.action, ACTION_REFUSED);
        assert_eq!(origin.details["count"], 5);
        assert_eq!(origin.details["detail"], "ForeignOrigin");
        assert_eq!(origin.at, Timestamp::from_millis(5));
    }
}
