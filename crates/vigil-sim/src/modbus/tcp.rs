//! The Modbus TCP server shell: one listener, its connections, MBAP framing, and the units
//! (devices) behind it. Requests on one connection are answered in order; each connection
//! is a task, so a slow or silent device does not hold up another client.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::modbus::mbap::{self, Header};
use crate::modbus::unit::{lock, Reply, Route, UnitTable};

/// One Modbus TCP listener and what it serves.
#[derive(Debug, Clone)]
pub struct TcpServer {
    /// The name in logs: the device's or the gateway's id.
    pub name: String,
    /// The units behind the listener.
    pub units: Arc<UnitTable>,
    /// A device's own listener (unit 255 addresses it too) rather than a gateway.
    pub direct: bool,
    /// The simulation's clock.
    pub clock: Clock,
}

impl TcpServer {
    /// Accepts connections until `shutdown`; connection tasks are tracked by `tracker`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        let server = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(listener = %server.name, %peer, "client connected");
                    let _ = stream.set_nodelay(true);
                    let server = Arc::clone(&server);
                    let shutdown = shutdown.clone();
                    tracker.spawn(async move {
                        server.connection(stream, peer, shutdown).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(listener = %server.name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            loop {
                match mbap::take_frame(&mut buf) {
                    Ok(Some((header, pdu))) => {
                        if !self.answer(&mut stream, header, &pdu, &shutdown).await {
                            tracing::debug!(listener = %self.name, %peer, "connection closed by the server");
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(listener = %self.name, %peer, error = %e, "not Modbus TCP: closing the connection");
                        return;
                    }
                }
            }
            let read = tokio::select! {
                () = shutdown.cancelled() => return,
                r = stream.read(&mut chunk) => r,
            };
            match read {
                Ok(0) => {
                    tracing::debug!(listener = %self.name, %peer, "client disconnected");
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    tracing::debug!(listener = %self.name, %peer, error = %e, "read failed");
                    return;
                }
            }
        }
    }

    /// Answers one request; `false` when the connection is to be closed.
    async fn answer(
        &self,
        stream: &mut TcpStream,
        header: Header,
        pdu: &[u8],
        shutdown: &CancellationToken,
    ) -> bool {
        let t = self.clock.elapsed();
        let unit = match self.units.route(header.unit, self.direct) {
            Route::Broadcast => {
                for u in self.units.units() {
                    lock(u).broadcast(pdu, t);
                }
                return true;
            }
            Route::Unknown => {
                tracing::debug!(listener = %self.name, unit = header.unit, "no device with this unit id: gateway exception 0B");
                return match UnitTable::unknown_unit_response(pdu) {
                    Some(resp) => stream.write_all(&mbap::encode(header, &resp)).await.is_ok(),
                    None => true,
                };
            }
            Route::Unit(u) => u,
        };
        let outcome = lock(&unit).handle(pdu, t);
        if !outcome.delay.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(outcome.delay) => {}
            }
        }
        let bytes = match outcome.reply {
            Reply::Silent => return true,
            Reply::DropConnection => return false,
            Reply::Pdu(p) => mbap::encode(header, &p),
            Reply::WrongUnit { pdu, unit } => mbap::encode(Header { unit, ..header }, &pdu),
            Reply::WrongTransaction(p) => mbap::encode(
                Header {
                    transaction: header.transaction.wrapping_add(1),
                    ..header
                },
                &p,
            ),
            Reply::Garbage(b) => mbap::garbage(header, &b),
        };
        stream.write_all(&bytes).await.is_ok()
    }
}
