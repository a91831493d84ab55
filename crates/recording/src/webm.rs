//! A one-track WebM/Matroska writer that is crash-safe by construction.
//!
//! The Segment and every Cluster are written with the "unknown size", so a
//! file cut anywhere is a valid live stream up to its last whole block: no
//! index or size has to be patched for it to play. Blocks are SimpleBlocks,
//! each written with one `write_all`. When the sink can seek,
//! [`WebmWriter::finalize`] adds what makes the file pleasant to seek in:
//! Cues, a SeekHead, the Duration, and the Segment and Cluster sizes, in
//! room reserved for them at the start.

use std::io::{Seek, Write};

use crate::depack::{Codec, Kind};
use crate::ebml::{self, id};
use crate::error::{Error, Result};
use crate::index::{Cluster, DURATION_ROOM, Layout, SEEK_HEAD_ROOM, write_index};

/// Longest span of one Cluster. Block timecodes are signed 16-bit offsets
/// from their Cluster's (±32.7 s), and players seek by Cluster, so a new one
/// starts at least this often even without a keyframe.
pub const MAX_CLUSTER_MS: u64 = 5_000;

/// Shortest span of a Cluster that a video keyframe ends. A sender asked
/// for many keyframes (every PLI of every subscriber) must not make a Cluster,
/// and a Cue kept in memory until finalize, per frame.
pub const MIN_KEYFRAME_CLUSTER_MS: u64 = 500;

/// What goes in the track's TrackEntry.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackInfo {
    pub codec: Codec,
    /// PixelWidth/PixelHeight of a video track.
    pub video_size: Option<(u32, u32)>,
    /// OpusHead for Opus, avcC for H.264, none for VP8.
    pub codec_private: Option<Vec<u8>>,
    /// Audio channels (Opus in WebRTC is always signalled as 2).
    pub channels: u8,
}

impl TrackInfo {
    pub fn opus() -> Self {
        TrackInfo {
            codec: Codec::Opus,
            video_size: None,
            codec_private: Some(opus_head(2)),
            channels: 2,
        }
    }

    pub fn vp8(width: u32, height: u32) -> Self {
        TrackInfo {
            codec: Codec::Vp8,
            video_size: Some((width, height)),
            codec_private: None,
            channels: 0,
        }
    }

    pub fn h264(width: u32, height: u32, avcc: Vec<u8>) -> Self {
        TrackInfo {
            codec: Codec::H264,
            video_size: Some((width, height)),
            codec_private: Some(avcc),
            channels: 0,
        }
    }
}

/// The OpusHead (RFC 7845 5.1) Matroska wants as A_OPUS CodecPrivate. The
/// pre-skip is 0: a recording joins an encoder that is already running.
pub fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family: mono or stereo
    head
}

/// Writes one track's frames as WebM (VP8, Opus) or Matroska (H.264) to any
/// [`Write`]; see the module documentation.
pub struct WebmWriter<W: Write> {
    out: W,
    kind: Kind,
    written: u64,
    /// Offset of the Segment's payload, which positions are relative to.
    segment_data: u64,
    seek_head_at: u64,
    duration_at: u64,
    info_at: u64,
    tracks_at: u64,
    /// Every Cluster so far (for Cues and size patching).
    clusters: Vec<Cluster>,
    last_ms: Option<u64>,
    /// Gap between the last two frames, the best guess of the last one's
    /// duration.
    last_step_ms: u64,
    blocks: u64,
}

impl<W: Write> WebmWriter<W> {
    /// Writes the headers (EBML header, Segment start, Info, Tracks) and
    /// returns a writer for the frames. `out` should be empty: positions are
    /// counted from the first byte written here.
    pub fn new(mut out: W, track: &TrackInfo) -> Result<Self> {
        let kind = track.codec.kind();
        if kind == Kind::Video && track.video_size.is_none() {
            return Err(Error::Track("video track without a picture size"));
        }
        if track.codec == Codec::H264 && track.codec_private.is_none() {
            return Err(Error::Track("H.264 track without SPS/PPS"));
        }
        let mut head = Vec::with_capacity(512);
        let mut body = Vec::new();
        ebml::uint(&mut body, id::EBML_VERSION, 1);
        ebml::uint(&mut body, id::EBML_READ_VERSION, 1);
        ebml::uint(&mut body, id::EBML_MAX_ID_LENGTH, 4);
        ebml::uint(&mut body, id::EBML_MAX_SIZE_LENGTH, 8);
        let doc_type = if track.codec == Codec::H264 {
            "matroska"
        } else {
            "webm"
        };
        ebml::bytes(&mut body, id::DOC_TYPE, doc_type.as_bytes());
        ebml::uint(&mut body, id::DOC_TYPE_VERSION, 4);
        ebml::uint(&mut body, id::DOC_TYPE_READ_VERSION, 2);
        ebml::master(&mut head, id::EBML, &body);

        ebml::write_id(&mut head, id::SEGMENT);
        head.extend_from_slice(&ebml::UNKNOWN_SIZE);
        let segment_data = head.len() as u64;
        let seek_head_at = head.len() as u64;
        ebml::void(&mut head, SEEK_HEAD_ROOM as usize);

        let info_at = head.len() as u64;
        body.clear();
        ebml::uint(&mut body, id::TIMECODE_SCALE, 1_000_000);
        ebml::bytes(&mut body, id::MUXING_APP, b"vtp");
        ebml::bytes(&mut body, id::WRITING_APP, b"vtp");
        // The Duration is unknown until the end: reserve its room with a
        // Void, so that a crashed file has no Duration rather than a wrong one.
        let duration_at = info_at
            + 4
            + ebml::size_len(body.len() as u64 + DURATION_ROOM) as u64
            + body.len() as u64;
        ebml::void(&mut body, DURATION_ROOM as usize);
        ebml::master(&mut head, id::INFO, &body);

        let tracks_at = head.len() as u64;
        let mut entry = Vec::new();
        ebml::uint(&mut entry, id::TRACK_NUMBER, 1);
        ebml::uint(&mut entry, id::TRACK_UID, 1);
        ebml::uint(
            &mut entry,
            id::TRACK_TYPE,
            if kind == Kind::Video { 1 } else { 2 },
        );
        ebml::uint(&mut entry, id::FLAG_LACING, 0);
        ebml::bytes(&mut entry, id::LANGUAGE, b"und");
        ebml::bytes(
            &mut entry,
            id::CODEC_ID,
            track.codec.matroska_id().as_bytes(),
        );
        if let Some(private) = &track.codec_private {
            ebml::bytes(&mut entry, id::CODEC_PRIVATE, private);
        }
        match (kind, track.video_size) {
            (Kind::Video, Some((width, height))) => {
                let mut video = Vec::new();
                ebml::uint(&mut video, id::PIXEL_WIDTH, u64::from(width));
                ebml::uint(&mut video, id::PIXEL_HEIGHT, u64::from(height));
                ebml::master(&mut entry, id::VIDEO, &video);
            }
            _ => {
                // Opus decoders need 80 ms of pre-roll after a seek.
                ebml::uint(&mut entry, id::SEEK_PRE_ROLL, 80_000_000);
                let mut audio = Vec::new();
                ebml::float(&mut audio, id::SAMPLING_FREQUENCY, 48_000.0);
                ebml::uint(&mut audio, id::CHANNELS, u64::from(track.channels.max(1)));
                ebml::master(&mut entry, id::AUDIO, &audio);
            }
        }
        body.clear();
        ebml::master(&mut body, id::TRACK_ENTRY, &entry);
        ebml::master(&mut head, id::TRACKS, &body);

        out.write_all(&head)?;
        Ok(WebmWriter {
            out,
            kind,
            written: head.len() as u64,
            segment_data,
            seek_head_at,
            duration_at,
            info_at,
            tracks_at,
            clusters: Vec::new(),
            last_ms: None,
            last_step_ms: 0,
            blocks: 0,
        })
    }

    /// Appends a frame at `timestamp_ms` from the start of the track.
    /// Timestamps going backwards are clamped to the previous one (Matroska
    /// players expect them non-decreasing in a track without B-frames).
    /// After an error the file may end in a partial block: stop writing, do
    /// not finalize, and [`repair`](crate::repair) it.
    pub fn write_frame(&mut self, timestamp_ms: u64, keyframe: bool, data: &[u8]) -> Result<()> {
        let ms = timestamp_ms.max(self.last_ms.unwrap_or(0));
        let new_cluster = match self.clusters.last() {
            None => true,
            Some(cluster) => {
                let span = ms - cluster.timecode;
                // Video clusters start at keyframes so that each is a seek
                // point; audio (all "keyframes") only by time.
                span >= MAX_CLUSTER_MS
                    || (keyframe && self.kind == Kind::Video && span >= MIN_KEYFRAME_CLUSTER_MS)
            }
        };
        let mut buf = Vec::with_capacity(data.len() + 32);
        if new_cluster {
            self.clusters.push(Cluster {
                offset: self.written,
                timecode: ms,
                sizable: true,
            });
            ebml::write_id(&mut buf, id::CLUSTER);
            buf.extend_from_slice(&ebml::UNKNOWN_SIZE);
            ebml::uint(&mut buf, id::TIMECODE, ms);
        }
        let cluster_ms = self.clusters.last().map_or(ms, |c| c.timecode);
        // MAX_CLUSTER_MS keeps this well inside i16.
        let relative = (ms - cluster_ms) as i16;
        ebml::write_id(&mut buf, id::SIMPLE_BLOCK);
        ebml::write_size(&mut buf, data.len() as u64 + 4);
        buf.push(0x81); // track number 1 as a VINT
        buf.extend_from_slice(&relative.to_be_bytes());
        buf.push(if keyframe { 0x80 } else { 0x00 });
        buf.extend_from_slice(data);
        self.out.write_all(&buf)?;
        self.written += buf.len() as u64;
        if let Some(last) = self.last_ms {
            self.last_step_ms = ms - last;
        }
        self.last_ms = Some(ms);
        self.blocks += 1;
        Ok(())
    }

    /// Bytes written to the sink so far (for size limits).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Duration of what was written: last timestamp plus the last frame's
    /// estimated length.
    pub fn duration_ms(&self) -> u64 {
        self.last_ms.map_or(0, |last| last + self.last_step_ms)
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.blocks
    }

    /// Flushes the sink (for example a `BufWriter` around a file).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Ends without finalizing, for sinks that cannot seek: the file is
    /// complete as it is, only without Cues and Duration.
    pub fn into_inner(mut self) -> Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Seek> WebmWriter<W> {
    /// Appends Cues and patches, in the room reserved at the start, the
    /// SeekHead, the Duration, the Cluster sizes and the Segment size. Each
    /// step leaves a playable file, so a crash during finalize is harmless.
    pub fn finalize(mut self) -> Result<W> {
        let base = self.out.stream_position()? - self.written;
        let layout = Layout {
            segment_data: self.segment_data,
            seek_head_room: Some(self.seek_head_at),
            info_at: Some(self.info_at),
            tracks_at: Some(self.tracks_at),
            duration_room: Some(self.duration_at),
            clusters: std::mem::take(&mut self.clusters),
            end_of_clusters: self.written,
            duration_ms: self.duration_ms(),
        };
        write_index(&mut self.out, base, &layout)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::repair::scan;

    /// Top-level element IDs of the Segment and the children of each Cluster.
    fn outline(file: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let (_, Some(size), header) = ebml::read_header(file).unwrap() else {
            panic!()
        };
        let mut at = header + size as usize;
        let (segment, _, header) = ebml::read_header(&file[at..]).unwrap();
        assert_eq!(segment, id::SEGMENT);
        at += header;
        while at < file.len() {
            let (element, size, header) = ebml::read_header(&file[at..]).unwrap();
            out.push(format!("{element:X}"));
            if element == id::CLUSTER {
                // Walk into clusters (sized or not) to see their blocks.
                at += header;
                continue;
            }
            at += header + size.unwrap() as usize;
        }
        out
    }

    /// The (ID, body) of each element in a run of them.
    fn elements(mut bytes: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        while let Some((id, Some(size), header)) = ebml::read_header(bytes) {
            let end = header + size as usize;
            out.push((id, &bytes[header..end]));
            bytes = &bytes[end..];
        }
        out
    }

    fn uint_of(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
    }

    fn frames(writer: &mut WebmWriter<Cursor<Vec<u8>>>, timestamps: &[(u64, bool)]) {
        for &(ms, key) in timestamps {
            writer.write_frame(ms, key, &[0xAB; 10]).unwrap();
        }
    }

    #[test]
    fn video_clusters_start_at_keyframes_at_most_every_five_seconds() {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &TrackInfo::vp8(320, 240)).unwrap();
        frames(
            &mut w,
            &[
                (0, true),
                (33, false),
                // Too soon after the Cluster's start to end it.
                (66, true),
                (600, true),
                (633, false),
                (5800, false),
                (5833, false),
            ],
        );
        assert_eq!(w.frames(), 7);
        assert_eq!(w.duration_ms(), 5866);
        let file = w.into_inner().unwrap().into_inner();
        let o = outline(&file);
        let (c, t, b) = ("1F43B675", "E7", "A3");
        // SeekHead room, Info, Tracks, then clusters of blocks.
        assert_eq!(o[..3], ["EC", "1549A966", "1654AE6B"]);
        assert_eq!(o[3..], [c, t, b, b, b, c, t, b, b, c, t, b, b]);
        let report = scan(&mut Cursor::new(&file)).unwrap();
        assert_eq!(
            (report.blocks, report.duration_ms, report.playable),
            (7, 5833, true)
        );
        assert!(!report.finalized && !report.truncated());
    }

    #[test]
    fn audio_clusters_only_by_time_and_timestamps_never_go_back() {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &TrackInfo::opus()).unwrap();
        let ts: Vec<(u64, bool)> = (0..400).map(|i| (i * 20, true)).collect();
        frames(&mut w, &ts);
        w.write_frame(100, true, &[1]).unwrap();
        let file = w.into_inner().unwrap().into_inner();
        let clusters = outline(&file).iter().filter(|e| *e == "1F43B675").count();
        assert_eq!(clusters, 2);
        let report = scan(&mut Cursor::new(&file)).unwrap();
        assert_eq!((report.blocks, report.duration_ms), (401, 7980));
    }

    #[test]
    fn finalize_patches_sizes_duration_and_adds_cues() {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &TrackInfo::vp8(320, 240)).unwrap();
        frames(
            &mut w,
            &[(0, true), (40, false), (1000, true), (1040, false)],
        );
        let written = w.bytes_written();
        let file = w.finalize().unwrap().into_inner();
        assert!(file.len() as u64 > written, "cues appended");
        // Walk the Segment by the patched sizes only: they must add up.
        let (_, Some(size), header) = ebml::read_header(&file).unwrap() else {
            panic!()
        };
        let mut at = header + size as usize;
        let (_, Some(segment_size), header) = ebml::read_header(&file[at..]).unwrap() else {
            panic!("Segment size not patched")
        };
        at += header;
        let segment = at;
        assert_eq!(at as u64 + segment_size, file.len() as u64);
        let mut top = Vec::new();
        let mut children = Vec::new();
        while at < file.len() {
            let (element, Some(size), header) = ebml::read_header(&file[at..]).unwrap() else {
                panic!("unknown size left at {at}")
            };
            top.push(format!("{element:X}"));
            children.push((at, &file[at + header..at + header + size as usize]));
            at += header + size as usize;
        }
        let (c, cues) = ("1F43B675", "1C53BB6B");
        assert_eq!(top, ["114D9B74", "EC", "1549A966", "1654AE6B", c, c, cues]);
        // Each Cue points at its Cluster (Cluster ID, then the same time).
        let cue_points = elements(children[6].1);
        assert_eq!(cue_points.len(), 2);
        for ((_, point), (cluster_at, cluster)) in cue_points.iter().zip(&children[4..6]) {
            let point = elements(point);
            let positions = elements(point[1].1);
            let position = uint_of(positions[1].1) as usize;
            assert_eq!(segment + position, *cluster_at);
            assert_eq!(uint_of(point[0].1), uint_of(elements(cluster)[0].1));
        }
        // The SeekHead finds Info, Tracks and Cues.
        for (seek, target) in elements(children[0].1).iter().zip([2, 3, 6]) {
            let seek = elements(seek.1);
            assert_eq!(segment + uint_of(seek[1].1) as usize, children[target].0);
        }
        let report = scan(&mut Cursor::new(&file)).unwrap();
        assert!(report.finalized && !report.truncated() && report.playable);
        assert_eq!(report.blocks, 4);
        // The Duration (last frame + one frame step) replaced the Void.
        let at = file
            .windows(3)
            .position(|w| w == [0x44, 0x89, 0x88])
            .unwrap();
        assert_eq!(
            f64::from_be_bytes(file[at + 3..at + 11].try_into().unwrap()),
            1080.0
        );
    }

    #[test]
    fn video_needs_a_size_and_h264_its_parameter_sets() {
        let no_size = TrackInfo {
            video_size: None,
            ..TrackInfo::vp8(1, 1)
        };
        assert!(WebmWriter::new(Vec::new(), &no_size).is_err());
        let no_avcc = TrackInfo {
            codec_private: None,
            ..TrackInfo::h264(1, 1, vec![])
        };
        assert!(WebmWriter::new(Vec::new(), &no_avcc).is_err());
        let w = WebmWriter::new(Vec::new(), &TrackInfo::h264(2, 2, vec![1, 2])).unwrap();
        let file = w.into_inner().unwrap();
        assert!(file.windows(8).any(|w| w == b"matroska"));
        assert!(file.windows(15).any(|w| w == b"V_MPEG4/ISO/AVC"));
    }
}
