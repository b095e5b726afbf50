//! The alert pipeline's async shell: readings → detectors → conditions (with the sources'
//! own) → alert manager → store and outbox.
//!
//! Everything that decides lives in the pure [`Detectors`] and [`AlertManager`]; this shell
//! only feeds them and persists what they answer. Each step (a batch of readings, one source
//! condition, a tick, a reconciliation) records all its events with one
//! [`Store::record_events`] call on the [`UPLINK_LINK`] link — one transaction that stores
//! the events, folds their alerts and appends them to the outbox lanes. The store is
//! synchronous SQLite, so every store call runs on tokio's blocking pool behind a
//! [`SharedStore`] mutex and the runtime is never blocked.
//!
//! If recording fails (disk full, I/O error) the step's events are kept, in order, and
//! retried before the next step's (up to [`MAX_PENDING`] events); the manager's state has
//! already moved on, and the events it answered are never lost while the process lives.
//!
//! Acknowledgements and resets arrive from the hub over the downlink; the link engine applies
//! them to the store. The pipeline learns of them by [`Pipeline::on_downlink_applied`] (the
//! seam for the link engine) and, in any case, by re-reading its open alerts every
//! [`RECONCILE_EVERY`] ([`Pipeline::reconcile`]), so an alert that became `normal` is closed
//! either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, error, info, warn};
use vigil_core::{
    AlertEventBody, AlertId, AlertView, Condition, HlcClock, Lane, Reading, Timestamp,
};
use vigil_profile::Profile;
use vigil_store::{Store, StoreError};

use super::manager::{AlertManager, LaneEvent};
use super::{Correlator, UPLINK_LINK};
use crate::config::AgentConfig;
use crate::detect::{Detectors, RuleBook};
use crate::metrics::{AlertMetrics, DetectMetrics};

/// The store, shared between the pipeline, readers (the HTTP endpoint) and the uplink: the
/// one shared store handle of the agent and the hub, with its poisoning policy.
pub use vigil_link::SharedStore;

/// How often time-based rules (delays, stale data) are advanced.
pub const TICK: Duration = Duration::from_secs(1);

/// How often open alerts are re-read from the store to see the hub's actions.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// The most events kept for retry while the store refuses writes.
pub const MAX_PENDING: usize = 100_000;

/// What can stop the pipeline from starting.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store's directory could not be created.
    #[error("cannot create the directory of [store] path {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking store call panicked or was cancelled.
    #[error("the store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Opens the store at `path`, creating its directory if needed.
pub fn open_store(path: &Path) -> Result<Store, PipelineError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PipelineError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(Store::open(path)?)
}

/// Runs `f` on the store on the blocking pool.
async fn with_store<T, F>(store: &SharedStore, f: F) -> Result<T, PipelineError>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    let result = tokio::task::spawn_blocking(move || f(&mut store.lock())).await?;
    Ok(result?)
}

/// The detectors, the alert manager and what they have not yet persisted.
#[derive(Debug)]
pub struct Pipeline {
    detectors: Detectors,
    manager: AlertManager,
    store: SharedStore,
    detect_metrics: DetectMetrics,
    alert_metrics: AlertMetrics,
    /// Events answered but not yet recorded (a failed write), oldest first.
    pending: Vec<LaneEvent>,
    /// Wakes the uplink after events are recorded, so they leave at once.
    poke: Option<vigil_link::OutboxPoke>,
}

impl Pipeline {
    /// Adds the `[[posture]]` detectors ([`crate::posture`]); before the first reading.
    pub fn set_posture(&mut self, posture: crate::posture::PostureBook) {
        let detectors = std::mem::replace(&mut self.detectors, Detectors::new(RuleBook::default()));
        self.detectors = detectors.with_posture(posture);
    }

    /// Builds the detectors from `profiles` (the Modbus devices' profiles in config order)
    /// and the `[[rule]]` overrides, and the alert manager from the store: its clock resumes
    /// after the store's greatest stamp and its open alerts are rebuilt by key. Records what
    /// restoring calls for (closing alerts that became `normal` while the agent was down).
    pub async fn start(
        config: &AgentConfig,
        profiles: &[Profile],
        store: SharedStore,
        detect_metrics: DetectMetrics,
        alert_metrics: AlertMetrics,
    ) -> Result<Self, PipelineError> {
        let detectors = Detectors::new(RuleBook::new(config, profiles));
        detect_metrics
            .points
            .set(i64::try_from(detectors.point_count()).unwrap_or(i64::MAX));
        let (max_hlc, views) =
            with_store(&store, |s| Ok((s.max_hlc()?, s.list_alerts(usize::MAX)?))).await?;
        let clock = HlcClock::resume(max_hlc.unwrap_or_default(), HlcClock::DEFAULT_MAX_SKEW_MS);
        let mut manager = AlertManager::new(
            config.node.id.clone(),
            config.node.site.clone(),
            clock,
            Correlator::default(),
        );
        let stored = views.len();
        let events = manager.restore(views, Timestamp::now());
        info!(
            points = detectors.point_count(),
            detectors = detectors.detector_count(),
            stored_alerts = stored,
            open_alerts = manager.open_count(),
            "alert pipeline ready"
        );
        let mut pipeline = Pipeline {
            detectors,
            manager,
            store,
            detect_metrics,
            alert_metrics,
            pending: Vec::new(),
            poke: None,
        };
        pipeline.record(events).await;
        Ok(pipeline)
    }

    /// The alert manager (for inspection).
    pub fn manager(&self) -> &AlertManager {
        &self.manager
    }

    /// Runs a batch of readings through the detectors, and their conditions through the
    /// manager, as one step.
    pub async fn on_readings(&mut self, readings: &[Reading]) {
        let mut conditions = Vec::new();
        for r in readings {
            conditions.extend(self.detectors.on_reading(r));
        }
        self.step(conditions, Timestamp::now()).await;
    }

    /// A condition a source raised itself (communication loss): passed through as one step.
    pub async fn on_source_condition(&mut self, c: Condition) {
        self.detectors.on_source_condition(&c);
        self.step(vec![c], Timestamp::now()).await;
    }

    /// Advances the time-based rules to `now` as one step.
    pub async fn on_tick(&mut self, now: Timestamp) {
        let conditions = self.detectors.on_tick(now);
        self.step(conditions, now).await;
    }

    /// Re-reads the alerts `ids` from the store after the link engine applied downlink
    /// events to them, and closes those that became `normal`.
    pub async fn on_downlink_applied(&mut self, ids: Vec<AlertId>) {
        if ids.is_empty() {
            return;
        }
        let views = match with_store(&self.store, move |s| {
            let mut views = Vec::with_capacity(ids.len());
            for id in ids {
                views.extend(s.alert(id)?);
            }
            Ok(views)
        })
        .await
        {
            Ok(views) => views,
            Err(e) => {
                warn!(error = %e, "cannot read alerts back from the store");
                return;
            }
        };
        self.on_views(&views).await;
    }

    /// Re-reads every open alert from the store (see [`RECONCILE_EVERY`]). Skipped while
    /// events are pending: the store's views would be older than the manager's.
    pub async fn reconcile(&mut self) {
        if !self.pending.is_empty() {
            self.flush().await;
            return;
        }
        let ids = self.manager.open_ids();
        self.on_downlink_applied(ids).await;
    }

    async fn on_views(&mut self, views: &[AlertView]) {
        let events = self.manager.on_applied(views, Timestamp::now());
        self.record(events).await;
    }

    /// One step: conditions through the manager, events into the store.
    async fn step(&mut self, conditions: Vec<Condition>, now: Timestamp) {
        let mut events = Vec::new();
        for c in &conditions {
            let state = if c.active { "raised" } else { "cleared" };
            self.detect_metrics
                .conditions
                .with_label_values(&[c.kind.as_str(), state])
                .inc();
            match self.manager.on_condition(c, now) {
                Ok(out) => {
                    if c.active {
                        info!(source = %c.source, kind = %c.kind, severity = %c.severity, zone = c.zone.as_deref().unwrap_or(""), message = %c.message, "condition raised");
                    } else if out.is_empty() {
                        debug!(source = %c.source, kind = %c.kind, message = %c.message, "condition clear");
                    } else {
                        info!(source = %c.source, kind = %c.kind, message = %c.message, "condition cleared");
                    }
                    events.extend(out);
                }
                Err(e) => {
                    warn!(source = %c.source, kind = %c.kind, error = %e, "condition dropped")
                }
            }
        }
        self.record(events).await;
    }

    /// Wakes `poke` each time events have been recorded in the uplink's outbox.
    pub fn set_uplink_poke(&mut self, poke: vigil_link::OutboxPoke) {
        self.poke = Some(poke);
    }

    /// Records `events` (after any still pending) in one transaction.
    async fn record(&mut self, events: Vec<LaneEvent>) {
        self.pending.extend(events);
        self.flush().await;
    }

    /// Tries to record every pending event.
    pub async fn flush(&mut self) {
        self.alert_metrics
            .open
            .set(i64::try_from(self.manager.open_count()).unwrap_or(i64::MAX));
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let store = self.store.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut s = store.lock();
            let result = s.record_events(UPLINK_LINK, &batch).map(|_| {
                Lane::ALL.map(|lane| {
                    (
                        lane,
                        s.outbox_lane_state(UPLINK_LINK, lane)
                            .map(|st| st.backlog_records)
                            .ok(),
                    )
                })
            });
            (batch, result)
        })
        .await;
        match outcome {
            Ok((batch, Ok(backlog))) => {
                if let Some(poke) = &self.poke {
                    poke.poke();
                }
                for (lane, e) in &batch {
                    self.alert_metrics
                        .events
                        .with_label_values(&[e.body.name(), lane.as_str()])
                        .inc();
                    log_event(*lane, e);
                }
                for (lane, records) in backlog {
                    if let Some(records) = records {
                        self.alert_metrics
                            .outbox_backlog
                            .with_label_values(&[UPLINK_LINK, lane.as_str()])
                            .set(i64::try_from(records).unwrap_or(i64::MAX));
                    }
                }
            }
            Ok((batch, Err(e))) => {
                self.alert_metrics.record_errors.inc();
                error!(error = %e, events = batch.len(), "cannot record alert events; they are kept and retried");
                self.pending = batch;
            }
            Err(e) => {
                self.alert_metrics.record_errors.inc();
                error!(error = %e, "the store task failed; alert events lost");
            }
        }
        if self.pending.len() > MAX_PENDING {
            let drop = self.pending.len() - MAX_PENDING;
            error!(
                dropped = drop,
                "too many alert events pending; dropping the oldest"
            );
            self.pending.drain(..drop);
        }
        self.alert_metrics
            .pending
            .set(i64::try_from(self.pending.len()).unwrap_or(i64::MAX));
    }
}

fn log_event(lane: Lane, e: &vigil_core::AlertEvent) {
    match &e.body {
        AlertEventBody::Raised {
            key,
            severity,
            message,
            ..
        } => {
            info!(alert = %e.alert, key = %key, severity = %severity, lane = %lane, message = %message, "alert raised")
        }
        body => info!(alert = %e.alert, event = body.name(), lane = %lane, "alert event"),
    }
}
