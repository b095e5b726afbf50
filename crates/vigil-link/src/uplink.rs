//! The child end of a link: [`Uplink`] connects to the parent's broker, drains the node's
//! `parent` outbox onto `vigil/v1/up/{node}`, takes the parent's acks and downlink batches
//! from `vigil/v1/down/{node}`, and keeps the node's retained status on
//! `vigil/v1/status/{node}` (with an `offline` last will). An agent runs one; so does every
//! hub below the ministry, towards its own parent.
//!
//! One task, one `select!` loop over: the broker connection's events, the owner's pokes, the
//! ack timeout of the batches in flight, the status interval and a slow outbox poll (the
//! safety net for a missed poke). The protocol decisions are [`OutboxSender`]'s; this module
//! only does the I/O.
//!
//! On connect: subscribe to the `down` topic, publish the online status, then resend
//! everything not acknowledged (the subscription is in place before the first batch, so
//! its ack cannot be missed). A downlink batch is committed to the store
//! (`Store::apply_batch_and_forward`, the inbox cursor with it) before its ack is
//! published; its new events then go to the owner as a [`Delivery`]. With a [`Forward`]
//! ([`Uplink::with_forward`]) the events its policy selects are queued on another outbox in
//! that same transaction: how a hub passes its parent's actions on towards its children
//! without a window where a crash could lose them.
//!
//! [`OutboxSender`]: crate::sender::OutboxSender

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_core::{AlertEvent, Lane, Level, NodeId, Timestamp};
use vigil_wire::{
    encode, try_encode, AuditEvent, AuditHash, AuditTail, Batch, ChildStatus, DirectiveRecord,
    LinkEvent, LinkState, LinkStatus, Message, Status, Topic,
};

use crate::backoff::BackoffConfig;
use crate::drain::{OutboxLink, Pumped};
use crate::error::LinkError;
use crate::escalation::Forward;
use crate::handoff::{Delivery, OutboxPoke};
use crate::inbound::{self, ChildInbound};
use crate::metrics::LinkMetrics;
use crate::mqtt::{self, Connection, MqttCredentials, MqttEvent, MqttSettings};
use crate::receiver::Receipt;
use crate::sender::SenderConfig;
use crate::store::SharedStore;

/// The outbox link a child drains towards its parent.
pub const PARENT_LINK: &str = "parent";

/// How long a stopping link waits for its last status and DISCONNECT to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long to wait before publishing again when the MQTT client's queue was full.
const BLOCKED_RETRY: Duration = Duration::from_millis(20);

/// The settings of a child's uplink.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// This node's id: the MQTT client id (unless [`client_id`](Self::client_id) says
    /// otherwise) and the `{node}` of its topics.
    pub node: NodeId,
    /// The parent's broker, `mqtt://host[:port]` or `mqtts://host[:port]` (with
    /// [`tls`](Self::tls)).
    pub url: String,
    /// This node's level, reported in its status (absent for a gateway).
    pub level: Option<Level>,
    /// The outbox link to drain: [`PARENT_LINK`].
    pub link: String,
    /// The MQTT client id, if not the node id.
    pub client_id: Option<String>,
    /// The parent's node id, if known: downlink batches from any other sender are dropped.
    /// Without it, the sender a batch names is the peer whose inbox cursor it advances.
    pub parent: Option<NodeId>,
    /// Batching, window, ack timeouts.
    pub sender: SenderConfig,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// MQTT keepalive (at least 1 s): how soon the broker notices a vanished node and
    /// publishes its last will.
    pub keep_alive: Duration,
    /// How often the retained status is published again (besides on every connect).
    pub status_interval: Duration,
    /// How often the outbox is read even without a poke.
    pub poll_interval: Duration,
    /// Deliveries that may wait for the owner before the link waits too.
    pub delivery_capacity: usize,
    /// TLS for an `mqtts://` URL: a rustls client config that trusts the broker's CA and
    /// presents this node's certificate (`vigil_pki::TlsFiles::client_config`). Required
    /// with `mqtts://`, refused with `mqtt://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// MQTT username and password, for a broker that wants them (a hub's own connection
    /// to its gated embedded broker: `SecureBroker::internal_credentials`). Nodes behind
    /// the gate need none: their certificate is their identity.
    pub credentials: Option<MqttCredentials>,
}

impl UplinkConfig {
    /// The default keepalive: 10 s.
    pub const fn default_keep_alive() -> Duration {
        Duration::from_secs(10)
    }

    /// The default status interval: 30 s.
    pub const fn default_status_interval() -> Duration {
        Duration::from_secs(30)
    }

    /// The default outbox poll: 2 s.
    pub const fn default_poll_interval() -> Duration {
        Duration::from_secs(2)
    }

    /// The default delivery queue: 1024.
    pub const fn default_delivery_capacity() -> usize {
        1024
    }

    /// The defaults for `node` uplinking to the broker at `url`.
    pub fn new(node: NodeId, url: impl Into<String>) -> Self {
        UplinkConfig {
            node,
            url: url.into(),
            level: None,
            link: PARENT_LINK.to_owned(),
            client_id: None,
            parent: None,
            sender: SenderConfig::default(),
            backoff: BackoffConfig::default(),
            keep_alive: UplinkConfig::default_keep_alive(),
            status_interval: UplinkConfig::default_status_interval(),
            poll_interval: UplinkConfig::default_poll_interval(),
            delivery_capacity: UplinkConfig::default_delivery_capacity(),
            tls: None,
            credentials: None,
        }
    }

    /// Checks every setting without connecting anywhere.
    pub fn validate(&self) -> Result<(), LinkError> {
        mqtt::validate_transport(&self.url, self.tls.as_ref())?;
        self.sender.validate()?;
        self.backoff.validate()?;
        validate_common(
            &self.link,
            self.keep_alive,
            self.poll_interval,
            self.delivery_capacity,
        )?;
        if self.status_interval.is_zero() {
            return Err(LinkError::Config {
                key: "status_interval",
                reason: "must be above zero (e.g. 30s)".into(),
            });
        }
        if self.client_id.as_deref() == Some("") {
            return Err(LinkError::Config {
                key: "client_id",
                reason: "must not be empty (leave it unset to use the node id)".into(),
            });
        }
        Ok(())
    }
}

/// Checks the settings both ends share.
pub(crate) fn validate_common(
    link: &str,
    keep_alive: Duration,
    poll_interval: Duration,
    delivery_capacity: usize,
) -> Result<(), LinkError> {
    if link.is_empty() {
        return Err(LinkError::Config {
            key: "link",
            reason: "the outbox link name must not be empty".into(),
        });
    }
    if keep_alive < Duration::from_secs(1) {
        return Err(LinkError::Config {
            key: "keep_alive",
            reason: format!("{keep_alive:?} is below the MQTT minimum of 1s"),
        });
    }
    if poll_interval.is_zero() {
        return Err(LinkError::Config {
            key: "poll_interval",
            reason: "must be above zero (e.g. 2s)".into(),
        });
    }
    if delivery_capacity == 0 {
        return Err(LinkError::Config {
            key: "delivery_capacity",
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// What the owner reports about its node in every status: the figures the link cannot know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Devices answering (an agent's own; a hub's whole subtree).
    pub devices_online: u64,
    /// Devices configured.
    pub devices_total: u64,
    /// The node's children and their health (a hub's; empty on an agent).
    pub children: Vec<ChildStatus>,
    /// The site bindings of the nodes enrolled in the node's subtree (a hub's:
    /// `DownlinksHandle::subtree_bindings`; empty on an agent), so the parent knows who may
    /// speak for which sites (docs/ARCHITECTURE.md#site-bindings-and-admission).
    pub bindings: Vec<vigil_wire::BindingStatus>,
}

/// The owner's health callback, asked before every status publish.
pub type HealthSource = Arc<dyn Fn() -> Health + Send + Sync>;

/// A child's link to its parent. Build it, take its handles, then [`run`](Uplink::run) it.
pub struct Uplink {
    config: UplinkConfig,
    store: SharedStore,
    metrics: LinkMetrics,
    health: HealthSource,
    poke: OutboxPoke,
    /// Publishes the status now (its health changed: e.g. the subtree's bindings).
    status_poke: OutboxPoke,
    deliveries_tx: mpsc::Sender<Delivery>,
    deliveries_rx: Option<mpsc::Receiver<Delivery>>,
    status_tx: watch::Sender<LinkStatus>,
    forward: Option<Forward>,
}

impl std::fmt::Debug for Uplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uplink")
            .field("config", &self.config)
            .field("forward", &self.forward)
            .finish_non_exhaustive()
    }
}

impl Uplink {
    /// An uplink over `store` (the node's store: its `parent` outbox and its inbox), with
    /// its metrics in `metrics`. Checks the config; connects only when run.
    pub fn new(
        config: UplinkConfig,
        store: SharedStore,
        metrics: LinkMetrics,
    ) -> Result<Uplink, LinkError> {
        config.validate()?;
        let (deliveries_tx, deliveries_rx) = mpsc::channel(config.delivery_capacity);
        let (status_tx, _) = watch::channel(LinkStatus {
            state: LinkState::Disconnected,
            last_ack_at: None,
        });
        Ok(Uplink {
            config,
            store,
            metrics,
            health: Arc::new(Health::default),
            poke: OutboxPoke::new(),
            status_poke: OutboxPoke::new(),
            deliveries_tx,
            deliveries_rx: Some(deliveries_rx),
            status_tx,
            forward: None,
        })
    }

    /// Queues the parent's downlink events that `forward`'s policy selects on
    /// `forward.link`, in the transaction that commits them (a hub: on a relay outbox it
    /// then spreads over its children's downlinks), and wakes `forward.poke` after.
    pub fn with_forward(mut self, forward: Forward) -> Self {
        self.forward = Some(forward);
        self
    }

    /// Sets the callback that reports devices and children in each status.
    pub fn with_health(mut self, health: impl Fn() -> Health + Send + Sync + 'static) -> Self {
        self.health = Arc::new(health);
        self
    }

    /// The handle to wake the link after appending to its outbox.
    pub fn poke_handle(&self) -> OutboxPoke {
        self.poke.clone()
    }

    /// A handle that makes the link publish its status now, when connected (the owner's
    /// health changed in a way the parent should hear before the next interval: a hub's
    /// subtree bindings, docs/ARCHITECTURE.md#site-bindings-and-admission).
    pub fn status_poke_handle(&self) -> OutboxPoke {
        self.status_poke.clone()
    }

    /// The committed downlink events, for the owner to react to. Take it before
    /// [`run`](Uplink::run) (once); if nobody takes it, deliveries are discarded. Once
    /// taken, keep reading it: when it is full, the link waits.
    pub fn take_deliveries(&mut self) -> Option<mpsc::Receiver<Delivery>> {
        self.deliveries_rx.take()
    }

    /// The link's state and last ack, as it changes (for the owner's own status and tree).
    pub fn link_status(&self) -> watch::Receiver<LinkStatus> {
        self.status_tx.subscribe()
    }

    /// Runs the link until `shutdown` is cancelled; then publishes an explicit `offline`
    /// status and disconnects cleanly. Dropping the future instead (e.g. aborting its
    /// task) drops the connection without a DISCONNECT, and the broker publishes the last
    /// will.
    ///
    /// Fails only at the start: when the store cannot tell where the outbox stands.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LinkError> {
        // Nobody will read deliveries that were not taken: do not let them fill up.
        drop(self.deliveries_rx.take());
        let node = self.config.node.clone();
        let out = OutboxLink::open(
            self.config.link.clone(),
            Topic::Up(node.clone()).to_string(),
            node.clone(),
            self.config.sender,
            &self.store,
        )
        .await?;
        let status_topic = Topic::Status(node.clone()).to_string();
        let will = LastWill::new(
            status_topic.clone(),
            encode(&Message::Status(Status::last_will(node.clone()))),
            QoS::AtLeastOnce,
            true,
        );
        let conn = Connection::start(MqttSettings {
            client_id: self
                .config
                .client_id
                .clone()
                .unwrap_or_else(|| node.to_string()),
            url: self.config.url.clone(),
            keep_alive: self.config.keep_alive,
            will: Some(will),
            backoff: self.config.backoff,
            request_capacity: self.config.sender.window * 2 + 64,
            name: self.config.link.clone(),
            tls: self.config.tls.clone(),
            credentials: self.config.credentials.clone(),
        })?;
        let mut task = UplinkTask {
            down_topic: Topic::Down(node.clone()).to_string(),
            status_topic,
            out,
            conn,
            connected: false,
            uplink: self,
        };
        task.set_state(LinkState::Connecting);
        info!(node = %node, url = %task.uplink.config.url, "uplink started");
        task.run(shutdown).await;
        Ok(())
    }
}

/// The running state of an uplink.
struct UplinkTask {
    uplink: Uplink,
    out: OutboxLink,
    conn: Connection,
    down_topic: String,
    status_topic: String,
    connected: bool,
}

impl UplinkTask {
    async fn run(mut self, shutdown: CancellationToken) {
        let cfg = self.uplink.config.clone();
        let mut status_tick = tokio::time::interval(cfg.status_interval);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut poll_tick = tokio::time::interval(cfg.poll_interval);
        poll_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retry_at: Option<Instant> = None;
        let far = || Instant::now() + Duration::from_secs(3600);
        loop {
            if retry_at.is_none()
                && self
                    .out
                    .pump(&self.uplink.store, &self.conn.client, &self.uplink.metrics)
                    .await
                    == Pumped::Blocked
            {
                retry_at = Some(Instant::now() + BLOCKED_RETRY);
            }
            let deadline = self.out.sender.deadline();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.conn.events.recv() => match event {
                    Some(event) => self.on_mqtt(event).await,
                    None => {
                        error!(link = %cfg.link, "the MQTT connection task ended; stopping the uplink");
                        break;
                    }
                },
                _ = self.uplink.poke.notified() => self.out.sender.poke(),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                    self.out.on_tick(Instant::now(), &self.uplink.metrics);
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(far)), if retry_at.is_some() => {
                    retry_at = None;
                }
                _ = status_tick.tick() => {
                    if self.connected {
                        self.publish_status().await;
                    }
                }
                _ = self.uplink.status_poke.notified() => {
                    if self.connected {
                        self.publish_status().await;
                    }
                }
                _ = poll_tick.tick() => {
                    self.out.sender.poke();
                    if let Err(err) = self.out.backlog(&self.uplink.store, &self.uplink.metrics).await {
                        warn!(link = %cfg.link, error = %err, "cannot read the outbox backlog");
                    }
                }
            }
            self.refresh_link_status();
        }
        if self.connected {
            let offline = encode(&Message::Status(Status::last_will(cfg.node.clone())));
            mqtt::try_publish(&self.conn.client, &self.status_topic, true, offline);
        }
        self.set_state(LinkState::Disconnected);
        info!(node = %cfg.node, "uplink stopping");
        if self.connected {
            self.conn.close(CLOSE_WAIT).await;
        }
    }

    fn set_state(&mut self, state: LinkState) {
        self.uplink
            .metrics
            .set_state(&self.uplink.config.link, state);
        let last_ack_at = self.out.last_ack_at;
        self.uplink
            .status_tx
            .send_replace(LinkStatus { state, last_ack_at });
    }

    fn refresh_link_status(&self) {
        let last_ack_at = self.out.last_ack_at;
        self.uplink.status_tx.send_if_modified(|status| {
            let changed = status.last_ack_at != last_ack_at;
            status.last_ack_at = last_ack_at;
            changed
        });
    }

    async fn on_mqtt(&mut self, event: MqttEvent) {
        match event {
            MqttEvent::Connected => {
                self.connected = true;
                self.uplink
                    .metrics
                    .connects
                    .with_label_values(&[self.uplink.config.link.as_str()])
                    .inc();
                if let Err(err) = self
                    .conn
                    .client
                    .try_subscribe(self.down_topic.clone(), QoS::AtLeastOnce)
                {
                    warn!(topic = %self.down_topic, error = %err, "cannot subscribe; acks will time out");
                }
                self.set_state(LinkState::Connected);
                self.publish_status().await;
                if self.out.sender.in_flight_len() > 0 {
                    self.uplink
                        .metrics
                        .resend(&self.uplink.config.link, "reconnect");
                }
                self.out.sender.on_connected(Instant::now());
            }
            MqttEvent::Disconnected { error, retry_in } => {
                if self.connected {
                    warn!(link = %self.uplink.config.link, %error, retry_in_ms = retry_in.as_millis() as u64,
                          "uplink disconnected; everything not acknowledged will be resent");
                }
                self.connected = false;
                if self.out.sender.in_flight_len() > 0 {
                    self.uplink
                        .metrics
                        .resend(&self.uplink.config.link, "reconnect");
                }
                self.out.sender.on_disconnected();
                self.set_state(LinkState::Connecting);
            }
            MqttEvent::Publish { topic, payload } => {
                let node = &self.uplink.config.node;
                match inbound::for_child(node, self.uplink.config.parent.as_ref(), &topic, &payload)
                {
                    Ok(ChildInbound::Ack(ack)) => {
                        self.out
                            .on_ack(ack, &self.uplink.store, &self.uplink.metrics)
                            .await;
                    }
                    Ok(ChildInbound::Batch(batch)) => self.on_downlink(batch).await,
                    Err(err) => {
                        self.uplink.metrics.decode_error(err.label());
                        warn!(%topic, label = err.label(), error = %err, "dropped an incoming publish");
                    }
                }
            }
        }
    }

    /// Commits a downlink batch, acks it, hands its new events to the owner.
    async fn on_downlink(&mut self, batch: Batch) {
        let link = self.uplink.config.link.clone();
        let metrics = &self.uplink.metrics;
        let peer = batch.node().clone();
        let lane = batch.lane();
        let first_seq = batch.first_seq();
        let (events, audit, directives) = split_events(batch);
        if !audit.is_empty() {
            // Audit trails travel up only: a parent has no business sending its own down.
            metrics.decode_error("unexpected_audit");
            warn!(%peer, %lane, first_seq, records = audit.len(),
                  "downlink batch carries audit records; not applying or acknowledging it");
            return;
        }
        let count = events.len();
        let apply_peer = peer.clone();
        let forward = self
            .uplink
            .forward
            .as_ref()
            .map(|f| (f.link.clone(), f.policy.clone()));
        let result = self
            .uplink
            .store
            .call(move |s| {
                let forward = forward
                    .as_ref()
                    .map(|(link, policy)| (link.as_str(), policy));
                let outcome = crate::directives::apply_downlink(
                    s,
                    &apply_peer,
                    lane,
                    first_seq,
                    &events,
                    &directives,
                    forward,
                )?;
                Ok((outcome, events))
            })
            .await;
        let (outcome, events) = match result {
            Ok(done) => done,
            Err(err) => {
                metrics
                    .apply_errors
                    .with_label_values(&[link.as_str()])
                    .inc();
                error!(%peer, %lane, first_seq, count, error = %err,
                       "cannot commit a downlink batch; not acknowledging it");
                return;
            }
        };
        record_received(metrics, &link, lane, &outcome.batch);
        let receipt = Receipt::of(lane, &outcome);
        let ack = encode(&Message::Ack(receipt.ack));
        if !mqtt::try_publish(&self.conn.client, &self.out.topic, false, ack) {
            warn!(%peer, %lane, "ack not queued (client busy); the parent will resend");
        }
        debug!(%peer, %lane, first_seq, applied = outcome.batch.applied,
               duplicates = outcome.batch.duplicates, gap = outcome.batch.gap,
               forwarded = receipt.forwarded.len(), "downlink batch committed");
        if receipt.wake_forward {
            if let Some(poke) = self.uplink.forward.as_ref().and_then(|f| f.poke.as_ref()) {
                poke.poke();
            }
        }
        if receipt.fresh.is_empty() {
            return;
        }
        let fresh = pick(events, &receipt.fresh);
        let delivery = Delivery {
            peer,
            lane,
            events: fresh,
        };
        // A dropped receiver means the owner does not want deliveries.
        let _ = self.uplink.deliveries_tx.send(delivery).await;
    }

    async fn publish_status(&mut self) {
        let cfg = &self.uplink.config;
        let backlog = match self
            .out
            .backlog(&self.uplink.store, &self.uplink.metrics)
            .await
        {
            Ok(backlog) => backlog,
            Err(err) => {
                warn!(link = %cfg.link, error = %err, "cannot read the outbox backlog for the status");
                Default::default()
            }
        };
        // Stamped before the tail is read: a record written in between is then newer than
        // the status, and the parent does not hold it against this node.
        let at = Timestamp::now();
        // The tail of this node's own audit chain: the parent holds a copy and compares.
        let audit = match self.uplink.store.call(|s| s.audit_head()).await {
            Ok(head) => Some(AuditTail {
                seq: head.seq,
                hash: AuditHash(head.hash),
            }),
            Err(err) => {
                warn!(link = %cfg.link, error = %err, "cannot read the audit chain's tail for the status");
                None
            }
        };
        let health = (self.uplink.health)();
        let mut status = Status::online(cfg.node.clone(), cfg.level, at);
        status.audit = audit;
        status.devices_online = health.devices_online;
        status.devices_total = health.devices_total;
        status.children = health.children;
        status.bindings = health.bindings;
        status.backlog = backlog;
        status.link = Some(LinkStatus {
            state: if self.connected {
                LinkState::Connected
            } else {
                LinkState::Connecting
            },
            last_ack_at: self.out.last_ack_at,
        });
        match try_encode(&Message::Status(status)) {
            Ok(payload) => {
                if !mqtt::try_publish(&self.conn.client, &self.status_topic, true, payload) {
                    debug!(link = %cfg.link, "status not queued (client busy); next interval");
                }
            }
            Err(err) => warn!(link = %cfg.link, error = %err, "cannot encode the status"),
        }
    }
}

/// The alert events, the audit records and the directive records a batch carries, each in
/// batch order.
pub(crate) fn split_events(
    batch: Batch,
) -> (Vec<AlertEvent>, Vec<AuditEvent>, Vec<DirectiveRecord>) {
    let mut alerts = Vec::with_capacity(batch.events().len());
    let mut audit = Vec::new();
    let mut directives = Vec::new();
    for event in batch.into_events() {
        match event {
            LinkEvent::Alert(event) => alerts.push(event),
            LinkEvent::Audit(record) => audit.push(record),
            LinkEvent::Directive(d) => directives.push(DirectiveRecord::Directive(d)),
            LinkEvent::DirectiveAck(a) => directives.push(DirectiveRecord::Ack(a)),
        }
    }
    (alerts, audit, directives)
}

/// The events at `indexes` (ascending), taken out of `events`.
pub(crate) fn pick(events: Vec<AlertEvent>, indexes: &[usize]) -> Vec<AlertEvent> {
    let mut wanted = indexes.iter().copied().peekable();
    events
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            if wanted.peek() == Some(&i) {
                wanted.next();
                Some(e)
            } else {
                None
            }
        })
        .collect()
}

/// Counts a received batch.
pub(crate) fn record_received(
    metrics: &LinkMetrics,
    link: &str,
    lane: Lane,
    outcome: &vigil_store::BatchOutcome,
) {
    if outcome.gap {
        metrics.gaps.with_label_values(&[link]).inc();
        return;
    }
    metrics
        .batches_received
        .with_label_values(&[link, lane.as_str()])
        .inc();
    metrics
        .events_received
        .with_label_values(&[link, "applied"])
        .inc_by(outcome.applied as u64);
    metrics
        .events_received
        .with_label_values(&[link, "duplicate"])
        .inc_by(outcome.duplicates as u64);
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertEventBody, AlertId, EventId, Hlc};

    use super::*;

    fn event(i: u8) -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([i; 16]),
            alert: AlertId::from_bytes([1; 16]),
            origin: NodeId::new("hub").expect("valid"),
            hlc: Hlc::new(u64::from(i), 0),
            actor: Actor::System,
            body: AlertEventBody::Unshelved,
            clamped_from: None,
        }
    }

    #[test]
    fn pick_keeps_the_fresh_events_in_order() {
        let events: Vec<AlertEvent> = (0..5).map(event).collect();
        let picked = pick(events.clone(), &[1, 3, 4]);
        assert_eq!(
            picked,
            vec![events[1].clone(), events[3].clone(), events[4].clone()]
        );
        assert!(pick(events, &[]).is_empty());
    }

    #[test]
    fn config_validation() {
        let node = NodeId::new("gw-1").expect("valid");
        assert!(UplinkConfig::new(node.clone(), "mqtt://127.0.0.1:1883")
            .validate()
            .is_ok());
        let mut bad = UplinkConfig::new(node.clone(), "mqtt://127.0.0.1:1883");
        bad.keep_alive = Duration::from_millis(500);
        assert!(bad
            .validate()
            .expect_err("keepalive")
            .to_string()
            .contains("keep_alive"));
        let mut bad = UplinkConfig::new(node.clone(), "http://x");
        assert!(bad.validate().is_err());
        bad.url = "mqtt://x".into();
        bad.status_interval = Duration::ZERO;
        assert!(bad.validate().is_err());
        let mut bad = UplinkConfig::new(node, "mqtt://x");
        bad.client_id = Some(String::new());
        assert!(bad.validate().is_err());
    }
}
