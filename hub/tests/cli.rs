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
    request(addr, "GET", path, &[], "")
}

/// One request with a plain socket; the whole response.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    write!(s, "{head}\r\n{body}")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Runs `vigil-hub ARGS` with `stdin`; exit code, stdout, stderr.
fn hub_with_stdin(
    args: &[&str],
    config: &std::path::Path,
    stdin: &str,
) -> (Option<i32>, String, String) {
    let mut child = hub()
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("exits");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let anonymous = get(addr, "/api/v1/alerts").expect("list");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(
        anonymous
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"vigil\""),
        "{anonymous}"
    );

    // A token made by the CLI beside the running hub works at once.
    let (code, token, stderr) = hub_with_stdin(
        &[
            "token", "add", "script", "--role", "viewer", "--scope", "ministry", "--ttl", "90d",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("token script added"), "{stderr}");
    let bearer = format!("Bearer {}", token.trim());
    let list = request(
        addr,
        "GET",
        "/api/v1/alerts",
        &[("Authorization", &bearer)],
        "",
    )
    .expect("list");
    assert!(list.contains("{\"alerts\":[],\"next\":null}"), "{list}");

    // A user added with the real binary signs in over HTTP.
    let (code, stdout, stderr) = hub_with_stdin(
        &[
            "user",
            "add",
            "li.na",
            "--role",
            "operator",
            "--scope",
            "ministry/gd",
            "--password-stdin",
        ],
        &path,
        "a password of li.na\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "no secret to print: {stdout}");
    let signed_in = request(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        r#"{"name": "li.na", "password": "a password of li.na"}"#,
    )
    .expect("sign in");
    assert!(signed_in.starts_with("HTTP/1.1 200"), "{signed_in}");
    assert!(signed_in.contains("vigil_session="), "{signed_in}");
    assert!(signed_in.contains("\"role\":\"operator\""), "{signed_in}");
    let wrong = request(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        r#"{"name": "li.na", "password": "a password of li.na\n"}"#,
    )
    .expect("sign in");
    assert!(
        wrong.starts_with("HTTP/1.1 401"),
        "the newline was not part of it: {wrong}"
    );
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
        format!("mqtts://127.0.0.1:{mqtt_port}")
    );
    assert!(logs.iter().any(|l| l["fields"]["message"] == "hub stopped"));
}

#[test]
fn user_and_token_commands_manage_the_store_and_refuse_what_cannot_be_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("state").join("hub.db");
    let path = write_config(
        dir.path(),
        &GOOD.replace("STORE", &store.display().to_string()),
    );

    // Listing needs a store; it is not created for that.
    let (code, _, stderr) = hub_with_stdin(&["user", "list"], &path, "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no store at"), "{stderr}");
    assert!(!store.exists());

    // No password source without a terminal: refused, nothing added.
    let (code, _, stderr) = hub_with_stdin(
        &[
            "user", "add", "li.na", "--role", "operator", "--scope", "ministry",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    // Too short.
    let (code, _, stderr) = hub_with_stdin(
        &[
            "user",
            "add",
            "li.na",
            "--role",
            "operator",
            "--scope",
            "ministry",
            "--password-stdin",
        ],
        &path,
        "short\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("too short"), "{stderr}");
    // Bad role, scope, name: usage errors (exit 2) that say what to write.
    for (args, needle) in [
        (
            [
                "user", "add", "li.na", "--role", "root", "--scope", "ministry",
            ],
            "unknown role",
        ),
        (
            [
                "user", "add", "li.na", "--role", "viewer", "--scope", "a//b",
            ],
            "--scope",
        ),
        (
            [
                "user", "add", "Li Na", "--role", "viewer", "--scope", "ministry",
            ],
            "not a valid name",
        ),
    ] {
        let (code, _, stderr) = hub_with_stdin(&args, &path, "");
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }

    // --generate prints the password once, alone on stdout.
    let (code, password, stderr) = hub_with_stdin(
        &[
            "user",
            "add",
            "li.na",
            "--role",
            "operator",
            "--scope",
            "ministry/gd",
            "--generate",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(password.trim().len(), 23, "{password}");
    assert!(store.exists(), "the first user add creates the store");
    let (code, _, stderr) = hub_with_stdin(
        &[
            "user",
            "add",
            "li.na",
            "--role",
            "viewer",
            "--scope",
            "ministry",
            "--generate",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("exists already"), "{stderr}");

    let (code, list, _) = hub_with_stdin(&["user", "list"], &path, "");
    assert_eq!(code, Some(0));
    assert!(list.contains("li.na\toperator\tministry/gd\t"), "{list}");
    assert!(list.trim_end().ends_with("\tno"), "{list}");
    assert!(
        !list.contains(password.trim()),
        "the password is never shown again"
    );
    let (code, _, stderr) = hub_with_stdin(&["user", "disable", "li.na"], &path, "");
    assert_eq!(code, Some(0), "{stderr}");
    let (_, list, _) = hub_with_stdin(&["user", "list"], &path, "");
    assert!(list.trim_end().ends_with("\tyes"), "{list}");
    let (code, _, stderr) = hub_with_stdin(&["user", "disable", "nobody"], &path, "");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no user named"), "{stderr}");

    // Tokens: added (printed once), listed without the secret, revoked.
    let (code, token, _) = hub_with_stdin(
        &[
            "token", "add", "cap-feed", "--role", "viewer", "--scope", "ministry",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(0));
    assert!(token.trim().starts_with("vigil_"), "{token}");
    let (code, _, stderr) = hub_with_stdin(
        &[
            "token", "add", "x", "--role", "viewer", "--scope", "ministry", "--ttl", "soon",
        ],
        &path,
        "",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("90d"), "{stderr}");
    let (code, _, stderr) = hub_with_stdin(&["token", "revoke", "cap-feed"], &path, "");
    assert_eq!(code, Some(0), "{stderr}");
    let (_, list, _) = hub_with_stdin(&["token", "list"], &path, "");
    assert!(list.contains("cap-feed\tviewer\tministry\t"), "{list}");
    assert!(!list.contains(token.trim()));
    assert!(!list.trim_end().ends_with("\t-"), "revoked: {list}");

    // Every change is audited as the Unix user who ran the command.
    let (code, report, _) = hub_with_stdin(&["audit", "verify"], &path, "");
    assert_eq!(code, Some(0));
    assert!(report.starts_with("audit chain ok: 4 records"), "{report}");
    let db = rusqlite::Connection::open(&store).expect("open");
    let actors: Vec<(String, String)> = db
        .prepare("SELECT actor, action FROM audit ORDER BY seq")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .expect("audit rows");
    let actions: Vec<&str> = actors.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["user_add", "user_disable", "token_add", "token_revoke"]
    );
    assert!(
        actors.iter().all(|(who, _)| who.starts_with("cli:")),
        "{actors:?}"
    );

    // Config errors exit 2 naming the file, the line and the key, as for run.
    let bad = write_config(
        dir.path(),
        &GOOD.replace("name = \"Baiyun\"", "nmae = \"B\""),
    );
    let (code, _, stderr) = hub_with_stdin(&["user", "list"], &bad, "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(":4: node.nmae"), "{stderr}");
}

/// `vigil-hub check --config PATH`: exit code, stdout, stderr.
fn check(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = hub()
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_looks_at_the_store_and_the_certificates_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("data/hub.db");
    std::fs::create_dir_all(store.parent().expect("dir")).expect("mkdir");
    let path = write_config(
        dir.path(),
        &GOOD.replace("STORE", &store.display().to_string()),
    );

    // Before the first start: nothing exists, and check creates nothing.
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("does not exist yet: created at the first start"),
        "{stdout}"
    );
    assert!(stdout.contains("holds no CA yet"), "{stdout}");
    assert!(!store.exists(), "check created the store");
    assert!(!dir.path().join("data/ca").exists(), "check created the CA");

    // A store and a CA as a first start leaves them.
    drop(vigil_store::Store::open(&store).expect("store"));
    vigil_pki::Ca::load_or_create(&dir.path().join("data/ca"), "Baiyun CA").expect("ca");
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("consistent"), "{stdout}");
    assert!(
        stdout.contains("ca ") && stdout.contains("sha256"),
        "{stdout}"
    );

    // A store written by a newer vigil-hub: refused, naming the key; the file is untouched.
    {
        let conn = rusqlite::Connection::open(&store).expect("raw");
        conn.pragma_update(None, "user_version", vigil_store::SCHEMA_VERSION + 1)
            .expect("bump");
    }
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {}:", path.display()))
            && stderr.contains("store.path")
            && stderr.contains("newer vigil-hub"),
        "{stderr}"
    );
    let version: i64 = rusqlite::Connection::open(&store)
        .expect("raw")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, vigil_store::SCHEMA_VERSION + 1);

    // An mqtts:// parent without the files enrollment writes: each named, with the way out.
    std::fs::remove_file(&store).expect("rm");
    let with_parent = GOOD.replace("STORE", &store.display().to_string())
        + "\n[parent]\nurl = \"mqtts://127.0.0.1:8883\"\n";
    let path = write_config(dir.path(), &with_parent);
    let (code, _, stderr) = check(&path);
    assert_eq!(code, Some(2), "{stderr}");
    for key in ["parent.ca", "parent.cert", "parent.key"] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
    assert!(
        stderr.contains("vigil-hub enroll --hub URL --token -"),
        "{stderr}"
    );
}

#[test]
fn a_token_for_the_hubs_own_id_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("hub.db");
    let path = write_config(
        dir.path(),
        &GOOD.replace("STORE", &store.display().to_string()),
    );
    let out = hub()
        .args([
            "enroll-token",
            "--node",
            "county-baiyun",
            "--site",
            "ministry/gd/gz/baiyun",
            "--config",
        ])
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("this hub's own id"), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed");
}

#[test]
fn a_token_binds_its_node_to_a_site_inside_the_hubs_and_nodes_lists_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("hub.db");
    let text = GOOD.replace("STORE", &store.display().to_string()).replace(
        "name = \"Baiyun\"",
        "name = \"Baiyun\"\nsite = \"ministry/gd/gz/baiyun\"",
    ) + "\n[[child]]\nnode = \"gw-ext\"\nsite = \"ministry/gd/gz/baiyun/prison-9\"\n";
    let path = write_config(dir.path(), &text);
    // --site is required.
    let out = hub()
        .args(["enroll-token", "--node", "gw-1", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--site"));
    // Outside the hub's own site: refused, no token.
    let out = hub()
        .args([
            "enroll-token",
            "--node",
            "gw-1",
            "--site",
            "ministry/gd/sz/x/p",
            "--config",
        ])
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("not inside this hub's site"), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed");
    // Inside: a token, and the node listed as pending with its site.
    let out = hub()
        .args([
            "enroll-token",
            "--node",
            "gw-1",
            "--site",
            "ministry/gd/gz/baiyun/prison-3",
            "--config",
        ])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("VGL1."), "{stdout}");
    let out = hub()
        .args(["nodes", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("gw-1  site ministry/gd/gz/baiyun/prison-3  pending"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gw-ext  site ministry/gd/gz/baiyun/prison-9  config"),
        "{stdout}"
    );
    // A node certified here before bindings (no site) is listed as unbound.
    {
        let mut db = vigil_store::Store::open(&store).expect("store");
        db.certificate_record(
            &vigil_store::NewCertificate {
                serial: "1f".into(),
                node: "gw-old".into(),
                not_before: vigil_core::Timestamp::from_millis(0),
                not_after: vigil_core::Timestamp::from_millis(4_102_444_800_000),
                issued_at: vigil_core::Timestamp::from_millis(0),
                fingerprint: "ff".into(),
                site: None,
                kind: vigil_store::NodeKind::Gateway,
            },
            None,
        )
        .expect("record");
    }
    let out = hub()
        .args(["nodes", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gw-old  no site  unbound"), "{stdout}");
    assert!(stdout.contains("  certificate 1f  until"), "{stdout}");
}

#[test]
fn a_token_names_the_kind_of_node_it_enrolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("hub.db");
    let path = write_config(
        dir.path(),
        &GOOD.replace("STORE", &store.display().to_string()),
    );
    let issue = |kind: Option<&str>| {
        let mut cmd = hub();
        cmd.args([
            "enroll-token",
            "--node",
            "county-x",
            "--site",
            "ministry/gd/gz/x",
        ]);
        if let Some(kind) = kind {
            cmd.args(["--kind", kind]);
        }
        cmd.arg("--config").arg(&path).output().expect("runs")
    };
    // A hub's token: the line to run is `vigil-hub enroll`.
    let out = issue(Some("hub"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert!(
        lines.next().expect("token").starts_with("VGL1."),
        "{stdout}"
    );
    assert!(
        lines
            .next()
            .expect("command")
            .starts_with("vigil-hub enroll "),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("for hub county-x"));
    // By default a gateway's: `vigil-agent enroll`.
    let out = issue(None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .nth(1)
            .expect("command")
            .starts_with("vigil-agent enroll "),
        "{stdout}"
    );
    // Another kind: a usage error, no token.
    let out = issue(Some("camera"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hub or gateway"));
    assert!(out.stdout.is_empty());
    let tokens = vigil_store::Store::open(&store)
        .expect("store")
        .enrollment_tokens()
        .expect("tokens");
    let kinds: Vec<_> = tokens.iter().map(|t| t.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&vigil_store::NodeKind::Hub)
            && kinds.contains(&vigil_store::NodeKind::Gateway)
    );
}

#[test]
fn a_malformed_token_on_standard_input_exits_2_like_the_agents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("hub.db");
    let path = write_config(
        dir.path(),
        &GOOD.replace("STORE", &store.display().to_string()),
    );
    let mut child = hub()
        .args([
            "enroll",
            "--hub",
            "https://127.0.0.1:9",
            "--token",
            "-",
            "--config",
        ])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"not-a-token\n")
        .expect("write");
    let out = child.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
}
