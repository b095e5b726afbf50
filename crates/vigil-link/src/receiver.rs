//! The receiving half of a link as a pure state machine: which received batches commit
//! together, what a commit's outcome asks of the shell, and how a failed group is retried.
//!
//! Like [`sender`](crate::sender), nothing here does I/O or reads a clock. The async shells
//! ([`downlinks`](crate::downlinks) for a parent's children, [`uplink`](crate::uplink) for
//! a child's parent) take publishes off their connection, commit through the store and
//! publish acks; this module decides (docs/ARCHITECTURE.md#link-protocol):
//!
//! - **Grouping** ([`pick`]). A batch that arrives while others are already waiting (many
//!   children draining at once) is committed in one transaction with them, up to
//!   [`MAX_GROUP_BATCHES`] batches and [`MAX_GROUP_EVENTS`] events: one commit and one fsync
//!   for the group. The shell gathers the batches waiting up to the first input that is not
//!   a batch (an ack, a status, a connection change), which is handled after them, so other
//!   inputs are still handled in arrival order.
//! - **Critical first** ([`pick`]). Among the batches waiting together, those of the critical
//!   lane are committed first, in a group of their own, ahead of the normal lane's: a burst
//!   of normal traffic never holds a critical alarm behind its commits
//!   (docs/ARCHITECTURE.md#link-protocol). Each lane keeps its arrival order, and a batch
//!   never passes a waiting input that is not a batch. This keeps the sender's promise (a
//!   critical event is committed before the normal events sent after it) and only brings a
//!   critical event forward: the lanes have their own sequence numbers and the fold does not
//!   depend on the order events arrive in.
//! - **Retry** ([`GroupCommit`]). A group whose transaction fails is split and each of its
//!   batches is committed alone, in order, so one bad batch holds up no other sender. A batch
//!   that fails alone is not acknowledged: its sender resends it after its ack timeout.
//! - **Receipts** ([`Receipt`]). A committed batch is acknowledged with the cumulative ack
//!   the store computed (after the commit, never before: an ack promises durability), the
//!   link that forwards it up is woken if the commit queued anything for it, and the
//!   events that were new here are handed to the owner. A gap (a batch that starts after
//!   the cursor) is answered with the unchanged cursor and hands nothing over.

use std::collections::VecDeque;

use vigil_core::Lane;
use vigil_store::ForwardOutcome;
use vigil_wire::Ack;

/// The most received batches committed in one transaction.
pub const MAX_GROUP_BATCHES: usize = 16;

/// A group stops taking batches once it holds this many link events.
pub const MAX_GROUP_EVENTS: usize = 8000;

/// The most waiting batches [`pick`] chooses from: a few groups' worth.
pub const MAX_WAITING_BATCHES: usize = 4 * MAX_GROUP_BATCHES;

/// A received batch, as the grouping rules see it.
pub trait GroupItem {
    /// How many link events (alert events and audit records) it carries.
    fn link_events(&self) -> usize;
    /// The lane it came in.
    fn lane(&self) -> Lane;
}

/// The group to commit next out of `waiting`, batches in arrival order that were waiting
/// together (no other input among them): the critical lane's batches if there are any,
/// otherwise the normal lane's from the front, each up to [`MAX_GROUP_BATCHES`] and
/// [`MAX_GROUP_EVENTS`] (at least one batch). Returns the group and the rest, both in
/// arrival order.
pub fn pick<B: GroupItem>(waiting: Vec<B>) -> (Vec<B>, Vec<B>) {
    let lane = if waiting.iter().any(|b| b.lane() == Lane::Critical) {
        Lane::Critical
    } else {
        Lane::Normal
    };
    let mut group = Vec::new();
    let mut rest = Vec::new();
    let mut events = 0;
    for batch in waiting {
        let full =
            !group.is_empty() && (group.len() >= MAX_GROUP_BATCHES || events >= MAX_GROUP_EVENTS);
        if batch.lane() == lane && !full {
            events += batch.link_events();
            group.push(batch);
        } else {
            rest.push(batch);
        }
    }
    (group, rest)
}

/// The commit of one group of received batches: the whole group in one transaction first,
/// then, if that fails, each batch alone in arrival order.
#[derive(Debug)]
pub struct GroupCommit<B> {
    attempts: VecDeque<Vec<B>>,
}

/// What the shell does after an attempt of a [`GroupCommit`].
#[derive(Debug, PartialEq, Eq)]
pub enum CommitStep<B, O, E> {
    /// Every batch of the attempt is committed, each with its store outcome, in order:
    /// acknowledge each ([`Receipt`]) and hand its new events over.
    Committed(Vec<(B, O)>),
    /// The group's transaction failed; its `batches` batches are queued to be committed
    /// one by one (the next attempts).
    Split {
        /// How many batches the failed group held.
        batches: usize,
        /// Why the group failed.
        error: E,
    },
    /// A batch failed alone: it is not acknowledged, so its sender resends it.
    Failed {
        /// The batch.
        batch: B,
        /// Why it failed.
        error: E,
    },
}

impl<B> GroupCommit<B> {
    /// The commit of `group` (the output of [`pick`]).
    pub fn new(group: Vec<B>) -> Self {
        let mut attempts = VecDeque::with_capacity(1);
        if !group.is_empty() {
            attempts.push_back(group);
        }
        GroupCommit { attempts }
    }

    /// The batches to commit in the next transaction, or `None` when the group is done.
    /// Give them back with [`on_result`](GroupCommit::on_result), or drop them when the
    /// store could not be reached at all (they are then not acknowledged, and the rest of
    /// the group is still tried).
    pub fn next_attempt(&mut self) -> Option<Vec<B>> {
        self.attempts.pop_front()
    }

    /// What the transaction that committed `attempt` answered: one outcome per batch, in
    /// order, or one error for the whole transaction.
    pub fn on_result<O, E>(
        &mut self,
        mut attempt: Vec<B>,
        result: Result<Vec<O>, E>,
    ) -> CommitStep<B, O, E> {
        match result {
            Ok(outcomes) => {
                debug_assert_eq!(attempt.len(), outcomes.len(), "one outcome per batch");
                CommitStep::Committed(attempt.into_iter().zip(outcomes).collect())
            }
            Err(error) if attempt.len() == 1 => match attempt.pop() {
                Some(batch) => CommitStep::Failed { batch, error },
                None => CommitStep::Committed(Vec::new()),
            },
            Err(error) => {
                let batches = attempt.len();
                // Alone, in arrival order, before anything queued after this group.
                for batch in attempt.into_iter().rev() {
                    self.attempts.push_front(vec![batch]);
                }
                CommitStep::Split { batches, error }
            }
        }
    }
}

/// What a committed batch asks of the receiving link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The ack to publish to the sender: cumulative, up to what the store holds.
    pub ack: Ack,
    /// The lanes of the events this commit queued for the forwarding link, one per event.
    pub forwarded: Vec<Lane>,
    /// Whether the forwarding link must be woken (the commit queued something for it).
    pub wake_forward: bool,
    /// The indexes of the batch's alert events that were new here (ascending): what is
    /// handed to the owner. Empty for a resend and for a gap.
    pub fresh: Vec<usize>,
}

impl Receipt {
    /// The receipt of a batch received in `lane` whose commit did `outcome`.
    pub fn of(lane: Lane, outcome: &ForwardOutcome) -> Self {
        let forwarded: Vec<Lane> = outcome.forwarded.iter().map(|(lane, _)| *lane).collect();
        Receipt {
            ack: Ack::new(lane, outcome.batch.ack_upto),
            wake_forward: !forwarded.is_empty(),
            forwarded,
            fresh: if outcome.batch.gap {
                Vec::new()
            } else {
                outcome.fresh.clone()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_store::BatchOutcome;

    use super::*;

    /// A batch of `n` events, named for the assertions.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct B(&'static str, usize);

    impl GroupItem for B {
        fn link_events(&self) -> usize {
            self.1
        }
        fn lane(&self) -> Lane {
            if self.0.starts_with('!') {
                Lane::Critical
            } else {
                Lane::Normal
            }
        }
    }

    fn names(batches: &[B]) -> Vec<&'static str> {
        batches.iter().map(|b| b.0).collect()
    }

    #[test]
    fn critical_batches_are_picked_ahead_of_the_normal_ones_waiting_with_them() {
        let waiting = vec![B("a", 300), B("b", 300), B("!c", 1), B("d", 5), B("!e", 2)];
        let (group, rest) = pick(waiting);
        assert_eq!(
            names(&group),
            vec!["!c", "!e"],
            "the critical lane alone, in order"
        );
        assert_eq!(
            names(&rest),
            vec!["a", "b", "d"],
            "the normal lane keeps its order"
        );
        let (group, rest) = pick(rest);
        assert_eq!(names(&group), vec!["a", "b", "d"]);
        assert!(rest.is_empty());
    }

    #[test]
    fn picking_keeps_the_group_limits_and_takes_at_least_one_batch() {
        let waiting: Vec<B> = (0..MAX_GROUP_BATCHES + 3).map(|_| B("n", 1)).collect();
        let (group, rest) = pick(waiting);
        assert_eq!((group.len(), rest.len()), (MAX_GROUP_BATCHES, 3));
        let (group, rest) = pick(vec![B("big", MAX_GROUP_EVENTS + 1), B("n", 1)]);
        assert_eq!(
            names(&group),
            vec!["big"],
            "one batch over the limit still goes"
        );
        assert_eq!(names(&rest), vec!["n"]);
        let (group, rest) = pick(Vec::<B>::new());
        assert!(group.is_empty() && rest.is_empty());
    }

    #[test]
    fn a_group_that_commits_pairs_each_batch_with_its_outcome() {
        let mut commit = GroupCommit::new(vec![B("a", 1), B("b", 2)]);
        let attempt = commit.next_attempt().expect("the group");
        let step: CommitStep<_, u64, &str> = commit.on_result(attempt, Ok(vec![5, 7]));
        assert_eq!(
            step,
            CommitStep::Committed(vec![(B("a", 1), 5), (B("b", 2), 7)])
        );
        assert!(
            commit.next_attempt().is_none(),
            "one transaction for the group"
        );
    }

    #[test]
    fn a_failed_group_is_retried_batch_by_batch_in_order() {
        let mut commit = GroupCommit::new(vec![B("a", 1), B("bad", 1), B("c", 1)]);
        let attempt = commit.next_attempt().expect("the group");
        let step: CommitStep<_, u64, &str> = commit.on_result(attempt, Err("constraint"));
        assert_eq!(
            step,
            CommitStep::Split {
                batches: 3,
                error: "constraint"
            }
        );
        let mut steps = Vec::new();
        while let Some(attempt) = commit.next_attempt() {
            assert_eq!(attempt.len(), 1, "alone after the split");
            let result = if attempt[0].0 == "bad" {
                Err("constraint")
            } else {
                Ok(vec![1])
            };
            steps.push(commit.on_result(attempt, result));
        }
        assert_eq!(
            steps,
            vec![
                CommitStep::Committed(vec![(B("a", 1), 1)]),
                CommitStep::Failed {
                    batch: B("bad", 1),
                    error: "constraint"
                },
                CommitStep::Committed(vec![(B("c", 1), 1)]),
            ],
            "the good batches commit around the bad one, in arrival order"
        );
    }

    #[test]
    fn a_lone_batch_that_fails_is_not_retried() {
        let mut commit = GroupCommit::new(vec![B("a", 1)]);
        let attempt = commit.next_attempt().expect("the group");
        let step: CommitStep<_, u64, &str> = commit.on_result(attempt, Err("disk full"));
        assert_eq!(
            step,
            CommitStep::Failed {
                batch: B("a", 1),
                error: "disk full"
            }
        );
        assert!(commit.next_attempt().is_none());
    }

    #[test]
    fn a_dropped_attempt_leaves_the_rest_of_the_split_group() {
        let mut commit = GroupCommit::new(vec![B("a", 1), B("b", 1)]);
        let attempt = commit.next_attempt().expect("the group");
        let _: CommitStep<_, u64, &str> = commit.on_result(attempt, Err("busy"));
        // The store could not be reached for "a": the shell drops the attempt.
        assert_eq!(commit.next_attempt(), Some(vec![B("a", 1)]));
        assert_eq!(commit.next_attempt(), Some(vec![B("b", 1)]));
        assert_eq!(commit.next_attempt(), None);
    }

    #[test]
    fn an_empty_group_has_nothing_to_commit() {
        let mut commit: GroupCommit<B> = GroupCommit::new(Vec::new());
        assert!(commit.next_attempt().is_none());
    }

    fn outcome(
        ack_upto: u64,
        gap: bool,
        fresh: Vec<usize>,
        forwarded: Vec<Lane>,
    ) -> ForwardOutcome {
        ForwardOutcome {
            batch: BatchOutcome {
                ack_upto,
                applied: fresh.len(),
                duplicates: 0,
                gap,
            },
            fresh,
            forwarded: forwarded.into_iter().zip(1..).collect(),
            audit: Default::default(),
            clamped: Vec::new(),
            directives: Default::default(),
        }
    }

    #[test]
    fn a_receipt_acks_what_the_store_holds_and_hands_over_the_new_events() {
        let r = Receipt::of(
            Lane::Critical,
            &outcome(42, false, vec![0, 2], vec![Lane::Critical, Lane::Normal]),
        );
        assert_eq!(r.ack, Ack::new(Lane::Critical, 42));
        assert_eq!(r.fresh, vec![0, 2]);
        assert_eq!(r.forwarded, vec![Lane::Critical, Lane::Normal]);
        assert!(r.wake_forward);
    }

    #[test]
    fn a_resend_is_acked_and_wakes_nobody() {
        let r = Receipt::of(Lane::Normal, &outcome(9, false, vec![], vec![]));
        assert_eq!(r.ack, Ack::new(Lane::Normal, 9));
        assert!(r.fresh.is_empty());
        assert!(!r.wake_forward);
    }

    #[test]
    fn a_gap_repeats_the_cursor_and_hands_nothing_over() {
        let r = Receipt::of(Lane::Normal, &outcome(3, true, vec![0], vec![]));
        assert_eq!(r.ack, Ack::new(Lane::Normal, 3), "the unchanged cursor");
        assert!(r.fresh.is_empty());
    }
}
