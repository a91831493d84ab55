//! Small parsers for the committed fixtures (IVF, Ogg, H.264 Annex B) and a
//! packetizer that sends their frames as RTP the way a browser would.

use vtp_recording::RtpPacket;

/// One encoded frame and its time in the codec's RTP clock.
pub struct Sample {
    pub rtp_time: u32,
    pub data: Vec<u8>,
}

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// VP8 frames of an IVF file (32-byte header, then 12-byte frame headers:
/// size, 64-bit pts in the file's time base).
pub fn ivf_frames(file: &[u8]) -> Vec<Sample> {
    assert_eq!(&file[..4], b"DKIF");
    let header = le16(file, 6);
    let (rate, scale) = (u64::from(le32(file, 16)), u64::from(le32(file, 20)));
    let mut at = header;
    let mut out = Vec::new();
    while at + 12 <= file.len() {
        let size = le32(file, at) as usize;
        let pts = u64::from_le_bytes(file[at + 4..at + 12].try_into().unwrap());
        let data = file[at + 12..at + 12 + size].to_vec();
        out.push(Sample {
            rtp_time: (pts * scale * 90_000 / rate) as u32,
            data,
        });
        at += 12 + size;
    }
    out
}

/// Opus packets of an Ogg file, without the OpusHead and OpusTags packets;
/// every packet of the fixture is 20 ms (960 samples at 48 kHz).
pub fn ogg_opus_packets(file: &[u8]) -> Vec<Sample> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut at = 0;
    while at + 27 <= file.len() {
        assert_eq!(&file[at..at + 4], b"OggS");
        let segments = usize::from(file[at + 26]);
        let table = &file[at + 27..at + 27 + segments];
        let mut data = at + 27 + segments;
        for &lace in table {
            current.extend_from_slice(&file[data..data + usize::from(lace)]);
            data += usize::from(lace);
            // A lacing value below 255 ends a packet.
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at = data;
    }
    assert!(packets[0].starts_with(b"OpusHead") && packets[1].starts_with(b"OpusTags"));
    packets
        .into_iter()
        .skip(2)
        .enumerate()
        .map(|(i, data)| Sample {
            rtp_time: i as u32 * 960,
            data,
        })
        .collect()
}

/// NAL units of an Annex B stream (start codes 00 00 01 / 00 00 00 01).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&next| next - 3);
        // A 4-byte start code leaves its leading zero on the previous NAL.
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        out.push(&stream[start..end]);
    }
    out
}

/// Access units (lists of NALs) of an Annex B stream at `fps`: a new one
/// starts at a parameter set, SEI or AUD, or at a slice whose
/// first_mb_in_slice is 0 (first bit of the slice header set), once the
/// current one holds a slice.
pub fn annexb_access_units(stream: &[u8], fps: u32) -> Vec<(u32, Vec<Vec<u8>>)> {
    let mut units: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(stream) {
        let kind = nal[0] & 0x1F;
        let is_slice = kind == 1 || kind == 5;
        let starts_unit = matches!(kind, 6..=9) || (is_slice && nal[1] & 0x80 != 0);
        if has_slice && starts_unit {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        has_slice |= is_slice;
        current.push(nal.to_vec());
    }
    units.push(current);
    units
        .into_iter()
        .enumerate()
        .map(|(i, nals)| (i as u32 * 90_000 / fps, nals))
        .collect()
}

/// Largest RTP payload, as browsers keep packets under a typical MTU.
const MAX_PAYLOAD: usize = 1100;

/// Turns frames into RTP packets with consecutive sequence numbers starting
/// at `first_seq` (so tests can start near the 16-bit wrap).
pub struct Packetizer {
    pub seq: u16,
    picture_id: u16,
    ts_offset: u32,
}

impl Packetizer {
    pub fn new(first_seq: u16, ts_offset: u32) -> Self {
        Packetizer {
            seq: first_seq,
            picture_id: 0x1234,
            ts_offset,
        }
    }

    fn packet(&mut self, time: u32, marker: bool, payload: Vec<u8>) -> RtpPacket {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        RtpPacket {
            sequence_number: seq,
            timestamp: time.wrapping_add(self.ts_offset),
            marker,
            payload,
        }
    }

    /// VP8 (RFC 7741) with a 15-bit picture ID, as Chrome sends it.
    pub fn vp8(&mut self, sample: &Sample) -> Vec<RtpPacket> {
        let pid = self.picture_id & 0x7FFF;
        self.picture_id = self.picture_id.wrapping_add(1);
        let chunks: Vec<&[u8]> = sample.data.chunks(MAX_PAYLOAD).collect();
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let s_bit = if i == 0 { 0x10 } else { 0x00 };
                let mut payload = vec![0x80 | s_bit, 0x80, 0x80 | (pid >> 8) as u8, pid as u8];
                payload.extend_from_slice(chunk);
                self.packet(sample.rtp_time, i == last, payload)
            })
            .collect()
    }

    /// Opus (RFC 7587): one packet per frame.
    pub fn opus(&mut self, sample: &Sample) -> Vec<RtpPacket> {
        vec![self.packet(sample.rtp_time, false, sample.data.clone())]
    }

    /// H.264 (RFC 6184, mode 1): small NALs aggregated in STAP-A, large
    /// ones split in FU-A, others sent alone.
    pub fn h264(&mut self, time: u32, nals: &[Vec<u8>]) -> Vec<RtpPacket> {
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut stap: Vec<&[u8]> = Vec::new();
        let flush_stap = |stap: &mut Vec<&[u8]>, payloads: &mut Vec<Vec<u8>>| {
            match stap.len() {
                0 => {}
                1 => payloads.push(stap[0].to_vec()),
                _ => {
                    let nri = stap.iter().map(|n| n[0] & 0x60).max().unwrap();
                    let mut p = vec![nri | 24];
                    for nal in stap.iter() {
                        p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                        p.extend_from_slice(nal);
                    }
                    payloads.push(p);
                }
            }
            stap.clear();
        };
        for nal in nals {
            let stap_len: usize = stap.iter().map(|n| n.len() + 2).sum();
            // STAP-A header byte, the units so far, this one's size and bytes.
            let with_this_one = 1 + stap_len + 2 + nal.len();
            if with_this_one <= MAX_PAYLOAD {
                stap.push(nal);
                continue;
            }
            flush_stap(&mut stap, &mut payloads);
            if nal.len() <= MAX_PAYLOAD {
                stap.push(nal);
                continue;
            }
            let (header, body) = (nal[0], &nal[1..]);
            let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let start = if i == 0 { 0x80 } else { 0 };
                let end = if i == chunks.len() - 1 { 0x40 } else { 0 };
                let mut p = vec![(header & 0xE0) | 28, start | end | (header & 0x1F)];
                p.extend_from_slice(chunk);
                payloads.push(p);
            }
        }
        flush_stap(&mut stap, &mut payloads);
        let last = payloads.len() - 1;
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.packet(time, i == last, p))
            .collect()
    }
}
