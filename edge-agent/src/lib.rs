//! The Vigil edge agent, one per facility gateway.
//!
//! It owns the gateway's side of the data path (docs/ARCHITECTURE.md#on-the-gateway): sources
//! (Modbus, MQTT, cameras) produce readings, detectors turn them into conditions, the alert
//! manager turns conditions into alert events, and the uplink drains the outbox to the parent
//! hub. It also owns the installer's CLI. The binary `vigil-agent` is a thin shell over this
//! library: it parses the command line, loads and validates config, and calls into here.
//!
//! The agent never depends on the hub; what both need lives in `crates/`.

pub mod alerting;
pub mod check_cmd;
pub mod cli;
pub mod config;
pub mod detect;
pub mod enroll;
pub mod metrics;
pub mod modbus_cmd;
pub mod posture;
pub mod profile_cmd;
pub mod profiles;
pub mod run;
pub mod source;
pub mod update;
