//! Sparkplug B rebirth requests: the agent, as a host application, asks an edge node to
//! publish its births again when it gets data from it that it cannot interpret.
//!
//! The trap this answers: a `sparkplug_b` subscription made after an edge node published its
//! NBIRTH (the agent started later, reconnected, or the birth was lost) sees only NDATA and
//! DDATA, which name metrics by alias; without the birth no alias means anything, and the
//! node births again only when it reconnects. The Sparkplug B specification's answer is an
//! NCMD to `spBv1.0/{group_id}/NCMD/{edge_node_id}` with the metric `Node Control/Rebirth`
//! = true; the node answers with a fresh NBIRTH (`seq` 0) and its DBIRTHs.
//!
//! Pure parts here, no I/O:
//!
//! - [`Rebirth`]: the decoder's signal "this edge node needs a rebirth", with its
//!   [`RebirthReason`], and the NCMD that asks for it ([`Rebirth::topic`],
//!   [`Rebirth::payload`]: QoS 0, not retained, as the specification requires of NCMD);
//! - [`RebirthLimiter`]: at most one request per edge node every [`PERIOD`] while the
//!   condition lasts, so a node that cannot or will not answer is not flooded (and neither
//!   is the broker); it remembers a bounded number of edge nodes.
//!
//! The [route](super::Route) applies the limiter, the broker connection publishes.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use vigil_core::{Timestamp, Value};
use vigil_sparkplug::{encode, DataType, MessageType, Metric, Payload, Topic, REBIRTH};

/// How often one edge node is asked for a rebirth at most.
pub const PERIOD: Duration = Duration::from_secs(5);

/// How many edge nodes the limiter remembers at most (as many as a subscription tracks).
pub const MAX_NODES: usize = super::sparkplug::MAX_SCOPES;

/// Why an edge node's data cannot be interpreted without a new birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebirthReason {
    /// Data (or a DBIRTH, a DDEATH) from an edge node whose NBIRTH was not seen, or that died
    /// since.
    NoBirth,
    /// A DATA metric whose alias (or name) no birth bound: a device never born, or a metric
    /// added without a birth.
    UnknownMetric,
    /// The node's `seq` skipped: messages were lost, perhaps a birth among them. The node
    /// stays suspect until its next NBIRTH.
    SeqGap {
        /// The `seq` that should have come.
        expected: u64,
        /// The `seq` that came.
        got: u64,
    },
}

impl RebirthReason {
    /// A short name, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            RebirthReason::NoBirth => "no_birth",
            RebirthReason::UnknownMetric => "unknown_alias",
            RebirthReason::SeqGap { .. } => "seq_gap",
        }
    }
}

impl fmt::Display for RebirthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RebirthReason::NoBirth => f.write_str("no birth seen for the edge node"),
            RebirthReason::UnknownMetric => f.write_str("a metric alias no birth bound"),
            RebirthReason::SeqGap { expected, got } => {
                write!(f, "seq gap: expected {expected}, got {got}")
            }
        }
    }
}

/// An edge node that needs a rebirth, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebirth {
    /// The node's group.
    pub group_id: String,
    /// The edge node.
    pub edge_node_id: String,
    /// Why.
    pub reason: RebirthReason,
}

impl Rebirth {
    /// `spBv1.0/{group_id}/NCMD/{edge_node_id}`.
    pub fn topic(&self) -> String {
        Topic::node(&self.group_id, MessageType::NCmd, &self.edge_node_id).to_string()
    }

    /// The NCMD payload: `Node Control/Rebirth` = true (Boolean), stamped `now`, no `seq`.
    pub fn payload(&self, now: Timestamp) -> Vec<u8> {
        let ts = u64::try_from(now.as_millis()).unwrap_or(0);
        let metrics = Metric::with_value(REBIRTH, None, DataType::Boolean, Value::Bool(true))
            .into_iter()
            .collect();
        encode(&Payload::new(ts, None, metrics))
    }
}

/// When each edge node was last asked for a rebirth.
#[derive(Debug, Default)]
pub struct RebirthLimiter {
    /// By `(group_id, edge_node_id)`.
    last: HashMap<(String, String), Instant>,
}

impl RebirthLimiter {
    /// Whether to ask for `rebirth` at `now`: the first time for its edge node, and again
    /// once [`PERIOD`] has passed since the last request. When [`MAX_NODES`] edge nodes were
    /// asked within the period, new ones wait.
    pub fn allow(&mut self, rebirth: &Rebirth, now: Instant) -> bool {
        let key = (rebirth.group_id.clone(), rebirth.edge_node_id.clone());
        if let Some(at) = self.last.get_mut(&key) {
            if now.saturating_duration_since(*at) < PERIOD {
                return false;
            }
            *at = now;
            return true;
        }
        if self.last.len() >= MAX_NODES {
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < PERIOD);
            if self.last.len() >= MAX_NODES {
                return false;
            }
        }
        self.last.insert(key, now);
        true
    }

    /// How many edge nodes it remembers.
    pub fn remembered(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebirth(node: &str) -> Rebirth {
        Rebirth {
            group_id: "prison-3".into(),
            edge_node_id: node.into(),
            reason: RebirthReason::NoBirth,
        }
    }

    #[test]
    fn the_ncmd_asks_for_a_rebirth() {
        let r = rebirth("gw-1");
        assert_eq!(r.topic(), "spBv1.0/prison-3/NCMD/gw-1");
        let p = vigil_sparkplug::decode(&r.payload(Timestamp::from_millis(1_234))).expect("pb");
        assert_eq!((p.timestamp, p.seq), (Some(1_234), None));
        assert_eq!(p.metrics.len(), 1);
        assert_eq!(p.metrics[0].name.as_deref(), Some(REBIRTH));
        assert_eq!(p.metrics[0].data_type(), Ok(Some(DataType::Boolean)));
        assert_eq!(p.metrics[0].value(), Ok(Some(Value::Bool(true))));
    }

    #[test]
    fn once_a_period_per_edge_node() {
        let mut l = RebirthLimiter::default();
        let t = Instant::now();
        assert!(l.allow(&rebirth("a"), t));
        assert!(!l.allow(&rebirth("a"), t + Duration::from_secs(1)));
        assert!(
            l.allow(&rebirth("b"), t + Duration::from_secs(1)),
            "per node"
        );
        let gap = Rebirth {
            reason: RebirthReason::SeqGap {
                expected: 3,
                got: 7,
            },
            ..rebirth("a")
        };
        assert!(
            !l.allow(&gap, t + PERIOD - Duration::from_millis(1)),
            "whatever the reason"
        );
        assert!(l.allow(&gap, t + PERIOD));
        assert!(!l.allow(&gap, t + PERIOD + Duration::from_secs(4)));
        assert!(l.allow(&gap, t + PERIOD * 2));
        // A clock that went back does not open the gate.
        assert!(!l.allow(&rebirth("b"), t));
    }

    #[test]
    fn remembers_a_bounded_number_of_nodes() {
        let mut l = RebirthLimiter::default();
        let t = Instant::now();
        for i in 0..MAX_NODES {
            assert!(l.allow(&rebirth(&format!("n{i}")), t));
        }
        assert!(!l.allow(&rebirth("one-more"), t + Duration::from_secs(1)));
        assert_eq!(l.remembered(), MAX_NODES);
        // Once the period has passed, the old ones make room.
        assert!(l.allow(&rebirth("one-more"), t + PERIOD));
        assert_eq!(l.remembered(), 1);
    }
}
