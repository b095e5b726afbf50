//! What a parent refuses or flags about what a child says
//! (docs/ARCHITECTURE.md#site-bindings-and-admission).
//!
//! The parent end ([`Downlinks`](crate::Downlinks)) judges every event, audit record and
//! reported binding a child sends against the child's site binding
//! ([`crate::admission`]); each refusal — and an audit log found behind or forked — is a
//! [`Finding`], handed to the owner on the channel [`Downlinks::take_findings`]
//! (crate::Downlinks::take_findings) gives, and counted in
//! `vigil_link_refused_events_total{reason}`. The hub audits them and raises a security
//! alert about the child.

use vigil_core::NodeId;

/// Why a child's event, record or report was refused or flagged. [`as_str`](Self::as_str)
/// is the metric label and the audit detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingReason {
    /// The child has no site binding here (not enrolled with a site, not declared in
    /// hub.toml): everything it sends is refused.
    Unbound,
    /// A raise at a site outside the child's binding (or outside its origin's).
    SiteOutsideBinding,
    /// An event whose origin (or alert key's origin) is a node bound elsewhere here: a
    /// direct child of this hub, a node bound through another child, or this hub itself.
    ForeignOrigin,
    /// An action (or a raise) on an alert that came through another child.
    AlertNotThroughChild,
    /// An audit record under a node outside the child's subtree, or this hub's own id.
    ForeignAudit,
    /// An event, action or audit record whose origin is this hub's `[parent]` node or a
    /// hub above it: no child speaks for an ancestor.
    AncestorOrigin,
    /// A reported binding outside the child's own, or naming a node bound elsewhere here.
    ForeignBinding,
    /// An event stamped too far ahead of this hub's clock.
    ClockSkew,
    /// The child's audit log is behind the copy held here (records it wrote are gone).
    AuditBehind,
    /// The child's audit log differs from the copy held here.
    AuditForked,
    /// A directive record a child may not send: a directive (they travel down only), or an
    /// acknowledgement of a directive not passed to it or for a node it did not pass it to
    /// (docs/ARCHITECTURE.md#directives).
    ForgedDirective,
}

impl FindingReason {
    /// `unbound`, `site_outside_binding`, `foreign_origin`, `alert_not_through_child`,
    /// `foreign_audit`, `ancestor_origin`, `foreign_binding`, `clock_skew`, `audit_behind`,
    /// `audit_forked`, `forged_directive`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FindingReason::Unbound => "unbound",
            FindingReason::SiteOutsideBinding => "site_outside_binding",
            FindingReason::ForeignOrigin => "foreign_origin",
            FindingReason::AlertNotThroughChild => "alert_not_through_child",
            FindingReason::ForeignAudit => "foreign_audit",
            FindingReason::AncestorOrigin => "ancestor_origin",
            FindingReason::ForeignBinding => "foreign_binding",
            FindingReason::ClockSkew => "clock_skew",
            FindingReason::AuditBehind => "audit_behind",
            FindingReason::AuditForked => "audit_forked",
            FindingReason::ForgedDirective => "forged_directive",
        }
    }

    /// Every reason, for the metric's labels.
    pub const ALL: [FindingReason; 11] = [
        FindingReason::Unbound,
        FindingReason::SiteOutsideBinding,
        FindingReason::ForeignOrigin,
        FindingReason::AlertNotThroughChild,
        FindingReason::ForeignAudit,
        FindingReason::AncestorOrigin,
        FindingReason::ForeignBinding,
        FindingReason::ClockSkew,
        FindingReason::AuditBehind,
        FindingReason::AuditForked,
        FindingReason::ForgedDirective,
    ];
}

impl std::fmt::Display for FindingReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a child said that this hub refused or flagged: `count` of the same `reason`
/// from `child` (a batch's refusals of one reason come as one finding), `detail` naming the
/// first (event id, origin, site, alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The direct child that sent it.
    pub child: NodeId,
    /// Why.
    pub reason: FindingReason,
    /// What, in words (the first of `count`).
    pub detail: String,
    /// How many of the same reason (events, records, bindings), at least 1.
    pub count: u64,
}

/// Folds `(reason, detail)` refusals of one child into one finding per reason, in the order
/// each reason first appears, keeping the first detail.
pub fn aggregate(child: &NodeId, refusals: Vec<(FindingReason, String)>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for (reason, detail) in refusals {
        match out.iter_mut().find(|f| f.reason == reason) {
            Some(f) => f.count += 1,
            None => out.push(Finding {
                child: child.clone(),
                reason,
                detail,
                count: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_fold_per_reason_keeping_the_first_detail() {
        let child = NodeId::new("gw-1").expect("id");
        let found = aggregate(
            &child,
            vec![
                (FindingReason::ForeignOrigin, "a".into()),
                (FindingReason::SiteOutsideBinding, "b".into()),
                (FindingReason::ForeignOrigin, "c".into()),
            ],
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].reason, FindingReason::ForeignOrigin);
        assert_eq!((found[0].detail.as_str(), found[0].count), ("a", 2));
        assert_eq!(found[1].count, 1);
        let labels: std::collections::BTreeSet<_> = FindingReason::ALL
            .iter()
            .map(FindingReason::as_str)
            .collect();
        assert_eq!(labels.len(), FindingReason::ALL.len());
    }
}
