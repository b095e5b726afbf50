//! `GET /api/v1/stream`: alert events live, as Server-Sent Events.
//!
//! Each alert event (raised, acknowledged, shelved, … — from this hub's operators or from
//! the children) is one SSE message:
//!
//! ```text
//! event: acknowledged
//! id: 0192f4c0-…
//! data: {"event": {…the AlertEvent…}, "alert": {…the alert as it now is…}}
//! ```
//!
//! A comment line is sent every 15 s while nothing happens (more often when `[http]
//! idle_timeout` is under 30 s: [`keep_alive_for`]), so neither a proxy nor the hub's own
//! idle timer closes a quiet stream.
//! A client that falls behind by more than the live stream's capacity gets
//! `event: lagged` with `data: {"missed": N}` (N: how many messages it lost; `null` when
//! unknown) instead of a silent gap: it should refetch `GET /api/v1/alerts`. The stream ends
//! when the hub shuts down.
//!
//! A client sees only the events of alerts in its scope (and the `lagged` notices, which
//! are everyone's).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream};
use prometheus::IntGauge;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;
use vigil_core::SitePath;

use super::{access, ApiError, AppState};
use crate::auth::{Permission, Principal};
use crate::live::LiveMessage;
use crate::metrics::HubMetrics;

/// How often an idle stream sends a keep-alive comment, at most.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often an idle stream sends a keep-alive comment when the listener closes a
/// connection on which nothing moves for `idle_timeout`: twice per idle timeout, and at
/// most every [`KEEP_ALIVE`], so the hub never cuts its own quiet streams.
pub fn keep_alive_for(idle_timeout: Duration) -> Duration {
    KEEP_ALIVE
        .min(idle_timeout / 2)
        .max(Duration::from_millis(10))
}

/// Counts a connected client for as long as its stream lives.
#[derive(Debug)]
struct ClientGuard(IntGauge);

impl ClientGuard {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        ClientGuard(gauge)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn lagged(missed: Option<u64>) -> Event {
    Event::default()
        .event("lagged")
        .data(serde_json::json!({ "missed": missed }).to_string())
}

/// The next SSE event for one client whose scope is `scope`, or `None` when the stream
/// ends. Updates of alerts outside the scope are skipped.
async fn next_event(
    rx: &mut Receiver<LiveMessage>,
    shutdown: &CancellationToken,
    metrics: &HubMetrics,
    scope: &SitePath,
) -> Option<Event> {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return None,
            m = rx.recv() => m,
        };
        return Some(match message {
            Ok(LiveMessage::Alert(update)) => {
                if !update.site.as_ref().is_some_and(|s| s.is_within(scope)) {
                    continue;
                }
                Event::default()
                    .event(update.name)
                    .id(update.id.to_string())
                    .data(update.data.as_str())
            }
            Ok(LiveMessage::Gap) => lagged(None),
            Err(RecvError::Lagged(missed)) => {
                metrics.sse_lagged.inc_by(missed);
                lagged(Some(missed))
            }
            Err(RecvError::Closed) => return None,
        });
    }
}

/// `GET /api/v1/stream`.
pub async fn stream(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    access::require(&state, &who, Permission::Read, "stream", "stream").await?;
    let scope = who.scope;
    let rx = state.live.subscribe();
    let guard = ClientGuard::new(state.metrics.sse_clients.clone());
    tracing::debug!("stream client connected");
    let events = stream::unfold(
        (
            rx,
            guard,
            state.shutdown.clone(),
            state.metrics.clone(),
            scope,
        ),
        |(mut rx, guard, shutdown, metrics, scope)| async move {
            let event = next_event(&mut rx, &shutdown, &metrics, &scope).await?;
            Some((Ok(event), (rx, guard, shutdown, metrics, scope)))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(state.stream_keep_alive)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::broadcast;
    use vigil_core::EventId;

    use super::*;
    use crate::live::AlertUpdate;

    fn update(n: u8) -> LiveMessage {
        update_at(n, "ministry/gd/gz")
    }

    fn update_at(n: u8, site: &str) -> LiveMessage {
        LiveMessage::Alert(Arc::new(AlertUpdate {
            name: "commented",
            id: EventId::from_bytes([n; 16]),
            data: format!("{{\"n\":{n}}}"),
            site: Some(SitePath::new(site).expect("site")),
        }))
    }

    #[tokio::test]
    async fn a_client_sees_only_its_scope() {
        let (tx, mut rx) = broadcast::channel(8);
        tx.send(update_at(1, "ministry/gd/sz")).expect("a receiver");
        tx.send(update_at(2, "ministry/gdx")).expect("a receiver");
        tx.send(update_at(3, "ministry/gd/gz/baiyun"))
            .expect("a receiver");
        let shutdown = CancellationToken::new();
        let scope = SitePath::new("ministry/gd/gz").expect("site");
        let next = next_event(&mut rx, &shutdown, &HubMetrics::new(), &scope)
            .await
            .expect("an event");
        assert!(text(next).await.contains("data: {\"n\":3}"));
    }

    /// The wire form of an event.
    async fn text(event: Event) -> String {
        use axum::response::IntoResponse;
        let stream = stream::iter([Ok::<_, Infallible>(event)]);
        let response = Sse::new(stream).into_response();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn a_slow_client_is_told_it_lagged_then_catches_up() {
        let (tx, mut rx) = broadcast::channel(2);
        for n in 1..=5 {
            tx.send(update(n)).expect("a receiver");
        }
        let shutdown = CancellationToken::new();
        let metrics = HubMetrics::new();
        let scope = SitePath::new("ministry").expect("site");
        let lag = next_event(&mut rx, &shutdown, &metrics, &scope)
            .await
            .expect("an event");
        assert_eq!(text(lag).await, "event: lagged\ndata: {\"missed\":3}\n\n");
        assert_eq!(metrics.sse_lagged.get(), 3);
        let next = next_event(&mut rx, &shutdown, &metrics, &scope)
            .await
            .expect("an event");
        assert!(text(next).await.contains("data: {\"n\":4}"));

        tx.send(LiveMessage::Gap).expect("a receiver");
        let _ = next_event(&mut rx, &shutdown, &metrics, &scope).await;
        let gap = next_event(&mut rx, &shutdown, &metrics, &scope)
            .await
            .expect("an event");
        assert_eq!(
            text(gap).await,
            "event: lagged\ndata: {\"missed\":null}\n\n"
        );

        shutdown.cancel();
        assert!(next_event(&mut rx, &shutdown, &metrics, &scope)
            .await
            .is_none());
    }
}
