//! What the hub does with its children's events once the link engine has committed and
//! acknowledged them (`vigil_link::Delivery`, only the events that were new here): the live
//! stream hears of them ([`LiveStream::ingest_notify`]), and the routes are noted — each
//! origin node the events name is reached through the child that sent them
//! ([`Children::note_route`]), so an action on one of its alerts flows back down that way.
//! A delivery holds only events the link admitted (their origins are the child or nodes
//! below it: docs/ARCHITECTURE.md#site-bindings-and-admission), so a child cannot claim a
//! route to a node bound elsewhere; a direct child is never routed through another.
//!
//! The children's health needs nothing here: the link engine's table already counts their
//! traffic, statuses and last wills, and the hub follows it.

use std::collections::BTreeSet;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use vigil_core::{AlertEvent, AlertEventBody, NodeId};
use vigil_link::Delivery;

use crate::children::Children;
use crate::live::LiveStream;

/// The ingest of the children's deliveries.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// This hub: never a route through a child.
    pub this: NodeId,
    /// Where routes are noted.
    pub children: Children,
    /// The live stream.
    pub live: LiveStream,
}

impl Ingest {
    /// Takes deliveries until `shutdown` (or until the link drops its end). Returns its
    /// name, for the link supervisor.
    pub async fn run(
        self,
        mut deliveries: mpsc::Receiver<Delivery>,
        shutdown: CancellationToken,
    ) -> &'static str {
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                delivery = deliveries.recv() => match delivery {
                    Some(delivery) => self.on_delivery(&delivery),
                    None => break,
                },
            }
        }
        "ingest"
    }

    /// Notes the routes of a child's committed events and tells the live stream.
    pub fn on_delivery(&self, delivery: &Delivery) {
        for origin in origins(&delivery.events) {
            if origin != &self.this {
                self.children.note_route(origin, &delivery.peer);
            }
        }
        self.live.ingest_notify(&delivery.events);
        debug!(child = %delivery.peer, lane = %delivery.lane, events = delivery.events.len(),
               "child events ingested");
    }
}

/// Every node `events` name as an origin: the node that made each event, and the node
/// that raised the alert of each raise.
fn origins(events: &[AlertEvent]) -> BTreeSet<&NodeId> {
    let mut out = BTreeSet::new();
    for event in events {
        out.insert(&event.origin);
        if let AlertEventBody::Raised { key, .. } = &event.body {
            out.insert(&key.origin);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertId, EventId, Hlc, Lane};

    use super::*;
    use crate::metrics::HubMetrics;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("node")
    }

    #[tokio::test]
    async fn routes_are_noted_per_origin_and_the_stream_hears() {
        let (live, _queue) = LiveStream::new(HubMetrics::new());
        let ingest = Ingest {
            this: node("city-gz"),
            children: Children::new(),
            live,
        };
        let event = |origin: &str| AlertEvent {
            id: EventId::generate(),
            alert: AlertId::generate(),
            origin: node(origin),
            hlc: Hlc::new(1_795_000_000_000, 0),
            actor: Actor::System,
            body: AlertEventBody::Unshelved,
            clamped_from: None,
        };
        ingest.on_delivery(&Delivery {
            peer: node("county-by"),
            lane: Lane::Normal,
            events: vec![event("gw-1"), event("county-by"), event("city-gz")],
        });
        let routes = ingest.children.routes();
        assert_eq!(routes.get(&node("gw-1")), Some(&node("county-by")));
        assert_eq!(routes.get(&node("county-by")), Some(&node("county-by")));
        assert_eq!(routes.get(&node("city-gz")), None, "never through a child");
    }
}
