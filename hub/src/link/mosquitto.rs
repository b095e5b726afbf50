//! `vigil-hub broker-config --out DIR`: what an external Mosquitto needs to be the hub's
//! broker with mTLS and per-node access control.
//!
//! | file | what |
//! |---|---|
//! | `ca.pem` | the hub's CA: Mosquitto trusts client certificates it issued |
//! | `server.pem`, `server.key` (0600) | Mosquitto's certificate, from the hub's CA, for the `--name` hosts, the host of `[mqtt] url`, `[mqtt] names`, `localhost`, `127.0.0.1`, `::1` |
//! | `acl` | each node writes only `vigil/v1/up/%u` and `vigil/v1/status/%u` and reads only `vigil/v1/down/%u`; the hub's own identity reads `vigil/v1/up/+` and `vigil/v1/status/+` and writes `vigil/v1/down/+` |
//! | `crl.pem` | the revoked certificates, signed by the CA |
//! | `mosquitto.conf` | `user` (with `--user`), `listener`, `cafile`, `certfile`, `keyfile`, `require_certificate true`, `use_identity_as_username true` (the certificate's CN is the username `%u`), `use_username_as_clientid true`, `acl_file`, `crlfile` |
//!
//! `use_username_as_clientid true` makes every client's MQTT client id its certificate's
//! CN, whatever it asked for: without it an enrolled node could connect with the hub's
//! client id, or another node's, and Mosquitto would close that session to let it in
//! (a session takeover), taking the hub or the node off the network. There is no
//! `tls_version` line: Mosquitto's default accepts TLS 1.2 and TLS 1.3 and refuses older
//! versions (checked with Mosquitto 2.0.11; the hub's own clients negotiate TLS 1.3).
//!
//! The hub connects to that broker with a client certificate naming its own node id,
//! issued by its CA at every start (`[mqtt] url = "mqtts://…"`).
//!
//! **Revocation**: the hub rewrites `crl.pem` next to its store (`[store] path`'s
//! directory) at every revocation and at start, and `mosquitto.conf` points `crlfile` at
//! it. Mosquitto reads its CRL when it starts and on `SIGHUP`: after a revocation, reload
//! it (`systemctl reload mosquitto` or `kill -HUP`) — until then a revoked node can still
//! connect — and close the node's open connection by restarting Mosquitto if it must go at
//! once. (The embedded broker's gate needs none of this: it drops the node live.)

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vigil_pki::files::write_atomic;
use vigil_pki::{write_certificate, write_private_key, RevokedSerial};
use vigil_store::Store;

use crate::cli_error::CommandError;
use crate::config::{Broker, HubConfig};
use crate::pki::{server_names, HubPki};

/// The CRL's file name next to the store.
pub const CRL_FILE: &str = "crl.pem";

/// What [`write`] wrote.
#[derive(Debug, Clone)]
pub struct BrokerFiles {
    /// `mosquitto.conf`.
    pub conf: PathBuf,
    /// The ACL file.
    pub acl: PathBuf,
    /// The CRL Mosquitto reads (next to the hub's store).
    pub crl: PathBuf,
    /// The address Mosquitto listens on.
    pub listen: SocketAddr,
    /// The names in its certificate.
    pub names: Vec<String>,
}

/// Where the hub keeps the CRL for an external broker: `crl.pem` next to the store.
pub fn crl_path(config: &HubConfig) -> PathBuf {
    config
        .store
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(CRL_FILE)
}

/// Writes the CA-signed CRL of every revoked certificate to `path` (0644, atomically).
pub fn write_crl(store: &Store, pki: &HubPki, path: &Path) -> Result<(), CommandError> {
    let revoked: Vec<RevokedSerial> = store
        .revoked_certificates()?
        .into_iter()
        .map(|r| RevokedSerial {
            serial: r.serial,
            revoked_at: std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(
                    u64::try_from(r.revoked_at.as_millis()).unwrap_or(0),
                ),
        })
        .collect();
    let number = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let pem = pki.ca().crl(&revoked, number)?;
    write_certificate(path, &pem)?;
    Ok(())
}

/// The ACL file's text for a hub whose own identity is `hub`.
pub fn acl_text(hub: &str) -> String {
    format!(
        "# Written by vigil-hub broker-config. Identities are certificate common names\n\
         # (use_identity_as_username): node ids.\n\
         \n\
         # The hub itself: every child's uplink and status in, every child's downlink out.\n\
         user {hub}\n\
         topic read vigil/v1/up/+\n\
         topic read vigil/v1/status/+\n\
         topic write vigil/v1/down/+\n\
         \n\
         # Every node: its own topics only.\n\
         pattern write vigil/v1/up/%u\n\
         pattern write vigil/v1/status/%u\n\
         pattern read vigil/v1/down/%u\n"
    )
}

/// Writes the files of the module docs into `out` for the hub `config` describes; `names`
/// and `listen` as `--name` and `--listen` say.
pub fn write(
    config: &HubConfig,
    store: &Store,
    pki: &HubPki,
    out: &Path,
    names: &[String],
    listen: Option<SocketAddr>,
    user: Option<&str>,
) -> Result<BrokerFiles, CommandError> {
    let url = match config.broker() {
        Broker::External { url } => Some(url),
        Broker::Embedded { .. } => None,
    };
    let listen = match (listen, &url) {
        (Some(listen), _) => listen,
        (None, Some(url)) => {
            let ip = url
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            SocketAddr::new(ip, url.port)
        }
        (None, None) => {
            return Err(CommandError::Message(
                "this hub runs its embedded broker ([mqtt] listen): set [mqtt] url = \
                 \"mqtts://HOST:8883\" for an external one, or give --listen ADDR:PORT"
                    .to_owned(),
            ))
        }
    };
    let mut extra: Vec<String> = names.to_vec();
    if let Some(url) = &url {
        extra.push(
            url.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    if let Some(mqtt) = &config.mqtt {
        extra.extend(mqtt.names.iter().cloned());
    }
    let names = server_names(listen.ip(), &extra);
    std::fs::create_dir_all(out)
        .map_err(|e| CommandError::Message(format!("cannot create {}: {e}", out.display())))?;
    let out = std::fs::canonicalize(out)
        .map_err(|e| CommandError::Message(format!("cannot resolve {}: {e}", out.display())))?;
    let server = pki.server_cert(&names)?;
    let ca = out.join("ca.pem");
    let cert = out.join("server.pem");
    let key = out.join("server.key");
    let acl = out.join("acl");
    let conf = out.join("mosquitto.conf");
    let crl = absolute(&crl_path(config))?;
    write_certificate(&ca, pki.ca().cert_pem())?;
    write_certificate(&cert, &server.cert_pem)?;
    write_private_key(&key, &server.key_pem)?;
    write_atomic(&acl, acl_text(config.node.id.as_str()).as_bytes(), 0o644)?;
    write_crl(store, pki, &crl)?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by vigil-hub broker-config for hub {} ({}).\n\
         # Clients need a certificate from the hub's CA: `vigil-hub enroll-token` on the hub,\n\
         # `vigil-agent enroll` on the gateway. Reload Mosquitto (SIGHUP) after a revocation\n\
         # so that it re-reads crlfile.\n",
        config.node.id, config.node.name
    );
    let addr = if listen.ip().is_unspecified() {
        String::new()
    } else {
        format!(" {}", listen.ip())
    };
    if let Some(user) = user {
        let _ = writeln!(text, "user {user}");
    }
    let _ = writeln!(text, "per_listener_settings false");
    let _ = writeln!(text, "allow_anonymous false");
    let _ = writeln!(text, "acl_file {}", acl.display());
    let _ = writeln!(text);
    let _ = writeln!(text, "listener {}{addr}", listen.port());
    let _ = writeln!(text, "cafile {}", ca.display());
    let _ = writeln!(text, "certfile {}", cert.display());
    let _ = writeln!(text, "keyfile {}", key.display());
    let _ = writeln!(text, "crlfile {}", crl.display());
    let _ = writeln!(text, "require_certificate true");
    let _ = writeln!(text, "use_identity_as_username true");
    // The client id is the certificate's CN: no node can take over another's session.
    let _ = writeln!(text, "use_username_as_clientid true");
    // No tls_version: Mosquitto's default accepts TLS 1.2 and 1.3.
    write_atomic(&conf, text.as_bytes(), 0o644)?;
    Ok(BrokerFiles {
        conf,
        acl,
        crl,
        listen,
        names,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, CommandError> {
    std::path::absolute(path)
        .map_err(|e| CommandError::Message(format!("cannot resolve {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_names_the_hub_and_patterns_every_node() {
        let acl = acl_text("county-baiyun");
        assert!(acl.contains("user county-baiyun\ntopic read vigil/v1/up/+\n"));
        assert!(acl.contains("pattern write vigil/v1/up/%u\n"));
        assert!(acl.contains("pattern read vigil/v1/down/%u\n"));
    }
}
