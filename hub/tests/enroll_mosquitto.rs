//! An external Mosquitto as the hub's broker, with mTLS and the ACL `vigil-hub
//! broker-config` writes: the hub connects with its own certificate, an enrolled gateway
//! delivers on its own topics (the hub commits its batch), and the same certificate is
//! refused on another node's topics; no node can take another's client id (Mosquitto makes
//! it the certificate's CN), and TLS 1.3 is allowed.
//!
//! Needs `/usr/sbin/mosquitto` (Debian's `mosquitto` package). Bounded ([`LIMIT`]).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertId, NodeId, Severity};
use vigil_link::{BackoffConfig, LinkMetrics, SenderConfig, SharedStore, Uplink, UplinkConfig};
use vigil_pki::rustls::ClientConfig;
use vigil_store::Store;

const LIMIT: Duration = Duration::from_secs(90);
const BINARY: &str = "/usr/sbin/mosquitto";

struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start_mosquitto(conf: &Path, port: u16) -> Mosquitto {
    let child = Command::new(BINARY)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let mosquitto = Mosquitto(child);
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

/// A gateway's uplink as node `id` over `tls`, to `url`; its store, to raise in.
fn uplink(
    id: &str,
    url: &str,
    tls: Arc<ClientConfig>,
    dir: &Path,
) -> (SharedStore, CancellationToken, vigil_link::OutboxPoke) {
    let store = SharedStore::new(Store::open(dir.join(format!("{id}.db"))).expect("store"));
    let mut config = UplinkConfig::new(NodeId::new(id).expect("node"), url);
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
    let metrics = LinkMetrics::new(&prometheus::Registry::new()).expect("metrics");
    let uplink = Uplink::new(config, store.clone(), metrics).expect("uplink");
    let poke = uplink.poke_handle();
    let stop = CancellationToken::new();
    tokio::spawn(uplink.run(stop.clone()));
    (store, stop, poke)
}

async fn raise(store: &SharedStore, poke: &vigil_link::OutboxPoke, origin: &str) -> AlertId {
    let alert = AlertId::generate();
    let event = common::Gateway::new(origin, common::PRISON_3).raise(
        alert,
        "door-1/forced",
        "state",
        Severity::Critical,
        false,
    );
    store
        .call(move |s| s.record_events("parent", &[(Severity::Critical.lane(), event)]))
        .await
        .expect("record");
    poke.poke();
    alert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_with_the_written_config_enforces_each_nodes_topics() {
    assert!(
        Path::new(BINARY).exists(),
        "{BINARY} is missing: install Mosquitto (apt-get install mosquitto) to run this test"
    );
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let (config, conf_path) = broker_config(dir.path(), port);
        let conf = std::fs::read_to_string(&conf_path).expect("conf");
        for line in [
            &format!("listener {port} 127.0.0.1"),
            "require_certificate true",
            "use_identity_as_username true",
            "acl_file ",
            "crlfile ",
        ] {
            assert!(conf.contains(line), "{line} in {conf}");
        }
        let _mosquitto = start_mosquitto(&conf_path, port);

        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let hub = tokio::spawn(vigil_hub::run::run(config, shutdown.clone(), Some(tx)));
        let started = rx.await.expect("hub started");
        assert_eq!(started.broker, format!("mqtts://127.0.0.1:{port}"));

        // gw-1's certificate, from the hub's CA (as enrollment issues it).
        let node = NodeId::new("gw-1").expect("node");
        let request = vigil_pki::node_key_and_csr(&node).expect("csr");
        let ca = started.link.security.pki.ca();
        let cert = ca
            .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
            .expect("issue");
        let tls = vigil_pki::client_config(ca.cert_pem(), Some((&cert.cert_pem, &request.key_pem)))
            .expect("tls");

        // On its own topics: delivered and committed by the hub.
        let (store, stop, poke) = uplink("gw-1", &started.broker, tls.clone(), dir.path());
        let own = raise(&store, &poke, "gw-1").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = started
                .link
                .store
                .call(move |s| s.alert(own))
                .await
                .expect("read");
            if found.is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gw-1's batch never arrived"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();

        // The same certificate as gw-2 (its up topic): Mosquitto drops what it publishes.
        let (store, stop, poke) = uplink("gw-2", &started.broker, tls, dir.path());
        let other = raise(&store, &poke, "gw-2").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let found = started
            .link
            .store
            .call(move |s| s.alert(other))
            .await
            .expect("read");
        assert!(
            found.is_none(),
            "gw-1's certificate published on gw-2's topic"
        );
        stop.cancel();

        shutdown.cancel();
        hub.await.expect("join").expect("hub ran");
    })
    .await
    .expect("the test finished in time");
}

/// Writes `vigil-hub broker-config` for a county hub whose `[mqtt] url` is
/// `mqtts://127.0.0.1:{port}` into `dir/mosquitto`; returns the hub's config and the
/// written `mosquitto.conf`.
fn broker_config(dir: &Path, port: u16) -> (vigil_hub::config::HubConfig, std::path::PathBuf) {
    let config_path = dir.join("hub.toml");
    std::fs::write(
        &config_path,
        format!(
            "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"Baiyun\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nurl = \"mqtts://127.0.0.1:{port}\"\n\n\
             [store]\npath = \"var/hub.db\"\n\n\
             [[child]]\nnode = \"gw-1\"\nsite = \"{}\"\n",
            common::PRISON_3
        ),
    )
    .expect("write");
    let out_dir = dir.join("mosquitto");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-hub"))
        // The test runs as root: Mosquitto keeps it rather than dropping to `mosquitto`,
        // which could not read the keys in this private temporary directory.
        .args(["broker-config", "--user", "root", "--out"])
        .arg(&out_dir)
        .arg("--config")
        .arg(&config_path)
        .output()
        .expect("broker-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = vigil_hub::config::HubConfig::load(&config_path).expect("config");
    (config, out_dir.join("mosquitto.conf"))
}

/// A client TLS config for node `id` with a certificate from the hub's CA.
fn identity(config: &vigil_hub::config::HubConfig, id: &str) -> Arc<ClientConfig> {
    let pki = vigil_hub::pki::HubPki::open(config).expect("the hub's CA");
    let node = NodeId::new(id).expect("node");
    let request = vigil_pki::node_key_and_csr(&node).expect("csr");
    let cert = pki
        .ca()
        .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
        .expect("issue");
    vigil_pki::client_config(
        pki.ca().cert_pem(),
        Some((&cert.cert_pem, &request.key_pem)),
    )
    .expect("tls")
}

type Session = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// TLS to `127.0.0.1:port` with `tls`, then an MQTT CONNECT for `client_id`, answered
/// with a CONNACK that accepts it.
async fn mqtt_connect(port: u16, tls: Arc<ClientConfig>, client_id: &str) -> Session {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut session = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS handshake with Mosquitto");
    // An MQTT 3.1.1 CONNECT: clean session, keep-alive 60 s.
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C];
    variable.extend_from_slice(&u16::try_from(client_id.len()).expect("short").to_be_bytes());
    variable.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(variable.len()).expect("short")];
    packet.extend_from_slice(&variable);
    session.write_all(&packet).await.expect("send CONNECT");
    let mut connack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), session.read_exact(&mut connack))
        .await
        .expect("a CONNACK within 5 s")
        .expect("a CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNECT accepted");
    session
}

/// Whether `session` still answers a PINGREQ (Mosquitto has not closed it).
async fn still_connected(session: &mut Session) -> bool {
    if session.write_all(&[0xC0, 0x00]).await.is_err() || session.flush().await.is_err() {
        return false;
    }
    let mut pingresp = [0u8; 2];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), session.read_exact(&mut pingresp)).await,
        Ok(Ok(_))
    ) && pingresp == [0xD0, 0x00]
}

/// Connects as the hub (its downlinks' client id), then as gw-1 with the same client id;
/// whether the hub's session survived.
async fn hub_survives_a_node_taking_its_client_id(
    port: u16,
    hub: Arc<ClientConfig>,
    gw: Arc<ClientConfig>,
) -> bool {
    let mut hub_session = mqtt_connect(port, hub, "county-baiyun:downlinks").await;
    assert!(still_connected(&mut hub_session).await, "the hub's session");
    let mut gw_session = mqtt_connect(port, gw, "county-baiyun:downlinks").await;
    assert!(still_connected(&mut gw_session).await, "gw-1's session");
    still_connected(&mut hub_session).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_take_the_hubs_client_id_and_tls_1_3_is_allowed() {
    assert!(
        Path::new(BINARY).exists(),
        "{BINARY} is missing: install Mosquitto (apt-get install mosquitto) to run this test"
    );
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let (config, conf_path) = broker_config(dir.path(), port);
        let conf = std::fs::read_to_string(&conf_path).expect("conf");
        assert!(conf.contains("\nuse_username_as_clientid true\n"), "{conf}");
        assert!(!conf.contains("tls_version"), "{conf}");
        let hub = identity(&config, "county-baiyun");
        let gw = identity(&config, "gw-1");

        let mosquitto = start_mosquitto(&conf_path, port);
        // TLS 1.3 is offered by rustls first and allowed by the written config.
        let session = mqtt_connect(port, hub.clone(), "county-baiyun:downlinks").await;
        assert_eq!(
            session.get_ref().1.protocol_version(),
            Some(vigil_pki::rustls::ProtocolVersion::TLSv1_3)
        );
        drop(session);
        assert!(
            hub_survives_a_node_taking_its_client_id(port, hub.clone(), gw.clone()).await,
            "gw-1 took over the hub's session with the written config"
        );
        drop(mosquitto);

        // The same config without the setting: the takeover the setting prevents happens.
        let old_listener = format!("listener {port} 127.0.0.1\n");
        let port = free_port();
        let unsafe_conf = dir.path().join("without-clientid.conf");
        std::fs::write(
            &unsafe_conf,
            conf.replace("use_username_as_clientid true\n", "")
                .replace(&old_listener, &format!("listener {port} 127.0.0.1\n")),
        )
        .expect("write");
        let _mosquitto = start_mosquitto(&unsafe_conf, port);
        assert!(
            !hub_survives_a_node_taking_its_client_id(port, hub, gw).await,
            "without use_username_as_clientid, gw-1 should have taken over the hub's session"
        );
    })
    .await
    .expect("the test finished in time");
}
