//! Sources: where readings come from. Each source runs as its own task(s) and sends
//! [`Reading`]s into one bounded channel that the detection pipeline drains; a full channel
//! slows sources down (backpressure) rather than dropping readings.
//!
//! Every source has the same shape: `run(self, readings, shutdown)` until the shutdown token
//! is cancelled.

pub mod modbus;
pub mod mqtt;

use tokio::sync::mpsc;
use vigil_core::{Condition, Reading};

/// Where sources send readings.
pub type ReadingTx = mpsc::Sender<Reading>;
/// Where the pipeline receives them.
pub type ReadingRx = mpsc::Receiver<Reading>;

/// Where sources send conditions they detect themselves (communication loss).
pub type ConditionTx = mpsc::Sender<Condition>;
/// Where the alert manager receives them.
pub type ConditionRx = mpsc::Receiver<Condition>;

/// The capacity of the reading channel.
pub const READING_CHANNEL: usize = 8192;

/// A new reading channel.
pub fn channel() -> (ReadingTx, ReadingRx) {
    mpsc::channel(READING_CHANNEL)
}

/// A new condition channel.
pub fn condition_channel() -> (ConditionTx, ConditionRx) {
    mpsc::channel(1024)
}
