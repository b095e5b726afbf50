//! The one retry backoff of every Vigil component: exponential, capped, with jitter — pure
//! arithmetic, no clock and no random source of its own.
//!
//! Each failure doubles the step from [`BackoffConfig::initial`] up to [`BackoffConfig::max`];
//! the delay waited is drawn from the upper half of the step ("equal jitter") by a number the
//! caller supplies from `[0, 1]`, so nobody retries sooner than half the step and many
//! clients that lost the same broker do not all come back in the same instant. A success
//! resets it. Who uses it, and with which draw:
//!
//! - the link's broker connection (`vigil_link`) and the agent's MQTT source: a random draw
//!   (many gateways reconnect to one broker);
//! - the agent's update supervisor (restarts of a crashing kept version, retries of a commit
//!   record) and the Modbus poller (probes of a lost device): [`Backoff::next_step`], the
//!   whole step — one process retrying alone has nobody to spread out from, and a step an
//!   operator can predict from the docs is worth more there.

use std::time::Duration;

/// How fast retries back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first step (the delay after the first failure is between half of it and it).
    pub initial: Duration,
    /// The largest step.
    pub max: Duration,
}

/// A [`BackoffConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    /// `initial` is zero: every retry would come at once.
    #[error("initial must be above zero (e.g. 500ms)")]
    ZeroInitial,
    /// `max` is below `initial`.
    #[error("max {max:?} is below initial {initial:?}")]
    MaxBelowInitial {
        /// The configured first step.
        initial: Duration,
        /// The configured largest step.
        max: Duration,
    },
}

impl BackoffError {
    /// The field it is about: `initial` or `max`.
    pub const fn field(&self) -> &'static str {
        match self {
            BackoffError::ZeroInitial => "initial",
            BackoffError::MaxBelowInitial { .. } => "max",
        }
    }
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
    pub fn validate(&self) -> Result<(), BackoffError> {
        if self.initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if self.max < self.initial {
            return Err(BackoffError::MaxBelowInitial {
                initial: self.initial,
                max: self.max,
            });
        }
        Ok(())
    }

    /// The step after `failures` failures: `initial × 2^failures`, capped at `max` (and at
    /// `max` when it would overflow).
    pub fn step(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
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

/// The backoff state of one retried thing: how many attempts failed in a row.
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

    /// Its steps.
    pub const fn config(&self) -> BackoffConfig {
        self.config
    }

    /// Failed attempts since the last success.
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// The current step: `initial × 2^failures`, capped at `max`.
    pub fn step(&self) -> Duration {
        self.config.step(self.failures)
    }

    /// Records a failed attempt and returns how long to wait before the next one: within
    /// `[step / 2, step]`, placed by `jitter` (a draw from `[0, 1]`; values outside are
    /// clamped, NaN counts as 0).
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

    /// Records a failed attempt and returns the whole step, without jitter (for one process
    /// retrying alone: see the module docs).
    pub fn next_step(&mut self) -> Duration {
        let step = self.step();
        self.failures = self.failures.saturating_add(1);
        step
    }

    /// Records a success: the next failure starts from `initial` again.
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
        let mut b = backoff();
        let steps: Vec<u128> = (0..6).map(|_| b.next_step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1000, 1000]);
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
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
        let mut huge = Backoff::new(BackoffConfig {
            initial: Duration::from_secs(u64::MAX / 2),
            max: Duration::MAX,
        });
        huge.next_delay(1.0);
        huge.next_delay(1.0);
        assert_eq!(huge.step(), Duration::MAX, "overflow caps at max");
        assert_eq!(
            BackoffConfig::default().step(u32::MAX),
            BackoffConfig::default_max()
        );
    }

    #[test]
    fn validation() {
        assert_eq!(BackoffConfig::default().validate(), Ok(()));
        let zero = BackoffConfig {
            initial: Duration::ZERO,
            ..BackoffConfig::default()
        };
        assert_eq!(zero.validate().map_err(|e| e.field()), Err("initial"));
        let inverted = BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
        };
        let err = inverted.validate().expect_err("max below initial");
        assert_eq!(err.field(), "max");
        assert!(err.to_string().contains("below initial"), "{err}");
    }
}
