//! The hub under hostile load, end to end: a real hub on loopback, attacked as an attacker
//! would, with raw TCP so that requests can be sent at once, from chosen loopback addresses
//! (127.0.0.0/8 is all loopback on Linux), or left half-written.
//!
//! - sign-in: parallel guesses from one address pass the limit at most as often as
//!   sequential ones; a name locked out at the attacker's address still signs in from
//!   another; one address cannot spray names; password checks are bounded hub-wide and the
//!   excess is answered 503 at once;
//! - HTTP: a client that never finishes its headers is closed after the header timeout
//!   (plain and HTTPS, and a silent TLS handshake too) while others are served; a stalled
//!   upload is closed after the idle timeout, a quiet live stream is not (its keep-alives);
//!   a body sent a byte at a time is answered 408 at the request timeout;
//!   connections over the caps are closed at once and their places come back;
//! - plain HTTP off loopback is refused by `vigil-hub check` and `run` (exit 2).
//!
//! Timeouts are configured small (300 ms); every wait is bounded by [`common::STEP`] and
//! nothing asserts on how long anything took.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, eventually, password_of, Hub, PRISON_3, STEP};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use vigil_hub::auth::Role;
use vigil_store::Store;

/// A loopback address to send from.
fn from(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A TCP connection to `hub` from `source`.
async fn connect_from(hub: SocketAddr, source: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind a loopback source address");
    tokio::time::timeout(STEP, socket.connect(hub))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// `POST /api/v1/session` for `name` and `password`, closing the connection after.
fn sign_in_request(hub: SocketAddr, name: &str, password: &str) -> Vec<u8> {
    let body = serde_json::json!({ "name": name, "password": password }).to_string();
    format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: {hub}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An HTTP answer, as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    text: String,
}

/// Reads one answer up to the connection's close.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Answer {
    let mut bytes = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut bytes))
        .await
        .expect("answer in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let retry_after = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.trim().to_owned())
    });
    Answer {
        status,
        retry_after,
        text,
    }
}

/// One sign-in from `source`.
async fn sign_in_from(hub: &Hub, source: IpAddr, name: &str, password: &str) -> Answer {
    let mut tcp = connect_from(hub.addr, source).await;
    tcp.write_all(&sign_in_request(hub.addr, name, password))
        .await
        .expect("send");
    read_answer(&mut tcp).await
}

/// Sign-ins from each of `sources`, sent at once: every request is written but its last
/// byte, then every last byte, then every answer read.
async fn sign_ins_at_once(
    hub: &Hub,
    sources: &[IpAddr],
    name: &str,
    password: &str,
) -> Vec<Answer> {
    let request = sign_in_request(hub.addr, name, password);
    let (head, last) = request.split_at(request.len() - 1);
    let mut streams = Vec::new();
    for source in sources {
        let mut tcp = connect_from(hub.addr, *source).await;
        tcp.write_all(head).await.expect("send");
        streams.push(tcp);
    }
    for tcp in &mut streams {
        tcp.write_all(last).await.expect("send");
    }
    let mut reads = tokio::task::JoinSet::new();
    for mut tcp in streams {
        reads.spawn(async move { read_answer(&mut tcp).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = reads.join_next().await {
        answers.push(answer.expect("read task"));
    }
    answers
}

/// Whether the hub closes `stream` (EOF or reset) within [`STEP`], whatever it sends first.
async fn closed_by_hub<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut sink = Vec::new();
    matches!(
        tokio::time::timeout(STEP, stream.read_to_end(&mut sink)).await,
        Ok(Ok(_) | Err(_))
    )
}

/// The value of the sample `series` (e.g. `vigil_hub_sign_ins_total{outcome="failure"}`).
async fn metric(hub: &Hub, series: &str) -> f64 {
    let (_, _, text) = hub.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The sign-in failures audited so far.
fn audited_failures(hub: &Hub) -> usize {
    Store::open(&hub.store_path)
        .expect("open store")
        .audit_records(0, 10_000)
        .expect("audit records")
        .iter()
        .filter(|r| r.entry.action == "sign_in" && r.entry.details["outcome"] == "failure")
        .count()
}

/// A county hub with `http` added to its `[http]` section and `extra` after the rest.
async fn start(http: &str, extra: &str) -> Hub {
    Hub::start_config(
        |store| {
            common::county_toml(store, None, extra).replacen(
                "[http]\n",
                &format!("[http]\n{http}"),
                1,
            )
        },
        &[],
    )
    .await
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Three free failures, then a minute's wait; the hub-wide bound on checks out of the way.
const AUTH_SLOW: &str = "\n[auth]\nsign_in_free_failures = 3\nsign_in_delay = \"60s\"\n\
                         sign_in_max_delay = \"60s\"\nsign_in_concurrency = 64\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_from_one_address_pass_the_limit_no_more_than_sequential_ones() {
    bounded(async {
        let hub = Hub::start_with(false, AUTH_SLOW, &[]).await;
        hub.add_user("li.na", Role::Operator, PRISON_3);
        let answers = sign_ins_at_once(&hub, &[from(1); 24], "li.na", "a guess at it").await;
        assert_eq!(
            count(&answers, 401) + count(&answers, 429),
            answers.len(),
            "{answers:#?}"
        );
        let parallel = count(&answers, 401);
        assert!((1..=3).contains(&parallel), "checked: {parallel}");
        for refused in answers.iter().filter(|a| a.status == 429) {
            assert!(refused.retry_after.is_some(), "{refused:?}");
        }
        let refused = metric(&hub, "vigil_hub_sign_ins_total{outcome=\"in_progress\"}").await
            + metric(&hub, "vigil_hub_sign_ins_total{outcome=\"rate_limited\"}").await;
        assert_eq!(
            refused,
            count(&answers, 429) as f64,
            "every refusal counted"
        );
        // Sequentially now, until the wait: three checked in all, however they were sent.
        let mut sequential = 0;
        loop {
            let a = sign_in_from(&hub, from(1), "li.na", "a guess at it").await;
            if a.status == 429 && a.text.contains("too many failed sign-ins") {
                break;
            }
            assert_eq!(a.status, 401, "{a:?}");
            sequential += 1;
            assert!(sequential <= 3, "more than the free failures were checked");
        }
        assert_eq!(parallel + sequential, 3, "three free failures in all");
        assert_eq!(audited_failures(&hub), 3);
        assert_eq!(
            metric(&hub, "vigil_hub_sign_ins_total{outcome=\"failure\"}").await,
            3.0
        );
        // Even the right password is not checked from there now.
        let a = sign_in_from(&hub, from(1), "li.na", &password_of("li.na")).await;
        assert_eq!(a.status, 429, "{a:?}");
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_locked_out_at_the_attackers_address_signs_in_from_another_and_spraying_names_waits()
{
    bounded(async {
        let hub = Hub::start_with(
            false,
            "\n[auth]\nsign_in_free_failures = 2\nsign_in_delay = \"60s\"\nsign_in_max_delay = \"60s\"\n",
            &[],
        )
        .await;
        hub.add_user("li.na", Role::Operator, PRISON_3);
        let attacker = from(2);
        for _ in 0..2 {
            let a = sign_in_from(&hub, attacker, "li.na", "a guess at it").await;
            assert_eq!(a.status, 401, "{a:?}");
        }
        let a = sign_in_from(&hub, attacker, "li.na", &password_of("li.na")).await;
        assert_eq!(a.status, 429, "locked out at the attacker's address: {a:?}");
        assert_eq!(a.retry_after.as_deref(), Some("60"), "{a:?}");

        let desk = sign_in_from(&hub, from(3), "li.na", &password_of("li.na")).await;
        assert_eq!(desk.status, 200, "the operator's own desk: {desk:?}");
        let a = sign_in_from(&hub, attacker, "li.na", &password_of("li.na")).await;
        assert_eq!(a.status, 429, "the attacker still waits: {a:?}");

        // One address, a new name each time: its own count (four times the free failures).
        let sprayer = from(4);
        for n in 0..8 {
            let a = sign_in_from(&hub, sprayer, &format!("user{n}"), "a guess at it").await;
            assert_eq!(a.status, 401, "name {n}: {a:?}");
        }
        let a = sign_in_from(&hub, sprayer, "user8", "a guess at it").await;
        assert_eq!(a.status, 429, "the address waits: {a:?}");
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_are_bounded_hub_wide_and_the_excess_is_answered_503_at_once() {
    bounded(async {
        let hub = Hub::start_with(
            false,
            "\n[auth]\nsign_in_free_failures = 100\nsign_in_concurrency = 1\n",
            &[],
        )
        .await;
        hub.add_user("li.na", Role::Operator, PRISON_3);
        let sources: Vec<IpAddr> = (10..26).map(from).collect();
        let answers = sign_ins_at_once(&hub, &sources, "li.na", "a guess at it").await;
        let (checked, overloaded) = (count(&answers, 401), count(&answers, 503));
        assert_eq!(checked + overloaded, answers.len(), "{answers:#?}");
        assert!(checked >= 1, "{answers:#?}");
        assert!(
            overloaded >= 1,
            "16 at once, one check at a time: some are refused: {answers:#?}"
        );
        for a in answers.iter().filter(|a| a.status == 503) {
            assert_eq!(a.retry_after.as_deref(), Some("1"), "{a:?}");
        }
        assert_eq!(
            audited_failures(&hub),
            checked,
            "refused ones are not checked"
        );
        assert_eq!(
            metric(&hub, "vigil_hub_sign_ins_total{outcome=\"overloaded\"}").await,
            overloaded as f64
        );
        // Not counted against anyone: the right password works at once.
        let a = sign_in_from(&hub, from(10), "li.na", &password_of("li.na")).await;
        assert_eq!(a.status, 200, "{a:?}");
        hub.stop().await;
    })
    .await;
}

/// Writes a request head one byte at a time, a byte every 50 ms, never finishing it.
async fn drip<S: AsyncWrite + Unpin>(stream: &mut S) {
    let head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ".repeat(20);
    for byte in head {
        if stream.write_all(&[byte]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_closed_while_others_are_served() {
    bounded(async {
        let hub = start("header_read_timeout = \"300ms\"\n", "").await;
        let mut slow = connect_from(hub.addr, from(1)).await;
        let (mut read, mut write) = slow.split();
        let dripping = drip(&mut write);
        let closing = closed_by_hub(&mut read);
        tokio::pin!(dripping);
        let closed = tokio::select! {
            closed = closing => closed,
            () = &mut dripping => false,
        };
        assert!(closed, "the hub closed the slow connection");
        let (status, _, body) = hub.get_text("/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            metric(
                &hub,
                "vigil_hub_http_connection_timeouts_total{phase=\"header\"}"
            )
            .await
                >= 1.0
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_silent_handshake_and_unfinished_headers_are_closed_while_others_are_served() {
    bounded(async {
        let hub = start("tls = true\nheader_read_timeout = \"300ms\"\n", "").await;
        let tls = vigil_pki::client_config(hub.link.security.pki.ca().cert_pem(), None)
            .expect("client config");
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls));
        let name = vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");

        // Connects and never says hello.
        let mut silent = connect_from(hub.addr, from(1)).await;
        assert!(
            closed_by_hub(&mut silent).await,
            "a silent handshake is closed"
        );

        // Shakes hands, then drips a request head that never ends.
        let tcp = connect_from(hub.addr, from(2)).await;
        let slow = tokio::time::timeout(STEP, connector.connect(name.clone(), tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        let (mut read, mut write) = tokio::io::split(slow);
        let dripping = drip(&mut write);
        let closing = closed_by_hub(&mut read);
        tokio::pin!(dripping);
        let closed = tokio::select! {
            closed = closing => closed,
            () = &mut dripping => false,
        };
        assert!(closed, "the hub closed the slow connection");

        // A client that does not dawdle is served.
        let tcp = connect_from(hub.addr, from(3)).await;
        let mut ok = tokio::time::timeout(STEP, connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let answer = read_answer(&mut ok).await;
        assert_eq!(answer.status, 200, "{answer:?}");

        // /metrics over HTTPS too: the harness's client is plain, so read it here.
        let tcp = connect_from(hub.addr, from(3)).await;
        let mut m = tokio::time::timeout(
            STEP,
            connector.connect(
                vigil_pki::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
                tcp,
            ),
        )
        .await
        .expect("handshake in time")
        .expect("handshake");
        m.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let metrics = read_answer(&mut m).await.text;
        for phase in ["tls_handshake", "header"] {
            let series = format!("vigil_hub_http_connection_timeouts_total{{phase=\"{phase}\"}} ");
            let value: f64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
                .unwrap_or(0.0);
            assert!(value >= 1.0, "{phase}: {metrics}");
        }
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_closed_after_the_idle_timeout() {
    bounded(async {
        let hub = start("idle_timeout = \"300ms\"\n", "").await;
        let mut stalled = connect_from(hub.addr, from(1)).await;
        stalled
            .write_all(
                format!(
                    "POST /api/v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                     Content-Length: 100\r\n\r\n{{\"name\"",
                    hub.addr
                )
                .as_bytes(),
            )
            .await
            .expect("send");
        assert!(closed_by_hub(&mut stalled).await, "the stalled upload is closed");
        let (status, _, body) = hub.get_text("/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            metric(&hub, "vigil_hub_http_connection_timeouts_total{phase=\"idle\"}").await >= 1.0
        );
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_answered_408_at_the_request_timeout() {
    bounded(async {
        let hub = start("request_timeout = \"600ms\"\n", "").await;
        let mut slow = connect_from(hub.addr, from(1)).await;
        slow.write_all(
            format!(
                "POST /api/v1/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 4000\r\n\r\n",
                hub.addr
            )
            .as_bytes(),
        )
        .await
        .expect("send");
        // A byte every 50 ms: the idle timer (60 s) never fires, the request deadline does.
        let (mut read, mut write) = tokio::io::split(slow);
        let dripping = tokio::spawn(async move {
            for _ in 0..4000 {
                if write.write_all(b" ").await.is_err() || write.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(STEP, read.read_to_end(&mut answer)).await;
        dripping.abort();
        let text = String::from_utf8_lossy(&answer);
        assert!(closed.is_ok(), "the connection is closed: {text}");
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            metric(
                &hub,
                "vigil_hub_http_connection_timeouts_total{phase=\"request\"}"
            )
            .await
                >= 1.0
        );
        let (status, _, body) = hub.get_text("/healthz").await;
        assert_eq!(status, 200, "{body}");
        hub.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_live_stream_outlives_the_idle_timeout_on_its_keep_alives() {
    bounded(async {
        // The request deadline does not apply to the stream either.
        let hub = start(
            "idle_timeout = \"400ms\"\nrequest_timeout = \"300ms\"\n",
            "",
        )
        .await;
        let token = hub.add_token("wall", Role::Viewer, PRISON_3);
        let mut stream = connect_from(hub.addr, from(1)).await;
        stream
            .write_all(
                format!(
                    "GET /api/v1/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
                     Accept: text/event-stream\r\n\r\n",
                    hub.addr
                )
                .as_bytes(),
            )
            .await
            .expect("send");
        // Nothing happens for five idle timeouts: the stream stays open, kept by its
        // keep-alive comments.
        let mut seen = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 1024];
        while tokio::time::Instant::now() < until {
            match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(0)) | Ok(Err(_)) => panic!(
                    "the hub closed a quiet stream: {}",
                    String::from_utf8_lossy(&seen)
                ),
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.matches("\n:").count() >= 2,
            "keep-alive comments while quiet: {text}"
        );
        assert_eq!(
            metric(
                &hub,
                "vigil_hub_http_connection_timeouts_total{phase=\"idle\"}"
            )
            .await,
            0.0
        );
        hub.stop().await;
    })
    .await;
}

/// Whether a connection from `source` is served (`GET /healthz` answered 200).
async fn served(hub: &Hub, source: IpAddr) -> bool {
    let mut tcp = connect_from(hub.addr, source).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        hub.addr
    );
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(STEP, tcp.read_to_end(&mut bytes)).await;
    bytes.starts_with(b"HTTP/1.1 200")
}

/// `GET /metrics` on a connection of its own from 127.0.0.1: the text, or `None` when the
/// connection was refused.
async fn scrape(hub: &Hub) -> Option<String> {
    let mut tcp = connect_from(hub.addr, from(1)).await;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        hub.addr
    );
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut bytes = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut bytes))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    text.starts_with("HTTP/1.1 200").then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_closed_at_once_and_their_places_come_back() {
    bounded(async {
        let hub = start(
            "max_connections = 5\nmax_connections_per_address = 2\nheader_read_timeout = \"60s\"\n",
            "",
        )
        .await;
        // Silent connections, each held open by the hub (a minute to send its headers),
        // admitted in the order they were made.
        let mut held = vec![
            connect_from(hub.addr, from(2)).await,
            connect_from(hub.addr, from(2)).await,
        ];
        let mut third = connect_from(hub.addr, from(2)).await;
        assert!(
            closed_by_hub(&mut third).await,
            "over the address's share: closed"
        );
        for source in [from(3), from(3), from(4)] {
            held.push(connect_from(hub.addr, source).await);
        }
        let mut sixth = connect_from(hub.addr, from(5)).await;
        assert!(
            closed_by_hub(&mut sixth).await,
            "over the hub's cap: closed"
        );

        // A held connection goes: its place comes back.
        drop(held.remove(0));
        eventually("a place came back", || async {
            served(&hub, from(5)).await.then_some(())
        })
        .await;
        drop(held);
        let text = eventually("every place came back", || async {
            scrape(&hub)
                .await
                .filter(|t| t.lines().any(|l| l == "vigil_hub_http_connections 1"))
        })
        .await;
        for reason in ["max_connections", "max_connections_per_address"] {
            let series =
                format!("vigil_hub_http_connections_refused_total{{reason=\"{reason}\"}} ");
            let refused: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
                .unwrap_or(0.0);
            assert!(refused >= 1.0, "{reason}: {text}");
        }
        hub.stop().await;
    })
    .await;
}

fn vigil_hub(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("vigil-hub")
        .expect("the binary is built")
        .args(args)
        .timeout(STEP)
        .output()
        .expect("vigil-hub runs")
}

#[test]
fn plain_http_off_loopback_is_refused_unless_the_config_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.toml");
    let toml = common::county_toml(&dir.path().join("hub.db"), None, "").replace(
        "listen = \"127.0.0.1:0\"\n\n[mqtt]",
        "listen = \"0.0.0.0:8080\"\n\n[mqtt]",
    );
    assert!(toml.contains("0.0.0.0:8080"), "{toml}");
    std::fs::write(&path, &toml).expect("config");
    let config = path.to_str().expect("utf-8 path");
    for command in ["check", "run"] {
        let out = vigil_hub(&[command, "--config", config]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        for needed in [
            config,
            "http.listen",
            "allow_plaintext = true",
            "tls = true",
            "in clear",
        ] {
            assert!(stderr.contains(needed), "{command}: {needed:?} in {stderr}");
        }
    }
    // Either says so explicitly: the same config is valid.
    for explicit in ["allow_plaintext = true", "tls = true"] {
        let line = format!("listen = \"0.0.0.0:8080\"\n{explicit}\n");
        std::fs::write(&path, toml.replace("listen = \"0.0.0.0:8080\"\n", &line)).expect("config");
        let out = vigil_hub(&["check", "--config", config]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{explicit}: {stderr}");
    }
}
