//! `vigil-agent run`: starts the sources, the point table and the HTTP endpoint, and runs
//! until shutdown.
//!
//! Readings from every source are drained into the [`PointTable`] (the latest value of each
//! point, served at `GET /api/v1/points` so an installer can see data flow) and conditions the
//! sources raise themselves (communication loss) are logged. Detection and the uplink hang
//! off the same channels.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vigil_core::Reading;
use vigil_profile::Profile;

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

/// The agent's HTTP router: `/healthz`, `/metrics`, `/api/v1/points`.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/points", get(points_handler))
        .with_state(state)
}

async fn drain(
    mut readings: ReadingRx,
    mut conditions: ConditionRx,
    points: PointTable,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = readings.recv() => match r {
                Some(r) => {
                    tracing::trace!(point = %r.point, value = %r.value, "reading");
                    points.update(r);
                }
                None => break,
            },
            c = conditions.recv() => match c {
                Some(c) if c.active => tracing::warn!(source = %c.source, kind = %c.kind, severity = %c.severity, message = %c.message, "condition raised"),
                Some(c) => tracing::info!(source = %c.source, kind = %c.kind, message = %c.message, "condition cleared"),
                None => break,
            },
        }
    }
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
    let mut tasks = JoinSet::new();
    let app = router(AppState {
        metrics: metrics.clone(),
        points: points.clone(),
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
    modbus::spawn(devices, &sinks, &shutdown, &mut tasks);
    drop(sinks);
    tasks.spawn(drain(reading_rx, condition_rx, points, shutdown.clone()));

    shutdown.cancelled().await;
    tracing::info!("agent stopping");
    let stopped = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if stopped.is_err() {
        tracing::warn!("some tasks did not stop within 10s");
    }
    Ok(())
}
