//! One broker connection: the thin async shell around the routes. It owns the rumqttc event
//! loop of one broker, subscribes every route's filter (QoS 1) on each connection, hands each
//! message to the route whose filter takes it, sends the readings on (waiting while the
//! channel is full), publishes the Sparkplug rebirth requests the routes ask for (NCMD, QoS
//! 0, not retained, on this same connection), keeps the `connected` gauges, and reconnects
//! with backoff when the broker goes away — until shutdown, or until nobody receives
//! readings any more.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use vigil_core::Timestamp;
use vigil_runtime::backoff::{Backoff, BackoffConfig};

use super::route::Route;
use crate::config::mqtt::SubscriptionBroker;
use crate::source::ReadingTx;

/// Reconnect delays: 200 ms doubling to 30 s, each drawn from the upper half of its step so
/// that gateways that lost the same broker do not all come back at the same instant.
const RECONNECT: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(30),
};

/// How often the broker is pinged when nothing else is said.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The largest message taken (Sparkplug births of big edge nodes run to hundreds of KiB).
const MAX_INCOMING: usize = 1024 * 1024;
/// The largest packet sent (subscriptions and rebirth requests, a few dozen bytes each).
const MAX_OUTGOING: usize = 64 * 1024;
/// Requests queued to the event loop: one subscribe, one disconnect, and rebirth requests
/// (at most one per edge node every 5 s; a burst when the agent meets many unborn nodes at
/// once). A request that finds the queue full is dropped with a warning and asked again
/// after the period.
const REQUESTS: usize = 256;
/// How long shutdown waits for the DISCONNECT to go out.
const GOODBYE: Duration = Duration::from_millis(500);

/// What made [`BrokerConnection::deliver`] stop.
enum Stop {
    Shutdown,
    ChannelClosed,
}

/// One broker and the subscriptions on it.
#[derive(Debug)]
pub struct BrokerConnection {
    url: SubscriptionBroker,
    client_id: String,
    routes: Vec<Route>,
}

/// A client id unique to this process and connection, within MQTT 3.1.1's 23 characters.
pub fn client_id(index: usize) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let nonce = nanos ^ std::process::id().rotate_left(16);
    format!("vigil-agent-{nonce:08x}{index:x}")
}

impl BrokerConnection {
    /// The connection to `url` (as `client_id`) carrying `routes`.
    pub fn new(url: SubscriptionBroker, client_id: String, routes: Vec<Route>) -> Self {
        BrokerConnection {
            url,
            client_id,
            routes,
        }
    }

    /// The broker.
    pub fn url(&self) -> &SubscriptionBroker {
        &self.url
    }

    fn set_connected(&self, up: bool) {
        for r in &self.routes {
            r.set_connected(up);
        }
    }

    fn options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(
            &self.client_id,
            &self.url.address.host,
            self.url.address.port,
        );
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING);
        if let Some(login) = &self.url.login {
            options.set_credentials(&login.username, login.password.clone().unwrap_or_default());
        }
        options
    }

    /// Runs until `shutdown` is cancelled or `readings` is closed.
    pub async fn run(mut self, readings: ReadingTx, shutdown: CancellationToken) {
        let (client, mut events) = AsyncClient::new(self.options(), REQUESTS);
        let filters: Vec<SubscribeFilter> = self
            .routes
            .iter()
            .map(|r| SubscribeFilter::new(r.filter().as_str().to_owned(), QoS::AtLeastOnce))
            .collect();
        let mut backoff = Backoff::new(RECONNECT);
        let mut subscribe = false;
        let mut up = false;
        let mut failures: u64 = 0;
        self.set_connected(false);
        loop {
            if subscribe {
                match client.try_subscribe_many(filters.clone()) {
                    Ok(()) => subscribe = false,
                    Err(e) => {
                        warn!(broker = %self.url, error = %e, "cannot queue the MQTT subscriptions; retrying")
                    }
                }
            }
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                event = events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    info!(broker = %self.url, subscriptions = self.routes.len(), attempts = failures + 1, "connected to the MQTT broker");
                    up = true;
                    failures = 0;
                    backoff.reset();
                    subscribe = true;
                    self.set_connected(true);
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    for (code, route) in ack.return_codes.iter().zip(&self.routes) {
                        match code {
                            SubscribeReasonCode::Success(qos) => {
                                debug!(broker = %self.url, subscription = route.filter().as_str(), ?qos, "subscribed");
                            }
                            SubscribeReasonCode::Failure => {
                                error!(broker = %self.url, subscription = route.filter().as_str(),
                                    "the broker refused the subscription (check its access control)");
                            }
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    match self
                        .deliver(
                            &client,
                            &publish.topic,
                            &publish.payload,
                            &readings,
                            &shutdown,
                        )
                        .await
                    {
                        Ok(()) => {}
                        Err(Stop::Shutdown) => break,
                        Err(Stop::ChannelClosed) => {
                            info!(broker = %self.url, "nobody receives readings any more: MQTT source stops");
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let delay = backoff.next_delay(rand::random::<f64>());
                    // Warn on the first failure, then on attempts 2, 4, 8… (debug between).
                    if up || (failures + 1).is_power_of_two() {
                        warn!(broker = %self.url, error = %e, retry_in = ?delay, "MQTT broker connection lost; reconnecting");
                    } else {
                        debug!(broker = %self.url, error = %e, attempt = failures + 1, retry_in = ?delay, "MQTT broker still unreachable");
                    }
                    up = false;
                    failures += 1;
                    subscribe = false;
                    self.set_connected(false);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.set_connected(false);
        if up {
            goodbye(&client, &mut events).await;
        }
        info!(broker = %self.url, "MQTT source stopped");
    }

    /// Decodes one message with the first route that takes its topic, queues the rebirth
    /// request it may call for, and sends the readings.
    async fn deliver(
        &mut self,
        client: &AsyncClient,
        topic: &str,
        payload: &[u8],
        readings: &ReadingTx,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        let now = Timestamp::now();
        let Some((route, captures)) = self
            .routes
            .iter_mut()
            .find_map(|r| r.captures(topic).map(|c| (r, c)))
        else {
            debug!(broker = %self.url, topic, "a message no subscription takes");
            return Ok(());
        };
        let handled = route.handle(topic, &captures, payload, now);
        if let Some(rebirth) = handled.rebirth {
            // Never wait here: the event loop that drains the queue is this task's.
            match client.try_publish(
                rebirth.topic(),
                QoS::AtMostOnce,
                false,
                rebirth.payload(now),
            ) {
                Ok(()) => route.rebirth_requested(&rebirth),
                Err(e) => {
                    warn!(broker = %self.url, subscription = route.filter().as_str(),
                        edge_node_id = rebirth.edge_node_id.as_str(), error = %e,
                        "cannot queue a Sparkplug rebirth request; asking again later")
                }
            }
        }
        for reading in handled.readings {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Err(Stop::Shutdown),
                sent = readings.send(reading) => sent.map_err(|_| Stop::ChannelClosed)?,
            }
        }
        Ok(())
    }
}

/// Sends DISCONNECT, so the broker knows this was no failure, waiting briefly for it to go.
async fn goodbye(client: &AsyncClient, events: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let _ = tokio::time::timeout(GOODBYE, async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_fit_mqtt_3_1_1() {
        for i in [0, 1, 15] {
            let id = client_id(i);
            assert!(id.len() <= 23, "{id}");
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{id}"
            );
        }
    }
}
