//! From ordered RTP packets to whole codec frames: one [`Depacketizer`] per
//! track, fed by the [`crate::JitterBuffer`]. A frame ends at the marker bit
//! (video) or at every packet (Opus), and also when the RTP timestamp
//! changes, in case the marked packet was the one lost.
//!
//! A frame being built is capped at [`MAX_PARTIAL_BYTES`] and
//! [`MAX_PARTIAL_PACKETS`]: a publisher that sends packets of one timestamp
//! without ever setting the marker would otherwise grow it without bound.
//! Past either cap the frame is dropped (its bytes freed, counted in
//! [`DepacketizerStats::oversized_frames`]) and the rest of its packets are
//! ignored until the timestamp changes; [`Depacketizer::push`] reports the
//! drop as an error, so the recorder waits for a keyframe.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::h264::{self, H264Depacketizer};
use crate::jitter::RtpPacket;
use crate::vp8;

/// Codecs a track can be recorded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Video,
}

impl Codec {
    pub fn kind(self) -> Kind {
        match self {
            Codec::Opus => Kind::Audio,
            Codec::Vp8 | Codec::H264 => Kind::Video,
        }
    }

    /// RTP clock rate (RFC 7587, 7741, 6184).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Vp8 | Codec::H264 => 90_000,
        }
    }

    /// The codec's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "Opus",
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
        }
    }

    /// Matroska CodecID.
    pub fn matroska_id(self) -> &'static str {
        match self {
            Codec::Opus => "A_OPUS",
            Codec::Vp8 => "V_VP8",
            Codec::H264 => "V_MPEG4/ISO/AVC",
        }
    }

    /// The codec from an RTP MIME type such as `"video/VP8"`, case-insensitive.
    pub fn from_mime_type(mime: &str) -> Option<Codec> {
        let (_, name) = mime.split_once('/')?;
        [Codec::Opus, Codec::Vp8, Codec::H264]
            .into_iter()
            .find(|c| format!("{c:?}").eq_ignore_ascii_case(name))
    }

    /// File extension for a one-track file of this codec: WebM only allows
    /// VP8/VP9/AV1/Opus/Vorbis, so H.264 goes in plain Matroska.
    pub fn file_extension(self) -> &'static str {
        match self {
            Codec::H264 => "mkv",
            Codec::Opus | Codec::Vp8 => "webm",
        }
    }
}

/// One whole encoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// RTP timestamp shared by the frame's packets.
    pub rtp_timestamp: u32,
    /// Decodable on its own (VP8 keyframe, H.264 IDR; every Opus frame).
    pub keyframe: bool,
    /// VP8 frame, Opus packet, or H.264 access unit in AVCC form.
    pub data: Vec<u8>,
}

/// Most bytes a frame being built may hold (its data plus an H.264 NAL
/// being reassembled). Far above any real frame: a 4K keyframe of a
/// WebRTC encoder is a few hundred kilobytes.
pub const MAX_PARTIAL_BYTES: usize = 4 << 20;
/// Most packets one frame may take: 4 MiB in full-size packets is about
/// 3,500.
pub const MAX_PARTIAL_PACKETS: u32 = 8192;

struct Partial {
    timestamp: u32,
    data: Vec<u8>,
    packets: u32,
    /// A packet was malformed or the frame's start was missing: drop it.
    broken: bool,
    /// Over a cap: already dropped and counted; the rest of its packets
    /// are ignored.
    oversized: bool,
}

/// Counters of a [`Depacketizer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DepacketizerStats {
    /// Whole frames handed out.
    pub frames: u64,
    /// Payloads the codec's RTP format does not allow.
    pub malformed_packets: u64,
    /// Frames dropped because a packet was malformed or missing.
    pub broken_frames: u64,
    /// Frames dropped because they grew past [`MAX_PARTIAL_BYTES`] or
    /// [`MAX_PARTIAL_PACKETS`].
    pub oversized_frames: u64,
}

/// Builds frames of one codec from its RTP packets in sequence order; see
/// the module documentation. Feed with [`push`](Self::push), take frames
/// with [`pop_frame`](Self::pop_frame), and call [`discard`](Self::discard)
/// when packets were lost so that the frame they belonged to is dropped.
pub struct Depacketizer {
    codec: Codec,
    h264: H264Depacketizer,
    partial: Option<Partial>,
    ready: VecDeque<Frame>,
    /// Size of the latest VP8 keyframe.
    vp8_size: Option<(u32, u32)>,
    stats: DepacketizerStats,
}

impl Depacketizer {
    pub fn new(codec: Codec) -> Self {
        Depacketizer {
            codec,
            h264: H264Depacketizer::default(),
            partial: None,
            ready: VecDeque::new(),
            vp8_size: None,
            stats: DepacketizerStats::default(),
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> DepacketizerStats {
        self.stats
    }

    /// Takes the next packet in sequence order. A malformed payload returns
    /// the error (to count or log) and drops its frame; the depacketizer
    /// stays usable.
    pub fn push(&mut self, packet: &RtpPacket) -> Result<()> {
        // Padding-only packets (bandwidth probes) only fill a sequence number.
        if packet.payload.is_empty() {
            return Ok(());
        }
        if self
            .partial
            .as_ref()
            .is_some_and(|p| p.timestamp != packet.timestamp)
        {
            self.complete();
        }
        let first = self.partial.is_none();
        let partial = self.partial.get_or_insert_with(|| Partial {
            timestamp: packet.timestamp,
            data: Vec::new(),
            packets: 0,
            broken: false,
            oversized: false,
        });
        if partial.oversized {
            if packet.marker {
                self.partial = None;
            }
            return Ok(());
        }
        partial.packets += 1;
        let pushed = match self.codec {
            Codec::Opus => {
                partial.data.extend_from_slice(&packet.payload);
                Ok(())
            }
            Codec::Vp8 => vp8::parse(&packet.payload).map(|p| {
                // A frame whose first packet is not its start lost its head.
                if first && !p.starts_frame {
                    partial.broken = true;
                }
                partial.data.extend_from_slice(p.data);
            }),
            Codec::H264 => {
                if first {
                    self.h264.reset();
                    // Its first packets may have been lost just before it.
                    if !h264::starts_access_unit(&packet.payload) {
                        partial.broken = true;
                    }
                }
                self.h264.push(&packet.payload, &mut partial.data)
            }
        };
        if pushed.is_err() {
            self.stats.malformed_packets += 1;
            partial.broken = true;
        }
        let buffered = partial.data.len() + self.h264.buffered_bytes();
        if buffered > MAX_PARTIAL_BYTES || partial.packets > MAX_PARTIAL_PACKETS {
            self.stats.oversized_frames += 1;
            self.h264.reset();
            // Frees the bytes; what is left only absorbs the frame's other
            // packets.
            partial.data = Vec::new();
            partial.oversized = true;
            if packet.marker {
                self.partial = None;
            }
            return Err(Error::Depacketize {
                codec: self.codec.name(),
                reason: "frame over the size cap, dropped",
            });
        }
        if packet.marker || self.codec == Codec::Opus {
            self.complete();
        }
        pushed
    }

    /// Bytes held for the frame being built: at most
    /// [`MAX_PARTIAL_BYTES`] plus one packet.
    pub fn buffered_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.data.len()) + self.h264.buffered_bytes()
    }

    /// Drops the frame being built: its missing packets were given up.
    pub fn discard(&mut self) {
        if self.partial.take().is_some_and(|p| !p.oversized) {
            self.stats.broken_frames += 1;
        }
        self.h264.reset();
    }

    /// Hands out the frame being built, if whole; at the end of a track.
    pub fn flush(&mut self) {
        self.complete();
    }

    /// The next whole frame.
    pub fn pop_frame(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }

    /// Picture size of the latest keyframe (VP8) or SPS (H.264).
    pub fn video_size(&self) -> Option<(u32, u32)> {
        match self.codec {
            Codec::Vp8 => self.vp8_size,
            Codec::H264 => self.h264.size(),
            Codec::Opus => None,
        }
    }

    /// The H.264 `avcC` built from the latest SPS and PPS.
    pub fn h264_avcc(&self) -> Option<Vec<u8>> {
        self.h264.avcc()
    }

    fn complete(&mut self) {
        let Some(partial) = self.partial.take() else {
            return;
        };
        if partial.oversized {
            // Counted when it went over.
            return;
        }
        let open_fragment = self.codec == Codec::H264 && self.h264.in_fragment();
        if partial.broken || partial.data.is_empty() || open_fragment {
            self.stats.broken_frames += 1;
            self.h264.reset();
            return;
        }
        let keyframe = match self.codec {
            Codec::Opus => true,
            Codec::Vp8 => {
                let size = vp8::keyframe_size(&partial.data);
                if size.is_some() {
                    self.vp8_size = size;
                }
                size.is_some()
            }
            Codec::H264 => self.h264.has_idr(),
        };
        self.h264.reset();
        self.stats.frames += 1;
        self.ready.push_back(Frame {
            rtp_timestamp: partial.timestamp,
            keyframe,
            data: partial.data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        RtpPacket {
            sequence_number: seq,
            timestamp: ts,
            marker,
            payload: payload.to_vec(),
        }
    }

    const VP8_KEY: [u8; 10] = [0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00];

    #[test]
    fn vp8_frames_span_packets_and_end_at_the_marker() {
        let mut d = Depacketizer::new(Codec::Vp8);
        let mut first = vec![0x10];
        first.extend_from_slice(&VP8_KEY[..6]);
        let mut second = vec![0x00];
        second.extend_from_slice(&VP8_KEY[6..]);
        d.push(&rtp(1, 900, false, &first)).unwrap();
        assert!(d.pop_frame().is_none());
        d.push(&rtp(2, 900, true, &second)).unwrap();
        let frame = d.pop_frame().unwrap();
        assert_eq!((frame.rtp_timestamp, frame.keyframe), (900, true));
        assert_eq!(frame.data, VP8_KEY);
        assert_eq!(d.video_size(), Some((320, 240)));
        // An inter frame in one packet.
        d.push(&rtp(3, 3900, true, &[0x10, 0x51, 0x00, 0x00]))
            .unwrap();
        assert!(!d.pop_frame().unwrap().keyframe);
    }

    #[test]
    fn a_timestamp_change_ends_a_frame_whose_marker_was_lost() {
        let mut d = Depacketizer::new(Codec::Vp8);
        d.push(&rtp(1, 900, false, &[0x10, 0x51, 0x00])).unwrap();
        d.push(&rtp(2, 1800, true, &[0x10, 0x51, 0x01])).unwrap();
        assert_eq!(d.pop_frame().unwrap().rtp_timestamp, 900);
        assert_eq!(d.pop_frame().unwrap().rtp_timestamp, 1800);
    }

    #[test]
    fn a_frame_without_its_first_packet_is_dropped() {
        let mut d = Depacketizer::new(Codec::Vp8);
        d.push(&rtp(2, 900, true, &[0x00, 0x51, 0x00])).unwrap();
        assert!(d.pop_frame().is_none());
        assert_eq!(d.stats().broken_frames, 1);
        // Discard after a loss drops the frame in progress.
        d.push(&rtp(3, 1800, false, &[0x10, 0x51, 0x00])).unwrap();
        d.discard();
        d.push(&rtp(5, 1800, true, &[0x00, 0x51, 0x00])).unwrap();
        assert!(d.pop_frame().is_none());
    }

    #[test]
    fn h264_access_units_with_fu_a() {
        let mut d = Depacketizer::new(Codec::H264);
        d.push(&rtp(1, 0, false, &[0x7C, 0x85, 0xAA])).unwrap();
        d.push(&rtp(2, 0, true, &[0x7C, 0x45, 0xBB])).unwrap();
        let f = d.pop_frame().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, [0, 0, 0, 3, 0x65, 0xAA, 0xBB]);
        // A frame that starts with a later slice lost its first one.
        d.push(&rtp(3, 1000, true, &[0x41, 0x40, 0x01])).unwrap();
        assert!(d.pop_frame().is_none());
        // A fragment whose end never came makes the frame broken.
        d.push(&rtp(4, 3000, false, &[0x7C, 0x81, 0xAA])).unwrap();
        d.push(&rtp(5, 6000, true, &[0x41, 0x81])).unwrap();
        let f = d.pop_frame().unwrap();
        assert_eq!((f.rtp_timestamp, f.keyframe), (6000, false));
        assert!(d.pop_frame().is_none());
    }

    #[test]
    fn padding_only_packets_are_ignored() {
        let mut d = Depacketizer::new(Codec::Vp8);
        d.push(&rtp(1, 900, false, &[0x10, 0x51, 0x00])).unwrap();
        d.push(&rtp(2, 900, false, &[])).unwrap();
        d.push(&rtp(3, 900, true, &[0x00, 0x02])).unwrap();
        d.push(&rtp(4, 900, false, &[])).unwrap();
        assert_eq!(d.pop_frame().unwrap().data, [0x51, 0x00, 0x02]);
        assert!(d.pop_frame().is_none());
        assert_eq!(
            d.stats(),
            DepacketizerStats {
                frames: 1,
                ..Default::default()
            }
        );
    }

    /// Markerless packets of one timestamp, `count` of `size` bytes: the
    /// frame they build is dropped at the cap and memory stays bounded.
    fn flood(d: &mut Depacketizer, first: &[u8], next: &[u8], count: u16) -> u64 {
        let mut errors = 0;
        for seq in 0..count {
            let payload = if seq == 0 { first } else { next };
            if d.push(&rtp(seq, 900, false, payload)).is_err() {
                errors += 1;
            }
            assert!(
                d.buffered_bytes() <= MAX_PARTIAL_BYTES + payload.len(),
                "{} bytes held after {seq} packets",
                d.buffered_bytes()
            );
            assert!(d.pop_frame().is_none());
        }
        errors
    }

    #[test]
    fn a_frame_without_end_is_capped_and_later_frames_come_out() {
        // 16 MiB of VP8 in 1200-byte packets of one timestamp, no marker.
        let mut d = Depacketizer::new(Codec::Vp8);
        let mut start = vec![0x10];
        start.extend_from_slice(&[0xAB; 1199]);
        let mut middle = vec![0x00];
        middle.extend_from_slice(&[0xCD; 1199]);
        let errors = flood(&mut d, &start, &middle, 14_000);
        assert_eq!(errors, 1, "the drop is reported once");
        assert_eq!(d.stats().oversized_frames, 1);
        assert_eq!(d.buffered_bytes(), 0, "the dropped frame's bytes are freed");
        // The next frames come out whole.
        d.push(&rtp(20_000, 3900, true, &[0x10, 0x51, 0x00]))
            .unwrap();
        d.push(&rtp(20_001, 6900, true, &[0x10, 0x51, 0x01]))
            .unwrap();
        assert_eq!(d.pop_frame().unwrap().rtp_timestamp, 3900);
        assert_eq!(d.pop_frame().unwrap().rtp_timestamp, 6900);
        assert_eq!(d.stats().frames, 2);
        assert_eq!(d.stats().broken_frames, 0, "counted once, as oversized");
    }

    #[test]
    fn an_endless_h264_fragment_is_capped() {
        // A FU-A that starts and never ends grows the NAL being rebuilt.
        let mut d = Depacketizer::new(Codec::H264);
        let mut start = vec![0x7C, 0x85, 0x88];
        start.extend_from_slice(&[0xAA; 1000]);
        let mut middle = vec![0x7C, 0x05];
        middle.extend_from_slice(&[0xBB; 1000]);
        assert_eq!(flood(&mut d, &start, &middle, 6000), 1);
        assert_eq!(d.stats().oversized_frames, 1);
        d.push(&rtp(7000, 3000, true, &[0x65, 0x88, 0x84])).unwrap();
        let f = d.pop_frame().unwrap();
        assert_eq!((f.rtp_timestamp, f.keyframe), (3000, true));
    }

    #[test]
    fn a_frame_of_too_many_packets_is_dropped() {
        let mut d = Depacketizer::new(Codec::Vp8);
        let count = u16::try_from(MAX_PARTIAL_PACKETS + 100).unwrap();
        assert_eq!(flood(&mut d, &[0x10, 0x51], &[0x00, 0x00], count), 1);
        assert_eq!(d.stats().oversized_frames, 1);
        // Its marker ends it (the packet goes with it); the next frame
        // comes out.
        d.push(&rtp(9000, 900, true, &[0x00, 0x00])).unwrap();
        assert!(d.pop_frame().is_none());
        d.push(&rtp(9001, 1800, true, &[0x10, 0x51, 0x02])).unwrap();
        assert_eq!(d.pop_frame().unwrap().data, [0x51, 0x02]);
    }

    #[test]
    fn opus_is_one_frame_per_packet() {
        let mut d = Depacketizer::new(Codec::Opus);
        d.push(&rtp(1, 0, false, &[0xFC, 1])).unwrap();
        d.push(&rtp(2, 960, false, &[0xFC, 2])).unwrap();
        assert_eq!(d.pop_frame().unwrap().data, [0xFC, 1]);
        assert_eq!(d.pop_frame().unwrap().rtp_timestamp, 960);
    }

    #[test]
    fn mime_types() {
        assert_eq!(Codec::from_mime_type("video/vp8"), Some(Codec::Vp8));
        assert_eq!(Codec::from_mime_type("video/H264"), Some(Codec::H264));
        assert_eq!(Codec::from_mime_type("audio/opus"), Some(Codec::Opus));
        assert_eq!(Codec::from_mime_type("video/VP9"), None);
    }
}
