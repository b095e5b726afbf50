//! What a node relays when it commits a peer's batch, and how its policy decides: per event
//! ([`EscalationPolicy`]) or per alert ([`AlertPolicy`], which sees the alert the event
//! belongs to).
//!
//! A per-event policy sees only the event, so it can judge a raise (which carries the
//! severity) but not an acknowledgement or a clear, which say nothing of the alert they act
//! on. An alert policy gets an [`AlertContext`]: the alert folded from every event stored
//! here *and* the batch's own (so a raise and its acknowledgement arriving in one batch
//! are judged alike), and the highest severity the alert has had. The store computes it in
//! the transaction that commits the batch and queues what the policy selects
//! (`Store::apply_batch_and_forward_by_alert`), so nothing can change the alert in between.
//!
//! The store keeps each alert's view and peak severity as events arrive, so judging a batch
//! costs nothing per event of an alert's history: a chattering alarm with thousands of
//! events costs what a new one does.

use std::sync::Arc;

use vigil_core::{AlertEvent, Lane, NodeId};
use vigil_store::{Admit, ForwardOutcome, InboundBatch, Store, StoreError};

use crate::handoff::OutboxPoke;

pub use vigil_store::{peak_severity, AlertContext};

/// A per-event escalation policy: which of the events a peer sends are relayed, and in
/// which lane (`None`: they stay here).
pub type EscalationPolicy = Arc<dyn Fn(&AlertEvent) -> Option<Lane> + Send + Sync>;

/// A per-alert escalation policy: like [`EscalationPolicy`], with the event's alert as it
/// stands once the batch is committed.
pub type AlertPolicy = Arc<dyn Fn(&AlertEvent, &AlertContext) -> Option<Lane> + Send + Sync>;

/// What a relay decides with.
#[derive(Clone)]
pub enum ForwardPolicy {
    /// Looks at each event alone.
    Event(EscalationPolicy),
    /// Looks at each event with its alert ([`AlertContext`]).
    Alert(AlertPolicy),
}

impl std::fmt::Debug for ForwardPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForwardPolicy::Event(_) => "ForwardPolicy::Event(..)",
            ForwardPolicy::Alert(_) => "ForwardPolicy::Alert(..)",
        })
    }
}

/// Relaying up: the children's new events that `policy` selects are queued on `link` (the
/// hub's own `parent` outbox) in the transaction that commits them, then `poke` wakes the
/// hub's uplink. The same relay serves an [`Uplink`](crate::Uplink) that passes its
/// parent's downlink events on ([`Uplink::with_forward`](crate::Uplink::with_forward)).
#[derive(Clone)]
pub struct Forward {
    /// The outbox link to queue on (normally [`PARENT_LINK`](crate::uplink::PARENT_LINK)).
    pub link: String,
    /// What goes on, in which lane (`None`: it stays here).
    pub policy: ForwardPolicy,
    /// The link draining `link`, woken after each commit that queued something.
    pub poke: Option<OutboxPoke>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("link", &self.link)
            .field("policy", &self.policy)
            .field("poke", &self.poke.is_some())
            .finish()
    }
}

impl Forward {
    /// Forwarding to `link` by a per-event `policy`, waking nobody.
    pub fn new(
        link: impl Into<String>,
        policy: impl Fn(&AlertEvent) -> Option<Lane> + Send + Sync + 'static,
    ) -> Self {
        Forward {
            link: link.into(),
            policy: ForwardPolicy::Event(Arc::new(policy)),
            poke: None,
        }
    }

    /// Forwarding to `link` by a per-alert `policy`, which sees each event's alert as it
    /// stands with the batch committed ([`AlertContext`](crate::AlertContext)), waking
    /// nobody.
    pub fn by_alert(
        link: impl Into<String>,
        policy: impl Fn(&AlertEvent, &crate::AlertContext) -> Option<Lane> + Send + Sync + 'static,
    ) -> Self {
        Forward {
            link: link.into(),
            policy: ForwardPolicy::Alert(Arc::new(policy)),
            poke: None,
        }
    }

    /// Wakes `poke` (the link draining `link`) after queuing.
    pub fn with_poke(mut self, poke: OutboxPoke) -> Self {
        self.poke = Some(poke);
        self
    }
}

/// Applies a batch `first_seq ..` of `events` from `peer` on `lane`, and — with `forward`
/// — queues what its policy selects on the forwarding link, in one transaction
/// (`Store::apply_batch_and_forward`, or `…_by_alert` for an alert policy, whose contexts
/// the store builds in that transaction).
pub(crate) fn apply_and_forward(
    store: &mut Store,
    peer: &NodeId,
    lane: Lane,
    first_seq: u64,
    events: &[AlertEvent],
    forward: Option<(&str, &ForwardPolicy)>,
) -> Result<ForwardOutcome, StoreError> {
    match forward {
        None => store.apply_batch_and_forward(peer, lane, first_seq, events, None, |_| None),
        Some((link, ForwardPolicy::Event(policy))) => {
            store.apply_batch_and_forward(peer, lane, first_seq, events, Some(link), |e| policy(e))
        }
        Some((link, ForwardPolicy::Alert(policy))) => {
            store.apply_batch_and_forward_by_alert(peer, lane, first_seq, events, link, |e, ctx| {
                policy(e, ctx)
            })
        }
    }
}

/// Applies `batches` (from any peers) and — with `forward` — queues what its policy
/// selects, all in one transaction (`Store::apply_batches_admitted_and_forward`): the group
/// commit of a parent that finds several children's batches waiting, each batch judged by
/// `admit` first ([`crate::admission`]). All or nothing.
pub(crate) fn apply_group(
    store: &mut Store,
    batches: &[InboundBatch<'_>],
    forward: Option<(&str, &ForwardPolicy)>,
    admit: Option<&mut Admit<'_>>,
) -> Result<Vec<ForwardOutcome>, StoreError> {
    match forward {
        None => store.apply_batches_admitted_and_forward(batches, None, |_, _| None, admit),
        Some((link, ForwardPolicy::Event(policy))) => {
            store.apply_batches_admitted_and_forward(batches, Some(link), |e, _| policy(e), admit)
        }
        Some((link, ForwardPolicy::Alert(policy))) => store.apply_batches_admitted_and_forward(
            batches,
            Some(link),
            |e, ctx| policy(e, ctx),
            admit,
        ),
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, Severity, SitePath,
        Timestamp,
    };

    use super::*;

    fn gw() -> NodeId {
        NodeId::new("gw-1").expect("valid")
    }

    fn event(alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: gw(),
            hlc: Hlc::new(1_795_000_000_000 + wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    fn raise(alert: AlertId, wall: u64, severity: Severity) -> AlertEvent {
        let key = AlertKey::new(
            gw(),
            "fence-1/zone1",
            ConditionKind::new("state").expect("kind"),
        )
        .expect("key");
        event(
            alert,
            wall,
            AlertEventBody::Raised {
                key,
                site: SitePath::new("ministry/gd/gz/by/p1").expect("site"),
                severity,
                message: "fence".into(),
                value: None,
                at: Timestamp::from_millis(1_795_000_000_000),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
        )
    }

    fn ack(alert: AlertId, wall: u64) -> AlertEvent {
        event(alert, wall, AlertEventBody::Acknowledged { comment: None })
    }

    fn downgrade(alert: AlertId, wall: u64, severity: Severity) -> AlertEvent {
        event(
            alert,
            wall,
            AlertEventBody::ValueUpdated {
                value: None,
                severity: Some(severity),
                message: None,
                at: Timestamp::from_millis(1_795_000_000_000),
            },
        )
    }

    /// Relays every event of an alert whose peak is at least minor, in its current lane.
    fn minor_and_up() -> ForwardPolicy {
        ForwardPolicy::Alert(Arc::new(|_, ctx: &AlertContext| {
            let relayed =
                ctx.view.key.is_some() && ctx.peak_severity.is_some_and(|p| p >= Severity::Minor);
            relayed.then(|| ctx.view.severity.lane())
        }))
    }

    fn up(store: &Store) -> Vec<AlertEvent> {
        Lane::ALL
            .iter()
            .flat_map(|&lane| {
                store
                    .outbox_read("up", lane, 0, 100, 1 << 20)
                    .expect("read")
            })
            .map(
                |r| match serde_json::from_slice(&r.payload).expect("link event") {
                    vigil_wire::LinkEvent::Alert(e) => e,
                    other => panic!("not an alert event: {other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn an_alert_policy_relays_what_follows_a_relayed_alert() {
        let mut store = Store::open_in_memory().expect("open");
        let policy = minor_and_up();
        let (loud, quiet) = (AlertId::generate(), AlertId::generate());
        // A raise and its ack in one batch; a warning that stays here.
        let batch = [
            raise(loud, 1, Severity::Critical),
            ack(loud, 2),
            raise(quiet, 3, Severity::Warning),
        ];
        let out = apply_and_forward(
            &mut store,
            &gw(),
            Lane::Critical,
            1,
            &batch,
            Some(("up", &policy)),
        )
        .expect("apply");
        assert_eq!(out.fresh, vec![0, 1, 2]);
        assert_eq!(out.forwarded.len(), 2);
        // Later batches: the loud alert drops to a warning, is acknowledged again and
        // commented — all of it follows; the quiet one's ack does not.
        let batch = [
            downgrade(loud, 4, Severity::Warning),
            ack(loud, 5),
            ack(quiet, 6),
        ];
        let out = apply_and_forward(
            &mut store,
            &gw(),
            Lane::Critical,
            4,
            &batch,
            Some(("up", &policy)),
        )
        .expect("apply");
        assert_eq!(out.forwarded.len(), 2);
        let relayed: Vec<AlertId> = up(&store).iter().map(|e| e.alert).collect();
        assert_eq!(relayed, vec![loud, loud, loud, loud]);
        // A resend relays nothing again.
        let out = apply_and_forward(
            &mut store,
            &gw(),
            Lane::Critical,
            4,
            &batch,
            Some(("up", &policy)),
        )
        .expect("apply");
        assert!(out.forwarded.is_empty());
        assert_eq!(out.batch.duplicates, 3);
    }

    #[test]
    fn an_ack_before_its_raise_stays_here() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::generate();
        let out = apply_and_forward(
            &mut store,
            &gw(),
            Lane::Normal,
            1,
            &[ack(a, 1)],
            Some(("up", &minor_and_up())),
        )
        .expect("apply");
        assert_eq!((out.fresh.len(), out.forwarded.len()), (1, 0));
    }

    #[test]
    fn event_policies_and_no_forward_still_work() {
        let mut store = Store::open_in_memory().expect("open");
        let a = AlertId::generate();
        let every = ForwardPolicy::Event(Arc::new(|_| Some(Lane::Normal)));
        let out = apply_and_forward(
            &mut store,
            &gw(),
            Lane::Normal,
            1,
            &[ack(a, 1)],
            Some(("up", &every)),
        )
        .expect("apply");
        assert_eq!(out.forwarded, vec![(Lane::Normal, 1)]);
        let out = apply_and_forward(&mut store, &gw(), Lane::Normal, 2, &[ack(a, 2)], None)
            .expect("apply");
        assert!(out.forwarded.is_empty());
        assert_eq!(out.batch.ack_upto, 2);
    }
}
