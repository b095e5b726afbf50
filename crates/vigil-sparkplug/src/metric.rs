//! Metric values as Vigil values: building a [`Metric`] from a [`Value`] of a [`DataType`],
//! and reading one back, with the two's-complement and field-choice rules of the
//! specification (see the crate docs for the traps).

use vigil_core::Value;

use crate::datatype::DataType;
use crate::proto::{Metric, MetricValue, Payload};

/// A metric value that does not fit its data type, or a type this crate does not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The metric names no datatype (usual in DATA messages: take it from the birth and call
    /// [`Metric::value_as`]).
    #[error("the metric has no datatype: read it with the datatype of its birth")]
    NoDataType,
    /// The datatype number is not one the specification defines.
    #[error("datatype {0} is not a Sparkplug B data type")]
    UnknownDataType(u32),
    /// A datatype whose values are not scalars (data sets, bytes, files, templates, arrays…).
    #[error("{0} values are not read as point values")]
    Unsupported(DataType),
    /// The metric has neither a value nor `is_null`.
    #[error("the {0} metric has no value and is not marked null")]
    Missing(DataType),
    /// The value is in a field the datatype does not use (a string in an Int32…).
    #[error("a {datatype} metric carries {field}")]
    WrongField {
        /// The metric's datatype.
        datatype: DataType,
        /// The protobuf field that holds the value.
        field: &'static str,
    },
    /// The value does not fit the datatype (300 as an Int8, -1 as a UInt16…).
    #[error("{value} is out of range for {datatype}")]
    OutOfRange {
        /// The datatype.
        datatype: DataType,
        /// The value, as written on the wire or given.
        value: String,
    },
    /// [`Metric::with_value`] was given a value of the wrong kind (text for an Int32…).
    #[error("{value:?} cannot be sent as {datatype}")]
    WrongValue {
        /// The datatype.
        datatype: DataType,
        /// The value given.
        value: Value,
    },
}

impl Payload {
    /// A payload sent at `timestamp` (epoch milliseconds) with sequence number `seq` (absent
    /// in NDEATH) carrying `metrics`.
    pub fn new(timestamp: u64, seq: Option<u64>, metrics: Vec<Metric>) -> Self {
        Payload {
            timestamp: Some(timestamp),
            metrics,
            seq,
            uuid: None,
            body: None,
        }
    }
}

impl Metric {
    /// A metric named `name` (with an optional `alias`) carrying `value` as `datatype`, the
    /// form births use. Integers are range-checked and signed ones written two's complement
    /// in the field the datatype implies; `Float` and `Double` also take integers.
    ///
    /// Errors: [`ValueError::WrongValue`] for a value of the wrong kind,
    /// [`ValueError::OutOfRange`] for an integer the type cannot hold,
    /// [`ValueError::Unsupported`] for non-scalar types.
    pub fn with_value(
        name: impl Into<String>,
        alias: Option<u64>,
        datatype: DataType,
        value: Value,
    ) -> Result<Metric, ValueError> {
        Ok(Metric {
            name: Some(name.into()),
            alias,
            datatype: Some(datatype.as_u32()),
            value: Some(to_wire(datatype, value)?),
            ..Metric::default()
        })
    }

    /// A metric that carries only `alias` and `value` (encoded as `datatype`, which is not
    /// sent): the compact form of DATA messages after a birth bound the alias.
    pub fn aliased(alias: u64, datatype: DataType, value: Value) -> Result<Metric, ValueError> {
        Ok(Metric {
            alias: Some(alias),
            value: Some(to_wire(datatype, value)?),
            ..Metric::default()
        })
    }

    /// A metric whose value is explicitly null (a sensor that cannot be read).
    pub fn null(name: impl Into<String>, alias: Option<u64>, datatype: DataType) -> Metric {
        Metric {
            name: Some(name.into()),
            alias,
            datatype: Some(datatype.as_u32()),
            is_null: Some(true),
            ..Metric::default()
        }
    }

    /// This metric stamped with its acquisition time (epoch milliseconds).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Metric {
        self.timestamp = Some(timestamp);
        self
    }

    /// The metric's own datatype: `Ok(None)` when it sends none (DATA messages),
    /// [`ValueError::UnknownDataType`] for a number the specification does not define.
    pub fn data_type(&self) -> Result<Option<DataType>, ValueError> {
        self.datatype
            .map(|n| DataType::from_u32(n).ok_or(ValueError::UnknownDataType(n)))
            .transpose()
    }

    /// The value read with the metric's own datatype; `Ok(None)` when it is null.
    pub fn value(&self) -> Result<Option<Value>, ValueError> {
        let datatype = self.data_type()?.ok_or(ValueError::NoDataType)?;
        self.value_as(datatype)
    }

    /// The value read as `datatype` (the datatype of the metric's birth); `Ok(None)` when it
    /// is null.
    ///
    /// Signed integers are read two's complement from the low bits (`Int8` in
    /// `int_value = 0xFF` is -1); the sign-extended forms and either integer field are
    /// accepted. `UInt64` values beyond `i64::MAX` become a `Float`. `Float` values are
    /// widened through their shortest decimal form, so 0.1f32 reads as 0.1.
    pub fn value_as(&self, datatype: DataType) -> Result<Option<Value>, ValueError> {
        if self.is_null() {
            return Ok(None);
        }
        if !datatype.is_scalar() {
            return Err(ValueError::Unsupported(datatype));
        }
        let value = self.value.as_ref().ok_or(ValueError::Missing(datatype))?;
        from_wire(datatype, value).map(Some)
    }
}

/// The protobuf field name of a value, for errors.
fn field_name(value: &MetricValue) -> &'static str {
    match value {
        MetricValue::IntValue(_) => "int_value",
        MetricValue::LongValue(_) => "long_value",
        MetricValue::FloatValue(_) => "float_value",
        MetricValue::DoubleValue(_) => "double_value",
        MetricValue::BooleanValue(_) => "boolean_value",
        MetricValue::StringValue(_) => "string_value",
        MetricValue::BytesValue(_) => "bytes_value",
        MetricValue::DatasetValue(_) => "dataset_value",
        MetricValue::TemplateValue(_) => "template_value",
        MetricValue::ExtensionValue(_) => "extension_value",
    }
}

/// The width in bits of an integer type, and whether it is signed.
const fn integer_width(datatype: DataType) -> Option<(u32, bool)> {
    match datatype {
        DataType::Int8 => Some((8, true)),
        DataType::Int16 => Some((16, true)),
        DataType::Int32 => Some((32, true)),
        DataType::Int64 => Some((64, true)),
        DataType::UInt8 => Some((8, false)),
        DataType::UInt16 => Some((16, false)),
        DataType::UInt32 => Some((32, false)),
        DataType::UInt64 | DataType::DateTime => Some((64, false)),
        _ => None,
    }
}

fn to_wire(datatype: DataType, value: Value) -> Result<MetricValue, ValueError> {
    if !datatype.is_scalar() {
        return Err(ValueError::Unsupported(datatype));
    }
    let wrong = |value: Value| ValueError::WrongValue { datatype, value };
    if let Some((bits, signed)) = integer_width(datatype) {
        let Value::Int(i) = value else {
            return Err(wrong(value));
        };
        let (min, max) = if signed {
            (
                i128::from(i64::MIN) >> (64 - bits),
                i128::from(i64::MAX) >> (64 - bits),
            )
        } else {
            (0, (1i128 << bits) - 1)
        };
        if !(min..=max).contains(&i128::from(i)) {
            return Err(ValueError::OutOfRange {
                datatype,
                value: i.to_string(),
            });
        }
        // Two's complement in the low `bits` bits: mask off the sign extension.
        let raw = (i as u64) & (u64::MAX >> (64 - bits));
        return Ok(if bits <= 32 {
            // The mask keeps at most 32 bits.
            MetricValue::IntValue(u32::try_from(raw).unwrap_or(u32::MAX))
        } else {
            MetricValue::LongValue(raw)
        });
    }
    match (datatype, value) {
        #[allow(clippy::cast_possible_truncation)]
        (DataType::Float, Value::Float(f)) => Ok(MetricValue::FloatValue(f as f32)),
        #[allow(clippy::cast_precision_loss)]
        (DataType::Float, Value::Int(i)) => Ok(MetricValue::FloatValue(i as f32)),
        (DataType::Double, Value::Float(f)) => Ok(MetricValue::DoubleValue(f)),
        #[allow(clippy::cast_precision_loss)]
        (DataType::Double, Value::Int(i)) => Ok(MetricValue::DoubleValue(i as f64)),
        (DataType::Boolean, Value::Bool(b)) => Ok(MetricValue::BooleanValue(b)),
        (DataType::String | DataType::Text | DataType::Uuid, Value::Text(s)) => {
            Ok(MetricValue::StringValue(s))
        }
        (_, value) => Err(wrong(value)),
    }
}

/// `f32` to `f64` through the shortest decimal that round-trips the `f32`.
fn widen(f: f32) -> f64 {
    if f.is_finite() {
        f.to_string().parse().unwrap_or(f64::from(f))
    } else {
        f64::from(f)
    }
}

/// The signed value of `raw` as a `bits`-bit two's complement integer: the low form
/// (`0xFF` for an Int8 -1) or a 32- or 64-bit sign extension of it.
fn signed(raw: u64, in_int_value: bool, bits: u32) -> Option<i64> {
    if bits == 64 {
        return Some(if in_int_value {
            i64::from(raw as u32 as i32)
        } else {
            raw as i64
        });
    }
    let min = i64::MIN >> (64 - bits);
    if raw < (1u64 << bits) {
        let shift = 64 - bits;
        return Some(((raw << shift) as i64) >> shift);
    }
    let wide = raw as i64;
    if (min..0).contains(&wide) {
        return Some(wide);
    }
    let narrow = u32::try_from(raw).ok().map(|r| i64::from(r as i32));
    narrow.filter(|n| (min..0).contains(n))
}

fn from_wire(datatype: DataType, value: &MetricValue) -> Result<Value, ValueError> {
    let wrong = || ValueError::WrongField {
        datatype,
        field: field_name(value),
    };
    if let Some((bits, is_signed)) = integer_width(datatype) {
        let (raw, in_int_value) = match value {
            MetricValue::IntValue(v) => (u64::from(*v), true),
            MetricValue::LongValue(v) => (*v, false),
            _ => return Err(wrong()),
        };
        let out_of_range = || ValueError::OutOfRange {
            datatype,
            value: format!("{raw:#x}"),
        };
        if is_signed {
            return signed(raw, in_int_value, bits)
                .map(Value::Int)
                .ok_or_else(out_of_range);
        }
        if bits < 64 && raw >= (1u64 << bits) {
            return Err(out_of_range());
        }
        return match i64::try_from(raw) {
            Ok(i) => Ok(Value::Int(i)),
            #[allow(clippy::cast_precision_loss)]
            Err(_) if datatype == DataType::UInt64 => Ok(Value::Float(raw as f64)),
            Err(_) => Err(out_of_range()),
        };
    }
    match (datatype, value) {
        (DataType::Float | DataType::Double, MetricValue::FloatValue(f)) => {
            Ok(Value::Float(widen(*f)))
        }
        (DataType::Float | DataType::Double, MetricValue::DoubleValue(d)) => Ok(Value::Float(*d)),
        (DataType::Boolean, MetricValue::BooleanValue(b)) => Ok(Value::Bool(*b)),
        (DataType::String | DataType::Text | DataType::Uuid, MetricValue::StringValue(s)) => {
            Ok(Value::Text(s.clone()))
        }
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn int(datatype: DataType, raw: u32) -> Metric {
        Metric {
            datatype: Some(datatype.as_u32()),
            value: Some(MetricValue::IntValue(raw)),
            ..Metric::default()
        }
    }

    fn long(datatype: DataType, raw: u64) -> Metric {
        Metric {
            datatype: Some(datatype.as_u32()),
            value: Some(MetricValue::LongValue(raw)),
            ..Metric::default()
        }
    }

    #[test]
    fn signed_integers_are_twos_complement() {
        assert_eq!(int(DataType::Int8, 0xFF).value(), Ok(Some(Value::Int(-1))));
        assert_eq!(
            int(DataType::Int8, 0x80).value(),
            Ok(Some(Value::Int(-128)))
        );
        assert_eq!(int(DataType::Int8, 0x7F).value(), Ok(Some(Value::Int(127))));
        // The 32-bit sign-extended form some producers write.
        assert_eq!(
            int(DataType::Int8, 0xFFFF_FFFF).value(),
            Ok(Some(Value::Int(-1)))
        );
        assert_eq!(
            int(DataType::Int16, 0xFFFE).value(),
            Ok(Some(Value::Int(-2)))
        );
        assert_eq!(
            int(DataType::Int16, 0xFFFF_8000).value(),
            Ok(Some(Value::Int(-32768)))
        );
        assert_eq!(
            int(DataType::Int32, 0xFFFF_FFFF).value(),
            Ok(Some(Value::Int(-1)))
        );
        assert_eq!(
            long(DataType::Int64, u64::MAX).value(),
            Ok(Some(Value::Int(-1)))
        );
        assert_eq!(
            long(DataType::Int8, u64::MAX).value(),
            Ok(Some(Value::Int(-1)))
        );
        assert_eq!(
            int(DataType::Int64, 0xFFFF_FFFF).value(),
            Ok(Some(Value::Int(-1)))
        );
        // Neither the low form nor a sign extension.
        assert!(matches!(
            int(DataType::Int8, 0x1FF).value(),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            int(DataType::Int8, 0xFFFF_FF00).value(),
            Err(ValueError::OutOfRange { .. })
        ));
    }

    #[test]
    fn unsigned_integers_are_range_checked() {
        assert_eq!(int(DataType::UInt8, 255).value(), Ok(Some(Value::Int(255))));
        assert!(int(DataType::UInt8, 256).value().is_err());
        assert_eq!(
            int(DataType::UInt16, 65535).value(),
            Ok(Some(Value::Int(65535)))
        );
        assert_eq!(
            int(DataType::UInt32, u32::MAX).value(),
            Ok(Some(Value::Int(4_294_967_295)))
        );
        // Tahu writes UInt32 in long_value.
        assert_eq!(long(DataType::UInt32, 7).value(), Ok(Some(Value::Int(7))));
        assert!(long(DataType::UInt32, 1 << 32).value().is_err());
        assert_eq!(
            long(DataType::UInt64, u64::MAX).value(),
            Ok(Some(Value::Float(1.8446744073709552e19)))
        );
        assert_eq!(
            long(DataType::DateTime, 1_700_000_000_000).value(),
            Ok(Some(Value::Int(1_700_000_000_000)))
        );
    }

    #[test]
    fn other_scalars() {
        let m = Metric::with_value("t", None, DataType::Float, Value::Float(0.1)).expect("fits");
        assert_eq!(m.value, Some(MetricValue::FloatValue(0.1)));
        assert_eq!(m.value(), Ok(Some(Value::Float(0.1))));
        let m = Metric::with_value("t", None, DataType::Double, Value::Int(3)).expect("fits");
        assert_eq!(m.value(), Ok(Some(Value::Float(3.0))));
        let m = Metric::with_value("b", None, DataType::Boolean, Value::Bool(true)).expect("fits");
        assert_eq!(m.value(), Ok(Some(Value::Bool(true))));
        let m =
            Metric::with_value("s", None, DataType::Text, Value::Text("hi".into())).expect("fits");
        assert_eq!(m.value(), Ok(Some(Value::Text("hi".into()))));
        assert_eq!(
            Metric::null("n", Some(3), DataType::Int32).value(),
            Ok(None)
        );
    }

    #[test]
    fn errors_are_typed() {
        let none = Metric::default();
        assert_eq!(none.value(), Err(ValueError::NoDataType));
        assert_eq!(
            none.value_as(DataType::Int32),
            Err(ValueError::Missing(DataType::Int32))
        );
        let odd = Metric {
            datatype: Some(99),
            ..Metric::default()
        };
        assert_eq!(odd.value(), Err(ValueError::UnknownDataType(99)));
        assert_eq!(
            int(DataType::Int32, 1).value_as(DataType::String),
            Err(ValueError::WrongField {
                datatype: DataType::String,
                field: "int_value"
            })
        );
        assert_eq!(
            int(DataType::Bytes, 1).value(),
            Err(ValueError::Unsupported(DataType::Bytes))
        );
        assert!(matches!(
            Metric::with_value("x", None, DataType::Int8, Value::Int(128)),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            Metric::with_value("x", None, DataType::UInt16, Value::Int(-1)),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            Metric::with_value("x", None, DataType::Int32, Value::Text("1".into())),
            Err(ValueError::WrongValue { .. })
        ));
        assert_eq!(
            Metric::with_value("x", None, DataType::DataSet, Value::Int(1)),
            Err(ValueError::Unsupported(DataType::DataSet))
        );
    }

    #[test]
    fn builders_write_the_specified_fields() {
        let m = Metric::with_value("a", Some(1), DataType::Int8, Value::Int(-1)).expect("fits");
        assert_eq!(m.value, Some(MetricValue::IntValue(0xFF)));
        let m = Metric::with_value("a", Some(1), DataType::Int16, Value::Int(-2)).expect("fits");
        assert_eq!(m.value, Some(MetricValue::IntValue(0xFFFE)));
        let m = Metric::with_value("a", Some(1), DataType::Int64, Value::Int(-1)).expect("fits");
        assert_eq!(m.value, Some(MetricValue::LongValue(u64::MAX)));
        let m = Metric::aliased(7, DataType::UInt32, Value::Int(5)).expect("fits");
        assert_eq!((m.name, m.alias, m.datatype), (None, Some(7), None));
        assert_eq!(m.value, Some(MetricValue::IntValue(5)));
    }

    fn integer_type() -> impl Strategy<Value = DataType> {
        prop::sample::select(vec![
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
            DataType::DateTime,
        ])
    }

    proptest! {
        #[test]
        fn integers_round_trip_or_are_refused(datatype in integer_type(), i in any::<i64>()) {
            match Metric::with_value("p", None, datatype, Value::Int(i)) {
                Ok(m) => prop_assert_eq!(m.value(), Ok(Some(Value::Int(i)))),
                Err(e) => {
                    let is_out_of_range = matches!(e, ValueError::OutOfRange { .. });
                    prop_assert!(is_out_of_range);
                }
            }
        }

        #[test]
        fn small_integers_always_fit(datatype in integer_type(), i in 0i64..=127) {
            let m = Metric::with_value("p", None, datatype, Value::Int(i));
            prop_assert_eq!(m.map(|m| m.value()), Ok(Ok(Some(Value::Int(i)))));
        }

        #[test]
        fn reading_any_wire_value_never_panics(
            datatype in 0u32..40,
            raw in any::<u64>(),
            f in any::<f32>(),
            pick in 0u8..4,
        ) {
            let value = match pick {
                0 => MetricValue::IntValue(raw as u32),
                1 => MetricValue::LongValue(raw),
                2 => MetricValue::FloatValue(f),
                _ => MetricValue::DoubleValue(f64::from(f)),
            };
            let m = Metric { datatype: Some(datatype), value: Some(value), ..Metric::default() };
            let _ = m.value();
        }

        #[test]
        fn doubles_round_trip(d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
            let m = Metric::with_value("p", None, DataType::Double, Value::Float(d));
            prop_assert_eq!(m.map(|m| m.value()), Ok(Ok(Some(Value::Float(d)))));
        }
    }
}
