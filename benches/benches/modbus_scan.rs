//! Modbus scan harness: 1,000 points across 20 simulated devices on loopback.
//!
//! Reports, for the agent's scanner against vigil-sim:
//! - requests per scan ÷ the protocol minimum (counted by the simulator, which sees every
//!   request; the minimum is computed independently by dynamic programming) — must be 1.00;
//! - points/s when every device is scanned back to back (20 concurrent device tasks);
//! - agent CPU per 1,000 points/s: the CPU time of the agent's own thread (the simulator
//!   runs on other threads) divided by wall time and by thousands of points per second.
//!
//! Run: `cargo bench -p vigil-benches --bench modbus_scan` (`VIGIL_BENCH_SECONDS` sets the
//! measuring time, default 10).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use vigil_agent::source::modbus::link::{Endpoint, Link};
use vigil_agent::source::modbus::plan;
use vigil_agent::source::modbus::scan::{scan, ScanParams};
use vigil_profile::Profile;
use vigil_sim::{Facility, Simulator};

const DEVICES: usize = 20;
const POINTS_PER_DEVICE: usize = 50;
const MAX_GAP: u16 = 16;

/// A 50-point device model: bits, 16/32/64-bit registers in both word orders, spread over
/// the four tables with gaps a real register map has.
fn bench_profile() -> String {
    let mut y = String::from("name: bench-device\nmanufacturer: bench\nmodel: b50\npoints:\n");
    let mut n = 0;
    for i in 0..10u16 {
        y += &format!(
            "  - {{ name: di{i}, table: discrete_input, address: {}, type: bool }}\n",
            i * 3
        );
        n += 1;
    }
    for i in 0..5u16 {
        y += &format!(
            "  - {{ name: coil{i}, table: coil, address: {}, type: bool }}\n",
            100 + i
        );
        n += 1;
    }
    let types = ["u16", "i16", "u32", "f32", "i32", "u64", "f64"];
    let mut addr = 0u16;
    for i in 0..20u16 {
        let t = types[usize::from(i) % types.len()];
        let wo = if i % 2 == 0 { "big" } else { "little" };
        y += &format!("  - {{ name: in{i}, table: input, address: {addr}, type: {t}, word_order: {wo}, scale: 0.1 }}\n");
        addr += match t {
            "u16" | "i16" => 1,
            "u32" | "f32" | "i32" => 2,
            _ => 4,
        } + if i % 5 == 4 { 20 } else { 0 };
        n += 1;
    }
    for i in 0..15u16 {
        y += &format!(
            "  - {{ name: hr{i}, table: holding, address: {}, type: u16 }}\n",
            200 + i * 2 + if i > 9 { 150 } else { 0 }
        );
        n += 1;
    }
    assert_eq!(n, POINTS_PER_DEVICE);
    y
}

/// CPU time of the calling thread, from the scheduler's accounting (nanoseconds).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn main() {
    let seconds: u64 = std::env::var("VIGIL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bench-device.yaml"), bench_profile()).expect("write profile");
    let profile: Profile =
        vigil_profile::load_file(&dir.path().join("bench-device.yaml")).expect("valid profile");
    let mut sim_toml = format!(
        "seed = 1\n[profiles]\ndirs = [\"{}\"]\n",
        dir.path().display()
    );
    for d in 0..DEVICES {
        let _ = write!(sim_toml, "\n[[device]]\nid = \"dev-{d:02}\"\nprofile = \"bench-device\"\nlisten = \"127.0.0.1:0\"\nunit = 1\n");
    }
    let facility =
        Facility::parse(Path::new("bench-sim.toml"), &sim_toml).expect("valid sim config");

    // The simulator on its own runtime and threads.
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = sim_rt
        .block_on(Simulator::start(facility))
        .expect("simulator starts");
    let addrs: Vec<(String, String)> = sim
        .devices()
        .iter()
        .map(|d| (d.id.clone(), sim.addr(&d.id).expect("bound").to_string()))
        .collect();

    let requests = plan::plan(&profile.points, MAX_GAP);
    let minimum = plan::minimum_requests(&profile.points, MAX_GAP);
    // The agent on this thread alone.
    let agent_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let params = ScanParams {
        unit: 1,
        timeout: Duration::from_secs(1),
        retries: 0,
    };
    let (scans, points, wall, cpu) = agent_rt.block_on(async {
        let stop = Instant::now() + Duration::from_secs(seconds);
        let cpu0 = thread_cpu();
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (id, addr) in addrs.clone() {
            let (profile, requests) = (profile.clone(), requests.clone());
            set.spawn(device_loop(id, addr, profile, requests, params, stop));
        }
        let (mut scans, mut points) = (0u64, 0u64);
        while let Some(r) = set.join_next().await {
            let (s, p) = r.expect("device task");
            scans += s;
            points += p;
        }
        (scans, points, t0.elapsed(), thread_cpu() - cpu0)
    });
    let served: u64 = addrs
        .iter()
        .map(|(id, _)| sim.stats(id).expect("stats").requests)
        .sum();
    let ratio = served as f64 / (scans as f64 * minimum as f64);
    let pps = points as f64 / wall.as_secs_f64();
    let cpu_share = cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "modbus_scan: {DEVICES} devices x {POINTS_PER_DEVICE} points = {} points per facility scan",
        DEVICES * POINTS_PER_DEVICE
    );
    println!("  reads per device scan: {} (protocol minimum {minimum}); requests served {served} over {scans} device scans", requests.len());
    println!("  requests per scan / protocol minimum: {ratio:.2}");
    println!(
        "  throughput: {pps:.0} points/s ({:.0} facility scans/s) over {:.1} s",
        pps / (DEVICES * POINTS_PER_DEVICE) as f64,
        wall.as_secs_f64()
    );
    println!(
        "  agent CPU: {:.1}% of one core at that rate = {:.2}% of a core per 1,000 points/s",
        cpu_share * 100.0,
        cpu_share * 100.0 / (pps / 1000.0)
    );
    assert!(
        (ratio - 1.0).abs() < 1e-9,
        "the scanner must issue exactly the protocol minimum"
    );
    sim_rt.block_on(sim.stop());
}

/// One device scanned back to back until `stop`: (scans, points read).
async fn device_loop(
    id: String,
    addr: String,
    profile: Profile,
    requests: Vec<plan::ReadRequest>,
    params: ScanParams,
    stop: Instant,
) -> (u64, u64) {
    let mut link = Link::new(Endpoint::Tcp(addr));
    let (mut scans, mut points) = (0u64, 0u64);
    while Instant::now() < stop {
        let out = scan(&mut link, &id, &profile, &requests, params, false).await;
        assert!(out.errors.is_empty(), "{id}: {:?}", out.errors);
        scans += 1;
        points += out.readings.len() as u64;
    }
    (scans, points)
}
