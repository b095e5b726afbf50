//! The Modbus source: TCP and RTU devices described by device profiles.
//!
//! - [`plan`] turns a profile into the fewest reads the protocol allows;
//! - [`client`] and [`link`] read over TCP or a serial bus, with timeouts, transport errors
//!   and device exceptions kept apart;
//! - [`scan`] performs one scan of one device (also `vigil-agent modbus read`);
//! - [`health`] tracks communication loss and backoff;
//! - [`poller`] runs one task per TCP device and one per RTU bus.
//!
//! Protocol trap: addresses here are the 0-based *protocol* addresses. A manual's "register
//! 40001" is holding address 0, "30011" is input address 10.

pub mod client;
pub mod health;
pub mod link;
pub mod plan;
pub mod poller;
pub mod scan;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_profile::Profile;

use crate::config::{ModbusDevice, Transport};
use client::SerialSettings;
use link::{Endpoint, Link};
use poller::{DevicePoller, Sinks};
use scan::ScanParams;

/// A configured device with its profile loaded and its reads planned.
pub fn device_poller(device: &ModbusDevice, profile: Profile) -> DevicePoller {
    let requests = plan::plan(&profile.points, device.max_gap);
    DevicePoller {
        id: device.id.clone(),
        profile,
        requests,
        params: ScanParams {
            unit: device.unit,
            timeout: device.timeout,
            retries: device.retries,
        },
        poll: device.poll,
        zone: device.zone.clone(),
        health: health::Health::default(),
        next_due: Instant::now(),
    }
}

/// The serial settings of an RTU device.
pub fn serial_settings(device: &ModbusDevice) -> SerialSettings {
    SerialSettings {
        baud: device.baud,
        parity: device.parity,
        stop_bits: device.stop_bits,
    }
}

/// Starts every device's polling on `tasks`: one task per TCP device, one per RTU bus.
/// `devices` pairs each configured device with its loaded profile.
pub fn spawn(
    devices: Vec<(ModbusDevice, Profile)>,
    sinks: &Sinks,
    shutdown: &CancellationToken,
    tasks: &vigil_runtime::Shutdown,
) {
    let mut buses: BTreeMap<PathBuf, (SerialSettings, Vec<DevicePoller>)> = BTreeMap::new();
    for (device, profile) in devices {
        let poller = device_poller(&device, profile);
        match (device.transport, &device.address, &device.port) {
            (Transport::Tcp, Some(addr), _) => {
                let link = Link::new(Endpoint::Tcp(addr.clone()));
                tasks.spawn(poller::run_device(
                    poller,
                    link,
                    sinks.clone(),
                    shutdown.clone(),
                ));
            }
            (Transport::Rtu, _, Some(port)) => {
                buses
                    .entry(port.clone())
                    .or_insert_with(|| (serial_settings(&device), Vec::new()))
                    .1
                    .push(poller);
            }
            // Config validation rejects these before the agent starts.
            _ => {
                tracing::error!(device = %device.id, "modbus device has no address or port; not polled")
            }
        }
    }
    for (port, (settings, pollers)) in buses {
        let link = Link::new(Endpoint::Rtu { port, settings });
        tasks.spawn(poller::run_bus(
            pollers,
            link,
            sinks.clone(),
            shutdown.clone(),
        ));
    }
}
