//! The profile schema, as typed serde structs. Unknown keys are rejected so that a typo
//! (`adress:`) is an error, not a silently ignored setting.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::Severity;

/// A device model: its identity and its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's id; the file is `<name>.yaml`.
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    #[serde(default)]
    pub description: String,
    pub points: Vec<Point>,
}

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Read-write bits (function codes 1, 5, 15).
    Coil,
    /// Read-only bits (function code 2).
    DiscreteInput,
    /// Read-write 16-bit registers (function codes 3, 6, 16).
    Holding,
    /// Read-only 16-bit registers (function code 4).
    Input,
}

impl Table {
    /// Whether the table holds bits (coils, discrete inputs) rather than registers.
    pub const fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete_input",
            Table::Holding => "holding",
            Table::Input => "input",
        }
    }
}

/// A point's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
    U64,
    I64,
    F64,
    String,
}

impl DataType {
    pub const fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F64 => "f64",
            DataType::String => "string",
        }
    }

    /// Whether the value is a number that scale and offset apply to.
    pub const fn is_numeric(self) -> bool {
        !matches!(self, DataType::Bool | DataType::String)
    }
}

/// The order of the 16-bit words of a multi-register value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// Most significant word first (Modbus's own convention, "ABCD").
    #[default]
    Big,
    /// Least significant word first ("CDAB", common in power meters).
    Little,
}

/// The order of the two bytes inside each 16-bit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// High byte first, as the Modbus specification says.
    #[default]
    Big,
    /// Low byte first ("BADC" / "DCBA" devices).
    Little,
}

/// One point of a device model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Unique within the profile; readings are named `device/<name>`.
    pub name: String,
    pub table: Table,
    /// 0-based protocol address (register 40001 in a manual is holding address 0).
    pub address: u16,
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// For `string`: the length in bytes (two per register).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u16>,
    /// For `bool` in a register table: the bit (0 = least significant) of the register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit: Option<u8>,
    #[serde(default)]
    pub word_order: WordOrder,
    #[serde(default)]
    pub byte_order: ByteOrder,
    /// `value = raw * scale + offset` for numeric types.
    #[serde(default = "default_scale")]
    pub scale: f64,
    #[serde(default)]
    pub offset: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The controller's own zone of the point (`fence-zone-3`), for correlation: only a
    /// default. In agent.toml the device's `zones` map names the site zone it stands for,
    /// and the device's `zone`, when set, covers every point it does not map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// A digital-state alarm (door forced, fence alarm, fire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmRule>,
    /// Analog limits HH/H/L/LL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Rate of change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateRule>,
    /// No new value for too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<StaleRule>,
    /// The value has not moved for too long (stuck sensor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatline: Option<FlatlineRule>,
}

const fn default_scale() -> f64 {
    1.0
}

impl Point {
    /// How many registers (register tables) or bits (bit tables) the point occupies.
    pub fn width(&self) -> u16 {
        if self.table.is_bits() {
            return 1;
        }
        match self.data_type {
            DataType::Bool | DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
            DataType::U64 | DataType::I64 | DataType::F64 => 4,
            DataType::String => self.length.unwrap_or(0).div_ceil(2),
        }
    }

    /// Every rule the point carries, for tools that list them.
    pub fn has_rules(&self) -> bool {
        self.alarm.is_some()
            || self.limits.is_some()
            || self.rate.is_some()
            || self.stale.is_some()
            || self.flatline.is_some()
    }
}

/// A digital-state alarm: active while the point equals `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// The value that means "alarm".
    pub state: bool,
    pub severity: Severity,
    pub message: String,
    /// A latching alarm stays latched after it clears until an operator resets it.
    #[serde(default)]
    pub latching: bool,
    /// How long the state must hold before the alarm raises.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
}

/// Analog limits, ISA-18.2 style: each limit is a separate alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ll: Option<f64>,
    /// The value must come back this far inside a limit before its alarm clears.
    #[serde(default)]
    pub deadband: f64,
    /// On-delay: how long a limit must be exceeded before its alarm raises.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// Off-delay: how long the value must be back before the alarm clears.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub off_delay: Option<Duration>,
}

/// A rate-of-change alarm: `|Δvalue| / Δt` above `max_per_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    pub max_per_s: f64,
    pub severity: Severity,
}

/// A stale-data alarm: no new reading for `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleRule {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    pub severity: Severity,
}

/// A flatline (stuck sensor) alarm: the value stays within `tolerance` for `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatlineRule {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    #[serde(default)]
    pub tolerance: f64,
    pub severity: Severity,
}
