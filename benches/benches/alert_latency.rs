//! Alert latency: from a reading changing on a device to the alert event on the hub's live
//! stream, on loopback.
//!
//! Everything runs in this process, on one tokio runtime: a `vigil-sim` door access
//! controller (`device-profiles/door-access-controller.yaml`) whose `reader_tamper` input
//! (a major, non-latching alarm with no delay) is toggled by a `schedule` scenario — raise,
//! clear, raise, … about every 2 s —, a `vigil-agent` polling it over Modbus TCP every
//! 100 ms, and a `vigil-hub` with its embedded broker, on ephemeral ports. A client holds
//! `GET /api/v1/stream` open. For each transition the latency is the time from the
//! simulator's change instant (its start plus the step's offset: a scenario is a pure
//! function of the time since the start) to the moment the stream delivers the matching
//! `raised` or `cleared` event of the alert.
//!
//! The reading's timestamp (`at` in the event: when the agent's poll got the answer) splits
//! it in two: change → sample, the sampling delay of polling (uniform over one poll
//! interval, so half a poll interval on average; the steps are spaced 2.00–2.10 s apart so
//! that they fall on every phase of the poll cycle), and sample → stream, what the rest
//! of the chain adds (detection, alert manager, the agent's durable commit, the uplink, the
//! broker, the hub's durable commit, the feed, SSE).
//!
//! `cargo bench -p vigil-benches --bench alert_latency` (60 transitions, about 2 min 15 s;
//! `ALERT_LATENCY_TRANSITIONS` changes the count). Under `cargo test` (no `--bench`) it
//! does a 4-transition smoke run and prints no figures.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEVICE: &str = "doors-block-a";
const POINT: &str = "reader_tamper";
const NODE: &str = "gw-prison-3";
/// The agent's Modbus poll interval.
const POLL: Duration = Duration::from_millis(100);
/// When the first transition happens, after the simulator starts: time for the agent to
/// start, connect and take its first readings.
const FIRST_STEP: Duration = Duration::from_secs(5);
/// How long to wait for the last transition's event.
const TAIL: Duration = Duration::from_secs(5);

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let parts: Vec<&str> = s.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// One scheduled change of the point: its offset from the simulator's start and the value
/// it takes (`true`: the alarm raises).
#[derive(Debug, Clone, Copy)]
struct Step {
    at: Duration,
    value: bool,
}

/// `n` alternating steps from [`FIRST_STEP`], `spacing` plus 0–99 ms apart (spread over the
/// phases of the poll cycle).
fn steps(n: usize, spacing: Duration) -> Vec<Step> {
    let mut at = FIRST_STEP;
    (0..n)
        .map(|k| {
            let step = Step {
                at,
                value: k % 2 == 0,
            };
            at += spacing + Duration::from_millis((k as u64 * 37) % 100);
            step
        })
        .collect()
}

fn sim_toml(steps: &[Step]) -> String {
    let list: Vec<String> = steps
        .iter()
        .map(|s| format!("{{ at = \"{}ms\", value = {} }}", s.at.as_millis(), s.value))
        .collect();
    let mut text = format!(
        "seed = 1\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[[device]]\nid = \"{DEVICE}\"\nprofile = \"door-access-controller\"\nlisten = \"127.0.0.1:0\"\n[device.points.{POINT}]\nkind = \"schedule\"\ninitial = false\nsteps = [{}]\n",
        list.join(", "),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    // Locked doors: no "door unlocked" alerts besides the one under test.
    for door in 1..=4 {
        text += &format!("[device.points.door{door}_locked]\nkind = \"constant\"\nvalue = true\n");
    }
    text
}

fn agent_toml(dir: &Path, broker: &str, device: &str) -> std::path::PathBuf {
    let text = format!(
        "[node]\nid = \"{NODE}\"\nsite = \"ministry/guangdong/guangzhou/baiyun/prison-3\"\n\n[uplink]\nurl = \"{broker}\"\n\n[store]\npath = \"agent.db\"\n\n[profiles]\ndirs = [\"{root}/../device-profiles\"]\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[[modbus.device]]\nid = \"{DEVICE}\"\nprofile = \"door-access-controller\"\ntransport = \"tcp\"\naddress = \"{device}\"\npoll = \"{}ms\"\nzone = \"block-a\"\n",
        POLL.as_millis(),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent.toml");
    path
}

/// Gives the agent its identity from the hub's CA (created at the hub's start, in `ca/`
/// next to its store), at the agent's default `[tls]` paths: what `vigil-agent enroll`
/// writes, without the HTTP round trip.
fn enroll_agent(dir: &Path) {
    let ca = vigil_pki::Ca::load(&dir.join("ca")).expect("the hub's CA");
    let node = vigil_core::NodeId::new(NODE).expect("a node id");
    let request = vigil_pki::node_key_and_csr(&node).expect("a key and CSR");
    let cert = ca
        .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
        .expect("a node certificate");
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("mkdir tls");
    vigil_pki::write_private_key(&tls.join("node.key"), &request.key_pem).expect("node.key");
    vigil_pki::write_certificate(&tls.join("node.pem"), &cert.cert_pem).expect("node.pem");
    vigil_pki::write_certificate(&tls.join("ca.pem"), ca.cert_pem()).expect("ca.pem");
}

fn hub_toml(dir: &Path) -> std::path::PathBuf {
    // The gateway is bound to its facility, as its enrollment would bind it: the hub admits
    // only what a bound child sends.
    let text = "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"bench hub\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[mqtt]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"hub.db\"\n\n[[child]]\nnode = \"gw-prison-3\"\nsite = \"ministry/guangdong/guangzhou/baiyun/prison-3\"\n";
    let path = dir.join("hub.toml");
    std::fs::write(&path, text).expect("write hub.toml");
    path
}

/// One SSE message and when it was read off the socket.
#[derive(Debug)]
struct Message {
    received: Instant,
    name: String,
    data: String,
}

/// Reads `GET /api/v1/stream` from `addr` and sends each message on `tx` as it arrives.
/// Handles chunked and plain bodies.
async fn read_stream(
    addr: std::net::SocketAddr,
    token: String,
    tx: mpsc::UnboundedSender<Message>,
) {
    let stream = TcpStream::connect(addr).await.expect("connect to the hub");
    stream.set_nodelay(true).expect("nodelay");
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(
            format!(
                "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("send the request");
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("http/1.1 ") {
            assert!(lower.contains(" 200"), "the stream answered {line}");
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let bytes = if chunked {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            else {
                return;
            };
            if size == 0 {
                return;
            }
            let mut chunk = vec![0u8; size + 2];
            if stream.read_exact(&mut chunk).await.is_err() {
                return;
            }
            chunk.truncate(size);
            chunk
        } else {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf[..n].to_vec(),
            }
        };
        let received = Instant::now();
        text.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = Vec::new();
            for l in block.lines() {
                if let Some(v) = l.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = l.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            if !data.is_empty()
                && tx
                    .send(Message {
                        received,
                        name,
                        data: data.join("\n"),
                    })
                    .is_err()
            {
                return;
            }
        }
    }
}

fn millis_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The nearest-rank percentile `p` (0–100) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    format!(
        "p50 {:>6.1} ms   p90 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms   mean {:>6.1} ms",
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
        mean
    )
}

/// The latencies of one run.
struct Measured {
    /// Change → stream, ms, per transition seen.
    total: Vec<f64>,
    /// Change → the agent's reading, ms.
    sampling: Vec<f64>,
    /// The agent's reading → stream, ms.
    pipeline: Vec<f64>,
    raised: usize,
    cleared: usize,
}

async fn measure(steps: Vec<Step>) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();

    // The hub first: the agent needs its broker. The stream needs a token (the hub refuses
    // anonymous calls), made as `vigil-hub token add` does.
    let hub_path = hub_toml(dir.path());
    let hub_config = vigil_hub::config::HubConfig::load(&hub_path).expect("valid hub.toml");
    let token = vigil_hub::auth::admin::Admin::open_or_create(&hub_config, "cli:bench".to_owned())
        .expect("open the hub's store")
        .add_token(
            "bench",
            vigil_hub::auth::Role::Viewer,
            &vigil_core::SitePath::new("ministry").expect("a site"),
            None,
        )
        .expect("the bench's token");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let hub = tokio::spawn(vigil_hub::run::run(
        hub_config,
        shutdown.clone(),
        Some(started_tx),
    ));
    let started = tokio::time::timeout(Duration::from_secs(20), started_rx)
        .await
        .expect("the hub started in time")
        .expect("the hub started");

    // The stream client, before anything can happen.
    let (tx, mut messages) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_stream(started.http, token, tx));

    let facility = vigil_sim::Facility::parse(Path::new("sim.toml"), &sim_toml(&steps))
        .expect("valid sim.toml");
    let sim = vigil_sim::Simulator::start(facility)
        .await
        .expect("the simulator started");
    let elapsed = sim.elapsed();
    let sim_start = Instant::now() - elapsed;
    let sim_start_wall = SystemTime::now() - elapsed;

    enroll_agent(dir.path());
    let agent_path = agent_toml(
        dir.path(),
        &started.broker,
        &sim.addr(DEVICE).expect("a TCP device").to_string(),
    );
    let (agent_config, profiles) =
        vigil_agent::check_cmd::load_checked(&agent_path).expect("valid agent.toml");
    let agent = tokio::spawn(vigil_agent::run::run(
        agent_config,
        profiles,
        shutdown.clone(),
        None,
    ));

    let key = format!("{NODE}/{DEVICE}/{POINT}/state");
    let last = steps.last().map_or(FIRST_STEP, |s| s.at);
    let end = sim_start + last + TAIL;
    let mut matched = vec![false; steps.len()];
    let mut out = Measured {
        total: Vec::new(),
        sampling: Vec::new(),
        pipeline: Vec::new(),
        raised: 0,
        cleared: 0,
    };
    while out.total.len() < steps.len() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let Ok(Some(message)) = tokio::time::timeout(end - now, messages.recv()).await else {
            break;
        };
        let raised = match message.name.as_str() {
            "raised" => true,
            "cleared" => false,
            _ => continue,
        };
        let Ok(data) = serde_json::from_str::<serde_json::Value>(&message.data) else {
            continue;
        };
        if data["alert"]["key"].as_str() != Some(key.as_str()) {
            continue;
        }
        // The latest step of this direction at or before the arrival, not yet matched.
        let Some(k) = (0..steps.len()).rev().find(|&k| {
            !matched[k] && steps[k].value == raised && sim_start + steps[k].at <= message.received
        }) else {
            continue;
        };
        matched[k] = true;
        let change = sim_start + steps[k].at;
        let change_wall_ms = millis_since_epoch(sim_start_wall + steps[k].at);
        let total = (message.received - change).as_secs_f64() * 1000.0;
        out.total.push(total);
        if let Some(at) = data["event"]["body"]["at"]
            .as_str()
            .and_then(|s| s.parse::<vigil_core::Timestamp>().ok())
        {
            let sampling = at.as_millis() as f64 - change_wall_ms;
            out.sampling.push(sampling);
            out.pipeline.push(total - sampling);
        }
        if raised {
            out.raised += 1;
        } else {
            out.cleared += 1;
        }
    }
    shutdown.cancel();
    let _ = agent.await;
    let _ = hub.await;
    reader.abort();
    sim.stop().await;
    out
}

fn main() {
    let full = std::env::args().skip(1).any(|a| a == "--bench");
    let n = if full {
        std::env::var("ALERT_LATENCY_TRANSITIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    } else {
        4
    };
    let spacing = if full {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(1)
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "alert_latency: simulator change → alert event on the hub's SSE stream (GET /api/v1/stream), loopback, {cores} cores, load average {} at start",
        load_average()
    );
    println!("reproduce: cargo bench -p vigil-benches --bench alert_latency");
    println!(
        "setup: vigil-sim door-access-controller, {POINT} toggled {n} times ({} ms + 0–99 ms apart) → vigil-agent (Modbus poll {} ms) → vigil-hub (embedded broker), all in-process",
        spacing.as_millis(),
        POLL.as_millis()
    );
    let steps = steps(n, spacing);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let measured = runtime.block_on(measure(steps));
    let seen = measured.total.len();
    assert!(
        seen > 0,
        "no transition reached the hub's stream within the run"
    );
    if !full {
        println!(
            "smoke run (no --bench): {seen}/{n} transitions reached the stream in {:.1} s; not a measurement",
            started.elapsed().as_secs_f64()
        );
        return;
    }
    println!(
        "transitions on the stream: {seen}/{n} ({} raised, {} cleared), run {:.0} s",
        measured.raised,
        measured.cleared,
        started.elapsed().as_secs_f64()
    );
    println!("change → stream   {}", summary(&measured.total));
    if !measured.sampling.is_empty() {
        println!("  change → sample {}", summary(&measured.sampling));
        println!("  sample → stream {}", summary(&measured.pipeline));
    }
    println!(
        "poll interval {} ms: the expected sampling delay is half a poll interval ({} ms) on average, up to one interval",
        POLL.as_millis(),
        POLL.as_millis() / 2
    );
    println!(
        "(nearest-rank percentiles over {seen} samples: below 100 samples p99 is the maximum; load average at the end {})",
        load_average()
    );
}
