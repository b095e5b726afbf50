//! Eclipse Sparkplug B, as Vigil speaks it: the agent ingests it, the simulator publishes it.
//!
//! This crate owns three things and does no I/O:
//!
//! - the **payload** ([`Payload`], [`Metric`] and the rest of `sparkplug_b.proto`) as prost
//!   structs written by hand with the exact field numbers of the proto2 schema, and its
//!   codec: [`encode`] and [`decode`] (a typed [`Error`], never a panic, on any bytes);
//! - the **topic namespace** `spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`
//!   and `spBv1.0/STATE/{host_id}`, parsed into a typed [`Topic`];
//! - **metric values** as [`vigil_core::Value`]: [`Metric::with_value`] builds a metric of a
//!   [`DataType`] from a value, [`Metric::value`] / [`Metric::value_as`] read it back.
//!
//! # The traps of the wire format
//!
//! - Every scalar is carried in one of a few unsigned protobuf fields: `int_value` (uint32)
//!   for 8-, 16- and 32-bit integers, `long_value` (uint64) for 64-bit integers and
//!   `DateTime` (milliseconds since the Unix epoch). **Signed integers are two's complement**
//!   in those fields: an `Int8` of -1 is written `int_value = 0xFF`. Readers here also accept
//!   the 32- and 64-bit sign-extended forms (`0xFFFF_FFFF`) that some producers write, and
//!   both `int_value` and `long_value` for any integer type (Tahu writes `UInt32` in
//!   `long_value`).
//! - The `datatype` of a metric is sent in BIRTH messages; DATA messages usually carry only
//!   the `alias` (no name, no datatype), so a consumer must remember the births
//!   ([`Metric::value_as`] takes the datatype from there).
//! - `seq` counts 0..=255 and wraps ([`next_seq`]); `bdSeq` ([`BD_SEQ`]) pairs an NBIRTH with
//!   the NDEATH (the MQTT will) of the same session.
//!
//! # Example: an NBIRTH and an NDATA by alias
//!
//! ```
//! use vigil_core::Value;
//! use vigil_sparkplug::{decode, encode, DataType, MessageType, Metric, Payload, Topic};
//!
//! let birth = Payload::new(
//!     1_700_000_000_000,
//!     Some(0),
//!     vec![
//!         Metric::with_value("bdSeq", None, DataType::Int64, Value::Int(0))?,
//!         Metric::with_value("Supply/Voltage", Some(1), DataType::Float, Value::Float(24.1))?,
//!         Metric::with_value("Door/Open", Some(2), DataType::Boolean, Value::Bool(false))?,
//!     ],
//! );
//! let topic = Topic::node("facility-3", MessageType::NBirth, "gw-1");
//! assert_eq!(topic.to_string(), "spBv1.0/facility-3/NBIRTH/gw-1");
//!
//! // DATA messages carry only the alias; the datatype comes from the birth.
//! let data = Payload::new(1_700_000_001_000, Some(1), vec![
//!     Metric::aliased(2, DataType::Boolean, Value::Bool(true))?,
//! ]);
//! let bytes = encode(&data);
//! let back = decode(&bytes)?;
//! assert_eq!(back.metrics[0].alias, Some(2));
//! assert_eq!(back.metrics[0].value_as(DataType::Boolean)?, Some(Value::Bool(true)));
//! # let _ = birth;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
mod datatype;
mod metric;
pub mod proto;
mod topic;

pub use codec::{decode, encode, Error};
pub use datatype::DataType;
pub use metric::ValueError;
pub use proto::{Metric, MetricValue, Payload};
pub use topic::{MessageType, Topic, TopicError, NAMESPACE};

/// The name of the birth/death sequence metric that pairs an NBIRTH with its NDEATH.
pub const BD_SEQ: &str = "bdSeq";

/// The name of the node-control metric a host application writes (NCMD) to ask an edge node
/// to publish its births again.
pub const REBIRTH: &str = "Node Control/Rebirth";

/// The `seq` that follows `seq`: 0..=255, wrapping.
pub const fn next_seq(seq: u64) -> u64 {
    (seq + 1) % 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps_at_256() {
        assert_eq!(next_seq(0), 1);
        assert_eq!(next_seq(254), 255);
        assert_eq!(next_seq(255), 0);
    }
}
