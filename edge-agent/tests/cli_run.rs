//! `vigil-agent check` and `vigil-agent run` as an installer uses them: the real binary, a
//! real config file, a real Modbus server on loopback.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::modbus_server::{start_tcp, Image, State};
use vigil_core::Value;

fn profiles_dir() -> String {
    format!("{}/../device-profiles", env!("CARGO_MANIFEST_DIR"))
}

fn config(dir: &Path, devices: &str, metrics: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[node]
id = "gw-prison-3"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://127.0.0.1:1883"

[store]
path = "{store}"

[profiles]
dirs = ["{profiles}"]

[metrics]
listen = "{metrics}"
{devices}"#,
        store = dir.join("agent.db").display(),
        profiles = profiles_dir(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn agent() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("vigil-agent"))
}

#[test]
fn check_accepts_a_good_config_and_summarises_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devices = r#"
[[modbus.device]]
id = "ups-1"
profile = "ups"
transport = "tcp"
address = "127.0.0.1:1502"

[[modbus.device]]
id = "fire-1"
profile = "fire-alarm-panel"
transport = "rtu"
port = "/dev/ttyS1"
unit = 4
poll = "2s"
"#;
    let out = agent()
        .args(["check", "--config"])
        .arg(config(dir.path(), devices, "127.0.0.1:9901"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("modbus    2 devices (1 tcp, 1 rtu on 1 bus(es))"),
        "{stdout}"
    );
}

#[test]
fn check_names_file_line_and_key_of_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devices = r#"
[[modbus.device]]
id = "ups-1"
profile = "ups-9000"
transport = "tcp"
address = "127.0.0.1:1502"

[[modbus.device]]
id = "fire-1"
profile = "fire-alarm-panel"
transport = "rtu"
unit = 250
"#;
    let path = config(dir.path(), devices, "127.0.0.1:9901");
    let out = agent()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "error: {p}:23: modbus.device[1].port: an rtu device needs port"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: {p}:27: modbus.device[1].unit: unit 250 is out of range"
        )),
        "{stderr}"
    );

    let fixed = std::fs::read_to_string(&path)
        .expect("read")
        .replace("unit = 250", "port = \"/dev/ttyS1\"\nunit = 3");
    std::fs::write(&path, fixed).expect("write");
    let out = agent()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!(
            "error: {p}:19: modbus.device[0].profile: no profile named \"ups-9000\""
        )),
        "{stderr}"
    );

    let typo = std::fs::read_to_string(&path)
        .expect("read")
        .replace("poll", "pol")
        .replace(
            "transport = \"tcp\"",
            "transport = \"tcp\"\ntimeot = \"1s\"",
        );
    std::fs::write(&path, typo).expect("write");
    let out = agent()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {p}:21: modbus.device[0].timeot: unknown field `timeot`"
        )),
        "{stderr}"
    );
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Kills the agent process if the test fails before it stops it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[test]
fn run_polls_devices_serves_points_and_metrics_and_stops_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let profile = vigil_profile::load_file(Path::new(&format!("{}/ups.yaml", profiles_dir())))
        .expect("valid");
    let mut image = Image::default();
    image.set(&profile, "battery_percent", &Value::Int(64));
    let state = Arc::new(State::default());
    state.units.lock().expect("lock").insert(1, image);
    let modbus = rt.block_on(start_tcp(state));

    let dir = tempfile::tempdir().expect("tempdir");
    let http = free_port();
    let devices = format!("\n[[modbus.device]]\nid = \"ups-1\"\nprofile = \"ups\"\ntransport = \"tcp\"\naddress = \"{modbus}\"\npoll = \"200ms\"\n\n[[modbus.device]]\nid = \"ups-dead\"\nprofile = \"ups\"\ntransport = \"tcp\"\naddress = \"{}\"\npoll = \"200ms\"\ntimeout = \"200ms\"\n", free_port());
    let path = config(dir.path(), &devices, &http);
    let mut guard = KillOnDrop(
        agent()
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts"),
    );
    let child = &mut guard.0;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut points = String::new();
    while Instant::now() < deadline {
        if let Some(body) = http_get(&http, "/api/v1/points") {
            if body.contains("ups-1/battery_percent") {
                points = body;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = points.split("\r\n\r\n").nth(1).expect("body");
    let json: serde_json::Value = serde_json::from_str(body).expect("json");
    let battery = json["points"]
        .as_array()
        .expect("points")
        .iter()
        .find(|p| p["point"] == "ups-1/battery_percent")
        .expect("read");
    assert_eq!(battery["value"], 64);
    assert_eq!(battery["quality"], "good");
    let metrics = http_get(&http, "/metrics").expect("metrics");
    assert!(
        metrics.contains(r#"vigil_modbus_device_online{device="ups-1"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vigil_modbus_device_online{device="ups-dead"} 0"#),
        "{metrics}"
    );

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(status.success(), "{log}");
    assert!(
        log.contains("modbus device lost") && log.contains("ups-dead"),
        "{log}"
    );
    assert!(log.contains("agent stopping"), "{log}");
}
