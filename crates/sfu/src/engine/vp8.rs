//! What the layer selector needs from a video payload: where frames and
//! keyframes start, and for VP8 its payload descriptor (RFC 7741 §4.2),
//! whose picture id and TL0PICIDX a consumer rewrites in place.
//!
//! Parsing never trusts the payload: a descriptor that claims more bytes
//! than the packet has is treated as absent (the packet is then forwarded
//! as it came, and never taken for a switching point).

/// The video codecs whose keyframes the engine can recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameCodec {
    Vp8,
    H264,
    /// Anything else (audio, VP9, AV1): no layer switching.
    Other,
}

impl FrameCodec {
    /// From a MIME type (`video/VP8`, …).
    pub fn from_mime(mime: &str) -> FrameCodec {
        if mime.eq_ignore_ascii_case("video/vp8") {
            FrameCodec::Vp8
        } else if mime.eq_ignore_ascii_case("video/h264") {
            FrameCodec::H264
        } else {
            FrameCodec::Other
        }
    }
}

/// A VP8 payload descriptor: the fields the engine reads or rewrites, and
/// where the rewritable ones sit in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// S=1 and partition 0: the first packet of a frame.
    pub frame_start: bool,
    /// The first packet of a keyframe (P=0 in the VP8 payload header).
    pub keyframe: bool,
    /// Picture id and its width in bits (7 or 15), with its byte offset.
    pub picture_id: Option<(u16, u8, usize)>,
    /// TL0PICIDX with its byte offset.
    pub tl0_pic_idx: Option<(u8, usize)>,
    /// Temporal layer id.
    pub tid: Option<u8>,
    /// Layer sync: this frame depends only on TL0 frames (a temporal
    /// switch-up point).
    pub layer_sync: bool,
}

/// Parses the descriptor at the start of a VP8 RTP payload.
pub fn parse_vp8(payload: &[u8]) -> Option<Vp8Descriptor> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    let mut d = Vp8Descriptor {
        frame_start: start && partition == 0,
        ..Vp8Descriptor::default()
    };
    let mut at = 1;
    if extended {
        let x = *payload.get(at)?;
        at += 1;
        let (has_pid, has_tl0, has_tid, has_key_idx) =
            (x & 0x80 != 0, x & 0x40 != 0, x & 0x20 != 0, x & 0x10 != 0);
        if has_pid {
            let b = *payload.get(at)?;
            if b & 0x80 != 0 {
                let low = *payload.get(at + 1)?;
                d.picture_id = Some(((u16::from(b & 0x7f) << 8) | u16::from(low), 15, at));
                at += 2;
            } else {
                d.picture_id = Some((u16::from(b), 7, at));
                at += 1;
            }
        }
        if has_tl0 {
            d.tl0_pic_idx = Some((*payload.get(at)?, at));
            at += 1;
        }
        if has_tid || has_key_idx {
            let b = *payload.get(at)?;
            if has_tid {
                d.tid = Some(b >> 6);
                d.layer_sync = b & 0x20 != 0;
            }
            at += 1;
        }
    }
    if d.frame_start {
        // VP8 payload header: the P bit is 0 on keyframes.
        d.keyframe = payload.get(at)? & 0x01 == 0;
    }
    Some(d)
}

/// Writes a picture id (keeping the packet's width) and TL0PICIDX back into
/// a payload parsed by [`parse_vp8`].
pub fn write_vp8(payload: &mut [u8], d: &Vp8Descriptor, picture_id: u16, tl0_pic_idx: u8) {
    if let Some((_, bits, at)) = d.picture_id {
        if bits == 15 && at + 1 < payload.len() {
            payload[at] = 0x80 | ((picture_id >> 8) as u8 & 0x7f);
            payload[at + 1] = picture_id as u8;
        } else if bits == 7 && at < payload.len() {
            payload[at] = picture_id as u8 & 0x7f;
        }
    }
    if let Some((_, at)) = d.tl0_pic_idx
        && at < payload.len()
    {
        payload[at] = tl0_pic_idx;
    }
}

/// Whether an H.264 payload (RFC 6184) starts a keyframe: an IDR slice or
/// a sequence parameter set, alone, in a STAP-A, or at the start of a FU-A.
pub fn h264_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        IDR | SPS => true,
        STAP_A => {
            let mut at = 1;
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let Some(&nal) = payload.get(at + 2) else {
                    return false;
                };
                if matches!(nal & 0x1f, IDR | SPS) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|&h| h & 0x80 != 0 && matches!(h & 0x1f, IDR | SPS)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_descriptor_is_read_and_rewritten() {
        // X, S; I L T; 15-bit picture id 0x1234; TL0PICIDX 9; TID 2, Y; keyframe.
        let mut p = vec![0x90, 0xE0, 0x80 | 0x12, 0x34, 9, 0b1010_0000, 0x00, 0xAA];
        let d = parse_vp8(&p).unwrap();
        assert!(d.frame_start && d.keyframe && d.layer_sync);
        assert_eq!(d.picture_id, Some((0x1234, 15, 2)));
        assert_eq!(d.tl0_pic_idx, Some((9, 4)));
        assert_eq!(d.tid, Some(2));
        write_vp8(&mut p, &d, 0x0777, 200);
        let again = parse_vp8(&p).unwrap();
        assert_eq!(again.picture_id, Some((0x0777, 15, 2)));
        assert_eq!(again.tl0_pic_idx, Some((200, 4)));
    }

    #[test]
    fn short_and_truncated_descriptors() {
        let d = parse_vp8(&[0x10, 0x01]).unwrap();
        assert!(d.frame_start && !d.keyframe && d.tid.is_none());
        let d = parse_vp8(&[0x80, 0x80, 0x05, 0x01]).unwrap();
        assert_eq!(d.picture_id, Some((5, 7, 2)));
        assert!(!d.frame_start);
        assert_eq!(parse_vp8(&[0x90, 0x80, 0x80]), None, "claims a 15-bit id");
        assert_eq!(parse_vp8(&[]), None);
    }

    #[test]
    fn h264_keyframes() {
        assert!(h264_keyframe(&[0x65, 0]));
        assert!(!h264_keyframe(&[0x41, 0]));
        assert!(h264_keyframe(&[0x78, 0, 2, 0x67, 0, 0, 1, 0x68]));
        assert!(h264_keyframe(&[0x7c, 0x85, 0]));
        assert!(!h264_keyframe(&[0x7c, 0x05, 0]), "not the first fragment");
        assert!(!h264_keyframe(&[0x78, 0xff]));
    }
}
