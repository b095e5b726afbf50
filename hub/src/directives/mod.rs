//! Directives down the tree at a hub (docs/ARCHITECTURE.md#directives): an operator's
//! directive issued here ([`api`]) or received from the parent is passed to the children whose
//! site binding intersects its target, and — received — acknowledged up.
//!
//! The link commits a received directive (pending) in the batch's transaction; [`run`] then
//! does this hub's part for every pending one in one store transaction
//! (`Store::directive_handle`): the directive on each chosen child's downlink outbox
//! (`critical` lane), this hub's own acknowledgement on the `parent` outbox, the directive
//! marked handled, an audit record. A crash before that leaves it pending: done after the
//! restart. The children's acknowledgements come up through the link and are queued on to the
//! parent there (`vigil_store::directives`).
//!
//! A hub has no detection rules or cameras of its own: it acknowledges `posture` and
//! `snapshot` as not applicable here (its children apply them), `drill` and `order` as
//! applied (stored and shown to its operators).

pub mod api;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_core::{NodeId, SitePath, Timestamp};
use vigil_link::{child_link, SharedStore};
use vigil_store::{AuditEntry, Handling, NodeBinding, Store, StoreError};
use vigil_wire::{Directive, DirectiveAck, DirectiveBody, DirectiveOutcome};

use crate::link::OutboxPokes;

/// How often pending directives are looked for (a directive from the parent waits at most
/// this long before it is passed on).
pub const POLL: Duration = Duration::from_millis(250);

/// Whether two site subtrees overlap: one lies within the other.
pub fn intersects(a: &SitePath, b: &SitePath) -> bool {
    a.is_within(b) || b.is_within(a)
}

/// The direct children a directive to `target` goes to: those bound (enrolled here or
/// declared in hub.toml) to a site that intersects it. Bindings reported by a child hub for
/// nodes below it are that hub's to pass to.
pub fn recipients(bindings: &[NodeBinding], target: &SitePath) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = bindings
        .iter()
        .filter(|b| b.via.is_none() && intersects(&b.site, target))
        .map(|b| b.node.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// This hub's own acknowledgement of a directive it received.
pub fn own_ack(
    this: &NodeId,
    directive: &Directive,
    relayed_to: Vec<NodeId>,
    now: Timestamp,
) -> DirectiveAck {
    let (outcome, reason) = match &directive.body {
        DirectiveBody::Posture { .. } => (
            DirectiveOutcome::NotApplicable,
            Some("a hub has no detection rules: passed to its children".to_owned()),
        ),
        DirectiveBody::Snapshot { .. } => (
            DirectiveOutcome::NotApplicable,
            Some("a hub has no cameras: passed to its children".to_owned()),
        ),
        DirectiveBody::Drill { .. } | DirectiveBody::Order { .. } => {
            (DirectiveOutcome::Applied, None)
        }
    };
    DirectiveAck {
        directive: directive.id,
        node: this.clone(),
        outcome,
        reason,
        at: now,
        relayed_to,
    }
}

/// What [`handle_pending`] needs to know about this hub.
#[derive(Debug, Clone)]
pub struct HubDirectives {
    /// This hub.
    pub node: NodeId,
    /// Whether it has a parent (acknowledgements go up on `parent`).
    pub has_parent: bool,
    /// Its `[node] site`, when configured: a directive from the parent whose target lies
    /// outside it is acknowledged as not applicable and passed to nobody.
    pub site: Option<SitePath>,
}

/// What [`handle_pending`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// The outboxes it queued on: to poke.
    pub links: Vec<String>,
    /// Directives issued here, sent to the children.
    pub sent: u64,
    /// Directives from the parent, passed on and acknowledged.
    pub received: u64,
}

impl Handled {
    /// Counts it in `metrics` and pokes its outboxes.
    pub fn report(self, metrics: &crate::metrics::HubMetrics, pokes: &OutboxPokes) {
        for (event, n) in [("sent", self.sent), ("received", self.received)] {
            if n > 0 {
                metrics.directives.with_label_values(&[event]).inc_by(n);
            }
        }
        for link in self.links {
            pokes.poke(&link);
        }
    }
}

/// Does this hub's part for every pending directive.
pub fn handle_pending(store: &mut Store, hub: &HubDirectives) -> Result<Handled, StoreError> {
    let pending = store.directives_pending()?;
    if pending.is_empty() {
        return Ok(Handled::default());
    }
    let bindings = store.node_bindings()?;
    let mut done = Handled::default();
    for directive in pending {
        let issued_here = store.directive(&directive.id)?.is_some_and(|v| v.local);
        let outside = !issued_here
            && hub
                .site
                .as_ref()
                .is_some_and(|site| !intersects(site, &directive.target));
        let children: Vec<(NodeId, String)> = if outside {
            Vec::new()
        } else {
            recipients(&bindings, &directive.target)
                .into_iter()
                .map(|c| {
                    let link = child_link(&c);
                    (c, link)
                })
                .collect()
        };
        let now = Timestamp::now();
        let ack = (!issued_here).then(|| {
            let mut ack = own_ack(
                &hub.node,
                &directive,
                children.iter().map(|(c, _)| c.clone()).collect(),
                now,
            );
            if outside {
                ack.outcome = DirectiveOutcome::NotApplicable;
                ack.reason = Some(format!(
                    "the target {} is outside this hub's site: passed to nobody",
                    directive.target
                ));
            }
            ack
        });
        let ack_link = (hub.has_parent && ack.is_some()).then_some(vigil_link::PARENT_LINK);
        let audit = AuditEntry {
            at: now,
            node: hub.node.to_string(),
            actor: if issued_here {
                directive.actor.clone()
            } else {
                "system".to_owned()
            },
            action: if issued_here {
                "directive.send".to_owned()
            } else {
                "directive.receive".to_owned()
            },
            target: directive.id.to_string(),
            details: serde_json::json!({
                "kind": directive.body.kind(),
                "target": directive.target.as_str(),
                "origin": directive.origin.as_str(),
                "children": children.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
                "outcome": ack.as_ref().map(|a| a.outcome.as_str()),
            }),
        };
        let handling = Handling {
            children: &children,
            ack,
            ack_link,
            audit,
        };
        if store.directive_handle(&directive, &handling)? {
            tracing::info!(directive = %directive.id, kind = directive.body.kind(),
                           target = %directive.target, children = children.len(),
                           "directive passed on");
            if issued_here {
                done.sent += 1;
            } else {
                done.received += 1;
            }
            done.links
                .extend(children.into_iter().map(|(_, link)| link));
            if ack_link.is_some() {
                done.links.push(vigil_link::PARENT_LINK.to_owned());
            }
        }
    }
    Ok(done)
}

/// Handles pending directives every [`POLL`] until `shutdown`.
pub async fn run(
    store: SharedStore,
    hub: HubDirectives,
    pokes: OutboxPokes,
    metrics: crate::metrics::HubMetrics,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let hub = hub.clone();
        match store.call(move |s| handle_pending(s, &hub)).await {
            Ok(handled) => handled.report(&metrics, &pokes),
            Err(error) => tracing::error!(%error, "cannot pass pending directives on"),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_store::BindingSource;

    use super::*;

    fn site(s: &str) -> SitePath {
        SitePath::new(s).expect("valid")
    }

    fn binding(node: &str, at: &str, via: Option<&str>) -> NodeBinding {
        NodeBinding {
            node: NodeId::new(node).expect("valid"),
            site: site(at),
            source: if via.is_some() {
                BindingSource::Reported
            } else {
                BindingSource::Enrolled
            },
            via: via.map(|v| NodeId::new(v).expect("valid")),
            parent: None,
            kind: via.is_none().then_some(vigil_store::NodeKind::Gateway),
            updated_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn a_directive_goes_to_the_direct_children_whose_site_intersects_its_target() {
        let bindings = [
            binding("gw-3", "m/p/c/by/prison-3", None),
            binding("gw-4", "m/p/c/by/prison-4", None),
            binding("county-2", "m/p/c/hd", None),
            binding("gw-9", "m/p/c/hd/prison-9", Some("county-2")),
        ];
        let names = |v: Vec<NodeId>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            names(recipients(&bindings, &site("m/p/c/by"))),
            ["gw-3", "gw-4"]
        );
        assert_eq!(
            names(recipients(&bindings, &site("m/p/c/by/prison-4"))),
            ["gw-4"]
        );
        // A target inside a child hub's subtree goes to that hub, not past it.
        assert_eq!(
            names(recipients(&bindings, &site("m/p/c/hd/prison-9"))),
            ["county-2"]
        );
        assert_eq!(
            names(recipients(&bindings, &site("m/p"))),
            ["county-2", "gw-3", "gw-4"]
        );
        assert!(recipients(&bindings, &site("m/other")).is_empty());
        // Whole segments: m/p/c/by does not intersect m/p/c/byx.
        assert!(recipients(&bindings, &site("m/p/c/byx")).is_empty());
    }

    #[test]
    fn a_directive_from_the_parent_outside_this_hubs_site_goes_nowhere() {
        let mut store = Store::open_in_memory().expect("store");
        let parent = NodeId::new("city").expect("valid");
        let directive = Directive {
            id: vigil_core::EventId::from_bytes([2; 16]),
            // A parent naming this hub as the origin does not make it issued here.
            origin: NodeId::new("county").expect("valid"),
            target: site("m/p/c/other"),
            actor: "sup".into(),
            issued_at: Timestamp::from_millis(0),
            deadline: Timestamp::from_millis(1),
            body: DirectiveBody::Order { text: "x".into() },
        };
        let records = [vigil_wire::DirectiveRecord::Directive(directive.clone())];
        let batch = vigil_store::InboundBatch {
            peer: &parent,
            lane: vigil_core::Lane::Critical,
            first_seq: 1,
            events: &[],
            audit: &[],
            bodies: None,
            directives: vigil_store::InboundDirectives::FromParent(&records),
        };
        store
            .apply_batches_and_forward(&[batch], None, |_, _| None)
            .expect("applied");
        let hub = HubDirectives {
            node: NodeId::new("county").expect("valid"),
            has_parent: true,
            site: Some(site("m/p/c/by")),
        };
        let done = handle_pending(&mut store, &hub).expect("handled");
        assert_eq!((done.sent, done.received), (0, 1));
        assert_eq!(done.links, [vigil_link::PARENT_LINK]);
        let view = store.directive(&directive.id).expect("read").expect("held");
        assert!(view.delivered_to.is_empty());
        assert_eq!(view.acks.len(), 1);
        assert_eq!(view.acks[0].ack.outcome, DirectiveOutcome::NotApplicable);
        assert!(store.directives_pending().expect("pending").is_empty());
    }

    #[test]
    fn a_hub_acknowledges_what_it_can_apply() {
        let this = NodeId::new("county").expect("valid");
        let mut d = Directive {
            id: vigil_core::EventId::from_bytes([1; 16]),
            origin: NodeId::new("city").expect("valid"),
            target: site("m/p/c"),
            actor: "sup".into(),
            issued_at: Timestamp::from_millis(0),
            deadline: Timestamp::from_millis(1),
            body: DirectiveBody::Posture {
                until: Timestamp::from_millis(5),
            },
        };
        let ack = own_ack(&this, &d, Vec::new(), Timestamp::from_millis(2));
        assert_eq!(ack.outcome, DirectiveOutcome::NotApplicable);
        d.body = DirectiveBody::Order { text: "x".into() };
        assert_eq!(
            own_ack(&this, &d, Vec::new(), Timestamp::from_millis(2)).outcome,
            DirectiveOutcome::Applied
        );
    }
}
