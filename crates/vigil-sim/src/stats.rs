//! Counters of what each simulated device and sensor did: requests served, exceptions,
//! faults injected by kind, messages published. Tests read them through the
//! [`SimHandle`](crate::SimHandle); the names are defined once here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::config::FaultKind;

/// The live counters of one Modbus device.
#[derive(Debug, Default)]
pub struct DeviceCounters {
    requests: AtomicU64,
    responses: AtomicU64,
    exceptions: AtomicU64,
    writes: AtomicU64,
    faults: Mutex<BTreeMap<FaultKind, u64>>,
}

/// A snapshot of one Modbus device's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Requests addressed to the device (broadcasts included).
    pub requests: u64,
    /// Normal answers produced (a `wrong_unit` or `wrong_transaction` fault corrupts the
    /// header of one of them; the other faults replace the answer and leave no response).
    pub responses: u64,
    /// Exception answers the protocol called for (illegal function, address or value);
    /// injected exceptions count as faults.
    pub exceptions: u64,
    /// Write requests applied to the register image.
    pub writes: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
}

impl DeviceStats {
    /// How many faults of `kind` were injected.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults.get(&kind).copied().unwrap_or(0)
    }

    /// How many faults were injected in all.
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl DeviceCounters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn exception(&self) {
        self.exceptions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fault(&self, kind: FaultKind) {
        if let Ok(mut f) = self.faults.lock() {
            *f.entry(kind).or_default() += 1;
        }
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> DeviceStats {
        DeviceStats {
            requests: self.requests.load(Ordering::Relaxed),
            responses: self.responses.load(Ordering::Relaxed),
            exceptions: self.exceptions.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            faults: self.faults.lock().map(|f| f.clone()).unwrap_or_default(),
        }
    }
}

/// The live counters of one MQTT sensor.
#[derive(Debug, Default)]
pub struct MqttCounters {
    connections: AtomicU64,
    published: AtomicU64,
    malformed: AtomicU64,
    suppressed: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of one MQTT sensor's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqttStats {
    /// Connections acknowledged by the broker (1 + reconnects).
    pub connections: u64,
    /// Messages handed to the broker connection (births and garbage included).
    pub published: u64,
    /// Garbage payloads published by a `malformed` fault.
    pub malformed: u64,
    /// Messages not published because of a `silent` fault.
    pub suppressed: u64,
    /// Connection or publish errors.
    pub errors: u64,
}

impl MqttCounters {
    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn suppressed(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> MqttStats {
        MqttStats {
            connections: self.connections.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}
