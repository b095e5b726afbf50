//! The simulated Modbus devices: the application protocol (PDU), its two framings (MBAP over
//! TCP, RTU over a serial line), the register image of a device and the unit that answers
//! requests. The simulator owns the whole protocol, rather than using a server library, so
//! that faults can corrupt any byte of an answer.

pub mod image;
pub mod mbap;
pub mod pdu;
pub mod rtu;
pub mod rtu_frame;
pub mod tcp;
pub mod unit;
