//! Actions from above, passed on below: the parent's downlink events (an acknowledgement at
//! the city, for an alert a gateway under this county raised) reach the child each alert's
//! origin is reached through.
//!
//! The uplink commits each downlink batch and, **in the same transaction**, queues the
//! events on alerts raised below this hub on the `relay` outbox ([`policy`]); only then
//! does it acknowledge the batch to the parent. This module then moves the `relay` records
//! to the downlink outbox of the right child (`child:{id}`,
//! [`Children::downlink_child`]), acknowledges them on `relay` and pokes that child's
//! drainer ([`move_pending`]). So a crash can lose nothing between the two links: what the
//! parent saw acknowledged is in `relay` or already in a child's outbox. A crash between
//! the move and its acknowledgement moves the records again on restart — a duplicate the
//! child's store ignores (event ids).
//!
//! The move runs after every delivery from the parent and every [`RELAY_POLL`] (records
//! left by a restart, a child whose route was unknown). The same task tells the live
//! stream about the parent's events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use vigil_core::{AlertEvent, Lane, NodeId};
use vigil_link::{AlertContext, Delivery, DownlinksHandle, SharedStore};
use vigil_store::{Store, StoreError};
use vigil_wire::LinkEvent;

use crate::children::{child_link, Children};
use crate::live::LiveStream;

/// The outbox that holds the parent's events until they are moved to a child's downlink.
pub const RELAY_LINK: &str = "relay";

/// How often the relay outbox is looked at without a delivery.
pub const RELAY_POLL: Duration = Duration::from_secs(2);

/// Records moved per store transaction.
const MOVE_BATCH: usize = 256;

/// The uplink's policy for the parent's events: those on alerts raised below `this` go on
/// the relay outbox, in the lane of the alert's severity; those on this hub's own alerts,
/// and those whose alert's raise is not here, stay.
pub fn policy(
    this: NodeId,
) -> impl Fn(&AlertEvent, &AlertContext) -> Option<Lane> + Send + Sync + 'static {
    move |_event, ctx| match &ctx.view.key {
        Some(key) if key.origin != this => Some(ctx.view.severity.lane()),
        _ => None,
    }
}

/// What one pass moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    /// Records moved to a child's downlink.
    pub events: usize,
    /// Records dropped (not a link event, or no alert to route by).
    pub dropped: usize,
    /// The children whose downlink got records: to poke.
    pub children: BTreeSet<NodeId>,
}

/// Moves every record of the relay outbox to the downlink of the child its alert's origin
/// is reached through (on the blocking pool: several durable transactions).
pub fn move_pending(
    store: &mut Store,
    this: &NodeId,
    children: &Children,
) -> Result<Moved, StoreError> {
    let mut moved = Moved::default();
    for lane in Lane::ALL {
        loop {
            let acked = store.outbox_lane_state(RELAY_LINK, lane)?.acked_upto;
            let records = store.outbox_read(RELAY_LINK, lane, acked, MOVE_BATCH, 1 << 22)?;
            let Some(last) = records.last().map(|r| r.seq) else {
                break;
            };
            let mut by_child: BTreeMap<NodeId, Vec<(Lane, Vec<u8>)>> = BTreeMap::new();
            for record in records {
                match target(store, this, children, &record.payload)? {
                    Some(child) => by_child
                        .entry(child)
                        .or_default()
                        .push((lane, record.payload)),
                    None => moved.dropped += 1,
                }
            }
            for (child, items) in by_child {
                moved.events += items.len();
                store.outbox_append_many(&child_link(&child), items)?;
                moved.children.insert(child);
            }
            store.outbox_ack(RELAY_LINK, lane, last)?;
        }
    }
    Ok(moved)
}

/// The child a relay record goes to; `None` (logged) when it goes nowhere.
fn target(
    store: &Store,
    this: &NodeId,
    children: &Children,
    payload: &[u8],
) -> Result<Option<NodeId>, StoreError> {
    let event = match serde_json::from_slice::<LinkEvent>(payload) {
        Ok(LinkEvent::Alert(event)) => event,
        // Audit trails travel up only; nothing in the relay goes down with one.
        Ok(LinkEvent::Audit(record)) => {
            warn!(origin = %record.origin, seq = record.seq,
                  "an audit record in the relay; not passed down");
            return Ok(None);
        }
        // Directives are passed down by the hub's directives task, never through the relay.
        Ok(other @ (LinkEvent::Directive(_) | LinkEvent::DirectiveAck(_))) => {
            warn!(
                kind = other.kind(),
                "a directive record in the relay; not passed down"
            );
            return Ok(None);
        }
        Err(error) => {
            warn!(%error, "a relay record is not a link event; dropped");
            return Ok(None);
        }
    };
    let origin = store
        .alert(event.alert)?
        .and_then(|view| view.key)
        .map(|key| key.origin);
    match origin {
        // The child the alert came through, as admission recorded it: it survives a
        // restart, whereas the routes learnt from traffic are empty until the children
        // send again (a parked record for a node that is no child would never leave).
        Some(origin) if &origin != this => Ok(Some(match store.alert_via(&event.alert)? {
            Some(via) => via,
            None => children.downlink_child(&origin),
        })),
        Some(_) => Ok(None),
        None => {
            warn!(alert = %event.alert, event = %event.id,
                  "an event from the parent on an alert not raised here; not passed on");
            Ok(None)
        }
    }
}

/// The pass-down task's parts.
#[derive(Debug, Clone)]
pub struct PassDown {
    /// The store.
    pub store: SharedStore,
    /// This hub.
    pub this: NodeId,
    /// The routes.
    pub children: Children,
    /// To poke the children's drainers.
    pub downlinks: DownlinksHandle,
    /// The live stream.
    pub live: LiveStream,
}

impl PassDown {
    /// Takes the parent's deliveries (`None` without a parent) and moves the relay outbox
    /// after each and every [`RELAY_POLL`], until `shutdown`. Returns its name, for the
    /// link supervisor.
    pub async fn run(
        self,
        mut deliveries: Option<mpsc::Receiver<Delivery>>,
        shutdown: CancellationToken,
    ) -> &'static str {
        let mut poll = tokio::time::interval(RELAY_POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                delivery = next(&mut deliveries) => match delivery {
                    Some(delivery) => {
                        debug!(parent = %delivery.peer, lane = %delivery.lane,
                               events = delivery.events.len(), "events from the parent committed");
                        self.live.ingest_notify(&delivery.events);
                    }
                    None => {
                        deliveries = None;
                        continue;
                    }
                },
                _ = poll.tick() => {}
            }
            self.pass().await;
        }
        "relay"
    }

    /// One move of the relay outbox, then the pokes.
    async fn pass(&self) {
        let (this, children) = (self.this.clone(), self.children.clone());
        match self
            .store
            .call(move |s| move_pending(s, &this, &children))
            .await
        {
            Ok(moved) => {
                for child in &moved.children {
                    self.downlinks.poke(child);
                }
                if moved.events > 0 || moved.dropped > 0 {
                    info!(events = moved.events, dropped = moved.dropped,
                          children = ?moved.children, "parent's events passed on to the children");
                }
            }
            Err(error) => warn!(%error, "cannot pass the parent's events on; retrying"),
        }
    }
}

/// The next delivery, or never without a receiver.
async fn next(deliveries: &mut Option<mpsc::Receiver<Delivery>>) -> Option<Delivery> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, Severity, SitePath,
        Timestamp,
    };

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("node")
    }

    fn raise(origin: &str, alert: AlertId, severity: Severity) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: node(origin),
            hlc: Hlc::new(1_795_000_000_000, 0),
            actor: Actor::System,
            body: AlertEventBody::Raised {
                key: AlertKey::new(
                    node(origin),
                    "door-1/forced",
                    ConditionKind::new("state").expect("kind"),
                )
                .expect("key"),
                site: SitePath::new("ministry/gd/gz/by/p1").expect("site"),
                severity,
                message: "door".into(),
                value: None,
                at: Timestamp::from_millis(1_795_000_000_000),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
            clamped_from: None,
        }
    }

    fn ack(alert: AlertId) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: node("city-gz"),
            hlc: Hlc::new(1_795_000_000_100, 0),
            actor: Actor::User("op".into()),
            body: AlertEventBody::Acknowledged { comment: None },
            clamped_from: None,
        }
    }

    #[test]
    fn the_policy_relays_what_was_raised_below() {
        let this = node("county-by");
        let (below, mine, unknown) = (
            AlertId::generate(),
            AlertId::generate(),
            AlertId::generate(),
        );
        let p = policy(this);
        let decide = |events: &[AlertEvent]| {
            let last = events.last().expect("event");
            p(last, &AlertContext::from_events(last.alert, events))
        };
        assert_eq!(
            decide(&[raise("gw-1", below, Severity::Major), ack(below)]),
            Some(Lane::Critical)
        );
        assert_eq!(
            decide(&[raise("county-by", mine, Severity::Major), ack(mine)]),
            None
        );
        assert_eq!(decide(&[ack(unknown)]), None);
    }

    #[test]
    fn records_move_to_the_child_on_the_way_and_are_acknowledged() {
        let mut store = Store::open_in_memory().expect("store");
        let this = node("city-gz");
        let children = Children::new();
        children.note_route(&node("gw-1"), &node("county-by"));
        let (a, b, c) = (
            AlertId::generate(),
            AlertId::generate(),
            AlertId::generate(),
        );
        store
            .apply_events(&[
                raise("gw-1", a, Severity::Critical),
                raise("county-th", b, Severity::Minor),
                raise("city-gz", c, Severity::Minor),
            ])
            .expect("seed");
        let relayed = [
            (Lane::Critical, ack(a)),
            (Lane::Normal, ack(b)),
            (Lane::Normal, ack(c)),
            (Lane::Normal, ack(AlertId::generate())),
        ];
        store.record_events(RELAY_LINK, &relayed).expect("queue");
        store
            .outbox_append(RELAY_LINK, Lane::Normal, b"not json")
            .expect("garbage");

        let moved = move_pending(&mut store, &this, &children).expect("move");
        assert_eq!((moved.events, moved.dropped), (2, 3));
        assert_eq!(
            moved.children,
            BTreeSet::from([node("county-by"), node("county-th")])
        );
        let read = |store: &Store, link: &str, lane| {
            store
                .outbox_read(link, lane, 0, 100, 1 << 20)
                .expect("read")
                .len()
        };
        assert_eq!(read(&store, "child:county-by", Lane::Critical), 1);
        assert_eq!(read(&store, "child:county-th", Lane::Normal), 1);
        for lane in Lane::ALL {
            assert_eq!(read(&store, RELAY_LINK, lane), 0, "relay emptied");
        }
        // Nothing left: a second pass moves nothing.
        assert_eq!(
            move_pending(&mut store, &this, &children).expect("move"),
            Moved::default()
        );
    }
}
