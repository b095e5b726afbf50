//! The simulated MQTT sensors: one broker connection per `[[mqtt]]` entry, publishing JSON
//! telemetry, plain numbers or Sparkplug B at an interval, with scripted `malformed` and
//! `silent` faults.
//!
//! A connection that fails is retried with backoff (100 ms doubling to 5 s); each new MQTT
//! session of a Sparkplug node gets the next `bdSeq`, in its will and its NBIRTH. The payloads
//! themselves are built by pure code in [`payload`] and [`sparkplug`].

pub mod payload;
pub mod sparkplug;

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;
use vigil_runtime::backoff::{Backoff, BackoffConfig};

use crate::clock::Clock;
use crate::config::{MqttConfig, MqttFormat};
use crate::fault::{FaultAction, FaultPlan};
use crate::scenario::noise_key;
use crate::stats::MqttCounters;
use payload::{Field, Message};
use sparkplug::Session;

/// The broker URL: the one parser of every Vigil config ([`vigil_config::BrokerUrl`]).
pub use vigil_config::BrokerUrl;

/// A broker URL the simulator cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a broker URL at all.
    #[error(transparent)]
    Invalid(#[from] vigil_config::BrokerUrlError),
    /// `mqtts://`: the simulator has no certificates.
    #[error("{0:?}: the simulator speaks plain MQTT: write mqtt://host[:port], e.g. mqtt://127.0.0.1:1883")]
    Tls(String),
}

/// Parses an `[[mqtt]] url`: `mqtt://host[:port]` ([`BrokerUrl::parse`]), plain MQTT only.
pub fn plain_broker(url: &str) -> Result<BrokerUrl, UrlError> {
    let broker = BrokerUrl::parse(url)?;
    if broker.tls {
        return Err(UrlError::Tls(url.to_owned()));
    }
    Ok(broker)
}

/// One simulated MQTT sensor (or Sparkplug edge node) and its connection.
#[derive(Debug)]
pub struct Sensor {
    config: MqttConfig,
    broker: BrokerUrl,
    fields: Vec<Field>,
    devices: Vec<(String, Vec<Field>)>,
    faults: FaultPlan,
    rng: StdRng,
    counters: Arc<MqttCounters>,
    clock: Clock,
}

/// Reconnect delays: the shared backoff's ([`vigil_runtime::backoff`]) whole steps, 100 ms
/// doubling to 5 s — without jitter, so that a run with a seed stays reproducible.
const RECONNECT: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

fn epoch_ms() -> i64 {
    vigil_core::Timestamp::now().as_millis()
}

fn epoch_ms_u64() -> u64 {
    u64::try_from(epoch_ms()).unwrap_or(0)
}

impl Sensor {
    /// A sensor from its validated config.
    pub fn new(
        config: MqttConfig,
        seed: u64,
        counters: Arc<MqttCounters>,
        clock: Clock,
    ) -> Result<Sensor, UrlError> {
        let broker = plain_broker(&config.url)?;
        let fields = Field::all(&config.id, &config.fields, seed);
        let devices = config
            .devices
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    Field::all(&format!("{}/{}", config.id, d.id), &d.fields, seed),
                )
            })
            .collect();
        Ok(Sensor {
            faults: FaultPlan::new(&config.faults),
            rng: StdRng::seed_from_u64(noise_key(seed, &config.id, "#faults")),
            broker,
            fields,
            devices,
            counters,
            clock,
            config,
        })
    }

    fn qos(&self) -> QoS {
        if self.config.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        }
    }

    fn session(&self, bd_seq: u64) -> Option<Session> {
        (self.config.format == MqttFormat::SparkplugB).then(|| {
            Session::new(
                self.config.group.as_deref().unwrap_or("vigil"),
                &self.config.id,
                bd_seq,
                self.fields.clone(),
                self.devices.clone(),
            )
        })
    }

    fn options(&self, session: Option<&Session>) -> MqttOptions {
        let client_id = self
            .config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("vigil-sim-{}", self.config.id));
        let mut options = MqttOptions::new(client_id, self.broker.host.clone(), self.broker.port);
        options.set_keep_alive(Duration::from_secs(15));
        options.set_clean_session(true);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some(s) = session {
            let death = s.death(epoch_ms_u64());
            options.set_last_will(LastWill::new(
                death.topic,
                death.payload,
                QoS::AtLeastOnce,
                false,
            ));
        }
        options
    }

    /// Publishes until `shutdown`, reconnecting with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut bd_seq: u64 = 0;
        let mut backoff = Backoff::new(RECONNECT);
        // Failed attempts in a row: the first is a warning, the retries are debug.
        let mut failures: u64 = 0;
        while !shutdown.is_cancelled() {
            let mut session = self.session(bd_seq);
            let (client, mut eventloop) = AsyncClient::new(self.options(session.as_ref()), 256);
            match self.connect(&mut eventloop, &shutdown, failures).await {
                None => return,
                Some(false) => {
                    failures += 1;
                    self.counters.error();
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff.next_step()) => {}
                    }
                    continue;
                }
                Some(true) => {}
            }
            backoff.reset();
            failures = 0;
            self.counters.connected();
            tracing::info!(sensor = %self.config.id, broker = %self.config.url, bd_seq, "MQTT connected");
            let closed = self
                .session_loop(&client, &mut eventloop, session.as_mut(), &shutdown)
                .await;
            if closed {
                return;
            }
            bd_seq = (bd_seq + 1) % 256;
        }
    }

    /// Waits for the broker's CONNACK: `Some(true)` connected, `Some(false)` failed, `None`
    /// shut down.
    async fn connect(
        &self,
        eventloop: &mut EventLoop,
        shutdown: &CancellationToken,
        failures: u64,
    ) -> Option<bool> {
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Some(true),
                Ok(_) => {}
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(sensor = %self.config.id, broker = %self.config.url, error = %e, "MQTT connection failed; retrying with backoff up to 5s");
                    } else {
                        tracing::debug!(sensor = %self.config.id, broker = %self.config.url, error = %e, failures, "MQTT connection failed again");
                    }
                    return Some(false);
                }
            }
        }
    }

    fn publish(&self, client: &AsyncClient, message: Message) {
        match client.try_publish(
            message.topic,
            self.qos(),
            self.config.retain,
            message.payload,
        ) {
            Ok(()) => self.counters.published(),
            Err(e) => {
                self.counters.error();
                tracing::warn!(sensor = %self.config.id, error = %e, "publish failed");
            }
        }
    }

    /// The messages of one interval at `t`.
    fn tick_messages(&self, session: Option<&mut Session>, t: Duration) -> Vec<Message> {
        let id = &self.config.id;
        match (self.config.format, session) {
            (MqttFormat::SparkplugB, Some(s)) => s.data(t, epoch_ms_u64()),
            (MqttFormat::Number, _) => {
                let template = self
                    .config
                    .topic
                    .as_deref()
                    .unwrap_or("facility/env/{id}/{field}");
                payload::numbers(template, id, &self.fields, t)
            }
            _ => {
                let template = self
                    .config
                    .topic
                    .as_deref()
                    .unwrap_or("facility/env/{id}/telemetry");
                vec![payload::json(
                    payload::topic(template, id, ""),
                    epoch_ms(),
                    &self.fields,
                    t,
                )]
            }
        }
    }

    /// One MQTT session; `true` when shut down, `false` when the connection broke.
    async fn session_loop(
        &mut self,
        client: &AsyncClient,
        eventloop: &mut EventLoop,
        mut session: Option<&mut Session>,
        shutdown: &CancellationToken,
    ) -> bool {
        if let Some(s) = session.as_deref_mut() {
            if let Err(e) = client.try_subscribe(s.command_topic(), QoS::AtLeastOnce) {
                tracing::warn!(sensor = %self.config.id, error = %e, "cannot subscribe to NCMD");
            }
            for m in s.births(self.clock.elapsed(), epoch_ms_u64()) {
                self.publish(client, m);
            }
        }
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    if let Some(s) = session.as_deref() {
                        // A clean shutdown announces the death itself (the will is for crashes).
                        self.publish(client, s.death(epoch_ms_u64()));
                    }
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(Duration::from_millis(500), async {
                        while eventloop.poll().await.is_ok() {}
                    })
                    .await;
                    return true;
                }
                _ = ticker.tick() => {
                    let t = self.clock.elapsed();
                    let hit = self.faults.hit(t, &mut self.rng);
                    match hit.action {
                        Some(FaultAction::Silent) => {
                            self.counters.suppressed();
                            tracing::debug!(sensor = %self.config.id, "silent fault: nothing published");
                        }
                        Some(FaultAction::Malformed) => {
                            let messages = self.tick_messages(session.as_deref_mut(), t);
                            let topic = messages.into_iter().next().map(|m| m.topic);
                            if let Some(topic) = topic {
                                let len = self.rng.random_range(1..48);
                                let random: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
                                tracing::debug!(sensor = %self.config.id, %topic, "malformed fault: garbage published");
                                self.counters.malformed();
                                self.publish(client, Message { topic, payload: payload::garbage(&random) });
                            }
                        }
                        _ => {
                            for m in self.tick_messages(session.as_deref_mut(), t) {
                                self.publish(client, m);
                            }
                        }
                    }
                }
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(s) = session.as_deref_mut() {
                            if Session::is_rebirth(&p.payload) {
                                tracing::info!(sensor = %self.config.id, "rebirth requested");
                                for m in s.births(self.clock.elapsed(), epoch_ms_u64()) {
                                    self.publish(client, m);
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.counters.error();
                        tracing::warn!(sensor = %self.config.id, error = %e, "MQTT connection lost; reconnecting");
                        return false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser itself is tested in vigil-config; here: only plain MQTT is accepted.
    #[test]
    fn broker_urls() {
        assert_eq!(
            plain_broker("mqtt://[::1]:1885"),
            Ok(BrokerUrl {
                tls: false,
                host: "::1".into(),
                port: 1885
            })
        );
        assert!(matches!(plain_broker("mqtts://x:1"), Err(UrlError::Tls(_))));
        for bad in ["mqtt://x:port", "mqtt://", "tcp://x:1"] {
            let err = plain_broker(bad).expect_err(bad);
            assert!(matches!(err, UrlError::Invalid(_)), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
