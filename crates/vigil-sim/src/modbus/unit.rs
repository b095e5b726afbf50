//! One simulated Modbus device (a unit id): it turns a request PDU into what goes back —
//! an answer, an exception, or what a scripted fault makes of it — and counts it all.
//!
//! Transport-independent and synchronous: the TCP and RTU shells frame the request, ask the
//! unit for an [`Outcome`] (under a short lock, no await), then wait out any delay and frame
//! the reply. A [`UnitTable`] routes unit ids to the units of one listener or bus.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vigil_profile::Table;

use crate::config::FaultKind;
use crate::fault::{FaultAction, FaultPlan};
use crate::modbus::image::Image;
use crate::modbus::pdu::{self, Exception, Request};
use crate::stats::DeviceCounters;

/// What to send back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing: the request is dropped.
    Silent,
    /// This PDU, with the unit id of the request.
    Pdu(Vec<u8>),
    /// This PDU, with another unit id.
    WrongUnit {
        /// The answer.
        pdu: Vec<u8>,
        /// The unit id to answer with.
        unit: u8,
    },
    /// This PDU, with another transaction id (TCP).
    WrongTransaction(Vec<u8>),
    /// These random bytes (TCP: behind a broken MBAP header).
    Garbage(Vec<u8>),
    /// Close the connection (TCP).
    DropConnection,
}

/// What a unit does with a request: wait `delay`, then send `reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How long to wait before replying.
    pub delay: Duration,
    /// What to reply.
    pub reply: Reply,
}

/// One simulated device.
#[derive(Debug)]
pub struct Unit {
    device: String,
    unit_id: u8,
    image: Image,
    faults: FaultPlan,
    rng: StdRng,
    counters: Arc<DeviceCounters>,
    /// The fault kind last seen active, to log when a fault window starts and ends.
    last_fault: Option<FaultKind>,
}

impl Unit {
    /// A unit answering as `unit_id` for `device`, serving `image`, with `faults`, its random
    /// choices seeded by `seed`.
    pub fn new(
        device: &str,
        unit_id: u8,
        image: Image,
        faults: FaultPlan,
        seed: u64,
        counters: Arc<DeviceCounters>,
    ) -> Self {
        Unit {
            device: device.to_owned(),
            unit_id,
            image,
            faults,
            rng: StdRng::seed_from_u64(seed),
            counters,
            last_fault: None,
        }
    }

    /// The device's id.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The unit id the device answers to.
    pub fn unit_id(&self) -> u8 {
        self.unit_id
    }

    /// The register image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Handles a request addressed to this unit at `t` after the simulator's start.
    pub fn handle(&mut self, pdu: &[u8], t: Duration) -> Outcome {
        self.counters.request();
        let hit = self.faults.hit(t, &mut self.rng);
        let kind = hit.action.map(FaultAction::kind);
        if kind != self.last_fault {
            match kind {
                Some(k) => {
                    tracing::info!(device = %self.device, unit = self.unit_id, fault = k.as_str(), t = ?t, "fault active")
                }
                None => {
                    tracing::info!(device = %self.device, unit = self.unit_id, t = ?t, "fault over: serving normally")
                }
            }
            self.last_fault = kind;
        }
        if !hit.delay.is_zero() {
            self.counters.fault(FaultKind::Delay);
        }
        let function = pdu.first().copied();
        let reply = match hit.action {
            None => self.serve(pdu, t).map_or(Reply::Silent, Reply::Pdu),
            Some(action) => {
                self.counters.fault(action.kind());
                tracing::debug!(device = %self.device, unit = self.unit_id, fault = action.kind().as_str(), "fault injected");
                match action {
                    FaultAction::Silent | FaultAction::Malformed => Reply::Silent,
                    FaultAction::DropConnection => Reply::DropConnection,
                    FaultAction::Exception(code) => function.map_or(Reply::Silent, |f| {
                        Reply::Pdu(pdu::exception_response(f, code))
                    }),
                    FaultAction::Garbage => {
                        let len = self.rng.random_range(4..=16);
                        Reply::Garbage((0..len).map(|_| self.rng.random()).collect())
                    }
                    FaultAction::WrongUnit(unit) => {
                        let unit = unit.unwrap_or_else(|| match self.unit_id.wrapping_add(1) {
                            0 => 1,
                            u => u,
                        });
                        self.serve(pdu, t)
                            .map_or(Reply::Silent, |pdu| Reply::WrongUnit { pdu, unit })
                    }
                    FaultAction::WrongTransaction => self
                        .serve(pdu, t)
                        .map_or(Reply::Silent, Reply::WrongTransaction),
                }
            }
        };
        Outcome {
            delay: hit.delay,
            reply,
        }
    }

    /// Applies a broadcast (unit 0) request: writes take effect, nothing is answered.
    pub fn broadcast(&mut self, pdu: &[u8], t: Duration) {
        self.counters.request();
        if let Some(Ok(req)) = Request::parse(pdu) {
            if req.is_write() {
                let _ = self.execute(&req, t);
            }
        }
    }

    /// The normal answer to a request; `None` when there is nothing to answer.
    fn serve(&mut self, pdu: &[u8], t: Duration) -> Option<Vec<u8>> {
        let answer = match Request::parse(pdu)? {
            Ok(req) => self
                .execute(&req, t)
                .map_err(|exception| (req.function(), exception)),
            Err(rejected) => Err((rejected.function, rejected.exception)),
        };
        Some(match answer {
            Ok(pdu) => {
                self.counters.response();
                pdu
            }
            Err((function, exception)) => {
                self.counters.exception();
                tracing::debug!(device = %self.device, unit = self.unit_id, function, exception = ?exception, "exception response");
                pdu::exception_response(function, exception as u8)
            }
        })
    }

    fn execute(&mut self, req: &Request, t: Duration) -> Result<Vec<u8>, Exception> {
        let f = req.function();
        match req {
            Request::ReadCoils { address, quantity } => self
                .image
                .read_bits(Table::Coil, *address, *quantity, t)
                .map(|b| pdu::bits_response(f, &b)),
            Request::ReadDiscreteInputs { address, quantity } => self
                .image
                .read_bits(Table::DiscreteInput, *address, *quantity, t)
                .map(|b| pdu::bits_response(f, &b)),
            Request::ReadHoldingRegisters { address, quantity } => self
                .image
                .read_registers(Table::Holding, *address, *quantity, t)
                .map(|r| pdu::registers_response(f, &r)),
            Request::ReadInputRegisters { address, quantity } => self
                .image
                .read_registers(Table::Input, *address, *quantity, t)
                .map(|r| pdu::registers_response(f, &r)),
            Request::WriteSingleCoil { address, value } => {
                self.image.write_coils(*address, &[*value])?;
                self.counters.write();
                Ok(pdu::write_response(
                    f,
                    *address,
                    if *value { 0xFF00 } else { 0 },
                ))
            }
            Request::WriteSingleRegister { address, value } => {
                self.image.write_registers(*address, &[*value])?;
                self.counters.write();
                Ok(pdu::write_response(f, *address, *value))
            }
            Request::WriteMultipleCoils { address, values } => {
                self.image.write_coils(*address, values)?;
                self.counters.write();
                Ok(pdu::write_response(f, *address, quantity(values.len())))
            }
            Request::WriteMultipleRegisters { address, values } => {
                self.image.write_registers(*address, values)?;
                self.counters.write();
                Ok(pdu::write_response(f, *address, quantity(values.len())))
            }
        }
    }
}

fn quantity(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A unit shared between the connections of a listener.
pub type SharedUnit = Arc<Mutex<Unit>>;

/// Locks a unit; a poisoned lock (a panic while holding it) still yields the unit.
pub fn lock(unit: &SharedUnit) -> MutexGuard<'_, Unit> {
    unit.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a unit id leads on one listener or bus.
#[derive(Debug, Clone)]
pub enum Route {
    /// A device.
    Unit(SharedUnit),
    /// Unit 0: every device applies writes, nobody answers.
    Broadcast,
    /// No device has this unit id.
    Unknown,
}

/// The units of one TCP listener or serial bus, by unit id.
#[derive(Debug, Clone, Default)]
pub struct UnitTable {
    units: BTreeMap<u8, SharedUnit>,
}

impl UnitTable {
    /// Adds a unit (the config guarantees unit ids are unique per listener and bus).
    pub fn insert(&mut self, unit: SharedUnit) {
        let id = lock(&unit).unit_id();
        self.units.insert(id, unit);
    }

    /// Every unit.
    pub fn units(&self) -> impl Iterator<Item = &SharedUnit> {
        self.units.values()
    }

    /// Where `unit_id` leads. On a TCP listener with a single device (`direct`), unit 255
    /// (the Modbus TCP "no gateway" id) also addresses that device.
    pub fn route(&self, unit_id: u8, direct: bool) -> Route {
        if unit_id == 0 {
            return Route::Broadcast;
        }
        if let Some(u) = self.units.get(&unit_id) {
            return Route::Unit(Arc::clone(u));
        }
        match (direct, unit_id, self.units.values().next()) {
            (true, 255, Some(u)) if self.units.len() == 1 => Route::Unit(Arc::clone(u)),
            _ => Route::Unknown,
        }
    }

    /// The exception response of a gateway for a unit id it has no device for.
    pub fn unknown_unit_response(pdu: &[u8]) -> Option<Vec<u8>> {
        pdu.first()
            .map(|f| pdu::exception_response(*f, Exception::GatewayTargetFailed as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FaultConfig;
    use std::path::Path;

    fn unit(faults: &[FaultConfig]) -> (Unit, Arc<DeviceCounters>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles");
        let profile = vigil_profile::load_file(&dir.join("ups.yaml")).expect("profile");
        let image = Image::new("ups-1", &profile, &BTreeMap::new(), 0);
        let counters = Arc::new(DeviceCounters::default());
        (
            Unit::new(
                "ups-1",
                3,
                image,
                FaultPlan::new(faults),
                1,
                Arc::clone(&counters),
            ),
            counters,
        )
    }

    fn fault(kind: FaultKind) -> FaultConfig {
        FaultConfig {
            kind,
            from: None,
            until: None,
            probability: 1.0,
            delay: None,
            code: Some(6),
            unit: None,
        }
    }

    #[test]
    fn serves_reads_and_exceptions() {
        let (mut u, counters) = unit(&[]);
        let out = u.handle(&[4, 0, 0, 0, 1], Duration::ZERO);
        assert_eq!(out.reply, Reply::Pdu(vec![4, 2, 0, 80]));
        let out = u.handle(&[4, 0, 50, 0, 1], Duration::ZERO);
        assert_eq!(out.reply, Reply::Pdu(vec![0x84, 2]));
        let out = u.handle(&[0x2B, 0x0E, 1, 0], Duration::ZERO);
        assert_eq!(out.reply, Reply::Pdu(vec![0xAB, 1]));
        let s = counters.snapshot();
        assert_eq!((s.requests, s.responses, s.exceptions), (3, 1, 2));
    }

    #[test]
    fn faults_shape_the_reply() {
        let (mut u, counters) = unit(&[fault(FaultKind::Exception)]);
        assert_eq!(
            u.handle(&[4, 0, 0, 0, 1], Duration::ZERO).reply,
            Reply::Pdu(vec![0x84, 6])
        );
        let (mut u, _) = unit(&[fault(FaultKind::WrongUnit)]);
        assert_eq!(
            u.handle(&[4, 0, 0, 0, 1], Duration::ZERO).reply,
            Reply::WrongUnit {
                pdu: vec![4, 2, 0, 80],
                unit: 4
            }
        );
        let (mut u, _) = unit(&[fault(FaultKind::Silent)]);
        assert_eq!(
            u.handle(&[4, 0, 0, 0, 1], Duration::ZERO).reply,
            Reply::Silent
        );
        let (mut u, _) = unit(&[fault(FaultKind::Garbage)]);
        assert!(matches!(
            u.handle(&[4, 0, 0, 0, 1], Duration::ZERO).reply,
            Reply::Garbage(b) if (4..=16).contains(&b.len())
        ));
        assert_eq!(counters.snapshot().faults_of(FaultKind::Exception), 1);
    }

    #[test]
    fn routes_unit_ids() {
        let (u, _) = unit(&[]);
        let mut table = UnitTable::default();
        table.insert(Arc::new(Mutex::new(u)));
        assert!(matches!(table.route(3, false), Route::Unit(_)));
        assert!(matches!(table.route(0, false), Route::Broadcast));
        assert!(matches!(table.route(255, true), Route::Unit(_)));
        assert!(matches!(table.route(255, false), Route::Unknown));
        assert!(matches!(table.route(4, true), Route::Unknown));
    }
}
