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
//! traffic, statuses and last wills, and the hub follows it. Their clocks do: a delivery
//! carries the events as the child sent them, and one stamped further ahead of this hub's
//! clock than `[link] max_clock_skew` is one the store clamped as it committed the batch
//! (docs/ARCHITECTURE.md#clocks-and-skew) — it raises `clock_skew` about the child
//! ([`HubAlarms::clock_skew`]).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use vigil_core::{AlertEvent, AlertEventBody, NodeId};
use vigil_link::Delivery;

use crate::alarms::HubAlarms;
use crate::children::Children;
use crate::clock::HubClock;
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
    /// The hub's clock: its skew bound says which events were clamped.
    pub clock: HubClock,
    /// Where `clock_skew` is raised.
    pub alarms: HubAlarms,
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
        let now_ms = u64::try_from(vigil_core::Timestamp::now().as_millis()).unwrap_or(0);
        if let Some(ahead) = clamped_ahead(&delivery.events, now_ms, self.clock.max_skew()) {
            self.alarms.clock_skew(&delivery.peer, ahead);
        }
        self.live.ingest_notify(&delivery.events);
        debug!(child = %delivery.peer, lane = %delivery.lane, events = delivery.events.len(),
               "child events ingested");
    }
}

/// How far ahead of `now_ms` the furthest of `events` is stamped, if any is further than
/// `max_skew`: those are the events the store clamped (it judged them by the same bound a
/// moment before, when its clock was, if anything, earlier).
fn clamped_ahead(events: &[AlertEvent], now_ms: u64, max_skew: Duration) -> Option<Duration> {
    let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    let furthest = events.iter().map(|e| e.hlc.wall).max()?;
    let ahead = furthest.saturating_sub(now_ms);
    (ahead > max_skew_ms).then(|| Duration::from_millis(ahead))
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
        let (alarms, _alarms) = HubAlarms::new(HubMetrics::new());
        let ingest = Ingest {
            this: node("city-gz"),
            children: Children::new(),
            live,
            clock: HubClock::resume(None),
            alarms,
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

    #[test]
    fn events_beyond_the_skew_are_the_clamped_ones() {
        let skew = Duration::from_secs(300);
        let now = 1_795_000_000_000;
        let at = |wall: u64| AlertEvent {
            id: EventId::generate(),
            alert: AlertId::generate(),
            origin: node("gw-1"),
            hlc: Hlc::new(wall, 0),
            actor: Actor::System,
            body: AlertEventBody::Unshelved,
            clamped_from: None,
        };
        assert_eq!(clamped_ahead(&[], now, skew), None);
        assert_eq!(
            clamped_ahead(&[at(now), at(now + 300_000)], now, skew),
            None
        );
        assert_eq!(
            clamped_ahead(
                &[at(now), at(now + 3_600_000), at(now + 600_000)],
                now,
                skew
            ),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            clamped_ahead(&[at(u64::MAX)], now, skew),
            Some(Duration::from_millis(u64::MAX - now))
        );
    }
}
