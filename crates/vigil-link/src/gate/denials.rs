//! The gate's denials as the owner's audit log receives them: bounded in size and in
//! number (docs/ARCHITECTURE.md#security-hardening).
//!
//! - **Size**: a denial's topic (or client id, or will topic) is cut to
//!   [`MAX_TOPIC_BYTES`] at a character boundary ([`truncate_topic`]); the record says it
//!   was cut and how long the original was. A node can send a 64 KiB topic; its audit
//!   record, which travels up to the ministry, does not carry it.
//! - **Number**: denials are aggregated per node, packet kind and reason over a window
//!   ([`Aggregator`]). The first denial of a key goes to the owner at once (a security
//!   finding should not wait); the ones after it within the window become one record with
//!   their count, sent when the window closes. A node that keeps being refused yields one
//!   record per window, whatever its rate.
//!
//! [`Aggregator`] is pure (denials and instants in, records out); `aggregate` is the task
//! around it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use vigil_core::NodeId;

use super::acl::{Action, DenialReason};
use super::metrics::GateMetrics;
use super::Denial;

/// The most bytes of a topic a denial carries.
pub const MAX_TOPIC_BYTES: usize = 256;

/// `topic` cut to at most [`MAX_TOPIC_BYTES`] bytes at a character boundary, and whether
/// it was cut.
pub fn truncate_topic(topic: &str) -> (&str, bool) {
    if topic.len() <= MAX_TOPIC_BYTES {
        return (topic, false);
    }
    let mut end = MAX_TOPIC_BYTES;
    while !topic.is_char_boundary(end) {
        end -= 1;
    }
    (&topic[..end], true)
}

type Key = (NodeId, Action, DenialReason);

#[derive(Debug)]
struct Window {
    closes: Instant,
    /// The denials after the first, merged: the first of them with the count and the last
    /// time.
    repeats: Option<Denial>,
}

/// Denials aggregated per (node, action, reason) over a window.
#[derive(Debug)]
pub struct Aggregator {
    window: Duration,
    open: HashMap<Key, Window>,
}

impl Aggregator {
    /// An aggregator over `window`.
    pub fn new(window: Duration) -> Aggregator {
        Aggregator {
            window,
            open: HashMap::new(),
        }
    }

    /// Takes one denial at `now`: returns it when it is the first of its key in a window
    /// (to be sent at once), or keeps it to be counted into the window's record.
    pub fn record(&mut self, denial: Denial, now: Instant) -> Option<Denial> {
        let key = (denial.node.clone(), denial.action, denial.reason);
        match self.open.get_mut(&key) {
            None => {
                self.open.insert(
                    key,
                    Window {
                        closes: now + self.window,
                        repeats: None,
                    },
                );
                Some(denial)
            }
            Some(window) => {
                match &mut window.repeats {
                    None => window.repeats = Some(denial),
                    Some(merged) => {
                        merged.count = merged.count.saturating_add(denial.count);
                        merged.last_at = merged.last_at.max(denial.last_at);
                    }
                }
                None
            }
        }
    }

    /// The records of the windows closed by `now`. A window that held repeats stays open
    /// for another window (the node is still being refused); one that held none closes.
    pub fn due(&mut self, now: Instant) -> Vec<Denial> {
        let mut out = Vec::new();
        let window = self.window;
        self.open.retain(|_, w| {
            if w.closes > now {
                return true;
            }
            match w.repeats.take() {
                Some(merged) => {
                    out.push(merged);
                    w.closes = now + window;
                    true
                }
                None => false,
            }
        });
        out.sort_by_key(|d| d.at);
        out
    }

    /// Every record still held, whatever its window (at shutdown).
    pub fn drain(&mut self) -> Vec<Denial> {
        let mut out: Vec<Denial> = self.open.drain().filter_map(|(_, w)| w.repeats).collect();
        out.sort_by_key(|d| d.at);
        out
    }

    /// When the next window closes.
    pub fn next_close(&self) -> Option<Instant> {
        self.open.values().map(|w| w.closes).min()
    }
}

/// Until `shutdown` (or every sender is gone): aggregates the relays' denials from `raw`
/// over `window` and sends the records to the owner on `out`, without ever waiting for it
/// (a record the owner has no room for is counted in
/// `vigil_gate_denial_records_dropped_total`).
pub(crate) async fn aggregate(
    mut raw: mpsc::Receiver<Denial>,
    out: mpsc::Sender<Denial>,
    window: Duration,
    metrics: GateMetrics,
    shutdown: CancellationToken,
) {
    let mut aggregator = Aggregator::new(window);
    let send = |denial: Denial| {
        if out.try_send(denial).is_err() {
            metrics.denial_records_dropped.inc();
            debug!("gate: denial record not queued (nobody reads them, or the queue is full)");
        }
    };
    loop {
        let next = aggregator.next_close();
        tokio::select! {
            () = shutdown.cancelled() => break,
            denial = raw.recv() => match denial {
                Some(denial) => {
                    if let Some(first) = aggregator.record(denial, Instant::now()) {
                        send(first);
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                for record in aggregator.due(Instant::now()) {
                    send(record);
                }
            }
        }
    }
    for record in aggregator.drain() {
        send(record);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::SystemTime;

    use super::*;

    fn denial(node: &str, action: Action, topic: &str, at_secs: u64) -> Denial {
        Denial::new(
            NodeId::new(node).expect("node"),
            action,
            DenialReason::PublishTopic,
            Some(topic),
            SocketAddr::from(([127, 0, 0, 1], 4000)),
            SystemTime::UNIX_EPOCH + Duration::from_secs(at_secs),
        )
    }

    #[test]
    fn topics_are_cut_at_a_character_boundary_and_marked() {
        assert_eq!(
            truncate_topic("vigil/v1/up/gw-2"),
            ("vigil/v1/up/gw-2", false)
        );
        let long = "é".repeat(200); // 400 bytes, 2 per character
        let (cut, truncated) = truncate_topic(&long);
        assert!(truncated);
        assert_eq!(cut.len(), 256);
        let odd = format!("a{long}"); // the 256th byte is inside an é
        let (cut, _) = truncate_topic(&odd);
        assert_eq!(cut.len(), 255);
        assert!(odd.starts_with(cut));

        let d = denial("gw-1", Action::Publish, &"x".repeat(65_000), 1);
        assert_eq!(d.topic.as_deref().map(str::len), Some(MAX_TOPIC_BYTES));
        assert!(d.topic_truncated());
        assert_eq!(d.topic_bytes, 65_000);
        assert_eq!(d.count, 1);
    }

    #[test]
    fn the_first_goes_at_once_the_rest_of_the_window_as_one_record_with_its_count() {
        let start = Instant::now();
        let mut agg = Aggregator::new(Duration::from_secs(60));
        let first = agg
            .record(denial("gw-1", Action::Publish, "a", 1), start)
            .expect("the first at once");
        assert_eq!((first.count, first.topic.as_deref()), (1, Some("a")));
        for i in 2..=100 {
            let t = start + Duration::from_millis(i);
            assert!(agg
                .record(denial("gw-1", Action::Publish, "b", i), t)
                .is_none());
        }
        // Another node, and another kind of packet, are their own keys.
        assert!(agg
            .record(denial("gw-2", Action::Publish, "c", 5), start)
            .is_some());
        assert!(agg
            .record(denial("gw-1", Action::Subscribe, "d", 5), start)
            .is_some());
        assert!(agg.due(start + Duration::from_secs(59)).is_empty());
        assert_eq!(agg.next_close(), Some(start + Duration::from_secs(60)));

        let records = agg.due(start + Duration::from_secs(60));
        assert_eq!(records.len(), 1, "{records:?}");
        let merged = &records[0];
        assert_eq!(merged.count, 99);
        assert_eq!(merged.topic.as_deref(), Some("b"));
        assert_eq!(merged.at, SystemTime::UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(
            merged.last_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(100)
        );

        // gw-1's publish window stays open after a record: the next one is counted too.
        let later = start + Duration::from_secs(61);
        assert!(agg
            .record(denial("gw-1", Action::Publish, "e", 200), later)
            .is_none());
        assert_eq!(agg.drain().len(), 1);
        assert_eq!(agg.next_close(), None);
    }

    #[test]
    fn a_quiet_window_closes_and_the_next_denial_goes_at_once_again() {
        let start = Instant::now();
        let mut agg = Aggregator::new(Duration::from_secs(10));
        assert!(agg
            .record(denial("gw-1", Action::Publish, "a", 1), start)
            .is_some());
        assert!(agg.due(start + Duration::from_secs(10)).is_empty());
        assert_eq!(agg.next_close(), None);
        assert!(agg
            .record(
                denial("gw-1", Action::Publish, "a", 20),
                start + Duration::from_secs(11)
            )
            .is_some());
    }
}
