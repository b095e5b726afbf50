//! `vigil-agent run`: opens the store, starts the sources, the alert pipeline and the HTTP
//! endpoint, and runs until shutdown.
//!
//! Readings from every source go to the [`PointTable`] (the latest value of each point,
//! served at `GET /api/v1/points` so an installer can see data flow) and through the
//! detectors; their conditions and those the sources raise themselves (communication loss)
//! go to the alert manager, whose events are recorded in the store and queued in the
//! outbox of the `parent` link ([`alerting::UPLINK_LINK`]) — one transaction per step
//! ([`alerting::Pipeline`]). A 1 s tick drives the time-based rules. `GET /api/v1/alerts`
//! shows the alerts the gateway raised.
//!
//! The uplink that drains the outbox to the parent hub (`vigil-link`) is started next to the
//! pipeline: it needs the store path (`[store] path`, opened again by the link: SQLite WAL
//! serialises the writers), the link name [`alerting::UPLINK_LINK`], and, after it applies
//! downlink events, to send the touched alert ids on the pipeline's `applied` channel
//! (see [`run`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertId, Reading, Timestamp};
use vigil_profile::Profile;
use vigil_store::alert_json::{AlertJson, AlertList};

use crate::alerting::{self, Pipeline, SharedStore};
use crate::config::AgentConfig;
use crate::metrics::Metrics;
use crate::source::{self, modbus, ConditionRx, ReadingRx};

/// The latest reading of every point.
#[derive(Debug, Default, Clone)]
pub struct PointTable(Arc<Mutex<BTreeMap<String, Reading>>>);

impl PointTable {
    fn update(&self, r: Reading) {
        if let Ok(mut t) = self.0.lock() {
            t.insert(r.point.as_str().to_owned(), r);
        }
    }

    /// A copy of every point's latest reading, sorted by point id.
    pub fn snapshot(&self) -> Vec<Reading> {
        self.0
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    points: PointTable,
    /// A read connection to the store, apart from the pipeline's writer.
    alerts: SharedStore,
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn points_handler(State(s): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({ "points": s.points.snapshot() }))
}

/// `GET /api/v1/alerts` query: `?state=&severity=&limit=`.
#[derive(Debug, Default, Deserialize)]
struct AlertsQuery {
    state: Option<String>,
    severity: Option<String>,
    limit: Option<usize>,
}

/// How long the agent's tasks get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The most alerts one answer of `GET /api/v1/alerts` holds.
const MAX_ALERTS: usize = 1000;

/// `GET /api/v1/alerts`: the alerts in the agent's store, most recently updated first.
async fn alerts_handler(
    State(s): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> axum::response::Response {
    let limit = q.limit.unwrap_or(MAX_ALERTS).clamp(1, MAX_ALERTS);
    let store = s.alerts.clone();
    let listed = tokio::task::spawn_blocking(move || store.lock().list_alerts(usize::MAX)).await;
    let views = match listed {
        Ok(Ok(views)) => views,
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response()
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": e.to_string() })),
            )
                .into_response()
        }
    };
    let now = Timestamp::now();
    let alerts: Vec<AlertJson> = views
        .iter()
        .filter(|v| {
            q.state
                .as_deref()
                .is_none_or(|st| v.state_at(now).as_str() == st)
        })
        .filter(|v| {
            q.severity
                .as_deref()
                .is_none_or(|sev| v.severity.as_str() == sev)
        })
        .take(limit)
        .map(|v| AlertJson::new(v, now))
        .collect();
    Json(AlertList { alerts, next: None }).into_response()
}

/// The agent's HTTP router: `/healthz`, `/metrics`, `/api/v1/points`, `/api/v1/alerts`.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/points", get(points_handler))
        .route("/api/v1/alerts", get(alerts_handler))
        .with_state(state)
}

/// The most readings taken from the channel for one pipeline step.
const READING_BATCH: usize = 256;

/// Where the link engine sends the ids of alerts it applied downlink events to.
pub type AppliedTx = mpsc::Sender<Vec<AlertId>>;

/// The pipeline task: readings to the point table and the detectors, source conditions and
/// ticks to the pipeline, downlink notices and periodic reconciliation, until shutdown.
async fn drive(
    mut pipeline: Pipeline,
    mut readings: ReadingRx,
    mut conditions: ConditionRx,
    mut applied: mpsc::Receiver<Vec<AlertId>>,
    points: PointTable,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(alerting::pipeline::TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reconcile = tokio::time::interval(alerting::pipeline::RECONCILE_EVERY);
    reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut conditions_open, mut applied_open) = (true, true);
    let mut batch = Vec::with_capacity(READING_BATCH);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            c = conditions.recv(), if conditions_open => match c {
                Some(c) => pipeline.on_source_condition(c).await,
                None => conditions_open = false,
            },
            // Ticks before readings: a flood of readings must not starve the time-based
            // rules (each tick is ready at most once a second).
            _ = tick.tick() => pipeline.on_tick(Timestamp::now()).await,
            _ = reconcile.tick() => pipeline.reconcile().await,
            ids = applied.recv(), if applied_open => match ids {
                Some(ids) => pipeline.on_downlink_applied(ids).await,
                None => applied_open = false,
            },
            r = readings.recv() => match r {
                Some(r) => {
                    batch.push(r);
                    while batch.len() < READING_BATCH {
                        match readings.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    for r in &batch {
                        tracing::trace!(point = %r.point, value = %r.value, "reading");
                        points.update(r.clone());
                    }
                    pipeline.on_readings(&batch).await;
                    batch.clear();
                }
                None => break,
            },
        }
    }
    pipeline.flush().await;
}

/// Runs the agent until `shutdown` is cancelled. `profiles` are the devices' profiles in
/// config order (from `check_cmd::load_checked`). Returns the address the HTTP endpoint
/// bound, through `bound`, as soon as it listens.
pub async fn run(
    config: AgentConfig,
    profiles: Vec<Profile>,
    shutdown: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let points = PointTable::default();
    let store_path = config.store.path.clone();
    let audit_origin = config.node.id.clone();
    let (store, reader) = tokio::task::spawn_blocking(move || {
        // The pipeline's writer, and a reader for the HTTP endpoint.
        let mut writer = alerting::open_store(&store_path)?;
        // The audit log travels up the uplink: every record appended from now on (by any
        // process on this store) is queued with its append, and the ones not queued yet now.
        let queued = writer.set_audit_forward(Some(&vigil_store::AuditForward {
            link: vigil_link::PARENT_LINK.to_owned(),
            origin: audit_origin,
        }))?;
        if queued > 0 {
            tracing::info!(records = queued, "audit records queued for the hub");
        }
        Ok::<_, alerting::PipelineError>((writer, alerting::open_store(&store_path)?))
    })
    .await?
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open the store ([store] path {}): {e}",
            config.store.path.display()
        )
    })?;
    let store = SharedStore::new(store);
    let reader = SharedStore::new(reader);
    for p in crate::config::rule::check_points(&config, &profiles) {
        tracing::warn!(key = %p.key, "{}", p.message);
    }
    for s in &config.ignored {
        tracing::warn!(
            file = %s.file.display(),
            line = s.line,
            section = s.section,
            name = %s.name,
            "{s}"
        );
    }
    let mut pipeline = Pipeline::start(
        &config,
        &profiles,
        store.clone(),
        metrics.detect.clone(),
        metrics.alerts.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the alert pipeline: {e}"))?;
    // The uplink to the hub shares the pipeline's connection: one writer, no lock contention.
    let link_metrics = vigil_link::LinkMetrics::new(&metrics.registry)
        .map_err(|e| anyhow::anyhow!("cannot register link metrics: {e}"))?;
    let mut uplink_config =
        vigil_link::UplinkConfig::new(config.node.id.clone(), config.uplink.url.to_string());
    uplink_config.level = Some(vigil_core::Level::Facility);
    if config.uplink.url.tls {
        // [tls] paths are resolved by `check_cmd::load_checked`, which checked them too.
        let tls = config.tls.files(std::path::Path::new(""));
        uplink_config.tls = Some(tls.client_config().map_err(|e| {
            anyhow::anyhow!(
                "[tls]: {e}: run `vigil-agent enroll --hub URL --token -` (the token on standard input) to get this gateway's certificate"
            )
        })?);
        if let Ok(pem) = std::fs::read_to_string(&tls.cert) {
            match vigil_pki::cert::cert_from_pem(&pem, "[tls] cert")
                .and_then(|der| vigil_pki::node_of_certificate(&der))
            {
                Ok(node) if node != config.node.id => tracing::error!(
                    certificate = %node, node = %config.node.id,
                    "[tls] cert was issued to another node: the hub's broker will refuse this gateway's batches and status"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the node of [tls] cert"),
            }
        }
    }
    let devices_total = config.modbus.device.len() as u64;
    let online = metrics.modbus.online.clone();
    let device_ids: Vec<String> = config.modbus.device.iter().map(|d| d.id.clone()).collect();
    // Directives from the hub: a posture raises the window the posture detectors read.
    let posture_window = crate::posture::PostureWindow::default();
    pipeline.set_posture(crate::posture::PostureBook::new(
        &config.posture,
        posture_window.clone(),
    ));
    let directive_store = store.clone();
    let mut uplink = vigil_link::Uplink::new(uplink_config, store, link_metrics)
        .map_err(|e| anyhow::anyhow!("[uplink] url: {e}"))?
        .with_health(move || vigil_link::Health {
            devices_online: device_ids
                .iter()
                .filter(|id| online.with_label_values(&[id.as_str()]).get() > 0)
                .count() as u64,
            devices_total,
            ..Default::default()
        });
    pipeline.set_uplink_poke(uplink.poke_handle());
    let deliveries = uplink.take_deliveries();
    let listener = tokio::net::TcpListener::bind(config.metrics.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} ([metrics] listen): {e}",
                config.metrics.listen
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(node = %config.node.id, site = %config.node.site, http = %addr, "agent starting");
    if let Some(tx) = bound {
        let _ = tx.send(addr);
    }
    // The tasks stop when `shutdown` is cancelled; `tasks` waits for them, within the grace.
    let tasks = vigil_runtime::Shutdown::with_token(shutdown.clone());
    let app = router(AppState {
        metrics: metrics.clone(),
        points: points.clone(),
        alerts: reader,
    });
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "http endpoint failed");
        }
    });

    let (reading_tx, reading_rx) = source::channel();
    let (condition_tx, condition_rx) = source::condition_channel();
    let sinks = modbus::poller::Sinks {
        readings: reading_tx.clone(),
        conditions: condition_tx,
        metrics: metrics.modbus.clone(),
    };
    let devices = config.modbus.device.iter().cloned().zip(profiles).collect();
    modbus::spawn(devices, &sinks, &shutdown, &tasks);
    drop(sinks);
    if !config.mqtt.subscription.is_empty() {
        let (subs, tx, m, stop) = (
            config.mqtt.subscription.clone(),
            reading_tx.clone(),
            metrics.mqtt.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            if let Err(e) = source::mqtt::run(subs, tx, m, stop).await {
                tracing::error!(error = %e, "MQTT source cannot start");
            }
        });
    }
    // Operator actions from the hub, applied by the uplink, go to the alert manager (which
    // closes alerts they returned to normal).
    let (applied_tx, applied_rx): (AppliedTx, _) = mpsc::channel(64);
    if let Some(mut deliveries) = deliveries {
        tasks.spawn(async move {
            while let Some(d) = deliveries.recv().await {
                let mut ids: Vec<AlertId> = d.events.iter().map(|e| e.alert).collect();
                ids.sort_unstable();
                ids.dedup();
                tracing::info!(from = %d.peer, events = d.events.len(), "operator actions applied");
                if applied_tx.send(ids).await.is_err() {
                    break;
                }
            }
        });
    }
    tasks.spawn(crate::posture::run(
        directive_store,
        (config.node.id.clone(), config.node.site.clone()),
        !config.posture.is_empty(),
        posture_window,
        uplink.poke_handle(),
        shutdown.clone(),
    ));
    let link_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = uplink.run(link_shutdown).await {
            tracing::error!(error = %e, "uplink stopped");
        }
    });
    tasks.spawn(drive(
        pipeline,
        reading_rx,
        condition_rx,
        applied_rx,
        points,
        shutdown.clone(),
    ));

    shutdown.cancelled().await;
    tracing::info!("agent stopping");
    let _ = tasks.stop(SHUTDOWN_GRACE).await;
    Ok(())
}
