//! One recorded track end to end: RTP packets in, a WebM/Matroska file out,
//! and the keyframe requests the SFU must send upstream.
//!
//! ```text
//! RTP ─▶ JitterBuffer ─▶ Depacketizer ─▶ keyframe gate ─▶ WebmWriter ─▶ sink
//!            │ loss            │ malformed        │
//!            └─────────────────┴──────────────────┴─▶ KeyframeRequest (video)
//! ```
//!
//! A video file must never hold a frame its decoder cannot decode, so after
//! any loss the recorder drops video frames until the next keyframe and asks
//! for one (again every [`RecorderConfig::keyframe_retry`] until it comes).
//! Audio (Opus) frames stand alone: a loss is only a gap.

use std::collections::VecDeque;
use std::io::{Seek, Write};
use std::time::{Duration, Instant};

use crate::Depacketizer;
use crate::depack::{Codec, DepacketizerStats, Frame, Kind};
use crate::error::{Error, Result};
use crate::jitter::{JitterBuffer, JitterConfig, JitterOutput, JitterStats, RtpPacket};
use crate::webm::{TrackInfo, WebmWriter};

/// How a [`TrackRecorder`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    pub codec: Codec,
    pub jitter: JitterConfig,
    /// When the whole recording started: the zero of the track's
    /// [`start_offset`](TrackRecorder::start_offset).
    pub epoch: Instant,
    /// Stop writing once the track is this long.
    pub max_duration: Option<Duration>,
    /// Stop writing before the file would grow past this many bytes.
    pub max_bytes: Option<u64>,
    /// How often to repeat a keyframe request that was not answered.
    pub keyframe_retry: Duration,
}

impl RecorderConfig {
    /// Defaults: 200 ms jitter buffer, no limits, keyframe retry every second.
    pub fn new(codec: Codec, epoch: Instant) -> Self {
        RecorderConfig {
            codec,
            jitter: JitterConfig::default(),
            epoch,
            max_duration: None,
            max_bytes: None,
            keyframe_retry: Duration::from_secs(1),
        }
    }
}

/// Which limit stopped a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Duration,
    Size,
}

/// What the caller must act on; take them with
/// [`poll_event`](TrackRecorder::poll_event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecorderEvent {
    /// Ask the track's sender for a keyframe (PLI upstream).
    KeyframeRequest,
    /// The file's header and first frame were written; the track starts
    /// `offset` after the recording's epoch (for the manifest).
    Started { offset: Duration },
    /// Packets were given up on.
    Lost { count: u64 },
    /// A limit was reached: nothing more is written; finish the track.
    LimitReached(Limit),
}

/// Counters of a [`TrackRecorder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub jitter: JitterStats,
    pub depacketizer: DepacketizerStats,
    /// Frames written to the file.
    pub frames_written: u64,
    /// Video frames dropped while waiting for a keyframe.
    pub frames_skipped: u64,
    pub keyframe_requests: u64,
}

/// The end of a track, from [`TrackRecorder::finish`].
pub enum Finished<W: Write> {
    /// No frame was ever written (no keyframe came): the sink is untouched,
    /// and the recording of this track failed.
    Empty(W),
    /// The file; call [`WebmWriter::finalize`] if the sink can seek, or
    /// [`WebmWriter::into_inner`] otherwise (the file plays either way).
    Written(WebmWriter<W>),
}

impl<W: Write> Finished<W> {
    /// Whether no frame was ever written.
    pub fn is_empty(&self) -> bool {
        matches!(self, Finished::Empty(_))
    }

    /// The sink, without finalizing (the file plays as it is).
    pub fn into_inner(self) -> Result<W> {
        match self {
            Finished::Empty(sink) => Ok(sink),
            Finished::Written(writer) => writer.into_inner(),
        }
    }
}

impl<W: Write + Seek> Finished<W> {
    /// Finalizes a written file (Cues, Duration, sizes) and returns the sink.
    pub fn finalize(self) -> Result<W> {
        match self {
            Finished::Empty(sink) => Ok(sink),
            Finished::Written(writer) => writer.finalize(),
        }
    }
}

/// Records one track; see the module documentation.
///
/// Sans-IO like the SFU: call [`push_rtp`](Self::push_rtp) for every packet
/// of the track, [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), drain
/// [`poll_event`](Self::poll_event) after either, and
/// [`finish`](Self::finish) at the end. Errors are only the sink's I/O
/// errors; malformed packets are counted and dropped.
pub struct TrackRecorder<W: Write> {
    config: RecorderConfig,
    jitter: JitterBuffer,
    depacketizer: Depacketizer,
    /// The sink until the first frame makes the header writable.
    sink: Option<W>,
    writer: Option<WebmWriter<W>>,
    need_keyframe: bool,
    last_request: Option<Instant>,
    events: VecDeque<RecorderEvent>,
    /// Maps RTP time to the file's milliseconds; set at the first frame.
    clock: Option<Clock>,
    start_offset: Option<Duration>,
    stopped: Option<Limit>,
    stats: RecorderStats,
}

impl<W: Write> TrackRecorder<W> {
    /// A recorder writing to `sink`, which stays untouched until the first
    /// decodable frame.
    pub fn new(config: RecorderConfig, sink: W) -> Self {
        TrackRecorder {
            jitter: JitterBuffer::new(config.jitter),
            depacketizer: Depacketizer::new(config.codec),
            config,
            sink: Some(sink),
            writer: None,
            // Video can only start at a keyframe.
            need_keyframe: config.codec.kind() == Kind::Video,
            last_request: None,
            events: VecDeque::new(),
            clock: None,
            start_offset: None,
            stopped: None,
            stats: RecorderStats::default(),
        }
    }

    pub fn codec(&self) -> Codec {
        self.config.codec
    }

    /// Takes one RTP packet of the track that arrived at `now`.
    pub fn push_rtp(&mut self, packet: RtpPacket, now: Instant) -> Result<()> {
        if self.stopped.is_some() {
            return Ok(());
        }
        self.jitter.push(packet, now);
        self.drive(now)
    }

    /// Gives up on what waited long enough and repeats keyframe requests.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.drive(now)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        let retry = match (self.need_keyframe, self.last_request) {
            (true, Some(last)) => Some(last + self.config.keyframe_retry),
            _ => None,
        };
        [self.jitter.poll_timeout(), retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<RecorderEvent> {
        self.events.pop_front()
    }

    /// Bytes of the file so far (0 before the first frame).
    pub fn bytes_written(&self) -> u64 {
        self.writer.as_ref().map_or(0, WebmWriter::bytes_written)
    }

    /// Length of the track written so far.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.writer.as_ref().map_or(0, WebmWriter::duration_ms))
    }

    /// When the track's first frame arrived, after the epoch.
    pub fn start_offset(&self) -> Option<Duration> {
        self.start_offset
    }

    /// The limit that stopped the track, if one did.
    pub fn stopped(&self) -> Option<Limit> {
        self.stopped
    }

    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            jitter: self.jitter.stats(),
            depacketizer: self.depacketizer.stats(),
            ..self.stats
        }
    }

    /// Flushes the sink, e.g. a `BufWriter` once per second so that a crash
    /// loses little.
    pub fn flush(&mut self) -> Result<()> {
        match (&mut self.writer, &mut self.sink) {
            (Some(writer), _) => writer.flush(),
            (None, Some(sink)) => Ok(sink.flush()?),
            (None, None) => Ok(()),
        }
    }

    /// Writes what is still held (giving up on missing packets) and hands
    /// the file back.
    pub fn finish(mut self) -> Result<Finished<W>> {
        while let Some(out) = self.jitter.flush() {
            self.on_output(out)?;
        }
        self.depacketizer.flush();
        while let Some(frame) = self.depacketizer.pop_frame() {
            self.on_frame(frame, None)?;
        }
        match (self.writer, self.sink) {
            (Some(writer), _) => Ok(Finished::Written(writer)),
            (None, Some(sink)) => Ok(Finished::Empty(sink)),
            (None, None) => Err(Error::Track("the sink failed earlier")),
        }
    }

    fn drive(&mut self, now: Instant) -> Result<()> {
        while let Some(out) = self.jitter.poll(now) {
            self.on_output(out)?;
        }
        let due = self
            .last_request
            .is_none_or(|last| now >= last + self.config.keyframe_retry);
        if self.need_keyframe && due && self.stopped.is_none() {
            self.last_request = Some(now);
            self.stats.keyframe_requests += 1;
            self.events.push_back(RecorderEvent::KeyframeRequest);
        }
        Ok(())
    }

    fn on_output(&mut self, out: JitterOutput) -> Result<()> {
        match out {
            JitterOutput::Packet { packet, arrived } => {
                if self.depacketizer.push(&packet).is_err() {
                    self.lost_video();
                }
                while let Some(frame) = self.depacketizer.pop_frame() {
                    self.on_frame(frame, Some(arrived))?;
                }
            }
            JitterOutput::Lost { count, .. } => {
                self.depacketizer.discard();
                self.events.push_back(RecorderEvent::Lost { count });
                self.lost_video();
            }
            JitterOutput::Restarted => {
                self.depacketizer.discard();
                self.lost_video();
            }
        }
        Ok(())
    }

    /// After a loss, video waits for a keyframe; a request goes out at the
    /// next [`drive`](Self::drive).
    fn lost_video(&mut self) {
        if self.config.codec.kind() == Kind::Video && !self.need_keyframe {
            self.need_keyframe = true;
            self.last_request = None;
        }
    }

    fn on_frame(&mut self, frame: Frame, arrived: Option<Instant>) -> Result<()> {
        if self.stopped.is_some() {
            return Ok(());
        }
        if self.need_keyframe && !frame.keyframe {
            self.stats.frames_skipped += 1;
            return Ok(());
        }
        if self.writer.is_none() {
            let Some(info) = self.track_info() else {
                // An H.264 IDR without SPS/PPS cannot start a file.
                self.stats.frames_skipped += 1;
                self.lost_video();
                return Ok(());
            };
            let Some(sink) = self.sink.take() else {
                return Ok(());
            };
            self.writer = Some(WebmWriter::new(sink, &info)?);
            let offset = arrived.map_or(Duration::ZERO, |t| {
                t.saturating_duration_since(self.config.epoch)
            });
            self.start_offset = Some(offset);
            self.events.push_back(RecorderEvent::Started { offset });
        }
        self.need_keyframe = false;
        let ms = self.timestamp_ms(frame.rtp_timestamp, arrived);
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let over_duration = self
            .config
            .max_duration
            .is_some_and(|max| ms > max.as_millis() as u64);
        // A block adds at most 28 bytes (cluster header, block header) to its data.
        let over_size = self
            .config
            .max_bytes
            .is_some_and(|max| writer.bytes_written() + frame.data.len() as u64 + 28 > max);
        if over_duration || over_size {
            let limit = if over_duration {
                Limit::Duration
            } else {
                Limit::Size
            };
            self.stopped = Some(limit);
            self.events.push_back(RecorderEvent::LimitReached(limit));
            return Ok(());
        }
        writer.write_frame(ms, frame.keyframe, &frame.data)?;
        self.stats.frames_written += 1;
        Ok(())
    }

    fn track_info(&self) -> Option<TrackInfo> {
        let d = &self.depacketizer;
        match self.config.codec {
            Codec::Opus => Some(TrackInfo::opus()),
            Codec::Vp8 => d.video_size().map(|(w, h)| TrackInfo::vp8(w, h)),
            Codec::H264 => {
                let avcc = d.h264_avcc()?;
                // The SPS parser knows common profiles; a size is mandatory
                // but players take the real one from the stream.
                let (w, h) = d.video_size().unwrap_or((0, 0));
                Some(TrackInfo::h264(w, h, avcc))
            }
        }
    }

    /// Milliseconds since the first written frame, from the RTP timestamp
    /// unwrapped to the value nearest the previous one. RTP time that jumps
    /// (the sender restarted its encoder) is not followed: a frame whose RTP
    /// time moved back more than a second, or ahead more than 5 s beyond its
    /// arrival, continues the file's clock by arrival time instead.
    fn timestamp_ms(&mut self, ts: u32, arrived: Option<Instant>) -> u64 {
        let rate = i64::from(self.config.codec.clock_rate());
        let clock = self.clock.get_or_insert(Clock {
            base_ts: i64::from(ts),
            base_ms: 0,
            last_ts: i64::from(ts),
            last_ms: 0,
            last_arrival: arrived,
        });
        let ts = clock.last_ts + i64::from(ts.wrapping_sub(clock.last_ts as u32) as i32);
        let mut ms = clock.base_ms as i64 + (ts - clock.base_ts) * 1000 / rate;
        if let (Some(now), Some(last)) = (arrived, clock.last_arrival) {
            let by_arrival = now.saturating_duration_since(last).as_millis() as i64;
            let by_rtp = ms - clock.last_ms as i64;
            if by_rtp < -MAX_RTP_BACKWARD_MS || by_rtp > by_arrival + MAX_RTP_AHEAD_MS {
                clock.base_ts = ts;
                clock.base_ms = clock.last_ms + by_arrival as u64;
                ms = clock.base_ms as i64;
            }
        }
        let ms = ms.max(0) as u64;
        clock.last_ts = ts;
        clock.last_ms = ms;
        clock.last_arrival = arrived.or(clock.last_arrival);
        ms
    }
}

/// See [`TrackRecorder::timestamp_ms`].
const MAX_RTP_BACKWARD_MS: i64 = 1_000;
const MAX_RTP_AHEAD_MS: i64 = 5_000;

/// The file's clock: RTP time `base_ts` is `base_ms` in the file.
struct Clock {
    base_ts: i64,
    base_ms: u64,
    last_ts: i64,
    last_ms: u64,
    last_arrival: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::repair::scan;

    const KEY: [u8; 12] = [
        0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00, 0xAA, 0xBB,
    ];
    const INTER: [u8; 4] = [0x51, 0x00, 0x00, 0xCC];

    /// Frame `n` (15 fps) as two packets: seq 2n and 2n+1.
    fn vp8_packets(n: u16, key: bool) -> [RtpPacket; 2] {
        let data: &[u8] = if key { &KEY } else { &INTER };
        let ts = u32::from(n) * 6000;
        let (head, tail) = data.split_at(2);
        let mut first = vec![0x10];
        first.extend_from_slice(head);
        let mut second = vec![0x00];
        second.extend_from_slice(tail);
        [
            RtpPacket {
                sequence_number: 2 * n,
                timestamp: ts,
                marker: false,
                payload: first,
            },
            RtpPacket {
                sequence_number: 2 * n + 1,
                timestamp: ts,
                marker: true,
                payload: second,
            },
        ]
    }

    fn events<W: Write>(r: &mut TrackRecorder<W>) -> Vec<RecorderEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config(epoch: Instant) -> RecorderConfig {
        RecorderConfig {
            jitter: JitterConfig {
                max_delay: ms(100),
                max_packets: 100,
            },
            ..RecorderConfig::new(Codec::Vp8, epoch)
        }
    }

    #[test]
    fn video_starts_at_a_keyframe_and_restarts_at_one_after_a_loss() {
        let t0 = Instant::now();
        let mut r = TrackRecorder::new(config(t0), Cursor::new(Vec::new()));
        // Frames 0..30, keyframes at 2 and 20; frame 8's second packet lost.
        for n in 0..30u16 {
            let now = t0 + ms(500 + u64::from(n) * 66);
            for p in vp8_packets(n, n == 2 || n == 20) {
                if p.sequence_number != 17 {
                    r.push_rtp(p, now).unwrap();
                }
            }
        }
        let ev = events(&mut r);
        assert_eq!(ev[0], RecorderEvent::KeyframeRequest, "{ev:?}");
        assert!(
            ev.contains(&RecorderEvent::Started {
                offset: ms(500 + 2 * 66)
            }),
            "{ev:?}"
        );
        assert!(ev.contains(&RecorderEvent::Lost { count: 1 }), "{ev:?}");
        assert_eq!(
            ev.iter()
                .filter(|e| **e == RecorderEvent::KeyframeRequest)
                .count(),
            2,
            "{ev:?}"
        );
        assert_eq!(r.start_offset(), Some(ms(632)));
        let stats = r.stats();
        // Written: 2..=7 and 20..=29 (the last ones once finished).
        let Finished::Written(writer) = r.finish().unwrap() else {
            panic!("nothing written")
        };
        let file = writer.into_inner().unwrap().into_inner();
        let report = scan(&mut Cursor::new(&file)).unwrap();
        assert_eq!(report.blocks, 6 + 10);
        // 27 frames of 66.7 ms after the first keyframe.
        assert_eq!(report.duration_ms, 1800);
        assert_eq!(stats.frames_skipped, 2 + 11);
        assert_eq!(stats.keyframe_requests, 2);
    }

    #[test]
    fn unanswered_keyframe_requests_are_repeated() {
        let t0 = Instant::now();
        let mut r = TrackRecorder::new(config(t0), Vec::new());
        r.push_rtp(vp8_packets(0, false)[0].clone(), t0).unwrap();
        assert_eq!(events(&mut r), [RecorderEvent::KeyframeRequest]);
        assert_eq!(r.poll_timeout(), Some(t0 + ms(100)));
        r.handle_timeout(t0 + ms(100)).unwrap();
        assert!(events(&mut r).is_empty());
        assert_eq!(r.poll_timeout(), Some(t0 + ms(1000)));
        r.handle_timeout(t0 + ms(1000)).unwrap();
        assert_eq!(events(&mut r), [RecorderEvent::KeyframeRequest]);
        assert!(matches!(r.finish().unwrap(), Finished::Empty(sink) if sink.is_empty()));
    }

    #[test]
    fn size_and_duration_limits_stop_the_track() {
        let t0 = Instant::now();
        let cases = [
            (
                RecorderConfig {
                    max_bytes: Some(600),
                    ..config(t0)
                },
                Limit::Size,
            ),
            (
                RecorderConfig {
                    max_duration: Some(ms(1000)),
                    ..config(t0)
                },
                Limit::Duration,
            ),
        ];
        for (config, limit) in cases {
            let mut r = TrackRecorder::new(config, Vec::new());
            for n in 0..60u16 {
                for p in vp8_packets(n, n % 15 == 0) {
                    r.push_rtp(p, t0 + ms(u64::from(n) * 66)).unwrap();
                }
            }
            let ev = events(&mut r);
            assert!(ev.contains(&RecorderEvent::LimitReached(limit)), "{ev:?}");
            assert_eq!(r.stopped(), Some(limit));
            match limit {
                Limit::Size => assert!(
                    r.bytes_written() <= 600 && r.bytes_written() > 500,
                    "{}",
                    r.bytes_written()
                ),
                // The frame at 1000 ms is the last one, 67 ms after the one before.
                Limit::Duration => assert_eq!(r.duration(), ms(1067)),
            }
            let Finished::Written(w) = r.finish().unwrap() else {
                panic!()
            };
            assert!(w.bytes_written() <= 600 || limit == Limit::Duration);
        }
    }

    #[test]
    fn opus_gaps_are_only_gaps_and_timestamps_wrap() {
        let t0 = Instant::now();
        let mut r = TrackRecorder::new(
            RecorderConfig::new(Codec::Opus, t0),
            Cursor::new(Vec::new()),
        );
        let start = u32::MAX - 960 * 10;
        for n in 0..100u16 {
            if n == 50 {
                continue;
            }
            let packet = RtpPacket {
                sequence_number: n.wrapping_add(65500),
                timestamp: start.wrapping_add(u32::from(n) * 960),
                marker: n == 0,
                payload: vec![0xFC, n as u8],
            };
            r.push_rtp(packet, t0 + ms(u64::from(n) * 20)).unwrap();
        }
        r.handle_timeout(t0 + ms(5000)).unwrap();
        let ev = events(&mut r);
        assert!(!ev.contains(&RecorderEvent::KeyframeRequest));
        assert!(ev.contains(&RecorderEvent::Lost { count: 1 }));
        let w = match r.finish().unwrap() {
            Finished::Written(w) => w,
            Finished::Empty(_) => panic!("nothing written"),
        };
        assert_eq!((w.frames(), w.duration_ms()), (99, 2000));
    }

    #[test]
    fn rtp_time_jumps_are_not_followed() {
        let t0 = Instant::now();
        let mut r = TrackRecorder::new(config(t0), Cursor::new(Vec::new()));
        for n in 0..40u16 {
            let mut packets = vp8_packets(n, n == 0 || n == 20);
            for p in &mut packets {
                // The encoder restarts at frame 20 with a random clock.
                if n >= 20 {
                    p.timestamp = p.timestamp.wrapping_add(2_000_000_000);
                }
            }
            for p in packets {
                r.push_rtp(p, t0 + ms(u64::from(n) * 66)).unwrap();
            }
        }
        let Finished::Written(w) = r.finish().unwrap() else {
            panic!()
        };
        // 40 frames, 66.7 ms apart by RTP and 66 ms by arrival.
        assert!(
            (2580..=2680).contains(&w.duration_ms()),
            "{}",
            w.duration_ms()
        );
    }

    #[test]
    fn random_packets_never_panic() {
        let t0 = Instant::now();
        for codec in [Codec::Vp8, Codec::H264, Codec::Opus] {
            let mut r = TrackRecorder::new(RecorderConfig::new(codec, t0), Vec::new());
            let mut x: u32 = 5;
            let mut next = || {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                x >> 8
            };
            for i in 0..3000u64 {
                let len = (next() % 40) as usize;
                let payload = (0..len).map(|_| next() as u8).collect();
                let packet = RtpPacket {
                    sequence_number: (i as u16).wrapping_add((next() % 5) as u16),
                    timestamp: (i as u32 / 3) * 3000 + next() % 2,
                    marker: next() % 3 == 0,
                    payload,
                };
                r.push_rtp(packet, t0 + ms(i * 5)).unwrap();
                while r.poll_event().is_some() {}
            }
            r.finish().unwrap();
        }
    }
}
