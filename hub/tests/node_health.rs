//! Node health as alarms, end to end on loopback (docs/ARCHITECTURE.md#node-health-alarms):
//! real hubs (`vigil_hub::run::run`, in process, each with its embedded broker behind the
//! mTLS gate) and gateways simulated with `vigil_link::Uplink` over their own stores, as the
//! agent runs it.
//!
//! - a county under a city: a gateway that is killed (its last will) raises `node_offline`
//!   at the county, which goes up to the city (the built-in rule) and clears at both when
//!   the gateway returns; a gateway that goes silent (connected, no status, no traffic for
//!   `[link] offline_after`) raises `node_offline` too, and a rule (`site = …, escalate =
//!   false`) keeps it at the county; each alert's detail says whether it went up; the
//!   county's live stream shows the alarms;
//! - a gateway reporting a backlog past `[link] backlog_alarm` raises `link_backlog`,
//!   cleared once it has drained below half;
//! - a node whose publish the broker gate refuses raises a `security` alarm about it
//!   (docs/ARCHITECTURE.md#the-mtls-gate), which goes up by the built-in rule.
//!
//! Every test is bounded ([`common::LIMIT`]); every wait gives up after
//! [`common::PATIENCE`].

mod common;

use std::path::Path;
use std::time::Duration;

use common::{bounded, eventually, Gateway, Hub, SseReader, PRISON_3, PRISON_4};
use hyper::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertId, Severity};
use vigil_link::{
    BackoffConfig, Health, LinkError, LinkMetrics, OutboxPoke, SenderConfig, SharedStore, Uplink,
    UplinkConfig,
};
use vigil_store::Store;

const COUNTY_SITE: &str = "ministry/gd/gz/baiyun";

/// A hub's config: `id` at `level` (and `site`), HTTP and the embedded broker on free
/// ports, `parent` (a broker URL) if any, `extra` appended.
fn hub_toml(
    store: &Path,
    id: &str,
    level: &str,
    site: &str,
    parent: Option<&str>,
    extra: &str,
) -> String {
    let parent = parent
        .map(|url| format!("[parent]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} command centre\"\n\
         site = \"{site}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [mqtt]\nlisten = \"127.0.0.1:0\"\n\n{parent}\n[store]\npath = {:?}\n{extra}",
        store.display().to_string()
    )
}

/// A client TLS config for `node` with a certificate from `hub`'s CA.
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
/// for it, as `vigil-hub enroll` does.
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

/// How a simulated gateway's uplink behaves.
struct Behaviour {
    /// How often it republishes its status.
    status_interval: Duration,
    /// The most events in one batch.
    batch: usize,
    /// Info alerts queued in its outbox before it connects.
    queued: usize,
}

impl Behaviour {
    /// A chatty gateway: status every second.
    fn chatty() -> Behaviour {
        Behaviour {
            status_interval: Duration::from_secs(1),
            batch: 500,
            queued: 0,
        }
    }
}

/// A gateway: the agent's uplink over its own store, to a hub's broker over mTLS.
struct Gw {
    events: Gateway,
    store: SharedStore,
    poke: OutboxPoke,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), LinkError>>,
    _dir: tempfile::TempDir,
}

impl Gw {
    async fn start(hub: &Hub, id: &str, site: &str, behaviour: Behaviour) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SharedStore::new(Store::open(dir.path().join("agent.db")).expect("store"));
        let mut events = Gateway::new(id, site);
        if behaviour.queued > 0 {
            let batch: Vec<_> = (0..behaviour.queued)
                .map(|i| {
                    let event = events.raise(
                        AlertId::generate(),
                        &format!("env-{i}/temperature"),
                        "limit_h",
                        Severity::Info,
                        false,
                    );
                    (Severity::Info.lane(), event)
                })
                .collect();
            store
                .call(move |s| s.record_events("parent", &batch))
                .await
                .expect("queue the backlog");
        }
        let mut config = UplinkConfig::new(events.node.clone(), hub.broker.clone());
        config.tls = Some(node_tls(hub, id));
        config.backoff = BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        };
        config.sender = SenderConfig {
            ack_timeout: Duration::from_secs(2),
            window: 1,
            max_batch_events: behaviour.batch,
            ..SenderConfig::default()
        };
        config.keep_alive = Duration::from_secs(5);
        config.status_interval = behaviour.status_interval;
        config.poll_interval = Duration::from_millis(200);
        let metrics = LinkMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let uplink = Uplink::new(config, store.clone(), metrics)
            .expect("uplink")
            .with_health(|| Health {
                devices_online: 1,
                devices_total: 1,
                ..Health::default()
            });
        let poke = uplink.poke_handle();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()));
        Gw {
            events,
            store,
            poke,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Raises an alert as the agent does: recorded on the `parent` outbox, uplink poked.
    async fn raise(&mut self, source: &str) -> AlertId {
        let alert = AlertId::generate();
        let event = self
            .events
            .raise(alert, source, "state", Severity::Minor, false);
        self.store
            .call(move |s| s.record_events("parent", &[(Severity::Minor.lane(), event)]))
            .await
            .expect("record the raise");
        self.poke.poke();
        alert
    }

    /// Kills the gateway: its connection drops without a DISCONNECT (the broker sends its
    /// last will).
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

/// `hub`'s own alarm of `kind` about `node` (open or not), if it lists one.
async fn alarm(hub: &Hub, node: &str, kind: &str) -> Option<Value> {
    let key = format!("{}/node/{node}/{kind}", hub.config.node.id);
    let (status, body) = hub
        .get(&format!(
            "/api/v1/alerts?closed=any&limit=1000&node={}",
            hub.config.node.id
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["key"] == key)
        .cloned()
}

/// Waits until `hub` lists its alarm of `kind` about `node` with `active`; returns it.
async fn alarm_in_state(hub: &Hub, node: &str, kind: &str, active: bool) -> Value {
    eventually(
        &format!(
            "{kind} about {node} at {} to be active={active}",
            hub.config.node.id
        ),
        || async {
            alarm(hub, node, kind)
                .await
                .filter(|a| a["active"] == active)
        },
    )
    .await
}

/// Waits until `hub` holds alert `id` with `active`; returns its detail.
async fn detail_in_state(hub: &Hub, id: &str, active: bool) -> Value {
    eventually(
        &format!("alert {id} at {} to be active={active}", hub.config.node.id),
        || async {
            let (status, body) = hub.get(&format!("/api/v1/alerts/{id}")).await;
            (status == StatusCode::OK && body["active"] == active).then_some(body)
        },
    )
    .await
}

/// Waits until `hub` holds `alert`.
async fn listed(hub: &Hub, alert: AlertId) {
    eventually(
        &format!("alert {alert} at {}", hub.config.node.id),
        || async {
            let (status, _) = hub.get(&format!("/api/v1/alerts/{alert}")).await;
            (status == StatusCode::OK).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_child_is_an_alarm_that_goes_up_by_the_policy_and_clears_when_it_returns()
{
    bounded(async {
        let city = Hub::start_config(
            |store| {
                hub_toml(
                    store,
                    "city-guangzhou",
                    "city",
                    "ministry/gd/gz",
                    None,
                    &format!("\n[[child]]\nnode = \"county-baiyun\"\nsite = \"{COUNTY_SITE}\"\nkind = \"hub\"\n"),
                )
            },
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
                    COUNTY_SITE,
                    Some(&city.broker),
                    &format!(
                        "\n[link]\noffline_after = \"2s\"\n\n\
                         [[escalation.rule]]\nsite = \"{PRISON_4}\"\nescalate = false\n\n\
                         [[child]]\nnode = \"gw-prison-3\"\nsite = \"{PRISON_3}\"\n\n\
                         [[child]]\nnode = \"gw-prison-4\"\nsite = \"{PRISON_4}\"\n"
                    ),
                )
            },
            &[],
        )
        .await;

        // The county's live stream, before anything happens.
        let resp = county.send("GET", "/api/v1/stream", &[], "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut sse = SseReader::new(resp.into_body());

        // Prison 4's gateway connects, publishes its status once and then says nothing.
        let quiet = Behaviour {
            status_interval: Duration::from_secs(3600),
            ..Behaviour::chatty()
        };
        let mut gw4 = Gw::start(&county, "gw-prison-4", PRISON_4, quiet).await;
        let silent = alarm_in_state(&county, "gw-prison-4", "node_offline", true).await;
        assert_eq!(silent["site"], PRISON_4, "{silent}");
        assert_eq!(silent["severity"], "major");
        assert!(
            silent["message"]
                .as_str()
                .is_some_and(|m| m.contains("offline_after")),
            "{silent}"
        );
        let id4 = silent["id"].as_str().expect("id").to_owned();

        // Prison 3's gateway connects (its alert arrives), then dies.
        let mut gw3 = Gw::start(&county, "gw-prison-3", PRISON_3, Behaviour::chatty()).await;
        let door = gw3.raise("door-3/forced").await;
        listed(&county, door).await;
        gw3.kill().await;
        let dead = alarm_in_state(&county, "gw-prison-3", "node_offline", true).await;
        assert_eq!(dead["site"], PRISON_3, "{dead}");
        assert_eq!(
            dead["source"]["node"], "county-baiyun",
            "raised by the county"
        );
        assert_eq!(dead["source"]["subject"], "gw-prison-3", "{dead}");
        let id3 = dead["id"].as_str().expect("id").to_owned();

        // It goes up to the city (the built-in rule), after the silent one would have: both
        // travel in the critical lane, in order. The silent one stayed (rule 0).
        let at_city = detail_in_state(&city, &id3, true).await;
        assert_eq!(
            at_city["key"],
            "county-baiyun/node/gw-prison-3/node_offline"
        );
        let (status, _) = city.get(&format!("/api/v1/alerts/{id4}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "prison 4's alarm stays");
        let (_, detail3) = county.get(&format!("/api/v1/alerts/{id3}")).await;
        assert_eq!(detail3["escalation"]["escalated"], true, "{detail3}");
        assert!(
            detail3["escalation"]["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("built-in")),
            "{detail3}"
        );
        let (_, detail4) = county.get(&format!("/api/v1/alerts/{id4}")).await;
        assert_eq!(detail4["escalation"]["escalated"], false, "{detail4}");
        assert_eq!(detail4["escalation"]["rule"], "escalation.rule[0]");
        assert_eq!(detail4["escalation"]["parent"], true);

        // The live stream carried the raises (and nothing forces them to come first).
        let mut seen = Vec::new();
        for _ in 0..100 {
            let m = sse.next().await.expect("a stream message");
            let data: Value = serde_json::from_str(&m.data).expect("json");
            if m.event == "raised" && data["alert"]["source"]["node"] == "county-baiyun" {
                seen.push(data["alert"]["id"].as_str().expect("id").to_owned());
            }
            if seen.contains(&id3) && seen.contains(&id4) {
                break;
            }
        }
        assert!(seen.contains(&id3) && seen.contains(&id4), "{seen:?}");

        // Both come back: the alarms clear, at the county and (prison 3's) at the city.
        let gw3 = Gw::start(&county, "gw-prison-3", PRISON_3, Behaviour::chatty()).await;
        detail_in_state(&county, &id3, false).await;
        detail_in_state(&city, &id3, false).await;
        gw4.raise("door-1/forced").await;
        detail_in_state(&county, &id4, false).await;
        // One alert per child and kind: the same ones, not new ones.
        assert_eq!(
            alarm(&county, "gw-prison-3", "node_offline")
                .await
                .expect("listed")["id"],
            id3.as_str()
        );

        gw3.stop().await;
        gw4.stop().await;
        county.stop().await;
        city.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_with_a_long_backlog_raises_link_backlog_until_it_drains() {
    bounded(async {
        let county = Hub::start_config(
            |store| {
                hub_toml(
                    store,
                    "county-baiyun",
                    "county",
                    COUNTY_SITE,
                    None,
                    &format!(
                        "\n[link]\nbacklog_alarm = 100\n\n\
                         [[child]]\nnode = \"gw-prison-3\"\nsite = \"{PRISON_3}\"\n"
                    ),
                )
            },
            &[],
        )
        .await;
        // 300 alerts waiting, sent 50 at a time, one batch in flight: the status it
        // publishes on connecting, before it sends anything, reports 300 waiting; it drains
        // in six round trips, and its next status reports none.
        let backlogged = Behaviour {
            batch: 50,
            queued: 300,
            ..Behaviour::chatty()
        };
        let gw = Gw::start(&county, "gw-prison-3", PRISON_3, backlogged).await;
        let raised = alarm_in_state(&county, "gw-prison-3", "link_backlog", true).await;
        assert_eq!(raised["severity"], "minor");
        assert_eq!(raised["site"], PRISON_3);
        assert!(
            raised["message"]
                .as_str()
                .is_some_and(|m| m.contains("backlog_alarm = 100")),
            "{raised}"
        );
        let cleared = alarm_in_state(&county, "gw-prison-3", "link_backlog", false).await;
        assert_eq!(cleared["id"], raised["id"]);
        let (_, detail) = county
            .get(&format!(
                "/api/v1/alerts/{}",
                raised["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(detail["escalation"]["parent"], false, "{detail}");
        assert_eq!(detail["escalation"]["escalated"], false);
        gw.stop().await;
        county.stop().await;
    })
    .await;
}

/// An MQTT 3.1.1 CONNECT with a clean session and `client_id`.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A];
    variable.extend_from_slice(&u16::try_from(client_id.len()).expect("short").to_be_bytes());
    variable.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(variable.len()).expect("short")];
    packet.extend_from_slice(&variable);
    packet
}

/// An MQTT 3.1.1 PUBLISH at QoS 0 (a short one: one byte of remaining length).
fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut variable = u16::try_from(topic.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    variable.extend_from_slice(topic.as_bytes());
    variable.extend_from_slice(payload);
    let mut packet = vec![0x30, u8::try_from(variable.len()).expect("short")];
    packet.extend_from_slice(&variable);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_gate_refuses_is_a_security_alarm_about_the_node() {
    bounded(async {
        let county = Hub::start_config(
            |store| {
                hub_toml(
                    store,
                    "county-baiyun",
                    "county",
                    COUNTY_SITE,
                    None,
                    &format!("\n[[child]]\nnode = \"gw-prison-3\"\nsite = \"{PRISON_3}\"\n"),
                )
            },
            &[],
        )
        .await;
        // gw-prison-3, with a certificate from the county's CA, publishes on another
        // gateway's topic.
        let addr = county.broker.trim_start_matches("mqtts://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&addr).await.expect("tcp");
        let name = vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(node_tls(&county, "gw-prison-3"))
            .connect(name, tcp)
            .await
            .expect("tls");
        tls.write_all(&connect_packet("gw-prison-3"))
            .await
            .expect("connect");
        let mut connack = [0u8; 4];
        tls.read_exact(&mut connack).await.expect("connack");
        tls.write_all(&publish_packet("vigil/v1/up/gw-prison-4/critical", b"{}"))
            .await
            .expect("publish");
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest)).await;

        let alarm = alarm_in_state(&county, "gw-prison-3", "security", true).await;
        assert_eq!(alarm["severity"], "major");
        assert_eq!(alarm["site"], PRISON_3, "at the node's bound site");
        assert_eq!(alarm["value"], 1, "one denial");
        let message = alarm["message"].as_str().expect("message");
        assert!(
            message.contains("mqtt_denied") && message.contains("gw-prison-4"),
            "{message}"
        );
        let (_, detail) = county
            .get(&format!(
                "/api/v1/alerts/{}",
                alarm["id"].as_str().expect("id")
            ))
            .await;
        assert!(
            detail["escalation"]["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("built-in")),
            "{detail}"
        );
        county.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_with_a_foreign_certificate_are_a_security_alarm_about_the_broker() {
    bounded(async {
        let county = Hub::start_config(
            |store| hub_toml(store, "county-baiyun", "county", COUNTY_SITE, None, ""),
            &[],
        )
        .await;
        // A client whose certificate comes from another CA, naming a node the county knows
        // nothing of: refused at the handshake, so no node to blame — the alarm is about
        // the county's own broker.
        let dir = tempfile::tempdir().expect("tempdir");
        let foreign = vigil_pki::Ca::load_or_create(dir.path(), "elsewhere").expect("foreign CA");
        let node = vigil_core::NodeId::new("gw-intruder").expect("node");
        let request = vigil_pki::node_key_and_csr(&node).expect("csr");
        let cert = foreign
            .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
            .expect("issue");
        let ca_pem = county.link.security.pki.ca().cert_pem().to_owned();
        let tls = vigil_pki::client_config(&ca_pem, Some((&cert.cert_pem, &request.key_pem)))
            .expect("client config");
        let addr = county.broker.trim_start_matches("mqtts://").to_owned();
        for _ in 0..3 {
            let tcp = tokio::net::TcpStream::connect(&addr).await.expect("tcp");
            let name =
                vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp),
            )
            .await;
            if let Ok(Ok(mut stream)) = result {
                // TLS 1.3: the client may finish before the server refuses its
                // certificate; the refusal shows as the connection closing.
                let _ = stream.write_all(&connect_packet("gw-intruder")).await;
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                    .await;
            }
        }
        alarm_in_state(&county, "county-baiyun", "security", true).await;
        // The counters are sampled every 10 s: the three may be reported in two samples.
        let alarm = eventually("the alarm to count the three refusals", || async {
            alarm(&county, "county-baiyun", "security")
                .await
                .filter(|a| a["value"] == 3)
        })
        .await;
        assert_eq!(alarm["severity"], "major");
        let message = alarm["message"].as_str().expect("message");
        assert!(
            message.contains("handshake_refused") && message.contains("unknown_ca"),
            "{message}"
        );
        county.stop().await;
    })
    .await;
}
