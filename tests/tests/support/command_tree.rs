//! Support for the four-level network tests (`network_partition.rs`): the `vigil-hub` and
//! `vigil-agent` command lines an installer runs to enroll (their token on standard input),
//! a TCP proxy the test cuts and heals, and a facility's sensor feed on a local Mosquitto.
//!
//! Included with `#[path]` next to `mod support;`, which it uses.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::support::CliOutput;

// ── Command lines with standard input ───────────────────────────────────────────────────
//
// As `support::cli_entry` does, the test binary re-executes itself (`VIGIL_TREE_CLI`,
// arguments in `VIGIL_TREE_CLI_ARGS` as a JSON array); the file's `tree_cli_process` test
// parses them with the binary's own clap `Cli` and runs the command through the library
// functions its `main` calls, in the order and with the checks `main` has, standard input
// included (`--token -`).

const MARK: &str = "\u{1}vigil-tree-cli\n";

/// The body of the file's `tree_cli_process` test: when the process was started as a command
/// line, runs it and exits with its status; otherwise returns at once. Knows
/// `vigil-hub enroll-token`, `vigil-hub enroll` and `vigil-agent enroll`.
pub fn tree_cli_entry() {
    use clap::Parser as _;
    let Ok(bin) = std::env::var("VIGIL_TREE_CLI") else {
        return;
    };
    let args: Vec<String> =
        serde_json::from_str(&std::env::var("VIGIL_TREE_CLI_ARGS").expect("args"))
            .expect("VIGIL_TREE_CLI_ARGS is a JSON array of strings");
    let argv = std::iter::once(bin.clone()).chain(args);
    print!("{MARK}");
    eprint!("{MARK}");
    let code: u8 = match bin.as_str() {
        "vigil-hub" => {
            use vigil_hub::cli::{Cli, Command};
            use vigil_hub::cli_error::CommandError;
            use vigil_hub::enroll::command as enroll;
            let load = |path: &Path| {
                vigil_hub::config::HubConfig::load(path).map_err(|errors| {
                    for e in errors.0 {
                        eprintln!("error: {e}");
                    }
                })
            };
            let result: Result<Result<(), CommandError>, ()> =
                match Cli::try_parse_from(argv).map(|c| c.command) {
                    Ok(Command::EnrollToken(args)) => {
                        load(&args.config).map(|cfg| enroll::enroll_token(&args, &cfg))
                    }
                    // As `main`: a token in the arguments is refused before anything else.
                    Ok(Command::Enroll(args)) if args.token != "-" => {
                        eprintln!("error: --token: a token on the command line is refused");
                        Err(())
                    }
                    Ok(Command::Enroll(args)) => {
                        load(&args.config).map(|cfg| enroll::enroll(&args, &cfg, &args.config))
                    }
                    Ok(other) => panic!("tree_cli_entry does not run {other:?}"),
                    Err(e) => {
                        eprintln!("{e}");
                        Err(())
                    }
                };
            match result {
                Err(()) => 2,
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    match e {
                        CommandError::Usage(_) => 2,
                        _ => 1,
                    }
                }
            }
        }
        "vigil-agent" => {
            use vigil_agent::cli::{Cli, Command};
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Enroll {
                    hub,
                    token,
                    config,
                    timeout,
                    force,
                }) => match token_from_stdin(&token) {
                    Err(e) => {
                        eprintln!("error: --token: {e}");
                        2
                    }
                    Ok(token) => {
                        let args = vigil_agent::enroll::EnrollArgs {
                            hub,
                            token,
                            config,
                            timeout,
                            force,
                        };
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime");
                        let mut out = std::io::stdout();
                        match rt.block_on(vigil_agent::enroll::enroll(&args, &mut out)) {
                            Ok(done) => {
                                let _ = vigil_agent::enroll::report(&done, &args.config, &mut out);
                                0
                            }
                            Err(e) => {
                                eprintln!("error: {e}");
                                1
                            }
                        }
                    }
                },
                Ok(other) => panic!("tree_cli_entry does not run {other:?}"),
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            }
        }
        other => panic!("unknown command line {other}"),
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(i32::from(code));
}

/// `--token -`: the token is the first line of standard input (what `vigil-agent`'s `main`
/// does with `vigil_pki`'s `token_from_arg` before it calls the library).
fn token_from_stdin(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Err("a token on the command line is refused: give --token -".into());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    let token = line.trim();
    if token.is_empty() {
        return Err("no token on standard input".into());
    }
    Ok(token.to_owned())
}

/// Runs `bin args…` in its own process as [`tree_cli_entry`] runs it, with `stdin` on its
/// standard input; waits for it to exit (at most 60 s).
pub fn run_cli_with_stdin(bin: &str, args: &[&str], stdin: &str) -> CliOutput {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "tree_cli_process",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("VIGIL_TREE_CLI", bin)
        .env(
            "VIGIL_TREE_CLI_ARGS",
            serde_json::to_string(args).expect("JSON"),
        )
        .env_remove("VIGIL_NODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command line starts");
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
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
    let after_mark = |s: String| match s.split_once(MARK) {
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

/// `vigil-hub enroll-token --node NODE --site SITE --kind KIND --ttl 1h --config PARENT`:
/// the token (the first line it prints on standard output). `site: None` leaves `--site`
/// out; `kind` is `hub` or `gateway`.
pub fn cli_enroll_token(parent_cfg: &Path, node: &str, site: Option<&str>, kind: &str) -> String {
    let cfg = parent_cfg.to_str().expect("UTF-8 path");
    let mut args = vec!["enroll-token", "--node", node];
    if let Some(site) = site {
        args.extend(["--site", site]);
    }
    args.extend(["--kind", kind, "--ttl", "1h", "--config", cfg]);
    let out = run_cli_with_stdin("vigil-hub", &args, "");
    assert_eq!(
        out.code,
        Some(0),
        "vigil-hub {args:?}\n{}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
        .lines()
        .next()
        .expect("the token on the first line")
        .trim()
        .to_owned()
}

/// `vigil-hub enroll --hub http://PARENT_ADDR --token - --config CHILD` with `token` on
/// standard input.
pub fn cli_enroll_hub(parent_addr: &str, token: &str, child_cfg: &Path) {
    let hub = format!("http://{parent_addr}");
    let cfg = child_cfg.to_str().expect("UTF-8 path");
    let args = ["enroll", "--hub", &hub, "--token", "-", "--config", cfg];
    let out = run_cli_with_stdin("vigil-hub", &args, &format!("{token}\n"));
    assert_eq!(
        out.code,
        Some(0),
        "vigil-hub {args:?}\n{}{}",
        out.stdout,
        out.stderr
    );
}

/// `vigil-agent enroll --hub http://HUB_ADDR --token - --config AGENT` with `token` on
/// standard input.
pub fn cli_enroll_agent(hub_addr: &str, token: &str, agent_cfg: &Path) {
    let hub = format!("http://{hub_addr}");
    let cfg = agent_cfg.to_str().expect("UTF-8 path");
    let args = ["enroll", "--hub", &hub, "--token", "-", "--config", cfg];
    let out = run_cli_with_stdin("vigil-agent", &args, &format!("{token}\n"));
    assert_eq!(
        out.code,
        Some(0),
        "vigil-agent {args:?}\n{}{}",
        out.stdout,
        out.stderr
    );
}

// ── A TCP proxy the test cuts ───────────────────────────────────────────────────────────

/// What the proxy does with the connections through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Bytes flow both ways.
    Open,
    /// Connections stay open but nothing flows (a link that went silent); new connections
    /// are accepted and held.
    Hold,
    /// Every connection is closed, and new ones are closed as soon as accepted.
    Drop,
}

/// A TCP proxy on a free loopback port to `target`, running on the test's runtime; what it
/// does follows [`Proxy::set`]. Stops when the runtime does.
pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Cut>,
}

impl Proxy {
    pub fn start(rt: &tokio::runtime::Runtime, target: SocketAddr) -> Proxy {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let (mode, rx) = watch::channel(Cut::Open);
        rt.spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if *rx.borrow() == Cut::Drop {
                    drop(inbound);
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    if !open(&mut rx).await {
                        return;
                    }
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::select! {
                        () = pump(ri, wo, rx.clone()) => {}
                        () = pump(ro, wi, rx) => {}
                    }
                });
            }
        });
        Proxy { port, mode }
    }

    /// Opens, holds or drops the connections through the proxy from now on.
    pub fn set(&self, cut: Cut) {
        self.mode.send_replace(cut);
    }
}

/// Waits while the proxy holds; whether it is open (false: dropped).
async fn open(rx: &mut watch::Receiver<Cut>) -> bool {
    loop {
        match *rx.borrow_and_update() {
            Cut::Open => return true,
            Cut::Drop => return false,
            Cut::Hold => {}
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

/// Copies `from` to `to` while the proxy is open; returns at the end of either, or when the
/// proxy drops.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<Cut>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !open(&mut rx).await {
            return;
        }
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // Read just before a hold: held, not sent.
                if !open(&mut rx).await || to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

// ── Sensor readings on a facility's broker ──────────────────────────────────────────────

/// Publishes each of `lines` as one message on `topic` of the plain Mosquitto on `port`
/// (`mosquitto_pub -l`, QoS 1), in order; waits for it to finish (at most 60 s).
pub fn publish_lines(port: u16, topic: &str, lines: &[String]) {
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is needed for this test: run `make deps` (mosquitto-clients)");
    let mut input = child.stdin.take().expect("stdin");
    let mut text = lines.join("\n");
    text.push('\n');
    input
        .write_all(text.as_bytes())
        .expect("write the readings");
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(status.success(), "mosquitto_pub on {topic}: {status} {err}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto_pub on {topic} ran past 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A JSON reading message setting points `p{first}`…`p{first+n-1}` to `value`.
pub fn readings(first: usize, n: usize, value: f64) -> String {
    let fields: Vec<String> = (first..first + n)
        .map(|p| format!("\"p{p:04}\":{value}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}
