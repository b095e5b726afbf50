//! The Sparkplug B `DataType` enum: what a metric's `datatype` number means.

use std::fmt;

/// A metric's (or property's, or data set column's) type, sent as a `uint32`.
///
/// The numbers are the Sparkplug 3.0 specification's. `Unknown` (0) is a placeholder that
/// no well-formed metric uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DataType {
    /// Placeholder for future expansion.
    Unknown = 0,
    /// Signed 8-bit, two's complement in `int_value`.
    Int8 = 1,
    /// Signed 16-bit, two's complement in `int_value`.
    Int16 = 2,
    /// Signed 32-bit, two's complement in `int_value`.
    Int32 = 3,
    /// Signed 64-bit, two's complement in `long_value`.
    Int64 = 4,
    /// Unsigned 8-bit in `int_value`.
    UInt8 = 5,
    /// Unsigned 16-bit in `int_value`.
    UInt16 = 6,
    /// Unsigned 32-bit in `int_value`.
    UInt32 = 7,
    /// Unsigned 64-bit in `long_value`.
    UInt64 = 8,
    /// IEEE 754 single precision in `float_value`.
    Float = 9,
    /// IEEE 754 double precision in `double_value`.
    Double = 10,
    /// `boolean_value`.
    Boolean = 11,
    /// UTF-8 in `string_value`.
    String = 12,
    /// Milliseconds since the Unix epoch (UTC) in `long_value`.
    DateTime = 13,
    /// UTF-8 text in `string_value`.
    Text = 14,
    /// A UUID as text in `string_value`.
    Uuid = 15,
    /// `dataset_value`.
    DataSet = 16,
    /// `bytes_value`.
    Bytes = 17,
    /// A file in `bytes_value`, described by the metric's metadata.
    File = 18,
    /// `template_value`.
    Template = 19,
    /// A property value holding a property set.
    PropertySet = 20,
    /// A property value holding a list of property sets.
    PropertySetList = 21,
    /// Packed little-endian `i8`s in `bytes_value`.
    Int8Array = 22,
    /// Packed little-endian `i16`s in `bytes_value`.
    Int16Array = 23,
    /// Packed little-endian `i32`s in `bytes_value`.
    Int32Array = 24,
    /// Packed little-endian `i64`s in `bytes_value`.
    Int64Array = 25,
    /// Packed `u8`s in `bytes_value`.
    UInt8Array = 26,
    /// Packed little-endian `u16`s in `bytes_value`.
    UInt16Array = 27,
    /// Packed little-endian `u32`s in `bytes_value`.
    UInt32Array = 28,
    /// Packed little-endian `u64`s in `bytes_value`.
    UInt64Array = 29,
    /// Packed little-endian `f32`s in `bytes_value`.
    FloatArray = 30,
    /// Packed little-endian `f64`s in `bytes_value`.
    DoubleArray = 31,
    /// Packed bits in `bytes_value`.
    BooleanArray = 32,
    /// NUL-terminated strings in `bytes_value`.
    StringArray = 33,
    /// Packed little-endian epoch milliseconds in `bytes_value`.
    DateTimeArray = 34,
}

impl DataType {
    /// Every data type, in number order.
    pub const ALL: [DataType; 35] = [
        DataType::Unknown,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float,
        DataType::Double,
        DataType::Boolean,
        DataType::String,
        DataType::DateTime,
        DataType::Text,
        DataType::Uuid,
        DataType::DataSet,
        DataType::Bytes,
        DataType::File,
        DataType::Template,
        DataType::PropertySet,
        DataType::PropertySetList,
        DataType::Int8Array,
        DataType::Int16Array,
        DataType::Int32Array,
        DataType::Int64Array,
        DataType::UInt8Array,
        DataType::UInt16Array,
        DataType::UInt32Array,
        DataType::UInt64Array,
        DataType::FloatArray,
        DataType::DoubleArray,
        DataType::BooleanArray,
        DataType::StringArray,
        DataType::DateTimeArray,
    ];

    /// The data type a wire number stands for; `None` for numbers the specification does not
    /// define.
    pub fn from_u32(n: u32) -> Option<DataType> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }

    /// The wire number.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The specification's name (`Int8`, `DateTime`, `UUID`…).
    pub const fn name(self) -> &'static str {
        match self {
            DataType::Unknown => "Unknown",
            DataType::Int8 => "Int8",
            DataType::Int16 => "Int16",
            DataType::Int32 => "Int32",
            DataType::Int64 => "Int64",
            DataType::UInt8 => "UInt8",
            DataType::UInt16 => "UInt16",
            DataType::UInt32 => "UInt32",
            DataType::UInt64 => "UInt64",
            DataType::Float => "Float",
            DataType::Double => "Double",
            DataType::Boolean => "Boolean",
            DataType::String => "String",
            DataType::DateTime => "DateTime",
            DataType::Text => "Text",
            DataType::Uuid => "UUID",
            DataType::DataSet => "DataSet",
            DataType::Bytes => "Bytes",
            DataType::File => "File",
            DataType::Template => "Template",
            DataType::PropertySet => "PropertySet",
            DataType::PropertySetList => "PropertySetList",
            DataType::Int8Array => "Int8Array",
            DataType::Int16Array => "Int16Array",
            DataType::Int32Array => "Int32Array",
            DataType::Int64Array => "Int64Array",
            DataType::UInt8Array => "UInt8Array",
            DataType::UInt16Array => "UInt16Array",
            DataType::UInt32Array => "UInt32Array",
            DataType::UInt64Array => "UInt64Array",
            DataType::FloatArray => "FloatArray",
            DataType::DoubleArray => "DoubleArray",
            DataType::BooleanArray => "BooleanArray",
            DataType::StringArray => "StringArray",
            DataType::DateTimeArray => "DateTimeArray",
        }
    }

    /// Whether a value of this type reads as a [`vigil_core::Value`] (the scalar types:
    /// integers, floats, booleans, strings, text, UUIDs and date-times). Data sets, bytes,
    /// files, templates, property sets and arrays do not.
    pub const fn is_scalar(self) -> bool {
        matches!(
            self,
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Float
                | DataType::Double
                | DataType::Boolean
                | DataType::String
                | DataType::DateTime
                | DataType::Text
                | DataType::Uuid
        )
    }
}

impl TryFrom<u32> for DataType {
    /// The number that is not a data type.
    type Error = u32;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        DataType::from_u32(n).ok_or(n)
    }
}

impl From<DataType> for u32 {
    fn from(t: DataType) -> u32 {
        t.as_u32()
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_specifications() {
        for (i, t) in DataType::ALL.iter().enumerate() {
            assert_eq!(t.as_u32() as usize, i, "{t}");
            assert_eq!(DataType::from_u32(t.as_u32()), Some(*t));
        }
        assert_eq!(DataType::Int8.as_u32(), 1);
        assert_eq!(DataType::UInt64.as_u32(), 8);
        assert_eq!(DataType::Float.as_u32(), 9);
        assert_eq!(DataType::Double.as_u32(), 10);
        assert_eq!(DataType::Boolean.as_u32(), 11);
        assert_eq!(DataType::String.as_u32(), 12);
        assert_eq!(DataType::DateTime.as_u32(), 13);
        assert_eq!(DataType::Text.as_u32(), 14);
        assert_eq!(DataType::DateTimeArray.as_u32(), 34);
        assert_eq!(DataType::try_from(35), Err(35));
        assert_eq!(DataType::from_u32(u32::MAX), None);
        assert_eq!(DataType::Uuid.to_string(), "UUID");
    }
}
