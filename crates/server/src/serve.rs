//! The HTTP/1.1 accept loop: hyper with the limits axum's `serve` does not
//! expose, graceful shutdown, and the same over TLS (`crate::tls`).
//!
//! Why not `axum::serve`: VTP holds thousands of idle signalling
//! connections, so it needs a cap on open connections (in all and per
//! client address), a deadline for request heads (slow-loris; hyper's
//! `header_read_timeout`, which also ends idle keep-alive connections), a
//! deadline for request bodies (a body trickled a byte at a time), and
//! hyper's smallest read buffer.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use crate::tls::TlsOptions;
use hyper::header::HeaderValue;

/// Limits of the accept loop.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Open connections at most; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Open connections at most from one TCP peer address, except the
    /// `proxies` (whose connections carry many clients).
    pub max_connections_per_ip: usize,
    pub proxies: Vec<ipnet::IpNet>,
    /// Time a client has to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, from its head.
    pub body_read_timeout: Duration,
    /// Kept equal to the number of open connections (for metrics).
    pub open: Arc<AtomicUsize>,
}

impl ConnectionLimits {
    /// The limits `vtp serve` is configured with.
    pub fn from_args(args: &crate::config::ServeArgs, open: Arc<AtomicUsize>) -> Self {
        ConnectionLimits {
            max_connections: args.max_connections,
            max_connections_per_ip: args.max_connections_per_ip,
            proxies: args.trust_forwarded_for.clone(),
            header_read_timeout: args.header_read_timeout,
            body_read_timeout: args.body_read_timeout,
            open,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            max_connections_per_ip: 2_500,
            proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            open: Arc::default(),
        }
    }
}

/// Open connections per TCP peer address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

impl PerAddress {
    /// Counts a connection from `ip`; `None` when it already has `max`.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place in [`PerAddress`], given back when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// [`serve_with`], with the wait for open connections bounded: once
/// `stopping` completes (the caller's shutdown work included), connections
/// still open after `grace` are dropped.
pub async fn serve_with_grace(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsOptions>,
    grace: Duration,
    stopping: impl Future<Output = ()> + Send + 'static,
) {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = serve_with(listener, app, limits, tls, async move {
        stopping.await;
        let _ = stopped_tx.send(());
    });
    tokio::select! {
        () = serving => {}
        () = async move {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace period over: dropping remaining connections");
        }
    }
}

/// Serves `app` over plain HTTP on `listener` until `shutdown` completes
/// (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(listener, app, limits, None, shutdown).await
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until
/// `shutdown` completes, then stops accepting and waits for open
/// connections to finish their requests (upgraded connections must be
/// closed by their owner; the caller bounds the wait, e.g. with
/// [`serve_with_grace`]).
///
/// A TLS connection is the same HTTP/1.1 connection inside the TLS stream:
/// it takes its connection slot when accepted (so it counts during the
/// handshake, which is bounded by `handshake_timeout`), then gets the same
/// head deadline, upgrades and graceful shutdown as a plain one.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsOptions>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    // One permit per open connection: the cap, and (by taking them all back)
    // the way to know every connection has finished.
    let slots = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(PerAddress::default());
    let (stopping, stop_signal) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // The smallest hyper allows: requests are small, idle connections many.
        .max_buf_size(8192);
    let acceptor = tls.as_ref().map(|t| {
        (
            tokio_rustls::TlsAcceptor::from(t.config.clone()),
            t.handshake_timeout,
        )
    });
    let hsts = tls.and_then(|t| t.hsts);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip = peer.ip().to_canonical();
        let address_slot = if limits.proxies.iter().any(|net| net.contains(&ip)) {
            None
        } else {
            match per_address.take(ip, limits.max_connections_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, "connection limit per address reached: closing new connection");
                    continue;
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached: closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The permits travel with the socket, so an upgraded (websocket)
        // connection keeps counting until it is closed.
        let stream = Counted::new(stream, slot, address_slot, limits.open.clone());
        let conn = Conn {
            http: http.clone(),
            app: app.clone(),
            peer,
            hsts: hsts.clone(),
            body_read_timeout: limits.body_read_timeout,
            stop_signal: stop_signal.clone(),
        };
        match acceptor.clone() {
            None => {
                tokio::spawn(conn.run(stream));
            }
            Some((acceptor, handshake_timeout)) => {
                tokio::spawn(async move {
                    let mut stop_signal = conn.stop_signal.clone();
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        // Stopping: a connection without a request yet has nothing to finish.
                        _ = stop_signal.changed() => return,
                    };
                    // An ACME TLS-ALPN-01 validator: the handshake was the answer.
                    if stream.get_ref().1.alpn_protocol() == Some(crate::tls::acme::ACME_TLS_ALPN) {
                        return;
                    }
                    conn.run(stream).await;
                });
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let _ = slots.acquire_many(max as u32).await;
}

/// One accepted connection (plain or after its TLS handshake) and what it
/// is served with.
struct Conn {
    http: hyper::server::conn::http1::Builder,
    app: Router,
    peer: SocketAddr,
    /// `Strict-Transport-Security` for every response (TLS only).
    hsts: Option<HeaderValue>,
    body_read_timeout: Duration,
    stop_signal: watch::Receiver<bool>,
}

impl Conn {
    async fn run<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            http,
            app,
            peer,
            hsts,
            body_read_timeout,
            mut stop_signal,
        } = self;
        let service = tower::service_fn(move |req: hyper::Request<Incoming>| {
            let req = req.map(|body| DeadlineBody::new(body, body_read_timeout));
            let mut req = own_upgrade_request_head(req);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let response = app.clone().oneshot(req);
            let hsts = hsts.clone();
            async move {
                let mut response = response.await?;
                if let Some(hsts) = hsts {
                    response
                        .headers_mut()
                        .insert(hyper::header::STRICT_TRANSPORT_SECURITY, hsts);
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = stop_signal.changed() => {
                // Finish the request in flight, then close.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// A request body that must arrive whole within a deadline from the
/// request's head: past it, reading fails and hyper closes the connection
/// (a client trickling a byte every few seconds cannot hold it).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

/// The error of a body that missed its deadline.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

impl hyper::body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A TCP stream that holds a connection permit and its place among its
/// address's connections (and counts itself open) until it is dropped.
struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _address_slot: Option<AddressSlot>,
    open: Arc<AtomicUsize>,
}

impl Counted {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        address_slot: Option<AddressSlot>,
        open: Arc<AtomicUsize>,
    ) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Counted {
            stream,
            _slot: slot,
            _address_slot: address_slot,
            open,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Gives a connection-upgrade request (a websocket) its own copies of the
/// URI and headers.
///
/// hyper parses them as slices of the connection's 8 KiB read buffer, and
/// the request of an upgraded connection lives as long as the connection
/// (an upgrade handler may keep its parts; axum keeps the original URI), which would
/// keep that buffer alive for every idle websocket. Copying a few hundred
/// bytes lets it go. Plain requests are left alone: they are short-lived.
fn own_upgrade_request_head<B>(mut req: hyper::Request<B>) -> hyper::Request<B> {
    if !req.headers().contains_key(hyper::header::UPGRADE) {
        return req;
    }
    if let Ok(uri) = hyper::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    let mut headers = hyper::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if let Ok(owned) = hyper::header::HeaderValue::from_bytes(value.as_bytes()) {
            headers.append(name.clone(), owned);
        }
    }
    *req.headers_mut() = headers;
    req
}

#[cfg(test)]
mod tests {
    use super::own_upgrade_request_head;

    #[test]
    fn upgrade_requests_keep_their_head() {
        let req = hyper::Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("upgrade", "websocket")
            .header("x-a", "1")
            .header("x-a", "2")
            .body(())
            .unwrap();
        let owned = own_upgrade_request_head(req);
        assert_eq!(owned.uri().query(), Some("EIO=4&transport=websocket"));
        assert_eq!(owned.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(owned.headers()["upgrade"], "websocket");
    }
}
