//! Reconnect backoff: exponential, capped, with jitter — pure arithmetic, no clock.
//!
//! Each failed connection attempt doubles the step from [`BackoffConfig::initial`] up to
//! [`BackoffConfig::max`]; the delay actually waited is drawn from the upper half of the
//! step ("equal jitter"), so a hub whose broker restarts is not hit by all of its children
//! in the same instant, yet nobody retries sooner than half the step. A successful connection
//! resets it. The caller supplies the random draw, which keeps this testable.

use std::time::Duration;

use crate::error::LinkError;

/// How fast reconnect attempts back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first step (the delay after the first failure is between half of it and it).
    pub initial: Duration,
    /// The largest step.
    pub max: Duration,
}

impl BackoffConfig {
    /// The default first step: 500 ms.
    pub const fn default_initial() -> Duration {
        Duration::from_millis(500)
    }

    /// The default largest step: 30 s.
    pub const fn default_max() -> Duration {
        Duration::from_secs(30)
    }

    /// Checks that the steps are usable: `initial` above zero and at most `max`.
    pub fn validate(&self) -> Result<(), LinkError> {
        if self.initial.is_zero() {
            return Err(LinkError::Config {
                key: "backoff.initial",
                reason: "must be above zero (e.g. 500ms)".to_owned(),
            });
        }
        if self.max < self.initial {
            return Err(LinkError::Config {
                key: "backoff.max",
                reason: format!("{:?} is below backoff.initial {:?}", self.max, self.initial),
            });
        }
        Ok(())
    }
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: BackoffConfig::default_initial(),
            max: BackoffConfig::default_max(),
        }
    }
}

/// The backoff state of one connection: how many attempts failed in a row.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// A backoff that has seen no failure.
    pub const fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
        }
    }

    /// Failed attempts since the last success.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// The current step: `initial × 2^failures`, capped at `max`.
    pub fn step(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures).unwrap_or(u32::MAX);
        self.config
            .initial
            .checked_mul(factor)
            .map_or(self.config.max, |d| d.min(self.config.max))
    }

    /// Records a failed attempt and returns how long to wait before the next one: within
    /// `[step / 2, step]`, placed by `jitter` (a draw from `[0, 1]`; values outside are
    /// clamped).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let step = self.step();
        self.failures = self.failures.saturating_add(1);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        step / 2 + (step / 2).mul_f64(jitter)
    }

    /// Records a successful connection: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        })
    }

    #[test]
    fn steps_double_up_to_the_cap() {
        let mut b = backoff();
        let uppers: Vec<u128> = (0..8).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(uppers, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        assert_eq!(b.failures(), 8);
    }

    #[test]
    fn jitter_stays_in_the_upper_half_of_the_step() {
        let mut b = backoff();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        assert_eq!(b.next_delay(0.5), Duration::from_millis(150));
        assert_eq!(b.next_delay(7.0), Duration::from_millis(400), "clamped");
        assert_eq!(b.next_delay(-1.0), Duration::from_millis(400), "clamped");
        assert_eq!(b.next_delay(f64::NAN), Duration::from_millis(500));
    }

    #[test]
    fn a_success_resets_and_many_failures_do_not_overflow() {
        let mut b = backoff();
        for _ in 0..100 {
            b.next_delay(1.0);
        }
        assert_eq!(b.step(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
        let mut huge = Backoff::new(BackoffConfig {
            initial: Duration::from_secs(u64::MAX / 2),
            max: Duration::MAX,
        });
        huge.next_delay(1.0);
        huge.next_delay(1.0);
        assert_eq!(huge.step(), Duration::MAX, "overflow caps at max");
    }

    #[test]
    fn validation() {
        assert!(BackoffConfig::default().validate().is_ok());
        let zero = BackoffConfig {
            initial: Duration::ZERO,
            ..BackoffConfig::default()
        };
        assert!(zero.validate().is_err());
        let inverted = BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
        };
        let err = inverted.validate().expect_err("max below initial");
        assert!(err.to_string().contains("backoff.max"), "{err}");
    }
}
