//! Support for the end-to-end tests: node processes, HTTP on loopback, waiting.
//!
//! A node (agent or hub) runs in its own process so that it can be killed with SIGKILL:
//! the test binary re-executes itself with `VIGIL_NODE=agent|hub` and
//! `VIGIL_NODE_CONFIG=<file>`, and the `node_process` test of each file (see
//! [`node_entry`]) runs the node's library entry point — the same `run` the binaries call
//! after parsing their command line.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The body of each test file's `node_process` test: when the process was started as a
/// node, runs that node until SIGTERM and exits; otherwise returns at once.
pub fn node_entry() {
    let Ok(kind) = std::env::var("VIGIL_NODE") else {
        return;
    };
    let config = PathBuf::from(std::env::var("VIGIL_NODE_CONFIG").expect("VIGIL_NODE_CONFIG"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("VIGIL_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let code = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
            }
            stop.cancel();
        });
        let result = match kind.as_str() {
            "agent" => match vigil_agent::check_cmd::load_checked(&config) {
                Ok((cfg, profiles)) => vigil_agent::run::run(cfg, profiles, shutdown, None).await,
                Err(e) => Err(anyhow::anyhow!("{e}")),
            },
            "hub" => match vigil_hub::config::HubConfig::load(&config) {
                Ok(cfg) => vigil_hub::run::run(cfg, shutdown, None).await,
                Err(e) => Err(anyhow::anyhow!("{e}")),
            },
            other => Err(anyhow::anyhow!("unknown node kind {other}")),
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("node failed: {e:#}");
                1
            }
        }
    });
    std::process::exit(code);
}

/// A node process; killed (SIGKILL) when dropped.
pub struct Node {
    pub child: Child,
    pub log: PathBuf,
    pub kind: &'static str,
}

/// Starts a node process running `kind` with `config`, its log in `log`. `test` is the name
/// of the calling file's entry test (`node_process`).
pub fn spawn_node(kind: &'static str, config: &Path, log: &Path) -> Node {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let child = Command::new(exe)
        .args([
            "node_process",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("VIGIL_NODE", kind)
        .env("VIGIL_NODE_CONFIG", config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("node starts");
    Node {
        child,
        log: log.to_owned(),
        kind,
    }
}

impl Node {
    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait up to 15 s for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One HTTP/1.1 request on loopback; returns (status, body).
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    http_full(method, addr, path, body, headers).map(|(status, _, body)| (status, body))
}

/// One HTTP/1.1 request on loopback; returns (status, response head, body).
pub fn http_full(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, head.to_owned(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET a JSON document (from an agent: no credentials).
pub fn get_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    get_json_with(addr, path, &[])
}

/// GET a JSON document with `headers`.
pub fn get_json_with(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let (status, body) = http("GET", addr, path, None, headers)?;
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// GET a JSON document from a hub with the API token `token`.
pub fn hub_json(addr: &str, path: &str, token: &str) -> Option<serde_json::Value> {
    let bearer = format!("Bearer {token}");
    get_json_with(addr, path, &[("Authorization", bearer.as_str())])
}

/// An admin API token (`e2e`, scope `ministry`) for the hub whose config is `config`, made
/// in its store as `vigil-hub token add` makes one (before or while the hub runs).
pub fn hub_token(config: &Path) -> String {
    let cfg = vigil_hub::config::HubConfig::load(config).expect("valid hub config");
    vigil_hub::auth::admin::Admin::open_or_create(&cfg, "cli:e2e".to_owned())
        .expect("open the hub's store")
        .add_token(
            "e2e",
            vigil_hub::auth::Role::Admin,
            &vigil_core::SitePath::new("ministry").expect("site"),
            None,
        )
        .expect("add a token")
}

/// Adds the console user `name` with `role`, `scope` and `password` to the hub whose config
/// is `config`, as `vigil-hub user add` does.
pub fn hub_user(
    config: &Path,
    name: &str,
    role: vigil_hub::auth::Role,
    scope: &str,
    password: &str,
) {
    let cfg = vigil_hub::config::HubConfig::load(config).expect("valid hub config");
    vigil_hub::auth::admin::Admin::open_or_create(&cfg, "cli:e2e".to_owned())
        .expect("open the hub's store")
        .add_user(
            name,
            role,
            &vigil_core::SitePath::new(scope).expect("site"),
            password,
        )
        .expect("add a user");
}

/// Signs in at the hub at `addr`: the `Cookie` header value and the CSRF token.
pub fn sign_in(addr: &str, name: &str, password: &str) -> Option<(String, String)> {
    let body = serde_json::json!({ "name": name, "password": password }).to_string();
    let (status, head, body) = http_full("POST", addr, "/api/v1/session", Some(&body), &[])?;
    if status != 200 {
        return None;
    }
    let cookie = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie").then(|| v.trim())
        })?
        .split(';')
        .next()?
        .to_owned();
    let csrf = serde_json::from_str::<serde_json::Value>(&body).ok()?["csrf"]
        .as_str()?
        .to_owned();
    Some((cookie, csrf))
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every alert a hub holds (all pages), open and closed, read with the API token `token`.
pub fn all_alerts(addr: &str, token: &str) -> Option<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/alerts?closed=any&limit=1000&cursor={c}"),
            None => "/api/v1/alerts?closed=any&limit=1000".to_owned(),
        };
        let page = hub_json(addr, &path, token)?;
        out.extend(page["alerts"].as_array()?.iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Some(out),
        }
    }
}

/// A Mosquitto broker on a free loopback port, killed when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")).expect("conf");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is needed for these tests: run `make deps`");
        let up = wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "mosquitto did not start on {port}");
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    /// Mosquitto with the mTLS config `conf` (from `vigil-hub broker-config`, see
    /// [`secure_broker_config`]) listening on `port`.
    pub fn start_conf(conf: &Path, port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("mosquitto.log");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("mosquitto is needed for these tests: run `make deps`");
        let up = wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(
            up.is_some(),
            "mosquitto did not start on {port}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub config in `dir`: embedded broker on `mqtt` or an external one at `mqtt_url`.
pub fn hub_config(
    dir: &Path,
    id: &str,
    level: &str,
    http: u16,
    broker: &str,
    parent: Option<&str>,
) -> PathBuf {
    let parent = parent
        .map(|url| format!("\n[parent]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[node]\nid = \"{id}\"\nlevel = \"{level}\"\nname = \"{id} test hub\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[mqtt]\n{broker}\n{parent}\n[store]\npath = \"{id}.db\"\n"
    );
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).expect("write hub config");
    path
}

// ── Enrollment and mTLS ─────────────────────────────────────────────────────────────────
//
// Every hub ↔ agent link in these tests runs over mTLS, set up the way an installer does:
// the hub issues a one-time token (`vigil-hub enroll-token`), the gateway enrolls with it
// (`vigil-agent enroll`), and the agent then runs with the `[tls]` files enroll wrote and
// the `mqtts://` uplink it set.

/// A one-time enrollment token for `node`, a node of `kind`, bound to `site`, from the hub
/// whose config is `hub_cfg`, issued as `vigil-hub enroll-token --node NODE --site SITE
/// --kind KIND` issues it (the hub's store and CA; before or while the hub runs).
pub fn enrollment_token(
    hub_cfg: &Path,
    node: &str,
    site: &str,
    kind: vigil_store::NodeKind,
) -> String {
    let cfg = vigil_hub::config::HubConfig::load(hub_cfg).expect("valid hub config");
    let mut store = vigil_hub::enroll::command::open_store(&cfg).expect("the hub's store");
    let pki = vigil_hub::pki::HubPki::open(&cfg).expect("the hub's CA");
    let node = vigil_core::NodeId::new(node).expect("node id");
    let site = vigil_core::SitePath::new(site).expect("site");
    vigil_hub::enroll::token::issue(
        &mut store,
        &pki,
        &cfg,
        &node,
        &site,
        kind,
        Duration::from_secs(600),
        "cli:e2e",
    )
    .expect("token issued")
    .token
    .to_string()
}

/// Runs `vigil-agent enroll --hub http://{hub_addr} --token {token} --config {agent_cfg}`
/// (its library entry point); the error is the command's message and its output.
pub fn enroll_agent(
    hub_addr: &str,
    token: &str,
    agent_cfg: &Path,
) -> Result<vigil_agent::enroll::Enrolled, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args = vigil_agent::enroll::EnrollArgs {
        hub: format!("http://{hub_addr}"),
        token: token.to_owned(),
        config: agent_cfg.to_owned(),
        timeout: Duration::from_secs(30),
        force: false,
    };
    let mut out = Vec::new();
    rt.block_on(vigil_agent::enroll::enroll(&args, &mut out))
        .map_err(|e| format!("{e}\n{}", String::from_utf8_lossy(&out)))
}

/// Enrolls the gateway `node` of `agent_cfg` with the hub of `hub_cfg` serving HTTP on
/// `hub_addr` (which must be up): a token, then `vigil-agent enroll`. Afterwards the agent's
/// uplink is the hub's `mqtts://` broker.
/// The gateway is bound to its own `[node] site` (agent.toml), as an installer enrolls it.
pub fn enroll_gateway(hub_cfg: &Path, hub_addr: &str, agent_cfg: &Path, node: &str) {
    let agent = vigil_agent::config::AgentConfig::load(agent_cfg).expect("valid agent config");
    let token = enrollment_token(
        hub_cfg,
        node,
        agent.node.site.as_str(),
        vigil_store::NodeKind::Gateway,
    );
    let enrolled = enroll_agent(hub_addr, &token, agent_cfg)
        .unwrap_or_else(|e| panic!("vigil-agent enroll: {e}"));
    assert!(enrolled.broker.starts_with("mqtts://"), "{enrolled:?}");
}

/// Writes `vigil-hub broker-config --out {out}` for the hub of `hub_cfg` (whose `[mqtt] url`
/// is `mqtts://127.0.0.1:PORT`) and returns the `mosquitto.conf` to start Mosquitto with:
/// mTLS with the hub's CA, each node its own topics (ACL), the hub's CRL.
pub fn secure_broker_config(hub_cfg: &Path, out: &Path) -> PathBuf {
    let cfg = vigil_hub::config::HubConfig::load(hub_cfg).expect("valid hub config");
    let store = vigil_hub::enroll::command::open_store(&cfg).expect("the hub's store");
    let pki = vigil_hub::pki::HubPki::open(&cfg).expect("the hub's CA");
    // `--user root`: Mosquitto keeps running as the test's user, which owns the 0600 key
    // in its 0700 temporary directory (an installation names the `mosquitto` user).
    let files = vigil_hub::link::mosquitto::write(&cfg, &store, &pki, out, &[], None, Some("root"))
        .expect("broker-config");
    // Test settings: nothing kept across restarts, no cap on queued messages.
    let mut conf = std::fs::read_to_string(&files.conf).expect("mosquitto.conf");
    conf.push_str("\npersistence false\nmax_queued_messages 0\n");
    std::fs::write(&files.conf, conf).expect("mosquitto.conf");
    files.conf
}

/// An API token `name` with `role` (scope `ministry`) for the hub whose config is `config`,
/// made in its store as `vigil-hub token add` makes one (before or while the hub runs).
pub fn hub_token_as(config: &Path, name: &str, role: vigil_hub::auth::Role) -> String {
    hub_token_scoped(config, name, role, "ministry")
}

/// [`hub_token_as`] with the scope `scope`.
pub fn hub_token_scoped(
    config: &Path,
    name: &str,
    role: vigil_hub::auth::Role,
    scope: &str,
) -> String {
    let cfg = vigil_hub::config::HubConfig::load(config).expect("valid hub config");
    vigil_hub::auth::admin::Admin::open_or_create(&cfg, "cli:e2e".to_owned())
        .expect("open the hub's store")
        .add_token(
            name,
            role,
            &vigil_core::SitePath::new(scope).expect("site"),
            None,
        )
        .expect("add a token")
}

/// `vigil-hub enroll --hub http://{parent_addr} --token … --config {child_cfg}` (its library
/// entry point), with a token from the parent hub of `parent_cfg` for `child`. Afterwards the
/// child's `[parent] url` is the parent's `mqtts://` broker. The child is bound to its own
/// `[node] site`, else to the parent's, else to `ministry` (the tests' root).
pub fn enroll_child_hub(parent_cfg: &Path, parent_addr: &str, child_cfg: &Path, child: &str) {
    let cfg = vigil_hub::config::HubConfig::load(child_cfg).expect("valid hub config");
    let parent = vigil_hub::config::HubConfig::load(parent_cfg).expect("valid hub config");
    let site = cfg
        .node
        .site
        .clone()
        .or(parent.node.site)
        .map_or_else(|| "ministry".to_owned(), |s| s.to_string());
    let token = enrollment_token(parent_cfg, child, &site, vigil_store::NodeKind::Hub);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let enrolled = rt
        .block_on(vigil_hub::enroll::parent::enroll_with_parent(
            &cfg,
            child_cfg,
            &format!("http://{parent_addr}"),
            &token,
        ))
        .unwrap_or_else(|e| panic!("vigil-hub enroll: {e}"));
    assert!(enrolled.broker.starts_with("mqtts://"), "{enrolled:?}");
}

/// Waits up to 20 s for `GET /healthz` at `addr` to answer 200; panics with `node`'s log.
pub fn wait_healthy(addr: &str, node: &Node) {
    let up = wait_for(Duration::from_secs(20), || {
        http("GET", addr, "/healthz", None, &[]).filter(|(s, _)| *s == 200)
    });
    assert!(up.is_some(), "{} at {addr} up: {}", node.kind, node.log());
}

// ── Command lines in their own process ──────────────────────────────────────────────────
//
// As with nodes, the test binary re-executes itself (`VIGIL_CLI=vigil-agent|vigil-hub`, the
// arguments in `VIGIL_CLI_ARGS` as a JSON array); the `cli_process` test of the file (see
// [`cli_entry`]) parses them with the binary's own clap `Cli` and runs the command through the
// library function its `main` calls, printing what it prints and exiting with its status.

/// What separates libtest's own lines from the command's output.
const CLI_MARK: &str = "\u{1}vigil-cli-output\n";

/// The output of a command line run by [`run_cli`].
#[derive(Debug)]
pub struct CliOutput {
    /// The exit status (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The body of each test file's `cli_process` test: when the process was started as a
/// command line, runs it and exits with its status; otherwise returns at once. Knows the
/// commands these tests run: `vigil-agent update apply` and `vigil-hub audit verify`.
pub fn cli_entry() {
    use clap::Parser as _;
    let Ok(bin) = std::env::var("VIGIL_CLI") else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&std::env::var("VIGIL_CLI_ARGS").expect("args"))
        .expect("VIGIL_CLI_ARGS is a JSON array of strings");
    let argv = std::iter::once(bin.clone()).chain(args);
    let (mut out, mut err) = (Vec::<u8>::new(), Vec::<u8>::new());
    let code: u8 = match bin.as_str() {
        "vigil-agent" => {
            use vigil_agent::cli::{Cli, Command, UpdateCommand};
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Update(UpdateCommand::Apply { bundle, config })) => {
                    vigil_agent::update::apply::run(&config, &bundle, &mut out, &mut err)
                }
                Ok(other) => panic!("cli_entry does not run {other:?}"),
                Err(e) => {
                    err.extend_from_slice(e.to_string().as_bytes());
                    2
                }
            }
        }
        "vigil-hub" => {
            use vigil_hub::cli::{AuditCommand, Cli, Command};
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Audit {
                    command: AuditCommand::Verify { config, node },
                }) => match vigil_hub::config::HubConfig::load(&config) {
                    Err(errors) => {
                        for e in errors.0 {
                            err.extend_from_slice(format!("error: {e}\n").as_bytes());
                        }
                        2
                    }
                    // As `vigil-hub`'s main: each report a line, exit 1 unless all intact.
                    Ok(cfg) => match vigil_hub::audit::verify(&cfg, node.as_deref()) {
                        Ok(reports) => {
                            for report in &reports {
                                out.extend_from_slice(format!("{report}\n").as_bytes());
                            }
                            u8::from(!reports.iter().all(|r| r.report.is_intact()))
                        }
                        Err(e) => {
                            err.extend_from_slice(format!("error: {e}\n").as_bytes());
                            1
                        }
                    },
                },
                Ok(other) => panic!("cli_entry does not run {other:?}"),
                Err(e) => {
                    err.extend_from_slice(e.to_string().as_bytes());
                    2
                }
            }
        }
        other => panic!("unknown command line {other}"),
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let _ = stdout.write_all(CLI_MARK.as_bytes());
    let _ = stdout.write_all(&out);
    let _ = stdout.flush();
    let _ = stderr.write_all(CLI_MARK.as_bytes());
    let _ = stderr.write_all(&err);
    let _ = stderr.flush();
    std::process::exit(i32::from(code));
}

/// Runs `bin args…` (`vigil-agent` or `vigil-hub`) in its own process with the extra
/// environment `env`, as [`cli_entry`] runs it; waits for it to exit (at most 60 s).
pub fn run_cli(bin: &str, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "cli_process",
        "--exact",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("VIGIL_CLI", bin)
    .env("VIGIL_CLI_ARGS", serde_json::to_string(args).expect("JSON"))
    .env_remove("VIGIL_NODE")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("command line starts");
    let (mut so, mut se) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let after_mark = |s: String| match s.split_once(CLI_MARK) {
        Some((_, rest)) => rest.to_owned(),
        None => s,
    };
    let stdout = after_mark(out_reader.join().unwrap_or_default());
    let stderr = after_mark(err_reader.join().unwrap_or_default());
    assert!(
        status.is_some(),
        "{bin} {args:?} ran past 60 s\n{stdout}{stderr}"
    );
    CliOutput {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}
