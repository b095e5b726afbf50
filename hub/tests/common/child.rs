//! A child of the hub under test, linked as a real one is: enrolled with a site binding
//! ([`enroll`], as `vigil-hub enroll-token --node ID --site SITE` and `vigil-agent enroll`
//! do), then a [`Child`] — its own store and the vigil-link uplink an agent runs, over mTLS
//! through the hub's gate with that certificate. What it sends is whatever is put on its
//! `parent` outbox (a forger's too); what the hub sends down is applied to its store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_core::{AlertEvent, AlertId, AlertView, Lane, NodeId, Severity, SitePath};
use vigil_link::{
    BackoffConfig, LinkMetrics, OutboxPoke, SenderConfig, SharedStore, Uplink, UplinkConfig,
};
use vigil_pki::rustls::ClientConfig;
use vigil_store::Store;
use vigil_wire::LinkEvent;

use super::{Gateway, Hub};

/// Enrolls gateway `id` at `hub` bound to `site`: a token, a key made here, the
/// certificate; the TLS client config that presents it.
pub async fn enroll(hub: &Hub, id: &str, site: &str) -> Arc<ClientConfig> {
    enroll_as(hub, id, site, vigil_store::NodeKind::Gateway).await
}

/// [`enroll`] as a `kind` of node (a child hub: `enroll-token --kind hub`, `vigil-hub
/// enroll`).
pub async fn enroll_as(
    hub: &Hub,
    id: &str,
    site: &str,
    kind: vigil_store::NodeKind,
) -> Arc<ClientConfig> {
    let pki = hub.link.security.pki.clone();
    let config = hub.config.clone();
    let node = NodeId::new(id).expect("node id");
    let (n, s) = (node.clone(), SitePath::new(site).expect("site"));
    let token = hub
        .link
        .store
        .call(move |store| {
            Ok(vigil_hub::enroll::token::issue(
                store,
                &pki,
                &config,
                &n,
                &s,
                kind,
                Duration::from_secs(600),
                "cli:test",
            )
            .expect("token")
            .token)
        })
        .await
        .expect("store");
    let request = vigil_pki::node_key_and_csr(&node).expect("csr");
    let enrolled = vigil_pki::enroll_as(
        &format!("http://{}", hub.addr),
        &token,
        &request.csr_pem,
        &node,
        match kind {
            vigil_store::NodeKind::Hub => vigil_pki::EnrollKind::Hub,
            vigil_store::NodeKind::Gateway => vigil_pki::EnrollKind::Gateway,
        },
        Duration::from_secs(10),
    )
    .await
    .expect("enrolled");
    vigil_pki::client_config(
        &enrolled.ca_pem,
        Some((&enrolled.certificate_pem, &request.key_pem)),
    )
    .expect("client config")
}

/// A child's link: its own store, its uplink to the hub with its certificate.
pub struct Child {
    /// Builds its events.
    pub events: Gateway,
    /// Its store.
    pub store: SharedStore,
    poke: OutboxPoke,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Child {
    /// Starts `id`'s link to the broker at `url` with `tls` (from [`enroll`]).
    pub fn start(id: &str, site: &str, url: &str, tls: Arc<ClientConfig>) -> Child {
        Child::start_with(id, site, url, tls, Vec::new())
    }

    /// [`Child::start`] with `bindings` in every status it publishes (as a forger would
    /// put them: a gateway has no subtree).
    pub fn start_with(
        id: &str,
        site: &str,
        url: &str,
        tls: Arc<ClientConfig>,
        bindings: Vec<vigil_wire::BindingStatus>,
    ) -> Child {
        Child::start_reporting(id, site, url, tls, Arc::new(Mutex::new(bindings)), None)
    }

    /// [`Child::start_with`] reporting whatever `bindings` holds when each status is
    /// published (a child hub whose subtree changes), every `status_interval` when given.
    pub fn start_reporting(
        id: &str,
        site: &str,
        url: &str,
        tls: Arc<ClientConfig>,
        bindings: Arc<Mutex<Vec<vigil_wire::BindingStatus>>>,
        status_interval: Option<Duration>,
    ) -> Child {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SharedStore::new(Store::open(dir.path().join("agent.db")).expect("store"));
        let events = Gateway::new(id, site);
        let mut config = UplinkConfig::new(events.node.clone(), url);
        config.tls = Some(tls);
        config.backoff = BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
        };
        config.sender = SenderConfig {
            ack_timeout: Duration::from_secs(1),
            ..SenderConfig::default()
        };
        config.poll_interval = Duration::from_millis(100);
        if let Some(every) = status_interval {
            config.status_interval = every;
        }
        let metrics = LinkMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let uplink = Uplink::new(config, store.clone(), metrics)
            .expect("uplink")
            .with_health(move || vigil_link::Health {
                bindings: bindings
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
                ..vigil_link::Health::default()
            });
        let poke = uplink.poke_handle();
        let shutdown = CancellationToken::new();
        tokio::spawn(uplink.run(shutdown.clone()));
        Child {
            events,
            store,
            poke,
            shutdown,
            _dir: dir,
        }
    }

    /// Puts `items` on the `parent` outbox (critical lane), in this order, as one append
    /// (one batch when the link is idle), and wakes the link. Nothing is stored here.
    pub async fn send(&self, items: Vec<LinkEvent>) {
        self.store
            .call(move |s| {
                let payloads: Vec<(Lane, Vec<u8>)> = items
                    .iter()
                    .map(|e| (Lane::Critical, serde_json::to_vec(e).expect("encode")))
                    .collect();
                s.outbox_append_many("parent", payloads)?;
                Ok(())
            })
            .await
            .expect("append");
        self.poke.poke();
    }

    /// A raise of `source` by this child at its own site (critical, not latching).
    pub fn raise(&mut self, source: &str) -> (AlertId, AlertEvent) {
        let alert = AlertId::generate();
        let event = self
            .events
            .raise(alert, source, "state", Severity::Critical, false);
        (alert, event)
    }

    /// Records `events` as an agent does: stored here and queued for the hub (critical
    /// lane), in one transaction; then wakes the link.
    pub async fn record(&self, events: Vec<AlertEvent>) {
        self.store
            .call(move |s| {
                let items: Vec<(Lane, AlertEvent)> =
                    events.into_iter().map(|e| (Lane::Critical, e)).collect();
                s.record_events("parent", &items)
            })
            .await
            .expect("recorded");
        self.poke.poke();
    }

    /// Whether everything on the outbox was acknowledged by the hub.
    pub async fn drained(&self) -> bool {
        self.store
            .call(|s| {
                Ok(s.outbox_lane_state("parent", Lane::Critical)?
                    .backlog_records
                    + s.outbox_lane_state("parent", Lane::Normal)?.backlog_records)
            })
            .await
            .expect("backlog")
            == 0
    }

    /// The alert as this child holds it.
    pub async fn alert(&self, alert: AlertId) -> Option<AlertView> {
        self.store
            .call(move |s| s.alert(alert))
            .await
            .expect("read")
    }

    /// The alert's events as this child holds them, in fold order.
    pub async fn events_of(&self, alert: AlertId) -> Vec<AlertEvent> {
        self.store
            .call(move |s| s.alert_events(alert))
            .await
            .expect("read")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
