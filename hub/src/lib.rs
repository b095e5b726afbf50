//! The Vigil command hub, one per command centre (county, city, province, ministry).
//!
//! It owns the hub's side of the data path (DESIGN.md, "The data path"): ingest of its
//! children's batches into its store, the HTTP API, the console and the feeds, and its own
//! uplink to its parent (the same link engine as the agent's). The binary `vigil-hub` is a
//! thin shell over this library.
//!
//! The hub never depends on the agent; what both need lives in `crates/`.

pub mod cli;
