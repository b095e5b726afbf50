//! The parent end of every link to a node's children: [`Downlinks`] listens on its broker
//! (embedded or external) for the children's batches, acks and statuses, and drains one
//! downlink outbox per child onto `vigil/v1/down/{child}`. A hub runs one.
//!
//! - **Uplink batches** from `vigil/v1/up/{child}` are committed with
//!   `Store::apply_batches_and_forward` — the events, the child's inbox cursor and, with a
//!   [`Forward`], the events the escalation policy sends up, queued on the hub's own
//!   `parent` outbox, all in one transaction — and only then acknowledged on
//!   `vigil/v1/down/{child}`. The batches already waiting when one arrives (many children
//!   draining at once) join its transaction, up to [`MAX_GROUP_BATCHES`]: one commit, one
//!   fsync for the group, then one ack per batch. A group that fails is retried batch by
//!   batch, so one bad batch holds up no other child. A payload that does not decode is
//!   counted and dropped, never acknowledged and never fatal.
//! - **Statuses** (retained, and last wills) on `vigil/v1/status/{child}` keep the children
//!   table ([`Children`]): online or offline, backlog, devices, last seen — the hub's tree.
//! - **Downlinks**: the owner queues events for a child with [`DownlinksHandle::enqueue`]
//!   (outbox link `child:{node}`); each child's outbox is drained by the same sender as an
//!   uplink (`drain::OutboxLink`), while the child is online, and the child's acks arrive on its
//!   `up` topic. When a child comes (back) online, everything not acknowledged is resent.
//!
//! One task, one `select!` loop, like the uplink. Publishes are decoded ahead of it on a
//! thread of their own (`vigil-link-decode`), in arrival order, so that the next batches are
//! parsed on one core while the store commits the current group on the other.
//!
//! # Wiring (a county hub)
//!
//! ```no_run
//! # async fn hub() -> Result<(), Box<dyn std::error::Error>> {
//! use vigil_core::{AlertEventBody, Lane, NodeId, Severity};
//! use vigil_link::{
//!     Downlinks, DownlinksConfig, EmbeddedBroker, Forward, Health, LinkMetrics, SharedStore,
//!     Uplink, UplinkConfig, PARENT_LINK,
//! };
//!
//! let registry = prometheus::Registry::new();
//! let metrics = LinkMetrics::new(&registry)?; // one per registry, cloned to each link
//! let store = SharedStore::new(vigil_store::Store::open("/var/lib/vigil/hub.db")?);
//! let node = NodeId::new("county-baiyun")?;
//! let broker = EmbeddedBroker::start("127.0.0.1:1883".parse()?)?; // [mqtt] listen
//!
//! // Up to the city: the same uplink an agent runs.
//! let uplink = Uplink::new(
//!     UplinkConfig::new(node.clone(), "mqtt://127.0.0.1:1884"), // [parent] url
//!     store.clone(),
//!     metrics.clone(),
//! )?;
//! // Down to the children: relay critical and major raises up, in the critical lane.
//! let policy = |e: &vigil_core::AlertEvent| match &e.body {
//!     AlertEventBody::Raised { severity, .. } if *severity >= Severity::Major => Some(Lane::Critical),
//!     _ => None,
//! };
//! let mut downlinks = Downlinks::new(DownlinksConfig::new(node, broker.url()), store, metrics)?
//!     .with_forward(Forward::new(PARENT_LINK, policy).with_poke(uplink.poke_handle()));
//! let children = downlinks.handle(); // enqueue(child, events), children() for the tree
//! let ingest = downlinks.take_deliveries(); // the children's new events, for SSE
//! let tree = children.clone();
//! let uplink = uplink.with_health(move || Health { children: tree.child_statuses(), ..Default::default() });
//!
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(uplink.run(shutdown.clone()));
//! tokio::spawn(downlinks.run(shutdown.clone()));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::QoS;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_core::{AlertEvent, Lane, NodeId, Timestamp};
use vigil_store::{
    AdmitTx, ForwardOutcome, InboundBatch, InboundDirectives, NodeBinding, StoreError, TrailCheck,
};
use vigil_wire::{
    encode, Ack, AuditTail, BindingStatus, ChildStatus, Message, NodeState, Topic, PARENT_FILTERS,
};

use crate::admission::{GroupAdmission, KnownVias};
use crate::children::{ChildInfo, Children, Transition};
use crate::drain::{OutboxLink, Pumped};
use crate::error::LinkError;
use crate::escalation::apply_group;
use crate::findings::{Finding, FindingReason};
use crate::handoff::Delivery;
use crate::metrics::LinkMetrics;
use crate::mqtt::{self, Connection, MqttSettings};
use crate::receiver::{self, CommitStep, GroupCommit, Receipt};
use crate::store::SharedStore;
use crate::uplink::{pick, record_received};

mod config;
mod decode;

pub use crate::escalation::Forward;
pub use config::DownlinksConfig;

use decode::{spawn_decoder, Incoming, Received};

/// The prefix of every downlink outbox: `child:{node}`.
pub const CHILD_LINK_PREFIX: &str = "child:";

/// The `link` label of the parent's own broker connection in the metrics.
pub const DOWNLINKS_LABEL: &str = "downlinks";

/// How long a stopping parent waits for its DISCONNECT to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How often, at most, the bindings are re-read for a batch from a child not bound here.
const UNBOUND_RELOAD: Duration = Duration::from_secs(1);

/// How long to wait before publishing again when the MQTT client's queue was full.
const BLOCKED_RETRY: Duration = Duration::from_millis(20);

pub use crate::receiver::{MAX_GROUP_BATCHES, MAX_GROUP_EVENTS};

/// The downlink outbox of `child`: `child:{node}`.
pub fn child_link(child: &NodeId) -> String {
    format!("{CHILD_LINK_PREFIX}{child}")
}

/// State shared between the running task and the owner's handles.
#[derive(Debug)]
struct Shared {
    pokes: Mutex<BTreeSet<NodeId>>,
    notify: Notify,
    children: watch::Sender<Children>,
    /// The bindings of this node's subtree, as its own status reports them up.
    bindings: watch::Sender<Vec<BindingStatus>>,
}

/// The owner's handle on a running [`Downlinks`]: queue downlink events, read the children.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct DownlinksHandle {
    shared: Arc<Shared>,
    store: SharedStore,
}

impl DownlinksHandle {
    /// Records `events` (in this node's event store, like any local event) and queues them
    /// for `child` on its downlink outbox, in one transaction; then wakes the link. Returns
    /// their sequence numbers.
    pub async fn enqueue(
        &self,
        child: &NodeId,
        events: Vec<(Lane, AlertEvent)>,
    ) -> Result<Vec<u64>, LinkError> {
        let link = child_link(child);
        let seqs = self
            .store
            .call(move |s| s.record_events(&link, &events))
            .await?;
        self.poke(child);
        Ok(seqs)
    }

    /// Wakes the downlink of `child` after the owner appended to its outbox itself.
    pub fn poke(&self, child: &NodeId) {
        self.shared
            .pokes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(child.clone());
        self.shared.notify.notify_one();
    }

    /// Every child heard of, with its health.
    pub fn children(&self) -> Vec<ChildInfo> {
        self.shared.children.borrow().iter().cloned().collect()
    }

    /// Every child as an entry of this node's own status (for its uplink's health).
    pub fn child_statuses(&self) -> Vec<ChildStatus> {
        self.shared.children.borrow().statuses()
    }

    /// The children table as it changes.
    pub fn watch_children(&self) -> watch::Receiver<Children> {
        self.shared.children.subscribe()
    }

    /// The site bindings of every node in this node's subtree, for its own status (its
    /// uplink's health): the nodes enrolled or declared here, and those its children
    /// reported (docs/ARCHITECTURE.md#site-bindings-and-admission). Re-read from the store
    /// at every poll.
    pub fn subtree_bindings(&self) -> Vec<BindingStatus> {
        self.shared.bindings.borrow().clone()
    }

    /// The subtree's bindings as they change (to publish this node's status at once).
    pub fn watch_bindings(&self) -> watch::Receiver<Vec<BindingStatus>> {
        self.shared.bindings.subscribe()
    }
}

/// A parent's end of its children's links. Build it, take its handles, then
/// [`run`](Downlinks::run) it.
#[derive(Debug)]
pub struct Downlinks {
    config: DownlinksConfig,
    store: SharedStore,
    metrics: LinkMetrics,
    forward: Option<Forward>,
    shared: Arc<Shared>,
    deliveries_tx: mpsc::Sender<Delivery>,
    deliveries_rx: Option<mpsc::Receiver<Delivery>>,
    findings_tx: mpsc::Sender<Finding>,
    findings_rx: Option<mpsc::Receiver<Finding>>,
}

/// How many findings may wait for the owner; more are logged and dropped (still counted).
const FINDINGS_CAPACITY: usize = 1024;

impl Downlinks {
    /// The children's links of this node over `store`, with metrics in `metrics`. Checks
    /// the config; connects only when run.
    pub fn new(
        config: DownlinksConfig,
        store: SharedStore,
        metrics: LinkMetrics,
    ) -> Result<Downlinks, LinkError> {
        config.validate()?;
        let (deliveries_tx, deliveries_rx) = mpsc::channel(config.delivery_capacity);
        let (children, _) = watch::channel(Children::new());
        let (bindings, _) = watch::channel(Vec::new());
        let (findings_tx, findings_rx) = mpsc::channel(FINDINGS_CAPACITY);
        Ok(Downlinks {
            config,
            store,
            metrics,
            forward: None,
            shared: Arc::new(Shared {
                pokes: Mutex::new(BTreeSet::new()),
                notify: Notify::new(),
                children,
                bindings,
            }),
            deliveries_tx,
            deliveries_rx: Some(deliveries_rx),
            findings_tx,
            findings_rx: Some(findings_rx),
        })
    }

    /// Relays the children's new events up, by `forward`'s policy.
    pub fn with_forward(mut self, forward: Forward) -> Self {
        self.forward = Some(forward);
        self
    }

    /// The owner's handle.
    pub fn handle(&self) -> DownlinksHandle {
        DownlinksHandle {
            shared: Arc::clone(&self.shared),
            store: self.store.clone(),
        }
    }

    /// The children's committed events (what was new here), for the hub's ingest. Take it
    /// before [`run`](Downlinks::run) (once); if nobody takes it, deliveries are discarded.
    /// Once taken, keep reading it: when it is full, the link waits.
    pub fn take_deliveries(&mut self) -> Option<mpsc::Receiver<Delivery>> {
        self.deliveries_rx.take()
    }

    /// What this node refuses or flags about its children ([`Finding`]): events, audit
    /// records and reported bindings refused by the admission, audit logs found behind or
    /// forked. Take it before [`run`](Downlinks::run) (once); if nobody takes it, findings
    /// are only counted and logged.
    pub fn take_findings(&mut self) -> Option<mpsc::Receiver<Finding>> {
        self.findings_rx.take()
    }

    /// Runs until `shutdown` is cancelled, then disconnects cleanly.
    ///
    /// Fails only at the start: when the store cannot list the downlink outboxes.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LinkError> {
        drop(self.deliveries_rx.take());
        drop(self.findings_rx.take());
        let mut conn = Connection::start(MqttSettings {
            client_id: self
                .config
                .client_id
                .clone()
                .unwrap_or_else(|| format!("{}:downlinks", self.config.node)),
            url: self.config.url.clone(),
            keep_alive: self.config.keep_alive,
            will: None,
            backoff: self.config.backoff,
            request_capacity: 1024,
            name: DOWNLINKS_LABEL.to_owned(),
            tls: self.config.tls.clone(),
            credentials: self.config.credentials.clone(),
        })?;
        let incoming = spawn_decoder(conn.take_events())?;
        let mut task = DownlinksTask {
            dl: self,
            conn,
            incoming,
            connected: false,
            children: Children::new(),
            links: BTreeMap::new(),
            waiting: VecDeque::new(),
            audit_mismatched: BTreeSet::new(),
            held: HashMap::new(),
            unbound_reload_at: None,
            known_vias: KnownVias::default(),
        };
        task.discover().await?;
        task.reload_bindings().await;
        task.dl
            .metrics
            .set_state(DOWNLINKS_LABEL, vigil_wire::LinkState::Connecting);
        info!(node = %task.dl.config.node, url = %task.dl.config.url, "downlinks started");
        task.run(shutdown).await;
        Ok(())
    }
}

/// The running state of the parent's end.
struct DownlinksTask {
    dl: Downlinks,
    conn: Connection,
    /// The connection's events, publishes decoded ([`spawn_decoder`]).
    incoming: mpsc::Receiver<Incoming>,
    connected: bool,
    children: Children,
    links: BTreeMap<NodeId, OutboxLink>,
    /// Inputs taken off the queue while picking a group of batches, handled next, in
    /// arrival order (at most [`receiver::MAX_WAITING_BATCHES`] and one other input).
    waiting: VecDeque<Incoming>,
    /// The children whose last reported audit tail disagrees with the copy held here.
    audit_mismatched: BTreeSet<NodeId>,
    /// Every site binding held here, as last read from the store.
    held: HashMap<NodeId, NodeBinding>,
    /// When the bindings were last re-read for a batch from a child not bound here.
    unbound_reload_at: Option<Instant>,
    /// The child each alert came through, as committed ([`KnownVias`]).
    known_vias: KnownVias,
}

impl DownlinksTask {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut poll_tick = tokio::time::interval(self.dl.config.poll_interval);
        poll_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retry_at: Option<Instant> = None;
        let far = || Instant::now() + Duration::from_secs(3600);
        let shared = Arc::clone(&self.dl.shared);
        loop {
            if let Some(event) = self.waiting.pop_front() {
                self.on_mqtt(event).await;
                continue;
            }
            if retry_at.is_none() && self.pump_all().await == Pumped::Blocked {
                retry_at = Some(Instant::now() + BLOCKED_RETRY);
            }
            let deadline = self
                .links
                .values()
                .filter_map(|l| l.sender.deadline())
                .min();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.incoming.recv() => match event {
                    Some(event) => self.on_mqtt(event).await,
                    None => {
                        error!("the MQTT connection task ended; stopping the downlinks");
                        break;
                    }
                },
                _ = shared.notify.notified() => self.on_pokes().await,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                    let now = Instant::now();
                    for link in self.links.values_mut() {
                        link.on_tick(now, &self.dl.metrics);
                    }
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(far)), if retry_at.is_some() => {
                    retry_at = None;
                }
                _ = poll_tick.tick() => self.on_poll().await,
            }
        }
        self.dl
            .metrics
            .set_state(DOWNLINKS_LABEL, vigil_wire::LinkState::Disconnected);
        info!(node = %self.dl.config.node, "downlinks stopping");
        if self.connected {
            self.conn.close(CLOSE_WAIT).await;
        }
    }

    async fn pump_all(&mut self) -> Pumped {
        let mut result = Pumped::Idle;
        for link in self.links.values_mut() {
            if link
                .pump(&self.dl.store, &self.conn.client, &self.dl.metrics)
                .await
                == Pumped::Blocked
            {
                result = Pumped::Blocked;
            }
        }
        result
    }

    /// Finds the downlink outboxes already in the store (queued before a restart).
    async fn discover(&mut self) -> Result<(), LinkError> {
        let lanes = self.dl.store.call(|s| s.outbox_lanes()).await?;
        let children: BTreeSet<NodeId> = lanes
            .into_iter()
            .filter_map(|(link, _, _)| {
                let child = link.strip_prefix(CHILD_LINK_PREFIX)?;
                NodeId::new(child).ok()
            })
            .collect();
        for child in children {
            self.ensure_link(&child).await?;
        }
        Ok(())
    }

    /// The downlink of `child`, opened (resuming after its last ack) if new.
    async fn ensure_link(&mut self, child: &NodeId) -> Result<&mut OutboxLink, LinkError> {
        if !self.links.contains_key(child) {
            let mut link = OutboxLink::open(
                child_link(child),
                Topic::Down(child.clone()).to_string(),
                self.dl.config.node.clone(),
                self.dl.config.sender,
                &self.dl.store,
            )
            .await?;
            if self.connected && self.children.is_online(child) {
                link.sender.on_connected(Instant::now());
            }
            self.links.insert(child.clone(), link);
        }
        self.links
            .get_mut(child)
            .ok_or_else(|| LinkError::StoreTask("downlink vanished".into()))
    }

    async fn on_pokes(&mut self) {
        let poked: Vec<NodeId> = std::mem::take(
            &mut *self
                .dl
                .shared
                .pokes
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        for child in poked {
            match self.ensure_link(&child).await {
                Ok(link) => link.sender.poke(),
                Err(err) => warn!(%child, error = %err, "cannot open the downlink outbox"),
            }
        }
    }

    async fn on_poll(&mut self) {
        if let Err(err) = self.discover().await {
            warn!(error = %err, "cannot list the downlink outboxes");
        }
        self.reload_bindings().await;
        for link in self.links.values_mut() {
            link.sender.poke();
            if let Err(err) = link.backlog(&self.dl.store, &self.dl.metrics).await {
                warn!(link = %link.name, error = %err, "cannot read the outbox backlog");
            }
        }
        self.publish_children();
    }

    fn publish_children(&self) {
        let (online, offline) = self.children.counts();
        let gauge = &self.dl.metrics.children;
        gauge
            .with_label_values(&["online"])
            .set(i64::try_from(online).unwrap_or(i64::MAX));
        gauge
            .with_label_values(&["offline"])
            .set(i64::try_from(offline).unwrap_or(i64::MAX));
        let children = &self.children;
        self.dl.shared.children.send_if_modified(|current| {
            if current == children {
                false
            } else {
                current.clone_from(children);
                true
            }
        });
    }

    /// Starts or stops a child's downlink as it comes and goes.
    async fn on_transition(&mut self, child: &NodeId, transition: Transition) {
        match transition {
            Transition::Unchanged => {}
            Transition::CameOnline => {
                info!(%child, "child online");
                let connected = self.connected;
                match self.ensure_link(child).await {
                    Ok(link) if connected => link.sender.on_connected(Instant::now()),
                    Ok(_) => {}
                    Err(err) => warn!(%child, error = %err, "cannot open the downlink outbox"),
                }
            }
            Transition::WentOffline => {
                info!(%child, "child offline");
                if let Some(link) = self.links.get_mut(child) {
                    link.sender.on_disconnected();
                }
            }
        }
        self.publish_children();
    }

    async fn on_mqtt(&mut self, event: Incoming) {
        match event {
            Incoming::Connected => {
                self.connected = true;
                let metrics = &self.dl.metrics;
                metrics.connects.with_label_values(&[DOWNLINKS_LABEL]).inc();
                metrics.set_state(DOWNLINKS_LABEL, vigil_wire::LinkState::Connected);
                for filter in PARENT_FILTERS {
                    if let Err(err) = self.conn.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        warn!(filter, error = %err, "cannot subscribe");
                    }
                }
                let now = Instant::now();
                for (child, link) in &mut self.links {
                    if self.children.is_online(child) {
                        link.sender.on_connected(now);
                    }
                }
            }
            Incoming::Disconnected { error, retry_in } => {
                if self.connected {
                    warn!(%error, retry_in_ms = retry_in.as_millis() as u64,
                          "downlinks disconnected from the broker");
                }
                self.connected = false;
                self.dl
                    .metrics
                    .set_state(DOWNLINKS_LABEL, vigil_wire::LinkState::Connecting);
                for link in self.links.values_mut() {
                    if link.sender.in_flight_len() > 0 {
                        self.dl.metrics.resend(&link.name, "reconnect");
                    }
                    link.sender.on_disconnected();
                }
            }
            Incoming::Refused { topic, error } => {
                self.dl.metrics.decode_error(error.label());
                warn!(%topic, label = error.label(), %error, "dropped an incoming publish");
            }
            Incoming::Status { child, status } => {
                if status.state == NodeState::Online {
                    self.on_reported_bindings(&child, &status.bindings).await;
                }
                let audit = status.audit.zip(status.at);
                let transition = self.children.on_status(status, Timestamp::now());
                self.on_transition(&child, transition).await;
                if let Some((tail, at)) = audit {
                    self.check_audit_tail(&child, tail, at).await;
                }
            }
            Incoming::Ack { child, ack } => {
                let transition = self.children.on_traffic(&child, Timestamp::now());
                self.on_transition(&child, transition).await;
                self.on_child_ack(&child, ack).await;
            }
            Incoming::Batch(received) => {
                let group = self.gather(received);
                for received in &group {
                    let transition = self.children.on_traffic(&received.child, Timestamp::now());
                    self.on_transition(&received.child, transition).await;
                }
                self.on_uplinks(group).await;
            }
        }
    }

    /// Re-reads every binding held here (enrolled, configured, reported) and publishes the
    /// subtree's bindings for this node's own status.
    async fn reload_bindings(&mut self) {
        let held = match self.dl.store.call(|s| s.node_bindings()).await {
            Ok(held) => held,
            Err(err) => {
                warn!(error = %err, "cannot read the site bindings");
                return;
            }
        };
        let report = crate::admission::report(&self.dl.config.node, &held);
        self.held = held.into_iter().map(|b| (b.node.clone(), b)).collect();
        self.dl.shared.bindings.send_if_modified(|current| {
            if *current == report {
                false
            } else {
                *current = report;
                true
            }
        });
    }

    /// Records the bindings `child` reports in its status, those that lie inside its own
    /// binding and name no node bound elsewhere here; the others are findings
    /// (docs/ARCHITECTURE.md#site-bindings-and-admission).
    async fn on_reported_bindings(&mut self, child: &NodeId, reported: &[BindingStatus]) {
        let through_child = |held: &HashMap<NodeId, NodeBinding>| {
            held.values()
                .filter(|b| b.via.as_ref() == Some(child))
                .count()
        };
        if reported.is_empty() && through_child(&self.held) == 0 {
            return;
        }
        if !self.held.contains_key(child) {
            // Enrolled since the last poll?
            self.reload_bindings().await;
        }
        let child_site = self
            .held
            .get(child)
            .filter(|b| b.via.is_none())
            .map(|b| b.site.clone());
        let (accepted, refused) = crate::admission::judge_reported(
            &self.dl.config.node,
            child,
            child_site.as_ref(),
            &self.held,
            reported,
        );
        for finding in crate::findings::aggregate(child, refused) {
            self.report(finding);
        }
        let unchanged = accepted.len() == through_child(&self.held)
            && accepted.iter().all(|r| {
                self.held.get(&r.node).is_some_and(|b| {
                    b.via.as_ref() == Some(child)
                        && b.site == r.site
                        && b.parent.as_ref() == Some(&r.parent)
                })
            });
        if unchanged {
            return;
        }
        let via = child.clone();
        let count = accepted.len();
        match self
            .dl
            .store
            .call(move |s| s.bindings_replace_reported(&via, &accepted, Timestamp::now()))
            .await
        {
            Ok(_) => {
                debug!(%child, bindings = count, "bindings reported by the child recorded");
                self.reload_bindings().await;
            }
            Err(err) => warn!(%child, error = %err, "cannot record the bindings the child reports"),
        }
    }

    /// Counts, logs and hands over a finding about a child.
    fn report(&self, finding: Finding) {
        if !matches!(
            finding.reason,
            FindingReason::AuditBehind | FindingReason::AuditForked | FindingReason::ClockSkew
        ) {
            self.dl
                .metrics
                .refused_events
                .with_label_values(&[finding.reason.as_str()])
                .inc_by(finding.count);
        }
        warn!(child = %finding.child, reason = finding.reason.as_str(), count = finding.count,
              detail = %finding.detail, "refused or flagged what a child sent");
        if let Err(err) = self.dl.findings_tx.try_send(finding) {
            match err {
                mpsc::error::TrySendError::Full(f) => {
                    warn!(child = %f.child, reason = f.reason.as_str(),
                    "the owner is not taking findings fast enough: one dropped (counted and logged)")
                }
                mpsc::error::TrySendError::Closed(_) => {}
            }
        }
    }

    /// Compares the tail of `child`'s own audit chain, as its status reports it, with the
    /// copy of its trail held here (docs/ARCHITECTURE.md#audit-log). A child whose log is
    /// behind the copy or differs from it is counted and logged when found, and stays in
    /// the gauge until it reports a tail in step again.
    async fn check_audit_tail(&mut self, child: &NodeId, tail: AuditTail, at: Timestamp) {
        let origin = child.to_string();
        let checked = self
            .dl
            .store
            .call(move |s| s.audit_remote_check(&origin, tail.seq, &tail.hash.0, at))
            .await;
        let check = match checked {
            Ok(check) => check,
            Err(err) => {
                warn!(%child, error = %err, "cannot compare the child's audit tail with the copy held here");
                return;
            }
        };
        let kind = match check {
            TrailCheck::Consistent => {
                if self.audit_mismatched.remove(child) {
                    info!(%child, seq = tail.seq, "the child's audit log is in step with the copy held here again");
                }
                None
            }
            TrailCheck::Behind { held, reported } => {
                if !self.audit_mismatched.contains(child) {
                    warn!(%child, held, reported,
                          "the child's audit log is behind the copy held here: records it wrote are gone from it");
                }
                Some("behind")
            }
            TrailCheck::Forked { seq } => {
                if !self.audit_mismatched.contains(child) {
                    warn!(%child, seq,
                          "the child's audit log differs from the copy held here: its record is not the one it sent");
                }
                Some("forked")
            }
        };
        if let Some(kind) = kind {
            if self.audit_mismatched.insert(child.clone()) {
                self.dl
                    .metrics
                    .audit_trail_mismatches
                    .with_label_values(&[kind])
                    .inc();
                let (reason, detail) = match check {
                    TrailCheck::Behind { held, reported } => (
                        FindingReason::AuditBehind,
                        format!("its audit log ends at record {reported}; the copy held here has {held}: records it wrote are gone from it"),
                    ),
                    TrailCheck::Forked { seq } => (
                        FindingReason::AuditForked,
                        format!("its audit record {seq} is not the one it sent here"),
                    ),
                    TrailCheck::Consistent => (FindingReason::AuditForked, String::new()),
                };
                self.report(Finding {
                    child: child.clone(),
                    reason,
                    detail,
                    count: 1,
                });
            }
        }
        self.dl
            .metrics
            .audit_trail_mismatched_children
            .with_label_values(&[] as &[&str])
            .set(i64::try_from(self.audit_mismatched.len()).unwrap_or(i64::MAX));
    }

    /// The group of batches to commit next: out of `first` and the batches waiting with it
    /// (up to the first input that is not a batch), the critical lane's first
    /// ([`receiver::pick`]); the others stay waiting, in arrival order.
    fn gather(&mut self, first: Received) -> Vec<Received> {
        let mut run = vec![first];
        while run.len() < receiver::MAX_WAITING_BATCHES {
            match self.waiting.front() {
                Some(Incoming::Batch(_)) => {
                    if let Some(Incoming::Batch(received)) = self.waiting.pop_front() {
                        run.push(received);
                    }
                }
                Some(_) => break,
                None => match self.incoming.try_recv() {
                    Ok(Incoming::Batch(received)) => run.push(received),
                    Ok(other) => {
                        self.waiting.push_back(other);
                        break;
                    }
                    Err(_) => break,
                },
            }
        }
        let (group, rest) = receiver::pick(run);
        for received in rest.into_iter().rev() {
            self.waiting.push_front(Incoming::Batch(received));
        }
        group
    }

    async fn on_child_ack(&mut self, child: &NodeId, ack: Ack) {
        let store = self.dl.store.clone();
        let metrics = self.dl.metrics.clone();
        match self.ensure_link(child).await {
            Ok(link) => link.on_ack(ack, &store, &metrics).await,
            Err(err) => warn!(%child, error = %err, "cannot open the downlink outbox for an ack"),
        }
    }

    /// Commits children's batches (and what goes up) in one transaction, then acks each and
    /// hands its new events over. If the group fails, each batch is tried alone, so one bad
    /// batch holds up no other child ([`GroupCommit`]).
    async fn on_uplinks(&mut self, group: Vec<Received>) {
        let group = self.hold_unbound(group).await;
        if group.is_empty() {
            return;
        }
        let mut commit = GroupCommit::new(group);
        while let Some(attempt) = commit.next_attempt() {
            let Some((result, attempt, findings)) = self.commit(attempt).await else {
                continue;
            };
            if result.is_ok() {
                for finding in findings {
                    self.report(finding);
                }
            }
            match commit.on_result(attempt, result) {
                CommitStep::Committed(done) => {
                    if done.len() > 1 {
                        debug!(
                            batches = done.len(),
                            "children's batches committed together"
                        );
                    }
                    for (received, outcome) in done {
                        self.on_committed(received, outcome).await;
                    }
                }
                CommitStep::Split { batches, error } => {
                    warn!(batches, %error,
                          "cannot commit the children's batches together; committing them one by one");
                }
                CommitStep::Failed { batch, error } => self.on_failed(&batch, &error),
            }
        }
    }

    /// The batches of `group` from children bound here; those of a child with no site
    /// binding here are neither applied nor acknowledged — its outbox keeps them and it
    /// resends them until an operator binds it (`vigil-hub enroll-token --site`, `[[child]]`):
    /// a gateway enrolled before bindings, or declared nowhere, loses nothing meanwhile
    /// (docs/ARCHITECTURE.md#site-bindings-and-admission). Each held batch is an `unbound`
    /// finding (a security alarm about the child says what to do).
    async fn hold_unbound(&mut self, group: Vec<Received>) -> Vec<Received> {
        let bound = |held: &HashMap<NodeId, NodeBinding>, child: &NodeId| {
            held.get(child).is_some_and(|b| b.via.is_none())
        };
        if group.iter().any(|r| !bound(&self.held, &r.child))
            && self
                .unbound_reload_at
                .is_none_or(|at| at.elapsed() >= UNBOUND_RELOAD)
        {
            // Bound since the last poll? At most once per UNBOUND_RELOAD.
            self.unbound_reload_at = Some(Instant::now());
            self.reload_bindings().await;
        }
        let (keep, held_back): (Vec<Received>, Vec<Received>) =
            group.into_iter().partition(|r| bound(&self.held, &r.child));
        for r in held_back {
            let records = r.events.len() + r.audit.len() + r.directives.len();
            self.report(Finding {
                child: r.child.clone(),
                reason: FindingReason::Unbound,
                detail: format!(
                    "{} has no site binding here: its batch of {records} record(s) ({} lane, from seq {}) is held back, not applied and not acknowledged; bind it with vigil-hub enroll-token --site (or [[child]] for an external broker's child) and it is resent",
                    r.child, r.lane, r.first_seq
                ),
                count: u64::try_from(records).unwrap_or(u64::MAX),
            });
        }
        keep
    }

    /// Applies `group` in one transaction on the store's thread. Returns the outcome with the
    /// group back, or `None` (logged) when the store itself is unusable.
    async fn commit(
        &mut self,
        group: Vec<Received>,
    ) -> Option<(
        Result<Vec<ForwardOutcome>, StoreError>,
        Vec<Received>,
        Vec<Finding>,
    )> {
        let this = self.dl.config.node.clone();
        let known = self.known_vias.clone();
        let forward = self
            .dl
            .forward
            .as_ref()
            .map(|f| (f.link.clone(), f.policy.clone()));
        let names: Vec<NodeId> = group.iter().map(|r| r.child.clone()).collect();
        tracing::trace!(batches = group.len(), lane = ?group.first().map(|r| r.lane),
            first_child = ?names.first(), "committing children's batches");
        let result = self
            .dl
            .store
            .call(move |s| {
                let batches: Vec<InboundBatch<'_>> = group
                    .iter()
                    .map(|r| InboundBatch {
                        peer: &r.child,
                        lane: r.lane,
                        first_seq: r.first_seq,
                        events: &r.events,
                        audit: &r.audit,
                        bodies: Some(&r.bodies),
                        directives: InboundDirectives::FromChild(&r.directives),
                    })
                    .collect();
                let forward = forward
                    .as_ref()
                    .map(|(link, policy)| (link.as_str(), policy));
                let mut admission = GroupAdmission::new(this, known.clone());
                let mut admit = |atx: &AdmitTx<'_>, b: &InboundBatch<'_>, news: bool| {
                    admission.admit(atx, b, news)
                };
                let outcome = apply_group(s, &batches, forward, Some(&mut admit));
                drop(batches);
                if outcome.is_ok() {
                    known.commit(admission.learned);
                }
                Ok((outcome, group, admission.findings))
            })
            .await;
        match result {
            Ok(done) => Some(done),
            Err(err) => {
                for child in &names {
                    self.dl
                        .metrics
                        .apply_errors
                        .with_label_values(&[child_link(child).as_str()])
                        .inc();
                }
                error!(batches = names.len(), error = %err,
                       "cannot reach the store to commit children's batches; not acknowledging them");
                None
            }
        }
    }

    /// Counts a batch that could not be committed; it is not acknowledged, so its child
    /// resends it.
    fn on_failed(&self, r: &Received, err: &StoreError) {
        self.dl
            .metrics
            .apply_errors
            .with_label_values(&[child_link(&r.child).as_str()])
            .inc();
        error!(child = %r.child, lane = %r.lane, first_seq = r.first_seq,
               count = r.events.len(), error = %err,
               "cannot commit a child's batch; not acknowledging it");
    }

    /// Acks a committed batch and hands its new events over.
    async fn on_committed(&mut self, received: Received, outcome: ForwardOutcome) {
        let Received {
            child,
            lane,
            first_seq,
            events,
            audit: _,
            directives: _,
            bodies: _,
        } = received;
        let link = child_link(&child);
        let metrics = &self.dl.metrics;
        record_received(metrics, &link, lane, &outcome.batch);
        metrics.audit_received(&link, &outcome.audit);
        if outcome.directives.refused > 0 {
            self.report(Finding {
                child: child.clone(),
                reason: FindingReason::ForgedDirective,
                detail: outcome
                    .directives
                    .refused_detail
                    .clone()
                    .unwrap_or_default(),
                count: outcome.directives.refused as u64,
            });
        }
        let receipt = Receipt::of(lane, &outcome);
        let down = Topic::Down(child.clone()).to_string();
        if !mqtt::try_publish(
            &self.conn.client,
            &down,
            false,
            encode(&Message::Ack(receipt.ack)),
        ) {
            warn!(%child, %lane, "ack not queued (client busy); the child will resend");
        }
        debug!(%child, %lane, first_seq, applied = outcome.batch.applied,
               duplicates = outcome.batch.duplicates, gap = outcome.batch.gap,
               forwarded = receipt.forwarded.len(), "child batch committed");
        for up_lane in &receipt.forwarded {
            metrics
                .events_forwarded
                .with_label_values(&[up_lane.as_str()])
                .inc();
        }
        if receipt.wake_forward {
            if let Some(poke) = self.dl.forward.as_ref().and_then(|f| f.poke.as_ref()) {
                poke.poke();
            }
        }
        if receipt.fresh.is_empty() {
            return;
        }
        let delivery = Delivery {
            peer: child,
            lane,
            events: pick(events, &receipt.fresh),
        };
        let _ = self.dl.deliveries_tx.send(delivery).await;
    }
}
