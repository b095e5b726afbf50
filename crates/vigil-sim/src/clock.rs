//! The simulator's clock: the time since it started, on tokio's clock so that tests can
//! pause and advance it. Every scenario and fault window is an offset on this clock.

use std::time::Duration;

use tokio::time::Instant;

/// The start of a simulation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock started now.
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// The time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
