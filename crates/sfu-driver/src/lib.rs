//! Runs the VTP media engine ([`vtp_sfu::engine::Engine`]) for real: one UDP
//! socket shared by every transport, a receiving thread that routes
//! datagrams, an ICE-TCP listener (module `tcp`) for clients whose network
//! blocks UDP, worker threads that own engines, timers, and an async
//! control handle for tokio callers.
//!
//! Owns: sockets, threads, clocks, the routing of datagrams to engines and
//! the control surface ([`SfuHandle`]). Must not touch: media logic (that is
//! the engine's), rooms, peers, auth, storage or HTTP (the server's).
//!
//! # Threads
//!
//! * **Workers** (`workers`, default = cores): plain OS threads, each owning
//!   one [`Engine`](vtp_sfu::engine::Engine) with no locks around it. Each
//!   router (room) is pinned to one worker when it opens
//!   (the least loaded: routers + transports, ties to the lowest index), and
//!   all its transports, producers and consumers live on that engine, so
//!   forwarding never crosses threads. A worker waits on its bounded
//!   datagram queue with a timeout equal to the engine's `next_timeout`
//!   (capped at one second), feeds the engine, runs due timers, and drains
//!   `poll_output`: a turn's datagrams go out on the shared socket at its
//!   end, batched with `sendmmsg` and UDP GSO (module `udp_out`,
//!   [`UdpBatching`]), events go to the subscribers of
//!   [`SfuHandle::subscribe_events`].
//!   Control calls arrive as commands on a separate unbounded channel (a
//!   wake-up message on the datagram queue tells the worker to look), so a
//!   full datagram queue never loses a command.
//! * **Receiver** (one thread): reads the socket (`recvmmsg`, up to 32
//!   datagrams a call, module `rxtime`) and routes each datagram to
//!   the worker that owns its transport — STUN by the local ICE ufrag in
//!   USERNAME (registered by the worker when it creates the transport,
//!   before the caller sees the ufrag), everything else by the source
//!   address learnt from that STUN. Unknown datagrams are dropped and
//!   counted; so are datagrams for a worker whose queue is full
//!   ([`DriverConfig::queue_capacity`]), so a flood cannot grow memory.
//! * **ICE-TCP** (one thread, `vtp-sfu-tcp`, a current-thread tokio
//!   runtime): accepts connections on the TCP port (by default the UDP
//!   port's number), reads RFC 4571 frames (module `framing`) and routes
//!   each like a datagram — by the local ufrag of the connection's STUN
//!   Binding requests, the connection standing for the learnt source
//!   address — onto the same bounded worker queues. Workers write the
//!   engine's TCP transmits back on the connection, framed, into a queue
//!   bounded in bytes. Limits: [`TcpLimits`].
//!
//! # Addresses
//!
//! Candidates ([`SfuHandle::candidates`]): for each announced IP
//! ([`DriverConfig::announced_ips`]; by default the bound IP, or with a
//! wildcard bind every announceable address of the host's interfaces) a UDP
//! host candidate on the UDP port and a passive TCP host candidate on the
//! TCP port. The start-up log line lists them.
//!
//! # Control
//!
//! The control surface is [`SfuControl`] (module `control`): the room- and
//! peer-shaped API of docs/protocol.md, "SFU control API", one
//! [`SfuRequest`] per operation answered by one `call`. `SfuHandle`
//! implements it (module `local`): each operation becomes a command run on
//! the owning worker's thread, answered on a oneshot. A directory (behind a
//! mutex, touched only by control calls and close events) maps router,
//! transport, producer and consumer ids to workers and keeps ids unique
//! across workers. Refusals are the engine's [`EngineError`]s turned into
//! [`SfuError`]s (with their protocol codes); ids nobody knows answer
//! `not_found`, and a stopped driver answers `internal`. The server crate
//! serves the same requests as `/sfu/v1` and sends them as an HTTP client
//! to remote SFUs.

pub mod control;
mod demux;
mod directory;
mod framing;
mod interfaces;
mod local;
mod rxtime;
mod stats;
mod tcp;
mod udp_out;
mod worker;

pub use framing::MAX_FRAME;
pub use interfaces::{describe_candidates, host_addresses};
pub use stats::{DriverHealth, DriverStats, WorkerStats};
pub use tcp::{TcpLimits, TcpStats};

pub use control::{
    Consume, CreateTransport, PreferredLayers, Produce, SfuControl, SfuError, SfuErrorCode,
    SfuHealth, SfuRequest, SfuResponse, SfuResult, TAP_CAPACITY, Tap,
};
pub use local::process_cpu_seconds;

use std::net::TcpListener;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{Notify, mpsc as tokio_mpsc, oneshot};
use vtp_sfu::engine::{
    Engine, EngineConfig, EngineError, EngineEvent, IceProtocol, LocalCandidate, MediaTotals,
    TransportFailures,
};
use vtp_sfu::rtp::RtpCapabilities;

use demux::{Demux, DemuxCounters, RouteUpdate};
use tcp::{TcpCounters, TcpServer};
use worker::{Command, IdKind, Msg, Shared, Worker, WorkerCounters};

/// Default size of each worker's datagram queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

/// How the driver is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// The UDP address of the one socket (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The addresses put in ICE candidates, first preferred (each gets a
    /// UDP and a TCP candidate). Needed behind NAT. Empty: the bound IP,
    /// or with an unspecified bind (`0.0.0.0`, `[::]`) the host's
    /// interface addresses (not loopback or link-local; IPv6 ones only
    /// with `[::]`).
    pub announced_ips: Vec<IpAddr>,
    /// Where the ICE-TCP listener is.
    pub tcp: TcpBind,
    /// How long a transport has from `connect` to be connected before it is
    /// reported failed (`ice_timeout`/`dtls_timeout`, see the engine).
    pub connect_deadline: std::time::Duration,
    pub tcp_limits: TcpLimits,
    /// Worker threads (at least one).
    pub workers: usize,
    /// Datagrams queued per worker before more are dropped.
    pub queue_capacity: usize,
    /// Where each receive transport's bandwidth estimate starts, in bits
    /// per second; `None` turns bandwidth estimation, pacing and the
    /// bandwidth limit on layers off (see the engine's module doc).
    pub initial_bandwidth_estimate_bps: Option<u64>,
    /// How workers hand UDP datagrams to the kernel.
    pub udp_batching: UdpBatching,
}

/// How workers send UDP datagrams (module `udp_out`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UdpBatching {
    /// One `send_to` per datagram: the portable path.
    Off,
    /// `sendmmsg`, up to 64 datagrams per call (Linux; elsewhere `Off`).
    Sendmmsg,
    /// `sendmmsg`, and UDP GSO for several same-sized datagrams of a turn
    /// to one destination where the kernel supports it.
    #[default]
    SendmmsgAndGso,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 40000)),
            announced_ips: Vec::new(),
            tcp: TcpBind::SameAsUdp,
            connect_deadline: vtp_sfu::engine::CONNECT_DEADLINE,
            tcp_limits: TcpLimits::default(),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            initial_bandwidth_estimate_bps: Some(vtp_sfu::engine::INITIAL_BANDWIDTH_ESTIMATE_BPS),
            udp_batching: UdpBatching::default(),
        }
    }
}

/// Where the ICE-TCP listener binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpBind {
    /// No ICE-TCP: UDP candidates only.
    Off,
    /// The UDP bind's IP and port number (with UDP port 0, any free TCP
    /// port: the two need not match, candidates carry each).
    SameAsUdp,
    Addr(SocketAddr),
}

/// Why the driver did not start.
#[derive(Debug, Error)]
pub enum DriverError {
    #[error("sfu socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid sfu configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// An engine event, tagged with the router (room) it happened in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverEvent {
    pub router_id: String,
    pub event: EngineEvent,
}

/// Starts drivers.
pub struct SfuDriver;

impl SfuDriver {
    /// Binds the socket and starts the receiver and the workers.
    pub fn start(config: DriverConfig) -> Result<SfuHandle, DriverError> {
        if config.workers == 0 {
            return Err(DriverError::Config("workers must be at least 1".into()));
        }
        if config.queue_capacity == 0 {
            return Err(DriverError::Config(
                "queue_capacity must be at least 1".into(),
            ));
        }
        let socket = UdpSocket::bind(config.bind)?;
        let bound_addr = socket.local_addr()?;
        let ips = interfaces::announced_ips(&config, bound_addr)?;
        let local_addr = SocketAddr::new(ips[0], bound_addr.port());
        let listener = match config.tcp {
            TcpBind::Off => None,
            TcpBind::SameAsUdp => {
                let port = if config.bind.port() == 0 {
                    0
                } else {
                    bound_addr.port()
                };
                Some(TcpListener::bind(SocketAddr::new(bound_addr.ip(), port))?)
            }
            TcpBind::Addr(addr) => Some(TcpListener::bind(addr)?),
        };
        let tcp_addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
        if let Some(l) = &listener {
            l.set_nonblocking(true)?;
        }
        socket.set_read_timeout(Some(demux::READ_TIMEOUT))?;
        let socket = Arc::new(socket);
        let mut engine_config = EngineConfig::new(local_addr);
        engine_config.additional_ips = ips[1..].to_vec();
        engine_config.tcp_port = tcp_addr.map(|a| a.port());
        engine_config.connect_deadline = config.connect_deadline;
        engine_config.initial_bandwidth_estimate_bps = config.initial_bandwidth_estimate_bps;
        let candidates = engine_config.candidates();
        let engines = (0..config.workers)
            .map(|_| {
                let mut c = engine_config.clone();
                // Each engine its own random seed, as `new` draws.
                c.seed = EngineConfig::new(local_addr).seed;
                Engine::new(c)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let shared = Arc::new(Shared::default());
        let (route_tx, route_rx) = mpsc::channel::<RouteUpdate>();
        let mut inner = Inner {
            links: Vec::new(),
            shared: shared.clone(),
            demux: Arc::new(DemuxCounters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            stopped: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            next_router_worker: AtomicUsize::new(0),
            local_addr,
            bound_addr,
            tcp_addr,
            candidates,
            tcp_stop: Arc::new(Notify::new()),
            tcp_counters: Arc::new(TcpCounters::default()),
            cpu_sample: Mutex::new(None),
        };
        let mut queues = Vec::new();
        for (index, engine) in engines.into_iter().enumerate() {
            let (queue_tx, queue_rx) = mpsc::sync_channel(config.queue_capacity);
            let (command_tx, command_rx) = mpsc::channel::<Command>();
            let counters = Arc::new(WorkerCounters::default());
            let worker = Worker::new(
                index,
                engine,
                (socket.clone(), config.udp_batching),
                shared.clone(),
                counters.clone(),
                route_tx.clone(),
            );
            // On failure `inner` is dropped, which stops what started.
            let thread = std::thread::Builder::new()
                .name(format!("vtp-sfu-worker-{index}"))
                .spawn(move || worker.run(queue_rx, command_rx))?;
            inner.push_thread(thread);
            queues.push(queue_tx.clone());
            inner.links.push(WorkerLink {
                queue: queue_tx,
                commands: command_tx,
                counters,
            });
        }
        drop(route_tx);
        if let Some(listener) = listener {
            let server = TcpServer {
                listener,
                limits: config.tcp_limits.clone(),
                shared: shared.clone(),
                workers: queues.clone(),
                worker_counters: inner.links.iter().map(|l| l.counters.clone()).collect(),
                counters: inner.tcp_counters.clone(),
                stop: inner.tcp_stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name("vtp-sfu-tcp".into())
                .spawn(move || server.run())?;
            inner.push_thread(thread);
        }
        let demux = Demux {
            socket,
            stop: inner.stop.clone(),
            workers: queues,
            worker_counters: inner.links.iter().map(|l| l.counters.clone()).collect(),
            routes: route_rx,
            counters: inner.demux.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("vtp-sfu-recv".into())
            .spawn(move || demux.run())?;
        inner.push_thread(thread);
        tracing::info!(
            udp = %bound_addr,
            tcp = %tcp_addr.map_or("off".to_owned(), |a| a.to_string()),
            announced = %describe_candidates(&inner.candidates),
            workers = config.workers,
            "sfu driver started"
        );
        Ok(SfuHandle {
            inner: Arc::new(inner),
        })
    }
}

struct WorkerLink {
    queue: SyncSender<Msg>,
    commands: Sender<Command>,
    counters: Arc<WorkerCounters>,
}

struct Inner {
    links: Vec<WorkerLink>,
    shared: Arc<Shared>,
    demux: Arc<DemuxCounters>,
    /// Tells the receiver to end.
    stop: Arc<AtomicBool>,
    /// `shutdown` has begun.
    stopped: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_router_worker: AtomicUsize,
    local_addr: SocketAddr,
    bound_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    candidates: Vec<LocalCandidate>,
    /// Ends the ICE-TCP thread.
    tcp_stop: Arc<Notify>,
    tcp_counters: Arc<TcpCounters>,
    /// The last CPU reading of the control API's health (when, CPU seconds).
    cpu_sample: Mutex<Option<(std::time::Instant, f64)>>,
}

impl Inner {
    fn push_thread(&self, thread: JoinHandle<()>) {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread);
    }

    /// Stops and joins every thread; the socket closes with the last of
    /// them. Idempotent.
    fn stop_blocking(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stop.store(true, Ordering::Release);
        // Kept as a permit if the thread is not waiting right now.
        self.tcp_stop.notify_one();
        for link in &self.links {
            let stop: Command = Box::new(Worker::request_stop);
            let _ = link.commands.send(stop);
            // Blocks at most until the worker takes one datagram; fails at
            // once if the worker is gone.
            let _ = link.queue.send(Msg::Wake);
        }
        // Wake the receiver from `recv_from` (its read timeout is the
        // backstop if this datagram is lost).
        let target = match self.bound_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.bound_addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), self.bound_addr.port())
            }
            _ => self.bound_addr,
        };
        let any: SocketAddr = match target {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        if let Ok(waker) = UdpSocket::bind(any) {
            let _ = waker.send_to(&[0], target);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("an sfu driver thread panicked");
            }
        }
        // Ends every event stream.
        self.shared.subscribers().clear();
        tracing::info!(local_addr = %self.local_addr, "sfu driver stopped");
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_blocking();
    }
}

fn stopped_error() -> EngineError {
    EngineError::Internal("the sfu driver is shut down".into())
}

/// The control handle of a running driver. Cheap to clone; dropping the
/// last clone shuts the driver down (blocking briefly while threads join).
#[derive(Clone)]
pub struct SfuHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SfuHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuHandle")
            .field("local_addr", &self.inner.local_addr)
            .field("workers", &self.inner.links.len())
            .finish()
    }
}

impl SfuHandle {
    /// The address announced in ICE candidates.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address the socket is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.inner.bound_addr
    }

    /// The address the ICE-TCP listener is bound to (`None`: off).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.tcp_addr
    }

    /// Every ICE candidate each transport announces.
    pub fn candidates(&self) -> &[LocalCandidate] {
        &self.inner.candidates
    }

    /// Whether every announced address is a loopback one (only this host
    /// can reach the media).
    pub fn announces_only_loopback(&self) -> bool {
        self.inner
            .candidates
            .iter()
            .all(|c| c.addr.ip().is_loopback())
    }

    /// The announced TCP candidates' port, when ICE-TCP is on.
    pub fn tcp_port(&self) -> Option<u16> {
        self.inner
            .candidates
            .iter()
            .find(|c| c.protocol == IceProtocol::Tcp)
            .map(|c| c.addr.port())
    }

    /// How many worker threads run.
    pub fn workers(&self) -> usize {
        self.inner.links.len()
    }

    /// The worker a router is pinned to.
    pub fn router_worker(&self, router_id: &str) -> Option<usize> {
        self.inner
            .shared
            .directory()
            .lookup(IdKind::Router, router_id)
    }

    /// Engine events from now on, tagged with their router. Every
    /// subscriber gets every event; the stream ends at shutdown.
    pub fn subscribe_events(&self) -> tokio_mpsc::UnboundedReceiver<DriverEvent> {
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        if !self.inner.stopped.load(Ordering::Acquire) {
            self.inner.shared.subscribers().push(tx);
        }
        rx
    }

    /// Counts of objects and datagrams.
    pub fn stats(&self) -> DriverStats {
        let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let load64 = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let per_worker: Vec<WorkerStats> = self
            .inner
            .links
            .iter()
            .map(|l| {
                let c = &l.counters;
                WorkerStats {
                    routers: load(&c.routers),
                    transports: load(&c.transports),
                    producers: load(&c.producers),
                    consumers: load(&c.consumers),
                    datagrams_in: load64(&c.datagrams_in),
                    datagrams_out: load64(&c.datagrams_out),
                    dropped_queue_full: load64(&c.dropped_queue_full),
                    tap_drops: load64(&c.tap_drops),
                    busy_nanos: load64(&c.busy_nanos),
                    connected_transports: load(&c.connected_transports),
                    video_producers: load(&c.video_producers),
                    video_consumers: load(&c.video_consumers),
                    udp_send_calls: load64(&c.udp_send_calls),
                    udp_segmented: load64(&c.udp_segmented),
                }
            })
            .collect();
        let d = &self.inner.demux;
        let dropped_unknown = load64(&d.dropped_unknown);
        let dropped_queue_full = per_worker.iter().map(|w| w.dropped_queue_full).sum();
        DriverStats {
            workers: per_worker.len(),
            routers: per_worker.iter().map(|w| w.routers).sum(),
            transports: per_worker.iter().map(|w| w.transports).sum(),
            producers: per_worker.iter().map(|w| w.producers).sum(),
            consumers: per_worker.iter().map(|w| w.consumers).sum(),
            datagrams_in: load64(&d.received),
            datagrams_out: per_worker.iter().map(|w| w.datagrams_out).sum(),
            datagrams_dropped: dropped_unknown + dropped_queue_full,
            dropped_unknown,
            dropped_queue_full,
            send_errors: self
                .inner
                .links
                .iter()
                .map(|l| load64(&l.counters.send_errors))
                .sum(),
            recv_errors: load64(&d.recv_errors),
            per_worker,
            tcp: self.inner.tcp_counters.stats(),
            transport_failures: self.inner.links.iter().fold(
                TransportFailures::default(),
                |mut sum, l| {
                    sum.add(&l.counters.transport_failures());
                    sum
                },
            ),
            media: Box::new(
                self.inner
                    .links
                    .iter()
                    .fold(MediaTotals::default(), |mut sum, l| {
                        sum.add(&l.counters.media_totals());
                        sum
                    }),
            ),
        }
    }

    /// Liveness plus [`SfuHandle::stats`].
    pub fn health(&self) -> DriverHealth {
        let alive = self
            .inner
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .all(|t| !t.is_finished());
        DriverHealth {
            running: alive && !self.inner.stopped.load(Ordering::Acquire),
            local_addr: self.inner.local_addr,
            stats: self.stats(),
        }
    }

    /// Stops the threads and closes the socket; every later call answers
    /// `internal`. Idempotent.
    pub async fn shutdown(&self) {
        let inner = self.inner.clone();
        if tokio::task::spawn_blocking(move || inner.stop_blocking())
            .await
            .is_err()
        {
            tracing::error!("sfu driver shutdown task failed");
        }
    }

    // ------------------------------------------------------------------
    // Plumbing of the control API (module `local`)

    /// A router pinned to the least loaded worker.
    pub(crate) async fn create_router(
        &self,
        router_id: &str,
    ) -> Result<RtpCapabilities, EngineError> {
        let worker = {
            let mut dir = self.inner.shared.directory();
            let load = dir.load(self.inner.links.len());
            let start = self
                .inner
                .next_router_worker
                .fetch_add(1, Ordering::Relaxed);
            let n = load.len();
            // Least loaded; ties go round-robin from `start`.
            let worker = (0..n)
                .map(|k| (start + k) % n)
                .min_by_key(|&w| load[w])
                .unwrap_or(0);
            dir.reserve(IdKind::Router, router_id, worker)?;
            worker
        };
        let id = router_id.to_owned();
        let result = self
            .run_on_worker(worker, move |w| w.create_router(&id))
            .await;
        if result.is_err() {
            // The worker released it already unless it never ran.
            let mut dir = self.inner.shared.directory();
            if dir.lookup(IdKind::Router, router_id) == Some(worker)
                && self.inner.stopped.load(Ordering::Acquire)
            {
                dir.release(IdKind::Router, router_id);
            }
        }
        result
    }

    pub(crate) fn worker_of(&self, kind: IdKind, id: &str) -> Result<usize, EngineError> {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(stopped_error());
        }
        self.inner
            .shared
            .directory()
            .lookup(kind, id)
            .ok_or_else(|| kind.not_found(id))
    }

    /// Runs `f` on worker `worker`'s thread, with the engine's outputs
    /// handled before the answer comes back.
    pub(crate) async fn run_on_worker<T, F>(&self, worker: usize, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker) -> Result<T, EngineError> + Send + 'static,
    {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(stopped_error());
        }
        let link = self.inner.links.get(worker).ok_or_else(stopped_error)?;
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |w: &mut Worker| {
            let result = f(w);
            w.flush();
            let _ = tx.send(result);
        });
        link.commands.send(command).map_err(|_| stopped_error())?;
        // If the queue is full the worker is busy and sees the command on
        // its next turn anyway.
        let _ = link.queue.try_send(Msg::Wake);
        rx.await.map_err(|_| stopped_error())?
    }
}
