//! `GET /healthz` on the agent's HTTP listener (`[metrics] listen`, see `run.rs`), as the
//! supervisor asks it of a version on trial: a plain HTTP/1.1 request over a fresh TCP
//! connection, healthy only on a `200` status within the timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one probe may take, connect to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The address to probe for a listener bound at `listen`: an unspecified address
/// (`0.0.0.0`, `::`) is reached on loopback; port 0 (chosen by the OS) cannot be probed.
pub fn probe_addr(listen: SocketAddr) -> Option<SocketAddr> {
    if listen.port() == 0 {
        return None;
    }
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, listen.port()))
}

/// Whether `GET /healthz` at `addr` answers 200 within [`PROBE_TIMEOUT`].
pub async fn probe(addr: SocketAddr) -> bool {
    tokio::time::timeout(PROBE_TIMEOUT, ask(addr))
        .await
        .unwrap_or(false)
}

async fn ask(addr: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    is_ok_status(&head[..read])
}

/// Whether a response starts with a `200` status line.
fn is_ok_status(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            probe_addr(addr("0.0.0.0:9901")),
            Some(addr("127.0.0.1:9901"))
        );
        assert_eq!(probe_addr(addr("[::]:9901")), Some(addr("[::1]:9901")));
        assert_eq!(
            probe_addr(addr("10.0.0.2:9901")),
            Some(addr("10.0.0.2:9901"))
        );
        assert_eq!(probe_addr(addr("127.0.0.1:0")), None);
        assert!(is_ok_status(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_ok_status(b"HTTP/1.1 503 Service Unavailable"));
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(!probe(addr).await);
    }
}
