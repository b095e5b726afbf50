//! Reconnect delays: exponential backoff with jitter, reset once a connection succeeds.

use std::time::Duration;

/// The first delay after a connection is lost.
pub const FIRST: Duration = Duration::from_millis(200);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(30);

/// Delays that double from [`FIRST`] to [`MAX`], each shortened by up to a quarter at random
/// so that gateways that lost the same broker do not all come back at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff whose jitter is drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Backoff {
            next: FIRST,
            // xorshift needs a non-zero state.
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(MAX);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let quarter = base / 4;
        let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
        let cut = if nanos == 0 { 0 } else { self.rng % nanos };
        base - Duration::from_nanos(cut)
    }

    /// Back to [`FIRST`]: the connection succeeded.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(42);
        let mut base = FIRST;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= base && d >= base - base / 4, "{d:?} vs {base:?}");
            base = (base * 2).min(MAX);
        }
        b.reset();
        assert!(b.next_delay() <= FIRST);
        let mut zero = Backoff::new(0);
        assert!(zero.next_delay() > Duration::ZERO);
    }
}
