//! One connection: the handshake, and the reader and writer tasks with their shared state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, warn};

use super::packet::{self, EioPacket, OpenPacket, SioPacket};
use super::{
    ClientError, DEFAULT_EVENT_BUFFER_CAPACITY, MAX_INCOMING_MESSAGE, OUTGOING_QUEUE_CAPACITY,
};

/// Eagerly allocated read buffer per connection (tungstenite's default is 128 KiB).
const READ_BUFFER_SIZE: usize = 8 * 1024;
/// Writes are buffered up to this size between flushes.
const WRITE_BUFFER_SIZE: usize = 8 * 1024;

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// State shared by the handles and the two tasks of one connection.
pub(super) struct Shared {
    /// True until the connection ends; watched by the tasks and `wait_disconnected`.
    pub(super) connected: watch::Sender<bool>,
    /// Requests waiting for their ack.
    pub(super) pending: Mutex<Pending>,
    /// Buffered server notifications.
    pub(super) events: Mutex<EventBuffer>,
    /// Wakes `next_event` waiters on every notification and at shutdown.
    pub(super) event_arrived: Notify,
    /// Asks the writer to send a pong (coalesced, never blocks the reader).
    pub(super) pong: Notify,
    /// Per-connection ack id counter.
    pub(super) next_ack_id: AtomicU64,
}

/// Ack waiters by id; `closed` is set (under the same lock) when the connection ends.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) acks: HashMap<u64, oneshot::Sender<Vec<Value>>>,
    pub(super) closed: bool,
}

/// Server notifications `(name, first argument)`, oldest first, bounded by `capacity`.
pub(super) struct EventBuffer {
    pub(super) queue: VecDeque<(String, Value)>,
    pub(super) capacity: usize,
    pub(super) dropped: u64,
}

/// What the handles ask the writer task to do.
pub(super) enum Outgoing {
    /// Send one text frame.
    Text(String),
    /// Close the websocket (close frame) and stop.
    Close,
}

/// What the reader does after a frame.
enum Flow {
    Continue,
    Ping,
    Close(&'static str),
}

/// Locks a mutex, ignoring poisoning (the protected data stays consistent).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `http://host:port[/prefix]` → `ws://host:port[/prefix]/socket.io/?EIO=4&transport=websocket`.
fn websocket_url(base_url: &str) -> Result<String, ClientError> {
    let base = base_url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("http://") {
        rest
    } else if let Some(rest) = base.strip_prefix("ws://") {
        rest
    } else if base.starts_with("https://") || base.starts_with("wss://") {
        return Err(ClientError::Protocol(format!(
            "TLS is not supported: {base_url}"
        )));
    } else {
        return Err(ClientError::Protocol(format!(
            "expected an http:// or ws:// URL: {base_url}"
        )));
    };
    Ok(format!("ws://{rest}/socket.io/?EIO=4&transport=websocket"))
}

/// Creates the shared state and spawns the reader and writer tasks of a connected websocket.
pub(super) fn start(
    ws: Ws,
    heartbeat: Duration,
) -> (
    Arc<Shared>,
    mpsc::Sender<Outgoing>,
    JoinHandle<()>,
    JoinHandle<()>,
) {
    let (sink, stream) = ws.split();
    let (out, out_rx) = mpsc::channel(OUTGOING_QUEUE_CAPACITY);
    let shared = Arc::new(Shared {
        connected: watch::Sender::new(true),
        pending: Mutex::new(Pending::default()),
        events: Mutex::new(EventBuffer {
            queue: VecDeque::new(),
            capacity: DEFAULT_EVENT_BUFFER_CAPACITY,
            dropped: 0,
        }),
        event_arrived: Notify::new(),
        pong: Notify::new(),
        next_ack_id: AtomicU64::new(0),
    });
    let reader = tokio::spawn(run_reader(stream, shared.clone(), heartbeat));
    let writer = tokio::spawn(run_writer(sink, out_rx, shared.clone()));
    (shared, out, reader, writer)
}

/// Opens the websocket and runs the Engine.IO and Socket.IO handshakes.
/// Returns the websocket, the socket id and the heartbeat deadline.
pub(super) async fn handshake(
    base_url: &str,
    auth: Option<&Value>,
) -> Result<(Ws, String, Duration), ClientError> {
    let url = websocket_url(base_url)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_message_size(Some(MAX_INCOMING_MESSAGE))
        .max_frame_size(Some(MAX_INCOMING_MESSAGE));
    let (mut ws, _response) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;

    let frame = next_text(&mut ws).await?;
    let open = match packet::parse_eio(&frame).map_err(ClientError::Protocol)? {
        EioPacket::Open(json) => serde_json::from_str::<OpenPacket>(json)
            .map_err(|e| ClientError::Protocol(format!("bad open packet {frame:?}: {e}")))?,
        _ => {
            return Err(ClientError::Protocol(format!(
                "expected an open packet, got {frame:?}"
            )));
        }
    };
    let heartbeat = Duration::from_millis(open.ping_interval.saturating_add(open.ping_timeout));
    debug!(eio_sid = %open.sid, ?heartbeat, "engine.io open");

    ws.send(Message::text(packet::encode_connect(auth))).await?;
    loop {
        let frame = next_text(&mut ws).await?;
        match packet::parse_eio(&frame).map_err(ClientError::Protocol)? {
            EioPacket::Ping => ws.send(Message::text("3")).await?,
            EioPacket::Close => return Err(ClientError::Disconnected),
            EioPacket::Message(message) => {
                match packet::parse_sio(message).map_err(ClientError::Protocol)? {
                    SioPacket::Connect(payload) => {
                        let Some(sid) = payload.get("sid").and_then(Value::as_str) else {
                            return Err(ClientError::Protocol(format!(
                                "connect without sid: {frame:?}"
                            )));
                        };
                        return Ok((ws, sid.to_owned(), heartbeat));
                    }
                    SioPacket::ConnectError(payload) => {
                        let message = match payload.get("message").and_then(Value::as_str) {
                            Some(message) => message.to_owned(),
                            None => payload.to_string(),
                        };
                        let _ = ws.close(None).await;
                        return Err(ClientError::ConnectRefused(message));
                    }
                    SioPacket::Disconnect => return Err(ClientError::Disconnected),
                    other => debug!(?other, "ignored before the namespace connect"),
                }
            }
            _ => {}
        }
    }
}

/// The next text frame of the handshake; control and binary frames are skipped.
async fn next_text(ws: &mut Ws) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Disconnected),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

impl Shared {
    pub(super) fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Marks the connection closed, fails every pending request and wakes event waiters.
    /// Idempotent.
    pub(super) fn shutdown(&self) {
        self.connected.send_replace(false);
        let acks = {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            std::mem::take(&mut pending.acks)
        };
        // Dropping the senders makes the waiting requests fail with `Disconnected`.
        drop(acks);
        self.event_arrived.notify_waiters();
    }

    /// Removes and returns the oldest buffered notification named `event`.
    pub(super) fn take_event(&self, event: &str) -> Option<Value> {
        let mut events = lock(&self.events);
        let index = events.queue.iter().position(|(name, _)| name == event)?;
        events.queue.remove(index).map(|(_, payload)| payload)
    }

    fn push_event(&self, name: String, payload: Value) {
        {
            let mut events = lock(&self.events);
            if events.queue.len() >= events.capacity {
                events.queue.pop_front();
                events.dropped += 1;
                if events.dropped == 1 || events.dropped.is_power_of_two() {
                    warn!(
                        dropped = events.dropped,
                        "socket.io event buffer full, dropping the oldest"
                    );
                }
            }
            events.queue.push_back((name, payload));
        }
        self.event_arrived.notify_waiters();
    }

    /// Handles one text frame in the reader task.
    fn handle_frame(&self, frame: &str) -> Flow {
        let message = match packet::parse_eio(frame) {
            Ok(EioPacket::Message(message)) => message,
            Ok(EioPacket::Ping) => return Flow::Ping,
            Ok(EioPacket::Close) => return Flow::Close("engine.io close packet"),
            Ok(_) => return Flow::Continue,
            Err(e) => {
                warn!(error = %e, "ignoring a bad engine.io packet");
                return Flow::Continue;
            }
        };
        match packet::parse_sio(message) {
            Ok(SioPacket::Event { id, name, args }) => {
                if id.is_some() {
                    debug!(%name, "server event asks for an ack, which this client does not send");
                }
                self.push_event(name, args.into_iter().next().unwrap_or(Value::Null));
            }
            Ok(SioPacket::Ack { id, args }) => match lock(&self.pending).acks.remove(&id) {
                // The requester may have given up meanwhile; then the send fails harmlessly.
                Some(waiter) => {
                    let _ = waiter.send(args);
                }
                None => debug!(id, "ack for an unknown or expired request"),
            },
            Ok(SioPacket::Disconnect) => return Flow::Close("socket.io disconnect packet"),
            Ok(SioPacket::ConnectError(payload)) => {
                warn!(%payload, "connect error while connected");
                return Flow::Close("socket.io connect error");
            }
            Ok(SioPacket::Binary) => warn!("ignoring a binary socket.io packet (unsupported)"),
            Ok(SioPacket::Connect(_) | SioPacket::OtherNamespace) => {}
            Err(e) => warn!(error = %e, "ignoring a bad socket.io packet"),
        }
        Flow::Continue
    }
}

/// Resolves once the connection is marked closed (the guard is not held across awaits).
async fn closed(connected: &mut watch::Receiver<bool>) {
    let _ = connected.wait_for(|c| !*c).await;
}

/// Reads frames until the connection ends, then shuts the connection down.
async fn run_reader(mut stream: SplitStream<Ws>, shared: Arc<Shared>, heartbeat: Duration) {
    let mut connected = shared.connected.subscribe();
    let deadline = tokio::time::sleep(heartbeat);
    let mut deadline = std::pin::pin!(deadline);
    let reason = loop {
        tokio::select! {
            biased;
            () = closed(&mut connected) => break "closed locally",
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => match shared.handle_frame(text.as_str()) {
                    Flow::Continue => {}
                    Flow::Ping => {
                        shared.pong.notify_one();
                        deadline.as_mut().reset(Instant::now() + heartbeat);
                    }
                    Flow::Close(reason) => break reason,
                },
                Some(Ok(Message::Close(_))) | None => break "websocket closed",
                Some(Ok(Message::Binary(_))) => warn!("ignoring a binary websocket frame"),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "websocket read error");
                    break "websocket error";
                }
            },
            () = &mut deadline => break "heartbeat lost",
        }
    };
    debug!(reason, "socket.io connection ended");
    shared.shutdown();
}

/// Writes queued frames and pongs until closed. When every handle is gone it
/// leaves the namespace (`41`) and closes the websocket.
async fn run_writer(
    mut sink: SplitSink<Ws, Message>,
    mut out: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut connected = shared.connected.subscribe();
    let result: Result<(), tungstenite::Error> = async {
        loop {
            tokio::select! {
                biased;
                () = closed(&mut connected) => return Ok(()),
                () = shared.pong.notified() => sink.send(Message::text("3")).await?,
                next = out.recv() => match next {
                    Some(Outgoing::Text(text)) => {
                        sink.feed(Message::text(text)).await?;
                        if out.is_empty() {
                            sink.flush().await?;
                        }
                    }
                    Some(Outgoing::Close) => return sink.close().await,
                    None => {
                        sink.feed(Message::text("41")).await?;
                        return sink.close().await;
                    }
                },
            }
        }
    }
    .await;
    if let Err(e) = result {
        debug!(error = %e, "websocket write error");
        shared.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let expect = "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket";
        assert_eq!(websocket_url("http://127.0.0.1:8080").unwrap(), expect);
        assert_eq!(websocket_url("http://127.0.0.1:8080/").unwrap(), expect);
        assert_eq!(websocket_url("ws://127.0.0.1:8080").unwrap(), expect);
        assert!(matches!(
            websocket_url("https://x"),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            websocket_url("127.0.0.1:8080"),
            Err(ClientError::Protocol(_))
        ));
    }
}
