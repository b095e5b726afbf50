//! `vigil-agent modbus read` and `modbus scan` as an installer runs them: the real binary
//! against a real Modbus TCP server on loopback.

mod support;

use std::process::Output;
use std::sync::Arc;

use support::modbus_server::{start_tcp, Image, State};
use vigil_core::Value;
use vigil_profile::load_file;

fn profile_path(name: &str) -> String {
    format!(
        "{}/../device-profiles/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

async fn agent(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("vigil-agent"))
            .args(&args)
            .output()
            .expect("runs")
    })
    .await
    .expect("joined")
}

async fn ups_server() -> (String, Arc<State>) {
    let profile = load_file(std::path::Path::new(&profile_path("ups"))).expect("valid");
    let mut image = Image::default();
    image.set(&profile, "battery_percent", &Value::Int(87));
    image.set(&profile, "on_battery", &Value::Bool(true));
    image.set(&profile, "input_voltage", &Value::Float(229.5));
    image.set(&profile, "runtime_remaining", &Value::Int(5400));
    image.set(&profile, "model_name", &Value::Text("UPS-3K".into()));
    let state = Arc::new(State::default());
    state.units.lock().expect("lock").insert(3, image.clone());
    state.units.lock().expect("lock").insert(7, image);
    (start_tcp(state.clone()).await.to_string(), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_prints_every_point_with_value_and_unit() {
    let (addr, _) = ups_server().await;
    let out = agent(vec![
        "modbus".into(),
        "read".into(),
        "--addr".into(),
        addr.clone(),
        "--unit".into(),
        "3".into(),
        "--profile".into(),
        profile_path("ups"),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("battery_percent"), ["battery_percent", "87", "%"]);
    assert_eq!(line("input_voltage"), ["input_voltage", "229.5", "V"]);
    assert_eq!(line("on_battery"), ["on_battery", "true"]);
    assert_eq!(line("model_name"), ["model_name", "UPS-3K"]);

    let out = agent(vec![
        "modbus".into(),
        "read".into(),
        "--addr".into(),
        addr,
        "--unit".into(),
        "3".into(),
        "--profile".into(),
        profile_path("ups"),
        "--json".into(),
    ])
    .await;
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let profile = load_file(std::path::Path::new(&profile_path("ups"))).expect("valid");
    assert_eq!(lines.len(), profile.points.len());
    let runtime = lines
        .iter()
        .find(|l| l["point"] == "runtime_remaining")
        .expect("present");
    assert_eq!(runtime["value"], 5400);
    assert_eq!(runtime["unit"], "s");
    assert!(lines
        .iter()
        .all(|l| l.as_object().is_some_and(|o| o.len() == 3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_of_a_unit_that_does_not_answer_says_what_to_do() {
    let (addr, _) = ups_server().await;
    let out = agent(vec![
        "modbus".into(),
        "read".into(),
        "--addr".into(),
        addr.clone(),
        "--unit".into(),
        "9".into(),
        "--profile".into(),
        profile_path("ups"),
        "--timeout".into(),
        "300ms".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no answer from {addr} unit 9 within 300ms: check wiring, unit id, or raise --timeout"
        )),
        "{stderr}"
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let out = agent(vec![
        "modbus".into(),
        "read".into(),
        "--addr".into(),
        closed.clone(),
        "--profile".into(),
        profile_path("ups"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach {closed}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_the_units_that_answer() {
    let (addr, _) = ups_server().await;
    let out = agent(vec![
        "modbus".into(),
        "scan".into(),
        "--addr".into(),
        addr.clone(),
        "--units".into(),
        "1-8".into(),
        "--timeout".into(),
        "200ms".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("found 2 unit(s) at {addr}: 3, 7")),
        "{stdout}"
    );
}
