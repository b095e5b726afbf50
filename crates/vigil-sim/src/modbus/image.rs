//! The register image of one simulated device: its four Modbus tables as a function of time.
//!
//! Each point of the device's profile is driven by its scenario (or a normal default value),
//! coerced to the point's type and encoded with the profile codec
//! ([`vigil_profile::encode_registers`]: word and byte order, scale and offset, bit-in-register
//! bools, strings), so a client decoding with the same profile reads the scenario's value.
//! What a client writes (FC 5, 6, 15, 16) is kept per address and wins over the scenario from
//! then on, as a device's set-point would.
//!
//! **Which addresses are served.** A table serves the union of its points' address ranges,
//! with gaps between them bridged when they are at most [`MAX_GAP_REGISTERS`] registers
//! ([`MAX_GAP_BITS`] bits) wide: a poller that coalesces a scan into one request across a
//! gap gets zeros for the unassigned addresses, not an exception. A request that reaches
//! outside these served ranges (or into a table without points) gets exception 02, illegal
//! data address.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_core::Value;
use vigil_profile::{decode_registers, encode_registers, DataType, Point, Profile, Table};

use crate::modbus::pdu::Exception;
use crate::scenario::{noise_key, Scenario};

/// The widest gap, in registers, between two points' ranges that is still served.
pub const MAX_GAP_REGISTERS: u32 = 125;
/// The widest gap, in bits, between two points' ranges that is still served.
pub const MAX_GAP_BITS: u32 = 2000;

const TABLES: [Table; 4] = [
    Table::Coil,
    Table::DiscreteInput,
    Table::Holding,
    Table::Input,
];

/// One point and what drives it.
#[derive(Debug, Clone)]
struct Source {
    point: Point,
    script: Script,
    key: u64,
}

#[derive(Debug, Clone)]
enum Script {
    Scenario(Scenario),
    Fixed(Value),
}

/// The register image of one device.
#[derive(Debug, Clone)]
pub struct Image {
    sources: Vec<Source>,
    /// Per table: the served address ranges `[start, end)`, sorted and disjoint.
    served: BTreeMap<Table, Vec<(u32, u32)>>,
    /// What clients wrote: (table, address) → register content (0/1 for bits).
    written: BTreeMap<(Table, u16), u16>,
}

impl Image {
    /// The image of device `device` serving `profile`, with `scenarios` by point name
    /// (unknown names are ignored: the facility checks them) and `seed` for the noise.
    pub fn new(
        device: &str,
        profile: &Profile,
        scenarios: &BTreeMap<String, Scenario>,
        seed: u64,
    ) -> Self {
        let sources = profile
            .points
            .iter()
            .map(|p| Source {
                point: p.clone(),
                script: scenarios.get(&p.name).map_or_else(
                    || Script::Fixed(default_value(profile, p)),
                    |s| Script::Scenario(s.clone()),
                ),
                key: noise_key(seed, device, &p.name),
            })
            .collect();
        let mut served = BTreeMap::new();
        for table in TABLES {
            let mut ranges: Vec<(u32, u32)> = profile
                .points
                .iter()
                .filter(|p| p.table == table)
                .map(|p| {
                    let start = u32::from(p.address);
                    (start, start + u32::from(p.width().max(1)))
                })
                .collect();
            ranges.sort_unstable();
            let gap = if table.is_bits() {
                MAX_GAP_BITS
            } else {
                MAX_GAP_REGISTERS
            };
            let mut merged: Vec<(u32, u32)> = Vec::new();
            for (start, end) in ranges {
                match merged.last_mut() {
                    Some(last) if start <= last.1 + gap => last.1 = last.1.max(end),
                    _ => merged.push((start, end)),
                }
            }
            served.insert(table, merged);
        }
        Image {
            sources,
            served,
            written: BTreeMap::new(),
        }
    }

    /// The served ranges `[start, end)` of a table.
    pub fn served(&self, table: Table) -> &[(u32, u32)] {
        self.served.get(&table).map_or(&[], Vec::as_slice)
    }

    fn check(&self, table: Table, address: u16, quantity: u16) -> Result<(), Exception> {
        let (start, end) = (u32::from(address), u32::from(address) + u32::from(quantity));
        if self
            .served(table)
            .iter()
            .any(|&(s, e)| s <= start && end <= e)
        {
            Ok(())
        } else {
            Err(Exception::IllegalDataAddress)
        }
    }

    /// The value of a point's scenario at `t`, coerced to the point's type.
    fn scripted(&self, source: &Source, t: Duration) -> Value {
        let raw = match &source.script {
            Script::Scenario(s) => s.value_at(t, source.key),
            Script::Fixed(v) => v.clone(),
        };
        coerce(&source.point, raw)
    }

    /// Reads `quantity` registers of a register table from `address` at `t`.
    pub fn read_registers(
        &self,
        table: Table,
        address: u16,
        quantity: u16,
        t: Duration,
    ) -> Result<Vec<u16>, Exception> {
        self.check(table, address, quantity)?;
        let start = u32::from(address);
        let end = start + u32::from(quantity);
        let mut regs = vec![0u16; usize::from(quantity)];
        for source in self.sources.iter().filter(|s| s.point.table == table) {
            let p_start = u32::from(source.point.address);
            let p_end = p_start + u32::from(source.point.width());
            if p_end <= start || p_start >= end {
                continue;
            }
            let base = if p_start >= start {
                regs[idx(p_start - start)]
            } else {
                0
            };
            let value = self.scripted(source, t);
            let encoded = match encode_registers(&source.point, &value, base) {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(point = %source.point.name, error = %e, "value not encodable; serving zeros");
                    continue;
                }
            };
            for (i, word) in encoded.into_iter().enumerate() {
                let a = p_start + u32::try_from(i).unwrap_or(u32::MAX);
                if (start..end).contains(&a) {
                    regs[idx(a - start)] = word;
                }
            }
        }
        for ((_, a), word) in self
            .written
            .range((table, address)..)
            .take_while(|((tb, a), _)| *tb == table && u32::from(*a) < end)
        {
            regs[idx(u32::from(*a) - start)] = *word;
        }
        Ok(regs)
    }

    /// Reads `quantity` bits of a bit table from `address` at `t`.
    pub fn read_bits(
        &self,
        table: Table,
        address: u16,
        quantity: u16,
        t: Duration,
    ) -> Result<Vec<bool>, Exception> {
        self.check(table, address, quantity)?;
        let start = u32::from(address);
        let end = start + u32::from(quantity);
        let mut bits = vec![false; usize::from(quantity)];
        for source in self.sources.iter().filter(|s| s.point.table == table) {
            let a = u32::from(source.point.address);
            if (start..end).contains(&a) {
                bits[idx(a - start)] = matches!(self.scripted(source, t), Value::Bool(true));
            }
        }
        for ((_, a), v) in self
            .written
            .range((table, address)..)
            .take_while(|((tb, a), _)| *tb == table && u32::from(*a) < end)
        {
            bits[idx(u32::from(*a) - start)] = *v != 0;
        }
        Ok(bits)
    }

    /// Writes registers of the holding table.
    pub fn write_registers(&mut self, address: u16, values: &[u16]) -> Result<(), Exception> {
        let quantity = u16::try_from(values.len()).map_err(|_| Exception::IllegalDataValue)?;
        self.check(Table::Holding, address, quantity)?;
        for (a, v) in (address..).zip(values) {
            self.written.insert((Table::Holding, a), *v);
        }
        Ok(())
    }

    /// Writes coils.
    pub fn write_coils(&mut self, address: u16, values: &[bool]) -> Result<(), Exception> {
        let quantity = u16::try_from(values.len()).map_err(|_| Exception::IllegalDataValue)?;
        self.check(Table::Coil, address, quantity)?;
        for (a, v) in (address..).zip(values) {
            self.written.insert((Table::Coil, a), u16::from(*v));
        }
        Ok(())
    }

    /// The value a client reads for a point at `t` (writes included), decoded with the
    /// profile codec.
    pub fn point_value(&self, name: &str, t: Duration) -> Option<Value> {
        let source = self.sources.iter().find(|s| s.point.name == name)?;
        let p = &source.point;
        if p.table.is_bits() {
            let bits = self.read_bits(p.table, p.address, 1, t).ok()?;
            return Some(Value::Bool(bits[0]));
        }
        let regs = self.read_registers(p.table, p.address, p.width(), t).ok()?;
        decode_registers(p, &regs).ok()
    }
}

fn idx(offset: u32) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// The value of a point that no scenario drives: the facility starts normal.
///
/// - a bool with a digital alarm: the non-alarm state; other bools: `false`;
/// - a string: the profile's model name;
/// - a number with limits: the midpoint between its innermost low and high limits; with
///   only high limits, half the high limit (below zero: twice it); with only low limits,
///   twice the low limit (at or below zero: 0 or 1 above it);
/// - any other number: 0.
pub fn default_value(profile: &Profile, point: &Point) -> Value {
    match point.data_type {
        DataType::Bool => Value::Bool(point.alarm.as_ref().is_some_and(|a| !a.state)),
        DataType::String => Value::Text(profile.model.clone()),
        _ => {
            let Some(limits) = &point.limits else {
                return Value::Int(0);
            };
            let low = limits.l.or(limits.ll);
            let high = limits.h.or(limits.hh);
            let x = match (low, high) {
                (Some(l), Some(h)) => (l + h) / 2.0,
                (None, Some(h)) if h > 0.0 => h / 2.0,
                (None, Some(h)) if h < 0.0 => h * 2.0,
                (None, Some(_)) => -1.0,
                (Some(l), None) if l > 0.0 => l * 2.0,
                (Some(l), None) if l < 0.0 => 0.0,
                (Some(_), None) => 1.0,
                (None, None) => 0.0,
            };
            Value::Float(x)
        }
    }
}

/// A scenario's value as the point's type takes it: numbers become bools (non-zero is
/// true) for bool points, bools become 0/1 for numbers, anything becomes text for strings,
/// and integer points saturate at the ends of their raw range, as a transmitter does.
pub fn coerce(point: &Point, value: Value) -> Value {
    match point.data_type {
        DataType::Bool => Value::Bool(match value {
            Value::Bool(b) => b,
            Value::Int(i) => i != 0,
            Value::Float(x) => x != 0.0,
            Value::Text(s) => !s.is_empty(),
        }),
        DataType::String => match value {
            Value::Text(s) => Value::Text(s),
            other => Value::Text(other.to_string()),
        },
        DataType::F32 | DataType::F64 => match value {
            Value::Bool(b) => Value::Float(f64::from(u8::from(b))),
            Value::Text(_) => Value::Float(0.0),
            v => v,
        },
        t => {
            let Some(x) = value.as_f64() else {
                return Value::Int(0);
            };
            #[allow(clippy::cast_precision_loss)]
            let (lo, hi) = match t {
                DataType::U16 => (0.0, f64::from(u16::MAX)),
                DataType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
                DataType::U32 => (0.0, f64::from(u32::MAX)),
                DataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
                DataType::U64 => (0.0, i64::MAX as f64),
                _ => (i64::MIN as f64, i64::MAX as f64),
            };
            let (a, b) = (
                lo * point.scale + point.offset,
                hi * point.scale + point.offset,
            );
            let (min, max) = (a.min(b), a.max(b));
            match value {
                // Integers at the identity scale stay exact (no detour through f64).
                Value::Int(i) if point.scale == 1.0 && point.offset == 0.0 => {
                    #[allow(clippy::cast_possible_truncation)]
                    let (min, max) = (min as i64, max as i64);
                    Value::Int(i.clamp(min, max))
                }
                _ => Value::Float(x.clamp(min, max)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn profile(name: &str) -> Profile {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-profiles");
        vigil_profile::load_file(&dir.join(format!("{name}.yaml"))).expect("shipped profile")
    }

    fn noise(mean: f64) -> Scenario {
        Scenario::Constant {
            value: Value::Float(mean),
            stuck_at: None,
        }
    }

    #[test]
    fn defaults_start_the_facility_normal() {
        let door = profile("door-access-controller");
        let image = Image::new("d", &door, &BTreeMap::new(), 0);
        let t = Duration::ZERO;
        assert_eq!(
            image.point_value("door1_locked", t),
            Some(Value::Bool(true))
        );
        assert_eq!(
            image.point_value("door1_forced", t),
            Some(Value::Bool(false))
        );
        // locked (bit 1) set on each door register
        assert_eq!(
            image.read_registers(Table::Holding, 0, 4, t),
            Ok(vec![2, 2, 2, 2])
        );
        let ups = profile("ups");
        let image = Image::new("u", &ups, &BTreeMap::new(), 0);
        assert_eq!(
            image.point_value("model_name", t),
            Some(Value::Text("UPS-3K".into()))
        );
        assert_eq!(
            image.point_value("battery_percent", t),
            Some(Value::Int(80))
        );
        assert_eq!(image.point_value("load_percent", t), Some(Value::Int(40)));
        assert_eq!(
            image.point_value("input_voltage", t),
            Some(Value::Float(2300.0 * 0.1))
        );
    }

    #[test]
    fn scenarios_are_encoded_with_the_profile_codec() {
        let meter = profile("power-meter-cdab");
        let mut scenarios = BTreeMap::new();
        scenarios.insert("voltage_l1".to_owned(), noise(231.5));
        scenarios.insert(
            "energy_total_wh".to_owned(),
            Scenario::Constant {
                value: Value::Int(0x0102_0304_0506),
                stuck_at: None,
            },
        );
        let image = Image::new("m", &meter, &scenarios, 0);
        let t = Duration::from_secs(1);
        let regs = image
            .read_registers(Table::Holding, 0, 2, t)
            .expect("served");
        // 231.5 = 0x43677FFF.. in f32: 0x43678000, low word first
        assert_eq!(regs, vec![0x8000, 0x4367]);
        let regs = image
            .read_registers(Table::Holding, 10, 4, t)
            .expect("served");
        let p = meter
            .points
            .iter()
            .find(|p| p.name == "energy_total_wh")
            .expect("point");
        assert_eq!(decode_registers(p, &regs), Ok(Value::Int(0x0102_0304_0506)));
    }

    #[test]
    fn served_ranges_bridge_gaps_and_reject_the_rest() {
        let ups = profile("ups");
        let image = Image::new("u", &ups, &BTreeMap::new(), 0);
        let t = Duration::ZERO;
        assert_eq!(image.served(Table::Input), &[(0, 8)]);
        assert_eq!(image.served(Table::Holding), &[(100, 108)]);
        assert_eq!(image.served(Table::Coil), &[] as &[(u32, u32)]);
        assert_eq!(
            image.read_registers(Table::Input, 6, 3, t),
            Err(Exception::IllegalDataAddress)
        );
        assert_eq!(
            image.read_bits(Table::Coil, 0, 1, t),
            Err(Exception::IllegalDataAddress)
        );
        let fence = profile("perimeter-fence-controller");
        let image = Image::new("f", &fence, &BTreeMap::new(), 0);
        // DIs 0-7, 16-19, 24 → one range; inputs 10-11 and 20 → one range bridging the gap.
        assert_eq!(image.served(Table::DiscreteInput), &[(0, 25)]);
        assert_eq!(image.served(Table::Input), &[(10, 21)]);
        let regs = image
            .read_registers(Table::Input, 10, 11, t)
            .expect("bridged");
        assert_eq!(regs[2..10], [0; 8]);
    }

    #[test]
    fn writes_win_over_the_scenario() {
        let fence = profile("perimeter-fence-controller");
        let mut image = Image::new("f", &fence, &BTreeMap::new(), 0);
        image.write_registers(0, &[7]).expect("served");
        assert_eq!(
            image.point_value("sensitivity", Duration::ZERO),
            Some(Value::Int(7))
        );
        assert_eq!(
            image.write_registers(1, &[7]),
            Err(Exception::IllegalDataAddress)
        );
        let barrier = profile("microwave-barrier");
        let mut image = Image::new("b", &barrier, &BTreeMap::new(), 0);
        image.write_coils(0, &[true]).expect("served");
        assert_eq!(
            image.read_bits(Table::Coil, 0, 1, Duration::ZERO),
            Ok(vec![true])
        );
    }

    #[test]
    fn coercion_saturates_and_converts() {
        let ups = profile("ups");
        let p = |n: &str| {
            ups.points
                .iter()
                .find(|p| p.name == n)
                .expect("point")
                .clone()
        };
        assert_eq!(
            coerce(&p("battery_percent"), Value::Float(-5.0)),
            Value::Float(0.0)
        );
        assert_eq!(
            coerce(&p("battery_percent"), Value::Int(70_000)),
            Value::Int(65535)
        );
        assert_eq!(
            coerce(&p("on_battery"), Value::Float(1.0)),
            Value::Bool(true)
        );
        assert_eq!(
            coerce(&p("model_name"), Value::Int(3)),
            Value::Text("3".into())
        );
    }
}
