//! One worker: an OS thread that owns one [`Engine`] (the routers pinned to
//! it and everything in them) and runs it. No locks on the datagram path:
//! datagrams (and ICE-TCP frames, each with its connection) arrive on a
//! bounded channel, commands on an unbounded one, and the only shared state
//! touched is the id directory, on control calls and close events. The
//! engine's transmits go out on the UDP socket, or framed on the TCP
//! connection they are addressed to (kept by remote address from the
//! frames that came in on it).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use vtp_sfu::engine::{
    Engine, EngineError, EngineEvent, EngineOutput, FailureReason, IceParameters, IceProtocol,
    MediaTotals, TapInfo, TapPacket, TransportFailures, TransportInfo, TransportOptions,
};
use vtp_sfu::rtp::RtpCapabilities;

use crate::demux::RouteUpdate;
use crate::tcp::TcpConn;
use crate::udp_out::{self, SendReport, UdpOut};
use crate::{DriverEvent, UdpBatching};

/// How often closed TCP connections are forgotten.
const TCP_SWEEP: Duration = Duration::from_secs(1);

/// The longest a worker sleeps without looking at its engine, even when the
/// engine asks for no timeout (cheap insurance; not a busy loop).
const MAX_IDLE: Duration = Duration::from_secs(1);

/// At most this many datagrams are fed to the engine between two looks at
/// its timers and commands.
const BATCH: usize = 64;

/// How often a transport is re-created when its random ICE ufrag collides
/// with one on another worker (the routing thread needs them unique).
const UFRAG_ATTEMPTS: usize = 4;

/// What arrives on a worker's bounded queue.
#[derive(Debug)]
pub(crate) enum Msg {
    Datagram {
        source: SocketAddr,
        bytes: Vec<u8>,
        /// When it reached the host (see `rxtime`): what the engine is told,
        /// so a busy worker does not bunch up the arrival times publishers'
        /// congestion control reads.
        arrived: Instant,
    },
    /// One RFC 4571 frame's payload from an ICE-TCP connection.
    TcpFrame { conn: Arc<TcpConn>, bytes: Vec<u8> },
    /// A command is waiting on the command channel.
    Wake,
}

/// A control call, run on the worker's thread.
pub(crate) type Command = Box<dyn FnOnce(&mut Worker) + Send>;

/// Counters of one worker (written by it and, for queue drops, by the
/// routing thread; read by `stats()`).
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub routers: AtomicUsize,
    pub transports: AtomicUsize,
    pub producers: AtomicUsize,
    pub consumers: AtomicUsize,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub send_errors: AtomicU64,
    /// System calls that sent UDP datagrams (`datagrams_out` over this is
    /// the batching factor).
    pub udp_send_calls: AtomicU64,
    /// UDP datagrams that went out in GSO sends.
    pub udp_segmented: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    /// Tapped packets dropped because the tap's reader was behind.
    pub tap_drops: AtomicU64,
    /// The engine's transport failures, in `FailureReason::ALL` order.
    pub failures: [AtomicU64; FailureReason::ALL.len()],
    /// The engine's media counters, in `MediaTotals::to_array` order.
    pub media: [AtomicU64; MediaTotals::LEN],
    /// Nanoseconds the worker spent working (not waiting for a datagram or
    /// a timer): its load is the rate of this.
    pub busy_nanos: AtomicU64,
    /// Transports whose ICE and DTLS are up.
    pub connected_transports: AtomicUsize,
    /// Video producers and consumers (the rest are audio).
    pub video_producers: AtomicUsize,
    pub video_consumers: AtomicUsize,
}

impl WorkerCounters {
    pub fn transport_failures(&self) -> TransportFailures {
        let n = |reason: FailureReason| {
            FailureReason::ALL
                .iter()
                .position(|r| *r == reason)
                .map_or(0, |i| self.failures[i].load(Ordering::Relaxed))
        };
        TransportFailures {
            ice_timeout: n(FailureReason::IceTimeout),
            dtls_timeout: n(FailureReason::DtlsTimeout),
            ice_failed: n(FailureReason::IceFailed),
            dtls_failed: n(FailureReason::DtlsFailed),
            disconnected: n(FailureReason::Disconnected),
        }
    }

    pub fn media_totals(&self) -> MediaTotals {
        MediaTotals::from_array(std::array::from_fn(|i| {
            self.media[i].load(Ordering::Relaxed)
        }))
    }
}

pub(crate) use crate::directory::{IdKind, Shared};

/// A worker's engine and its bookkeeping: which router each of its
/// objects belongs to (to tag events) and each transport's ufrag.
pub(crate) struct Worker {
    index: usize,
    engine: Engine,
    socket: Arc<UdpSocket>,
    /// The engine's UDP datagrams of this turn, sent at its end.
    udp: UdpOut,
    batching: UdpBatching,
    shared: Arc<Shared>,
    counters: Arc<WorkerCounters>,
    routes: Sender<RouteUpdate>,
    stop: bool,
    routers: HashSet<String>,
    /// Transport → (router, local ICE ufrag).
    transports: HashMap<String, (String, String)>,
    /// Producer → router.
    producers: HashMap<String, String>,
    /// Consumer → router.
    consumers: HashMap<String, String>,
    /// Tap → where its packets go.
    taps: HashMap<String, WorkerTap>,
    /// ICE-TCP connections that brought frames here, by remote address.
    tcp: HashMap<SocketAddr, Arc<TcpConn>>,
    next_tcp_sweep: Instant,
    /// The engine's failure counts last copied to `counters`.
    failures_seen: TransportFailures,
    /// The engine's media counters last copied to `counters`.
    media_seen: MediaTotals,
    /// Transports connected, and video producers and consumers (for the
    /// operators' counts by state and kind).
    connected: HashSet<String>,
    video_producers: HashSet<String>,
    video_consumers: HashSet<String>,
}

/// The receiving end of a tap, on the worker.
struct WorkerTap {
    router: String,
    sender: SyncSender<TapPacket>,
}

impl Worker {
    pub fn new(
        index: usize,
        engine: Engine,
        (socket, batching): (Arc<UdpSocket>, UdpBatching),
        shared: Arc<Shared>,
        counters: Arc<WorkerCounters>,
        routes: Sender<RouteUpdate>,
    ) -> Worker {
        let gso = batching == UdpBatching::SendmmsgAndGso && udp_out::gso_supported(&socket);
        Worker {
            index,
            engine,
            udp: UdpOut::new(gso),
            batching,
            socket,
            shared,
            counters,
            routes,
            stop: false,
            routers: HashSet::new(),
            transports: HashMap::new(),
            producers: HashMap::new(),
            consumers: HashMap::new(),
            taps: HashMap::new(),
            tcp: HashMap::new(),
            next_tcp_sweep: Instant::now() + TCP_SWEEP,
            failures_seen: TransportFailures::default(),
            media_seen: MediaTotals::default(),
            connected: HashSet::new(),
            video_producers: HashSet::new(),
            video_consumers: HashSet::new(),
        }
    }

    /// The worker's loop: commands first, then one datagram or the engine's
    /// timeout, then the engine's outputs. Ends on a stop command or when
    /// every sender is gone.
    pub fn run(mut self, queue: Receiver<Msg>, commands: Receiver<Command>) {
        loop {
            // Two clock reads a turn (not per datagram) measure the load.
            let turn = Instant::now();
            loop {
                match commands.try_recv() {
                    Ok(command) => self.run_command(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if self.stop {
                return;
            }
            // `next_timeout` walks the engine's transports, so it is asked
            // once per turn; a turn takes up to `BATCH` datagrams.
            let deadline = self.engine.next_timeout();
            let now = Instant::now();
            let mut busy = now.saturating_duration_since(turn);
            let wait = deadline
                .map_or(MAX_IDLE, |at| at.saturating_duration_since(now))
                .min(MAX_IDLE);
            let received = queue.recv_timeout(wait);
            let woke = Instant::now();
            match received {
                Ok(msg) => {
                    self.take(msg);
                    for msg in queue.try_iter().take(BATCH - 1) {
                        self.take(msg);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Checked on every turn: under a flood `recv_timeout` never
            // times out, and timers must still run. A deadline the turn's
            // datagrams brought forward is seen by the next turn (which
            // then waits zero).
            let now = Instant::now();
            if deadline.is_some_and(|at| at <= now) {
                self.engine.handle_timeout(now);
            }
            self.flush();
            if now >= self.next_tcp_sweep {
                self.tcp.retain(|_, c| !c.is_closed());
                self.next_tcp_sweep = now + TCP_SWEEP;
            }
            busy += woke.elapsed();
            let nanos = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
            self.counters.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Datagram {
                source,
                bytes,
                arrived,
            } => {
                self.counters.datagrams_in.fetch_add(1, Ordering::Relaxed);
                self.engine.handle_receive_arrived(
                    Instant::now(),
                    arrived,
                    IceProtocol::Udp,
                    source,
                    &bytes,
                );
            }
            Msg::TcpFrame { conn, bytes } => {
                self.counters.datagrams_in.fetch_add(1, Ordering::Relaxed);
                let remote = conn.remote;
                match self.tcp.get(&remote) {
                    Some(known) if Arc::ptr_eq(known, &conn) => {}
                    // New, or a new connection from an address a closed
                    // one had.
                    _ => {
                        self.tcp.insert(remote, conn);
                    }
                }
                self.engine
                    .handle_receive(Instant::now(), IceProtocol::Tcp, remote, &bytes);
            }
            Msg::Wake => {}
        }
    }

    fn run_command(&mut self, command: Command) {
        command(self);
        self.flush();
    }

    /// Makes the loop end after this command.
    pub fn request_stop(&mut self) {
        self.stop = true;
    }

    /// Sends the engine's datagrams and hands on its events.
    pub fn flush(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                EngineOutput::Transmit {
                    protocol: IceProtocol::Udp,
                    destination,
                    bytes,
                } => {
                    self.udp.push(destination, bytes);
                    if self.udp.len() >= udp_out::QUEUE_LIMIT {
                        self.send_udp();
                    }
                }
                EngineOutput::Transmit {
                    protocol: IceProtocol::Tcp,
                    destination,
                    bytes,
                } => {
                    // A full or closed connection counts its own drops.
                    let sent = match self.tcp.get(&destination) {
                        Some(conn) => conn.send(&bytes),
                        None => {
                            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    };
                    if sent {
                        self.counters.datagrams_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
                EngineOutput::Event(event) => self.on_event(event),
                EngineOutput::Tapped { tap_id, packet } => {
                    if let Some(tap) = self.taps.get(&tap_id)
                        && tap.sender.try_send(packet).is_err()
                    {
                        // A recorder that cannot keep up loses packets,
                        // never the forwarding path its time.
                        self.counters.tap_drops.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.send_udp();
        let c = &self.counters;
        c.routers.store(self.routers.len(), Ordering::Relaxed);
        c.transports.store(self.transports.len(), Ordering::Relaxed);
        c.producers.store(self.producers.len(), Ordering::Relaxed);
        c.consumers.store(self.consumers.len(), Ordering::Relaxed);
        c.connected_transports
            .store(self.connected.len(), Ordering::Relaxed);
        c.video_producers
            .store(self.video_producers.len(), Ordering::Relaxed);
        c.video_consumers
            .store(self.video_consumers.len(), Ordering::Relaxed);
        let failures = self.engine.transport_failures();
        if failures != self.failures_seen {
            for (reason, n) in FailureReason::ALL.iter().zip(&c.failures) {
                n.store(failures.get(*reason), Ordering::Relaxed);
            }
            self.failures_seen = failures;
        }
        let media = self.engine.media_totals();
        if media != self.media_seen {
            for (value, n) in media.to_array().iter().zip(&c.media) {
                n.store(*value, Ordering::Relaxed);
            }
            self.media_seen = media;
        }
    }

    /// Sends the queued UDP datagrams: batched (see `udp_out`) or one
    /// `send_to` each.
    fn send_udp(&mut self) {
        if self.udp.len() == 0 {
            return;
        }
        let report = match self.batching {
            #[cfg(target_os = "linux")]
            UdpBatching::Sendmmsg | UdpBatching::SendmmsgAndGso => {
                self.udp.flush(&mut udp_out::BatchCalls(&self.socket))
            }
            _ => self.udp.flush(&mut udp_out::SingleCalls(&self.socket)),
        };
        let SendReport {
            sent,
            failed,
            calls,
            segmented,
        } = report;
        let c = &self.counters;
        c.datagrams_out.fetch_add(sent, Ordering::Relaxed);
        c.send_errors.fetch_add(failed, Ordering::Relaxed);
        c.udp_send_calls.fetch_add(calls, Ordering::Relaxed);
        c.udp_segmented.fetch_add(segmented, Ordering::Relaxed);
    }

    fn on_event(&mut self, event: EngineEvent) {
        let router = match &event {
            EngineEvent::TransportConnected { transport_id }
            | EngineEvent::TransportClosed { transport_id, .. } => {
                self.transports.get(transport_id).map(|t| t.0.clone())
            }
            EngineEvent::ProducerClosed { producer_id, .. }
            | EngineEvent::KeyframeRequested { producer_id, .. }
            | EngineEvent::ProducerLayersNeeded { producer_id, .. }
            | EngineEvent::ActiveSpeaker { producer_id, .. } => {
                self.producers.get(producer_id).cloned()
            }
            EngineEvent::ConsumerClosed { consumer_id, .. }
            | EngineEvent::ConsumerPaused { consumer_id }
            | EngineEvent::ConsumerResumed { consumer_id }
            | EngineEvent::ConsumerLayersChanged { consumer_id, .. } => {
                self.consumers.get(consumer_id).cloned()
            }
            // Dropping the sender ends the recorder's stream.
            EngineEvent::TapClosed { tap_id, .. } => self.taps.remove(tap_id).map(|t| t.router),
        };
        match &event {
            EngineEvent::TransportConnected { transport_id }
                if self.transports.contains_key(transport_id) =>
            {
                self.connected.insert(transport_id.clone());
            }
            EngineEvent::TransportClosed { transport_id, .. } => {
                self.forget_transport(transport_id)
            }
            EngineEvent::ProducerClosed { producer_id, .. } => {
                self.forget(IdKind::Producer, producer_id)
            }
            EngineEvent::ConsumerClosed { consumer_id, .. } => {
                self.forget(IdKind::Consumer, consumer_id)
            }
            _ => {}
        }
        let event = DriverEvent {
            router_id: router.unwrap_or_default(),
            event,
        };
        self.shared
            .subscribers()
            .retain(|s| s.send(event.clone()).is_ok());
    }

    fn forget_transport(&mut self, transport_id: &str) {
        self.connected.remove(transport_id);
        if let Some((_, ufrag)) = self.transports.remove(transport_id) {
            let mut dir = self.shared.directory();
            dir.release(IdKind::Transport, transport_id);
            dir.release_ufrag(&ufrag);
            drop(dir);
            let _ = self.routes.send(RouteUpdate::Remove { ufrag });
        }
    }

    fn forget(&mut self, kind: IdKind, id: &str) {
        let removed = match kind {
            IdKind::Producer => {
                self.video_producers.remove(id);
                self.producers.remove(id).is_some()
            }
            IdKind::Consumer => {
                self.video_consumers.remove(id);
                self.consumers.remove(id).is_some()
            }
            IdKind::Router => self.routers.remove(id),
            IdKind::Transport => {
                self.forget_transport(id);
                return;
            }
        };
        if removed {
            self.shared.directory().release(kind, id);
        }
    }

    /// Claims an id in the directory for this worker.
    fn reserve(&self, kind: IdKind, id: &str) -> Result<(), EngineError> {
        self.shared.directory().reserve(kind, id, self.index)
    }

    // ------------------------------------------------------------------
    // Control calls (run on this thread by the handle's commands)

    /// The engine, for calls that create and close nothing. Calls that do
    /// go through this worker's methods below, which keep the directory
    /// and the routing thread in step.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The router id is already reserved for this worker by the handle.
    pub fn create_router(&mut self, router_id: &str) -> Result<RtpCapabilities, EngineError> {
        match self.engine.create_router(router_id) {
            Ok(caps) => {
                let caps = caps.clone();
                self.routers.insert(router_id.to_owned());
                Ok(caps)
            }
            Err(e) => {
                self.shared.directory().release(IdKind::Router, router_id);
                Err(e)
            }
        }
    }

    pub fn close_router(&mut self, router_id: &str) -> Result<(), EngineError> {
        self.engine.close_router(router_id)?;
        // The close events (handled here) forget what the router held;
        // anything left over is forgotten after them.
        self.flush();
        let stale = |m: &HashMap<String, String>| -> Vec<String> {
            m.iter()
                .filter(|(_, r)| r.as_str() == router_id)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in stale(&self.consumers) {
            self.forget(IdKind::Consumer, &id);
        }
        for id in stale(&self.producers) {
            self.forget(IdKind::Producer, &id);
        }
        let transports: Vec<String> = self
            .transports
            .iter()
            .filter(|(_, (r, _))| r == router_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in transports {
            self.forget_transport(&id);
        }
        self.forget(IdKind::Router, router_id);
        Ok(())
    }

    pub fn create_transport(
        &mut self,
        router_id: &str,
        transport_id: &str,
        options: TransportOptions,
    ) -> Result<TransportInfo, EngineError> {
        if !self.routers.contains(router_id) {
            return Err(EngineError::UnknownRouter(router_id.into()));
        }
        self.reserve(IdKind::Transport, transport_id)?;
        for _ in 0..UFRAG_ATTEMPTS {
            let info =
                match self
                    .engine
                    .create_webrtc_transport(router_id, transport_id, options.clone())
                {
                    Ok(info) => info,
                    Err(e) => {
                        self.shared
                            .directory()
                            .release(IdKind::Transport, transport_id);
                        return Err(e);
                    }
                };
            let ufrag = info.ice_parameters.username_fragment.clone();
            if self.shared.directory().claim_ufrag(&ufrag, self.index) {
                self.transports.insert(
                    transport_id.to_owned(),
                    (router_id.to_owned(), ufrag.clone()),
                );
                // Sent before the caller hears of the transport, so the
                // routing thread knows the ufrag before any STUN for it.
                let _ = self.routes.send(RouteUpdate::Add {
                    ufrag,
                    worker: self.index,
                });
                return Ok(info);
            }
            let _ = self.engine.close_transport(transport_id);
        }
        self.shared
            .directory()
            .release(IdKind::Transport, transport_id);
        Err(EngineError::Internal("no unique ICE ufrag".into()))
    }

    pub fn close_transport(&mut self, transport_id: &str) -> Result<(), EngineError> {
        self.engine.close_transport(transport_id)?;
        self.forget_transport(transport_id);
        Ok(())
    }

    pub fn produce(
        &mut self,
        transport_id: &str,
        producer_id: &str,
        kind: vtp_sfu::rtp::MediaKind,
        rtp_parameters: &serde_json::Value,
    ) -> Result<vtp_sfu::engine::ProducerInfo, EngineError> {
        let router = self
            .transports
            .get(transport_id)
            .map(|t| t.0.clone())
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        self.reserve(IdKind::Producer, producer_id)?;
        let result = self.engine.produce(
            transport_id,
            producer_id,
            kind,
            rtp_parameters,
            Instant::now(),
        );
        match &result {
            Ok(info) => {
                if info.kind == vtp_sfu::rtp::MediaKind::Video {
                    self.video_producers.insert(producer_id.to_owned());
                }
                self.producers.insert(producer_id.to_owned(), router);
            }
            Err(_) => self
                .shared
                .directory()
                .release(IdKind::Producer, producer_id),
        }
        result
    }

    pub fn consume(
        &mut self,
        transport_id: &str,
        consumer_id: &str,
        producer_id: &str,
        rtp_capabilities: &serde_json::Value,
    ) -> Result<vtp_sfu::engine::ConsumerInfo, EngineError> {
        let router = self
            .transports
            .get(transport_id)
            .map(|t| t.0.clone())
            .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))?;
        self.reserve(IdKind::Consumer, consumer_id)?;
        let result = self.engine.consume(
            transport_id,
            consumer_id,
            producer_id,
            rtp_capabilities,
            Instant::now(),
        );
        match &result {
            Ok(info) => {
                if info.kind == vtp_sfu::rtp::MediaKind::Video {
                    self.video_consumers.insert(consumer_id.to_owned());
                }
                self.consumers.insert(consumer_id.to_owned(), router);
            }
            Err(_) => self
                .shared
                .directory()
                .release(IdKind::Consumer, consumer_id),
        }
        result
    }

    /// Refuses an object that is not in `router_id` (as if unknown: a
    /// caller naming another room's object learns nothing about it).
    pub fn check_router(&self, kind: IdKind, id: &str, router_id: &str) -> Result<(), EngineError> {
        let router = match kind {
            IdKind::Router => self.routers.get(id).map(String::as_str),
            IdKind::Transport => self.transports.get(id).map(|t| t.0.as_str()),
            IdKind::Producer => self.producers.get(id).map(String::as_str),
            IdKind::Consumer => self.consumers.get(id).map(String::as_str),
        };
        if router == Some(router_id) {
            Ok(())
        } else {
            Err(kind.not_found(id))
        }
    }

    /// The router of one of this worker's transports.
    pub fn transport_router(&self, transport_id: &str) -> Option<&str> {
        self.transports.get(transport_id).map(|t| t.0.as_str())
    }

    /// Refuses a transport that `peer_id` does not own.
    pub fn check_owner(&self, transport_id: &str, peer_id: &str) -> Result<(), EngineError> {
        match self.engine.transport_peer(transport_id) {
            Some(owner) if owner == peer_id => Ok(()),
            _ => Err(EngineError::UnknownTransport(transport_id.into())),
        }
    }

    /// Removes a peer; its transports close, and what they carried with
    /// them (events for those).
    pub fn remove_peer(&mut self, router_id: &str, peer_id: &str) -> Result<(), EngineError> {
        let transports = self.engine.peer_transports(router_id, peer_id);
        self.engine.remove_peer(router_id, peer_id)?;
        self.flush();
        for id in transports {
            self.forget_transport(&id);
        }
        Ok(())
    }

    /// New ICE credentials for a transport; the routing thread learns the
    /// new ufrag before the caller hears of it and forgets the old one.
    pub fn restart_ice(&mut self, transport_id: &str) -> Result<IceParameters, EngineError> {
        let Some((_, old)) = self.transports.get(transport_id).cloned() else {
            return Err(EngineError::UnknownTransport(transport_id.into()));
        };
        for _ in 0..UFRAG_ATTEMPTS {
            let params = self.engine.restart_ice(transport_id)?;
            let ufrag = params.username_fragment.clone();
            let mut dir = self.shared.directory();
            if !dir.claim_ufrag(&ufrag, self.index) {
                // Taken on another worker: draw again.
                continue;
            }
            dir.release_ufrag(&old);
            drop(dir);
            if let Some(entry) = self.transports.get_mut(transport_id) {
                entry.1 = ufrag.clone();
            }
            let _ = self.routes.send(RouteUpdate::Add {
                ufrag,
                worker: self.index,
            });
            let _ = self.routes.send(RouteUpdate::Remove { ufrag: old });
            return Ok(params);
        }
        Err(EngineError::Internal("no unique ICE ufrag".into()))
    }

    /// Starts a tap on a producer of `router_id`; packets go to `sender`.
    pub fn add_tap(
        &mut self,
        router_id: &str,
        producer_id: &str,
        tap_id: &str,
        sender: SyncSender<TapPacket>,
    ) -> Result<TapInfo, EngineError> {
        self.check_router(IdKind::Producer, producer_id, router_id)?;
        let info = self.engine.add_tap(producer_id, tap_id)?;
        self.taps.insert(
            tap_id.to_owned(),
            WorkerTap {
                router: router_id.to_owned(),
                sender,
            },
        );
        Ok(info)
    }

    fn check_tap(&self, router_id: &str, tap_id: &str) -> Result<(), EngineError> {
        match self.taps.get(tap_id) {
            Some(t) if t.router == router_id => Ok(()),
            _ => Err(EngineError::UnknownTap(tap_id.into())),
        }
    }

    pub fn remove_tap(&mut self, router_id: &str, tap_id: &str) -> Result<(), EngineError> {
        self.check_tap(router_id, tap_id)?;
        self.engine.remove_tap(tap_id)?;
        self.taps.remove(tap_id);
        Ok(())
    }

    pub fn request_tap_keyframe(
        &mut self,
        router_id: &str,
        tap_id: &str,
    ) -> Result<(), EngineError> {
        self.check_tap(router_id, tap_id)?;
        self.engine.request_tap_keyframe(tap_id, Instant::now())
    }

    pub fn close_producer(&mut self, id: &str) -> Result<(), EngineError> {
        self.engine.close_producer(id)?;
        self.forget(IdKind::Producer, id);
        Ok(())
    }

    pub fn close_consumer(&mut self, id: &str) -> Result<(), EngineError> {
        self.engine.close_consumer(id)?;
        self.forget(IdKind::Consumer, id);
        Ok(())
    }
}
