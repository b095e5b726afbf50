//! Enrollment and mTLS end to end, on loopback, against a real hub (`vigil_hub::run::run`
//! in process, the same function the binary calls) and its real router and broker gate:
//!
//! - a token works once, for its node only (the certificate names the token's node whatever
//!   the CSR says), until it expires; a malformed CSR is a 400 that leaves the token usable;
//!   every attempt is audited;
//! - an enrolled gateway's uplink delivers through the gate and the hub commits its batch;
//!   revoking it over the API drops its live connection and refuses its reconnect;
//! - a certificate from another CA is refused at the gate; a gate denial is audited;
//! - `vigil-hub revoke` (another process) reaches the running hub within seconds;
//! - a county hub enrolls with its city hub (`vigil-hub enroll`) and its uplink reaches the
//!   city over mTLS.
//!
//! Every test is bounded ([`common::LIMIT`]); every wait gives up after [`common::PATIENCE`].

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bounded, eventually, Gateway, Hub, PRISON_3};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use vigil_core::{AlertId, NodeId, Severity};
use vigil_link::{
    BackoffConfig, LinkMetrics, OutboxPoke, SenderConfig, SharedStore, Uplink, UplinkConfig,
};
use vigil_pki::rustls::ClientConfig;
use vigil_pki::{node_key_and_csr, node_of_certificate, EnrollToken};
use vigil_store::NodeKind;
use vigil_store::Store;

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("node id")
}

/// A county hub with the gated embedded broker on a free port.
async fn county() -> Hub {
    Hub::start_config(|store| common::county_toml(store, None, ""), &[]).await
}

/// A token for `node`, issued as `vigil-hub enroll-token` does, valid for `ttl`, bound to
/// its facility inside the county's site: `gw-prison-3` to `ministry/gd/gz/baiyun/prison-3`
/// (where the test gateways raise), `gw-1` to `ministry/gd/gz/baiyun/1`.
async fn token(hub: &Hub, node_id: &str, kind: NodeKind, ttl: Duration) -> EnrollToken {
    let pki = hub.link.security.pki.clone();
    let config = hub.config.clone();
    let node = node(node_id);
    let facility = node_id.strip_prefix("gw-").unwrap_or(node_id);
    let site =
        vigil_core::SitePath::new(format!("ministry/gd/gz/baiyun/{facility}")).expect("site");
    hub.link
        .store
        .call(move |s| {
            Ok(vigil_hub::enroll::token::issue(
                s, &pki, &config, &node, &site, kind, ttl, "cli:test",
            )
            .expect("issue a token")
            .token)
        })
        .await
        .expect("store")
}

/// What a gateway keeps after enrolling.
struct Identity {
    cert_pem: String,
    key_pem: String,
    ca_pem: String,
}

impl Identity {
    fn client_config(&self) -> Arc<ClientConfig> {
        vigil_pki::client_config(&self.ca_pem, Some((&self.cert_pem, &self.key_pem)))
            .expect("client config")
    }

    fn serial(&self) -> String {
        let der = vigil_pki::cert::cert_from_pem(&self.cert_pem, "cert").expect("der");
        vigil_pki::serial_of_certificate(der.as_ref()).expect("serial")
    }
}

/// Enrolls `node_id` at the hub with a fresh token, as `vigil-agent enroll` does.
async fn enroll(hub: &Hub, node_id: &str) -> Identity {
    let token = token(hub, node_id, NodeKind::Gateway, Duration::from_secs(3600)).await;
    let request = node_key_and_csr(&node(node_id)).expect("csr");
    let enrolled = vigil_pki::enroll(
        &format!("http://{}", hub.addr),
        &token,
        &request.csr_pem,
        &node(node_id),
        Duration::from_secs(10),
    )
    .await
    .expect("enrolled");
    assert_eq!(
        enrolled.broker, hub.broker,
        "the broker URL the hub answers"
    );
    Identity {
        cert_pem: enrolled.certificate_pem,
        key_pem: request.key_pem,
        ca_pem: enrolled.ca_pem,
    }
}

/// `POST /api/v1/enroll` with `token` and `csr`, no credentials.
async fn post_enroll(hub: &Hub, token: &str, csr: &str) -> (StatusCode, serde_json::Value) {
    let body = serde_json::json!({ "token": token, "csr": csr }).to_string();
    hub.call_as(
        "POST",
        "/api/v1/enroll",
        &[("content-type", "application/json")],
        &body,
    )
    .await
}

/// The audit records of `action`.
async fn audited(hub: &Hub, action: &'static str) -> Vec<vigil_store::AuditRecord> {
    hub.link
        .store
        .call(move |s| {
            Ok(s.audit_records(0, 10_000)?
                .into_iter()
                .filter(|r| r.entry.action == action)
                .collect())
        })
        .await
        .expect("audit")
}

/// `POST /api/v1/enroll` with `token`, `csr` and `"kind": kind` (`None`: left out).
async fn post_enroll_kind(
    hub: &Hub,
    token: &str,
    csr: &str,
    kind: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut body = serde_json::json!({ "token": token, "csr": csr });
    if let Some(kind) = kind {
        body["kind"] = kind.into();
    }
    hub.call_as(
        "POST",
        "/api/v1/enroll",
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_token_enrolls_only_the_kind_of_node_it_was_issued_for() {
    bounded(async {
        let hub = county().await;
        // A gateway's token (the default): a request to enroll as a hub is refused with
        // both kinds and what to do, audited and counted; the token stays usable.
        let gw = token(&hub, "gw-1", NodeKind::Gateway, Duration::from_secs(600)).await;
        let claim = node_key_and_csr(&node("gw-1")).expect("csr");
        let (status, body) =
            post_enroll_kind(&hub, &gw.to_string(), &claim.csr_pem, Some("hub")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let error = body["error"].as_str().expect("error");
        assert!(
            error.contains("enrolls gw-1 as a gateway")
                && error.contains("request enrolls a hub")
                && error.contains("--kind hub")
                && error.contains("not used"),
            "{error}"
        );
        let refused = audited(&hub, "node.enroll_refused").await;
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].entry.target, "gw-1");
        assert_eq!(refused[0].entry.details["reason"], "wrong_kind");
        assert!(audited(&hub, "node.enroll").await.is_empty());
        let (status, body) = post_enroll_kind(&hub, &gw.to_string(), &claim.csr_pem, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A hub's token: a gateway's request (no kind) is refused; a hub's is enrolled and
        // bound as a hub.
        let hub_tok = token(&hub, "hub-1", NodeKind::Hub, Duration::from_secs(600)).await;
        let claim = node_key_and_csr(&node("hub-1")).expect("csr");
        let (status, body) =
            post_enroll_kind(&hub, &hub_tok.to_string(), &claim.csr_pem, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let error = body["error"].as_str().expect("error");
        assert!(
            error.contains("enrolls hub-1 as a hub")
                && error.contains("request enrolls a gateway")
                && error.contains("without --kind hub"),
            "{error}"
        );
        let (status, body) =
            post_enroll_kind(&hub, &hub_tok.to_string(), &claim.csr_pem, Some("hub")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let bindings = hub
            .link
            .store
            .call(|s| {
                Ok((
                    s.node_binding(&node("hub-1"))?,
                    s.node_binding(&node("gw-1"))?,
                ))
            })
            .await
            .expect("bindings");
        assert_eq!(bindings.0.expect("hub-1 bound").kind, Some(NodeKind::Hub));
        assert_eq!(
            bindings.1.expect("gw-1 bound").kind,
            Some(NodeKind::Gateway)
        );
        let (_, _, metrics) = hub.get_text("/metrics").await;
        assert!(
            metrics.contains("vigil_hub_enrollments_total{outcome=\"wrong_kind\"} 2"),
            "{metrics}"
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_enrolls_once_for_its_node_only_until_it_expires() {
    bounded(async {
        let hub = county().await;
        let tok = token(&hub, "gw-1", NodeKind::Gateway, Duration::from_secs(3600)).await;
        // A malformed CSR: 400 naming it, and the token stays usable.
        let (status, body) = post_enroll(&hub, &tok.to_string(), "not a csr").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]
                .as_str()
                .expect("error")
                .contains("certificate signing request"),
            "{body}"
        );

        // A CSR that claims gw-2: the certificate names gw-1, the token's node.
        let claim = node_key_and_csr(&node("gw-2")).expect("csr");
        let (status, body) = post_enroll(&hub, &tok.to_string(), &claim.csr_pem).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["node"], "gw-1");
        assert_eq!(body["broker"], hub.broker.as_str());
        let der = vigil_pki::cert::cert_from_pem(body["certificate"].as_str().expect("pem"), "c")
            .expect("cert");
        assert_eq!(
            node_of_certificate(der.as_ref()).expect("cn").as_str(),
            "gw-1"
        );
        assert!(body["expires_at"]
            .as_str()
            .expect("expiry")
            .parse::<vigil_core::Timestamp>()
            .is_ok());

        // Used once: 401 with the one message.
        let (status, body) = post_enroll(&hub, &tok.to_string(), &claim.csr_pem).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid or expired enrollment token");

        // Expired: 401 too.
        let short = token(&hub, "gw-3", NodeKind::Gateway, Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, body) = post_enroll(&hub, &short.to_string(), &claim.csr_pem).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid or expired enrollment token");

        // Not a token, a forged secret: 401.
        let (status, _) = post_enroll(&hub, "VGL1.x.y.z", &claim.csr_pem).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let good = token(&hub, "gw-4", NodeKind::Gateway, Duration::from_secs(60)).await;
        let text = good.to_string();
        let parts: Vec<&str> = text.split('.').collect();
        let forged = format!("VGL1.{}.{}.{}", parts[1], "A".repeat(43), parts[3]);
        let (status, _) = post_enroll(&hub, &forged, &claim.csr_pem).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A token for gw-4 cannot enroll gw-5: the client refuses the certificate.
        let request = node_key_and_csr(&node("gw-5")).expect("csr");
        let err = vigil_pki::enroll(
            &format!("http://{}", hub.addr),
            &good,
            &request.csr_pem,
            &node("gw-5"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("another node");
        assert!(
            matches!(err, vigil_pki::EnrollError::NodeMismatch { .. }),
            "{err}"
        );

        // Audited: the enrollments, and every refusal with its reason.
        let enrolled = audited(&hub, "node.enroll").await;
        assert_eq!(enrolled.len(), 2, "gw-1 and gw-4");
        assert_eq!(enrolled[0].entry.target, "gw-1");
        let refused = audited(&hub, "node.enroll_refused").await;
        let reasons: Vec<&str> = refused
            .iter()
            .map(|r| r.entry.details["reason"].as_str().unwrap_or_default())
            .collect();
        for reason in [
            "bad_csr",
            "used",
            "expired",
            "malformed_token",
            "wrong_secret",
        ] {
            assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
        }
        assert_eq!(audited(&hub, "enroll_token.add").await.len(), 3);
        let (_, _, metrics) = hub.get_text("/metrics").await;
        assert!(
            metrics.contains("vigil_hub_enrollments_total{outcome=\"enrolled\"} 2"),
            "{metrics}"
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test]
async fn parallel_guesses_at_enrollment_pass_the_limit_no_more_than_sequential_ones() {
    bounded(async {
        let hub = county().await;
        let good = token(&hub, "gw-4", NodeKind::Gateway, Duration::from_secs(60)).await;
        let text = good.to_string();
        let parts: Vec<&str> = text.split('.').collect();
        let request = node_key_and_csr(&node("gw-4")).expect("csr");
        // 24 forged secrets for a real token id, all at once from one address.
        let guesses = (0..24).map(|i| {
            let forged = format!(
                "VGL1.{}.{}.{}",
                parts[1],
                format!("{i:02}").repeat(21) + "A",
                parts[3]
            );
            let hub = &hub;
            let csr = request.csr_pem.clone();
            async move { post_enroll(hub, &forged, &csr).await.0 }
        });
        let statuses = futures_util::future::join_all(guesses).await;
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let limited = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(checked + limited, 24, "{statuses:?}");
        // Counted before each check, one check at a time per address: no more than the
        // free failures (5 by default) and the one that starts the wait are ever looked at.
        assert!(checked <= 6, "{checked} guesses were checked: {statuses:?}");
        assert_eq!(
            audited(&hub, "node.enroll_refused").await.len(),
            checked,
            "every checked guess is audited"
        );
        hub.stop().await;
    })
    .await;
}

/// A gateway's uplink with `tls`, to `url`.
struct Gw {
    events: Gateway,
    store: SharedStore,
    poke: OutboxPoke,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Gw {
    fn start(id: &str, url: &str, tls: Arc<ClientConfig>) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SharedStore::new(Store::open(dir.path().join("agent.db")).expect("store"));
        let events = Gateway::new(id, PRISON_3);
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
        config.keep_alive = Duration::from_secs(5);
        config.poll_interval = Duration::from_millis(100);
        let metrics = LinkMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let uplink = Uplink::new(config, store.clone(), metrics).expect("uplink");
        let poke = uplink.poke_handle();
        let shutdown = CancellationToken::new();
        tokio::spawn(uplink.run(shutdown.clone()));
        Gw {
            events,
            store,
            poke,
            shutdown,
            _dir: dir,
        }
    }

    async fn raise(&mut self, source: &str) -> AlertId {
        let alert = AlertId::generate();
        let event = self
            .events
            .raise(alert, source, "state", Severity::Critical, false);
        self.store
            .call(move |s| s.record_events("parent", &[(Severity::Critical.lane(), event)]))
            .await
            .expect("record");
        self.poke.poke();
        alert
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn committed(hub: &Hub, alert: AlertId) -> bool {
    hub.link
        .store
        .call(move |s| s.alert(alert))
        .await
        .expect("read")
        .is_some()
}

/// Opens TLS to the gate with `tls` and sends an MQTT CONNECT for `client_id`; whether a
/// CONNACK accepting it comes back.
async fn gate_accepts(broker: &str, tls: Arc<ClientConfig>, client_id: &str) -> bool {
    let addr = broker.trim_start_matches("mqtts://");
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let name = vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
    else {
        return false;
    };
    if tls.write_all(&connect_packet(client_id)).await.is_err() {
        return false;
    }
    let mut connack = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut connack)).await,
        Ok(Ok(_))
    ) && connack == [0x20, 0x02, 0x00, 0x00]
}

/// An MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s).
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A];
    variable.extend_from_slice(&u16::try_from(client_id.len()).expect("short").to_be_bytes());
    variable.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, u8::try_from(variable.len()).expect("short")];
    packet.extend_from_slice(&variable);
    packet
}

/// An MQTT 3.1.1 PUBLISH at QoS 0.
fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut variable = u16::try_from(topic.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    variable.extend_from_slice(topic.as_bytes());
    variable.extend_from_slice(payload);
    let mut packet = vec![0x30];
    // The remaining length: 7 bits a byte, the high bit saying more follow.
    let mut len = variable.len();
    loop {
        let byte = u8::try_from(len % 128).expect("7 bits");
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&variable);
    packet
}

#[tokio::test]
async fn an_enrolled_gateway_delivers_through_the_gate_until_it_is_revoked() {
    bounded(async {
        let hub = county().await;
        let id = enroll(&hub, "gw-prison-3").await;
        let mut gw = Gw::start("gw-prison-3", &hub.broker, id.client_config());
        let first = gw.raise("door-1/forced").await;
        eventually("the hub to commit the gateway's batch", || async {
            committed(&hub, first).await.then_some(())
        })
        .await;

        // The node is in scope where it is bound: an installer of prison-4 neither lists
        // nor revokes it (403, audited), one of prison-3 lists it.
        for (name, scope, want) in [
            (
                "inst-4",
                "ministry/gd/gz/baiyun/prison-4",
                StatusCode::FORBIDDEN,
            ),
            ("inst-3", "ministry/gd/gz/baiyun/prison-3", StatusCode::OK),
        ] {
            let token = hub.add_token(name, vigil_hub::auth::Role::Installer, scope);
            let bearer = format!("Bearer {token}");
            let (status, body) = hub
                .call_as(
                    "GET",
                    "/api/v1/nodes/gw-prison-3/certificates",
                    &[("authorization", &bearer)],
                    "",
                )
                .await;
            assert_eq!(status, want, "{name}: {body}");
        }
        let inst4 = hub.add_token(
            "inst-4b",
            vigil_hub::auth::Role::Installer,
            "ministry/gd/gz/baiyun/prison-4",
        );
        let bearer = format!("Bearer {inst4}");
        let (status, _) = hub
            .call_as(
                "POST",
                "/api/v1/nodes/gw-prison-3/revoke",
                &[("authorization", &bearer)],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(!audited(&hub, "access_denied").await.is_empty());

        let (status, body) = hub
            .post(
                "/api/v1/nodes/gw-prison-3/revoke",
                &[("content-type", "application/json")],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["revoked"], serde_json::json!([id.serial()]));

        // The live connection is gone and a reconnect is refused: nothing more arrives.
        let second = gw.raise("door-2/forced").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !committed(&hub, second).await,
            "a revoked gateway delivered"
        );
        assert!(
            !gate_accepts(&hub.broker, id.client_config(), "gw-prison-3").await,
            "the gate let a revoked certificate in"
        );

        let (status, body) = hub.get("/api/v1/nodes/gw-prison-3/certificates").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["certificates"][0]["status"], "revoked", "{body}");
        assert_eq!(audited(&hub, "node.revoke").await.len(), 1);
        // Without the nodes permission: 403.
        let viewer = hub.add_token("watcher", vigil_hub::auth::Role::Viewer, "ministry");
        let bearer = format!("Bearer {viewer}");
        let (status, _) = hub
            .call_as(
                "POST",
                "/api/v1/nodes/gw-prison-3/revoke",
                &[("authorization", &bearer)],
                "",
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        hub.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_gate_refuses_another_ca_and_audits_denials() {
    bounded(async {
        let hub = county().await;
        // A certificate from another CA, naming a node: refused at the handshake.
        let dir = tempfile::tempdir().expect("tempdir");
        let other = vigil_pki::Ca::load_or_create(dir.path(), "someone else").expect("ca");
        let request = node_key_and_csr(&node("gw-1")).expect("csr");
        let cert = other
            .issue_node(&request.csr_pem, &node("gw-1"), Duration::from_secs(3600))
            .expect("issue");
        let hub_ca = hub.link.security.pki.ca().cert_pem().to_owned();
        let foreign = vigil_pki::client_config(&hub_ca, Some((&cert.cert_pem, &request.key_pem)))
            .expect("config");
        assert!(!gate_accepts(&hub.broker, foreign, "gw-1").await);

        // An enrolled node that publishes on another node's topic: closed, and audited.
        let id = enroll(&hub, "gw-1").await;
        assert!(gate_accepts(&hub.broker, id.client_config(), "gw-1").await);
        let addr = hub.broker.trim_start_matches("mqtts://").to_owned();
        let tcp = tokio::net::TcpStream::connect(&addr).await.expect("tcp");
        let name = vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(id.client_config())
            .connect(name, tcp)
            .await
            .expect("tls");
        tls.write_all(&connect_packet("gw-1"))
            .await
            .expect("connect");
        let mut connack = [0u8; 4];
        tls.read_exact(&mut connack).await.expect("connack");
        // On another node's topic, 312 bytes long: the record carries 256 of them.
        let topic = format!("vigil/v1/up/gw-2/{}", "x".repeat(295));
        tls.write_all(&publish_packet(&topic, b"{}"))
            .await
            .expect("publish");
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest)).await;
        let denial = eventually("the denial in the audit log", || async {
            audited(&hub, "mqtt.denied").await.into_iter().next()
        })
        .await;
        assert_eq!(denial.entry.actor, "gw-1");
        assert_eq!(denial.entry.target, format!("{}…", &topic[..256]));
        let details = &denial.entry.details;
        assert_eq!(details["count"], 1, "{details}");
        assert_eq!(details["topic_truncated"], true, "{details}");
        assert_eq!(details["topic_bytes"], 312, "{details}");
        assert_eq!(details["reason"], "publish_topic", "{details}");
        hub.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_revocation_from_the_command_line_reaches_the_running_hub() {
    bounded(async {
        let hub = county().await;
        let id = enroll(&hub, "gw-1").await;
        assert!(gate_accepts(&hub.broker, id.client_config(), "gw-1").await);
        let config_path = hub
            .store_path
            .parent()
            .and_then(std::path::Path::parent)
            .expect("dir")
            .join("hub.toml");
        let out = tokio::task::spawn_blocking(move || {
            assert_cmd::Command::cargo_bin("vigil-hub")
                .expect("binary")
                .args(["revoke", "--node", "gw-1", "--config"])
                .arg(&config_path)
                .output()
                .expect("run")
        })
        .await
        .expect("join");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&id.serial()));
        eventually("the gate to refuse the revoked certificate", || async {
            (!gate_accepts(&hub.broker, id.client_config(), "gw-1").await).then_some(())
        })
        .await;
        hub.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_hub_enrolls_with_its_parent_and_links_up_over_mtls() {
    bounded(async {
        let city = Hub::start_config(
            |store| {
                format!(
                    "[node]\nid = \"city-gz\"\nlevel = \"city\"\nname = \"Guangzhou\"\n\n\
                     [http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nlisten = \"127.0.0.1:0\"\n\n\
                     [store]\npath = {:?}\n",
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        // The city has a parent above it, as its own enrollment recorded.
        city.link
            .store
            .call(|s| s.ancestors_set(&[node("ministry")]))
            .await
            .expect("ancestors");
        let tok = token(
            &city,
            "county-baiyun",
            NodeKind::Hub,
            Duration::from_secs(600),
        )
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("hub.toml");
        std::fs::write(
            &config_path,
            "# Baiyun county\n[node]\nid = \"county-baiyun\" # the county\nlevel = \"county\"\n\
             name = \"Baiyun\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\n\
             listen = \"127.0.0.1:0\"\n\n[store]\npath = \"var/hub.db\"\n",
        )
        .expect("write");
        let hub_url = format!("http://{}", city.addr);
        let before = std::fs::read_to_string(&config_path).expect("read");
        let run = |token_arg: String, stdin: String, extra: &'static [&'static str]| {
            let hub_url = hub_url.clone();
            let path = config_path.clone();
            tokio::task::spawn_blocking(move || {
                assert_cmd::Command::cargo_bin("vigil-hub")
                    .expect("binary")
                    .args(["enroll", "--hub", &hub_url, "--token", &token_arg])
                    .args(extra)
                    .arg("--config")
                    .arg(&path)
                    .write_stdin(stdin)
                    .output()
                    .expect("run")
            })
        };
        // The token in the arguments: refused before it is used, nothing written.
        let out = run(tok.to_string(), String::new(), &[])
            .await
            .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--token -") && !stderr.contains(tok.secret()),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&config_path).expect("read"), before);
        assert!(!dir.path().join("var/parent").exists());

        // A gateway's token: `vigil-hub enroll` is refused with the parent's message (both
        // kinds, the token to issue), nothing written.
        let gw_tok = token(
            &city,
            "county-baiyun",
            NodeKind::Gateway,
            Duration::from_secs(600),
        )
        .await;
        let out = run("-".into(), format!("{gw_tok}\n"), &[])
            .await
            .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("as a gateway")
                && stderr.contains("request enrolls a hub")
                && stderr.contains("--kind hub"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&config_path).expect("read"), before);
        assert!(!dir.path().join("var/parent/node.pem").exists());

        // On standard input: enrolled.
        let out = run("-".into(), format!("{tok}\n"), &[])
            .await
            .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("[2/4]") && stderr.contains("[parent] url"),
            "{stderr}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            city.broker,
            "the broker on standard output"
        );

        // Enrolled already: a second token is not spent without --force.
        let second = token(
            &city,
            "county-baiyun",
            NodeKind::Hub,
            Duration::from_secs(600),
        )
        .await;
        let out = run("-".into(), format!("{second}\n"), &[])
            .await
            .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("already enrolled"), "{stderr}");
        assert_eq!(audited(&city, "node.enroll").await.len(), 1);
        let text = std::fs::read_to_string(&config_path).expect("read");
        assert!(
            text.contains("# Baiyun county") && text.contains("# the county"),
            "{text}"
        );
        assert!(
            text.contains(&format!("url = \"{}\"", city.broker)),
            "{text}"
        );
        let key = dir.path().join("var/parent/node.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).expect("key").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        // The county runs with its new [parent]: its uplink reaches the city over mTLS.
        let config = vigil_hub::config::HubConfig::load(&config_path).expect("valid config");
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let county = tokio::spawn(vigil_hub::run::run(config, shutdown.clone(), Some(tx)));
        rx.await.expect("county started");
        eventually("the city to see the county online", || async {
            city.link
                .children
                .snapshot()
                .iter()
                .any(|c| {
                    c.node.as_str() == "county-baiyun" && c.state == vigil_wire::NodeState::Online
                })
                .then_some(())
        })
        .await;
        shutdown.cancel();
        county.await.expect("join").expect("county ran");
        // The city's answer named it and the hub above it; the county recorded them, and
        // kept them at start (its [parent] CA is the city's).
        let above = vigil_store::Store::open(dir.path().join("var/hub.db"))
            .expect("the county's store")
            .ancestors()
            .expect("ancestors");
        assert_eq!(above, [node("city-gz"), node("ministry")]);
        city.stop().await;
    })
    .await;
}

/// The enrollment answer names the site the token bound the node to; `vigil-hub enroll`
/// refuses to write anything when the config's `[node] site` is not inside it, and says which
/// key, which site and what to do. With a site inside the binding it enrolls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_site_is_outside_its_binding_writes_nothing() {
    bounded(async {
        let city = Hub::start_config(
            |store| {
                format!(
                    "[node]\nid = \"city-gz\"\nlevel = \"city\"\nname = \"Guangzhou\"\n\n\
                     [http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nlisten = \"127.0.0.1:0\"\n\n\
                     [store]\npath = {:?}\n",
                    store.display().to_string()
                )
            },
            &[],
        )
        .await;
        let bound_to = |site: &'static str| {
            let pki = city.link.security.pki.clone();
            let config = city.config.clone();
            let site = vigil_core::SitePath::new(site).expect("site");
            city.link.store.call(move |s| {
                Ok(vigil_hub::enroll::token::issue(
                    s,
                    &pki,
                    &config,
                    &node("county-tianhe"),
                    &site,
                    NodeKind::Hub,
                    Duration::from_secs(600),
                    "cli:test",
                )
                .expect("issue a token")
                .token)
            })
        };
        let bound = "ministry/gd/gz/baiyun";
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("hub.toml");
        let config = |site: &str| {
            format!(
                "[node]\nid = \"county-tianhe\"\nlevel = \"county\"\nname = \"Tianhe\"\n\
                 site = \"{site}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\n\
                 listen = \"127.0.0.1:0\"\n\n[store]\npath = \"var/hub.db\"\n"
            )
        };
        let hub_url = format!("http://{}", city.addr);
        let run = |tok: EnrollToken| {
            let hub_url = hub_url.clone();
            let path = config_path.clone();
            tokio::task::spawn_blocking(move || {
                assert_cmd::Command::cargo_bin("vigil-hub")
                    .expect("binary")
                    .args(["enroll", "--hub", &hub_url, "--token", "-", "--config"])
                    .arg(&path)
                    .write_stdin(format!("{tok}\n"))
                    .output()
                    .expect("run")
            })
        };

        std::fs::write(&config_path, config("ministry/gd/gz/tianhe")).expect("write");
        let before = std::fs::read_to_string(&config_path).expect("read");
        let tok = bound_to(bound).await.expect("store");
        let out = run(tok).await.expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("[node] site")
                && stderr.contains("ministry/gd/gz/tianhe")
                && stderr.contains(bound)
                && stderr.contains("--site"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&config_path).expect("read"), before);
        assert!(!dir.path().join("var/parent").exists(), "nothing written");

        // Bound to the county's own site: enrolled.

        let tok = bound_to("ministry/gd/gz/tianhe").await.expect("store");
        let out = run(tok).await.expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(dir.path().join("var/parent").exists());
        city.stop().await;
    })
    .await;
}
