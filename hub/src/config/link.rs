//! `[link]`: how the hub judges its children's links — how long a silent child stays online,
//! when a child's backlog is an alarm, and how far ahead of this hub's clock a child's
//! stamps may run (docs/ARCHITECTURE.md#trust-model). Every key is optional.
//!
//! ```toml
//! [link]
//! offline_after = "90s"        # a child with no status or traffic this long is offline
//! backlog_alarm = 10000        # a child's reported backlog (records) that raises link_backlog
//! max_clock_skew = "5m"        # a child's event stamped further ahead is clamped
//! ```

use std::time::Duration;

use serde::Deserialize;
use vigil_config::Problem;

/// `[link]`: the hub's judgement of its children's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    /// A child that sent no status and no traffic for this long is taken for offline (and
    /// raises `node_offline`), as if its last will had arrived.
    #[serde(default = "default_offline_after", with = "humantime_serde")]
    pub offline_after: Duration,
    /// The backlog (outbox records towards this hub, both lanes) a child reports at which a
    /// `link_backlog` alarm about it is raised; it clears below half of it.
    #[serde(default = "default_backlog_alarm")]
    pub backlog_alarm: u64,
    /// How far ahead of this hub's wall clock a child's event may be stamped. An event
    /// stamped further ahead is clamped to this hub's clock (its original stamp kept in the
    /// event) and raises `clock_skew` about the child.
    #[serde(default = "default_max_clock_skew", with = "humantime_serde")]
    pub max_clock_skew: Duration,
}

impl Default for LinkSection {
    fn default() -> Self {
        LinkSection {
            offline_after: default_offline_after(),
            backlog_alarm: default_backlog_alarm(),
            max_clock_skew: default_max_clock_skew(),
        }
    }
}

const fn default_offline_after() -> Duration {
    Duration::from_secs(90)
}

const fn default_backlog_alarm() -> u64 {
    10_000
}

const fn default_max_clock_skew() -> Duration {
    Duration::from_secs(300)
}

impl LinkSection {
    /// What is wrong with `[link]`, each problem naming its key.
    pub fn problems(&self, out: &mut Vec<Problem>) {
        for (key, value, what) in [
            (
                "link.offline_after",
                self.offline_after,
                "how long a silent child stays online, e.g. \"90s\"",
            ),
            (
                "link.max_clock_skew",
                self.max_clock_skew,
                "how far ahead of this hub's clock a child may stamp events, e.g. \"5m\"",
            ),
        ] {
            if value.is_zero() {
                out.push(Problem::new(key, format!("must be more than 0: {what}")));
            }
        }
        if self.backlog_alarm == 0 {
            out.push(Problem::new(
                "link.backlog_alarm",
                "must be at least 1: the records a child may have waiting before link_backlog is raised, e.g. 10000",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(link: &LinkSection) -> Vec<String> {
        let mut out = Vec::new();
        link.problems(&mut out);
        out.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn zero_durations_and_backlog_are_problems_naming_the_key() {
        assert!(keys(&LinkSection::default()).is_empty());
        let zero = LinkSection {
            offline_after: Duration::ZERO,
            backlog_alarm: 0,
            max_clock_skew: Duration::ZERO,
        };
        assert_eq!(
            keys(&zero),
            [
                "link.offline_after",
                "link.max_clock_skew",
                "link.backlog_alarm"
            ]
        );
    }
}
