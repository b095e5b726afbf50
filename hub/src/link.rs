//! **The seam for the MQTT side.** Everything the hub's links need, and the one function
//! where they are started: [`start_links`].
//!
//! The MQTT side — the embedded broker (rumqttd) or the connection to an external one, the
//! parent end of the link protocol towards each child, and this hub's own uplink to its
//! parent — lives in `crates/vigil-link` and is wired here by the lead when that crate lands.
//! The HTTP side does not depend on it: the hub serves its API over whatever the store holds.
//!
//! What the link side does with the [`LinkContext`]:
//!
//! - **downlinks (children → this hub)**: apply each child's batch with
//!   `store.blocking(|s| s.apply_batch_and_forward(child, lane, first_seq, &events,
//!   parent.map(|_| "parent"), policy))` (on a blocking thread), the policy taking
//!   [`EscalationSection`] into account; send the returned ack; then call
//!   `feed.ingest_notify(&new_events)` so the live stream shows them, and
//!   `children.note_route(origin, child)` for each origin seen in the batch, and
//!   `children.touch(child, now)`. Observe the batch's stamps with
//!   [`HubClock::stamp_after`] if it merges remote clocks;
//! - **statuses**: `children.update(status, now)` for every message on
//!   `vigil/v1/status/{child}` (the retained status and the last will);
//! - **downlink outboxes**: drain `child:{id}` ([`child_link`](crate::children::child_link))
//!   towards each child; operator actions are queued there (see `action::record`), and
//!   events arriving from the parent for a node below are relayed to
//!   `children.downlink_for(origin)`;
//! - **pokes**: install a waker with `pokes.set(…)`: after an operator action the API
//!   calls it with each outbox it queued the action in (`child:{id}`, `parent`), so the
//!   drainer sends now instead of at its next poll;
//! - **uplink**: drain the `parent` outbox ([`PARENT_LINK`](crate::children::PARENT_LINK))
//!   to `parent` when it is `Some`, and publish this hub's status.
//!
//! `vigil_link` keeps its own store handle: build it on the same connection with
//! `vigil_link::SharedStore::from_arc(ctx.store.as_arc().clone())`.
//!
//! Every task must end when `shutdown` is cancelled.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::children::Children;
use crate::clock::HubClock;
use crate::config::{Broker, BrokerUrl, EscalationSection, NodeSection};
use crate::feed::AlertFeed;
use crate::shared_store::SharedStore;

/// A waker the link side installs, called with an outbox's name (`child:{id}`, `parent`)
/// when the hub has queued records in it outside the link engine (operator actions).
type Poke = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the hub tells the link side that an outbox has new records. Without a waker
/// installed, pokes do nothing (the drainers find the records at their next poll).
#[derive(Clone, Default)]
pub struct OutboxPokes(Arc<RwLock<Option<Poke>>>);

impl fmt::Debug for OutboxPokes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self
            .0
            .read()
            .map(|p| p.is_some())
            .unwrap_or_else(|p| p.into_inner().is_some());
        f.debug_struct("OutboxPokes").field("set", &set).finish()
    }
}

impl OutboxPokes {
    /// Installs the waker (replacing any before).
    pub fn set(&self, poke: impl Fn(&str) + Send + Sync + 'static) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(poke));
    }

    /// Tells the link side that `link`'s outbox has new records.
    pub fn poke(&self, link: &str) {
        let poke = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(poke) = poke {
            poke(link);
        }
    }
}

/// What the MQTT side gets from the hub.
#[derive(Debug, Clone)]
pub struct LinkContext {
    /// This hub (`[node]`).
    pub node: NodeSection,
    /// Where children connect (`[mqtt]`): the embedded broker's address or an external URL.
    pub broker: Broker,
    /// The parent's broker (`[parent] url`); `None` at the ministry.
    pub parent: Option<BrokerUrl>,
    /// What goes up (`[escalation]`).
    pub escalation: EscalationSection,
    /// The store (sync; use `blocking` on a blocking thread or `call` from async code).
    pub store: SharedStore,
    /// The hub's clock.
    pub clock: HubClock,
    /// The children registry to fill.
    pub children: Children,
    /// The live feed; [`AlertFeed::ingest_notify`] is the ingest hook.
    pub feed: AlertFeed,
    /// Where the link side installs its outbox waker.
    pub pokes: OutboxPokes,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Starts the MQTT side's tasks in `tasks`; see the module docs. Returns once they are
/// started (an error here — a broker port already taken — stops the hub).
///
/// Not wired yet: this build starts no MQTT at all, so no child can connect; it says so in
/// the log.
pub async fn start_links(ctx: LinkContext, tasks: &mut JoinSet<()>) -> anyhow::Result<()> {
    let _ = tasks;
    tracing::warn!(
        node = %ctx.node.id,
        broker = ?ctx.broker,
        parent = ?ctx.parent.as_ref().map(ToString::to_string),
        "the MQTT link is not part of this build yet: children cannot connect and nothing goes up"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn pokes_reach_the_installed_waker() {
        let pokes = OutboxPokes::default();
        pokes.poke("parent"); // nothing installed: nothing happens
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        pokes.set(move |link| sink.lock().expect("lock").push(link.to_owned()));
        pokes.clone().poke("child:gw-1");
        assert_eq!(*seen.lock().expect("lock"), ["child:gw-1"]);
    }
}
