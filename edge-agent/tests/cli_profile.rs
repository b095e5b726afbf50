//! `vigil-agent profile validate` as an installer runs it: the real binary on real files.

use std::path::PathBuf;

use assert_cmd::Command;

fn profiles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../device-profiles")
}

#[test]
fn shipped_profiles_validate() {
    let files: Vec<PathBuf> = std::fs::read_dir(profiles())
        .expect("device-profiles exists")
        .map(|e| e.expect("entry").path())
        .collect();
    let out = Command::cargo_bin("vigil-agent")
        .expect("built")
        .arg("profile")
        .arg("validate")
        .args(&files)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok  ")).count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn a_broken_profile_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ups.yaml");
    let text = std::fs::read_to_string(profiles().join("ups.yaml"))
        .expect("read")
        .replace("type: u32", "type: u33");
    std::fs::write(&file, text).expect("write");
    let out = Command::cargo_bin("vigil-agent")
        .expect("built")
        .args(["profile", "validate"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: {}:27: points[10].type: unknown variant `u33`",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn no_arguments_prints_help() {
    let out = Command::cargo_bin("vigil-agent")
        .expect("built")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: vigil-agent"));
}
