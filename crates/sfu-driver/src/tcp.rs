//! ICE-TCP (RFC 6544, passive side): one listener, a connection per client
//! transport that cannot use UDP, RFC 4571 frames routed to workers like
//! datagrams.
//!
//! One OS thread (`vtp-sfu-tcp`) runs a current-thread tokio runtime: the
//! accept loop and one task per connection. A connection's task reads
//! frames ([`FrameDecoder`]) and hands each to the worker that owns its
//! transport on the same bounded queue as UDP datagrams (`try_send`: a full
//! queue drops and counts). The worker it goes to is learnt from the
//! connection's STUN Binding requests (the local ufrag in USERNAME, looked
//! up in the directory the workers fill when they create transports); the
//! connection itself is the "source address" UDP routing learns, so no
//! table of addresses is needed. Each frame carries the connection's
//! [`TcpConn`]; the worker keeps it by remote address and writes the
//! engine's transmits for that address on it (framed, into a queue bounded
//! in bytes that the task drains to the socket). Workers never block and
//! take no lock on this path.
//!
//! Limits (see [`TcpLimits`]): connections open at once, in total and per
//! remote IP (beyond: closed at accept); a connection must send a STUN
//! Binding request for a known ufrag within `stun_deadline` and may send
//! nothing else before it; a frame of length zero or above
//! [`framing::MAX_FRAME`] closes it; so does `idle_timeout` without a
//! frame; its outgoing queue holds at most `max_queued_bytes` (more is
//! dropped and counted, like a full UDP socket buffer would). A frame for a
//! worker whose queue is full waits up to about 20 ms (the connection is
//! not read meanwhile: TCP flow control pushes back) before it is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;
use vtp_sfu::engine::parse_stun;

use crate::framing::{self, FrameDecoder};
use crate::worker::{Msg, Shared, WorkerCounters};

/// What one read asks for: a few frames at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How often a frame for a full worker queue is tried again (about a
/// millisecond apart) before it is dropped.
const ROUTE_ATTEMPTS: usize = 20;

/// Limits of the ICE-TCP listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections open at once; more are closed as they are accepted.
    pub max_connections: usize,
    /// Connections open at once from one remote IP. A whole school behind
    /// one NAT address is one IP, with two connections per participant
    /// (send and receive transports), hence the generous default.
    pub max_connections_per_ip: usize,
    /// Framed bytes waiting to be written on one connection; transmits
    /// beyond are dropped and counted (`TcpStats::send_dropped`).
    pub max_queued_bytes: usize,
    /// Time a new connection has to send a STUN Binding request for a
    /// known transport.
    pub stun_deadline: Duration,
    /// A connection that sends no frame for this long is closed (ICE
    /// consent checks come every few seconds).
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 4096,
            max_connections_per_ip: 1024,
            max_queued_bytes: 128 * 1024,
            stun_deadline: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Counts of the ICE-TCP listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpStats {
    /// Connections open now.
    pub connections: u64,
    pub accepted: u64,
    /// Closed at accept: too many connections (in total or from that IP).
    pub rejected_limit: u64,
    /// Closed for sending no STUN Binding request for a known transport in
    /// time.
    pub closed_no_stun: u64,
    /// Closed for a frame of length zero or too long, or something other
    /// than STUN before the first Binding request.
    pub closed_bad_frame: u64,
    /// Closed after `idle_timeout` without a frame.
    pub closed_idle: u64,
    /// Frames read and handed to a worker.
    pub frames_in: u64,
    /// Frames of no known transport (dropped).
    pub frames_unknown: u64,
    /// Frames written.
    pub frames_out: u64,
    /// Transmits dropped: the connection's queue was full or it had closed.
    pub send_dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct TcpCounters {
    connections: AtomicU64,
    accepted: AtomicU64,
    rejected_limit: AtomicU64,
    closed_no_stun: AtomicU64,
    closed_bad_frame: AtomicU64,
    closed_idle: AtomicU64,
    frames_in: AtomicU64,
    frames_unknown: AtomicU64,
    frames_out: AtomicU64,
    pub send_dropped: AtomicU64,
}

impl TcpCounters {
    pub fn stats(&self) -> TcpStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpStats {
            connections: l(&self.connections),
            accepted: l(&self.accepted),
            rejected_limit: l(&self.rejected_limit),
            closed_no_stun: l(&self.closed_no_stun),
            closed_bad_frame: l(&self.closed_bad_frame),
            closed_idle: l(&self.closed_idle),
            frames_in: l(&self.frames_in),
            frames_unknown: l(&self.frames_unknown),
            frames_out: l(&self.frames_out),
            send_dropped: l(&self.send_dropped),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// The sending side of one connection, held by the workers its frames
/// went to (keyed by `remote`).
#[derive(Debug)]
pub(crate) struct TcpConn {
    pub remote: SocketAddr,
    out: UnboundedSender<Vec<u8>>,
    /// Framed bytes in `out` not yet written.
    queued: AtomicUsize,
    max_queued: usize,
    counters: Arc<TcpCounters>,
}

impl TcpConn {
    /// Frames `payload` and queues it for the connection; false (counted)
    /// when the queue is full or the connection is gone. Never blocks.
    pub fn send(&self, payload: &[u8]) -> bool {
        let Some(framed) = framing::encode(payload) else {
            bump(&self.counters.send_dropped);
            return false;
        };
        let len = framed.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_queued || self.out.send(framed).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            bump(&self.counters.send_dropped);
            return false;
        }
        true
    }

    /// The connection's task has ended.
    pub fn is_closed(&self) -> bool {
        self.out.is_closed()
    }
}

/// The listener and what its connections need.
pub(crate) struct TcpServer {
    pub listener: std::net::TcpListener,
    pub limits: TcpLimits,
    pub shared: Arc<Shared>,
    pub workers: Vec<SyncSender<Msg>>,
    pub worker_counters: Vec<Arc<WorkerCounters>>,
    pub counters: Arc<TcpCounters>,
    pub stop: Arc<Notify>,
}

/// What every connection task shares (one thread: the mutex is never
/// contended).
struct Ctx {
    limits: TcpLimits,
    shared: Arc<Shared>,
    workers: Vec<SyncSender<Msg>>,
    worker_counters: Vec<Arc<WorkerCounters>>,
    counters: Arc<TcpCounters>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Releases a connection's place in the limits when its task ends.
struct Slot {
    ctx: Arc<Ctx>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ctx
            .counters
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self.ctx.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Ctx {
    /// A place for a connection from `ip`, or `None` over a limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let open = self.counters.connections.load(Ordering::Relaxed);
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        if open >= self.limits.max_connections as u64
            || from_ip >= self.limits.max_connections_per_ip
        {
            return None;
        }
        per_ip.insert(ip, from_ip + 1);
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            ctx: self.clone(),
            ip,
        })
    }

    /// The worker of a local ufrag.
    fn worker_of(&self, ufrag: &str) -> Option<usize> {
        self.shared.directory().ufrag_worker(ufrag)
    }
}

impl TcpServer {
    /// Serves until `stop` is notified; connections close with the
    /// runtime.
    pub fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "sfu tcp runtime did not start");
                return;
            }
        };
        runtime.block_on(self.serve());
    }

    async fn serve(self) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "sfu tcp listener");
                return;
            }
        };
        let ctx = Arc::new(Ctx {
            limits: self.limits,
            shared: self.shared,
            workers: self.workers,
            worker_counters: self.worker_counters,
            counters: self.counters,
            per_ip: Mutex::new(HashMap::new()),
        });
        loop {
            let accepted = tokio::select! {
                _ = self.stop.notified() => return,
                a = listener.accept() => a,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: pause instead of
                    // spinning.
                    tracing::debug!(error = %e, "sfu tcp accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            bump(&ctx.counters.accepted);
            let Some(slot) = ctx.admit(remote.ip()) else {
                bump(&ctx.counters.rejected_limit);
                tracing::debug!(%remote, "sfu tcp connection over the limits, closed");
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(ctx.clone(), slot, stream, remote));
        }
    }
}

/// Why a connection ended (for the counters and the log).
#[derive(Debug)]
enum End {
    PeerClosed,
    Io,
    NoStun,
    BadFrame,
    Idle,
}

async fn connection(ctx: Arc<Ctx>, slot: Slot, mut stream: TcpStream, remote: SocketAddr) {
    let (tx, mut rx) = unbounded_channel();
    let conn = Arc::new(TcpConn {
        remote,
        out: tx,
        queued: AtomicUsize::new(0),
        max_queued: ctx.limits.max_queued_bytes,
        counters: ctx.counters.clone(),
    });
    let end = serve_connection(&ctx, &conn, &mut stream, &mut rx).await;
    match end {
        End::NoStun => bump(&ctx.counters.closed_no_stun),
        End::BadFrame => bump(&ctx.counters.closed_bad_frame),
        End::Idle => bump(&ctx.counters.closed_idle),
        End::PeerClosed | End::Io => {}
    }
    tracing::debug!(%remote, end = ?end, "sfu tcp connection closed");
    // Closing the receiver tells the workers holding `conn` it is gone.
    rx.close();
    drop(slot);
}

async fn serve_connection(
    ctx: &Ctx,
    conn: &Arc<TcpConn>,
    stream: &mut TcpStream,
    rx: &mut UnboundedReceiver<Vec<u8>>,
) -> End {
    let (mut reader, mut writer) = stream.split();
    let mut decoder = FrameDecoder::new(framing::MAX_FRAME);
    let mut buf = vec![0u8; READ_CHUNK];
    // The worker of this connection's transport, once a Binding request
    // named it.
    let mut worker: Option<usize> = None;
    let mut last_frame = Instant::now();
    let deadline = tokio::time::sleep_until(last_frame + ctx.limits.stun_deadline);
    tokio::pin!(deadline);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return End::PeerClosed,
                    Ok(n) => n,
                    Err(_) => return End::Io,
                };
                decoder.push(&buf[..n]);
                loop {
                    let frame = match decoder.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(_) => return End::BadFrame,
                    };
                    last_frame = Instant::now();
                    let stun = parse_stun(frame);
                    if let Some(s) = stun
                        && s.binding_request
                        && let Some(ufrag) = s.local_ufrag()
                        && let Some(w) = ctx.worker_of(ufrag)
                    {
                        // Follows the transport after an ICE restart or a
                        // ufrag reused on another worker.
                        worker = Some(w);
                    }
                    let Some(w) = worker else {
                        // Before its first valid Binding request a
                        // connection may only send STUN.
                        if stun.is_none() {
                            return End::BadFrame;
                        }
                        bump(&ctx.counters.frames_unknown);
                        continue;
                    };
                    route(ctx, conn, w, frame).await;
                }
            }
            Some(first) = rx.recv() => {
                // Everything queued goes out in one write.
                batch.clear();
                batch.extend_from_slice(&first);
                let mut frames = 1;
                while batch.len() < READ_CHUNK {
                    let Ok(more) = rx.try_recv() else { break };
                    batch.extend_from_slice(&more);
                    frames += 1;
                }
                let written = batch.len();
                let result = writer.write_all(&batch).await;
                conn.queued.fetch_sub(written, Ordering::AcqRel);
                if result.is_err() {
                    return End::Io;
                }
                ctx.counters.frames_out.fetch_add(frames, Ordering::Relaxed);
            }
            () = &mut deadline => {
                if worker.is_none() {
                    return End::NoStun;
                }
                let idle_until = last_frame + ctx.limits.idle_timeout;
                if idle_until <= Instant::now() {
                    return End::Idle;
                }
                // Lazily re-armed: frames only move `last_frame`.
                deadline.as_mut().reset(idle_until);
            }
        }
    }
}

/// Hands one frame to worker `w`. A full queue is waited on briefly
/// (this connection stops reading, so TCP's flow control slows the client
/// down instead of its packets being lost: a TCP reader takes a burst in
/// one read where UDP's would spread over the socket buffer), then the
/// frame is dropped and counted, as for UDP.
async fn route(ctx: &Ctx, conn: &Arc<TcpConn>, w: usize, frame: &[u8]) {
    let mut msg = Msg::TcpFrame {
        conn: conn.clone(),
        bytes: frame.to_vec(),
    };
    for _ in 0..ROUTE_ATTEMPTS {
        match ctx.workers[w].try_send(msg) {
            Ok(()) => {
                bump(&ctx.counters.frames_in);
                return;
            }
            Err(TrySendError::Full(back)) => {
                msg = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
    bump(&ctx.worker_counters[w].dropped_queue_full);
}
