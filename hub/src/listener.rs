//! The hub's one HTTP listener (`[http]`): accepts connections, refuses those over its
//! caps, runs the TLS handshake when `tls = true`, and serves the router over HTTP/1.1 with
//! hyper's connection builder and a timer — so that a slow or silent client cannot hold the
//! console and enrollment hostage (docs/ARCHITECTURE.md#security-hardening).
//!
//! | limit (`[http]`) | default | what happens past it |
//! |---|---|---|
//! | `max_connections` | 512 | a new connection is closed as soon as it is accepted |
//! | `max_connections_per_address` | 64 | the same, for one client address (an IPv6 client: its /64) |
//! | `header_read_timeout` | 10 s | the TLS handshake, then each request's headers, must arrive within it; a kept-alive connection that sends nothing more is closed after it |
//! | `idle_timeout` | 60 s | a connection on which no byte moves either way is closed (a stalled upload, a client that stops reading) |
//! | `request_timeout` | 30 s | a request not answered within it, its body included, is answered 408 and its connection closed (a body sent a byte at a time); the live stream is exempt (enforced by the router, `crate::api`) |
//!
//! Every refusal and timeout is counted (`vigil_hub_http_connections_refused_total`,
//! `vigil_hub_http_connection_timeouts_total`) and the open connections are a gauge
//! (`vigil_hub_http_connections`). Handlers find the client's address as
//! `ConnectInfo<SocketAddr>`, plain or TLS alike; the sign-in and enrollment limits count by
//! it.
//!
//! Plain HTTP is refused off loopback unless `[http] allow_plaintext = true` ([`validate`]):
//! passwords, session cookies and API tokens would otherwise cross the network in clear.
//!
//! On shutdown the listener stops accepting, each connection finishes the request it is
//! serving and closes, and [`serve`] returns once every connection has.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_config::Problem;
use vigil_pki::rustls::ServerConfig;

use crate::config::HttpSection;
use crate::metrics::HubMetrics;

/// The semantic checks of `[http]`'s limits and of plain HTTP off loopback.
pub fn validate(http: &HttpSection, out: &mut Vec<Problem>) {
    if !http.tls && !http.listen.ip().is_loopback() && !http.allow_plaintext {
        out.push(Problem::new(
            "http.listen",
            format!(
                "{} is not a loopback address and [http] tls is off: passwords, session \
                 cookies and API tokens would cross the network in clear. Set tls = true \
                 (a certificate from the hub's CA, or your own cert and key), listen on \
                 127.0.0.1 behind a TLS-terminating proxy, or, only if such a proxy on a \
                 trusted network reaches this address, set allow_plaintext = true",
                http.listen
            ),
        ));
    }
    for (key, value) in [
        ("http.header_read_timeout", http.header_read_timeout),
        ("http.idle_timeout", http.idle_timeout),
        ("http.request_timeout", http.request_timeout),
    ] {
        if value.is_zero() {
            out.push(Problem::new(key, "must be longer than 0, e.g. 10s"));
        }
    }
    for (key, value) in [
        ("http.max_connections", http.max_connections),
        (
            "http.max_connections_per_address",
            http.max_connections_per_address,
        ),
    ] {
        if value == 0 {
            out.push(Problem::new(key, "must be at least 1, e.g. 64"));
        }
    }
}

/// The limits of `[http]` the listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The TLS handshake, and each request's headers, within this.
    pub header_read_timeout: Duration,
    /// No byte either way for this long closes the connection.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
}

impl Limits {
    /// The limits `[http]` sets.
    pub fn from_config(http: &HttpSection) -> Self {
        Limits {
            header_read_timeout: http.header_read_timeout,
            idle_timeout: http.idle_timeout,
            max_connections: http.max_connections,
            max_connections_per_address: http.max_connections_per_address,
        }
    }
}

/// How often, at most, reaching a cap is logged (every refusal is counted).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Who may open one more connection: the hub-wide cap and the per-address counts — the
/// broker gate's admission (one of each), every connection holding its per-address place
/// for its life — and when reaching a cap is logged.
#[derive(Debug)]
struct Admission {
    places: vigil_link::gate::admission::Admission,
    started: Instant,
    /// Milliseconds after `started` of the last warning about a cap, plus one (0: none).
    warned: AtomicU64,
}

/// A connection let in: its place is given back when it is dropped.
type Admitted = vigil_link::gate::admission::Admitted;

impl Admission {
    /// `open` counts the open connections.
    fn new(limits: &Limits, open: prometheus::IntGauge) -> Self {
        Admission {
            places: vigil_link::gate::admission::Admission::new(
                limits.max_connections,
                limits.max_connections_per_address,
                limits.max_connections,
                open,
            ),
            started: Instant::now(),
            warned: AtomicU64::new(0),
        }
    }

    /// A place for a connection from `peer`, or the cap that refuses it.
    fn admit(&self, peer: IpAddr) -> Result<Admitted, &'static str> {
        use vigil_link::gate::admission::Refusal;
        self.places.admit(peer).map_err(|refusal| match refusal {
            Refusal::PerAddress => "max_connections_per_address",
            Refusal::Capacity | Refusal::Pending => "max_connections",
        })
    }

    /// Whether to log this refusal: the first, then at most one per [`WARN_EVERY`].
    fn should_warn(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.warned.load(Ordering::Relaxed);
        let due = last == 0
            || now.saturating_sub(last - 1)
                >= u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        due && self
            .warned
            .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// What every connection's task shares.
struct Shared {
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    metrics: HubMetrics,
    shutdown: CancellationToken,
}

/// Serves `app` on `listener` — over TLS with `tls` — within `limits`, until `shutdown`;
/// returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    limits: Limits,
    metrics: HubMetrics,
    shutdown: CancellationToken,
) {
    let admission = Admission::new(&limits, metrics.http_connections.clone());
    let shared = Arc::new(Shared {
        app,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        limits,
        metrics,
        shutdown: shutdown.clone(),
    });
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was accepted.
                tracing::warn!(%error, "HTTP: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admission.admit(peer.ip()) {
            Ok(admitted) => {
                connections.spawn(connection(Arc::clone(&shared), tcp, peer, admitted));
            }
            Err(cap) => {
                shared
                    .metrics
                    .http_connections_refused
                    .with_label_values(&[cap])
                    .inc();
                if admission.should_warn() {
                    tracing::warn!(%peer, cap, "HTTP: connection refused: [http] {cap} reached");
                } else {
                    tracing::debug!(%peer, cap, "HTTP: connection refused");
                }
                drop(tcp);
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// One connection, from its handshake (if TLS) to its close.
async fn connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, admitted: Admitted) {
    let _admitted = admitted;
    // Answers are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    match &shared.tls {
        None => http(&shared, tcp, peer).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(tcp));
            let tls = tokio::select! {
                () = shared.shutdown.cancelled() => return,
                tls = handshake => tls,
            };
            match tls {
                Ok(Ok(tls)) => http(&shared, tls, peer).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "HTTPS: handshake failed"),
                Err(_) => {
                    shared
                        .metrics
                        .http_connection_timeouts
                        .with_label_values(&["tls_handshake"])
                        .inc();
                    tracing::debug!(%peer, "HTTPS: handshake timed out");
                }
            }
        }
    }
}

/// Serves HTTP/1.1 on `io` until the client closes, a timeout, or shutdown.
async fn http<T>(shared: &Shared, io: T, peer: SocketAddr)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = shared
        .metrics
        .http_connection_timeouts
        .with_label_values(&["idle"]);
    let io = TokioIo::new(IdleIo::new(io, shared.limits.idle_timeout, idle));
    let service = WithPeer {
        app: shared.app.clone(),
        peer,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Ok(()) => {}
        // The idle timeout is counted where it fires (in IdleIo): its error may reach the
        // request's body rather than the connection.
        Err(error) if error.is_timeout() => {
            shared
                .metrics
                .http_connection_timeouts
                .with_label_values(&["header"])
                .inc();
            tracing::debug!(%peer, "HTTP: no request headers within [http] header_read_timeout");
        }
        Err(error) => tracing::debug!(%peer, %error, "HTTP: connection ended with an error"),
    }
}

/// The router, with the client's address in each request (`ConnectInfo<SocketAddr>`).
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A Router is always ready (its poll_ready returns Ready at once).
        let mut app = self.app.clone();
        tower_service::Service::call(&mut app, request)
    }
}

/// The error [`IdleIo`] ends a connection with.
#[derive(Debug, thiserror::Error)]
#[error("no byte moved either way for [http] idle_timeout")]
struct IdleTimeout;

/// A connection that fails with [`IdleTimeout`] once no byte has moved either way for
/// `idle`: checked whenever a read or a write has to wait; counted once in `fired`.
struct IdleIo<T> {
    inner: T,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    fired: Option<prometheus::IntCounter>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Duration, fired: prometheus::IntCounter) -> Self {
        IdleIo {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            fired: Some(fired),
        }
    }

    fn moved(&mut self) {
        self.deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + self.idle);
    }

    /// After a write was polled: progress moves the deadline, a wait checks it.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.waiting(cx),
        }
    }

    /// On a wait: the timeout's error once the deadline has passed.
    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                if let Some(counter) = self.fired.take() {
                    counter.inc();
                }
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, IdleTimeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.waiting(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => this.waiting(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_address: per_address,
        }
    }

    #[test]
    fn caps_hub_wide_and_per_address_and_places_come_back() {
        let gauge = prometheus::IntGauge::new("open", "open").expect("gauge");
        let admission = Admission::new(&limits(3, 2), gauge.clone());
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = admission.admit(a).expect("first");
        let a2 = admission.admit(a).expect("second");
        assert_eq!(
            admission.admit(a).map(|_| ()),
            Err("max_connections_per_address")
        );
        let b1 = admission.admit(b).expect("another address");
        assert_eq!(admission.admit(b).map(|_| ()), Err("max_connections"));
        assert_eq!(gauge.get(), 3);
        drop(a1);
        let a3 = admission.admit(a).expect("a place came back");
        drop((a2, a3, b1));
        assert_eq!(gauge.get(), 0);
        // Every place came back: the caps hold again from zero.
        let again: Vec<_> = [a, a, b]
            .iter()
            .map(|ip| admission.admit(*ip).expect("a place"))
            .collect();
        assert_eq!(gauge.get(), 3);
        drop(again);
    }

    #[test]
    fn plaintext_off_loopback_is_refused_unless_allowed() {
        let mut http = HttpSection::default();
        let mut out = Vec::new();
        validate(&http, &mut out);
        assert!(out.is_empty(), "loopback: {out:?}");
        http.listen = "0.0.0.0:8080".parse().expect("addr");
        validate(&http, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].key, "http.listen");
        assert!(
            out[0].message.contains("allow_plaintext = true"),
            "{}",
            out[0].message
        );
        assert!(out[0].message.contains("in clear"), "{}", out[0].message);
        for fix in [
            HttpSection {
                tls: true,
                ..http.clone()
            },
            HttpSection {
                allow_plaintext: true,
                ..http.clone()
            },
            HttpSection {
                listen: "[::1]:8080".parse().expect("addr"),
                ..http.clone()
            },
        ] {
            let mut out = Vec::new();
            validate(&fix, &mut out);
            assert!(out.is_empty(), "{fix:?}: {out:?}");
        }
    }
}
