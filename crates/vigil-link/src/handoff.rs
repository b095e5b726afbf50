//! What passes between a link and its owner: the owner pokes the link when it appended to
//! an outbox ([`OutboxPoke`]), and the link hands over the events it received and committed
//! ([`Delivery`]).

use std::sync::Arc;

use tokio::sync::Notify;
use vigil_core::{AlertEvent, Lane, NodeId};

/// Wakes a link to read its outbox now, rather than at its next periodic poll. Call
/// [`OutboxPoke::poke`] after `Store::record_events` (or any append) has committed. Pokes
/// coalesce; clones wake the same link.
#[derive(Debug, Clone, Default)]
pub struct OutboxPoke {
    notify: Arc<Notify>,
}

impl OutboxPoke {
    /// A poke handle not yet attached to a link.
    pub fn new() -> Self {
        OutboxPoke::default()
    }

    /// Tells the link that its outbox has new records.
    pub fn poke(&self) {
        self.notify.notify_one();
    }

    /// Waits for the next poke (or returns at once if one is pending).
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Events a link received from `peer` and committed to the store, that were new there (a
/// resent event is delivered once): a child's downlink events from its parent, or a
/// parent's uplink events from a child.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The node that sent them: the parent (on a child) or the child (on a parent).
    pub peer: NodeId,
    /// The lane they travelled in.
    pub lane: Lane,
    /// The new events, in the order they were sent.
    pub events: Vec<AlertEvent>,
}
