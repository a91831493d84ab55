//! Local producers: the declaration of a send stream, the
//! [`LocalProducer`] handle, and the synthetic VP8/Opus source that the
//! transport's task ticks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use str0m::media::{Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpWrite, Ssrc};
use tokio::sync::watch;

use super::params::{self, Kind, LayerParams};
use super::payload::{self, Vp8Packet};
use super::stats::{LayerStats, ProducerStats};
use super::transport::{Inner, Shared};
use super::{AudioOptions, MediaError, VideoOptions};

/// Largest RTP payload the synthetic sources write.
const MAX_PAYLOAD: usize = 1000;
/// A source that fell this far behind skips ahead instead of bursting.
const MAX_SOURCE_LAG: Duration = Duration::from_millis(200);
/// Keyframes are this many times larger than delta frames.
const KEYFRAME_FACTOR: u32 = 3;

pub(super) struct Layer {
    ssrc: Ssrc,
    pub(super) rid: Option<Rid>,
    seq: u64,
    counter: u64,
    bitrate: u32,
    width: u16,
    height: u16,
    pub(super) force_keyframe: bool,
    stats: LayerStats,
}

pub(super) enum SourceKind {
    Video(VideoOptions),
    Audio(AudioOptions),
}

pub(super) struct Producer {
    pub(super) mid: Mid,
    pub(super) mid_str: String,
    kind: Kind,
    pt: u8,
    pub(super) layers: Vec<Layer>,
    source: SourceKind,
    pub(super) running: bool,
    pub(super) next_at: Option<Instant>,
    last_keyframe_at: Option<Instant>,
    /// Frames (video) or packets (audio) sent so far; the media clock.
    ticks: u32,
    ts_base: u32,
    pub(super) keyframe_requests: u64,
    pub(super) keyframe_watch: watch::Sender<u64>,
}

/// Declares a producer on a send transport (see
/// [`MediaTransport::produce_video`](super::MediaTransport::produce_video)).
pub(super) fn declare(
    shared: &Arc<Shared>,
    kind: Kind,
    source: SourceKind,
    rids: &[&str],
) -> Result<LocalProducer, MediaError> {
    let mut guard = shared.lock();
    let inner = &mut *guard;
    if inner.closed {
        return Err(MediaError::Closed);
    }
    let mid_str = inner.next_mid.to_string();
    inner.next_mid += 1;
    let mid = Mid::from(mid_str.as_str());
    let (total_bitrate, width, height) = match &source {
        SourceKind::Video(v) => (v.bitrate_bps, v.width, v.height),
        SourceKind::Audio(a) => (a.bitrate_bps, 0, 0),
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
    Ok(register(
        shared,
        inner,
        mid,
        mid_str,
        kind,
        source,
        layers,
        rtp_parameters,
    ))
}

/// One stream of a producer, as negotiated elsewhere (str0m's SDP API):
/// its SSRC and RTX SSRC.
pub(super) struct NegotiatedStream {
    pub(super) ssrc: Ssrc,
    pub(super) rtx: Option<Ssrc>,
}

/// Adds a producer for a MID whose send stream str0m already has (made by
/// an SDP negotiation): the synthetic source then writes on that stream.
/// `rtp_parameters` of the handle is `null` (there is no `produce` call).
pub(super) fn register_negotiated(
    shared: &Arc<Shared>,
    inner: &mut Inner,
    mid: Mid,
    kind: Kind,
    source: SourceKind,
    stream: NegotiatedStream,
) -> LocalProducer {
    let bitrate = match &source {
        SourceKind::Video(v) => v.bitrate_bps,
        SourceKind::Audio(a) => a.bitrate_bps,
    };
    let (width, height) = match &source {
        SourceKind::Video(v) => (v.width, v.height),
        SourceKind::Audio(_) => (0, 0),
    };
    let layer = Layer {
        ssrc: stream.ssrc,
        rid: None,
        seq: u64::from(*stream.ssrc & 0x3fff),
        counter: 0,
        bitrate,
        width,
        height,
        force_keyframe: false,
        stats: LayerStats {
            rid: None,
            ssrc: *stream.ssrc,
            rtx_ssrc: stream.rtx.map(|r| *r),
            ..Default::default()
        },
    };
    register(
        shared,
        inner,
        mid,
        mid.to_string(),
        kind,
        source,
        vec![layer],
        Value::Null,
    )
}

#[allow(clippy::too_many_arguments)]
fn register(
    shared: &Arc<Shared>,
    inner: &mut Inner,
    mid: Mid,
    mid_str: String,
    kind: Kind,
    source: SourceKind,
    layers: Vec<Layer>,
    rtp_parameters: Value,
) -> LocalProducer {
    let pt = match kind {
        Kind::Video => params::CHROMIUM_VP8,
        Kind::Audio => params::CHROMIUM_OPUS,
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
    LocalProducer {
        shared: shared.clone(),
        index,
        mid: mid_str,
        kind,
        rtp_parameters,
        keyframes,
    }
}

pub(super) fn producer_stats(p: &Producer) -> ProducerStats {
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

/// A local producer with its synthetic source (see [`MediaTransport::produce_video`](super::MediaTransport::produce_video)).
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

impl Inner {
    pub(super) fn tick_sources(&mut self, now: Instant) {
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
