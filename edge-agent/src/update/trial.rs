//! The judge of a version on trial: pure, fed the probe results and the time, no I/O.
//!
//! A version passes its trial when it has stayed up for the whole trial period and its last
//! probe of `/healthz` answered; it fails when it
//!
//! - never answered `/healthz` by the end of the period (it may take a while to start, so
//!   failures before its first answer count only at the end), or
//! - answered, then missed [`MAX_MISSED`] probes in a row.
//!
//! That the process exited is judged by the supervisor directly: any exit during the trial
//! fails it. With no address to probe (`[metrics] listen` on port 0) staying up for the
//! period is enough.

use std::time::{Duration, Instant};

/// Probes missed in a row, after a first answer, that fail a trial.
pub const MAX_MISSED: u32 = 3;

/// What to do after a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep watching.
    Continue,
    /// The version passed: keep it.
    Commit,
    /// The version failed: fall back, for this reason.
    Fail(String),
}

/// The state of one trial.
#[derive(Debug, Clone)]
pub struct TrialJudge {
    deadline: Instant,
    length: Duration,
    answered: bool,
    missed: u32,
}

impl TrialJudge {
    /// A trial of `length` that starts at `started` (when the process was started).
    pub fn new(started: Instant, length: Duration) -> Self {
        TrialJudge {
            deadline: started + length,
            length,
            answered: false,
            missed: 0,
        }
    }

    /// When the trial period ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Judges one probe taken at `now`: `Some(healthy)`, or `None` when there is nothing to
    /// probe and only staying up counts.
    pub fn on_probe(&mut self, healthy: Option<bool>, now: Instant) -> Verdict {
        let over = now >= self.deadline;
        match healthy {
            None | Some(true) => {
                self.answered |= healthy.is_some();
                self.missed = 0;
                if over {
                    Verdict::Commit
                } else {
                    Verdict::Continue
                }
            }
            Some(false) if self.answered => {
                self.missed += 1;
                if self.missed >= MAX_MISSED {
                    Verdict::Fail(format!(
                        "stopped answering /healthz ({} probes in a row missed)",
                        self.missed
                    ))
                } else {
                    Verdict::Continue
                }
            }
            Some(false) if over => Verdict::Fail(format!(
                "did not answer /healthz within its trial of {}",
                humantime_serde::re::humantime::format_duration(self.length)
            )),
            Some(false) => Verdict::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn healthy_through_the_period_commits() {
        let t0 = Instant::now();
        let mut judge = TrialJudge::new(t0, 2 * S);
        assert_eq!(
            judge.on_probe(Some(false), t0),
            Verdict::Continue,
            "still starting"
        );
        assert_eq!(judge.on_probe(Some(true), t0 + S), Verdict::Continue);
        assert_eq!(judge.on_probe(Some(true), t0 + 2 * S), Verdict::Commit);
    }

    #[test]
    fn never_answering_fails_at_the_deadline() {
        let t0 = Instant::now();
        let mut judge = TrialJudge::new(t0, 2 * S);
        assert_eq!(judge.on_probe(Some(false), t0 + S), Verdict::Continue);
        assert!(matches!(
            judge.on_probe(Some(false), t0 + 2 * S),
            Verdict::Fail(r) if r.contains("did not answer /healthz")
        ));
    }

    #[test]
    fn going_silent_after_answering_fails_early() {
        let t0 = Instant::now();
        let mut judge = TrialJudge::new(t0, 60 * S);
        assert_eq!(judge.on_probe(Some(true), t0), Verdict::Continue);
        assert_eq!(judge.on_probe(Some(false), t0 + S), Verdict::Continue);
        assert_eq!(judge.on_probe(Some(false), t0 + 2 * S), Verdict::Continue);
        assert!(matches!(
            judge.on_probe(Some(false), t0 + 3 * S),
            Verdict::Fail(r) if r.contains("stopped answering")
        ));
    }

    #[test]
    fn a_missed_probe_at_the_deadline_waits_for_the_next() {
        let t0 = Instant::now();
        let mut judge = TrialJudge::new(t0, 2 * S);
        judge.on_probe(Some(true), t0);
        assert_eq!(judge.on_probe(Some(false), t0 + 2 * S), Verdict::Continue);
        assert_eq!(judge.on_probe(Some(true), t0 + 3 * S), Verdict::Commit);
        let mut blind = TrialJudge::new(t0, 2 * S);
        assert_eq!(blind.on_probe(None, t0), Verdict::Continue);
        assert_eq!(blind.on_probe(None, t0 + 2 * S), Verdict::Commit);
    }
}
