//! The Modbus RTU server shell: one serial bus (a tty: an RS-485 adapter or one end of a
//! pty pair), RTU framing, and the units on the bus. Only the addressed unit answers; a
//! frame for a unit that is not on the bus, or with a bad CRC, gets no answer, as on a real
//! multi-drop line.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::modbus::rtu_frame::{self, MAX_FRAME_LEN};
use crate::modbus::unit::{lock, Reply, Route, UnitTable};

/// One serial bus and its units.
#[derive(Debug, Clone)]
pub struct RtuServer {
    /// The bus's id, for logs.
    pub name: String,
    /// The units on the bus.
    pub units: Arc<UnitTable>,
    /// The silence that ends a frame whose length its function code does not tell.
    pub gap: Duration,
    /// The simulation's clock.
    pub clock: Clock,
}

/// The silence that ends a frame of unknown length at `baud` with `bits_per_char` (start,
/// data, parity and stop bits): 3.5 character times, and at least 20 ms, since a pty or a
/// USB adapter delivers a frame in pieces with scheduling gaps of a few milliseconds between
/// them.
pub fn frame_gap(baud: u32, bits_per_char: u32) -> Duration {
    let char_time = f64::from(bits_per_char) / f64::from(baud.max(1));
    Duration::from_secs_f64(3.5 * char_time).max(Duration::from_millis(20))
}

impl RtuServer {
    /// Serves the bus until `shutdown`.
    pub async fn serve(self, mut port: SerialStream, shutdown: CancellationToken) {
        let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_FRAME_LEN);
        let mut chunk = [0u8; MAX_FRAME_LEN];
        // After a silence that ended nothing, wait for bytes without a timeout.
        let mut idle = false;
        loop {
            while let Some((start, len)) = rtu_frame::find_request(&buf) {
                if start > 0 {
                    tracing::debug!(bus = %self.name, dropped = start, "noise before a frame dropped");
                }
                let frame: Vec<u8> = buf.drain(..start + len).skip(start).collect();
                if !self.answer(&mut port, &frame, &shutdown).await {
                    return;
                }
            }
            if buf.len() > 2 * MAX_FRAME_LEN {
                let excess = buf.len() - MAX_FRAME_LEN;
                buf.drain(..excess);
            }
            let read = if buf.is_empty() || idle {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = port.read(&mut chunk) => Some(r),
                }
            } else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = tokio::time::timeout(self.gap, port.read(&mut chunk)) => r.ok(),
                }
            };
            match read {
                Some(Ok(0)) => {
                    // A pty whose other end is closed reads 0 until it is reopened.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                Some(Ok(n)) => {
                    idle = false;
                    buf.extend_from_slice(&chunk[..n]);
                }
                Some(Err(e)) => {
                    tracing::debug!(bus = %self.name, error = %e, "serial read failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                None => {
                    // Silence: the end of a frame of a function code the parser cannot size.
                    // Anything else stays: a frame arriving in pieces is still found, and
                    // noise is dropped once a valid frame follows it.
                    if let Some(start) = rtu_frame::find_unsized(&buf) {
                        let frame = buf.split_off(start);
                        buf.clear();
                        if !self.answer(&mut port, &frame, &shutdown).await {
                            return;
                        }
                    } else {
                        idle = true;
                    }
                }
            }
        }
    }

    /// Answers one frame (unit … CRC); `false` on shutdown.
    async fn answer(
        &self,
        port: &mut SerialStream,
        frame: &[u8],
        shutdown: &CancellationToken,
    ) -> bool {
        let t = self.clock.elapsed();
        let unit_id = frame[0];
        let pdu = &frame[1..frame.len() - 2];
        let unit = match self.units.route(unit_id, false) {
            Route::Broadcast => {
                for u in self.units.units() {
                    lock(u).broadcast(pdu, t);
                }
                return true;
            }
            Route::Unknown => {
                tracing::trace!(bus = %self.name, unit = unit_id, "frame for another unit");
                return true;
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
            Reply::Silent | Reply::DropConnection => return true,
            Reply::Pdu(p) | Reply::WrongTransaction(p) => rtu_frame::encode(unit_id, &p),
            Reply::WrongUnit { pdu, unit } => rtu_frame::encode(unit, &pdu),
            Reply::Garbage(b) => b,
        };
        if let Err(e) = port.write_all(&bytes).await {
            tracing::warn!(bus = %self.name, error = %e, "serial write failed");
        }
        let _ = port.flush().await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps() {
        assert_eq!(frame_gap(115_200, 11), Duration::from_millis(20));
        let slow = frame_gap(1200, 11);
        assert!(slow > Duration::from_millis(30), "{slow:?}");
    }
}
