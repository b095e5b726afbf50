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
//! A comment line is sent every 15 s while nothing happens, so proxies keep the connection.
//! A client that falls behind by more than the feed's capacity gets
//! `event: lagged` with `data: {"missed": N}` (N: how many messages it lost; `null` when
//! unknown) instead of a silent gap: it should refetch `GET /api/v1/alerts`. The stream ends
//! when the hub shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use prometheus::IntGauge;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::feed::FeedMessage;
use crate::metrics::HubMetrics;

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

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

/// The next SSE event for one client, or `None` when the stream ends.
async fn next_event(
    rx: &mut Receiver<FeedMessage>,
    shutdown: &CancellationToken,
    metrics: &HubMetrics,
) -> Option<Event> {
    let message = tokio::select! {
        () = shutdown.cancelled() => return None,
        m = rx.recv() => m,
    };
    Some(match message {
        Ok(FeedMessage::Alert(update)) => Event::default()
            .event(update.name)
            .id(update.id.to_string())
            .data(update.data.as_str()),
        Ok(FeedMessage::Gap) => lagged(None),
        Err(RecvError::Lagged(missed)) => {
            metrics.sse_lagged.inc_by(missed);
            lagged(Some(missed))
        }
        Err(RecvError::Closed) => return None,
    })
}

/// `GET /api/v1/stream`.
pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.feed.subscribe();
    let guard = ClientGuard::new(state.metrics.sse_clients.clone());
    tracing::debug!("stream client connected");
    let events = stream::unfold(
        (rx, guard, state.shutdown.clone(), state.metrics.clone()),
        |(mut rx, guard, shutdown, metrics)| async move {
            let event = next_event(&mut rx, &shutdown, &metrics).await?;
            Some((Ok(event), (rx, guard, shutdown, metrics)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::broadcast;
    use vigil_core::EventId;

    use super::*;
    use crate::feed::AlertUpdate;

    fn update(n: u8) -> FeedMessage {
        FeedMessage::Alert(Arc::new(AlertUpdate {
            name: "commented",
            id: EventId::from_bytes([n; 16]),
            data: format!("{{\"n\":{n}}}"),
        }))
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
        let lag = next_event(&mut rx, &shutdown, &metrics)
            .await
            .expect("an event");
        assert_eq!(text(lag).await, "event: lagged\ndata: {\"missed\":3}\n\n");
        assert_eq!(metrics.sse_lagged.get(), 3);
        let next = next_event(&mut rx, &shutdown, &metrics)
            .await
            .expect("an event");
        assert!(text(next).await.contains("data: {\"n\":4}"));

        tx.send(FeedMessage::Gap).expect("a receiver");
        let _ = next_event(&mut rx, &shutdown, &metrics).await;
        let gap = next_event(&mut rx, &shutdown, &metrics)
            .await
            .expect("an event");
        assert_eq!(
            text(gap).await,
            "event: lagged\ndata: {\"missed\":null}\n\n"
        );

        shutdown.cancel();
        assert!(next_event(&mut rx, &shutdown, &metrics).await.is_none());
    }
}
