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
use crate::clock::MediaClock;
use crate::depack::{Codec, DepacketizerStats, Frame, Kind};
use crate::error::{Error, Result};
use crate::jitter::{JitterBuffer, JitterConfig, JitterOutput, JitterStats, RtpPacket};
use crate::webm::{TrackInfo, WebmWriter};

/// Most bytes a frame adds besides its data: a new Cluster's header (12)
/// and Timecode (up to 10), the SimpleBlock's ID, size and header (up to 13).
const MAX_BLOCK_OVERHEAD: u64 = 35;

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
    /// Stop writing before the file would grow past this many bytes
    /// (finalize then adds the Cues, about 20 bytes per Cluster).
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
/// errors; malformed packets are counted and dropped. After an I/O error
/// (disk full) the file may end in a partial block: drop the recorder
/// without finalizing and [`repair`](crate::repair) the file.
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
    clock: Option<MediaClock>,
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
        let rate = self.config.codec.clock_rate();
        let ms = self
            .clock
            .get_or_insert_with(|| MediaClock::new(rate, frame.rtp_timestamp, arrived))
            .ms(frame.rtp_timestamp, arrived);
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let over_duration = self
            .config
            .max_duration
            .is_some_and(|max| ms > max.as_millis() as u64);
        let over_size = self.config.max_bytes.is_some_and(|max| {
            writer.bytes_written() + frame.data.len() as u64 + MAX_BLOCK_OVERHEAD > max
        });
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
}

#[cfg(test)]
mod tests;
