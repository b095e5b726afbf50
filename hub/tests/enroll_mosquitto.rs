//! An external Mosquitto as the hub's broker, with mTLS and the ACL `vigil-hub
//! broker-config` writes: the hub connects with its own certificate, an enrolled gateway
//! delivers on its own topics (the hub commits its batch), and the same certificate is
//! refused on another node's topics.
//!
//! Needs `/usr/sbin/mosquitto` (Debian's `mosquitto` package). Bounded ([`LIMIT`]).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

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
        let config_path = dir.path().join("hub.toml");
        std::fs::write(
            &config_path,
            format!(
                "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"Baiyun\"\n\n\
                 [http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nurl = \"mqtts://127.0.0.1:{port}\"\n\n\
                 [store]\npath = \"var/hub.db\"\n"
            ),
        )
        .expect("write");
        let out_dir = dir.path().join("mosquitto");
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
        let conf = std::fs::read_to_string(out_dir.join("mosquitto.conf")).expect("conf");
        for line in [
            &format!("listener {port} 127.0.0.1"),
            "require_certificate true",
            "use_identity_as_username true",
            "acl_file ",
            "crlfile ",
        ] {
            assert!(conf.contains(line), "{line} in {conf}");
        }
        let _mosquitto = start_mosquitto(&out_dir.join("mosquitto.conf"), port);

        let config = vigil_hub::config::HubConfig::load(&config_path).expect("config");
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
