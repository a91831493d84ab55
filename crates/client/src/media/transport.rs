//! One client-side WebRTC transport: a UDP socket (or, with
//! [`IceTransport::Tcp`], one ICE-TCP connection to the server's passive
//! candidate, packets framed as RFC 4571 says), a str0m `Rtc` and the tokio
//! task that drives them. The producer and consumer handles live in
//! `producer` and `consumer`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use str0m::media::KeyframeRequestKind;
use str0m::net::TcpType;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, broadcast, watch};

use super::consumer::{self, Consumer, RemoteConsumer};
use super::params::{self, Kind, Numbering, TransportAnswer};
use super::producer::{self, LocalProducer, Producer, SourceKind};
use super::stats::{self, ConsumerStats, ProducerStats, TransportStats};
use super::{AudioOptions, KeyframeKind, MediaError, MediaEvent, VideoOptions};

/// How a transport reaches the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IceTransport {
    /// The server's UDP candidate (as browsers prefer).
    #[default]
    Udp,
    /// Only the server's passive TCP candidate, as a browser on a network
    /// that blocks UDP ends up using: one connection, this side active.
    Tcp,
}

/// The socket of a transport.
pub(super) enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Whether a transport sends or receives (mediasoup-client uses each
/// transport one way only, and so does the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Send,
    Recv,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Recv => "recv",
        }
    }
}

pub(super) struct Inner {
    pub(super) rtc: Rtc,
    pub(super) numbering: Numbering,
    pub(super) closed: bool,
    pub(super) stats: TransportStats,
    pub(super) producers: Vec<Producer>,
    pub(super) consumers: Vec<Consumer>,
    pub(super) next_mid: u32,
    /// Count received RTP from its clear-text header instead of handing it
    /// to str0m (see [`MediaPeer::with_count_only`](super::MediaPeer::with_count_only)).
    pub(super) count_only: bool,
    out: Vec<(SocketAddr, Vec<u8>)>,
}

pub(crate) struct Shared {
    id: String,
    direction: Direction,
    local_addr: SocketAddr,
    dtls_parameters: Value,
    inner: Mutex<Inner>,
    pub(super) wake: Notify,
    events: broadcast::Sender<MediaEvent>,
    connected: watch::Sender<bool>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A client-side WebRTC transport (see the module doc). Cloning gives
/// another handle to the same transport.
#[derive(Clone)]
pub struct MediaTransport {
    shared: Arc<Shared>,
}

impl MediaTransport {
    /// Binds a socket, builds the `Rtc` and starts its task.
    pub(crate) async fn start(
        bind: SocketAddr,
        answer: &Value,
        direction: Direction,
        numbering: Numbering,
        ice: IceTransport,
    ) -> Result<MediaTransport, MediaError> {
        let answer = TransportAnswer::parse(answer)?;
        if bind.ip().is_unspecified() {
            return Err(MediaError::invalid(
                "bind address",
                "an unspecified address cannot be an ICE host candidate",
            ));
        }
        let fingerprint = answer.fingerprint()?;
        let now = Instant::now();
        let mut rtc = numbering.rtc_config().build(now);
        let (link, remote, local, server) = match ice {
            IceTransport::Udp => {
                let remote = answer.server_addr(bind.ip(), "udp")?;
                let socket = UdpSocket::bind(bind).await?;
                let local = Candidate::host(socket.local_addr()?, "udp");
                (
                    Link::Udp(socket),
                    remote,
                    local,
                    Candidate::host(remote, "udp"),
                )
            }
            IceTransport::Tcp => {
                let remote = answer.server_addr(bind.ip(), "tcp")?;
                let socket =
                    tokio::net::TcpSocket::new_v4().or_else(|_| tokio::net::TcpSocket::new_v6())?;
                let socket = if bind.is_ipv4() == remote.is_ipv4() {
                    socket.bind(bind)?;
                    socket
                } else {
                    socket
                };
                let stream = socket.connect(remote).await?;
                stream.set_nodelay(true)?;
                let tcp = |addr, kind| Candidate::builder().tcp().host(addr).tcptype(kind).build();
                let local = tcp(stream.local_addr()?, TcpType::Active);
                let server = tcp(remote, TcpType::Passive);
                (Link::Tcp(stream), remote, local, server)
            }
        };
        let local = local.map_err(|e| MediaError::Rtc(format!("local candidate: {e}")))?;
        let server = server.map_err(|e| MediaError::invalid("iceCandidates", e.to_string()))?;
        rtc.add_local_candidate(local);
        rtc.add_remote_candidate(server);
        let local_fp = {
            let mut api = rtc.direct_api();
            api.set_remote_ice_credentials(IceCreds {
                ufrag: answer.ice_parameters.username_fragment.clone(),
                pass: answer.ice_parameters.password.clone(),
            });
            api.set_ice_controlling(true);
            api.set_remote_fingerprint(fingerprint);
            api.start_dtls(true)
                .map_err(|e| MediaError::Rtc(e.to_string()))?;
            api.local_dtls_fingerprint().to_string()
        };
        Ok(MediaTransport::launch(
            answer.id,
            direction,
            numbering,
            rtc,
            link,
            remote,
            params::dtls_parameters(&local_fp),
        ))
    }

    /// Starts the task of a transport whose `Rtc` is built and whose socket
    /// is bound; `remote` is the server's address as far as it is known.
    pub(super) fn launch(
        id: String,
        direction: Direction,
        numbering: Numbering,
        rtc: Rtc,
        link: Link,
        remote: SocketAddr,
        dtls_parameters: Value,
    ) -> MediaTransport {
        // A socket bound a moment ago has an address; 0.0.0.0:0 only if the
        // OS cannot say, which then shows in the stats.
        let local_addr = match &link {
            Link::Udp(socket) => socket.local_addr(),
            Link::Tcp(stream) => stream.local_addr(),
        }
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let stats = TransportStats {
            id: id.clone(),
            direction: direction.as_str(),
            local_addr,
            remote_addr: remote,
            connected: false,
            connected_at: None,
            datagrams_in: 0,
            bytes_in: 0,
            datagrams_out: 0,
            bytes_out: 0,
            datagrams_dropped: 0,
        };
        let shared = Arc::new(Shared {
            id,
            direction,
            local_addr,
            dtls_parameters,
            inner: Mutex::new(Inner {
                rtc,
                numbering,
                closed: false,
                stats,
                producers: Vec::new(),
                consumers: Vec::new(),
                next_mid: 0,
                count_only: false,
                out: Vec::new(),
            }),
            wake: Notify::new(),
            events: broadcast::channel(256).0,
            connected: watch::channel(false).0,
        });
        tokio::spawn(run(shared.clone(), link, remote));
        MediaTransport { shared }
    }

    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The server's transport id (from the `create-transport` answer).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// The address of this transport's socket or connection (its ICE host
    /// candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// `dtlsParameters` for `connect-transport`: role `client` and this
    /// transport's sha-256 certificate fingerprint.
    pub fn dtls_parameters(&self) -> Value {
        self.shared.dtls_parameters.clone()
    }

    /// ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), MediaError> {
        let mut rx = self.shared.connected.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(MediaError::Closed),
            Err(_) => Err(MediaError::Timeout("the transport to connect")),
        }
    }

    /// Events of this transport from now on.
    pub fn events(&self) -> broadcast::Receiver<MediaEvent> {
        self.shared.events.subscribe()
    }

    /// Counters of the transport itself.
    pub fn stats(&self) -> TransportStats {
        self.shared.lock().stats.clone()
    }

    /// Stops the task and releases the socket. Handles stay usable for
    /// reading stats; calls that need the transport return `Closed`.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }

    /// Applies the `iceParameters` of a `restart-ice` answer, with new
    /// local credentials of its own, as a browser's `restartIce()` does:
    /// the next connectivity checks use the new pair, DTLS and media go on.
    pub fn restart_ice(&self, ice_parameters: &Value) -> Result<(), MediaError> {
        let field = |name: &str| {
            ice_parameters
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| MediaError::invalid("iceParameters", format!("no {name}")))
        };
        let remote = IceCreds {
            ufrag: field("usernameFragment")?,
            pass: field("password")?,
        };
        let mut inner = self.shared.lock();
        if inner.closed {
            return Err(MediaError::Closed);
        }
        let mut api = inner.rtc.direct_api();
        api.set_remote_ice_credentials(remote);
        api.set_local_ice_credentials(IceCreds::new());
        drop(inner);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn check_direction(&self, want: Direction) -> Result<(), MediaError> {
        if self.shared.direction == want {
            Ok(())
        } else {
            Err(self.wrong_direction())
        }
    }

    pub(super) fn wrong_direction(&self) -> MediaError {
        MediaError::WrongDirection {
            transport_id: self.shared.id.clone(),
            direction: self.shared.direction.as_str(),
        }
    }

    /// Declares a VP8 producer (a new MID; one SSRC with RTX, or three RID
    /// layers `r0`/`r1`/`r2` with `options.simulcast`). Send the returned
    /// producer's [`LocalProducer::rtp_parameters`] with `produce`, then
    /// call [`LocalProducer::start`] to run its synthetic source.
    pub fn produce_video(&self, options: VideoOptions) -> Result<LocalProducer, MediaError> {
        self.check_direction(Direction::Send)?;
        if options.fps == 0 || options.fps > 1000 {
            return Err(MediaError::invalid("VideoOptions", "fps must be 1..=1000"));
        }
        let rids: &[&str] = if options.simulcast {
            &["r0", "r1", "r2"]
        } else {
            &[""]
        };
        producer::declare(
            &self.shared,
            Kind::Video,
            SourceKind::Video(options.clone()),
            rids,
        )
    }

    /// Declares an opus producer (a new MID, one SSRC).
    pub fn produce_audio(&self, options: AudioOptions) -> Result<LocalProducer, MediaError> {
        self.check_direction(Direction::Send)?;
        if options.ptime_ms == 0 || options.ptime_ms > 120 {
            return Err(MediaError::invalid(
                "AudioOptions",
                "ptime_ms must be 1..=120",
            ));
        }
        producer::declare(&self.shared, Kind::Audio, SourceKind::Audio(options), &[""])
    }

    /// Declares the stream of a `consume` answer (`{ id, producerId, kind,
    /// rtpParameters }`) so that its packets are received and counted.
    /// Its payload types and extension ids must be those of the router
    /// capabilities the transport was built with.
    pub fn consume(&self, answer: &Value) -> Result<RemoteConsumer, MediaError> {
        self.check_direction(Direction::Recv)?;
        consumer::declare(&self.shared, answer)
    }

    /// Producer counters of this transport.
    pub fn producer_stats(&self) -> Vec<ProducerStats> {
        let inner = self.shared.lock();
        inner
            .producers
            .iter()
            .map(producer::producer_stats)
            .collect()
    }

    /// Consumer counters of this transport.
    pub fn consumer_stats(&self) -> Vec<ConsumerStats> {
        let inner = self.shared.lock();
        inner.consumers.iter().map(|c| c.stats.clone()).collect()
    }
}

// ----------------------------------------------------------------------
// The driving task.

async fn run(shared: Arc<Shared>, link: Link, server: SocketAddr) {
    match link {
        Link::Udp(socket) => run_udp(&shared, socket).await,
        Link::Tcp(stream) => run_tcp(&shared, stream, server).await,
    }
    shared.connected.send_replace(false);
    let _ = shared.events.send(MediaEvent::Closed {
        transport_id: shared.id.clone(),
    });
}

/// Drives the `Rtc` now: when to come back and what to send, or `None`
/// once the transport is closed.
/// Packets to send, with their destinations.
type Outgoing = Vec<(SocketAddr, Vec<u8>)>;

fn drive(shared: &Shared) -> Option<(Instant, Outgoing)> {
    let mut inner = shared.lock();
    if inner.closed {
        return None;
    }
    let deadline = inner.drive(Instant::now(), shared);
    Some((deadline, std::mem::take(&mut inner.out)))
}

async fn run_udp(shared: &Shared, socket: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    while let Some((deadline, out)) = drive(shared) {
        for (dest, bytes) in out {
            if let Err(e) = socket.send_to(&bytes, dest).await {
                tracing::debug!(transport = %shared.id, error = %e, "send_to failed");
            }
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    shared.lock().receive(Instant::now(), Protocol::Udp, source, shared.local_addr, data);
                }
                Err(e) => {
                    tracing::debug!(transport = %shared.id, error = %e, "recv_from failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
            _ = shared.wake.notified() => {}
        }
    }
}

/// ICE-TCP: every packet goes out with its two-byte length; what arrives
/// is cut back into packets the same way. The connection's end ends the
/// transport.
async fn run_tcp(shared: &Shared, stream: TcpStream, server: SocketAddr) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending = Vec::new();
    while let Some((deadline, out)) = drive(shared) {
        let mut framed = Vec::new();
        for (_, bytes) in out {
            let Ok(len) = u16::try_from(bytes.len()) else {
                continue;
            };
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&bytes);
        }
        if !framed.is_empty() && writer.write_all(&framed).await.is_err() {
            break;
        }
        tokio::select! {
            r = reader.read(&mut buf) => match r {
                Ok(n) if n > 0 => {
                    pending.extend_from_slice(buf.get(..n).unwrap_or_default());
                    let mut inner = shared.lock();
                    for frame in take_frames(&mut pending) {
                        inner.receive(Instant::now(), Protocol::Tcp, server, shared.local_addr, &frame);
                        // str0m wants its outputs drained after each input
                        // (events of one packet are lost otherwise); what
                        // it sends waits in `out` for the next turn.
                        inner.drive(Instant::now(), shared);
                    }
                }
                _ => {
                    tracing::debug!(transport = %shared.id, "the server closed the ICE-TCP connection");
                    break;
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
            _ = shared.wake.notified() => {}
        }
    }
    shared.lock().closed = true;
}

/// The whole RFC 4571 frames at the start of `pending`, removed from it
/// (a partial frame stays; a frame is at most 65535 bytes, so `pending`
/// never holds more than one read and one frame).
fn take_frames(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some(header) = pending.get(at..at + 2) {
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let Some(frame) = pending.get(at + 2..at + 2 + len) else {
            break;
        };
        frames.push(frame.to_vec());
        at += 2 + len;
    }
    pending.drain(..at);
    frames
}

impl Inner {
    fn receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        if self.count_only
            && let Some(header) = stats::plain_rtp(data)
        {
            // Media is counted, never decrypted; STUN, DTLS and RTCP still
            // go to str0m, which keeps the transport up.
            if let Some(c) = self.consumers.iter_mut().find(|c| *c.ssrc == header.ssrc) {
                stats::count_header(&mut c.stats, &mut c.tracker, c.kind, &header, now);
            }
            return;
        }
        let Ok(r) = Receive::new(proto, source, local, data) else {
            self.stats.datagrams_dropped += 1;
            return;
        };
        let input = Input::Receive(now, r);
        if !self.rtc.accepts(&input) {
            self.stats.datagrams_dropped += 1;
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(error = %e, "str0m refused a datagram");
            self.stats.datagrams_dropped += 1;
        }
    }

    /// Runs the sources, advances str0m's clock and drains its outputs.
    /// Returns when to come back.
    fn drive(&mut self, now: Instant, shared: &Shared) -> Instant {
        self.tick_sources(now);
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            tracing::debug!(transport = %shared.id, error = %e, "str0m timeout");
        }
        let rtc_deadline = loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    self.stats.datagrams_out += 1;
                    self.stats.bytes_out += t.contents.len() as u64;
                    self.out.push((t.destination, t.contents.to_vec()));
                }
                Ok(Output::Event(e)) => self.on_event(now, e, shared),
                Err(e) => {
                    tracing::debug!(transport = %shared.id, error = %e, "str0m poll_output");
                    break now + Duration::from_millis(10);
                }
            }
        };
        if !self.rtc.is_alive() {
            self.closed = true;
        }
        self.producers
            .iter()
            .filter(|p| p.running)
            .filter_map(|p| p.next_at)
            .fold(rtc_deadline, Instant::min)
            .max(now)
    }

    fn on_event(&mut self, now: Instant, event: Event, shared: &Shared) {
        let transport_id = || shared.id.clone();
        match event {
            Event::Connected => {
                self.stats.connected = true;
                self.stats.connected_at = Some(now);
                shared.connected.send_replace(true);
                let _ = shared.events.send(MediaEvent::Connected {
                    transport_id: transport_id(),
                });
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.stats.connected = false;
                shared.connected.send_replace(false);
                let _ = shared.events.send(MediaEvent::Disconnected {
                    transport_id: transport_id(),
                });
            }
            Event::KeyframeRequest(req) => {
                let Some(p) = self.producers.iter_mut().find(|p| p.mid == req.mid) else {
                    return;
                };
                for l in &mut p.layers {
                    if req.rid.is_none() || l.rid == req.rid {
                        l.force_keyframe = true;
                    }
                }
                p.keyframe_requests += 1;
                p.keyframe_watch.send_replace(p.keyframe_requests);
                let _ = shared.events.send(MediaEvent::KeyframeRequested {
                    transport_id: transport_id(),
                    mid: p.mid_str.clone(),
                    rid: req.rid.map(|r| r.to_string()),
                    kind: KeyframeKind::from_str0m(req.kind),
                });
            }
            Event::RtpPacket(pkt) => {
                let Some(c) = self
                    .consumers
                    .iter_mut()
                    .find(|c| c.ssrc == pkt.header.ssrc)
                else {
                    return;
                };
                stats::count_packet(
                    &mut c.stats,
                    &mut c.tracker,
                    c.kind,
                    *pkt.seq_no,
                    pkt.header.marker,
                    &pkt.payload,
                    now,
                );
            }
            Event::MediaIngressStats(s) => {
                let mid = s.mid.to_string();
                if let Some(c) = self.consumers.iter_mut().find(|c| c.stats.mid == mid) {
                    let clock_hz = match c.kind {
                        Kind::Video => 90_000,
                        Kind::Audio => 48_000,
                    };
                    c.stats.nacks_sent = s.nacks;
                    c.stats.jitter_us = u64::from(s.jitter) * 1_000_000 / clock_hz;
                }
            }
            _ => {}
        }
    }
}

impl KeyframeKind {
    pub(super) fn str0m(self) -> KeyframeRequestKind {
        match self {
            KeyframeKind::Pli => KeyframeRequestKind::Pli,
            KeyframeKind::Fir => KeyframeRequestKind::Fir,
        }
    }

    pub(super) fn from_str0m(kind: KeyframeRequestKind) -> Self {
        match kind {
            KeyframeRequestKind::Fir => KeyframeKind::Fir,
            _ => KeyframeKind::Pli,
        }
    }
}
