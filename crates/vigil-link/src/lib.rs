//! Vigil's link engine: both ends of every child → parent link, over MQTT.
//!
//! Every link in the network — gateway to county hub, county to city, … province to
//! ministry — speaks one protocol (docs/ARCHITECTURE.md#link-protocol; the payloads
//! are `vigil-wire`'s, the durable queues `vigil-store`'s). This crate moves them:
//!
//! - [`Uplink`] is the child end, used by agents and by every hub below the ministry: it
//!   drains the node's `parent` outbox onto `vigil/v1/up/{node}` (critical lane first, a
//!   window of batches in flight, deletes only on the parent's ack, resends from the last ack
//!   after a timeout, a reconnect or a restart), applies the parent's downlink batches from
//!   `vigil/v1/down/{node}` and acks them after commit, and keeps a retained status with an
//!   `offline` last will on `vigil/v1/status/{node}`.
//! - [`Downlinks`] is the parent end, used by hubs: it takes every child's batches, acks and
//!   statuses, commits (and optionally relays up, in the same transaction) before it acks,
//!   keeps the children table, and drains one downlink outbox per child.
//! - [`escalation`] is what a node relays when it commits a peer's batch: a per-event
//!   policy, or a per-alert one that sees the alert each event belongs to
//!   ([`AlertContext`]).
//! - [`EmbeddedBroker`] is the MQTT broker a hub embeds by default; [`SecureBroker`]
//!   ([`gate`]) puts it behind an mTLS listener that enforces each node's topics.
//! - TLS: [`UplinkConfig::tls`] / [`DownlinksConfig::tls`] with an `mqtts://` URL connect
//!   through rustls with a config from `vigil_pki`.
//!
//! The protocol logic is pure and tested without I/O: [`sender`] (window, acks, resends,
//! ack timeouts), [`receiver`] (group commit, one-by-one retry, receipts), [`backoff`],
//! [`children`], [`inbound`]. The async shells ([`uplink`],
//! [`downlinks`], and the shared `drain` and [`mqtt`] parts) are one `select!` loop per
//! end. [`LinkMetrics`] holds the Prometheus metrics.
//!
//! # Wiring (an agent)
//!
//! ```no_run
//! # async fn agent() -> Result<(), Box<dyn std::error::Error>> {
//! use vigil_link::{LinkMetrics, SharedStore, Uplink, UplinkConfig};
//!
//! let registry = prometheus::Registry::new();
//! let metrics = LinkMetrics::new(&registry)?;
//! let store = SharedStore::new(vigil_store::Store::open("/var/lib/vigil/agent.db")?);
//! let node = vigil_core::NodeId::new("gw-prison-3")?;
//! let mut uplink = Uplink::new(UplinkConfig::new(node, "mqtt://127.0.0.1:1883"), store.clone(), metrics)?
//!     .with_health(|| vigil_link::Health { devices_online: 20, devices_total: 20, ..Default::default() });
//! let poke = uplink.poke_handle();             // poke after each record_events
//! let mut downlink = uplink.take_deliveries(); // operator actions from above
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let task = tokio::spawn(uplink.run(shutdown.clone()));
//! // … the alert manager: store.call(|s| s.record_events("parent", &events)).await?; poke.poke();
//! shutdown.cancel();
//! task.await??;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod backoff;
pub mod broker;
pub mod children;
mod directives;
pub mod downlinks;
mod drain;
pub mod error;
pub mod escalation;
pub mod findings;
pub mod gate;
pub mod handoff;
pub mod inbound;
pub mod metrics;
pub mod mqtt;
pub mod receiver;
pub mod sender;
pub mod store;
pub mod uplink;

pub use backoff::{Backoff, BackoffConfig};
pub use broker::{BrokerError, EmbeddedBroker, EmbeddedBrokerConfig};
pub use children::{ChildInfo, Children, Transition};
pub use downlinks::{
    child_link, Downlinks, DownlinksConfig, DownlinksHandle, Forward, CHILD_LINK_PREFIX,
};
pub use error::LinkError;
pub use escalation::{AlertContext, AlertPolicy, EscalationPolicy, ForwardPolicy};
pub use findings::{Finding, FindingReason};
pub use gate::{Denial, GateError, GateMetrics, SecureBroker, SecureBrokerConfig};
pub use handoff::{Delivery, OutboxPoke};
pub use inbound::InboundError;
pub use metrics::LinkMetrics;
pub use mqtt::{BrokerUrl, MqttCredentials};
pub use sender::{OutboxSender, SenderConfig};
pub use store::SharedStore;
pub use uplink::{Health, HealthSource, Uplink, UplinkConfig, PARENT_LINK};
