//! Device profiles: what a device model's Modbus registers mean.
//!
//! A profile (`device-profiles/<name>.yaml`, docs/ARCHITECTURE.md#device-profiles) lists a device
//! model's points — table, 0-based protocol address, data type, word and byte order, scale,
//! offset, unit — and the default alarm rules of that model. The agent polls devices by their
//! profile; the simulator serves devices from the same files; the installer validates them
//! with `vigil-agent profile validate`. This crate owns the schema, the validation (every
//! error names the file, line and key) and the register codec that both sides share.

pub mod codec;
pub mod load;
mod locate;
pub mod schema;

pub use codec::{decode_bits, decode_registers, encode_registers, CodecError};
pub use load::{load_dir, load_file, parse_profile, ProfileError};
pub use schema::{
    AlarmRule, ByteOrder, DataType, FlatlineRule, Limits, Point, Profile, RateRule, StaleRule,
    Table, WordOrder,
};
