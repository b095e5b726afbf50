//! `vigil-sim`: a simulated correctional facility for the demo, the end-to-end tests and
//! installer training.
//!
//! It serves Modbus devices — any device profile from `device-profiles/`, over Modbus TCP
//! (one listener per device, or several unit ids behind one gateway listener) and Modbus RTU
//! (several unit ids on a serial bus) — and MQTT sensors (JSON telemetry, plain numbers,
//! Sparkplug B). Scenarios drive every point's value over time, deterministically for a
//! seed; scripted faults (silence, delays, exceptions, garbage, wrong unit or transaction
//! ids, dropped connections, malformed MQTT payloads) exercise the agent's error handling.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use vigil_sim::{Facility, Simulator};
//! let facility = Facility::load(std::path::Path::new("sim.toml"))?;
//! let sim = Simulator::start(facility).await?;
//! let addr = sim.addr("fence-north").expect("a TCP device");
//! println!("fence-north serves Modbus TCP on {addr}");
//! sim.stop().await;
//! # Ok(()) }
//! ```
//!
//! Modules: [`config`] (the `sim.toml` schema), [`facility`] (config + resolved profiles),
//! [`scenario`] (values over time), [`fault`] (scripted faults), [`modbus`] (the protocol,
//! the register image, the TCP and RTU servers), [`mqtt`] (the sensors), [`sim`] (starting,
//! observing and stopping a simulation), [`stats`] (counters).

pub mod clock;
pub mod config;
pub mod error;
pub mod facility;
pub mod fault;
pub mod modbus;
pub mod mqtt;
pub mod scenario;
pub mod sim;
pub mod stats;

pub use config::{FaultKind, SimConfig};
pub use error::SimError;
pub use facility::Facility;
pub use scenario::Scenario;
pub use sim::{DeviceInfo, Endpoint, MqttInfo, SimHandle, Simulator};
pub use stats::{DeviceStats, MqttStats};
