//! The hub's MQTT side end to end, on loopback, against real brokers: a gateway simulated
//! with `vigil_link::Uplink` over its own SQLite store (as the agent runs it) delivers to a
//! real `vigil-hub run` (in process), and operator actions flow back down.
//!
//! - one level, the embedded broker: raises reach the API and the live stream, the tree
//!   shows the gateway online, an ack over the API reaches the gateway exactly once, and a
//!   gateway that dies is shown offline (its last will);
//! - two levels, each hub with its own embedded broker (the county's `[parent] url` is the
//!   city's broker): raises reach the city through the county, below `min_severity` they
//!   stay at the county, an ack at the city reaches the gateway through the county, one at
//!   the county reaches the city;
//! - one level with Mosquitto as the external broker (`[mqtt] url`).
//!
//! Every test is bounded ([`common::LIMIT`]); every wait gives up after [`common::PATIENCE`].

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child as Process, Command, Stdio};
use std::time::Duration;

use common::{bounded, eventually, Gateway, Hub, SseReader, PATIENCE, PRISON_3};
use hyper::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertEventBody, AlertId, AlertView, Severity};
use vigil_hub::auth::Role;
use vigil_link::{
    BackoffConfig, Delivery, Health, LinkError, LinkMetrics, OutboxPoke, SenderConfig, SharedStore,
    Uplink, UplinkConfig,
};
use vigil_store::Store;

/// A hub's config: `id` at `level`, HTTP and the embedded broker on free ports (or
/// `mqtt`, a whole `[mqtt]` section), `parent` (a broker URL) if any, `extra` appended. Its
/// child is bound to its site (docs/ARCHITECTURE.md#site-bindings-and-admission): the city's
/// `county-baiyun` to the county, any other hub's `gw-prison-3` to prison 3.
fn hub_toml(
    store: &Path,
    id: &str,
    level: &str,
    mqtt: Option<&str>,
    parent: Option<&str>,
    extra: &str,
) -> String {
    let mqtt = mqtt.unwrap_or("listen = \"127.0.0.1:0\"");
    let parent = parent
        .map(|url| format!("[parent]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    let (child, site, kind) = match id {
        "city-guangzhou" => ("county-baiyun", "ministry/gd/gz/baiyun", "hub"),
        _ => ("gw-prison-3", PRISON_3, "gateway"),
    };
    format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} command centre\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\n{mqtt}\n\n{parent}\n\
         [store]\npath = {:?}\n\n[[child]]\nnode = \"{child}\"\nsite = \"{site}\"\nkind = \"{kind}\"\n{extra}",
        store.display().to_string()
    )
}

/// A county hub (`county-baiyun`) on the embedded broker, or on `mqtt`.
async fn county(parent: Option<&str>, mqtt: Option<&str>) -> Hub {
    Hub::start_config(
        |store| hub_toml(store, "county-baiyun", "county", mqtt, parent, ""),
        &[],
    )
    .await
}

/// A client TLS config for `node` with a certificate from `hub`'s CA, as enrollment
/// (`tests/enroll.rs`) gives one.
fn node_tls(hub: &Hub, node: &str) -> std::sync::Arc<vigil_pki::rustls::ClientConfig> {
    let node = vigil_core::NodeId::new(node).expect("node");
    let request = vigil_pki::node_key_and_csr(&node).expect("csr");
    let ca = hub.link.security.pki.ca();
    let cert = ca
        .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
        .expect("issue");
    vigil_pki::client_config(ca.cert_pem(), Some((&cert.cert_pem, &request.key_pem)))
        .expect("client config")
}

/// Writes `node`'s identity from `parent`'s CA where a hub whose store is `store` looks
/// for it (`parent/` next to the store), as `vigil-hub enroll` does.
fn write_parent_identity(parent: &Hub, store: &Path, node: &str) {
    let node = vigil_core::NodeId::new(node).expect("node");
    let request = vigil_pki::node_key_and_csr(&node).expect("csr");
    let ca = parent.link.security.pki.ca();
    let cert = ca
        .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
        .expect("issue");
    let dir = store.parent().expect("dir").join("parent");
    std::fs::create_dir_all(&dir).expect("mkdir");
    vigil_pki::write_private_key(&dir.join("node.key"), &request.key_pem).expect("key");
    vigil_pki::write_certificate(&dir.join("node.pem"), &cert.cert_pem).expect("cert");
    vigil_pki::write_certificate(&dir.join("ca.pem"), ca.cert_pem()).expect("ca");
}

/// A gateway: the agent's uplink over its own store, to a hub's broker.
struct Gw {
    events: Gateway,
    store: SharedStore,
    poke: OutboxPoke,
    deliveries: mpsc::Receiver<Delivery>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), LinkError>>,
    _dir: tempfile::TempDir,
}

impl Gw {
    /// `gw-prison-3` at prison 3, linked to the broker at `url` (with `tls` for the hub's
    /// mTLS gate), reporting 19 of 20 devices answering.
    fn start(url: &str, tls: Option<std::sync::Arc<vigil_pki::rustls::ClientConfig>>) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SharedStore::new(Store::open(dir.path().join("agent.db")).expect("store"));
        let events = Gateway::new("gw-prison-3", PRISON_3);
        let mut config = UplinkConfig::new(events.node.clone(), url);
        config.tls = tls;
        config.backoff = BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        };
        config.sender = SenderConfig {
            ack_timeout: Duration::from_secs(1),
            ..SenderConfig::default()
        };
        config.keep_alive = Duration::from_secs(5);
        config.status_interval = Duration::from_secs(1);
        config.poll_interval = Duration::from_millis(200);
        let metrics = LinkMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let mut uplink = Uplink::new(config, store.clone(), metrics)
            .expect("uplink")
            .with_health(|| Health {
                devices_online: 19,
                devices_total: 20,
                ..Health::default()
            });
        let poke = uplink.poke_handle();
        let deliveries = uplink.take_deliveries().expect("deliveries");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()));
        Gw {
            events,
            store,
            poke,
            deliveries,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Raises an alert as the agent's alert manager does: recorded on the `parent`
    /// outbox, in its severity's lane, and the uplink poked.
    async fn raise(&mut self, source: &str, severity: Severity) -> AlertId {
        let alert = AlertId::generate();
        let event = self.events.raise(alert, source, "state", severity, false);
        self.store
            .call(move |s| s.record_events("parent", &[(severity.lane(), event)]))
            .await
            .expect("record the raise");
        self.poke.poke();
        alert
    }

    /// The alert as the gateway's store folds it.
    async fn view(&self, alert: AlertId) -> Option<AlertView> {
        self.store
            .call(move |s| s.alert(alert))
            .await
            .expect("read the alert")
    }

    /// How many acknowledgements of `alert` the gateway's store holds.
    async fn acks(&self, alert: AlertId) -> usize {
        let events = self
            .store
            .call(move |s| s.alert_events(alert))
            .await
            .expect("read the events");
        events
            .iter()
            .filter(|e| matches!(e.body, AlertEventBody::Acknowledged { .. }))
            .count()
    }

    /// Waits until `alert` is acknowledged here; returns who acknowledged it (the event's
    /// origin node).
    async fn acknowledged(&self, alert: AlertId) -> String {
        eventually("the gateway to receive the ack", || async {
            self.view(alert)
                .await
                .filter(|v| v.acknowledged)
                .map(|_| ())
        })
        .await;
        let events = self
            .store
            .call(move |s| s.alert_events(alert))
            .await
            .expect("read the events");
        events
            .iter()
            .find(|e| matches!(e.body, AlertEventBody::Acknowledged { .. }))
            .map(|e| e.origin.to_string())
            .expect("an ack")
    }

    /// Asserts that the uplink delivered exactly one acknowledgement of `alert`: waits for
    /// the first, then gives a resend time to show up.
    async fn delivered_once(&mut self, alert: AlertId) {
        let count = |delivery: &Delivery| {
            delivery
                .events
                .iter()
                .filter(|e| e.alert == alert)
                .filter(|e| matches!(e.body, AlertEventBody::Acknowledged { .. }))
                .count()
        };
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen == 0 {
            match tokio::time::timeout_at(deadline, self.deliveries.recv()).await {
                Ok(Some(delivery)) => seen += count(&delivery),
                Ok(None) => panic!("the gateway's deliveries closed"),
                Err(_) => panic!("no delivery of the ack in time"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        while let Ok(delivery) = self.deliveries.try_recv() {
            seen += count(&delivery);
        }
        assert_eq!(seen, 1, "the ack was delivered {seen} times");
    }

    /// Kills the gateway: its connection drops without a DISCONNECT.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops it cleanly.
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Whether `GET /api/v1/alerts` (every state) of `hub` lists `alert`.
async fn lists(hub: &Hub, alert: AlertId) -> bool {
    let (status, body) = hub.get("/api/v1/alerts?closed=any&limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .any(|a| a["id"] == alert.to_string())
}

/// Waits until `hub` lists `alert`; returns it.
async fn listed(hub: &Hub, alert: AlertId, what: &str) -> Value {
    eventually(what, || async {
        let (status, body) = hub.get(&format!("/api/v1/alerts/{alert}")).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await
}

/// The tree's direct child `id` of `hub`, once it is in `state`.
async fn child_in_state(hub: &Hub, id: &str, state: &str) -> Value {
    eventually(&format!("{id} to be {state} in the tree"), || async {
        let (status, tree) = hub.get("/api/v1/tree").await;
        assert_eq!(status, StatusCode::OK, "{tree}");
        tree["children"]
            .as_array()
            .expect("children")
            .iter()
            .find(|c| c["id"] == id && c["state"] == state)
            .cloned()
    })
    .await
}

/// A metric sample line of `hub`'s `/metrics` starting with `prefix`, once there is one.
async fn metric_line(hub: &Hub, prefix: &str) -> String {
    eventually(&format!("the metric {prefix}"), || async {
        let (_, _, text) = hub.get_text("/metrics").await;
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
    })
    .await
}

/// POSTs an ack of `alert` at `hub` as `user` (an operator over the whole network, signed
/// in for it).
async fn ack(hub: &Hub, alert: AlertId, user: &str) {
    let session = hub.session(user, Role::Operator, "ministry").await;
    let (status, body) = hub
        .post(
            &format!("/api/v1/alerts/{alert}/ack"),
            &session.headers(),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_delivers_and_an_ack_comes_back_over_the_embedded_broker() {
    bounded(async {
        let hub = county(None, None).await;
        assert!(
            hub.broker.starts_with("mqtts://127.0.0.1:"),
            "{}",
            hub.broker
        );
        // The live stream, before anything arrives.
        let resp = hub.send("GET", "/api/v1/stream", &[], "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut sse = SseReader::new(resp.into_body());

        let mut gw = Gw::start(&hub.broker, Some(node_tls(&hub, "gw-prison-3")));
        let fence = gw
            .raise("fence-north/zone1_alarm", Severity::Critical)
            .await;
        let temp = gw.raise("env-1/temperature", Severity::Minor).await;

        // The API lists both, as raised at the gateway.
        let alert = listed(&hub, fence, "the fence alarm at the hub").await;
        assert_eq!(alert["key"], "gw-prison-3/fence-north/zone1_alarm/state");
        assert_eq!(alert["severity"], "critical");
        assert_eq!(alert["state"], "active_unack");
        assert_eq!(alert["site"], PRISON_3);
        listed(&hub, temp, "the temperature alarm at the hub").await;
        assert!(lists(&hub, fence).await && lists(&hub, temp).await);

        // The stream carried both raises.
        let mut raised = Vec::new();
        while raised.len() < 2 {
            let m = sse.next().await.expect("a stream message");
            assert_eq!(m.event, "raised", "{}", m.data);
            let data: Value = serde_json::from_str(&m.data).expect("JSON data");
            raised.push(data["alert"]["id"].as_str().expect("id").to_owned());
        }
        raised.sort();
        let mut want = vec![fence.to_string(), temp.to_string()];
        want.sort();
        assert_eq!(raised, want);

        // The tree shows the gateway online with what its status says.
        let gw_node = child_in_state(&hub, "gw-prison-3", "online").await;
        assert_eq!(gw_node["devices_online"], 19);
        assert_eq!(gw_node["devices_total"], 20);
        assert_eq!(gw_node["alerts"]["open"], 2);

        // An operator acknowledges at the hub: the gateway gets it, once.
        ack(&hub, fence, "li.na").await;
        assert_eq!(gw.acknowledged(fence).await, "county-baiyun");
        let m = sse.next().await.expect("the ack on the stream");
        assert_eq!(m.event, "acknowledged");
        eventually("the downlink to be acknowledged by the gateway", || async {
            let (_, tree) = hub.get("/api/v1/tree").await;
            let backlog = &tree["children"][0]["downlink_backlog"];
            (backlog["critical"] == 0 && backlog["normal"] == 0).then_some(())
        })
        .await;
        gw.delivered_once(fence).await;
        assert_eq!(gw.acks(fence).await, 1, "stored once");

        // The link metrics are in the hub's /metrics.
        metric_line(&hub, "vigil_link_state{link=\"downlinks\"} 2").await;
        metric_line(
            &hub,
            "vigil_link_events_received_total{link=\"child:gw-prison-3\",outcome=\"applied\"} 2",
        )
        .await;
        metric_line(
            &hub,
            "vigil_link_batches_acked_total{lane=\"critical\",link=\"child:gw-prison-3\"} 1",
        )
        .await;

        // The gateway dies: its last will turns it offline.
        gw.kill().await;
        child_in_state(&hub, "gw-prison-3", "offline").await;
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_levels_escalate_up_and_acks_come_down_through_the_county() {
    bounded(async {
        let city = Hub::start_config(
            |store| hub_toml(store, "city-guangzhou", "city", None, None, ""),
            &[],
        )
        .await;
        let county = Hub::start_config(
            |store| {
                write_parent_identity(&city, store, "county-baiyun");
                hub_toml(
                    store,
                    "county-baiyun",
                    "county",
                    None,
                    Some(&city.broker),
                    "\n[escalation]\nmin_severity = \"minor\"\n",
                )
            },
            &[],
        )
        .await;
        let mut gw = Gw::start(&county.broker, Some(node_tls(&county, "gw-prison-3")));

        // A warning stays at the county; a critical alarm goes up to the city.
        let ups = gw.raise("ups-1/on_battery", Severity::Warning).await;
        let fence = gw
            .raise("fence-north/zone1_alarm", Severity::Critical)
            .await;
        listed(&county, ups, "the warning at the county").await;
        let at_city = listed(&city, fence, "the fence alarm at the city").await;
        assert_eq!(at_city["key"], "gw-prison-3/fence-north/zone1_alarm/state");
        assert_eq!(at_city["state"], "active_unack");
        // A minor alarm raised after the warning was judged: once it is at the city, the
        // normal lane has gone up past where the warning would have been.
        let temp = gw.raise("env-1/temperature", Severity::Minor).await;
        listed(&city, temp, "the minor alarm at the city").await;
        let (status, _) = city.get(&format!("/api/v1/alerts/{ups}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a warning is not escalated");
        assert!(!lists(&city, ups).await);
        metric_line(
            &county,
            "vigil_link_events_forwarded_total{lane=\"critical\"} 1",
        )
        .await;

        // The city sees the county online; the county sees the gateway.
        child_in_state(&city, "county-baiyun", "online").await;
        child_in_state(&county, "gw-prison-3", "online").await;

        // An ack at the city reaches the gateway through the county, once.
        ack(&city, fence, "zhang.wei").await;
        assert_eq!(gw.acknowledged(fence).await, "city-guangzhou");
        let at_county = listed(&county, fence, "the fence alarm at the county").await;
        assert_eq!(at_county["acknowledged"], true);
        gw.delivered_once(fence).await;
        assert_eq!(gw.acks(fence).await, 1, "stored once");

        // An ack at the county goes down to the gateway and up to the city.
        ack(&county, temp, "wang.fang").await;
        assert_eq!(gw.acknowledged(temp).await, "county-baiyun");
        eventually("the county's ack at the city", || async {
            let (_, alert) = city.get(&format!("/api/v1/alerts/{temp}")).await;
            (alert["acknowledged"] == true).then_some(())
        })
        .await;
        // An action on an alert the city never got is not sent up either.
        ack(&county, ups, "wang.fang").await;
        gw.acknowledged(ups).await;
        assert!(!lists(&city, ups).await);

        gw.stop().await;
        county.stop().await;
        city.stop().await;
    })
    .await;
}

/// A Mosquitto process on a free loopback port, with a config of its own; killed when
/// dropped.
struct Mosquitto {
    process: Process,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts `/usr/sbin/mosquitto` and waits until it listens.
    fn start() -> Mosquitto {
        const BINARY: &str = "/usr/sbin/mosquitto";
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: install Mosquitto (apt-get install mosquitto) to run this test"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_type error\nlog_dest stderr\n"
            ),
        )
        .expect("write mosquitto.conf");
        let process = Command::new(BINARY)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let mosquitto = Mosquitto {
            process,
            port,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mosquitto
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_delivers_and_an_ack_comes_back_over_mosquitto() {
    bounded(async {
        let mosquitto = Mosquitto::start();
        let url = mosquitto.url();
        let hub = county(None, Some(&format!("url = \"{url}\""))).await;
        assert_eq!(hub.broker, url);
        let mut gw = Gw::start(&url, None);
        let fence = gw
            .raise("fence-north/zone1_alarm", Severity::Critical)
            .await;
        let alert = listed(&hub, fence, "the fence alarm at the hub").await;
        assert_eq!(alert["state"], "active_unack");
        child_in_state(&hub, "gw-prison-3", "online").await;

        ack(&hub, fence, "li.na").await;
        assert_eq!(gw.acknowledged(fence).await, "county-baiyun");
        gw.delivered_once(fence).await;
        assert_eq!(gw.acks(fence).await, 1, "stored once");

        gw.kill().await;
        child_in_state(&hub, "gw-prison-3", "offline").await;
        hub.stop().await;
    })
    .await;
}

/// Runs a hub on `config(store path)` and returns its start error.
async fn start_error(config: impl FnOnce(&Path) -> String) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("hub.toml");
    std::fs::write(&toml, config(&dir.path().join("hub.db"))).expect("write config");
    let config = vigil_hub::config::HubConfig::load(&toml).expect("valid config");
    let result = tokio::time::timeout(
        PATIENCE,
        vigil_hub::run::run(config, CancellationToken::new(), None),
    )
    .await
    .expect("the start fails in time");
    format!("{:#}", result.expect_err("the start fails"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_cannot_run_or_a_parent_that_cannot_be_reached_stops_the_start() {
    bounded(async {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let mqtt = format!("listen = \"{addr}\"");
        let err =
            start_error(|store| hub_toml(store, "county-baiyun", "county", Some(&mqtt), None, ""))
                .await;
        assert!(err.contains("[mqtt] listen"), "{err}");

        let err = start_error(|store| {
            hub_toml(
                store,
                "county-baiyun",
                "county",
                None,
                Some("mqtts://127.0.0.1:8883"),
                "",
            )
        })
        .await;
        assert!(
            err.contains("[parent] url") && err.contains("mqtts"),
            "{err}"
        );
    })
    .await;
}
