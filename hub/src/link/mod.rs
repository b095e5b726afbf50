//! The hub's MQTT side: the broker its children connect to, the parent end of every
//! child's link, and this hub's own uplink to its parent — all `crates/vigil-link`, wired
//! here by [`start_links`]. The HTTP side does not depend on it: the hub serves its API over
//! whatever the store holds.
//!
//! - **broker** ([`broker`]): `[mqtt] listen` runs the embedded broker behind the mTLS
//!   gate (`vigil_link::SecureBroker`) for the hub's lifetime (stopped last at shutdown,
//!   after the links said goodbye); `[mqtt] url` uses an external broker (Mosquitto, EMQX),
//!   over `mqtts://` with the hub's own certificate. The gate's denials are audited
//!   ([`denials::audit_denials`]).
//! - **TLS to the parent**: an `mqtts://` `[parent] url` presents this hub's certificate
//!   from its parent (`[parent] ca`/`cert`/`key`, written by `vigil-hub enroll`).
//! - **downlinks** (children → this hub): `vigil_link::Downlinks` on that broker commits
//!   each child's batch, acks it after the commit, and — when `[parent]` is configured —
//!   queues what the escalation policy sends up on the `parent` outbox *in the same
//!   transaction* ([`escalation`]). Its deliveries (the events new here) feed the live
//!   stream and the routes ([`ingest`]). It keeps the children's health table (retained
//!   statuses, last wills, traffic), which the hub's [`Children`] follows, and drains one
//!   downlink outbox `child:{id}` per child, where operator actions are queued.
//! - **uplink** (this hub → its parent, when `[parent] url` is set): `vigil_link::Uplink`
//!   drains the `parent` outbox and publishes this hub's retained status (level, its
//!   children's statuses, their devices) with an `offline` last will. The parent's
//!   downlink events (actions taken higher up) are committed by the uplink, which queues
//!   those on alerts raised below this hub on the `relay` outbox in the same transaction;
//!   [`pass_down`] passes them on to the child each alert's origin is reached through.
//! - **pokes**: the waker installed in [`OutboxPokes`] wakes the child's drainer after an
//!   operator action is queued in `child:{id}`, and the uplink after one is queued in
//!   `parent`.
//! - **metrics**: `vigil_link::LinkMetrics`, registered in the hub's registry, so
//!   `GET /metrics` shows every link (`vigil_link_*`).
//!
//! The links share the hub's store handle (`vigil_link::SharedStore`, one connection). Every
//! task ends when `shutdown` is cancelled.

pub mod ancestors;
pub mod broker;
pub mod denials;
pub mod findings;
pub mod handshakes;
pub mod ingest;
pub mod mosquitto;
pub mod pass_down;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};
use vigil_core::NodeId;
use vigil_link::{
    Downlinks, DownlinksHandle, Forward, Health, LinkMetrics, OutboxPoke, SharedStore, Uplink,
    UplinkConfig, CHILD_LINK_PREFIX,
};

use crate::children::{Children, PARENT_LINK};
use crate::clock::HubClock;
use crate::config::{Broker, BrokerUrl, EscalationSection, NodeSection};
use crate::live::LiveStream;
use crate::metrics::HubMetrics;
use broker::BrokerHandle;

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
    /// The store, shared with the links (`call` runs a closure on the blocking pool).
    pub store: SharedStore,
    /// The hub's clock.
    pub clock: HubClock,
    /// The children registry: it follows the downlinks' health table; the link side notes
    /// the routes.
    pub children: Children,
    /// The live stream; [`LiveStream::ingest_notify`] is the ingest hook.
    pub live: LiveStream,
    /// The hub's metrics, whose registry the link metrics join.
    pub metrics: HubMetrics,
    /// Where the link side installs its outbox waker.
    pub pokes: OutboxPokes,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// The hub's own alarms about its nodes (gate denials, findings, node health).
    pub alarms: crate::alarms::HubAlarms,
    /// `[link]`: how the children's links are judged (offline, backlog), for node health.
    pub judge: crate::config::LinkSection,
    /// The CA, the revocation set and the TLS files of the links.
    pub security: broker::LinkSecurity,
}

/// What [`start_links`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksStarted {
    /// The URL children connect to: the embedded broker's (with the port it bound when
    /// `[mqtt] listen` asked for port 0), or the external broker's.
    pub broker_url: String,
}

/// Starts the MQTT side's tasks in `tasks`; see the module docs. Returns once the broker
/// answers and the links are started (they connect in the background and retry with
/// backoff). An error here — a broker port already taken, an unusable `[parent] url` —
/// stops the hub.
pub async fn start_links(
    ctx: LinkContext,
    tasks: &vigil_runtime::Shutdown,
) -> anyhow::Result<LinksStarted> {
    let metrics =
        LinkMetrics::new(ctx.metrics.registry()).context("cannot register the link metrics")?;
    let mut broker =
        BrokerHandle::start(&ctx.broker, &ctx.security, ctx.metrics.registry()).await?;
    if let Some(gate) = broker.gate_metrics() {
        tasks.spawn(handshakes::watch(
            gate,
            ctx.node.id.clone(),
            ctx.alarms.clone(),
            ctx.shutdown.clone(),
        ));
    }
    if let Some(denials) = broker.take_denials() {
        tasks.spawn(denials::audit_denials(
            denials,
            ctx.store.clone(),
            ctx.security.enroll.clone(),
            ctx.alarms.clone(),
            ctx.shutdown.clone(),
        ));
    }
    ancestors::sync(&ctx).await;
    let links = match Links::build(&ctx, &broker, metrics) {
        Ok(links) => links,
        Err(e) => {
            broker.stop().await;
            return Err(e);
        }
    };
    let started = LinksStarted {
        broker_url: broker.url().to_owned(),
    };
    info!(
        node = %ctx.node.id, broker = %started.broker_url,
        parent = ?ctx.parent.as_ref().map(ToString::to_string),
        min_severity = %ctx.escalation.min_severity,
        "MQTT side started"
    );
    tasks.spawn(links.run(ctx, broker));
    Ok(started)
}

/// The links, built and wired, not yet running.
struct Links {
    downlinks: Downlinks,
    handle: DownlinksHandle,
    uplink: Option<Uplink>,
}

impl Links {
    /// Builds the uplink (with a parent) and the downlinks on the broker at `url`, and
    /// wires them to the hub: the children's table, the pokes, the forwarding both ways.
    fn build(
        ctx: &LinkContext,
        broker: &BrokerHandle,
        metrics: LinkMetrics,
    ) -> anyhow::Result<Links> {
        let url = broker.url();
        let node = ctx.node.id.clone();
        // The downlinks' handle, for the uplink's health (built before them).
        let downlinks_slot: Arc<std::sync::OnceLock<DownlinksHandle>> = Arc::default();
        let uplink = match &ctx.parent {
            None => None,
            Some(parent) => {
                let mut config = UplinkConfig::new(node.clone(), parent.to_string());
                config.level = Some(ctx.node.level);
                if parent.tls {
                    let files = ctx.security.parent_tls.as_ref().with_context(|| {
                        format!("[parent] url = \"{parent}\" needs [parent] ca, cert and key")
                    })?;
                    config.tls = Some(files.client_config().with_context(|| {
                        format!(
                            "[parent] url = \"{parent}\": cannot use this hub's certificate: \
                             run `vigil-hub enroll --hub URL --token -` with a token (on standard input) from \
                             the parent's operator"
                        )
                    })?);
                }
                let children = ctx.children.clone();
                let subtree = Arc::clone(&downlinks_slot);
                let uplink = Uplink::new(config, ctx.store.clone(), metrics.clone())
                    .with_context(|| {
                        format!("cannot link to the parent at {parent} ([parent] url)")
                    })?
                    .with_health(move || {
                        let (devices_online, devices_total) = children.devices();
                        Health {
                            devices_online,
                            devices_total,
                            children: children.statuses(),
                            // The subtree's site bindings travel up with the status
                            // (docs/ARCHITECTURE.md#site-bindings-and-admission).
                            bindings: subtree
                                .get()
                                .map(DownlinksHandle::subtree_bindings)
                                .unwrap_or_default(),
                        }
                    })
                    .with_forward(Forward::by_alert(
                        pass_down::RELAY_LINK,
                        pass_down::policy(node.clone()),
                    ));
                Some(uplink)
            }
        };
        let mut downlinks =
            Downlinks::new(broker.downlinks_config(node), ctx.store.clone(), metrics)
                .with_context(|| {
                    format!("cannot serve the children on the broker at {url} ([mqtt])")
                })?;
        if let Some(uplink) = &uplink {
            downlinks = downlinks.with_forward(
                Forward::by_alert(
                    PARENT_LINK,
                    crate::escalation::policy(ctx.escalation.clone()),
                )
                .with_poke(uplink.poke_handle()),
            );
        }
        let handle = downlinks.handle();
        let _ = downlinks_slot.set(handle.clone());
        ctx.children.follow(handle.watch_children());
        let wake = handle.clone();
        let up = uplink.as_ref().map(Uplink::poke_handle);
        ctx.pokes
            .set(move |link| poke_link(link, &wake, up.as_ref()));
        Ok(Links {
            downlinks,
            handle,
            uplink,
        })
    }

    /// Runs every link task until `shutdown`, then waits for them to stop (they disconnect
    /// cleanly) and stops the embedded broker last.
    async fn run(mut self, ctx: LinkContext, broker: BrokerHandle) {
        let shutdown = ctx.shutdown.clone();
        let mut set = JoinSet::new();
        let child_events = self.downlinks.take_deliveries();
        if let Some(found) = self.downlinks.take_findings() {
            let run = findings::run(
                found,
                ctx.node.id.clone(),
                ctx.store.clone(),
                ctx.alarms.clone(),
                shutdown.clone(),
            );
            set.spawn(async move {
                run.await;
                "findings"
            });
        }
        let parent_events = self.uplink.as_mut().and_then(Uplink::take_deliveries);
        let stop = shutdown.clone();
        set.spawn(async move {
            if let Err(error) = self.downlinks.run(stop).await {
                error!(%error, "the children's links did not start: no child can deliver");
            }
            "downlinks"
        });
        if let Some(uplink) = self.uplink {
            // The subtree's bindings travel up at once when they change, not at the next
            // status interval (docs/ARCHITECTURE.md#site-bindings-and-admission).
            let status = uplink.status_poke_handle();
            let mut bindings = self.handle.watch_bindings();
            let stop = shutdown.clone();
            set.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        changed = bindings.changed() => match changed {
                            Ok(()) => status.poke(),
                            Err(_) => break,
                        },
                    }
                }
                "bindings"
            });
            let stop = shutdown.clone();
            set.spawn(async move {
                if let Err(error) = uplink.run(stop).await {
                    error!(%error, "the uplink did not start: nothing goes up");
                }
                "uplink"
            });
        }
        if let Some(deliveries) = child_events {
            let ingest = ingest::Ingest {
                this: ctx.node.id.clone(),
                children: ctx.children.clone(),
                live: ctx.live.clone(),
                clock: ctx.clock.clone(),
                alarms: ctx.alarms.clone(),
            };
            set.spawn(ingest.run(deliveries, shutdown.clone()));
        }
        let health = crate::node_health::run(
            self.handle.watch_children(),
            ctx.alarms.clone(),
            ctx.judge,
            shutdown.clone(),
        );
        set.spawn(async move {
            health.await;
            "node health"
        });
        let pass_down = pass_down::PassDown {
            store: ctx.store.clone(),
            this: ctx.node.id.clone(),
            children: ctx.children.clone(),
            downlinks: self.handle,
            live: ctx.live.clone(),
        };
        set.spawn(pass_down.run(parent_events, shutdown.clone()));
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(ended) = set.join_next() => match ended {
                    Ok(task) => error!(task, "a link task ended before shutdown"),
                    Err(e) => error!(error = %e, "a link task failed"),
                },
            }
        }
        while let Some(ended) = set.join_next().await {
            if let Err(e) = ended {
                error!(error = %e, "a link task failed while stopping");
            }
        }
        broker.stop().await;
        info!("MQTT side stopped");
    }
}

/// Wakes the drainer of `link`: `parent` (the uplink) or `child:{id}` (that child's
/// downlink). Other names are not drained by a link.
fn poke_link(link: &str, downlinks: &DownlinksHandle, uplink: Option<&OutboxPoke>) {
    if link == PARENT_LINK {
        if let Some(uplink) = uplink {
            uplink.poke();
        }
    } else if let Some(child) = link.strip_prefix(CHILD_LINK_PREFIX) {
        match NodeId::new(child) {
            Ok(child) => downlinks.poke(&child),
            Err(error) => debug!(link, %error, "poke for an outbox that names no node"),
        }
    }
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
