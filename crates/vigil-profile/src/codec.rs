//! The register codec: raw Modbus registers and bits ↔ point values.
//!
//! Modbus moves 16-bit big-endian registers; everything wider is a convention of the device.
//! A value of N registers is assembled by taking the registers in `word_order` (big: first
//! register most significant) and the two bytes of each in `byte_order` (big: high byte
//! first), then reading the bytes as one big-endian number. So a 32-bit value `0xAABBCCDD`
//! travels as `[0xAABB, 0xCCDD]` (big/big, "ABCD"), `[0xCCDD, 0xAABB]` (little/big, "CDAB"),
//! `[0xBBAA, 0xDDCC]` (big/little, "BADC") or `[0xDDCC, 0xBBAA]` (little/little, "DCBA").
//! Strings take registers in address order (word order does not apply), two bytes each in
//! `byte_order`, and lose trailing NULs and spaces.
//!
//! Numbers are scaled `value = raw * scale + offset`. An integer point with the identity
//! scale stays an integer; anything scaled becomes a float.

use vigil_core::Value;

use crate::schema::{ByteOrder, DataType, Point, WordOrder};

/// A value that cannot be decoded from or encoded to a point's registers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("point {point}: expected {expected} registers, got {got}")]
    Width {
        point: String,
        expected: usize,
        got: usize,
    },
    #[error("point {point}: a {data_type} point cannot take the value {value}")]
    Value {
        point: String,
        data_type: &'static str,
        value: String,
    },
}

fn bytes_of(regs: &[u16], word_order: WordOrder, byte_order: ByteOrder) -> Vec<u8> {
    let mut out = Vec::with_capacity(regs.len() * 2);
    let mut push = |w: u16| {
        let [hi, lo] = w.to_be_bytes();
        match byte_order {
            ByteOrder::Big => out.extend([hi, lo]),
            ByteOrder::Little => out.extend([lo, hi]),
        }
    };
    match word_order {
        WordOrder::Big => regs.iter().copied().for_each(&mut push),
        WordOrder::Little => regs.iter().rev().copied().for_each(&mut push),
    }
    out
}

fn regs_of(bytes: &[u8], word_order: WordOrder, byte_order: ByteOrder) -> Vec<u16> {
    let mut regs: Vec<u16> = bytes
        .chunks(2)
        .map(|c| {
            let (a, b) = (c[0], c.get(1).copied().unwrap_or(0));
            match byte_order {
                ByteOrder::Big => u16::from_be_bytes([a, b]),
                ByteOrder::Little => u16::from_be_bytes([b, a]),
            }
        })
        .collect();
    if word_order == WordOrder::Little {
        regs.reverse();
    }
    regs
}

fn scaled(point: &Point, raw: f64) -> f64 {
    raw * point.scale + point.offset
}

fn identity(point: &Point) -> bool {
    point.scale == 1.0 && point.offset == 0.0
}

fn int_value(point: &Point, raw: i128) -> Value {
    match i64::try_from(raw) {
        Ok(i) if identity(point) => Value::Int(i),
        // u64 above i64::MAX, or scaled: a float, as every historian stores it.
        #[allow(clippy::cast_precision_loss)]
        _ => Value::Float(scaled(point, raw as f64)),
    }
}

/// Decodes a register-table point from exactly `point.width()` registers.
pub fn decode_registers(point: &Point, regs: &[u16]) -> Result<Value, CodecError> {
    let expected = usize::from(point.width());
    if regs.len() != expected {
        return Err(CodecError::Width {
            point: point.name.clone(),
            expected,
            got: regs.len(),
        });
    }
    let b = bytes_of(regs, point.word_order, point.byte_order);
    Ok(match point.data_type {
        DataType::Bool => Value::Bool((regs[0] >> point.bit.unwrap_or(0)) & 1 == 1),
        DataType::U16 => int_value(point, u16::from_be_bytes([b[0], b[1]]).into()),
        DataType::I16 => int_value(point, i16::from_be_bytes([b[0], b[1]]).into()),
        DataType::U32 => int_value(point, u32::from_be_bytes([b[0], b[1], b[2], b[3]]).into()),
        DataType::I32 => int_value(point, i32::from_be_bytes([b[0], b[1], b[2], b[3]]).into()),
        DataType::U64 => int_value(point, u64::from_be_bytes(eight(&b)).into()),
        DataType::I64 => int_value(point, i64::from_be_bytes(eight(&b)).into()),
        DataType::F32 => Value::Float(scaled(
            point,
            f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        )),
        DataType::F64 => Value::Float(scaled(point, f64::from_be_bytes(eight(&b)))),
        DataType::String => {
            let bytes = bytes_of(regs, WordOrder::Big, point.byte_order);
            let len = usize::from(point.length.unwrap_or(0)).min(bytes.len());
            let text = String::from_utf8_lossy(&bytes[..len]);
            Value::Text(text.trim_end_matches(['\0', ' ']).to_owned())
        }
    })
}

fn eight(b: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&b[..8]);
    out
}

/// Decodes a bit-table point (coil, discrete input).
pub fn decode_bits(bit: bool) -> Value {
    Value::Bool(bit)
}

/// Encodes a value into a register-table point's registers (the simulator's side). `base`
/// is the register's current content, which a `bool` with a `bit` modifies.
pub fn encode_registers(point: &Point, value: &Value, base: u16) -> Result<Vec<u16>, CodecError> {
    let bad = || CodecError::Value {
        point: point.name.clone(),
        data_type: point.data_type.as_str(),
        value: value.to_string(),
    };
    let (wo, bo) = (point.word_order, point.byte_order);
    if point.data_type == DataType::Bool {
        let on = match value {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            _ => return Err(bad()),
        };
        let mask = 1u16 << point.bit.unwrap_or(0);
        return Ok(vec![if on { base | mask } else { base & !mask }]);
    }
    if point.data_type == DataType::String {
        let Value::Text(s) = value else {
            return Err(bad());
        };
        let mut bytes = s.as_bytes().to_vec();
        bytes.resize(usize::from(point.length.unwrap_or(0)), 0);
        return Ok(regs_of(&bytes, WordOrder::Big, bo));
    }
    // Integers at the identity scale are encoded exactly (an f64 holds only 53 bits).
    if let (Value::Int(i), true) = (value, identity(point)) {
        let i = i128::from(*i);
        macro_rules! exact {
            ($t:ty) => {
                regs_of(&<$t>::try_from(i).map_err(|_| bad())?.to_be_bytes(), wo, bo)
            };
        }
        match point.data_type {
            DataType::U16 => return Ok(exact!(u16)),
            DataType::I16 => return Ok(exact!(i16)),
            DataType::U32 => return Ok(exact!(u32)),
            DataType::I32 => return Ok(exact!(i32)),
            DataType::U64 => return Ok(exact!(u64)),
            DataType::I64 => return Ok(exact!(i64)),
            _ => {}
        }
    }
    let x = value.as_f64().ok_or_else(bad)?;
    let raw = (x - point.offset) / point.scale;
    if !raw.is_finite() {
        return Err(bad());
    }
    macro_rules! int {
        ($t:ty) => {{
            let r = raw.round();
            if r < <$t>::MIN as f64 || r > <$t>::MAX as f64 {
                return Err(bad());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let v = r as $t;
            regs_of(&v.to_be_bytes(), wo, bo)
        }};
    }
    Ok(match point.data_type {
        DataType::U16 => int!(u16),
        DataType::I16 => int!(i16),
        DataType::U32 => int!(u32),
        DataType::I32 => int!(i32),
        DataType::U64 => int!(u64),
        DataType::I64 => int!(i64),
        #[allow(clippy::cast_possible_truncation)]
        DataType::F32 => regs_of(&(raw as f32).to_be_bytes(), wo, bo),
        DataType::F64 => regs_of(&raw.to_be_bytes(), wo, bo),
        DataType::Bool | DataType::String => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Table;
    use proptest::prelude::*;

    fn point(t: DataType, wo: WordOrder, bo: ByteOrder) -> Point {
        Point {
            name: "p".into(),
            table: Table::Holding,
            address: 0,
            data_type: t,
            length: (t == DataType::String).then_some(7),
            bit: (t == DataType::Bool).then_some(3),
            word_order: wo,
            byte_order: bo,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            description: None,
            zone: None,
            alarm: None,
            limits: None,
            rate: None,
            stale: None,
            flatline: None,
        }
    }

    #[test]
    fn the_four_orders_of_a_u32() {
        use ByteOrder as B;
        use WordOrder as W;
        let cases = [
            (W::Big, B::Big, [0xAABB, 0xCCDD]),
            (W::Little, B::Big, [0xCCDD, 0xAABB]),
            (W::Big, B::Little, [0xBBAA, 0xDDCC]),
            (W::Little, B::Little, [0xDDCC, 0xBBAA]),
        ];
        for (wo, bo, regs) in cases {
            let p = point(DataType::U32, wo, bo);
            assert_eq!(
                decode_registers(&p, &regs),
                Ok(Value::Int(0xAABB_CCDD)),
                "{wo:?}/{bo:?}"
            );
            assert_eq!(
                encode_registers(&p, &Value::Int(0xAABB_CCDD), 0),
                Ok(regs.to_vec())
            );
        }
    }

    #[test]
    fn floats_signed_and_64_bit_values() {
        let p = point(DataType::F32, WordOrder::Big, ByteOrder::Big);
        // 230.5 V as IEEE-754: 0x43668000
        assert_eq!(
            decode_registers(&p, &[0x4366, 0x8000]),
            Ok(Value::Float(230.5))
        );
        let p = point(DataType::I16, WordOrder::Big, ByteOrder::Big);
        assert_eq!(decode_registers(&p, &[0xFFFE]), Ok(Value::Int(-2)));
        let p = point(DataType::I64, WordOrder::Little, ByteOrder::Big);
        assert_eq!(
            decode_registers(&p, &[0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
            Ok(Value::Int(-1))
        );
        let p = point(DataType::U64, WordOrder::Big, ByteOrder::Big);
        assert_eq!(decode_registers(&p, &[0, 0, 1, 0]), Ok(Value::Int(65536)));
        assert_eq!(
            decode_registers(&p, &[0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
            Ok(Value::Float(u64::MAX as f64)),
            "beyond i64 becomes a float"
        );
    }

    #[test]
    fn scale_and_offset() {
        let mut p = point(DataType::U16, WordOrder::Big, ByteOrder::Big);
        p.scale = 0.1;
        p.offset = -40.0;
        assert_eq!(
            decode_registers(&p, &[652]),
            Ok(Value::Float(652.0 * 0.1 - 40.0))
        );
        assert_eq!(encode_registers(&p, &Value::Float(25.2), 0), Ok(vec![652]));
    }

    #[test]
    fn bools_strings_and_widths() {
        let p = point(DataType::Bool, WordOrder::Big, ByteOrder::Big);
        assert_eq!(decode_registers(&p, &[0b1000]), Ok(Value::Bool(true)));
        assert_eq!(decode_registers(&p, &[0b0111]), Ok(Value::Bool(false)));
        assert_eq!(
            encode_registers(&p, &Value::Bool(true), 0b0001),
            Ok(vec![0b1001])
        );
        let p = point(DataType::String, WordOrder::Big, ByteOrder::Big);
        assert_eq!(p.width(), 4);
        assert_eq!(
            decode_registers(&p, &[0x5550, 0x532D, 0x3100, 0]),
            Ok(Value::Text("UPS-1".into()))
        );
        let p = point(DataType::U32, WordOrder::Big, ByteOrder::Big);
        assert!(matches!(
            decode_registers(&p, &[1]),
            Err(CodecError::Width {
                expected: 2,
                got: 1,
                ..
            })
        ));
        let p = point(DataType::U16, WordOrder::Big, ByteOrder::Big);
        assert!(encode_registers(&p, &Value::Int(70_000), 0).is_err());
        assert!(encode_registers(&p, &Value::Text("x".into()), 0).is_err());
    }

    fn orders() -> impl Strategy<Value = (WordOrder, ByteOrder)> {
        (any::<bool>(), any::<bool>()).prop_map(|(w, b)| {
            (
                if w { WordOrder::Little } else { WordOrder::Big },
                if b { ByteOrder::Little } else { ByteOrder::Big },
            )
        })
    }

    proptest! {
        #[test]
        fn integers_round_trip_in_every_order(v in any::<i32>(), u in any::<u32>(), w in any::<i64>(), (wo, bo) in orders()) {
            for (t, val) in [(DataType::I32, i64::from(v)), (DataType::U32, i64::from(u)), (DataType::I64, w), (DataType::I16, i64::from(v as i16)), (DataType::U16, i64::from(u as u16))] {
                let p = point(t, wo, bo);
                let regs = encode_registers(&p, &Value::Int(val), 0).expect("fits");
                prop_assert_eq!(regs.len(), usize::from(p.width()));
                prop_assert_eq!(decode_registers(&p, &regs).expect("decodes"), Value::Int(val));
            }
        }

        #[test]
        fn floats_round_trip_in_every_order(x in -1e30f64..1e30, (wo, bo) in orders()) {
            let p = point(DataType::F64, wo, bo);
            let regs = encode_registers(&p, &Value::Float(x), 0).expect("fits");
            prop_assert_eq!(decode_registers(&p, &regs).expect("decodes"), Value::Float(x));
            let p = point(DataType::F32, wo, bo);
            let regs = encode_registers(&p, &Value::Float(x), 0).expect("fits");
            prop_assert_eq!(decode_registers(&p, &regs).expect("decodes"), Value::Float(f64::from(x as f32)));
        }
    }
}
