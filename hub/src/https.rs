//! HTTPS on the hub's one listener (`[http] tls = true`): the API, the console, the feeds
//! and `POST /api/v1/enroll` over TLS, with a certificate from the hub's CA (presented with
//! the CA's certificate, so that an enrolling node can pin it from its token) or the
//! operator's own (`[http] cert`/`key`); see [`crate::pki::HubPki::https_tls`].
//!
//! [`TlsListener`] is an `axum::serve` listener: TCP connections are accepted and their
//! handshakes run in tasks of their own (bounded by [`HANDSHAKE_TIMEOUT`]), so a slow or
//! silent client never holds up the next one. Handlers find the client's address as with
//! plain HTTP (`ConnectInfo<SocketAddr>`), which the sign-in and enrollment rate limits
//! count by.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::IncomingStream;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use vigil_pki::rustls::ServerConfig;

/// How long a client has for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake is done and that wait for the server.
const QUEUE: usize = 64;

/// A TLS listener for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    stop: CancellationToken,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`: accepting starts now.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(accept_loop(listener, acceptor, tx, stop.clone()));
        Ok(TlsListener {
            accepted,
            local,
            stop,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "HTTPS: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "HTTPS: handshake failed"),
                Err(_) => tracing::debug!(%peer, "HTTPS: handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(pair) => pair,
            // The accept loop ended (stopping): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client address of a TLS connection.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Makes the TLS client's address available the way plain HTTP does.
async fn peer_as_socket_addr(mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(PeerAddr(addr))) =
        request.extensions().get::<ConnectInfo<PeerAddr>>().copied()
    {
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    next.run(request).await
}

/// Serves `app` over TLS on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: CancellationToken,
) {
    let listener = match TlsListener::new(listener, tls) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "HTTPS endpoint failed");
            return;
        }
    };
    let app = app
        .layer(middleware::from_fn(peer_as_socket_addr))
        .into_make_service_with_connect_info::<PeerAddr>();
    let serve = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await });
    if let Err(error) = serve.await {
        tracing::error!(%error, "HTTPS endpoint failed");
    }
}
