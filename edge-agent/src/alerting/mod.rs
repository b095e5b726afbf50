//! Alert management: conditions in, alert events in the store and the outbox out
//! (docs/ARCHITECTURE.md#on-the-gateway: debounce, dedupe, correlate, ISA-18.2).
//!
//! - [`manager`]: the pure state machine that keys alerts by (node, source, kind), raises,
//!   updates, clears and closes them, and stamps their events with the node's clock;
//! - [`correlate`]: the pure zone correlator that fuses conditions from several sources in
//!   one zone into an incident;
//! - [`pipeline`]: the thin async shell that runs readings through the detectors and the
//!   manager and records each step's events in the store (events and outbox in one
//!   transaction) for the uplink to send on the [`UPLINK_LINK`] link.

pub mod correlate;
pub mod manager;
pub mod pipeline;

pub use correlate::{Correlator, CORRELATION_WINDOW};
pub use manager::{AlertError, AlertManager, LaneEvent, VALUE_UPDATE_INTERVAL};
pub use pipeline::{open_store, Pipeline, PipelineError, SharedStore};

/// The outbox link of the agent's uplink to its parent hub: the seam between the alert
/// pipeline, which appends to it, and the link engine (`vigil-link`), which drains it.
pub const UPLINK_LINK: &str = "parent";
