//! The polling tasks: one per TCP device, one per RTU bus (its devices served in turn).
//!
//! Each device keeps its own schedule and [`Health`]. A device that stops answering raises a
//! communication-loss condition once and is then only probed, with backoff; on an RTU bus this
//! bounds what a silent device costs the others to one timeout per probe.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_core::{Condition, ConditionKind, Severity, Timestamp, Value};
use vigil_profile::Profile;

use super::health::{Health, Transition};
use super::link::Link;
use super::plan::ReadRequest;
use super::scan::{scan, ScanOutcome, ScanParams};
use crate::metrics::ModbusMetrics;
use crate::source::{ConditionTx, ReadingTx};

/// Where a poller's output goes.
#[derive(Debug, Clone)]
pub struct Sinks {
    pub readings: ReadingTx,
    pub conditions: ConditionTx,
    pub metrics: ModbusMetrics,
}

/// One device's polling state.
#[derive(Debug)]
pub struct DevicePoller {
    pub id: String,
    pub profile: Profile,
    pub requests: Vec<ReadRequest>,
    pub params: ScanParams,
    pub poll: Duration,
    pub zone: Option<String>,
    pub health: Health,
    pub next_due: Instant,
}

impl DevicePoller {
    /// Scans once (or probes, while lost), publishes the result, and schedules the next scan.
    /// Returns `false` when the agent is shutting down.
    pub async fn poll_once(
        &mut self,
        link: &mut Link,
        sinks: &Sinks,
        shutdown: &CancellationToken,
    ) -> bool {
        let started = Instant::now();
        let probing = self.health.is_lost();
        let outcome = scan(
            link,
            &self.id,
            &self.profile,
            &self.requests,
            self.params,
            probing,
        )
        .await;
        self.record(&outcome, sinks);
        let transition = self.health.on_scan(outcome.answered);
        sinks
            .metrics
            .online
            .with_label_values(&[self.id.as_str()])
            .set(i64::from(self.health.is_online()));
        if let Some(t) = transition {
            let condition = self.comm_condition(t, &outcome, link);
            match t {
                Transition::Lost => {
                    tracing::warn!(device = %self.id, endpoint = %link.endpoint, unit = self.params.unit, reason = %condition.message, "modbus device lost")
                }
                Transition::Restored => {
                    tracing::info!(device = %self.id, endpoint = %link.endpoint, unit = self.params.unit, "modbus device restored")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                r = sinks.conditions.send(condition) => if r.is_err() { return false },
            }
        }
        // A probe that answered is followed at once by a full scan.
        let delay = if probing && outcome.answered {
            Duration::ZERO
        } else {
            self.health.next_delay(self.poll)
        };
        for reading in outcome.readings {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                r = sinks.readings.send(reading) => if r.is_err() { return false },
            }
        }
        // Scans start `delay` apart; a scan that overran starts the next at once, without a
        // burst of catch-up scans.
        self.next_due = started + delay;
        true
    }

    fn record(&self, outcome: &ScanOutcome, sinks: &Sinks) {
        let m = &sinks.metrics;
        let id = self.id.as_str();
        m.requests.with_label_values(&[id]).inc_by(outcome.requests);
        for e in &outcome.errors {
            m.errors.with_label_values(&[id, e.kind()]).inc();
            tracing::debug!(device = id, kind = e.kind(), error = %e, "modbus read failed");
        }
        for rtt in &outcome.rtts {
            m.rtt.with_label_values(&[id]).observe(rtt.as_secs_f64());
        }
        m.points_read
            .with_label_values(&[id])
            .inc_by(outcome.readings.len() as u64);
        m.scans.with_label_values(&[id]).inc();
    }

    fn comm_condition(&self, t: Transition, outcome: &ScanOutcome, link: &Link) -> Condition {
        let active = t == Transition::Lost;
        let message = if active {
            let why = outcome
                .errors
                .last()
                .map_or_else(|| "no answer".to_owned(), ToString::to_string);
            format!(
                "Communication lost with {} ({} unit {}): {why}",
                self.id, link.endpoint, self.params.unit
            )
        } else {
            format!(
                "Communication restored with {} ({} unit {})",
                self.id, link.endpoint, self.params.unit
            )
        };
        Condition {
            source: self.id.clone(),
            kind: ConditionKind::new(ConditionKind::COMM_LOSS).expect("a constant kind is valid"),
            active,
            severity: Severity::Major,
            value: Some(Value::Bool(!active)),
            message,
            ts: Timestamp::now(),
            zone: self.zone.clone(),
            latching: false,
            evidence: Vec::new(),
        }
    }
}

/// Polls one TCP device until shutdown.
pub async fn run_device(
    mut device: DevicePoller,
    mut link: Link,
    sinks: Sinks,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(device.next_due) => {}
        }
        if !device.poll_once(&mut link, &sinks, &shutdown).await {
            break;
        }
    }
}

/// Polls the devices of one RTU bus in turn until shutdown: always the device most overdue.
pub async fn run_bus(
    mut devices: Vec<DevicePoller>,
    mut link: Link,
    sinks: Sinks,
    shutdown: CancellationToken,
) {
    if devices.is_empty() {
        return;
    }
    loop {
        let (i, due) = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.next_due))
            .min_by_key(|(_, due)| *due)
            .unwrap_or((0, Instant::now()));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        if !devices[i].poll_once(&mut link, &sinks, &shutdown).await {
            break;
        }
    }
}
