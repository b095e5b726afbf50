//! The Modbus source against real servers on loopback: tokio-modbus's TCP server, its RTU
//! server on a socat pseudo-terminal pair, and raw sockets that answer with garbage.

mod support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use support::modbus_server::{start_rtu, start_tcp, Image, PtyPair, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use vigil_agent::config::{ModbusDevice, Parity, Transport};
use vigil_agent::metrics::Metrics;
use vigil_agent::source::modbus::link::{Endpoint, Link};
use vigil_agent::source::modbus::poller::Sinks;
use vigil_agent::source::modbus::scan::{scan, ScanParams};
use vigil_agent::source::modbus::{plan, spawn};
use vigil_agent::source::{channel, condition_channel};
use vigil_core::Value;
use vigil_profile::{parse_profile, Profile};
use vigil_runtime::{Shutdown, Stopped};

const TYPES: [&str; 8] = ["u16", "i16", "u32", "i32", "f32", "u64", "i64", "f64"];

/// A profile with every numeric type in every word and byte order, bits of every kind and a
/// string, and the value each point is set to.
fn all_types() -> (Profile, Vec<(String, Value)>) {
    let mut yaml = String::from("name: all-types\nmanufacturer: test\nmodel: t\npoints:\n");
    let mut values = Vec::new();
    let mut addr = 0u16;
    for (ti, t) in TYPES.iter().enumerate() {
        for wo in ["big", "little"] {
            for bo in ["big", "little"] {
                let name = format!("{t}_{wo}_{bo}");
                yaml += &format!("  - {{ name: {name}, table: input, address: {addr}, type: {t}, word_order: {wo}, byte_order: {bo} }}\n");
                let v = match *t {
                    "u16" => Value::Int(0xBEEF),
                    "i16" => Value::Int(-12345),
                    "u32" => Value::Int(0xDEAD_BEEF),
                    "i32" => Value::Int(-1_234_567_890),
                    "u64" => Value::Int(0x0123_4567_89AB_CDEF),
                    "i64" => Value::Int(-0x0123_4567_89AB_CDEF),
                    "f32" => Value::Float(f64::from(-1234.5f32)),
                    _ => Value::Float(6.02214076e23 + ti as f64),
                };
                values.push((name, v));
                addr += 4;
            }
        }
    }
    yaml += "  - { name: coil_on, table: coil, address: 3, type: bool }\n";
    yaml += "  - { name: di_on, table: discrete_input, address: 9, type: bool }\n";
    yaml += "  - { name: status_bit5, table: holding, address: 7, type: bool, bit: 5 }\n";
    yaml += "  - { name: label, table: holding, address: 20, type: string, length: 9 }\n";
    yaml +=
        "  - { name: scaled, table: holding, address: 30, type: i16, scale: 0.1, offset: -40 }\n";
    values.push(("coil_on".into(), Value::Bool(true)));
    values.push(("di_on".into(), Value::Bool(true)));
    values.push(("status_bit5".into(), Value::Bool(true)));
    values.push(("label".into(), Value::Text("CELL-BLK9".into())));
    values.push(("scaled".into(), Value::Float(-12.5)));
    (
        parse_profile(Path::new("all-types.yaml"), &yaml).expect("valid test profile"),
        values,
    )
}

fn state_with(unit: u8, profile: &Profile, values: &[(String, Value)]) -> Arc<State> {
    let mut image = Image::default();
    for (name, v) in values {
        image.set(profile, name, v);
    }
    let state = Arc::new(State::default());
    state.units.lock().expect("lock").insert(unit, image);
    state
}

fn params(unit: u8) -> ScanParams {
    ScanParams {
        unit,
        timeout: Duration::from_millis(500),
        retries: 0,
    }
}

#[tokio::test]
async fn every_type_in_every_order_reads_back() {
    let (profile, values) = all_types();
    let state = state_with(1, &profile, &values);
    let addr = start_tcp(state.clone()).await;
    let mut link = Link::new(Endpoint::Tcp(addr.to_string()));
    let requests = plan::plan(&profile.points, 16);
    let out = timeout(
        Duration::from_secs(10),
        scan(&mut link, "dev", &profile, &requests, params(1), false),
    )
    .await
    .expect("bounded");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.readings.len(), values.len());
    for (name, expected) in &values {
        let r = out
            .readings
            .iter()
            .find(|r| r.point.point() == name)
            .expect("read");
        match (expected, &r.value) {
            (Value::Float(e), Value::Float(g)) => {
                assert!((e - g).abs() <= e.abs() * 1e-12, "{name}: {g} != {e}")
            }
            _ => assert_eq!(&r.value, expected, "{name}"),
        }
        assert_eq!(r.point.as_str(), format!("dev/{name}"));
    }
}

#[tokio::test]
async fn a_scan_issues_the_protocol_minimum_of_requests() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../device-profiles/fire-alarm-panel.yaml"
    ))
    .expect("profile");
    let profile = parse_profile(Path::new("fire-alarm-panel.yaml"), &text).expect("valid");
    let state = state_with(4, &profile, &[]);
    let addr = start_tcp(state.clone()).await;
    let mut link = Link::new(Endpoint::Tcp(addr.to_string()));
    for max_gap in [0u16, 16] {
        let before = state.requests_of(4);
        let requests = plan::plan(&profile.points, max_gap);
        let out = scan(&mut link, "fire", &profile, &requests, params(4), false).await;
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.readings.len(), profile.points.len());
        let sent = state.requests_of(4) - before;
        assert_eq!(
            sent as usize,
            plan::minimum_requests(&profile.points, max_gap),
            "max_gap {max_gap}"
        );
    }
}

#[tokio::test]
async fn exceptions_are_counted_and_the_other_reads_still_arrive() {
    let (profile, values) = all_types();
    let state = state_with(1, &profile, &values);
    state
        .forbidden
        .lock()
        .expect("lock")
        .insert((vigil_profile::Table::Coil, 3));
    let addr = start_tcp(state).await;
    let mut link = Link::new(Endpoint::Tcp(addr.to_string()));
    let requests = plan::plan(&profile.points, 16);
    let out = scan(
        &mut link,
        "dev",
        &profile,
        &requests,
        ScanParams {
            retries: 2,
            ..params(1)
        },
        false,
    )
    .await;
    assert!(out.answered, "an exception is an answer");
    assert_eq!(
        out.errors.len(),
        1,
        "exceptions are not retried: {:?}",
        out.errors
    );
    assert_eq!(out.errors[0].kind(), "exception");
    assert_eq!(out.failed_reads, 1);
    assert_eq!(
        out.readings.len(),
        values.len() - 1,
        "every other point read"
    );
}

fn tcp_device(id: &str, addr: &str, unit: u8, profile: &str) -> ModbusDevice {
    ModbusDevice {
        id: id.into(),
        profile: profile.into(),
        transport: Transport::Tcp,
        address: Some(addr.into()),
        port: None,
        baud: 19200,
        parity: Parity::None,
        stop_bits: 1,
        unit,
        poll: Duration::from_millis(100),
        timeout: Duration::from_millis(150),
        retries: 0,
        max_gap: 16,
        zone: Some("block-a".into()),
        zones: Default::default(),
    }
}

#[tokio::test]
async fn communication_loss_is_raised_once_and_cleared_when_the_device_is_back() {
    let (profile, values) = all_types();
    let state = state_with(1, &profile, &values);
    let addr = start_tcp(state.clone()).await;
    let metrics = Metrics::new();
    let (rtx, mut rrx) = channel();
    let (ctx, mut crx) = condition_channel();
    let sinks = Sinks {
        readings: rtx,
        conditions: ctx,
        metrics: metrics.modbus.clone(),
    };
    let shutdown = CancellationToken::new();
    let tasks = Shutdown::with_token(shutdown.clone());
    spawn(
        vec![(
            tcp_device("dac-1", &addr.to_string(), 1, "all-types"),
            profile,
        )],
        &sinks,
        &shutdown,
        &tasks,
    );

    let first = timeout(Duration::from_secs(5), rrx.recv())
        .await
        .expect("readings flow")
        .expect("open");
    assert!(first.point.as_str().starts_with("dac-1/"));
    state.all_silent.store(true, Ordering::SeqCst);
    let lost = timeout(Duration::from_secs(5), crx.recv())
        .await
        .expect("loss detected")
        .expect("open");
    assert!(lost.active);
    assert_eq!(lost.kind.as_str(), "comm_loss");
    assert_eq!(lost.source, "dac-1");
    assert_eq!(lost.zone.as_deref(), Some("block-a"));
    assert!(
        lost.message.contains("no answer within"),
        "{}",
        lost.message
    );
    assert_eq!(metrics.modbus.online.with_label_values(&["dac-1"]).get(), 0);
    // Still silent for a while: no second raise.
    assert!(
        timeout(Duration::from_millis(600), crx.recv())
            .await
            .is_err(),
        "raised once"
    );
    state.all_silent.store(false, Ordering::SeqCst);
    let back = timeout(Duration::from_secs(10), crx.recv())
        .await
        .expect("restore detected")
        .expect("open");
    assert!(!back.active);
    while rrx.try_recv().is_ok() {}
    timeout(Duration::from_secs(5), rrx.recv())
        .await
        .expect("readings flow again")
        .expect("open");
    assert_eq!(metrics.modbus.online.with_label_values(&["dac-1"]).get(), 1);
    assert!(
        metrics
            .modbus
            .errors
            .with_label_values(&["dac-1", "timeout"])
            .get()
            >= 1
    );
    assert!(metrics
        .render()
        .contains("vigil_modbus_requests_total{device=\"dac-1\"}"));
    assert_eq!(
        tasks.stop(Duration::from_secs(5)).await,
        Stopped::Clean,
        "tasks stop on shutdown"
    );
}

/// A fake device that reads one request and answers it badly.
async fn bad_server(answer: fn(&[u8]) -> Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = [0u8; 12];
                while sock.read_exact(&mut req).await.is_ok() {
                    if sock.write_all(&answer(&req)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn garbage_wrong_unit_wrong_transaction_and_short_frames_are_errors_not_crashes() {
    let (profile, _) = all_types();
    let requests = plan::plan(&profile.points, 16);
    // Each answer is a well-formed read-holding-registers response to the request with one
    // thing wrong; the request is [tid hi, tid lo, 0, 0, 0, 6, unit, fc, addr hi, addr lo, n hi, n lo].
    type Answer = fn(&[u8]) -> Vec<u8>;
    let answers: [(&str, Answer); 4] = [
        ("garbage", |_| {
            vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0xff, 0xff, 0xff]
        }),
        ("wrong unit", |r| {
            let n = r[11];
            let mut v = vec![
                r[0],
                r[1],
                0,
                0,
                0,
                3 + 2 * n,
                r[6].wrapping_add(1),
                r[7],
                2 * n,
            ];
            v.extend(std::iter::repeat_n(0, 2 * usize::from(n)));
            v
        }),
        ("wrong transaction", |r| {
            let n = r[11];
            let mut v = vec![
                r[0].wrapping_add(1),
                r[1],
                0,
                0,
                0,
                3 + 2 * n,
                r[6],
                r[7],
                2 * n,
            ];
            v.extend(std::iter::repeat_n(0, 2 * usize::from(n)));
            v
        }),
        ("short", |r| vec![r[0], r[1], 0, 0, 0, 9, r[6], r[7], 16, 0]),
    ];
    for (what, answer) in answers {
        let addr = bad_server(answer).await;
        let mut link = Link::new(Endpoint::Tcp(addr));
        for _ in 0..2 {
            let out = timeout(
                Duration::from_secs(10),
                scan(
                    &mut link,
                    "dev",
                    &profile,
                    &requests,
                    ScanParams {
                        timeout: Duration::from_millis(300),
                        ..params(1)
                    },
                    false,
                ),
            )
            .await
            .expect("bounded");
            assert!(
                out.readings.is_empty(),
                "{what}: nothing decoded from bad frames"
            );
            assert_eq!(out.failed_reads, requests.len(), "{what}");
            assert!(
                out.errors
                    .iter()
                    .all(|e| matches!(e.kind(), "protocol" | "io" | "timeout")),
                "{what}: {:?}",
                out.errors
            );
        }
    }
}

#[tokio::test]
async fn rtu_bus_over_a_pty_serves_every_device_while_one_is_silent() {
    let pty = PtyPair::new();
    let (profile, values) = all_types();
    let state = state_with(1, &profile, &values);
    state
        .units
        .lock()
        .expect("lock")
        .insert(2, Image::default());
    state.silent.lock().expect("lock").insert(2);
    start_rtu(state.clone(), &pty.server);

    let rtu = |id: &str, unit: u8| ModbusDevice {
        transport: Transport::Rtu,
        address: None,
        port: Some(pty.client.clone()),
        timeout: Duration::from_millis(300),
        retries: 2,
        ..tcp_device(id, "", unit, "all-types")
    };
    let metrics = Metrics::new();
    let (rtx, mut rrx) = channel();
    let (ctx, mut crx) = condition_channel();
    let sinks = Sinks {
        readings: rtx,
        conditions: ctx,
        metrics: metrics.modbus.clone(),
    };
    let shutdown = CancellationToken::new();
    let tasks = Shutdown::with_token(shutdown.clone());
    spawn(
        vec![
            (rtu("ups-1", 1), profile.clone()),
            (rtu("ups-2", 2), profile.clone()),
        ],
        &sinks,
        &shutdown,
        &tasks,
    );

    let lost = timeout(Duration::from_secs(10), crx.recv())
        .await
        .expect("loss detected")
        .expect("open");
    assert!(lost.active && lost.source == "ups-2", "{lost:?}");
    // Over the next stretch the healthy device keeps being scanned: the silent one is only
    // probed, once per backoff interval, never with retries.
    let scans_before = metrics.modbus.scans.with_label_values(&["ups-1"]).get();
    let mut got = 0usize;
    let window = timeout(Duration::from_secs(3), async {
        while let Some(r) = rrx.recv().await {
            assert!(
                r.point.as_str().starts_with("ups-1/"),
                "only the healthy device reports"
            );
            got += 1;
        }
    });
    let _ = window.await;
    let scans = metrics.modbus.scans.with_label_values(&["ups-1"]).get() - scans_before;
    assert!(
        scans >= 5,
        "the healthy device was scanned only {scans} times in 3s"
    );
    assert!(got >= values.len() * 5);
    let probes = metrics.modbus.requests.with_label_values(&["ups-2"]).get();
    assert!(probes <= 10, "the silent device was asked {probes} times");
    assert_eq!(metrics.modbus.online.with_label_values(&["ups-1"]).get(), 1);
    assert_eq!(
        tasks.stop(Duration::from_secs(5)).await,
        Stopped::Clean,
        "stops"
    );
}
