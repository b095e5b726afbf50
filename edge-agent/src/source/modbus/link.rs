//! A link to a device or a bus: where to connect, and the connection once made. A read on a
//! link connects (or reconnects) on demand, and drops the connection after an error that
//! leaves it out of step, so the next read starts clean.

use std::path::PathBuf;
use std::time::Duration;

use vigil_profile::Table;

use super::client::{self, Connection, Raw, ReadError, SerialSettings};

/// Where a link goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Modbus TCP: `host:port` (resolved at each connect).
    Tcp(String),
    /// Modbus RTU: a serial port.
    Rtu {
        port: PathBuf,
        settings: SerialSettings,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(addr) => f.write_str(addr),
            Endpoint::Rtu { port, settings } => {
                write!(f, "{} at {} baud", port.display(), settings.baud)
            }
        }
    }
}

/// A link with its (lazily opened) connection.
#[derive(Debug)]
pub struct Link {
    pub endpoint: Endpoint,
    conn: Option<Connection>,
}

impl Link {
    pub fn new(endpoint: Endpoint) -> Self {
        Link {
            endpoint,
            conn: None,
        }
    }

    /// Whether a connection is open.
    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops the connection; the next read reconnects.
    pub fn close(&mut self) {
        self.conn = None;
    }

    async fn open(&mut self, unit: u8, timeout: Duration) -> Result<&mut Connection, ReadError> {
        if self.conn.is_none() {
            let conn = match &self.endpoint {
                Endpoint::Tcp(addr) => {
                    let resolved =
                        tokio::time::timeout(timeout, tokio::net::lookup_host(addr.as_str()))
                            .await
                            .map_err(|_| ReadError::Timeout(timeout))?
                            .map_err(|e| ReadError::Io(format!("cannot resolve {addr}: {e}")))?
                            .next()
                            .ok_or_else(|| {
                                ReadError::Io(format!("{addr} resolves to no address"))
                            })?;
                    client::connect_tcp(resolved, unit, timeout).await?
                }
                Endpoint::Rtu { port, settings } => client::open_rtu(port, *settings, unit)?,
            };
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(ReadError::Io("connection not open".into())),
        }
    }

    /// One read of `unit`, connecting first if needed.
    pub async fn read(
        &mut self,
        unit: u8,
        table: Table,
        start: u16,
        count: u16,
        timeout: Duration,
    ) -> Result<(Raw, Duration), ReadError> {
        let conn = self.open(unit, timeout).await?;
        conn.set_unit(unit);
        let result = conn.read(table, start, count, timeout).await;
        if let Err(e) = &result {
            if e.poisons_connection() {
                self.conn = None;
            }
        }
        result
    }
}
