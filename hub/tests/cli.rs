//! The `vigil-hub` binary: config errors exit 2 naming file, line and key; `run` serves on
//! the configured address (HTTP and the embedded broker), creates the store's directory, logs
//! as JSON on request and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

fn hub() -> Command {
    Command::cargo_bin("vigil-hub").expect("the binary is built")
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

const GOOD: &str = "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"Baiyun\"\n\n[store]\npath = \"STORE\"\n";

#[test]
fn config_errors_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, needle) in [
        (
            GOOD.replace("name = \"Baiyun\"", "name = \"Baiyun\"\nnmae = \"typo\""),
            ":5: node.nmae: unknown field `nmae`",
        ),
        (
            GOOD.replace("\"county\"", "\"town\""),
            ":3: node.level: unknown variant `town`",
        ),
        (
            GOOD.replace("\"county\"", "\"ministry\"") + "\n[parent]\nurl = \"mqtt://x:1\"\n",
            ":9: parent: the ministry is the top of the network",
        ),
        (
            GOOD.to_owned() + "\n[mqtt]\nlisten = \"127.0.0.1:1883\"\nurl = \"mqtt://b:1883\"\n",
            ":11: mqtt.url: give either listen",
        ),
        (
            GOOD.replace("[store]\npath = \"STORE\"\n", ""),
            ":1: missing field `store`",
        ),
    ] {
        let path = write_config(dir.path(), &text);
        let out = hub()
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let expected = format!("error: {}{needle}", path.display());
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in:\n{stderr}"
        );
    }
    let out = hub()
        .args(["run", "--config", "/nonexistent/hub.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}

#[test]
fn help_names_run() {
    let out = hub().arg("--help").output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("run"));
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` with a plain socket; the status line and the body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn run_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("state").join("hub.db");
    let port = free_port();
    let mqtt_port = free_port();
    let text = GOOD.replace("STORE", &store.display().to_string())
        + &format!(
            "\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[mqtt]\nlisten = \"127.0.0.1:{mqtt_port}\"\n"
        );
    let path = write_config(dir.path(), &text);
    let mut child = hub()
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        match get(addr, "/healthz") {
            Ok(resp) => break resp,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                panic!("the hub did not serve in time: {e}");
            }
        }
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let list = get(addr, "/api/v1/alerts").expect("list");
    assert!(list.contains("{\"alerts\":[],\"next\":null}"), "{list}");
    assert!(store.exists(), "the store and its directory were created");
    assert!(
        TcpStream::connect(("127.0.0.1", mqtt_port)).is_ok(),
        "the embedded broker listens on [mqtt] listen"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the hub did not stop on SIGTERM in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    let logs: Vec<serde_json::Value> = BufReader::new(child.stderr.take().expect("stderr"))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("a JSON log line"))
        .collect();
    let listening = logs
        .iter()
        .find(|l| l["fields"]["message"] == "hub listening")
        .expect("a 'hub listening' line");
    assert_eq!(listening["fields"]["http"], addr.to_string());
    assert_eq!(listening["fields"]["node"], "county-baiyun");
    let mqtt = logs
        .iter()
        .find(|l| l["fields"]["message"] == "MQTT side started")
        .expect("an 'MQTT side started' line");
    assert_eq!(
        mqtt["fields"]["broker"],
        format!("mqtt://127.0.0.1:{mqtt_port}")
    );
    assert!(logs.iter().any(|l| l["fields"]["message"] == "hub stopped"));
}
