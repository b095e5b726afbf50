//! The Vigil command hub, one per command centre (county, city, province, ministry).
//!
//! It owns the hub's side of the data path (docs/ARCHITECTURE.md#on-the-hub): ingest of its
//! children's batches into its store, the HTTP API, the console and the feeds, and its own
//! uplink to its parent (the same link engine as the agent's). The binary `vigil-hub` is a
//! thin shell over this library.
//!
//! - `config`: `hub.toml`; `check`: `vigil-hub check` (the config, certificates, store);
//! - `cli`, `cli_error`: the command line, and why a command other than `run` failed;
//! - `run`: `vigil-hub run`, which wires everything below;
//! - `listener`: the HTTP listener (TLS, timeouts, connection caps);
//! - `api`: the HTTP endpoints; `alert_json`: the alert as they show it;
//! - `auth`: who calls the API — users, roles, scope, sessions, API tokens, sign-in limits,
//!   and `vigil-hub user`/`token`;
//! - `action`: operator actions, their ISA-18.2 rules and how they are recorded (each with
//!   its audit record); `audit`: `vigil-hub audit verify`;
//! - `pki` and `enroll`: the hub's CA, enrollment tokens, `POST /api/v1/enroll`,
//!   revocation, an external broker's files, and this hub enrolling with its parent;
//! - `live`: the live stream's channel and the ingest hook;
//! - `tree` and `children`: the network under the hub and its health; `alarms`: the alerts
//!   the hub raises itself about its nodes (offline, backlog, security, clock skew);
//!   `node_health`: when a child is offline or its backlog too long;
//! - `link`: the MQTT side — broker, the links to the children and to the parent
//!   (`crates/vigil-link`);
//! - `clock`, `metrics`: what all of them share. The store is shared as
//!   `vigil_link::SharedStore` (one connection behind one mutex, reached from async code
//!   through its blocking-pool `call`), the same handle the links use.
//!
//! The hub never depends on the agent; what both need lives in `crates/`.

pub mod action;
pub mod alarms;
pub mod alert_json;
pub mod api;
pub mod audit;
pub mod auth;
pub mod check;
pub mod children;
pub mod cli;
pub mod cli_error;
pub mod clock;
pub mod config;
pub mod directives;
pub mod enroll;
pub mod escalation;
pub mod link;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod node_health;
pub mod nodes;
pub mod pki;
pub mod run;
pub mod tree;
