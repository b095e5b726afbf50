//! Vigil's domain core: the vocabulary every other crate speaks.
//!
//! This crate owns the types that cross component and node boundaries — ids, node ids and
//! site paths, readings, conditions, alerts and their immutable events — and the two pieces of
//! logic that make replication work without coordination: the hybrid logical clock that
//! stamps every event, and the deterministic ISA-18.2 fold that turns an alert's event *set*
//! into its state. It does no I/O: time and randomness come in as arguments wherever a
//! result must be reproducible, so everything here is testable as plain functions.

pub mod alert;
pub mod event;
pub mod fold;
pub mod hlc;
pub mod id;
pub mod node;
pub mod reading;
pub mod severity;
pub mod time;

pub use alert::{AlertKey, Condition, ConditionKind};
pub use event::{Actor, AlertEvent, AlertEventBody};
pub use fold::{AlertState, AlertView};
pub use hlc::{clamp_ahead, Hlc, HlcClock};
pub use id::{AlertId, EventId};
pub use node::{Level, NodeId, SitePath};
pub use reading::{PointId, Quality, Reading, Value};
pub use severity::{CapSeverity, CapUrgency, Lane, Severity};
pub use time::Timestamp;
