//! Scripted faults: which fault (if any) hits a request or a message at a given time.
//!
//! A [`FaultPlan`] is the list of a device's (or an MQTT sensor's) faults from `sim.toml`,
//! each active in its window `[from, until)` — or always — and, while active, hitting each
//! request with its `probability`. The choice is pure given the time and the random number
//! generator, which the caller seeds from the facility's seed: the same seed replays the
//! same faults. Delays add up; of the other faults, the first active one in config order
//! wins.

use std::time::Duration;

use rand::Rng;

use crate::config::{FaultConfig, FaultKind};

/// What an active fault does to one request (delays are reported apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Read the request and drop it.
    Silent,
    /// Answer with this exception code.
    Exception(u8),
    /// Answer with random bytes.
    Garbage,
    /// Answer with this unit id (`None`: the device's unit + 1).
    WrongUnit(Option<u8>),
    /// Answer with another transaction id (TCP).
    WrongTransaction,
    /// Close the connection (TCP).
    DropConnection,
    /// Publish a garbage payload (MQTT).
    Malformed,
}

impl FaultAction {
    /// The fault's kind, for counting and logs.
    pub const fn kind(self) -> FaultKind {
        match self {
            FaultAction::Silent => FaultKind::Silent,
            FaultAction::Exception(_) => FaultKind::Exception,
            FaultAction::Garbage => FaultKind::Garbage,
            FaultAction::WrongUnit(_) => FaultKind::WrongUnit,
            FaultAction::WrongTransaction => FaultKind::WrongTransaction,
            FaultAction::DropConnection => FaultKind::DropConnection,
            FaultAction::Malformed => FaultKind::Malformed,
        }
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq)]
struct Scheduled {
    from: Duration,
    until: Option<Duration>,
    probability: f64,
    effect: Effect,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Effect {
    Delay(Duration),
    Action(FaultAction),
}

/// What the faults do to one request: an added delay and at most one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hit {
    /// Wait this long before answering (zero: no delay fault).
    pub delay: Duration,
    /// The fault that replaces or corrupts the answer.
    pub action: Option<FaultAction>,
}

/// The faults of one device or sensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    faults: Vec<Scheduled>,
}

impl FaultPlan {
    /// The plan of a device's `[[fault]]` entries (validated by the config).
    pub fn new(configs: &[FaultConfig]) -> Self {
        let faults = configs
            .iter()
            .map(|c| Scheduled {
                from: c.from.unwrap_or_default(),
                until: c.until,
                probability: c.probability,
                effect: match c.kind {
                    FaultKind::Delay => Effect::Delay(c.delay.unwrap_or_default()),
                    FaultKind::Silent => Effect::Action(FaultAction::Silent),
                    FaultKind::Exception => {
                        Effect::Action(FaultAction::Exception(c.code.unwrap_or(0x04)))
                    }
                    FaultKind::Garbage => Effect::Action(FaultAction::Garbage),
                    FaultKind::WrongUnit => Effect::Action(FaultAction::WrongUnit(c.unit)),
                    FaultKind::WrongTransaction => Effect::Action(FaultAction::WrongTransaction),
                    FaultKind::DropConnection => Effect::Action(FaultAction::DropConnection),
                    FaultKind::Malformed => Effect::Action(FaultAction::Malformed),
                },
            })
            .collect();
        FaultPlan { faults }
    }

    /// Whether the plan has no faults at all.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// The faults that hit a request at `t`. Each active fault draws from `rng` (so the
    /// sequence of draws, and so the run, is the same for the same seed).
    pub fn hit(&self, t: Duration, rng: &mut impl Rng) -> Hit {
        let mut hit = Hit::default();
        for f in &self.faults {
            let active = t >= f.from && f.until.is_none_or(|u| t < u);
            if !active {
                continue;
            }
            let hits = f.probability >= 1.0 || rng.random::<f64>() < f.probability;
            if !hits {
                continue;
            }
            match f.effect {
                Effect::Delay(d) => hit.delay += d,
                Effect::Action(a) => {
                    if hit.action.is_none() {
                        hit.action = Some(a);
                    }
                }
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn fault(kind: FaultKind, from: u64, until: Option<u64>) -> FaultConfig {
        FaultConfig {
            kind,
            from: Some(Duration::from_secs(from)),
            until: until.map(Duration::from_secs),
            probability: 1.0,
            delay: (kind == FaultKind::Delay).then_some(Duration::from_millis(300)),
            code: (kind == FaultKind::Exception).then_some(6),
            unit: None,
        }
    }

    #[test]
    fn windows_open_and_close() {
        let plan = FaultPlan::new(&[
            fault(FaultKind::Silent, 10, Some(20)),
            fault(FaultKind::Exception, 15, None),
            fault(FaultKind::Delay, 0, Some(5)),
        ]);
        let mut rng = StdRng::seed_from_u64(1);
        let at = |s: u64, rng: &mut StdRng| plan.hit(Duration::from_secs(s), rng);
        assert_eq!(
            at(1, &mut rng),
            Hit {
                delay: Duration::from_millis(300),
                action: None
            }
        );
        assert_eq!(at(7, &mut rng), Hit::default());
        assert_eq!(at(10, &mut rng).action, Some(FaultAction::Silent));
        assert_eq!(
            at(17, &mut rng).action,
            Some(FaultAction::Silent),
            "first wins"
        );
        assert_eq!(at(20, &mut rng).action, Some(FaultAction::Exception(6)));
        assert_eq!(at(10_000, &mut rng).action, Some(FaultAction::Exception(6)));
    }

    #[test]
    fn probability_is_seeded() {
        let mut f = fault(FaultKind::Garbage, 0, None);
        f.probability = 0.25;
        let plan = FaultPlan::new(&[f]);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..1000)
                .map(|_| plan.hit(Duration::ZERO, &mut rng).action.is_some())
                .collect::<Vec<_>>()
        };
        let a = run(5);
        assert_eq!(a, run(5));
        let hits = a.iter().filter(|h| **h).count();
        assert!((180..320).contains(&hits), "{hits}");
    }
}
