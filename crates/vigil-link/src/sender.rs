//! The sending half of a link as a pure state machine: which outbox records to send next,
//! what is in flight, what an ack means, when to resend.
//!
//! [`OutboxSender`] does no I/O and reads no clock: the caller (the async shell in
//! `drain`) reads the outbox when [`OutboxSender::next_read`] says so, publishes, and
//! feeds back what happened — sent, acked, connected, timed out — with the current instant.
//! The same machine drives a child's uplink (outbox link `parent`) and each of a parent's
//! downlinks (outbox link `child:{node}`).
//!
//! The rules:
//!
//! - **Window.** Up to [`SenderConfig::window`] batches are in flight at once, and one
//!   critical batch more when the window is full of normal batches: a full window never
//!   holds the critical lane. Acks are cumulative per lane, so one ack can complete several
//!   batches; a window of 1 is stop-and-wait.
//! - **Critical first.** Reads take the critical lane before the normal lane, and a normal
//!   batch is not sent while a critical batch is in flight: the receiver always commits every
//!   critical event it was sent before it sees a normal one, even across losses and resends.
//!   A critical record appended while normal batches are in flight is sent at once.
//! - **Acks.** An ack above the acknowledged position advances it (the shell then deletes up
//!   to there with `Store::outbox_ack` and confirms); an ack at or below it is stale and
//!   changes nothing. A receiver that finds a gap (a batch lost before it) answers with its
//!   unchanged cursor, which is such a stale ack: the gap is repaired by the timeout below.
//!   Stale acks are deliberately not read as a gap signal: the replies to the duplicates a
//!   resend creates look exactly the same, and resending on them feeds on itself (the model
//!   check in `tests/sender_model.rs` found that storm).
//! - **Timeouts.** If the batches in flight see no ack progress for the ack timeout (counted
//!   from the last progress), everything in flight is resent from the acknowledged positions
//!   (go-back-N); the timeout doubles with each timeout in a row (up to
//!   [`SenderConfig::ack_timeout_max`]) so a parent that is away is not flooded, and resets
//!   on progress.
//! - **Connections.** On (re)connect everything not acknowledged is resent: MQTT's PUBACK and
//!   session state are not relied on, only the receiver's acks. While disconnected nothing is
//!   sent.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use vigil_core::Lane;
use vigil_store::LaneCursors;
use vigil_wire::{Ack, MAX_BATCH_EVENTS, MAX_PAYLOAD_BYTES};

use crate::error::LinkError;

/// How a sender batches and paces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Batches in flight at once (1 is stop-and-wait).
    pub window: usize,
    /// The most events in one batch (at most [`MAX_BATCH_EVENTS`]).
    pub max_batch_events: usize,
    /// The most payload bytes of outbox records in one batch (at most half of
    /// [`MAX_PAYLOAD_BYTES`], which leaves room for the batch's own JSON). A single record
    /// larger than this is sent alone.
    pub max_batch_bytes: usize,
    /// How long the oldest batch in flight may wait for ack progress before everything in
    /// flight is resent.
    pub ack_timeout: Duration,
    /// The ack timeout doubles with each timeout in a row, up to this.
    pub ack_timeout_max: Duration,
}

impl SenderConfig {
    /// The default window: 4 batches.
    pub const fn default_window() -> usize {
        4
    }

    /// The default batch size: 500 events.
    pub const fn default_max_batch_events() -> usize {
        500
    }

    /// The default batch payload budget: 1 MiB.
    pub const fn default_max_batch_bytes() -> usize {
        1024 * 1024
    }

    /// The default ack timeout: 5 s. It is counted from the last ack progress, so a slow
    /// parent that keeps acknowledging never hits it; it is what repairs a batch the parent
    /// missed (e.g. while it reconnected to its broker).
    pub const fn default_ack_timeout() -> Duration {
        Duration::from_secs(5)
    }

    /// The default longest ack timeout: 1 min.
    pub const fn default_ack_timeout_max() -> Duration {
        Duration::from_secs(60)
    }

    /// Checks every setting; the error names the setting and the allowed range.
    pub fn validate(&self) -> Result<(), LinkError> {
        let bad = |key, reason: String| Err(LinkError::Config { key, reason });
        if self.window == 0 {
            return bad(
                "sender.window",
                "must be at least 1 (1 is stop-and-wait)".into(),
            );
        }
        if self.max_batch_events == 0 || self.max_batch_events > MAX_BATCH_EVENTS {
            return bad(
                "sender.max_batch_events",
                format!(
                    "{} is outside 1..={MAX_BATCH_EVENTS}",
                    self.max_batch_events
                ),
            );
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > MAX_PAYLOAD_BYTES / 2 {
            return bad(
                "sender.max_batch_bytes",
                format!(
                    "{} is outside 1..={} (half the largest payload)",
                    self.max_batch_bytes,
                    MAX_PAYLOAD_BYTES / 2
                ),
            );
        }
        if self.ack_timeout.is_zero() {
            return bad("sender.ack_timeout", "must be above zero (e.g. 10s)".into());
        }
        if self.ack_timeout_max < self.ack_timeout {
            return bad(
                "sender.ack_timeout_max",
                format!(
                    "{:?} is below sender.ack_timeout {:?}",
                    self.ack_timeout_max, self.ack_timeout
                ),
            );
        }
        Ok(())
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            window: SenderConfig::default_window(),
            max_batch_events: SenderConfig::default_max_batch_events(),
            max_batch_bytes: SenderConfig::default_max_batch_bytes(),
            ack_timeout: SenderConfig::default_ack_timeout(),
            ack_timeout_max: SenderConfig::default_ack_timeout_max(),
        }
    }
}

/// One batch sent and not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// The batch's lane.
    pub lane: Lane,
    /// Its first sequence number.
    pub first_seq: u64,
    /// Its last sequence number: the ack that completes it.
    pub last_seq: u64,
    /// How many events it carries.
    pub events: usize,
    /// When it was published.
    pub sent_at: Instant,
}

/// What to read from the outbox next: records after `after` in each of `lanes`, in that
/// order, the first lane that has any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// The in-flight cursors: everything up to here is sent.
    pub after: LaneCursors,
    /// The lanes that may be read, in drain order.
    pub lanes: &'static [Lane],
}

/// What an ack means for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckDecision {
    /// The lane's acknowledged position moves up to `upto`: delete up to there in the
    /// store, then call [`OutboxSender::on_store_acked`].
    Advance {
        /// The lane.
        lane: Lane,
        /// The new acknowledged position.
        upto: u64,
        /// The batches in flight this ack completes (for metrics: events, round trip).
        completed: Vec<InFlight>,
    },
    /// Nothing new: a repeated or late ack, the reply to a duplicate, or a receiver
    /// reporting a gap (repaired by the ack timeout).
    Stale,
}

/// Why everything in flight is being sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// Batches that were in flight.
    pub batches: usize,
    /// Timeouts in a row, this one included.
    pub in_a_row: u32,
}

const LANES_ALL: &[Lane] = &Lane::ALL;
const LANES_CRITICAL: &[Lane] = &[Lane::Critical];

/// The sending state of one outbox link. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct OutboxSender {
    config: SenderConfig,
    connected: bool,
    acked: LaneCursors,
    sent: LaneCursors,
    in_flight: VecDeque<InFlight>,
    drained: bool,
    progress_at: Option<Instant>,
    timeouts_in_row: u32,
}

impl OutboxSender {
    /// A disconnected sender whose outbox is acknowledged up to `acked` (from
    /// `Store::outbox_acked`): it resumes after the last ack.
    pub fn new(config: SenderConfig, acked: LaneCursors) -> Self {
        OutboxSender {
            config,
            connected: false,
            acked,
            sent: acked,
            in_flight: VecDeque::new(),
            drained: false,
            progress_at: None,
            timeouts_in_row: 0,
        }
    }

    /// The settings.
    pub const fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Whether the peer is reachable (batches may be sent).
    pub const fn is_connected(&self) -> bool {
        self.connected
    }

    /// The acknowledged positions.
    pub const fn acked(&self) -> LaneCursors {
        self.acked
    }

    /// The in-flight cursors: everything up to here has been sent.
    pub const fn sent(&self) -> LaneCursors {
        self.sent
    }

    /// The batches in flight, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = &InFlight> {
        self.in_flight.iter()
    }

    /// How many batches are in flight.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// What to read next, or `None` when nothing may be sent now (disconnected, the window
    /// is full, or the outbox had nothing more at the last read and nobody said otherwise).
    pub fn next_read(&self) -> Option<ReadPlan> {
        if !self.connected || self.drained {
            return None;
        }
        let critical = self
            .in_flight
            .iter()
            .filter(|f| f.lane == Lane::Critical)
            .count();
        let lanes = if self.in_flight.len() < self.config.window {
            if critical > 0 {
                LANES_CRITICAL
            } else {
                LANES_ALL
            }
        } else if critical == 0 {
            // A window full of normal batches never holds the critical lane: one critical
            // batch may go beyond it.
            LANES_CRITICAL
        } else {
            return None;
        };
        Some(ReadPlan {
            after: self.sent,
            lanes,
        })
    }

    /// The read found nothing to send: wait for a poke, an ack or a rewind.
    pub fn on_read_empty(&mut self) {
        self.drained = true;
    }

    /// New records may be in the outbox (the owner appended, or a periodic poll).
    pub fn poke(&mut self) {
        self.drained = false;
    }

    /// A batch `first_seq..=last_seq` of `lane` with `events` events was published at `now`.
    pub fn on_sent(
        &mut self,
        lane: Lane,
        first_seq: u64,
        last_seq: u64,
        events: usize,
        now: Instant,
    ) {
        if self.in_flight.is_empty() {
            self.progress_at = Some(now);
        }
        self.in_flight.push_back(InFlight {
            lane,
            first_seq,
            last_seq,
            events,
            sent_at: now,
        });
        if last_seq > self.sent.get(lane) {
            self.sent.set(lane, last_seq);
        }
    }

    /// An ack arrived from the receiver at `now`.
    pub fn on_ack(&mut self, ack: Ack, now: Instant) -> AckDecision {
        let lane = ack.lane;
        let upto = ack.upto_seq;
        if upto > self.acked.get(lane) {
            self.acked.set(lane, upto);
            if upto > self.sent.get(lane) {
                // The receiver has more than this sender remembers sending (acks lost
                // before a restart): no need to send it again.
                self.sent.set(lane, upto);
            }
            let mut completed = Vec::new();
            self.in_flight.retain(|f| {
                let done = f.lane == lane && f.last_seq <= upto;
                if done {
                    completed.push(*f);
                }
                !done
            });
            self.timeouts_in_row = 0;
            self.progress_at = Some(now);
            // Room in the window, and perhaps the normal lane is allowed again.
            self.drained = false;
            return AckDecision::Advance {
                lane,
                upto,
                completed,
            };
        }
        AckDecision::Stale
    }

    /// The store committed the acknowledgement of `lane` up to `acked_upto`.
    pub fn on_store_acked(&mut self, lane: Lane, acked_upto: u64) {
        if acked_upto > self.acked.get(lane) {
            self.acked.set(lane, acked_upto);
        }
        if self.acked.get(lane) > self.sent.get(lane) {
            self.sent.set(lane, self.acked.get(lane));
        }
    }

    /// Starts over from the store's acknowledged positions: after a store error, or an ack
    /// the store refused. Everything not acknowledged is sent again.
    pub fn resync(&mut self, acked: LaneCursors) {
        self.acked = acked;
        self.rewind_all();
    }

    /// The connection to the peer is up (again) at `now`: resend everything not
    /// acknowledged.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        self.timeouts_in_row = 0;
        self.rewind_all();
        self.progress_at = Some(now);
    }

    /// The connection to the peer is down: send nothing; what was in flight is sent again
    /// after the next connect.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.rewind_all();
    }

    /// The current ack timeout: the configured one, doubled for each timeout in a row, capped.
    pub fn ack_timeout(&self) -> Duration {
        let factor = 1u32.checked_shl(self.timeouts_in_row).unwrap_or(u32::MAX);
        self.config
            .ack_timeout
            .checked_mul(factor)
            .map_or(self.config.ack_timeout_max, |d| {
                d.min(self.config.ack_timeout_max)
            })
    }

    /// When the batches in flight time out, or `None` with nothing in flight.
    pub fn deadline(&self) -> Option<Instant> {
        let oldest = self.in_flight.front()?;
        let base = self
            .progress_at
            .map_or(oldest.sent_at, |p| p.max(oldest.sent_at));
        Some(base + self.ack_timeout())
    }

    /// Checks the ack timeout at `now`: if it passed, everything in flight is rewound to be
    /// sent again.
    pub fn on_tick(&mut self, now: Instant) -> Option<Timeout> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let batches = self.in_flight.len();
        self.timeouts_in_row = self.timeouts_in_row.saturating_add(1);
        self.rewind_all();
        Some(Timeout {
            batches,
            in_a_row: self.timeouts_in_row,
        })
    }

    fn rewind_all(&mut self) {
        self.sent = self.acked;
        self.in_flight.clear();
        self.drained = false;
        self.progress_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SenderConfig {
        SenderConfig {
            window: 3,
            max_batch_events: 10,
            max_batch_bytes: 1000,
            ack_timeout: Duration::from_secs(1),
            ack_timeout_max: Duration::from_secs(5),
        }
    }

    fn cursors(critical: u64, normal: u64) -> LaneCursors {
        LaneCursors { critical, normal }
    }

    /// A connected sender with nothing acknowledged, and the instant it connected.
    fn connected() -> (OutboxSender, Instant) {
        let mut s = OutboxSender::new(config(), LaneCursors::default());
        let t0 = Instant::now();
        s.on_connected(t0);
        (s, t0)
    }

    fn ack(lane: Lane, upto: u64) -> Ack {
        Ack::new(lane, upto)
    }

    #[test]
    fn nothing_is_read_while_disconnected() {
        let mut s = OutboxSender::new(config(), cursors(4, 7));
        assert_eq!(s.next_read(), None);
        s.on_connected(Instant::now());
        let plan = s.next_read().expect("connected");
        assert_eq!(plan.after, cursors(4, 7), "resumes after the last ack");
        assert_eq!(plan.lanes, &[Lane::Critical, Lane::Normal]);
        s.on_disconnected();
        assert_eq!(s.next_read(), None);
    }

    #[test]
    fn the_window_limits_batches_in_flight_and_acks_free_it() {
        let (mut s, t0) = connected();
        for i in 0..3u64 {
            let plan = s.next_read().expect("room");
            assert_eq!(plan.after.normal, i * 10);
            s.on_sent(Lane::Normal, i * 10 + 1, i * 10 + 10, 10, t0);
        }
        let plan = s.next_read().expect("the critical lane still may go");
        assert_eq!(
            plan.lanes,
            &[Lane::Critical],
            "a window of 3 normal batches is full for the normal lane only"
        );
        s.on_sent(Lane::Critical, 1, 1, 1, t0);
        assert_eq!(s.next_read(), None, "one critical batch beyond the window");
        assert_eq!(s.in_flight_len(), 4);
        s.on_ack(ack(Lane::Critical, 1), t0);
        // One cumulative ack completes two batches.
        let AckDecision::Advance {
            lane,
            upto,
            completed,
        } = s.on_ack(ack(Lane::Normal, 20), t0)
        else {
            panic!("expected progress");
        };
        assert_eq!((lane, upto, completed.len()), (Lane::Normal, 20, 2));
        assert_eq!(completed[1].first_seq, 11);
        assert_eq!(s.in_flight_len(), 1);
        assert_eq!(s.next_read().expect("room").after, cursors(1, 30));
    }

    #[test]
    fn an_empty_read_waits_for_a_poke() {
        let (mut s, _) = connected();
        s.on_read_empty();
        assert_eq!(s.next_read(), None);
        s.poke();
        assert!(s.next_read().is_some());
    }

    #[test]
    fn normal_waits_while_critical_is_in_flight() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Critical, 1, 5, 5, t0);
        let plan = s.next_read().expect("room");
        assert_eq!(plan.lanes, &[Lane::Critical], "only critical may follow");
        // The critical lane has nothing more: wait.
        s.on_read_empty();
        assert_eq!(s.next_read(), None);
        // The critical batch is acked: normal may go now.
        assert!(matches!(
            s.on_ack(ack(Lane::Critical, 5), t0),
            AckDecision::Advance { .. }
        ));
        let plan = s.next_read().expect("room again");
        assert_eq!(plan.lanes, &[Lane::Critical, Lane::Normal]);
        assert_eq!(plan.after, cursors(5, 0));
    }

    #[test]
    fn critical_overtakes_normal_in_flight() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        let plan = s.next_read().expect("room");
        assert_eq!(
            plan.lanes[0],
            Lane::Critical,
            "a critical append goes first"
        );
        assert_eq!(plan.after, cursors(0, 10));
    }

    #[test]
    fn stale_acks_change_nothing_and_a_gap_is_repaired_by_the_timeout() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        s.on_sent(Lane::Normal, 11, 20, 10, t0);
        s.on_sent(Lane::Normal, 21, 30, 10, t0);
        // The first batch was lost: the receiver answers the others with its cursor, 0.
        for _ in 0..5 {
            assert_eq!(s.on_ack(ack(Lane::Normal, 0), t0), AckDecision::Stale);
            assert_eq!(s.on_ack(ack(Lane::Critical, 0), t0), AckDecision::Stale);
        }
        assert_eq!(s.in_flight_len(), 3, "stale acks rewind nothing");
        assert_eq!(
            s.next_read().expect("critical").lanes,
            &[Lane::Critical],
            "the normal lane's window still full"
        );
        let timeout = s.on_tick(t0 + Duration::from_secs(1)).expect("timed out");
        assert_eq!(timeout.batches, 3);
        assert_eq!(s.next_read().expect("resend").after, cursors(0, 0));
    }

    #[test]
    fn replies_to_duplicates_after_a_resend_are_harmless() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        s.on_sent(Lane::Normal, 11, 20, 10, t0);
        let t1 = t0 + Duration::from_secs(1);
        s.on_tick(t1).expect("the receiver was slow");
        // Resent copies, then the late replies to the originals arrive.
        s.on_sent(Lane::Normal, 1, 10, 10, t1);
        s.on_sent(Lane::Normal, 11, 20, 10, t1);
        assert!(matches!(
            s.on_ack(ack(Lane::Normal, 10), t1),
            AckDecision::Advance { upto: 10, .. }
        ));
        assert!(matches!(
            s.on_ack(ack(Lane::Normal, 20), t1),
            AckDecision::Advance { upto: 20, .. }
        ));
        assert_eq!(s.in_flight_len(), 0, "the copies are complete too");
        s.on_sent(Lane::Normal, 21, 30, 10, t1);
        // The replies to the copies: stale, and nothing is resent.
        assert_eq!(s.on_ack(ack(Lane::Normal, 20), t1), AckDecision::Stale);
        assert_eq!(s.on_ack(ack(Lane::Normal, 20), t1), AckDecision::Stale);
        assert_eq!(s.in_flight_len(), 1);
        assert_eq!(s.sent(), cursors(0, 30));
    }

    #[test]
    fn an_ack_beyond_what_was_sent_skips_ahead() {
        // After a restart the receiver may hold more than the sender's last known ack.
        let mut s = OutboxSender::new(config(), cursors(0, 10));
        let t0 = Instant::now();
        s.on_connected(t0);
        s.on_sent(Lane::Normal, 11, 20, 10, t0);
        let decision = s.on_ack(ack(Lane::Normal, 35), t0);
        assert!(matches!(decision, AckDecision::Advance { upto: 35, .. }));
        assert_eq!(s.next_read().expect("room").after, cursors(0, 35));
        // The store refuses it (beyond its head): start over from what the store says.
        s.resync(cursors(0, 20));
        assert_eq!(s.acked(), cursors(0, 20));
        assert_eq!(s.next_read().expect("room").after, cursors(0, 20));
    }

    #[test]
    fn timeouts_resend_everything_and_back_off() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Critical, 1, 5, 5, t0);
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(s.on_tick(t0 + Duration::from_millis(999)), None);
        let timeout = s.on_tick(t0 + Duration::from_secs(1)).expect("timed out");
        assert_eq!(
            timeout,
            Timeout {
                batches: 2,
                in_a_row: 1
            }
        );
        assert_eq!(s.next_read().expect("resend").after, cursors(0, 0));
        assert_eq!(s.ack_timeout(), Duration::from_secs(2));
        let t1 = t0 + Duration::from_secs(1);
        s.on_sent(Lane::Critical, 1, 5, 5, t1);
        assert_eq!(s.deadline(), Some(t1 + Duration::from_secs(2)));
        for n in 2..6u32 {
            let sent_at = t1 + Duration::from_secs(u64::from(n) * 10);
            s.on_sent(Lane::Critical, 1, 5, 5, sent_at);
            assert_eq!(
                s.on_tick(sent_at + Duration::from_secs(60))
                    .map(|t| t.in_a_row),
                Some(n)
            );
        }
        assert_eq!(s.ack_timeout(), Duration::from_secs(5), "capped");
        // Progress resets the backoff.
        let t2 = t1 + Duration::from_secs(100);
        s.on_sent(Lane::Critical, 1, 5, 5, t2);
        s.on_ack(ack(Lane::Critical, 5), t2);
        assert_eq!(s.ack_timeout(), Duration::from_secs(1));
        assert_eq!(s.deadline(), None, "nothing in flight");
    }

    #[test]
    fn progress_restarts_the_timer_of_the_rest_of_the_window() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        s.on_sent(Lane::Normal, 11, 20, 10, t0);
        let t1 = t0 + Duration::from_millis(900);
        s.on_ack(ack(Lane::Normal, 10), t1);
        assert_eq!(s.deadline(), Some(t1 + Duration::from_secs(1)));
        assert_eq!(s.on_tick(t0 + Duration::from_millis(1500)), None);
    }

    #[test]
    fn a_reconnect_resends_from_the_last_ack() {
        let (mut s, t0) = connected();
        s.on_sent(Lane::Normal, 1, 10, 10, t0);
        s.on_sent(Lane::Normal, 11, 20, 10, t0);
        s.on_ack(ack(Lane::Normal, 10), t0);
        s.on_store_acked(Lane::Normal, 10);
        s.on_disconnected();
        assert_eq!(s.in_flight_len(), 0);
        assert_eq!(s.next_read(), None);
        s.on_connected(t0);
        assert_eq!(s.next_read().expect("resend").after, cursors(0, 10));
        // A late ack of the batch sent before the disconnect still counts.
        assert!(matches!(
            s.on_ack(ack(Lane::Normal, 20), t0),
            AckDecision::Advance { upto: 20, .. }
        ));
        assert_eq!(s.sent(), cursors(0, 20));
    }

    #[test]
    fn config_validation_names_the_setting() {
        assert!(SenderConfig::default().validate().is_ok());
        let cases: [(SenderConfig, &str); 5] = [
            (
                SenderConfig {
                    window: 0,
                    ..config()
                },
                "sender.window",
            ),
            (
                SenderConfig {
                    max_batch_events: MAX_BATCH_EVENTS + 1,
                    ..config()
                },
                "sender.max_batch_events",
            ),
            (
                SenderConfig {
                    max_batch_bytes: MAX_PAYLOAD_BYTES,
                    ..config()
                },
                "sender.max_batch_bytes",
            ),
            (
                SenderConfig {
                    ack_timeout: Duration::ZERO,
                    ..config()
                },
                "sender.ack_timeout",
            ),
            (
                SenderConfig {
                    ack_timeout_max: Duration::from_millis(1),
                    ..config()
                },
                "sender.ack_timeout_max",
            ),
        ];
        for (cfg, key) in cases {
            let err = cfg.validate().expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
