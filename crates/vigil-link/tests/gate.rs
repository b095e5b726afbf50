//! The mTLS gate in front of the embedded broker, over real rustls on loopback with
//! certificates from vigil-pki: the link works through it, and each refusal the ACL and the
//! TLS verifier promise happens (docs/ARCHITECTURE.md#the-mtls-gate).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{bounded, metric, node, wait_until, Child, Dirs, Parent, PATIENCE};
use prometheus::Registry;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration,
    Transport,
};
use tokio::sync::mpsc;
use vigil_core::Lane;
use vigil_link::gate::{Action, DenialReason, GateMetrics, SecureBroker, SecureBrokerConfig};
use vigil_link::{Denial, MqttCredentials};
use vigil_pki::{node_key_and_csr, Ca, IssuedCert, Revocations};
use vigil_wire::NodeState;

const YEAR: Duration = Duration::from_secs(365 * 86400);

/// A hub's CA, its gated broker, and the gate's metrics.
struct Hub {
    _dir: tempfile::TempDir,
    ca: Ca,
    broker: SecureBroker,
    registry: Registry,
    denials: mpsc::Receiver<Denial>,
}

impl Hub {
    async fn start() -> Hub {
        Hub::start_with(|_| {}).await
    }

    /// A hub whose gate settings `adjust` changes.
    async fn start_with(adjust: impl FnOnce(&mut SecureBrokerConfig)) -> Hub {
        common::init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(&dir.path().join("pki"), "test hub CA").expect("ca");
        let server = ca
            .issue_server(&["127.0.0.1".to_owned(), "localhost".to_owned()], YEAR)
            .expect("server certificate");
        let mut config = SecureBrokerConfig::from_pem(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            ca.cert_pem(),
            &server.cert_pem,
            &server.key_pem,
            Revocations::new(),
        )
        .expect("config");
        config.handshake_timeout = Duration::from_secs(5);
        // Repeated denials of a node come as one record when this window closes.
        config.denial_window = Duration::from_millis(300);
        adjust(&mut config);
        let registry = Registry::new();
        let mut broker = SecureBroker::start(config, GateMetrics::new(&registry).expect("metrics"))
            .await
            .expect("start");
        let denials = broker.take_denials().expect("denials");
        Hub {
            _dir: dir,
            ca,
            broker,
            registry,
            denials,
        }
    }

    /// A certificate for `id` from this hub's CA, and the TLS config that presents it.
    fn node_tls(&self, id: &str) -> (Arc<rustls::ClientConfig>, IssuedCert) {
        node_tls(&self.ca, &self.ca, id, None)
    }

    fn handshake_failures(&self, reason: &str) -> f64 {
        metric(
            &self.registry,
            "vigil_gate_handshake_failures_total",
            &[("reason", reason)],
        )
    }

    fn refused(&self, reason: &str) -> f64 {
        metric(
            &self.registry,
            "vigil_gate_refused_total",
            &[("reason", reason)],
        )
    }

    async fn next_denial(&mut self) -> Denial {
        tokio::time::timeout(PATIENCE, self.denials.recv())
            .await
            .expect("a denial in time")
            .expect("denials open")
    }
}

/// A certificate for `id` issued by `issuer`, with a client config trusting `trusted`.
fn node_tls(
    trusted: &Ca,
    issuer: &Ca,
    id: &str,
    validity: Option<(SystemTime, SystemTime)>,
) -> (Arc<rustls::ClientConfig>, IssuedCert) {
    let node = node(id);
    let request = node_key_and_csr(&node).expect("csr");
    let issued = match validity {
        None => issuer.issue_node(&request.csr_pem, &node, YEAR),
        Some((from, to)) => issuer.issue_node_with_validity(&request.csr_pem, &node, from, to),
    }
    .expect("issue");
    let tls = vigil_pki::client_config(
        trusted.cert_pem(),
        Some((&issued.cert_pem, &request.key_pem)),
    )
    .expect("client config");
    (tls, issued)
}

/// A bare MQTT client through the gate (TLS) or on the internal broker (plain).
fn client(
    addr: SocketAddr,
    client_id: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    login: Option<&MqttCredentials>,
) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    if let Some(login) = login {
        options.set_credentials(login.username.clone(), login.password.clone());
    }
    AsyncClient::new(options, 16)
}

/// Polls until the broker's CONNACK (Ok) or the first error (Err).
async fn connects(eventloop: &mut EventLoop) -> Result<(), String> {
    let attempt = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return if ack.code == rumqttc::ConnectReturnCode::Success {
                        Ok(())
                    } else {
                        Err(format!("refused: {:?}", ack.code))
                    };
                }
                Ok(_) => {}
                Err(err) => return Err(err.to_string()),
            }
        }
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("an answer in time")
}

/// Polls until the connection fails; panics if it does not within `PATIENCE`. Returns the
/// incoming publishes seen before.
async fn until_dropped(eventloop: &mut EventLoop) -> (ConnectionError, Vec<rumqttc::Publish>) {
    let mut seen = Vec::new();
    let run = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => seen.push(p),
                Ok(_) => {}
                Err(err) => return err,
            }
        }
    };
    let err = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the connection is dropped in time");
    (err, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_ack_through_the_gate() {
    bounded(async {
        let hub = Hub::start().await;
        let dirs = Dirs::new();
        let credentials = hub.broker.internal_credentials();
        let mut parent = Parent::start_with(&hub.broker.internal_url(), &dirs.db("hub"), |c| {
            c.credentials = Some(credentials);
        });
        let (tls, _) = hub.node_tls("gw-1");
        let url = hub.broker.url();
        assert!(url.starts_with("mqtts://127.0.0.1:"), "{url}");
        let mut child =
            Child::start_adjusted("gw-1", &url, &dirs.db("gw-1"), |c| c.tls = Some(tls));
        let sent = child.record(20, Lane::Critical).await;
        let delivered = parent.collect(20).await;
        common::assert_exactly_once(&delivered, &sent);
        // The parent's acks came back through the gate: the child's outbox is empty.
        wait_until("the child's backlog acknowledged", || child.backlog() == 0).await;
        wait_until("the parent sees the child online", || {
            parent.sees(&child.id, NodeState::Online)
        })
        .await;
        assert_eq!(
            metric(&hub.registry, "vigil_gate_connections", &[]),
            1.0,
            "the child is connected"
        );
        assert_eq!(metric(&hub.registry, "vigil_gate_denials_total", &[]), 0.0);
        child.stop().await;
        parent.stop().await;
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_on_another_nodes_topic_disconnects_and_never_arrives() {
    bounded(async {
        let mut hub = Hub::start().await;
        let internal = hub.broker.internal_addr();
        // The hub's view: everything any child publishes.
        let login = hub.broker.internal_credentials();
        let (watcher, mut watch_loop) = client(internal, "county-a:watch", None, Some(&login));
        connects(&mut watch_loop).await.expect("watcher connects");
        watcher
            .subscribe("vigil/v1/up/+", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let watching = tokio::spawn(async move {
            while let Ok(event) = watch_loop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let _ = seen_tx.send((p.topic, p.payload));
                }
            }
        });

        let (tls, _) = hub.node_tls("gw-1");
        let (mallory, mut mallory_loop) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut mallory_loop).await.expect("gw-1 connects");
        mallory
            .publish("vigil/v1/up/gw-2", QoS::AtLeastOnce, false, "forged")
            .await
            .expect("queued");
        let (_err, _) = until_dropped(&mut mallory_loop).await;
        let denial = hub.next_denial().await;
        assert_eq!(denial.node, node("gw-1"));
        assert_eq!(denial.action, Action::Publish);
        assert_eq!(denial.reason, DenialReason::PublishTopic);
        assert_eq!(denial.topic.as_deref(), Some("vigil/v1/up/gw-2"));
        assert!(denial.peer.ip().is_loopback());
        assert_eq!(
            metric(
                &hub.registry,
                "vigil_gate_denials_total",
                &[("reason", "publish_topic")]
            ),
            1.0
        );

        // gw-2 itself publishes a marker: the hub sees it, and never saw the forgery.
        let (tls, _) = hub.node_tls("gw-2");
        let (honest, mut honest_loop) = client(hub.broker.local_addr(), "gw-2", Some(tls), None);
        connects(&mut honest_loop).await.expect("gw-2 connects");
        honest
            .publish("vigil/v1/up/gw-2", QoS::AtLeastOnce, false, "marker")
            .await
            .expect("queued");
        let pumping = tokio::spawn(async move { while honest_loop.poll().await.is_ok() {} });
        let (topic, payload) = tokio::time::timeout(PATIENCE, seen_rx.recv())
            .await
            .expect("the marker in time")
            .expect("watcher running");
        assert_eq!(topic, "vigil/v1/up/gw-2");
        assert_eq!(
            &payload[..],
            b"marker",
            "the forged publish reached the hub"
        );
        pumping.abort();
        watching.abort();
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_another_nodes_down_topic_is_refused() {
    bounded(async {
        let mut hub = Hub::start().await;
        let (tls, _) = hub.node_tls("gw-1");
        let (client1, mut loop1) = client(hub.broker.local_addr(), "gw-1", Some(tls.clone()), None);
        connects(&mut loop1).await.expect("connects");
        // Its own down topic: granted.
        client1
            .subscribe("vigil/v1/down/gw-1", QoS::AtLeastOnce)
            .await
            .expect("queued");
        let granted = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Event::Incoming(Packet::SubAck(ack)) = loop1.poll().await.expect("connected")
                {
                    return ack;
                }
            }
        })
        .await
        .expect("suback in time");
        assert_eq!(granted.return_codes.len(), 1);
        // Another node's: the connection is closed.
        client1
            .subscribe("vigil/v1/down/gw-2", QoS::AtLeastOnce)
            .await
            .expect("queued");
        until_dropped(&mut loop1).await;
        let denial = hub.next_denial().await;
        assert_eq!(
            (denial.action, denial.reason),
            (Action::Subscribe, DenialReason::SubscribeFilter)
        );
        assert_eq!(denial.topic.as_deref(), Some("vigil/v1/down/gw-2"));

        // A wildcard: the same.
        let (client2, mut loop2) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut loop2).await.expect("connects");
        client2
            .subscribe("vigil/v1/down/+", QoS::AtLeastOnce)
            .await
            .expect("queued");
        until_dropped(&mut loop2).await;
        assert_eq!(
            hub.next_denial().await.topic.as_deref(),
            Some("vigil/v1/down/+")
        );
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_other_than_the_node_id_is_refused() {
    bounded(async {
        let mut hub = Hub::start().await;
        let (tls, _) = hub.node_tls("gw-1");
        let (_c, mut eventloop) = client(hub.broker.local_addr(), "gw-2", Some(tls), None);
        connects(&mut eventloop).await.expect_err("refused");
        let denial = hub.next_denial().await;
        assert_eq!(
            (denial.action, denial.reason),
            (Action::Connect, DenialReason::ClientId)
        );
        assert_eq!(denial.topic.as_deref(), Some("gw-2"));
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    bounded(async {
        let hub = Hub::start().await;
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = Ca::load_or_create(other_dir.path(), "another CA").expect("ca");
        // Trusts the hub (so the client side is happy), presents the other CA's certificate.
        let (tls, _) = node_tls(&hub.ca, &other, "gw-1", None);
        let (_c, mut eventloop) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut eventloop).await.expect_err("refused");
        wait_until("counted as unknown_ca", || {
            hub.handshake_failures("unknown_ca") == 1.0
        })
        .await;
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    bounded(async {
        let hub = Hub::start().await;
        let now = SystemTime::now();
        let (tls, _) = node_tls(&hub.ca, &hub.ca, "gw-1", Some((now - 2 * YEAR, now - YEAR)));
        let (_c, mut eventloop) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut eventloop).await.expect_err("refused");
        wait_until("counted as expired", || {
            hub.handshake_failures("expired") == 1.0
        })
        .await;
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_refuses_the_certificate_and_drops_its_live_connection() {
    bounded(async {
        let hub = Hub::start().await;
        let (tls, issued) = hub.node_tls("gw-1");
        let (_c, mut eventloop) = client(hub.broker.local_addr(), "gw-1", Some(tls.clone()), None);
        connects(&mut eventloop).await.expect("connects");
        hub.broker.revocations().revoke(&issued.serial);
        until_dropped(&mut eventloop).await;
        wait_until("counted as closed on revocation", || {
            metric(&hub.registry, "vigil_gate_revoked_closed_total", &[]) == 1.0
        })
        .await;
        // And it cannot come back.
        let (_c, mut again) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut again).await.expect_err("refused");
        wait_until("counted as revoked", || {
            hub.handshake_failures("revoked") == 1.0
        })
        .await;
        // Another node is unaffected.
        let (tls2, _) = hub.node_tls("gw-2");
        let (_c2, mut loop2) = client(hub.broker.local_addr(), "gw-2", Some(tls2), None);
        connects(&mut loop2).await.expect("gw-2 still connects");
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_without_a_certificate_is_refused() {
    bounded(async {
        let hub = Hub::start().await;
        let tls = vigil_pki::client_config(hub.ca.cert_pem(), None).expect("client config");
        let (_c, mut eventloop) = client(hub.broker.local_addr(), "gw-1", Some(tls), None);
        connects(&mut eventloop).await.expect_err("refused");
        wait_until("counted as no_certificate", || {
            hub.handshake_failures("no_certificate") == 1.0
        })
        .await;
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mqtt_on_the_tls_port_is_refused() {
    bounded(async {
        let hub = Hub::start().await;
        let addr = hub.broker.local_addr();
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            // An MQTT 3.1.1 CONNECT, client id "gw-1".
            let connect = [
                0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 4, b'g', b'w', b'-', b'1',
            ];
            stream.write_all(&connect).expect("write");
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            answer
        })
        .await
        .expect("join");
        assert_ne!(
            answer.first(),
            Some(&0x20),
            "a CONNACK came back: {answer:?}"
        );
        wait_until("counted as not_tls", || {
            hub.handshake_failures("not_tls") == 1.0
        })
        .await;
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_broker_refuses_clients_without_the_secret() {
    bounded(async {
        let hub = Hub::start().await;
        let internal = hub.broker.internal_addr();
        assert!(internal.ip().is_loopback());
        let (_a, mut anonymous) = client(internal, "gw-1", None, None);
        connects(&mut anonymous).await.expect_err("no login");
        let secret = hub.broker.internal_credentials();
        assert_eq!(secret.password.len(), 64, "32 random bytes, hex");
        let wrong = MqttCredentials::new(secret.username.clone(), "0".repeat(64));
        let (_b, mut guessing) = client(internal, "gw-1", None, Some(&wrong));
        connects(&mut guessing).await.expect_err("wrong password");
        let (_c, mut hub_client) = client(internal, "county-a:downlinks", None, Some(&secret));
        connects(&mut hub_client).await.expect("the secret gets in");
        hub.broker.stop().await;
    })
    .await;
}

/// Whether the gate closes `stream` (EOF or an error) within `PATIENCE`, reading and
/// dropping whatever comes before.
async fn closed_by_the_gate(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let run = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, run).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_per_address_are_limited_until_they_time_out() {
    bounded(async {
        let hub = Hub::start_with(|c| {
            c.max_pending_per_address = 2;
            c.handshake_timeout = Duration::from_secs(1);
        })
        .await;
        let addr = hub.broker.local_addr();
        // Two connections that never start TLS hold the address's two places …
        let mut silent = Vec::new();
        for _ in 0..2 {
            silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        wait_until("both pending", || {
            metric(&hub.registry, "vigil_gate_pending_connections", &[]) == 2.0
        })
        .await;
        // … so a third from the same address is closed at once, without a handshake.
        let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(closed_by_the_gate(&mut third).await);
        wait_until("counted as per_address", || {
            hub.refused("per_address") == 1.0
        })
        .await;
        // The silent ones are closed when the handshake deadline passes.
        for stream in &mut silent {
            assert!(closed_by_the_gate(stream).await, "closed at the deadline");
        }
        wait_until("counted as timeouts, their places free", || {
            hub.handshake_failures("timeout") == 2.0
                && metric(&hub.registry, "vigil_gate_pending_connections", &[]) == 0.0
        })
        .await;

        // An enrolled node gets in, and once authenticated it holds no pending place: two
        // more unauthenticated connections still fit beside it.
        let (tls, _) = hub.node_tls("gw-1");
        let (_gw, mut gw_loop) = client(addr, "gw-1", Some(tls), None);
        connects(&mut gw_loop).await.expect("gw-1 connects");
        let mut more = Vec::new();
        for _ in 0..2 {
            more.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        wait_until("two pending beside gw-1", || {
            metric(&hub.registry, "vigil_gate_pending_connections", &[]) == 2.0
        })
        .await;
        let mut over = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(closed_by_the_gate(&mut over).await);
        wait_until("the second per_address refusal", || {
            hub.refused("per_address") == 2.0
        })
        .await;
        assert_eq!(hub.refused("capacity"), 0.0);
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_without_a_connect_is_closed_at_the_deadline() {
    bounded(async {
        let hub = Hub::start_with(|c| c.handshake_timeout = Duration::from_secs(1)).await;
        let (tls, _) = hub.node_tls("gw-1");
        let tcp = tokio::net::TcpStream::connect(hub.broker.local_addr())
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut session = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .expect("the handshake itself succeeds");
        // No CONNECT follows: the gate closes the connection and counts it.
        assert!(closed_by_the_gate(&mut session).await);
        wait_until("counted as connect_timeout", || {
            hub.handshake_failures("connect_timeout") == 1.0
        })
        .await;
        assert_eq!(
            metric(&hub.registry, "vigil_gate_connections_total", &[]),
            1.0
        );
        hub.broker.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_carry_a_cut_topic_and_a_nodes_repeats_come_as_one_record() {
    bounded(async {
        // A window long enough for the repeats below to fall into it.
        let mut hub = Hub::start_with(|c| c.denial_window = Duration::from_secs(5)).await;
        let (tls, _) = hub.node_tls("gw-1");
        let long = format!("vigil/v1/up/{}", "é".repeat(2000));
        for _ in 0..4 {
            let (gw, mut gw_loop) =
                client(hub.broker.local_addr(), "gw-1", Some(tls.clone()), None);
            connects(&mut gw_loop).await.expect("gw-1 connects");
            gw.publish(long.clone(), QoS::AtMostOnce, false, "x")
                .await
                .expect("queued");
            until_dropped(&mut gw_loop).await;
        }
        wait_until("four denials counted", || {
            metric(
                &hub.registry,
                "vigil_gate_denials_total",
                &[("reason", "publish_topic")],
            ) == 4.0
        })
        .await;

        // The first at once, by itself, its topic cut to 256 bytes at a character boundary.
        let first = hub.next_denial().await;
        assert_eq!(first.count, 1);
        let topic = first.topic.clone().expect("topic");
        assert!(topic.len() <= 256 && topic.len() > 250, "{}", topic.len());
        assert!(long.starts_with(&topic));
        assert!(first.topic_truncated());
        assert_eq!(first.topic_bytes, long.len());

        // The other three in fewer records, with their count.
        let mut counted = 0;
        let mut records = 0;
        while counted < 3 {
            let record = hub.next_denial().await;
            assert_eq!(
                (record.node.as_str(), record.action, record.reason),
                ("gw-1", Action::Publish, DenialReason::PublishTopic)
            );
            assert!(record.topic_truncated());
            assert!(record.last_at >= record.at);
            counted += record.count;
            records += 1;
        }
        assert_eq!(counted, 3);
        assert!(
            records < 3,
            "three denials in {records} records: not aggregated"
        );
        hub.broker.stop().await;
    })
    .await;
}
