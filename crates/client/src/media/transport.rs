//! One client-side WebRTC transport: a UDP socket, a str0m `Rtc` and the
//! tokio task that drives them, plus the producer and consumer handles.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast, watch};

use super::params::{self, ConsumeAnswer, Kind, LayerParams, Numbering, TransportAnswer};
use super::payload::{self, Vp8Packet};
use super::stats::{self, ConsumerStats, LayerStats, ProducerStats, RxTracker, TransportStats};
use super::{AudioOptions, KeyframeKind, MediaError, MediaEvent, VideoOptions};

/// Largest RTP payload the synthetic sources write.
const MAX_PAYLOAD: usize = 1000;
/// A source that fell this far behind skips ahead instead of bursting.
const MAX_SOURCE_LAG: Duration = Duration::from_millis(200);
/// Keyframes are this many times larger than delta frames.
const KEYFRAME_FACTOR: u32 = 3;

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

struct Layer {
    ssrc: Ssrc,
    rid: Option<Rid>,
    seq: u64,
    counter: u64,
    bitrate: u32,
    width: u16,
    height: u16,
    force_keyframe: bool,
    stats: LayerStats,
}

enum SourceKind {
    Video(VideoOptions),
    Audio(AudioOptions),
}

struct Producer {
    mid: Mid,
    mid_str: String,
    kind: Kind,
    pt: u8,
    layers: Vec<Layer>,
    source: SourceKind,
    running: bool,
    next_at: Option<Instant>,
    last_keyframe_at: Option<Instant>,
    /// Frames (video) or packets (audio) sent so far; the media clock.
    ticks: u32,
    ts_base: u32,
    keyframe_requests: u64,
    keyframe_watch: watch::Sender<u64>,
}

struct Consumer {
    kind: Kind,
    ssrc: Ssrc,
    rtx: Option<Ssrc>,
    tracker: RxTracker,
    stats: ConsumerStats,
}

struct Inner {
    rtc: Rtc,
    numbering: Numbering,
    closed: bool,
    stats: TransportStats,
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
    next_mid: u32,
    out: Vec<(SocketAddr, Vec<u8>)>,
}

pub(crate) struct Shared {
    id: String,
    direction: Direction,
    local_addr: SocketAddr,
    dtls_parameters: Value,
    inner: Mutex<Inner>,
    wake: Notify,
    events: broadcast::Sender<MediaEvent>,
    connected: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
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
    ) -> Result<MediaTransport, MediaError> {
        let answer = TransportAnswer::parse(answer)?;
        if bind.ip().is_unspecified() {
            return Err(MediaError::invalid(
                "bind address",
                "an unspecified address cannot be an ICE host candidate",
            ));
        }
        let remote = answer.server_addr(bind.ip())?;
        let fingerprint = answer.fingerprint()?;
        let socket = UdpSocket::bind(bind).await?;
        let local_addr = socket.local_addr()?;
        let now = Instant::now();
        let mut rtc = numbering.rtc_config().build(now);
        let local = Candidate::host(local_addr, "udp")
            .map_err(|e| MediaError::Rtc(format!("local candidate: {e}")))?;
        let server = Candidate::host(remote, "udp")
            .map_err(|e| MediaError::invalid("iceCandidates", e.to_string()))?;
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
        let stats = TransportStats {
            id: answer.id.clone(),
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
            id: answer.id,
            direction,
            local_addr,
            dtls_parameters: params::dtls_parameters(&local_fp),
            inner: Mutex::new(Inner {
                rtc,
                numbering,
                closed: false,
                stats,
                producers: Vec::new(),
                consumers: Vec::new(),
                next_mid: 0,
                out: Vec::new(),
            }),
            wake: Notify::new(),
            events: broadcast::channel(256).0,
            connected: watch::channel(false).0,
        });
        tokio::spawn(run(shared.clone(), socket));
        Ok(MediaTransport { shared })
    }

    /// The server's transport id (from the `create-transport` answer).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    pub fn direction(&self) -> Direction {
        self.shared.direction
    }

    /// The UDP address of this transport's socket (its ICE host candidate).
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

    fn check_direction(&self, want: Direction) -> Result<(), MediaError> {
        if self.shared.direction == want {
            Ok(())
        } else {
            Err(MediaError::WrongDirection {
                transport_id: self.shared.id.clone(),
                direction: self.shared.direction.as_str(),
            })
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
        self.declare(Kind::Video, SourceKind::Video(options.clone()), rids)
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
        self.declare(Kind::Audio, SourceKind::Audio(options), &[""])
    }

    fn declare(
        &self,
        kind: Kind,
        source: SourceKind,
        rids: &[&str],
    ) -> Result<LocalProducer, MediaError> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(MediaError::Closed);
        }
        let mid_str = inner.next_mid.to_string();
        inner.next_mid += 1;
        let mid = Mid::from(mid_str.as_str());
        let (pt, total_bitrate, width, height) = match &source {
            SourceKind::Video(v) => (params::CHROMIUM_VP8, v.bitrate_bps, v.width, v.height),
            SourceKind::Audio(a) => (params::CHROMIUM_OPUS, a.bitrate_bps, 0, 0),
        };
        let mut api = inner.rtc.direct_api();
        api.declare_media(mid, kind.str0m());
        let simulcast = rids.len() > 1;
        // Layer i of n gets 2^i / (2^n - 1) of the bitrate and 1 / 2^(n-1-i)
        // of the size.
        let shares = (1u32 << rids.len()) - 1;
        let mut layers = Vec::new();
        for (i, rid) in rids.iter().enumerate() {
            let ssrc = api.new_ssrc();
            let rtx = (kind == Kind::Video).then(|| api.new_ssrc());
            let rid = simulcast.then(|| Rid::from(*rid));
            api.declare_stream_tx(ssrc, rtx, mid, rid);
            let scale = 1u16 << (rids.len() - 1 - i);
            layers.push(Layer {
                ssrc,
                rid,
                seq: u64::from(*ssrc & 0x3fff),
                counter: 0,
                bitrate: (u64::from(total_bitrate) * (1u64 << i) / u64::from(shares)) as u32,
                width: width / scale,
                height: height / scale,
                force_keyframe: false,
                stats: LayerStats {
                    rid: rid.map(|r| r.to_string()),
                    ssrc: *ssrc,
                    rtx_ssrc: rtx.map(|r| *r),
                    ..Default::default()
                },
            });
        }
        let cname = format!("vtp-{:08x}", *layers[0].ssrc);
        let rtp_parameters = match kind {
            Kind::Video => {
                let lp: Vec<LayerParams<'_>> = layers
                    .iter()
                    .map(|l| LayerParams {
                        ssrc: l.stats.ssrc,
                        rtx: l.stats.rtx_ssrc,
                        rid: l.stats.rid.as_deref(),
                        max_bitrate: l.bitrate,
                    })
                    .collect();
                params::video_rtp_parameters(&mid_str, &cname, &lp)
            }
            Kind::Audio => params::audio_rtp_parameters(&mid_str, &cname, *layers[0].ssrc),
        };
        let (keyframe_watch, keyframes) = watch::channel(0);
        let index = inner.producers.len();
        inner.producers.push(Producer {
            mid,
            mid_str: mid_str.clone(),
            kind,
            pt,
            ts_base: *layers[0].ssrc ^ 0x5a5a_5a5a,
            layers,
            source,
            running: false,
            next_at: None,
            last_keyframe_at: None,
            ticks: 0,
            keyframe_requests: 0,
            keyframe_watch,
        });
        Ok(LocalProducer {
            shared: self.shared.clone(),
            index,
            mid: mid_str,
            kind,
            rtp_parameters,
            keyframes,
        })
    }

    /// Declares the stream of a `consume` answer (`{ id, producerId, kind,
    /// rtpParameters }`) so that its packets are received and counted.
    /// Its payload types and extension ids must be those of the router
    /// capabilities the transport was built with.
    pub fn consume(&self, answer: &Value) -> Result<RemoteConsumer, MediaError> {
        self.check_direction(Direction::Recv)?;
        let answer = ConsumeAnswer::parse(answer)?;
        let kind = Kind::parse(&answer.kind)
            .ok_or_else(|| MediaError::invalid("consume answer", "kind is not audio or video"))?;
        let params = &answer.rtp_parameters;
        let mid_str = params
            .mid
            .clone()
            .ok_or_else(|| MediaError::invalid("rtpParameters", "no mid"))?;
        if mid_str.is_empty()
            || mid_str.len() > 16
            || !mid_str.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(MediaError::Unsupported(format!("mid {mid_str:?}")));
        }
        let enc = params
            .encodings
            .first()
            .ok_or_else(|| MediaError::invalid("rtpParameters", "no encodings"))?;
        let ssrc = enc
            .ssrc
            .ok_or_else(|| MediaError::invalid("rtpParameters", "encodings[0] has no ssrc"))?;
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(MediaError::Closed);
        }
        let (_, rtx_pt) = inner.numbering.check_consumer(kind, params)?;
        let rtx = enc
            .rtx
            .as_ref()
            .map(|r| r.ssrc)
            .filter(|_| rtx_pt.is_some());
        if inner.consumers.iter().any(|c| c.stats.mid == mid_str) {
            return Err(MediaError::Conflict(format!(
                "mid {mid_str:?} is already consumed"
            )));
        }
        let used = |s: u32| {
            inner
                .consumers
                .iter()
                .any(|c| *c.ssrc == s || c.rtx.is_some_and(|r| *r == s))
        };
        if used(ssrc) || rtx.is_some_and(used) || rtx == Some(ssrc) {
            return Err(MediaError::Conflict(format!("ssrc {ssrc} is already used")));
        }
        let mid = Mid::from(mid_str.as_str());
        let mut api = inner.rtc.direct_api();
        api.declare_media(mid, kind.str0m());
        api.expect_stream_rx(Ssrc::from(ssrc), rtx.map(Ssrc::from), mid, None);
        let index = inner.consumers.len();
        inner.consumers.push(Consumer {
            kind,
            ssrc: Ssrc::from(ssrc),
            rtx: rtx.map(Ssrc::from),
            tracker: RxTracker::default(),
            stats: ConsumerStats {
                consumer_id: answer.id.clone(),
                producer_id: answer.producer_id.clone(),
                mid: mid_str,
                ssrc,
                ..Default::default()
            },
        });
        drop(guard);
        self.shared.wake.notify_one();
        Ok(RemoteConsumer {
            shared: self.shared.clone(),
            index,
            id: answer.id,
            producer_id: answer.producer_id,
            kind,
        })
    }

    /// Producer counters of this transport.
    pub fn producer_stats(&self) -> Vec<ProducerStats> {
        let inner = self.shared.lock();
        inner.producers.iter().map(producer_stats).collect()
    }

    /// Consumer counters of this transport.
    pub fn consumer_stats(&self) -> Vec<ConsumerStats> {
        let inner = self.shared.lock();
        inner.consumers.iter().map(|c| c.stats.clone()).collect()
    }
}

fn producer_stats(p: &Producer) -> ProducerStats {
    let sum = |f: fn(&LayerStats) -> u64| p.layers.iter().map(|l| f(&l.stats)).sum();
    ProducerStats {
        mid: p.mid_str.clone(),
        kind: p.kind,
        packets: sum(|l| l.packets),
        bytes: sum(|l| l.bytes),
        frames: sum(|l| l.frames),
        keyframes: sum(|l| l.keyframes),
        keyframe_requests: p.keyframe_requests,
        layers: p.layers.iter().map(|l| l.stats.clone()).collect(),
    }
}

/// A local producer with its synthetic source (see [`MediaTransport::produce_video`]).
pub struct LocalProducer {
    shared: Arc<Shared>,
    index: usize,
    mid: String,
    kind: Kind,
    rtp_parameters: Value,
    keyframes: watch::Receiver<u64>,
}

impl LocalProducer {
    /// `rtpParameters` for `produce`.
    pub fn rtp_parameters(&self) -> &Value {
        &self.rtp_parameters
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn mid(&self) -> &str {
        &self.mid
    }

    /// Starts (or restarts) the synthetic source; the first frame is a
    /// keyframe. Nothing is sent before the transport is connected.
    pub fn start(&self) {
        {
            let mut inner = self.shared.lock();
            if let Some(p) = inner.producers.get_mut(self.index)
                && !p.running
            {
                p.running = true;
                p.next_at = None;
                for l in &mut p.layers {
                    l.force_keyframe = true;
                }
            }
        }
        self.shared.wake.notify_one();
    }

    /// Stops the synthetic source.
    pub fn stop(&self) {
        let mut inner = self.shared.lock();
        if let Some(p) = inner.producers.get_mut(self.index) {
            p.running = false;
        }
    }

    pub fn stats(&self) -> ProducerStats {
        let inner = self.shared.lock();
        inner
            .producers
            .get(self.index)
            .map(producer_stats)
            .unwrap_or_else(|| ProducerStats {
                mid: self.mid.clone(),
                kind: self.kind,
                packets: 0,
                bytes: 0,
                frames: 0,
                keyframes: 0,
                keyframe_requests: 0,
                layers: Vec::new(),
            })
    }

    /// PLI and FIR received so far for this producer.
    pub fn keyframe_requests(&self) -> u64 {
        *self.keyframes.borrow()
    }

    /// Waits until at least `count` keyframe requests have arrived in
    /// total; returns the count.
    pub async fn wait_keyframe_requests(
        &self,
        count: u64,
        timeout: Duration,
    ) -> Result<u64, MediaError> {
        let mut rx = self.keyframes.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count)).await {
            Ok(Ok(n)) => Ok(*n),
            Ok(Err(_)) => Err(MediaError::Closed),
            Err(_) => Err(MediaError::Timeout("a keyframe request")),
        }
    }
}

/// A consumer declared on a receive transport (see [`MediaTransport::consume`]).
pub struct RemoteConsumer {
    shared: Arc<Shared>,
    index: usize,
    id: String,
    producer_id: String,
    kind: Kind,
}

impl RemoteConsumer {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn stats(&self) -> ConsumerStats {
        let inner = self.shared.lock();
        inner
            .consumers
            .get(self.index)
            .map(|c| c.stats.clone())
            .unwrap_or_default()
    }

    /// Sends a keyframe request (PLI or FIR) for this consumer's stream.
    pub fn request_keyframe(&self, kind: KeyframeKind) -> Result<(), MediaError> {
        {
            let mut guard = self.shared.lock();
            let inner = &mut *guard;
            if inner.closed {
                return Err(MediaError::Closed);
            }
            let Some(c) = inner.consumers.get_mut(self.index) else {
                return Err(MediaError::Closed);
            };
            let ssrc = c.ssrc;
            c.stats.keyframe_requests_sent += 1;
            let rx = inner
                .rtc
                .direct_api()
                .stream_rx(&ssrc)
                .map(|s| s.request_keyframe(kind.str0m()));
            if rx.is_none() {
                return Err(MediaError::Rtc(format!(
                    "no receive stream for ssrc {ssrc}"
                )));
            }
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Waits until `cond` holds for this consumer's counters (checked every
    /// 10 ms); returns the counters that satisfied it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&ConsumerStats) -> bool,
    ) -> Result<ConsumerStats, MediaError> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.stats();
            if cond(&s) {
                return Ok(s);
            }
            if tokio::time::Instant::now() >= end {
                return Err(MediaError::Timeout("consumer counters"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ----------------------------------------------------------------------
// The driving task.

async fn run(shared: Arc<Shared>, socket: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (deadline, out) = {
            let mut inner = shared.lock();
            if inner.closed {
                break;
            }
            let deadline = inner.drive(Instant::now(), &shared);
            (deadline, std::mem::take(&mut inner.out))
        };
        for (dest, bytes) in out {
            if let Err(e) = socket.send_to(&bytes, dest).await {
                tracing::debug!(transport = %shared.id, error = %e, "send_to failed");
            }
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    shared.lock().receive(Instant::now(), source, shared.local_addr, data);
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
    shared.connected.send_replace(false);
    let _ = shared.events.send(MediaEvent::Closed {
        transport_id: shared.id.clone(),
    });
}

impl Inner {
    fn receive(&mut self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let Ok(r) = Receive::new(Protocol::Udp, source, local, data) else {
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
            _ => {}
        }
    }

    fn tick_sources(&mut self, now: Instant) {
        if !self.stats.connected {
            return;
        }
        let mut api = self.rtc.direct_api();
        for p in &mut self.producers {
            if !p.running {
                continue;
            }
            let period = match &p.source {
                SourceKind::Video(v) => Duration::from_secs(1) / v.fps,
                SourceKind::Audio(a) => Duration::from_millis(u64::from(a.ptime_ms)),
            };
            let mut next = p.next_at.unwrap_or(now);
            if now.saturating_duration_since(next) > MAX_SOURCE_LAG {
                next = now;
            }
            while next <= now {
                match &p.source {
                    SourceKind::Video(v) => {
                        let periodic = v.keyframe_interval.is_some_and(|i| {
                            p.last_keyframe_at
                                .is_none_or(|t| now.saturating_duration_since(t) >= i)
                        });
                        let ts = p
                            .ts_base
                            .wrapping_add((u64::from(p.ticks) * 90_000 / u64::from(v.fps)) as u32);
                        let mut any_key = false;
                        for l in &mut p.layers {
                            let key = l.force_keyframe || periodic;
                            l.force_keyframe = false;
                            any_key |= key;
                            send_video_frame(&mut api, l, p.pt, p.ticks, ts, key, v.fps, now);
                        }
                        if any_key {
                            p.last_keyframe_at = Some(now);
                        }
                    }
                    SourceKind::Audio(a) => {
                        let ts = p
                            .ts_base
                            .wrapping_add(p.ticks.wrapping_mul(48 * a.ptime_ms));
                        if let Some(l) = p.layers.first_mut() {
                            send_audio_packet(&mut api, l, p.pt, ts, a, now);
                        }
                    }
                }
                p.ticks = p.ticks.wrapping_add(1);
                next += period;
            }
            p.next_at = Some(next);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send_video_frame(
    api: &mut str0m::change::DirectApi<'_>,
    l: &mut Layer,
    pt: u8,
    frame: u32,
    ts: u32,
    keyframe: bool,
    fps: u32,
    now: Instant,
) {
    let Some(tx) = api.stream_tx(&l.ssrc) else {
        return;
    };
    let base = (l.bitrate / 8 / fps.max(1)) as usize;
    let size = (if keyframe {
        base * KEYFRAME_FACTOR as usize
    } else {
        base
    })
    .max(64);
    let count = size.div_ceil(MAX_PAYLOAD);
    let mut left = size;
    for i in 0..count {
        let this = left.min(MAX_PAYLOAD);
        left -= this;
        let packet = Vp8Packet {
            counter: l.counter,
            frame,
            picture_id: (frame & 0x7fff) as u16,
            start: i == 0,
            keyframe,
            width: l.width,
            height: l.height,
            size: this,
        }
        .build();
        let last = i + 1 == count;
        l.stats.packets += 1;
        l.stats.bytes += packet.len() as u64;
        tx.write_rtp(
            RtpWrite::new(pt.into(), l.seq.into(), ts, now, packet)
                .marker(last)
                .nackable(true),
        );
        l.seq += 1;
        l.counter += 1;
    }
    l.stats.frames += 1;
    if keyframe {
        l.stats.keyframes += 1;
    }
}

fn send_audio_packet(
    api: &mut str0m::change::DirectApi<'_>,
    l: &mut Layer,
    pt: u8,
    ts: u32,
    options: &AudioOptions,
    now: Instant,
) {
    let Some(tx) = api.stream_tx(&l.ssrc) else {
        return;
    };
    let size = ((u64::from(options.bitrate_bps) * u64::from(options.ptime_ms) / 8000) as usize)
        .max(payload::BODY_HEADER + 2);
    let packet = payload::opus_packet(l.counter, size);
    let ext = ExtensionValues {
        audio_level: Some(-30),
        voice_activity: Some(true),
        ..Default::default()
    };
    l.stats.packets += 1;
    l.stats.bytes += packet.len() as u64;
    l.stats.frames += 1;
    tx.write_rtp(
        RtpWrite::new(pt.into(), l.seq.into(), ts, now, packet)
            .marker(l.counter == 0)
            .ext_vals(ext),
    );
    l.seq += 1;
    l.counter += 1;
}

impl KeyframeKind {
    fn str0m(self) -> KeyframeRequestKind {
        match self {
            KeyframeKind::Pli => KeyframeRequestKind::Pli,
            KeyframeKind::Fir => KeyframeRequestKind::Fir,
        }
    }

    fn from_str0m(kind: KeyframeRequestKind) -> Self {
        match kind {
            KeyframeRequestKind::Fir => KeyframeKind::Fir,
            _ => KeyframeKind::Pli,
        }
    }
}
