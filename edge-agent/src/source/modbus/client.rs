//! One Modbus connection (TCP or RTU) and reads on it with a timeout, with transport errors
//! and device exceptions kept apart (tokio-modbus's nested results, flattened into
//! [`ReadError`] kinds that metrics and the installer CLI can name).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;
use tokio_serial::SerialPortBuilderExt;
use vigil_profile::Table;

use crate::config::Parity;

/// Raw data of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    Bits(Vec<bool>),
    Registers(Vec<u16>),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("device exception: {0}")]
    Exception(String),
    /// A gateway answered that the device behind it did not (exceptions 0x0A, 0x0B): the
    /// gateway is reachable, the device is not.
    #[error("gateway answered for an absent device: {0}")]
    Gateway(String),
    #[error("i/o error: {0}")]
    Io(String),
    /// Garbage, a wrong unit id or transaction id, a short or mismatched response.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ReadError {
    /// The `kind` label of `vigil_modbus_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Timeout(_) => "timeout",
            ReadError::Exception(_) => "exception",
            ReadError::Gateway(_) => "gateway",
            ReadError::Io(_) => "io",
            ReadError::Protocol(_) => "protocol",
        }
    }

    /// Whether the device answered at all (an exception is an answer: the link is fine).
    pub fn is_answer(&self) -> bool {
        matches!(self, ReadError::Exception(_))
    }

    /// Whether the connection should be dropped and reopened: after a timeout a late answer
    /// could be taken for the next one; after garbage the stream is out of step.
    pub fn poisons_connection(&self) -> bool {
        !matches!(self, ReadError::Exception(_) | ReadError::Gateway(_))
    }
}

/// Serial settings of an RTU bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialSettings {
    pub baud: u32,
    pub parity: Parity,
    pub stop_bits: u8,
}

/// An open connection.
pub struct Connection {
    ctx: Context,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// Connects to a Modbus TCP device within `timeout`.
pub async fn connect_tcp(
    addr: SocketAddr,
    unit: u8,
    timeout: Duration,
) -> Result<Connection, ReadError> {
    match tokio::time::timeout(
        timeout,
        tokio_modbus::client::tcp::connect_slave(addr, Slave(unit)),
    )
    .await
    {
        Err(_) => Err(ReadError::Timeout(timeout)),
        Ok(Err(e)) => Err(ReadError::Io(e.to_string())),
        Ok(Ok(ctx)) => Ok(Connection { ctx }),
    }
}

/// Opens a serial port as an RTU bus master.
pub fn open_rtu(port: &Path, settings: SerialSettings, unit: u8) -> Result<Connection, ReadError> {
    let parity = match settings.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stop = if settings.stop_bits == 2 {
        tokio_serial::StopBits::Two
    } else {
        tokio_serial::StopBits::One
    };
    let stream = tokio_serial::new(port.to_string_lossy(), settings.baud)
        .parity(parity)
        .stop_bits(stop)
        .data_bits(tokio_serial::DataBits::Eight)
        .open_native_async()
        .map_err(|e| ReadError::Io(format!("cannot open {}: {e}", port.display())))?;
    Ok(Connection {
        ctx: tokio_modbus::client::rtu::attach_slave(stream, Slave(unit)),
    })
}

impl Connection {
    /// Addresses another unit on the same connection (an RTU bus, a TCP gateway).
    pub fn set_unit(&mut self, unit: u8) {
        self.ctx.set_slave(Slave(unit));
    }

    /// One read, bounded by `timeout`; returns the data and the round-trip time.
    pub async fn read(
        &mut self,
        table: Table,
        start: u16,
        count: u16,
        timeout: Duration,
    ) -> Result<(Raw, Duration), ReadError> {
        let t0 = Instant::now();
        let fut = async {
            match table {
                Table::Coil => self
                    .ctx
                    .read_coils(start, count)
                    .await
                    .map(|r| r.map(Raw::Bits)),
                Table::DiscreteInput => self
                    .ctx
                    .read_discrete_inputs(start, count)
                    .await
                    .map(|r| r.map(Raw::Bits)),
                Table::Holding => self
                    .ctx
                    .read_holding_registers(start, count)
                    .await
                    .map(|r| r.map(Raw::Registers)),
                Table::Input => self
                    .ctx
                    .read_input_registers(start, count)
                    .await
                    .map(|r| r.map(Raw::Registers)),
            }
        };
        let raw = match tokio::time::timeout(timeout, fut).await {
            Err(_) => return Err(ReadError::Timeout(timeout)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => {
                return Err(match e.kind() {
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        ReadError::Protocol(e.to_string())
                    }
                    _ => ReadError::Io(e.to_string()),
                })
            }
            Ok(Err(tokio_modbus::Error::Protocol(e))) => {
                return Err(ReadError::Protocol(e.to_string()))
            }
            Ok(Ok(Err(
                exception @ (tokio_modbus::ExceptionCode::GatewayPathUnavailable
                | tokio_modbus::ExceptionCode::GatewayTargetDevice),
            ))) => return Err(ReadError::Gateway(exception.to_string())),
            Ok(Ok(Err(exception))) => return Err(ReadError::Exception(exception.to_string())),
            Ok(Ok(Ok(raw))) => raw,
        };
        let got = match &raw {
            Raw::Bits(b) => b.len(),
            Raw::Registers(r) => r.len(),
        };
        // tokio-modbus pads bit reads to whole bytes; fewer than asked is a short response.
        if got < usize::from(count) {
            return Err(ReadError::Protocol(format!("asked for {count}, got {got}")));
        }
        Ok((raw, t0.elapsed()))
    }
}
