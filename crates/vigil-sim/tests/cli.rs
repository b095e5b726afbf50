//! The `vigil-sim` binary: config errors name file, line and key and exit 2; the example
//! facility validates; a run prints what it serves and stops on Ctrl-C (SIGINT).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::profiles_dir;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/facility.toml")
}

#[test]
fn config_errors_name_file_line_and_key_and_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sim.toml");
    std::fs::write(
        &file,
        format!(
            "[profiles]\ndirs = [{:?}]\n\n[[device]]\nid = \"a\"\nprofile = \"no-such-profile\"\nlisten = \"127.0.0.1:0\"\n\n[[device]]\nid = \"a\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n[device.points.nope]\nkind = \"constant\"\nvalue = 1\n",
            profiles_dir().display().to_string()
        ),
    )
    .expect("write");
    let out = Command::cargo_bin("vigil-sim")
        .expect("binary")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        stderr.contains(&format!(
            "{f}:10: device[1].id: device \"a\" is already declared"
        )),
        "{stderr}"
    );
    // The duplicate id is a schema-level problem: profile problems come once it is fixed.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).expect("read").replacen(
            "id = \"a\"\nprofile = \"ups\"",
            "id = \"b\"\nprofile = \"ups\"",
            1,
        ),
    )
    .expect("write");
    let out = Command::cargo_bin("vigil-sim")
        .expect("binary")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{f}:6: device[0].profile: no profile named \"no-such-profile\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{f}:13: device[1].points.nope: profile \"ups\" has no point \"nope\""
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_exits_2() {
    let out = Command::cargo_bin("vigil-sim")
        .expect("binary")
        .args(["--config", "/nonexistent/sim.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sim.toml: cannot read config")
    );
}

#[test]
fn the_example_facility_is_valid() {
    let facility = vigil_sim::Facility::load(&example()).unwrap_or_else(|e| panic!("{e}"));
    assert!(facility.config.devices.len() >= 10);
    let profiles: std::collections::BTreeSet<&str> = facility
        .profiles
        .values()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(profiles.len(), 9, "every shipped profile: {profiles:?}");
    let out = Command::cargo_bin("vigil-sim")
        .expect("binary")
        .arg("--check")
        .arg("--config")
        .arg(example())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn runs_prints_what_it_serves_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sim.toml");
    std::fs::write(
        &file,
        format!(
            "[profiles]\ndirs = [{:?}]\n\n[[device]]\nid = \"ups-1\"\nprofile = \"ups\"\nlisten = \"127.0.0.1:0\"\n",
            profiles_dir().display().to_string()
        ),
    )
    .expect("write");
    let mut child = Command::cargo_bin("vigil-sim")
        .expect("binary")
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l: &String| l.starts_with("Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no banner in time: {lines:?}");
            }
        }
    }
    let device = lines
        .iter()
        .find(|l| l.contains("ups-1"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(device.contains("modbus-tcp 127.0.0.1:"), "{device}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
