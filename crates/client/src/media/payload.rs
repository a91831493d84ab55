//! Synthetic media payloads: valid VP8 (RFC 7741) and Opus (RFC 6716)
//! framing around a self-checking body, so that a receiver can tell
//! keyframes, frame starts and damaged payloads apart.
//!
//! Body layout (after the codec header): `b"VTPm"`, the packet counter of
//! the sending stream (u64, big-endian), the frame number (u32), the filler
//! length (u16), then that many filler bytes derived from the counter.

/// Magic bytes that start every body.
const MAGIC: &[u8; 4] = b"VTPm";
/// Bytes of the body before the filler.
pub(crate) const BODY_HEADER: usize = 4 + 8 + 4 + 2;
/// Bytes of the VP8 payload descriptor we write (X, I with a 15-bit picture id).
const VP8_DESCRIPTOR: usize = 4;
/// VP8 frame tag (3 bytes) of the first packet of a frame.
const VP8_FRAME_TAG: usize = 3;
/// Start code and dimensions that follow a keyframe's frame tag.
const VP8_KEY_HEADER: usize = 7;
/// Opus TOC byte: config 31 (CELT fullband 20 ms), stereo, one frame.
pub(crate) const OPUS_TOC: u8 = (31 << 3) | 0x04;

/// The seed of a body's filler: every bit of the counter and the frame
/// number changes it (a bijection of their mix), so a damaged header field
/// shows in the filler.
fn seed(counter: u64, frame: u32) -> u64 {
    (counter ^ u64::from(frame).rotate_left(40)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn filler_byte(seed: u64, i: usize) -> u8 {
    ((seed >> ((i % 8) * 8)) as u8) ^ (i as u8).wrapping_mul(7) ^ ((i >> 8) as u8)
}

fn push_body(out: &mut Vec<u8>, counter: u64, frame: u32, total: usize) {
    let filler = total
        .saturating_sub(out.len() + BODY_HEADER)
        .min(u16::MAX as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&frame.to_be_bytes());
    out.extend_from_slice(&(filler as u16).to_be_bytes());
    let seed = seed(counter, frame);
    out.extend((0..filler).map(|i| filler_byte(seed, i)));
}

/// One VP8 packet of a frame.
pub(crate) struct Vp8Packet {
    pub counter: u64,
    pub frame: u32,
    pub picture_id: u16,
    /// First packet of the frame (S bit, frame tag present).
    pub start: bool,
    pub keyframe: bool,
    pub width: u16,
    pub height: u16,
    /// Payload size to aim for (at least the headers are written).
    pub size: usize,
}

impl Vp8Packet {
    pub(crate) fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size.max(32));
        out.push(0x80 | if self.start { 0x10 } else { 0 });
        out.push(0x80);
        out.push(0x80 | ((self.picture_id >> 8) as u8 & 0x7f));
        out.push(self.picture_id as u8);
        if self.start {
            // Frame tag: P (0 = key), version 0, show_frame 1, 19-bit
            // first-partition size.
            let part = (self.size.saturating_sub(VP8_DESCRIPTOR + VP8_FRAME_TAG) as u32) & 0x7_ffff;
            let p = if self.keyframe { 0 } else { 1 };
            out.push(p | 0x10 | ((part as u8 & 0x07) << 5));
            out.push((part >> 3) as u8);
            out.push((part >> 11) as u8);
            if self.keyframe {
                out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
                out.extend_from_slice(&(self.width & 0x3fff).to_le_bytes());
                out.extend_from_slice(&(self.height & 0x3fff).to_le_bytes());
            }
        }
        push_body(&mut out, self.counter, self.frame, self.size);
        out
    }
}

/// One Opus packet.
pub(crate) fn opus_packet(counter: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(32));
    out.push(OPUS_TOC);
    push_body(&mut out, counter, counter as u32, size);
    out
}

/// What a receiver learnt from one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The sender's packet counter.
    pub counter: u64,
    /// First packet of a VP8 frame.
    pub frame_start: bool,
    /// First packet of a VP8 keyframe.
    pub keyframe: bool,
}

/// Checks a VP8 payload written by [`Vp8Packet::build`] (any conforming
/// payload descriptor is parsed). `None` means damaged or foreign.
pub(crate) fn parse_vp8(p: &[u8]) -> Option<Parsed> {
    let b0 = *p.first()?;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            let pid = *p.get(at)?;
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    let frame_start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut keyframe = false;
    if frame_start {
        let tag = p.get(at..at + VP8_FRAME_TAG)?;
        at += VP8_FRAME_TAG;
        if tag[0] & 0x01 == 0 {
            keyframe = true;
            if p.get(at..at + 3)? != [0x9d, 0x01, 0x2a] {
                return None;
            }
            at += VP8_KEY_HEADER;
        }
    }
    let counter = check_body(p.get(at..)?)?;
    Some(Parsed {
        counter,
        frame_start,
        keyframe,
    })
}

/// Checks an Opus payload written by [`opus_packet`].
pub(crate) fn parse_opus(p: &[u8]) -> Option<Parsed> {
    if *p.first()? != OPUS_TOC {
        return None;
    }
    let counter = check_body(p.get(1..)?)?;
    Some(Parsed {
        counter,
        frame_start: true,
        keyframe: false,
    })
}

fn check_body(b: &[u8]) -> Option<u64> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    let counter = u64::from_be_bytes(b.get(4..12)?.try_into().ok()?);
    let frame = u32::from_be_bytes(b.get(12..16)?.try_into().ok()?);
    let seed = seed(counter, frame);
    let len = u16::from_be_bytes(b.get(16..18)?.try_into().ok()?) as usize;
    let filler = b.get(BODY_HEADER..)?;
    if filler.len() != len {
        return None;
    }
    filler
        .iter()
        .enumerate()
        .all(|(i, &v)| v == filler_byte(seed, i))
        .then_some(counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8(start: bool, keyframe: bool, size: usize) -> Vp8Packet {
        Vp8Packet {
            counter: 77,
            frame: 3,
            picture_id: 300,
            start,
            keyframe,
            width: 640,
            height: 360,
            size,
        }
    }

    #[test]
    fn vp8_round_trip() {
        for (start, key) in [(true, true), (true, false), (false, false)] {
            let p = vp8(start, key, 900).build();
            assert_eq!(p.len(), 900);
            let parsed = parse_vp8(&p).expect("parses");
            assert_eq!(parsed.counter, 77);
            assert_eq!(parsed.frame_start, start);
            assert_eq!(parsed.keyframe, key);
        }
        // Smaller than the headers: still well-formed, empty filler.
        let p = vp8(true, true, 1).build();
        assert_eq!(parse_vp8(&p).map(|p| p.keyframe), Some(true));
    }

    #[test]
    fn damage_is_detected() {
        let good = vp8(true, true, 400).build();
        // Every byte after the codec headers (descriptor, tag, key header)
        // is checked.
        let headers = VP8_DESCRIPTOR + VP8_FRAME_TAG + VP8_KEY_HEADER;
        for i in headers..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            assert!(parse_vp8(&bad).is_none(), "byte {i}");
        }
        assert!(parse_vp8(&good[..good.len() - 1]).is_none());
        assert!(parse_vp8(&[]).is_none());
        let opus = opus_packet(5, 120);
        assert_eq!(opus.len(), 120);
        assert_eq!(parse_opus(&opus).map(|p| p.counter), Some(5));
        assert!(parse_opus(&opus[..60]).is_none());
    }
}
