//! The Modbus application protocol data unit (PDU): requests parsed from bytes, responses
//! and exception responses written to bytes. Pure: no I/O, no framing (MBAP and RTU frames
//! wrap a PDU; see `mbap` and `rtu_frame`).
//!
//! Protocol traps kept here: addresses in a PDU are 0-based protocol addresses (register
//! 40001 of a manual is holding address 0); bits are packed least significant bit first; a
//! single-coil write carries `0xFF00` (on) or `0x0000` (off) and nothing else; an exception
//! response is the function code with its high bit set, then the exception code.

/// Function codes the simulator serves.
pub mod fc {
    /// Read coils.
    pub const READ_COILS: u8 = 0x01;
    /// Read discrete inputs.
    pub const READ_DISCRETE_INPUTS: u8 = 0x02;
    /// Read holding registers.
    pub const READ_HOLDING_REGISTERS: u8 = 0x03;
    /// Read input registers.
    pub const READ_INPUT_REGISTERS: u8 = 0x04;
    /// Write single coil.
    pub const WRITE_SINGLE_COIL: u8 = 0x05;
    /// Write single register.
    pub const WRITE_SINGLE_REGISTER: u8 = 0x06;
    /// Write multiple coils.
    pub const WRITE_MULTIPLE_COILS: u8 = 0x0F;
    /// Write multiple registers.
    pub const WRITE_MULTIPLE_REGISTERS: u8 = 0x10;
}

/// The most bits one read may ask for.
pub const MAX_READ_BITS: u16 = 2000;
/// The most registers one read may ask for.
pub const MAX_READ_REGISTERS: u16 = 125;
/// The most coils one write may carry.
pub const MAX_WRITE_COILS: u16 = 1968;
/// The most registers one write may carry.
pub const MAX_WRITE_REGISTERS: u16 = 123;

/// Modbus exception codes the simulator answers with on its own (faults may use any code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exception {
    /// 01: the function code is not served.
    IllegalFunction = 0x01,
    /// 02: the address range is outside what the device serves.
    IllegalDataAddress = 0x02,
    /// 03: a quantity out of range or a malformed request.
    IllegalDataValue = 0x03,
    /// 0B: a gateway has no device with the requested unit id.
    GatewayTargetFailed = 0x0B,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FC 1.
    ReadCoils {
        /// First address.
        address: u16,
        /// How many bits.
        quantity: u16,
    },
    /// FC 2.
    ReadDiscreteInputs {
        /// First address.
        address: u16,
        /// How many bits.
        quantity: u16,
    },
    /// FC 3.
    ReadHoldingRegisters {
        /// First address.
        address: u16,
        /// How many registers.
        quantity: u16,
    },
    /// FC 4.
    ReadInputRegisters {
        /// First address.
        address: u16,
        /// How many registers.
        quantity: u16,
    },
    /// FC 5.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On or off.
        value: bool,
    },
    /// FC 6.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The new content.
        value: u16,
    },
    /// FC 15.
    WriteMultipleCoils {
        /// First address.
        address: u16,
        /// The new states, in address order.
        values: Vec<bool>,
    },
    /// FC 16.
    WriteMultipleRegisters {
        /// First address.
        address: u16,
        /// The new contents, in address order.
        values: Vec<u16>,
    },
}

/// A request that cannot be served: the function code to answer for and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The request's function code (the exception response sets its high bit).
    pub function: u8,
    /// The exception to answer with.
    pub exception: Exception,
}

impl Request {
    /// The function code of the request.
    pub const fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => fc::READ_COILS,
            Request::ReadDiscreteInputs { .. } => fc::READ_DISCRETE_INPUTS,
            Request::ReadHoldingRegisters { .. } => fc::READ_HOLDING_REGISTERS,
            Request::ReadInputRegisters { .. } => fc::READ_INPUT_REGISTERS,
            Request::WriteSingleCoil { .. } => fc::WRITE_SINGLE_COIL,
            Request::WriteSingleRegister { .. } => fc::WRITE_SINGLE_REGISTER,
            Request::WriteMultipleCoils { .. } => fc::WRITE_MULTIPLE_COILS,
            Request::WriteMultipleRegisters { .. } => fc::WRITE_MULTIPLE_REGISTERS,
        }
    }

    /// Whether the request writes (and so applies on a broadcast).
    pub const fn is_write(&self) -> bool {
        matches!(
            self,
            Request::WriteSingleCoil { .. }
                | Request::WriteSingleRegister { .. }
                | Request::WriteMultipleCoils { .. }
                | Request::WriteMultipleRegisters { .. }
        )
    }

    /// Parses a request PDU. `None` for an empty PDU (there is no function code to answer
    /// for: the request is dropped).
    pub fn parse(pdu: &[u8]) -> Option<Result<Request, Rejected>> {
        let (&function, body) = pdu.split_first()?;
        let reject = |exception| {
            Err(Rejected {
                function,
                exception,
            })
        };
        let word = |i: usize| -> Option<u16> {
            Some(u16::from_be_bytes([*body.get(i)?, *body.get(i + 1)?]))
        };
        let address_quantity = || -> Option<(u16, u16)> {
            if body.len() != 4 {
                return None;
            }
            Some((word(0)?, word(2)?))
        };
        let read = |max: u16| -> Result<(u16, u16), Rejected> {
            match address_quantity() {
                Some((address, quantity)) if (1..=max).contains(&quantity) => {
                    if u32::from(address) + u32::from(quantity) > 0x1_0000 {
                        Err(Rejected {
                            function,
                            exception: Exception::IllegalDataAddress,
                        })
                    } else {
                        Ok((address, quantity))
                    }
                }
                _ => Err(Rejected {
                    function,
                    exception: Exception::IllegalDataValue,
                }),
            }
        };
        Some(match function {
            fc::READ_COILS => read(MAX_READ_BITS)
                .map(|(address, quantity)| Request::ReadCoils { address, quantity }),
            fc::READ_DISCRETE_INPUTS => read(MAX_READ_BITS)
                .map(|(address, quantity)| Request::ReadDiscreteInputs { address, quantity }),
            fc::READ_HOLDING_REGISTERS => read(MAX_READ_REGISTERS)
                .map(|(address, quantity)| Request::ReadHoldingRegisters { address, quantity }),
            fc::READ_INPUT_REGISTERS => read(MAX_READ_REGISTERS)
                .map(|(address, quantity)| Request::ReadInputRegisters { address, quantity }),
            fc::WRITE_SINGLE_COIL => match address_quantity() {
                Some((address, 0xFF00)) => Ok(Request::WriteSingleCoil {
                    address,
                    value: true,
                }),
                Some((address, 0x0000)) => Ok(Request::WriteSingleCoil {
                    address,
                    value: false,
                }),
                _ => reject(Exception::IllegalDataValue),
            },
            fc::WRITE_SINGLE_REGISTER => match address_quantity() {
                Some((address, value)) => Ok(Request::WriteSingleRegister { address, value }),
                None => reject(Exception::IllegalDataValue),
            },
            fc::WRITE_MULTIPLE_COILS => {
                parse_multiple(body, MAX_WRITE_COILS, |q| usize::from(q).div_ceil(8))
                    .map(|(address, quantity, data)| Request::WriteMultipleCoils {
                        address,
                        values: (0..usize::from(quantity))
                            .map(|i| data[i / 8] >> (i % 8) & 1 == 1)
                            .collect(),
                    })
                    .map_err(|exception| Rejected {
                        function,
                        exception,
                    })
            }
            fc::WRITE_MULTIPLE_REGISTERS => {
                parse_multiple(body, MAX_WRITE_REGISTERS, |q| usize::from(q) * 2)
                    .map(|(address, _, data)| Request::WriteMultipleRegisters {
                        address,
                        values: data
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect(),
                    })
                    .map_err(|exception| Rejected {
                        function,
                        exception,
                    })
            }
            _ => reject(Exception::IllegalFunction),
        })
    }
}

/// Parses the body of FC 15/16: address, quantity, byte count, data.
fn parse_multiple(
    body: &[u8],
    max: u16,
    bytes_for: impl Fn(u16) -> usize,
) -> Result<(u16, u16, &[u8]), Exception> {
    let [a0, a1, q0, q1, count, data @ ..] = body else {
        return Err(Exception::IllegalDataValue);
    };
    let address = u16::from_be_bytes([*a0, *a1]);
    let quantity = u16::from_be_bytes([*q0, *q1]);
    if !(1..=max).contains(&quantity)
        || usize::from(*count) != bytes_for(quantity)
        || data.len() != usize::from(*count)
    {
        return Err(Exception::IllegalDataValue);
    }
    if u32::from(address) + u32::from(quantity) > 0x1_0000 {
        return Err(Exception::IllegalDataAddress);
    }
    Ok((address, quantity, data))
}

/// The response PDU to a read of bits.
pub fn bits_response(function: u8, bits: &[bool]) -> Vec<u8> {
    let count = bits.len().div_ceil(8);
    let mut out = Vec::with_capacity(2 + count);
    out.push(function);
    out.push(u8::try_from(count).unwrap_or(u8::MAX));
    out.resize(2 + count, 0);
    for (i, bit) in bits.iter().enumerate() {
        if *bit {
            out[2 + i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// The response PDU to a read of registers.
pub fn registers_response(function: u8, registers: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + registers.len() * 2);
    out.push(function);
    out.push(u8::try_from(registers.len() * 2).unwrap_or(u8::MAX));
    for r in registers {
        out.extend(r.to_be_bytes());
    }
    out
}

/// The response PDU to a write: the function code, the address and the second word (the
/// written value for FC 5/6, the quantity for FC 15/16).
pub fn write_response(function: u8, address: u16, word: u16) -> Vec<u8> {
    let mut out = vec![function];
    out.extend(address.to_be_bytes());
    out.extend(word.to_be_bytes());
    out
}

/// An exception response PDU.
pub fn exception_response(function: u8, code: u8) -> Vec<u8> {
    vec![function | 0x80, code]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parse_and_quantities_are_bounded() {
        assert_eq!(
            Request::parse(&[3, 0, 10, 0, 2]),
            Some(Ok(Request::ReadHoldingRegisters {
                address: 10,
                quantity: 2
            }))
        );
        let too_many = Request::parse(&[4, 0, 0, 0, 126]).expect("a function code");
        assert_eq!(
            too_many,
            Err(Rejected {
                function: 4,
                exception: Exception::IllegalDataValue
            })
        );
        assert!(Request::parse(&[1, 0, 0, 0x07, 0xD0]).expect("fc").is_ok());
        assert!(Request::parse(&[1, 0, 0, 0x07, 0xD1]).expect("fc").is_err());
        assert!(
            Request::parse(&[3, 0, 0, 0, 0]).expect("fc").is_err(),
            "zero"
        );
        assert_eq!(
            Request::parse(&[3, 0xFF, 0xFF, 0, 2])
                .expect("fc")
                .map_err(|r| r.exception),
            Err(Exception::IllegalDataAddress),
            "runs past 65535"
        );
        assert_eq!(Request::parse(&[]), None);
        assert_eq!(
            Request::parse(&[0x2B, 0x0E, 1, 0])
                .expect("fc")
                .map_err(|r| r.exception),
            Err(Exception::IllegalFunction)
        );
    }

    #[test]
    fn writes_parse() {
        assert_eq!(
            Request::parse(&[5, 0, 1, 0xFF, 0]),
            Some(Ok(Request::WriteSingleCoil {
                address: 1,
                value: true
            }))
        );
        assert!(Request::parse(&[5, 0, 1, 0x12, 0]).expect("fc").is_err());
        assert_eq!(
            Request::parse(&[15, 0, 0, 0, 10, 2, 0b0000_0101, 0b10]),
            Some(Ok(Request::WriteMultipleCoils {
                address: 0,
                values: vec![true, false, true, false, false, false, false, false, false, true]
            }))
        );
        assert_eq!(
            Request::parse(&[16, 0, 4, 0, 2, 4, 0x12, 0x34, 0xAB, 0xCD]),
            Some(Ok(Request::WriteMultipleRegisters {
                address: 4,
                values: vec![0x1234, 0xABCD]
            }))
        );
        assert!(
            Request::parse(&[16, 0, 4, 0, 2, 3, 0x12, 0x34, 0xAB])
                .expect("fc")
                .is_err(),
            "byte count must match the quantity"
        );
    }

    #[test]
    fn responses_encode() {
        assert_eq!(
            bits_response(
                1,
                &[true, false, true, false, false, false, false, false, true]
            ),
            vec![1, 2, 0b101, 1]
        );
        assert_eq!(
            registers_response(3, &[0x1234, 1]),
            vec![3, 4, 0x12, 0x34, 0, 1]
        );
        assert_eq!(write_response(6, 2, 7), vec![6, 0, 2, 0, 7]);
        assert_eq!(exception_response(3, 2), vec![0x83, 2]);
    }
}
