//! The live stream of alert events behind `GET /api/v1/stream`.
//!
//! Two sources feed one Tokio broadcast channel:
//!
//! - operator actions at this hub ([`LiveStream::publish`], with the alert as the action left
//!   it);
//! - events received from children (and from the parent) and applied to the store by the
//!   link side, which calls [`LiveStream::ingest_notify`] after each batch commits. That hook never blocks and never
//!   touches the store: it queues the events, and the stream's own task
//!   ([`run_ingest`]) loads the alerts' current views (one store call per batch) and
//!   broadcasts them.
//!
//! Each message is serialised once, whatever the number of clients. A client too slow for the
//! channel's capacity loses the oldest messages, and the stream tells it so with a `lagged`
//! event instead of leaving a silent gap; the same happens to every client when the ingest
//! queue itself overflows ([`LiveMessage::Gap`]). A client that gets `lagged` refetches the
//! list.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertEvent, AlertId, AlertView, EventId, SitePath, Timestamp};

use crate::alert_json::AlertJson;
use crate::metrics::HubMetrics;
use vigil_link::SharedStore;

/// Messages kept for slow stream clients before they lag.
pub const STREAM_CAPACITY: usize = 1024;

/// Batches of ingested events waiting for the live stream's task before notifications are dropped.
pub const INGEST_QUEUE: usize = 1024;

/// One alert event, ready to send: the SSE event name, id and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertUpdate {
    /// The event's type (`raised`, `acknowledged`, …): the SSE event name.
    pub name: &'static str,
    /// The event's id: the SSE id.
    pub id: EventId,
    /// `{"event": AlertEvent, "alert": Alert}` as JSON.
    pub data: String,
    /// The alert's site: who may see the update (a stream shows only its caller's scope).
    pub site: Option<SitePath>,
}

impl AlertUpdate {
    /// The update for `event`, with `view` (its alert now) seen at `now`.
    pub fn new(event: &AlertEvent, view: &AlertView, now: Timestamp) -> Self {
        /// The data's shape, serialised straight to text (no `serde_json::Value` tree).
        #[derive(serde::Serialize)]
        struct Data<'a> {
            event: &'a AlertEvent,
            alert: AlertJson,
        }
        let data = Data {
            event,
            alert: AlertJson::new(view, now),
        };
        AlertUpdate {
            name: event.body.name(),
            id: event.id,
            // Serialising our own types cannot fail (string keys, finite numbers).
            data: serde_json::to_string(&data).unwrap_or_default(),
            site: view.site.clone(),
        }
    }
}

/// What the live stream broadcasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveMessage {
    /// An alert event.
    Alert(Arc<AlertUpdate>),
    /// Updates were lost before reaching the live stream: every client must refetch.
    Gap,
}

/// The live stream: cheap to clone, shared by the API, the actions and the link side.
#[derive(Debug, Clone)]
pub struct LiveStream {
    tx: broadcast::Sender<LiveMessage>,
    ingest: mpsc::Sender<Vec<AlertEvent>>,
    overflowed: Arc<AtomicBool>,
    metrics: HubMetrics,
}

/// The receiving end of the ingest queue, consumed by [`run_ingest`].
#[derive(Debug)]
pub struct IngestQueue(mpsc::Receiver<Vec<AlertEvent>>);

impl LiveStream {
    /// A live stream and the queue its task drains.
    pub fn new(metrics: HubMetrics) -> (LiveStream, IngestQueue) {
        let (tx, _) = broadcast::channel(STREAM_CAPACITY);
        let (ingest, queue) = mpsc::channel(INGEST_QUEUE);
        (
            LiveStream {
                tx,
                ingest,
                overflowed: Arc::new(AtomicBool::new(false)),
                metrics,
            },
            IngestQueue(queue),
        )
    }

    /// A new stream client's receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveMessage> {
        self.tx.subscribe()
    }

    /// Broadcasts an event created here, with its alert as it now is.
    pub fn publish(&self, event: &AlertEvent, view: &AlertView, now: Timestamp) {
        if self.tx.receiver_count() > 0 {
            // No receivers is not an error: nobody is watching.
            let _ = self.tx.send(LiveMessage::Alert(Arc::new(AlertUpdate::new(
                event, view, now,
            ))));
        }
    }

    /// **The ingest hook.** The link side calls this after it has committed events received
    /// from a child or from the parent (the new ones; duplicates need no notice). Never blocks, never fails:
    /// when the live stream is saturated the notice is dropped, counted, and the stream clients are
    /// told to refetch.
    pub fn ingest_notify(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        // One label lookup per run of events of the same kind, not one per event.
        let mut run: Option<(&'static str, u64)> = None;
        for event in events {
            let name = event.body.name();
            match &mut run {
                Some((kind, count)) if *kind == name => *count += 1,
                _ => {
                    if let Some((kind, count)) = run.replace((name, 1)) {
                        self.count_ingested(kind, count);
                    }
                }
            }
        }
        if let Some((kind, count)) = run {
            self.count_ingested(kind, count);
        }
        if self.tx.receiver_count() == 0 {
            return;
        }
        if self.ingest.try_send(events.to_vec()).is_err() {
            self.metrics.live_dropped.inc();
            self.overflowed.store(true, Ordering::Release);
        }
    }

    fn count_ingested(&self, kind: &str, count: u64) {
        self.metrics
            .events_ingested
            .with_label_values(&[kind])
            .inc_by(count);
    }

    fn gap_if_overflowed(&self) {
        if self.overflowed.swap(false, Ordering::AcqRel) {
            let _ = self.tx.send(LiveMessage::Gap);
        }
    }
}

/// The live stream's task: turns ingest notices into broadcast updates with the alerts' current
/// views, until `shutdown`.
pub async fn run_ingest(
    live: LiveStream,
    mut queue: IngestQueue,
    store: SharedStore,
    shutdown: CancellationToken,
) {
    loop {
        let events = tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.0.recv() => match next {
                Some(events) => events,
                None => return,
            },
        };
        live.gap_if_overflowed();
        let ids: Vec<AlertId> = {
            let mut ids: Vec<AlertId> = events.iter().map(|e| e.alert).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let views = store
            .call(move |s| {
                Ok(ids
                    .into_iter()
                    .filter_map(|id| match s.alert(id) {
                        Ok(Some(view)) => Some((id, view)),
                        Ok(None) => None,
                        Err(error) => {
                            tracing::warn!(alert = %id, %error, "cannot read an ingested alert for the live stream");
                            None
                        }
                    })
                    .collect::<BTreeMap<AlertId, AlertView>>())
            })
            .await;
        let views = match views {
            Ok(views) => views,
            Err(error) => {
                tracing::warn!(%error, "live stream: ingested events not sent");
                let _ = live.tx.send(LiveMessage::Gap);
                continue;
            }
        };
        // Serialising a batch's updates takes a while (tens of µs an event): on the blocking
        // pool, not on a runtime worker, where it would hold up every link and connection
        // task scheduled behind it (docs/ARCHITECTURE.md#link-protocol: nothing holds the
        // critical lane).
        let now = Timestamp::now();
        let updates = tokio::task::spawn_blocking(move || {
            events
                .iter()
                .filter_map(|event| {
                    let view = views.get(&event.alert)?;
                    Some(Arc::new(AlertUpdate::new(event, view, now)))
                })
                .collect::<Vec<_>>()
        })
        .await;
        match updates {
            Ok(updates) => {
                for update in updates {
                    let _ = live.tx.send(LiveMessage::Alert(update));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "live stream: ingested events not sent");
                let _ = live.tx.send(LiveMessage::Gap);
            }
        }
    }
}
