//! The agent's Modbus source against the simulated facility (vigil-sim) on loopback: every
//! shipped profile served and read back with the simulator's own values, and the faults an
//! installer meets — a device that falls silent for a while, one that answers garbage now
//! and then, one that answers only exceptions — handled per device.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vigil_agent::config::{ModbusDevice, Parity, Transport};
use vigil_agent::metrics::Metrics;
use vigil_agent::source::modbus::{poller::Sinks, spawn};
use vigil_agent::source::{channel, condition_channel};
use vigil_core::Value;
use vigil_runtime::{Shutdown, Stopped};
use vigil_sim::{Facility, Simulator};

const PROFILES: [&str; 9] = [
    "perimeter-fence-controller",
    "microwave-barrier",
    "door-access-controller",
    "fire-alarm-panel",
    "smoke-heat-detector",
    "temp-humidity-sensor",
    "ups",
    "power-meter",
    "power-meter-cdab",
];

fn sim_config() -> String {
    let mut text = format!(
        "seed = 7\n[profiles]\ndirs = [\"{}/../device-profiles\"]\n",
        env!("CARGO_MANIFEST_DIR")
    );
    for p in PROFILES {
        text += &format!(
            "\n[[device]]\nid = \"{p}\"\nprofile = \"{p}\"\nlisten = \"127.0.0.1:0\"\nunit = 1\n"
        );
    }
    text += r#"
[[device]]
id = "ups-flaky"
profile = "ups"
listen = "127.0.0.1:0"
unit = 2
[[device.fault]]
kind = "silent"
from = "1500ms"
until = "4s"

[[device]]
id = "ups-garbage"
profile = "ups"
listen = "127.0.0.1:0"
unit = 3
[[device.fault]]
kind = "garbage"
probability = 0.3

[[device]]
id = "ups-broken"
profile = "ups"
listen = "127.0.0.1:0"
unit = 4
[[device.fault]]
kind = "exception"
code = 4
"#;
    text
}

fn device(id: &str, addr: &str, unit: u8) -> ModbusDevice {
    ModbusDevice {
        id: id.into(),
        profile: id.into(),
        transport: Transport::Tcp,
        address: Some(addr.into()),
        port: None,
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
        unit,
        poll: Duration::from_millis(200),
        timeout: Duration::from_millis(250),
        retries: 2,
        max_gap: 16,
        zone: None,
        zones: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reads_the_simulated_facility_and_survives_its_faults() {
    let facility = Facility::parse(Path::new("sim.toml"), &sim_config()).expect("valid sim config");
    let sim = Simulator::start(facility).await.expect("simulator starts");
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
    let profiles = vigil_profile::load_dir(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../device-profiles"
    )))
    .expect("shipped profiles");
    let profile = |name: &str| {
        profiles
            .iter()
            .find(|p| p.name == name)
            .expect("shipped")
            .clone()
    };
    let mut devices = Vec::new();
    for info in sim.devices() {
        let addr = sim.addr(&info.id).expect("bound").to_string();
        let mut d = device(&info.id, &addr, info.unit);
        d.profile = info.profile.clone();
        devices.push((d, profile(&info.profile)));
    }
    let points_total: usize = devices.iter().map(|(_, p)| p.points.len()).sum();
    spawn(devices, &sinks, &shutdown, &tasks);
    drop(sinks);

    // Collect for 6 s: the flaky device goes silent from 1.5 s to 4 s.
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut conditions = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            Some(r) = rrx.recv() => { latest.insert(r.point.as_str().to_owned(), r.value); }
            Some(c) = crx.recv() => conditions.push(c),
        }
    }
    assert_eq!(
        tasks.stop(Duration::from_secs(30)).await,
        Stopped::Clean,
        "the pollers stop on shutdown"
    );

    // Every point of every answering device was read, with the simulator's value.
    let broken_points = profile("ups").points.len();
    assert_eq!(
        latest.len(),
        points_total - broken_points,
        "every point of every healthy device read"
    );
    for (id, value) in &latest {
        let (dev, point) = id.split_once('/').expect("device/point");
        let expected = sim.value(dev, point).expect("simulated");
        match (&expected, value) {
            (Value::Float(e), Value::Float(g)) => assert!(
                (e - g).abs() <= 1.0 + e.abs() * 0.05,
                "{id}: read {g}, simulator {e}"
            ),
            _ => assert_eq!(value, &expected, "{id}"),
        }
    }
    // The silent window raised communication loss once and cleared it once, for that device only.
    let flaky: Vec<bool> = conditions
        .iter()
        .filter(|c| c.source == "ups-flaky")
        .map(|c| c.active)
        .collect();
    assert_eq!(flaky, vec![true, false], "{conditions:?}");
    assert!(
        conditions
            .iter()
            .all(|c| c.source == "ups-flaky" || c.source == "ups-broken"),
        "{conditions:?}"
    );
    // Garbage is counted as protocol errors, retried, and the device stays online.
    let m = &metrics.modbus;
    assert!(
        m.errors
            .with_label_values(&["ups-garbage", "protocol"])
            .get()
            > 0
    );
    assert_eq!(m.online.with_label_values(&["ups-garbage"]).get(), 1);
    assert!(
        sim.stats("ups-garbage")
            .expect("stats")
            .faults
            .values()
            .sum::<u64>()
            > 0
    );
    // A device that answers only exceptions is reachable (no comm loss) but every read fails.
    assert!(
        m.errors
            .with_label_values(&["ups-broken", "exception"])
            .get()
            > 0
    );
    assert!(
        !conditions.iter().any(|c| c.source == "ups-broken"),
        "exceptions are answers, not communication loss"
    );
    let healthy: BTreeSet<&str> = PROFILES.into_iter().collect();
    for id in healthy {
        assert_eq!(
            m.errors.with_label_values(&[id, "timeout"]).get(),
            0,
            "{id} never timed out"
        );
    }
    sim.stop().await;
}
