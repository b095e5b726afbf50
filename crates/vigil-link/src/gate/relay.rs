//! One node's connection through the gate: the TLS handshake and the CONNECT (bounded
//! together in time), the node id from the verified certificate, the CONNECT checked and
//! its login replaced, a TCP
//! connection to the internal broker, and then the relay — client → broker packet by
//! packet through the [`Acl`], broker → client byte for byte — until either side closes,
//! the ACL refuses a packet, the certificate is revoked, or the gate stops.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use rustls::CertificateError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use vigil_core::NodeId;
use vigil_pki::Revocations;

use super::acl::{Acl, Violation};
use super::admission::Admitted;
use super::denials::truncate_topic;
use super::frame::{next_packet, write_packet, Frame};
use super::metrics::GateMetrics;
use super::Denial;
use crate::mqtt::MqttCredentials;
use rumqttc::mqttbytes::v4::Packet;

/// What every connection shares.
pub(super) struct Shared {
    pub acceptor: TlsAcceptor,
    pub internal: SocketAddr,
    pub credentials: MqttCredentials,
    pub revocations: Revocations,
    pub metrics: GateMetrics,
    pub denials: mpsc::Sender<Denial>,
    pub handshake_timeout: Duration,
    pub max_packet_bytes: usize,
    /// Failed handshakes are logged one every few seconds (anyone can cause them; every one
    /// is counted in the metrics).
    pub handshake_log: std::sync::Mutex<super::RefusalLog>,
}

impl Shared {
    /// Whether a failed handshake now is logged at `warn` (else at `debug`).
    fn handshake_log_due(&self) -> bool {
        self.handshake_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .due(tokio::time::Instant::now())
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("internal", &self.internal)
            .field("credentials", &self.credentials)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// How a relay ended.
#[derive(Debug)]
enum Ending {
    ClientClosed,
    BrokerClosed,
    Denied(Violation),
    Revoked,
    Shutdown,
    Io(&'static str, io::Error),
}

/// Serves one accepted TCP connection to its end.
pub(super) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
    mut permit: Admitted,
) {
    let _ = tcp.set_nodelay(true);
    // One deadline for the handshake and the CONNECT: until then the client is unknown.
    let deadline = tokio::time::Instant::now() + shared.handshake_timeout;
    // Subscribe before the handshake: a revocation from here on is seen.
    let revoked_rx = shared.revocations.subscribe();
    let handshake = tokio::time::timeout_at(deadline, shared.acceptor.accept(tcp));
    let tls = tokio::select! {
        _ = shutdown.cancelled() => return,
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                let reason = classify(&err);
                shared.metrics.handshake_failed(reason);
                if shared.handshake_log_due() {
                    warn!(%peer, reason, error = %err,
                          "gate: TLS handshake refused (more within 10 s are only counted in vigil_gate_handshake_failures_total)");
                } else {
                    debug!(%peer, reason, error = %err, "gate: TLS handshake refused");
                }
                return;
            }
            Err(_) => {
                shared.metrics.handshake_failed("timeout");
                if shared.handshake_log_due() {
                    warn!(%peer, timeout_ms = shared.handshake_timeout.as_millis() as u64,
                          "gate: TLS handshake timed out (more within 10 s are only counted in vigil_gate_handshake_failures_total)");
                } else {
                    debug!(%peer, "gate: TLS handshake timed out");
                }
                return;
            }
        },
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| "no client certificate".to_owned())
        .and_then(|cert| {
            let node = vigil_pki::node_of_certificate(cert).map_err(|e| e.to_string())?;
            let serial = vigil_pki::serial_of_certificate(cert).map_err(|e| e.to_string())?;
            Ok((node, serial))
        });
    let (node, serial) = match identity {
        Ok(identity) => identity,
        Err(error) => {
            // The verifier checked all this already; only a verifier bug gets here.
            shared.metrics.handshake_failed("bad_certificate");
            warn!(%peer, %error, "gate: no usable identity in the client certificate");
            return;
        }
    };
    if shared.revocations.is_revoked(&serial) {
        shared.metrics.handshake_failed("revoked");
        warn!(%peer, node = %node, %serial, "gate: certificate revoked during the handshake");
        return;
    }
    shared.metrics.connections_total.inc();
    let acl = Acl::new(node.clone());
    let (mut client_rd, mut client_wr) = tokio::io::split(tls);
    let mut buf = BytesMut::with_capacity(4096);

    // The CONNECT, within the same deadline.
    let first = tokio::time::timeout_at(
        deadline,
        read_packet(&mut client_rd, &mut buf, shared.max_packet_bytes),
    );
    let first = tokio::select! {
        _ = shutdown.cancelled() => return,
        first = first => first,
    };
    let packet = match first {
        Ok(Ok(Some(packet))) => packet,
        Ok(Ok(None)) => {
            debug!(%peer, node = %node, "gate: closed before CONNECT");
            return;
        }
        Ok(Err(ReadError::Io(err))) => {
            debug!(%peer, node = %node, error = %err, "gate: connection lost before CONNECT");
            return;
        }
        Ok(Err(ReadError::Malformed(violation))) => {
            deny(&shared, &node, peer, violation);
            return;
        }
        Err(_) => {
            shared.metrics.handshake_failed("connect_timeout");
            warn!(%peer, node = %node, timeout_ms = shared.handshake_timeout.as_millis() as u64,
                  "gate: no CONNECT in time after the TLS handshake");
            return;
        }
    };
    let connect = match acl.connect(packet, &shared.credentials) {
        Ok(connect) => connect,
        Err(violation) => {
            deny(&shared, &node, peer, violation);
            return;
        }
    };
    // Authenticated: the address's pre-authentication place is free again.
    permit.authenticated();
    let mut out = BytesMut::new();
    if let Err(err) = write_packet(&Packet::Connect(connect), &mut out, shared.max_packet_bytes) {
        deny(
            &shared,
            &node,
            peer,
            Violation::protocol(&format!("CONNECT cannot be re-encoded: {err}")),
        );
        return;
    }
    let broker = match TcpStream::connect(shared.internal).await {
        Ok(broker) => broker,
        Err(err) => {
            warn!(node = %node, internal = %shared.internal, error = %err,
                  "gate: cannot reach the internal broker; closing the node's connection");
            return;
        }
    };
    let _ = broker.set_nodelay(true);
    let (mut broker_rd, mut broker_wr) = broker.into_split();
    if let Err(err) = broker_wr.write_all(&out).await {
        warn!(node = %node, error = %err, "gate: cannot write to the internal broker");
        return;
    }
    shared.metrics.connections.inc();
    let _open = OpenGuard(shared.metrics.clone());
    info!(node = %node, %peer, %serial, "gate: node connected");

    let ending = tokio::select! {
        ending = client_to_broker(&mut client_rd, &mut buf, &mut broker_wr, &acl, shared.max_packet_bytes) => ending,
        ending = broker_to_client(&mut broker_rd, &mut client_wr) => ending,
        () = until_revoked(revoked_rx, &shared.revocations, &serial) => Ending::Revoked,
        () = shutdown.cancelled() => Ending::Shutdown,
    };
    match ending {
        Ending::Denied(violation) => deny(&shared, &node, peer, violation),
        Ending::Revoked => {
            shared.metrics.revoked_closed.inc();
            warn!(node = %node, %peer, %serial, "gate: certificate revoked; connection closed");
        }
        Ending::ClientClosed => debug!(node = %node, %peer, "gate: node closed its connection"),
        Ending::BrokerClosed => {
            debug!(node = %node, %peer, "gate: the broker closed the node's connection")
        }
        Ending::Shutdown => debug!(node = %node, %peer, "gate: stopping"),
        Ending::Io(side, err) => {
            debug!(node = %node, %peer, side, error = %err, "gate: connection lost")
        }
    }
    // Dropping the broker side without a DISCONNECT makes the broker publish the node's
    // last will (it is offline). Close the TLS side with a close_notify, briefly.
    drop(broker_wr);
    drop(broker_rd);
    let _ = tokio::time::timeout(Duration::from_secs(1), client_wr.shutdown()).await;
}

struct OpenGuard(GateMetrics);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

fn deny(shared: &Shared, node: &NodeId, peer: SocketAddr, violation: Violation) {
    shared.metrics.denied(violation.reason);
    let (topic, truncated) = truncate_topic(violation.topic.as_deref().unwrap_or(""));
    warn!(
        node = %node,
        %peer,
        packet = violation.action.as_str(),
        topic,
        topic_truncated = truncated,
        reason = violation.reason.as_str(),
        "gate: access denied; connection closed"
    );
    let denial = Denial::new(
        node.clone(),
        violation.action,
        violation.reason,
        violation.topic.as_deref(),
        peer,
        SystemTime::now(),
    );
    if shared.denials.try_send(denial).is_err() {
        shared.metrics.denial_records_dropped.inc();
        debug!(node = %node, "gate: denial not queued (the aggregation queue is full)");
    }
}

#[derive(Debug)]
enum ReadError {
    Io(io::Error),
    Malformed(Violation),
}

/// Reads one whole packet; `None` when the client closed first.
async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, ReadError> {
    loop {
        match next_packet(buf, max) {
            Ok(Frame::Packet(packet)) => return Ok(Some(packet)),
            Ok(Frame::Incomplete) => {}
            Err(err) => {
                return Err(ReadError::Malformed(Violation::protocol(&format!(
                    "malformed packet: {err}"
                ))))
            }
        }
        if rd.read_buf(buf).await.map_err(ReadError::Io)? == 0 {
            return Ok(None);
        }
    }
}

async fn client_to_broker<R, W>(
    rd: &mut R,
    buf: &mut BytesMut,
    broker: &mut W,
    acl: &Acl,
    max: usize,
) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let mut refused = None;
        loop {
            match next_packet(buf, max) {
                Ok(Frame::Packet(packet)) => match acl.check(&packet) {
                    Ok(()) => {
                        if let Err(err) = write_packet(&packet, &mut out, max) {
                            refused =
                                Some(Violation::protocol(&format!("cannot re-encode: {err}")));
                            break;
                        }
                    }
                    Err(violation) => {
                        refused = Some(violation);
                        break;
                    }
                },
                Ok(Frame::Incomplete) => break,
                Err(err) => {
                    refused = Some(Violation::protocol(&format!("malformed packet: {err}")));
                    break;
                }
            }
        }
        // What was allowed before a refused packet still goes through.
        if !out.is_empty() {
            if let Err(err) = broker.write_all(&out).await {
                return Ending::Io("broker", err);
            }
            out.clear();
        }
        if let Some(violation) = refused {
            return Ending::Denied(violation);
        }
        match rd.read_buf(buf).await {
            Ok(0) => return Ending::ClientClosed,
            Ok(_) => {}
            Err(err) => return Ending::Io("client", err),
        }
    }
}

async fn broker_to_client<R, W>(rd: &mut R, client: &mut W) -> Ending
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) => return Ending::BrokerClosed,
            Ok(n) => n,
            Err(err) => return Ending::Io("broker", err),
        };
        if let Err(err) = client.write_all(&chunk[..n]).await {
            return Ending::Io("client", err);
        }
        if let Err(err) = client.flush().await {
            return Ending::Io("client", err);
        }
    }
}

async fn until_revoked(mut changes: watch::Receiver<u64>, revocations: &Revocations, serial: &str) {
    loop {
        if revocations.is_revoked(serial) {
            return;
        }
        if changes.changed().await.is_err() {
            // The set is gone: nothing can be revoked any more.
            std::future::pending::<()>().await;
        }
    }
}

/// The `reason` label of a failed handshake.
fn classify(err: &io::Error) -> &'static str {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return "io";
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => "unknown_ca",
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => "expired",
            CertificateError::Revoked => "revoked",
            _ => "bad_certificate",
        },
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => "not_tls",
        _ => "other",
    }
}
