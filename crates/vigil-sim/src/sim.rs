//! Starting, observing and stopping a simulation.
//!
//! [`Simulator::start`] binds every listener and opens every serial port first — so a port
//! in use fails the start with nothing left running — then spawns the servers and sensors.
//! The [`SimHandle`] it returns says where each device is served (the bound address, also for
//! `127.0.0.1:0`), what each device and sensor counted, what a point reads now, and stops
//! everything: one cancellation token for all tasks, one task tracker to wait for them
//! (dropping the handle cancels too).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::Value;

use crate::clock::Clock;
use crate::config::{BusConfig, MqttFormat, Parity, Transport};
use crate::error::SimError;
use crate::facility::Facility;
use crate::fault::FaultPlan;
use crate::modbus::image::Image;
use crate::modbus::rtu::{frame_gap, RtuServer};
use crate::modbus::tcp::TcpServer;
use crate::modbus::unit::{lock, SharedUnit, Unit, UnitTable};
use crate::mqtt::Sensor;
use crate::scenario::noise_key;
use crate::stats::{DeviceCounters, DeviceStats, MqttCounters, MqttStats};

/// Where a device is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Modbus TCP at this (bound) address.
    Tcp(SocketAddr),
    /// Modbus RTU on this bus and serial port.
    Rtu {
        /// The bus id.
        bus: String,
        /// The serial port.
        port: PathBuf,
    },
}

/// A served device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device id.
    pub id: String,
    /// The profile's name.
    pub profile: String,
    /// The unit id.
    pub unit: u8,
    /// Where it is served.
    pub endpoint: Endpoint,
    /// The gateway it is behind, if any.
    pub gateway: Option<String>,
}

/// A running MQTT sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttInfo {
    /// The sensor (or Sparkplug node) id.
    pub id: String,
    /// The broker URL.
    pub url: String,
    /// The payload format.
    pub format: MqttFormat,
    /// Where it publishes, for people: a topic or topic pattern.
    pub topic: String,
}

/// Starts simulations.
#[derive(Debug)]
pub struct Simulator;

/// A running simulation.
#[derive(Debug)]
pub struct SimHandle {
    clock: Clock,
    devices: Vec<DeviceInfo>,
    gateways: BTreeMap<String, SocketAddr>,
    units: BTreeMap<String, SharedUnit>,
    counters: BTreeMap<String, Arc<DeviceCounters>>,
    mqtt: Vec<MqttInfo>,
    mqtt_counters: BTreeMap<String, Arc<MqttCounters>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

fn open_serial(bus: &BusConfig) -> Result<SerialStream, SimError> {
    let builder = tokio_serial::new(bus.port.to_string_lossy(), bus.baud)
        .data_bits(if bus.data_bits == 7 {
            tokio_serial::DataBits::Seven
        } else {
            tokio_serial::DataBits::Eight
        })
        .parity(match bus.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .stop_bits(if bus.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        });
    SerialStream::open(&builder).map_err(|source| SimError::Serial {
        bus: bus.id.clone(),
        port: bus.port.clone(),
        source,
    })
}

impl Simulator {
    /// Starts the facility's devices and sensors.
    pub async fn start(facility: Facility) -> Result<SimHandle, SimError> {
        let Facility { config, profiles } = facility;
        let seed = config.seed;
        let mut units = BTreeMap::new();
        let mut counters = BTreeMap::new();
        let mut own: Vec<(String, SocketAddr, UnitTable)> = Vec::new();
        let mut gateway_tables: BTreeMap<String, UnitTable> = BTreeMap::new();
        let mut bus_tables: BTreeMap<String, UnitTable> = BTreeMap::new();
        for d in &config.devices {
            let profile = profiles
                .get(&d.id)
                .ok_or_else(|| SimError::NoProfile(d.id.clone()))?;
            let image = Image::new(&d.id, profile, &d.points, seed);
            let device_counters = Arc::new(DeviceCounters::default());
            let unit: SharedUnit = Arc::new(Mutex::new(Unit::new(
                &d.id,
                d.unit,
                image,
                FaultPlan::new(&d.faults),
                noise_key(seed, &d.id, "#faults"),
                Arc::clone(&device_counters),
            )));
            units.insert(d.id.clone(), Arc::clone(&unit));
            counters.insert(d.id.clone(), device_counters);
            match (d.transport, d.listen, &d.gateway, &d.bus) {
                (Transport::Tcp, Some(addr), _, _) => {
                    let mut table = UnitTable::default();
                    table.insert(unit);
                    own.push((d.id.clone(), addr, table));
                }
                (Transport::Tcp, None, Some(g), _) => {
                    gateway_tables.entry(g.clone()).or_default().insert(unit);
                }
                (Transport::Rtu, _, _, Some(b)) => {
                    bus_tables.entry(b.clone()).or_default().insert(unit);
                }
                _ => {} // ruled out by the config's validation
            }
        }

        // Bind and open everything before anything runs.
        let mut listeners = Vec::new();
        for (owner, addr, table) in own {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Bind {
                    owner: owner.clone(),
                    addr,
                    source,
                })?;
            listeners.push((owner, listener, table, true));
        }
        for g in &config.gateways {
            let table = gateway_tables.remove(&g.id).unwrap_or_default();
            let listener = TcpListener::bind(g.listen)
                .await
                .map_err(|source| SimError::Bind {
                    owner: format!("gateway {}", g.id),
                    addr: g.listen,
                    source,
                })?;
            listeners.push((g.id.clone(), listener, table, false));
        }
        let mut ports = Vec::new();
        for b in &config.buses {
            let table = bus_tables.remove(&b.id).unwrap_or_default();
            let bits = 1
                + u32::from(b.data_bits)
                + u32::from(b.stop_bits)
                + u32::from(b.parity != Parity::None);
            ports.push((
                b.id.clone(),
                open_serial(b)?,
                table,
                frame_gap(b.baud, bits),
            ));
        }
        let mut sensors = Vec::new();
        let mut mqtt = Vec::new();
        let mut mqtt_counters = BTreeMap::new();
        let clock = Clock::start();
        for m in &config.mqtt {
            let c = Arc::new(MqttCounters::default());
            mqtt_counters.insert(m.id.clone(), Arc::clone(&c));
            mqtt.push(MqttInfo {
                id: m.id.clone(),
                url: m.url.clone(),
                format: m.format,
                topic: match m.format {
                    MqttFormat::Json => m
                        .topic
                        .clone()
                        .unwrap_or_else(|| "facility/env/{id}/telemetry".into()),
                    MqttFormat::Number => m
                        .topic
                        .clone()
                        .unwrap_or_else(|| "facility/env/{id}/{field}".into()),
                    MqttFormat::SparkplugB => format!(
                        "spBv1.0/{}/+/{}/#",
                        m.group.as_deref().unwrap_or("vigil"),
                        m.id
                    ),
                }
                .replace("{id}", &m.id),
            });
            let sensor =
                Sensor::new(m.clone(), seed, c, clock).map_err(|source| SimError::Url {
                    id: m.id.clone(),
                    source,
                })?;
            sensors.push(sensor);
        }

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut devices = Vec::new();
        let mut gateways = BTreeMap::new();
        for (owner, listener, table, direct) in listeners {
            let local = listener.local_addr().map_err(|source| SimError::Bind {
                owner: owner.clone(),
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            for u in table.units() {
                let u = lock(u);
                devices.push(DeviceInfo {
                    id: u.device().to_owned(),
                    profile: profiles
                        .get(u.device())
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    unit: u.unit_id(),
                    endpoint: Endpoint::Tcp(local),
                    gateway: (!direct).then(|| owner.clone()),
                });
            }
            if !direct {
                gateways.insert(owner.clone(), local);
            }
            tracing::info!(listener = %owner, addr = %local, units = table.units().count(), "Modbus TCP listening");
            let server = TcpServer {
                name: owner,
                units: Arc::new(table),
                direct,
                clock,
            };
            tracker.spawn(server.serve(listener, shutdown.clone(), tracker.clone()));
        }
        for ((bus, port, table, gap), cfg) in ports.into_iter().zip(&config.buses) {
            for u in table.units() {
                let u = lock(u);
                devices.push(DeviceInfo {
                    id: u.device().to_owned(),
                    profile: profiles
                        .get(u.device())
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    unit: u.unit_id(),
                    endpoint: Endpoint::Rtu {
                        bus: bus.clone(),
                        port: cfg.port.clone(),
                    },
                    gateway: None,
                });
            }
            tracing::info!(%bus, port = %cfg.port.display(), baud = cfg.baud, units = table.units().count(), "Modbus RTU serving");
            let server = RtuServer {
                name: bus,
                units: Arc::new(table),
                gap,
                clock,
            };
            tracker.spawn(server.serve(port, shutdown.clone()));
        }
        for sensor in sensors {
            tracker.spawn(sensor.run(shutdown.clone()));
        }
        // Devices in config order, whatever listener they are on.
        let order: BTreeMap<&str, usize> = config
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i))
            .collect();
        devices.sort_by_key(|d| order.get(d.id.as_str()).copied());
        Ok(SimHandle {
            clock,
            devices,
            gateways,
            units,
            counters,
            mqtt,
            mqtt_counters,
            shutdown,
            tracker,
        })
    }
}

impl SimHandle {
    /// Every served device, in config order.
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// One device.
    pub fn device(&self, id: &str) -> Option<&DeviceInfo> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The bound address of a Modbus TCP device (its own listener or its gateway's).
    pub fn addr(&self, device: &str) -> Option<SocketAddr> {
        match self.device(device)?.endpoint {
            Endpoint::Tcp(addr) => Some(addr),
            Endpoint::Rtu { .. } => None,
        }
    }

    /// The bound address of a gateway.
    pub fn gateway_addr(&self, gateway: &str) -> Option<SocketAddr> {
        self.gateways.get(gateway).copied()
    }

    /// The running MQTT sensors.
    pub fn mqtt(&self) -> &[MqttInfo] {
        &self.mqtt
    }

    /// What a device counted so far.
    pub fn stats(&self, device: &str) -> Option<DeviceStats> {
        self.counters.get(device).map(|c| c.snapshot())
    }

    /// What an MQTT sensor counted so far.
    pub fn mqtt_stats(&self, sensor: &str) -> Option<MqttStats> {
        self.mqtt_counters.get(sensor).map(|c| c.snapshot())
    }

    /// The time since the simulation started (scenario and fault times are offsets on it).
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// What a client reads for `device`'s `point` now, decoded with the profile.
    pub fn value(&self, device: &str, point: &str) -> Option<Value> {
        self.value_at(device, point, self.elapsed())
    }

    /// What a client reads for `device`'s `point` at `t` after the start (client writes
    /// included), decoded with the profile.
    pub fn value_at(&self, device: &str, point: &str, t: Duration) -> Option<Value> {
        lock(self.units.get(device)?).image().point_value(point, t)
    }

    /// Stops every server and sensor and waits until they have finished.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        tracing::info!("simulation stopped");
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
