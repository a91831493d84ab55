//! The Engine.IO transports: the HTTP entry point (`/socket.io/`), long
//! polling with its heartbeat task, and the websocket task (one per
//! connection, which reads, writes and pings).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::packet::{self, EioIn};
use crate::ws::{self, Message};
use crate::{ClientAddr, Engine, Flow, Handler, Session, SioError, Transport, close_code, reason};

/// The route of the engine, to merge into the server's router.
pub fn router<H: Handler>(engine: Arc<Engine<H>>) -> axum::Router {
    let handle = move |req: Request| {
        let engine = engine.clone();
        async move { engine.http(req).await }
    };
    axum::Router::new()
        .route("/socket.io/", axum::routing::any(handle.clone()))
        .route("/socket.io", axum::routing::any(handle))
}

/// The query of an Engine.IO request.
#[derive(Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(query: &'a str) -> Self {
        let mut out = Query::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "EIO" => out.eio = Some(value),
                "transport" => out.transport = Some(value),
                "sid" => out.sid = Some(value),
                _ => {}
            }
        }
        out
    }
}

/// The Engine.IO error answer (`{"code","message"}` with 400).
fn refused(code: u8, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "code": code, "message": message }).to_string(),
    )
        .into_response()
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

/// Resets a session's "a poll is waiting" flag, however the poll ends.
struct PollGuard<'a, C>(&'a Session<C>);

impl<C> Drop for PollGuard<'_, C> {
    fn drop(&mut self) {
        self.0.lock().polling = false;
    }
}

/// Resets a session's "a POST is being read" flag, however the POST ends.
struct PostGuard<'a, C>(&'a Session<C>);

impl<C> Drop for PostGuard<'_, C> {
    fn drop(&mut self) {
        self.0.lock().posting = false;
    }
}

/// Sleeps until `at`, or forever without one (a `select!` branch that
/// never fires).
async fn sleep_until_some(at: Option<std::time::Instant>) {
    match at {
        Some(at) => sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl<H: Handler> Engine<H> {
    async fn http(self: Arc<Self>, req: Request) -> Response {
        let uri = req.uri().clone();
        let query = Query::parse(uri.query().unwrap_or(""));
        if query.eio != Some("4") {
            return refused(5, "Unsupported protocol version");
        }
        let method = req.method().clone();
        let addr = req.extensions().get::<ClientAddr>().copied();
        match (query.transport, query.sid) {
            (Some("websocket"), sid) if method == Method::GET => self.upgrade(req, sid, addr),
            (Some("polling"), None) if method == Method::GET => self.open_polling(addr),
            (Some("polling"), Some(sid)) if method == Method::GET => self.poll(sid).await,
            (Some("polling"), Some(sid)) if method == Method::POST => {
                self.post(sid, req.into_body()).await
            }
            (Some("polling" | "websocket"), _) => refused(2, "Bad handshake method"),
            _ => refused(0, "Transport unknown"),
        }
    }

    fn open_polling(self: Arc<Self>, addr: Option<ClientAddr>) -> Response {
        let Some(session) = self.register(Transport::Polling, addr) else {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
        };
        let open = self.open_packet(&session, true);
        tokio::spawn(self.heartbeat(session));
        text(open)
    }

    /// A polling `GET`: waits for packets and answers them all at once.
    async fn poll(&self, sid: &str) -> Response {
        let Some(session) = self.session(sid) else {
            return refused(1, "Session ID unknown");
        };
        {
            let mut state = session.lock();
            if state.transport == Transport::Websocket {
                return refused(3, "Bad request");
            }
            if state.polling {
                drop(state);
                session.close("two polls at once");
                return refused(3, "Bad request");
            }
            state.polling = true;
        }
        let _guard = PollGuard(&session);
        loop {
            {
                let mut state = session.lock();
                if let Some(why) = state.closed {
                    // The reference server ends a poll pending at the client's
                    // own close with a `noop`, and at its own with `close`.
                    return text(
                        if why == reason::CLIENT_CLOSE {
                            "6"
                        } else {
                            "1"
                        }
                        .into(),
                    );
                }
                if !state.outbox.is_empty() {
                    state.queued_bytes = 0;
                    let queued = std::mem::take(&mut state.outbox);
                    drop(state);
                    let mut body = String::new();
                    for (i, packet) in queued.iter().enumerate() {
                        if i > 0 {
                            body.push(packet::SEPARATOR);
                        }
                        body.push_str(packet);
                    }
                    return text(body);
                }
                if state.transport != Transport::Polling {
                    // Releases the client's last poll so that it can upgrade.
                    return text("6".into());
                }
            }
            session.wake.notified().await;
        }
    }

    /// A polling `POST`: packets from the client.
    async fn post(self: Arc<Self>, sid: &str, body: Body) -> Response {
        let Some(session) = self.session(sid) else {
            return refused(1, "Session ID unknown");
        };
        {
            let mut state = session.lock();
            if state.transport == Transport::Websocket {
                return refused(3, "Bad request");
            }
            // The spec: a second POST while one is read closes the session.
            if state.posting {
                drop(state);
                session.close("two posts at once");
                return refused(3, "Bad request");
            }
            state.posting = true;
        }
        let _guard = PostGuard(&session);
        let Ok(bytes) = axum::body::to_bytes(body, self.config.max_payload).await else {
            session.close("payload too large");
            return (StatusCode::PAYLOAD_TOO_LARGE, "payload too large").into_response();
        };
        let Ok(payload) = std::str::from_utf8(&bytes) else {
            session.close("payload is not UTF-8");
            return refused(3, "Bad request");
        };
        for packet in payload.split(packet::SEPARATOR) {
            // Binary data (`b` and base64) is read and dropped, as binary
            // frames are over websocket: the protocol has no use for it.
            if packet.starts_with('b') {
                tracing::debug!(sid = %session.eio_sid, len = packet.len(), "binary packet ignored");
                continue;
            }
            match self.on_packet(&session, packet).await {
                Flow::Close => {
                    session.close(reason::CLIENT_CLOSE);
                    break;
                }
                Flow::Malformed => {
                    session.close(reason::MALFORMED);
                    return refused(3, "Bad request");
                }
                Flow::Pong => session.pong.notify_one(),
                Flow::Continue | Flow::Probe | Flow::Upgrade => {}
            }
        }
        text("ok".into())
    }

    /// Pings a polling session until it closes or upgrades, and closes it
    /// at its deadline to connect the namespace.
    async fn heartbeat(self: Arc<Self>, session: Arc<Session<H::Conn>>) {
        let config = self.config.clone();
        let mut next_ping = Instant::now() + config.ping_interval;
        loop {
            tokio::select! {
                () = sleep_until(next_ping) => {}
                () = session.ended.notified() => {}
                () = sleep_until_some(session.connect_by()) => session.enforce_connect_deadline(),
            }
            if self.heartbeat_over(&session).await {
                return;
            }
            if Instant::now() < next_ping {
                continue;
            }
            session.push("2".into());
            tokio::select! {
                () = session.pong.notified() => {}
                () = sleep(config.ping_timeout) => session.close("ping timeout"),
                () = session.ended.notified() => {}
            }
            if self.heartbeat_over(&session).await {
                return;
            }
            next_ping = Instant::now() + config.ping_interval;
        }
    }

    /// Whether the polling heartbeat is done: the session upgraded (the
    /// websocket task owns it now) or closed (then it is finished here).
    async fn heartbeat_over(&self, session: &Arc<Session<H::Conn>>) -> bool {
        let (closed, transport) = {
            let state = session.lock();
            (state.closed.is_some(), state.transport)
        };
        if transport == Transport::Websocket {
            return true;
        }
        if closed {
            self.finish(session).await;
        }
        closed
    }

    fn upgrade(
        self: Arc<Self>,
        mut req: Request,
        sid: Option<&str>,
        addr: Option<ClientAddr>,
    ) -> Response {
        let headers = req.headers();
        let is_websocket = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let version_ok = headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return refused(3, "Bad request");
        };
        if !is_websocket || !version_ok {
            return refused(3, "Bad request");
        }
        let accept = ws::accept_key(key.as_bytes());
        // A second websocket for a session already upgraded (or upgrading):
        // upgraded and closed at once, leaving the session as it is — what
        // the reference server does, so clients see a close, not an error.
        let (probing, second) = match sid {
            None => (None, false),
            Some(sid) => match self.session(sid) {
                Some(session) if session.lock().transport == Transport::Polling => {
                    (Some(session), false)
                }
                Some(_) => (None, true),
                None => return refused(1, "Session ID unknown"),
            },
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        drop(req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) if second => {
                    let mut io = TokioIo::new(upgraded);
                    let _ = self.write_frame(&mut io, 0x8, &[]).await;
                }
                Ok(upgraded) => {
                    self.run_websocket(TokioIo::new(upgraded), probing, addr)
                        .await
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }

    async fn run_websocket<S>(
        self: Arc<Self>,
        mut io: S,
        probing: Option<Arc<Session<H::Conn>>>,
        addr: Option<ClientAddr>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut reader = ws::Reader::new(self.config.max_payload);
        let session = match probing {
            Some(session) => match self.probe(&mut io, &mut reader, &session).await {
                Ok(()) => session,
                Err(e) => {
                    let mut state = session.lock();
                    if state.transport == Transport::Upgrading {
                        state.transport = Transport::Polling;
                    }
                    tracing::debug!(sid = %session.eio_sid, error = %e, "websocket upgrade abandoned");
                    return;
                }
            },
            None => {
                let Some(session) = self.register(Transport::Websocket, addr) else {
                    // 1013: try again later.
                    let _ = self
                        .write_frame(
                            &mut io,
                            0x8,
                            &ws::close_payload(1013, "too many connections"),
                        )
                        .await;
                    return;
                };
                let open = self.open_packet(&session, false);
                if self.write(&mut io, &open).await.is_err() {
                    self.finish(&session).await;
                    return;
                }
                session
            }
        };
        self.drive(&mut io, reader, &session).await;
        self.finish(&session).await;
    }

    /// The upgrade of a polling session: `2probe` → `3probe`, then `5`.
    async fn probe<S>(
        &self,
        io: &mut S,
        reader: &mut ws::Reader,
        session: &Session<H::Conn>,
    ) -> Result<(), SioError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let steps = async {
            loop {
                let text = match reader.next(io).await {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Ping(data)) => {
                        ws::write(io, 0xA, &data).await?;
                        continue;
                    }
                    _ => return Err(SioError::Upgrade("websocket closed during the upgrade")),
                };
                match packet::parse_eio(&text) {
                    Ok(EioIn::Ping("probe")) => {
                        self.write(io, "3probe").await?;
                        let mut state = session.lock();
                        if state.closed.is_some() || state.transport != Transport::Polling {
                            return Err(SioError::Upgrade("session closed or already upgrading"));
                        }
                        state.transport = Transport::Upgrading;
                        drop(state);
                        session.wake.notify_one();
                    }
                    Ok(EioIn::Upgrade) => {
                        let mut state = session.lock();
                        if state.closed.is_some() || state.transport != Transport::Upgrading {
                            return Err(SioError::Upgrade("upgrade without probe"));
                        }
                        state.transport = Transport::Websocket;
                        drop(state);
                        session.ended.notify_one();
                        return Ok(());
                    }
                    Ok(EioIn::Noop) => {}
                    _ => return Err(SioError::Upgrade("unexpected packet during the upgrade")),
                }
            }
        };
        timeout(self.config.ping_timeout, steps)
            .await
            .unwrap_or(Err(SioError::Upgrade("upgrade timed out")))
    }

    /// The websocket loop: writes what is queued, reads packets, pings.
    async fn drive<S>(
        self: &Arc<Self>,
        io: &mut S,
        mut reader: ws::Reader,
        session: &Arc<Session<H::Conn>>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let interval = self.config.ping_interval;
        let mut next_ping = Instant::now() + interval;
        let mut pinged_at: Option<Instant> = None;
        loop {
            let (queued, closed) = session.take();
            for text in queued {
                if self.write(io, &text).await.is_err() {
                    session.close("write failed");
                    return;
                }
            }
            if let Some(why) = closed {
                let payload = ws::close_payload(close_code(why), why);
                let _ = timeout(self.config.ping_timeout, ws::write(io, 0x8, &payload)).await;
                return;
            }
            let connect_by = session.connect_by();
            tokio::select! {
                message = reader.next(io) => match message {
                    Ok(Message::Text(text)) => match self.on_packet(session, &text).await {
                        Flow::Close => session.close(reason::CLIENT_CLOSE),
                        Flow::Malformed => session.close(reason::MALFORMED),
                        Flow::Pong => {
                            if let Some(at) = pinged_at.take() {
                                next_ping = at + interval;
                            }
                        }
                        Flow::Continue | Flow::Probe | Flow::Upgrade => {}
                    },
                    // Attachments of a refused binary event.
                    Ok(Message::Binary(len)) => {
                        tracing::debug!(sid = %session.eio_sid, len, "binary message ignored");
                    }
                    Ok(Message::Ping(data)) => {
                        if self.write_frame(io, 0xA, &data).await.is_err() {
                            session.close("write failed");
                            return;
                        }
                    }
                    Ok(Message::Close) => session.close("transport close"),
                    Err(e) => {
                        tracing::debug!(sid = %session.eio_sid, error = %e, "websocket ended");
                        session.close("transport error");
                        // The peer learns why, unless it is gone.
                        if let Some(code) = e.close_code() {
                            let payload = ws::close_payload(code, &e.to_string());
                            let _ = timeout(self.config.ping_timeout, ws::write(io, 0x8, &payload)).await;
                        }
                        return;
                    }
                },
                () = session.wake.notified() => {}
                () = sleep_until_some(connect_by) => session.enforce_connect_deadline(),
                () = sleep_until(next_ping) => {
                    if pinged_at.is_some() {
                        session.close("ping timeout");
                    } else {
                        session.push("2".into());
                        let now = Instant::now();
                        pinged_at = Some(now);
                        next_ping = now + self.config.ping_timeout;
                    }
                }
            }
        }
    }

    /// Writes a text frame, giving up on a client that does not read.
    async fn write<S: AsyncWrite + Unpin>(&self, io: &mut S, text: &str) -> Result<(), SioError> {
        self.write_frame(io, 0x1, text.as_bytes()).await
    }

    async fn write_frame<S: AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        opcode: u8,
        payload: &[u8],
    ) -> Result<(), SioError> {
        let deadline: Duration = self.config.ping_timeout;
        match timeout(deadline, ws::write(io, opcode, payload)).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(SioError::WriteTimeout),
        }
    }
}
