//! `vigil-agent enroll`, the real binary, against a stand-in hub on loopback: a thread that
//! answers `POST /api/v1/enroll` the way the hub's contract says (a CA from vigil-pki, one-time
//! tokens bound to a node), over plain HTTP or HTTPS. The real hub is exercised end to end in
//! `tests/tests/enroll.rs`; here the stand-in can also misbehave (another CA, a certificate for
//! another node) to show that the agent refuses and writes nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine as _;
use vigil_core::NodeId;
use vigil_pki::rustls;
use vigil_pki::{Ca, EnrollRequest, EnrollResponse, EnrollToken};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const AGENT: &str = env!("CARGO_BIN_EXE_vigil-agent");

const CONFIG: &str = r#"# Gateway at prison 3: enrolled with the county hub.
[node]
id = "gw-prison-3"
site = "ministry/p/c/county/prison-3"

[uplink]
# The county hub.
url = "mqtt://127.0.0.1:1883"   # mqtts:// once enrolled

[store]
path = "agent.db"
"#;

/// How the stand-in hub misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Hands out another CA than the one the token pins (and certificates from it).
    OtherCa,
    /// Issues the certificate to another node than the token's.
    OtherNode,
    /// Issues a certificate that expires in 10 days.
    ShortLived,
    /// Says it bound the node to another facility than its `[node] site`.
    OtherSite,
}

struct Hub {
    ca: Ca,
    other: Ca,
    fault: Fault,
    /// token secret → (node, used)
    tokens: Mutex<HashMap<String, (String, bool)>>,
    requests: Mutex<usize>,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn new(fault: Fault) -> Res<Arc<Hub>> {
        let dir = tempfile::tempdir()?;
        Ok(Arc::new(Hub {
            ca: Ca::load_or_create(&dir.path().join("ca"), "county CA")?,
            other: Ca::load_or_create(&dir.path().join("other"), "mallory CA")?,
            fault,
            tokens: Mutex::new(HashMap::new()),
            requests: Mutex::new(0),
            _dir: dir,
        }))
    }

    /// A token for `node`, pinning this hub's CA.
    fn token(&self, node: &str) -> Res<String> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let secret = b64(&rand_bytes());
        let token = EnrollToken::new(&b64(&rand_bytes()[..8]), &secret, self.ca.cert_der())?;
        self.tokens
            .lock()
            .map_err(|_| "poisoned")?
            .insert(secret, (node.to_owned(), false));
        Ok(token.to_string())
    }

    fn answer(&self, body: &str) -> (u16, String) {
        *self.requests.lock().expect("lock") += 1;
        let Ok(req) = serde_json::from_str::<EnrollRequest>(body) else {
            return (400, r#"{"error":"malformed request"}"#.into());
        };
        let Ok(token) = req.token.parse::<EnrollToken>() else {
            return (
                401,
                r#"{"error":"invalid or expired enrollment token"}"#.into(),
            );
        };
        let node = {
            let mut tokens = self.tokens.lock().expect("lock");
            match tokens.get_mut(token.secret()) {
                Some((node, used)) if !*used => {
                    *used = true;
                    node.clone()
                }
                _ => {
                    return (
                        401,
                        r#"{"error":"invalid or expired enrollment token"}"#.into(),
                    )
                }
            }
        };
        let node = match self.fault {
            Fault::OtherNode => "gw-elsewhere".to_owned(),
            _ => node,
        };
        let ca = if self.fault == Fault::OtherCa {
            &self.other
        } else {
            &self.ca
        };
        let Ok(node) = NodeId::new(&node) else {
            return (500, "{}".into());
        };
        let now = std::time::SystemTime::now();
        let days = if self.fault == Fault::ShortLived {
            10
        } else {
            365
        };
        let issued = ca.issue_node_with_validity(
            &req.csr,
            &node,
            now - Duration::from_secs(3600),
            now + Duration::from_secs(days * 86400),
        );
        match issued {
            Ok(issued) => {
                let answer = EnrollResponse {
                    node: node.to_string(),
                    certificate: issued.cert_pem,
                    ca: ca.cert_pem().to_owned(),
                    broker: "mqtts://127.0.0.1:8883".into(),
                    expires_at: "2030-01-01T00:00:00Z".into(),
                    site: Some(if self.fault == Fault::OtherSite {
                        "ministry/p/c/county/prison-4".into()
                    } else {
                        "ministry/p/c/county/prison-3".into()
                    }),
                    ancestors: Vec::new(),
                };
                (200, serde_json::to_string(&answer).expect("json"))
            }
            Err(e) => (
                400,
                serde_json::json!({ "error": e.to_string() }).to_string(),
            ),
        }
    }

    fn requests(&self) -> usize {
        *self.requests.lock().expect("lock")
    }
}

fn rand_bytes() -> [u8; 24] {
    rand::random()
}

/// Serves `hub` on a loopback port, plain or (with `tls`) HTTPS; returns its base URL.
fn serve(hub: Arc<Hub>, tls: Option<Arc<rustls::ServerConfig>>) -> Res<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let hub = hub.clone();
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                match tls {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut s = rustls::StreamOwned::new(conn, stream);
                        let _ = handle(&hub, &mut s);
                    }
                    None => {
                        let mut s: TcpStream = stream;
                        let _ = handle(&hub, &mut s);
                    }
                }
            });
        }
    });
    Ok(addr.to_string())
}

fn handle<S: Read + Write>(hub: &Hub, s: &mut S) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *s);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, answer) = if path == "/api/v1/enroll" {
        hub.answer(&String::from_utf8_lossy(&body))
    } else {
        (404, r#"{"error":"not found"}"#.to_owned())
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    s.flush()
}

/// An HTTPS config for the stand-in: a server certificate from `ca`, the CA in its chain.
fn https_config(ca: &Ca) -> Res<Arc<rustls::ServerConfig>> {
    let server = ca.issue_server(&["127.0.0.1".to_owned()], Duration::from_secs(86400))?;
    let chain = format!("{}{}", server.cert_pem, ca.cert_pem());
    Ok(vigil_pki::server_config(&chain, &server.key_pem)?)
}

struct Gateway {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Gateway {
    fn new() -> Res<Gateway> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, CONFIG)?;
        Ok(Gateway { dir, config })
    }

    /// `vigil-agent enroll --hub HUB --token - …` with `token` on standard input, and
    /// `extra` arguments.
    fn enroll_with(&self, hub: &str, token: &str, extra: &[&str]) -> Res<std::process::Output> {
        Ok(Command::new(AGENT)
            .args(["enroll", "--hub", hub, "--token", "-", "--timeout", "20s"])
            .args(extra)
            .arg("--config")
            .arg(&self.config)
            .write_stdin(format!("{token}\n"))
            .timeout(Duration::from_secs(60))
            .output()?)
    }

    fn enroll(&self, hub: &str, token: &str) -> Res<std::process::Output> {
        self.enroll_with(hub, token, &[])
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// Nothing written: no key or certificate (not even their directory), the config as it
    /// was.
    fn assert_untouched(&self) -> Res<()> {
        assert!(!self.tls_dir().exists(), "tls/ was left behind");
        assert_eq!(std::fs::read_to_string(&self.config)?, CONFIG);
        Ok(())
    }
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn mode(path: &Path) -> Res<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[test]
fn enroll_over_http_writes_the_key_0600_the_certificates_and_the_broker_url() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("plain http"), "warns about http: {stdout}");
    assert!(
        stdout.contains("[2/4]") && stdout.contains("next:"),
        "{stdout}"
    );

    let tls = gw.tls_dir();
    assert_eq!(mode(&tls.join("node.key"))?, 0o600);
    let cert = vigil_pki::cert::cert_from_pem(
        &std::fs::read_to_string(tls.join("node.pem"))?,
        "node.pem",
    )?;
    assert_eq!(
        vigil_pki::node_of_certificate(&cert)?.as_str(),
        "gw-prison-3"
    );
    assert_eq!(
        std::fs::read_to_string(tls.join("ca.pem"))?,
        hub.ca.cert_pem()
    );
    // The key goes with the certificate: the files make a client config.
    vigil_pki::TlsFiles::in_dir(&tls).client_config()?;
    // Only the URL changed: comments and layout kept.
    assert_eq!(
        std::fs::read_to_string(&gw.config)?,
        CONFIG.replace("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:8883")
    );

    // `check` now reports the certificate.
    let check = Command::new(AGENT)
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    let report = text(&check.stdout);
    assert!(check.status.success(), "{report}\n{}", text(&check.stderr));
    assert!(
        report.contains("certificate for gw-prison-3 (matches [node] id)"),
        "{report}"
    );
    Ok(())
}

#[test]
fn enroll_over_https_trusts_the_hub_through_the_pin() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), Some(https_config(&hub.ca)?))?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("https://{addr}"), &hub.token("gw-prison-3")?)?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("plain http"), "{stdout}");
    assert_eq!(mode(&gw.tls_dir().join("node.key"))?, 0o600);
    Ok(())
}

#[test]
fn an_https_server_without_the_pinned_ca_gets_no_request_and_nothing_is_written() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    // The server's chain is from another CA than the token pins.
    let addr = serve(hub.clone(), Some(https_config(&hub.other)?))?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("https://{addr}"), &hub.token("gw-prison-3")?)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not hold the CA the token pins"),
        "{stderr}"
    );
    assert_eq!(hub.requests(), 0, "the token was not sent");
    gw.assert_untouched()
}

#[test]
fn a_ca_that_is_not_the_pinned_one_is_refused_and_nothing_is_written() -> Res<()> {
    let hub = Hub::new(Fault::OtherCa)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not the one the token pins"), "{stderr}");
    gw.assert_untouched()
}

/// The hub bound the gateway to another facility than its `[node] site`: nothing is written,
/// and the message names the key, both sites and what to do.
#[test]
fn a_binding_that_does_not_hold_the_configs_site_is_refused_and_nothing_is_written() -> Res<()> {
    let hub = Hub::new(Fault::OtherSite)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[node] site")
            && stderr.contains("ministry/p/c/county/prison-3")
            && stderr.contains("ministry/p/c/county/prison-4")
            && stderr.contains("--site")
            && stderr.contains("nothing was written"),
        "{stderr}"
    );
    gw.assert_untouched()
}

#[test]
fn a_certificate_for_another_node_is_refused_and_nothing_is_written() -> Res<()> {
    let hub = Hub::new(Fault::OtherNode)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("gw-elsewhere") && stderr.contains("nothing written"),
        "{stderr}"
    );
    gw.assert_untouched()
}

#[test]
fn a_used_token_is_refused() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), None)?;
    let token = hub.token("gw-prison-3")?;
    let first = Gateway::new()?;
    assert!(first
        .enroll(&format!("http://{addr}"), &token)?
        .status
        .success());
    let second = Gateway::new()?;
    let out = second.enroll(&format!("http://{addr}"), &token)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid or expired enrollment token") && stderr.contains("new one"),
        "{stderr}"
    );
    second.assert_untouched()
}

#[test]
fn a_malformed_token_or_an_unreachable_hub_say_what_to_do() -> Res<()> {
    let gw = Gateway::new()?;
    let out = gw.enroll("http://127.0.0.1:1", "VGL1.abc")?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("paste it again"),
        "{}",
        text(&out.stderr)
    );

    let hub = Hub::new(Fault::None)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let out = gw.enroll(
        &format!("http://127.0.0.1:{port}"),
        &hub.token("gw-prison-3")?,
    )?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to http://127.0.0.1:{port}/api/v1/enroll"
        )),
        "{stderr}"
    );
    gw.assert_untouched()
}

#[test]
fn an_mqtts_uplink_without_certificates_is_a_config_error_that_says_enroll() -> Res<()> {
    let gw = Gateway::new()?;
    std::fs::write(
        &gw.config,
        CONFIG.replace("mqtt://127.0.0.1:1883", "mqtts://127.0.0.1:8883"),
    )?;
    let out = Command::new(AGENT)
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls.ca")
            && stderr.contains("ca.pem")
            && stderr.contains("vigil-agent enroll"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn check_refuses_a_certificate_issued_to_another_node() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    assert!(gw
        .enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?
        .status
        .success());
    let text_now = std::fs::read_to_string(&gw.config)?;
    std::fs::write(
        &gw.config,
        text_now.replace("id = \"gw-prison-3\"", "id = \"gw-other\""),
    )?;
    let out = Command::new(AGENT)
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("node.id") && stderr.contains("issued to \"gw-prison-3\""),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn check_warns_of_a_certificate_that_expires_within_30_days() -> Res<()> {
    let hub = Hub::new(Fault::ShortLived)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let out = gw.enroll(&format!("http://{addr}"), &hub.token("gw-prison-3")?)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let check = Command::new(AGENT)
        .args(["check", "--config"])
        .arg(&gw.config)
        .output()?;
    let report = text(&check.stdout);
    assert!(check.status.success(), "{report}\n{}", text(&check.stderr));
    assert!(
        report.contains("warning: the certificate expires in 9 days")
            && report.contains("vigil-agent enroll"),
        "{report}"
    );
    Ok(())
}

#[test]
fn a_token_on_the_command_line_is_refused_before_it_is_sent() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let token = hub.token("gw-prison-3")?;
    let out = Command::new(AGENT)
        .args([
            "enroll",
            "--hub",
            &format!("http://{addr}"),
            "--token",
            &token,
        ])
        .arg("--config")
        .arg(&gw.config)
        .timeout(Duration::from_secs(60))
        .output()?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--token -") && stderr.contains("(`ps`)") && stderr.contains("history"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&token),
        "the token is not repeated: {stderr}"
    );
    assert_eq!(hub.requests(), 0, "the token was not sent");
    gw.assert_untouched()?;
    // The same token, on standard input, still works.
    let out = gw.enroll(&format!("http://{addr}"), &token)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn an_enrolled_gateway_is_not_enrolled_again_without_force() -> Res<()> {
    let hub = Hub::new(Fault::None)?;
    let addr = serve(hub.clone(), None)?;
    let gw = Gateway::new()?;
    let url = format!("http://{addr}");
    assert!(gw
        .enroll(&url, &hub.token("gw-prison-3")?)?
        .status
        .success());
    let cert = std::fs::read_to_string(gw.tls_dir().join("node.pem"))?;

    let out = gw.enroll(&url, &hub.token("gw-prison-3")?)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already enrolled") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(hub.requests(), 1, "the second token was not sent");
    assert_eq!(
        std::fs::read_to_string(gw.tls_dir().join("node.pem"))?,
        cert
    );

    let out = gw.enroll_with(&url, &hub.token("gw-prison-3")?, &["--force"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(hub.requests(), 2);
    assert_ne!(
        std::fs::read_to_string(gw.tls_dir().join("node.pem"))?,
        cert
    );
    Ok(())
}
