//! `[[camera]]` and `[[detector]]` are accepted (configs written for the coming camera and
//! anomaly pipelines must load) but this version acts on neither: `vigil-agent check` and
//! `vigil-agent run` say so plainly, naming the file, the line and the section. The real
//! binary, a real config file.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_vigil-agent");

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// A config with one camera (at line 14) and one detector (at line 19).
fn config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"[node]
id = "gw-prison-3"
site = "ministry/guangdong/guangzhou/baiyun/prison-3"

[uplink]
url = "mqtt://{uplink}"

[store]
path = "agent.db"

[metrics]
listen = "{metrics}"

[[camera]]
id = "cam-north-1"
url = "rtsp://127.0.0.1/stream1"
zone = "north-perimeter"

[[detector]]
type = "default"
points = ["env-1/temperature"]
"#,
        uplink = free_port(),
        metrics = free_port(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn agent() -> Command {
    let mut cmd = Command::new(AGENT);
    cmd.env_remove("VIGIL_LOG");
    cmd
}

#[test]
fn check_warns_about_each_ignored_section_and_still_accepts_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path());
    let out = agent()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = path.display();
    assert!(
        stdout.contains(&format!(
            "warning: {p}:14: [[camera]] cam-north-1 is not supported by this version and is ignored: no video is analysed"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "warning: {p}:19: [[detector]] type \"default\" is not supported by this version and is ignored: no streaming anomaly detection runs on its points"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("cameras   1 (ignored: not supported by this version)"),
        "{stdout}"
    );
}

/// Kills the agent if the test fails before it stops.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_logs_each_ignored_section_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path());
    let log = dir.path().join("agent.log");
    let mut guard = KillOnDrop(
        agent()
            .args(["run", "--log-format", "json", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("starts"),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read().contains("agent starting") {
        assert!(
            Instant::now() < deadline,
            "the agent did not start:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = guard.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    std::fs::File::open(&log)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("log");
    assert!(status.success(), "{text}");
    let p = path.display().to_string();
    let warnings: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "WARN")
        .collect();
    let camera = warnings
        .iter()
        .find(|w| w["fields"]["section"] == "[[camera]]")
        .unwrap_or_else(|| panic!("no camera warning in:\n{text}"));
    assert_eq!(
        camera["fields"]["message"],
        format!("{p}:14: [[camera]] cam-north-1 is not supported by this version and is ignored: no video is analysed")
    );
    assert_eq!(camera["fields"]["file"], p.as_str());
    assert_eq!(camera["fields"]["line"], 14);
    assert_eq!(camera["fields"]["name"], "cam-north-1");
    let detector = warnings
        .iter()
        .find(|w| w["fields"]["section"] == "[[detector]]")
        .unwrap_or_else(|| panic!("no detector warning in:\n{text}"));
    assert_eq!(
        detector["fields"]["message"],
        format!("{p}:19: [[detector]] type \"default\" is not supported by this version and is ignored: no streaming anomaly detection runs on its points")
    );
    assert_eq!(detector["fields"]["line"], 19);
}
