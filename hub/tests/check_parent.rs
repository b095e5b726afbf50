//! A hub whose `[parent]` certificate names another node, or whose `[parent] ca` is not the
//! certificate's issuer, refuses to start: `vigil-hub run` exits 2 with the message
//! `vigil-hub check` gives (file, line, key, the file at fault and what to do), instead of
//! being refused by the parent's gate and retrying forever. With the right files it starts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use vigil_core::NodeId;
use vigil_pki::Ca;

fn hub() -> Command {
    Command::cargo_bin("vigil-hub").expect("the binary is built")
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The parent identity files `vigil-hub enroll` would write, in `dir`: a certificate for
/// `node` issued by `issuer`, its key, and `trusted` as the CA file.
fn parent_files(dir: &Path, node: &str, issuer: &Ca, trusted: &Ca) -> [PathBuf; 3] {
    std::fs::create_dir_all(dir).expect("mkdir");
    let node = NodeId::new(node).expect("node");
    let request = vigil_pki::ca::node_key_and_csr(&node).expect("csr");
    let issued = issuer
        .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
        .expect("issued");
    let [ca, cert, key] = ["ca.pem", "node.pem", "node.key"].map(|f| dir.join(f));
    vigil_pki::files::write_certificate(&ca, trusted.cert_pem()).expect("ca");
    vigil_pki::files::write_certificate(&cert, &issued.cert_pem).expect("cert");
    vigil_pki::files::write_private_key(&key, &request.key_pem).expect("key");
    [ca, cert, key]
}

/// A county hub's config with an `mqtts://` parent (nobody listens there) using `files`.
fn config(dir: &Path, files: &[PathBuf; 3], http: u16) -> PathBuf {
    let text = format!(
        "[node]\nid = \"county-baiyun\"\nlevel = \"county\"\nname = \"Baiyun\"\n\n\
         [store]\npath = \"{store}\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n\n\
         [parent]\nurl = \"mqtts://127.0.0.1:{parent}\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
        store = dir.join("data/hub.db").display(),
        mqtt = free_port(),
        parent = free_port(),
        ca = files[0].display(),
        cert = files[1].display(),
        key = files[2].display(),
    );
    let path = dir.join("hub.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Waits (at most 30 s) for `child` to exit; its code and stderr.
fn exit_of(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vigil-hub run did not exit: it started with a parent that would refuse it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    (status.code(), stderr)
}

fn run(config: &Path) -> Child {
    hub()
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

fn check(config: &Path) -> (Option<i32>, String) {
    let out = hub()
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the hub at `port` answers `/healthz` with 200, within 20 s.
fn serves(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A hub with a certificate for `node` from the parent's CA, and the parent's CA file or
/// another CA's (`other_ca`) at `[parent] ca`: `run` and `check` both exit 2, and what they
/// print has each of `needles` (`{ca}` and `{cert}` stand for the files' paths), the config
/// file's name and nothing started.
fn refused(node: &str, other_ca: bool, needles: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent_ca = Ca::load_or_create(&dir.path().join("parent-ca"), "city CA").expect("ca");
    let other = Ca::load_or_create(&dir.path().join("other-ca"), "another CA").expect("ca");
    let trusted = if other_ca { &other } else { &parent_ca };
    let files = parent_files(&dir.path().join("data/parent"), node, &parent_ca, trusted);
    let path = config(dir.path(), &files, free_port());
    let needles: Vec<String> = needles
        .iter()
        .map(|n| {
            n.replace("{ca}", &files[0].display().to_string())
                .replace("{cert}", &files[1].display().to_string())
        })
        .chain([format!("error: {}:", path.display())])
        .collect();
    for (what, (code, stderr)) in [("run", exit_of(run(&path))), ("check", check(&path))] {
        assert_eq!(code, Some(2), "{what}: {stderr}");
        for needle in &needles {
            assert!(
                stderr.contains(needle.as_str()),
                "{what}: {needle} in {stderr}"
            );
        }
    }
    assert!(
        !dir.path().join("data/hub.db").exists(),
        "nothing was started"
    );
}

#[test]
fn a_certificate_for_another_node_refuses_the_start() {
    refused(
        "county-other",
        false,
        &["node.id", "\"county-other\"", "{cert}", "enroll again"],
    );
}

#[test]
fn a_ca_file_that_did_not_issue_the_certificate_refuses_the_start() {
    refused(
        "county-baiyun",
        true,
        &[
            "parent.ca",
            "{ca}",
            "{cert}",
            "another CA",
            "vigil-hub enroll",
        ],
    );
}

#[test]
fn the_parents_certificate_for_this_node_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent_ca = Ca::load_or_create(&dir.path().join("parent-ca"), "city CA").expect("ca");
    let files = parent_files(
        &dir.path().join("data/parent"),
        "county-baiyun",
        &parent_ca,
        &parent_ca,
    );
    let port = free_port();
    let path = config(dir.path(), &files, port);
    let (code, stderr) = check(&path);
    assert_eq!(code, Some(0), "{stderr}");
    let mut child = run(&path);
    let up = serves(port);
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the hub did not serve");
}
