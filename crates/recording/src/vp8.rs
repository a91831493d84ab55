//! VP8 over RTP (RFC 7741): the payload descriptor in front of every packet,
//! and the few facts of the VP8 frame header a recording needs (keyframe or
//! not, and a keyframe's picture size).

use crate::error::{Error, Result};

fn bad(reason: &'static str) -> Error {
    Error::Depacketize {
        codec: "VP8",
        reason,
    }
}

/// One packet's VP8 data with its descriptor removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Vp8Payload<'a> {
    /// S bit set and partition index 0: the packet starts a frame.
    pub starts_frame: bool,
    /// VP8 frame bytes carried by this packet.
    pub data: &'a [u8],
}

/// Strips the RFC 7741 payload descriptor:
///
/// ```text
///  X R N S R PID   (PID = partition index, 3 bits)
///  I L T K RSV     (if X)
///  M PictureID     (if I; 15 bits when M, else 7)
///  TL0PICIDX       (if L)
///  TID Y KEYIDX    (if T or K)
/// ```
pub fn parse(payload: &[u8]) -> Result<Vp8Payload<'_>> {
    let first = *payload.first().ok_or(bad("empty payload"))?;
    let starts_frame = first & 0x10 != 0 && first & 0x07 == 0;
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(at).ok_or(bad("descriptor cut"))?;
        at += 1;
        if ext & 0x80 != 0 {
            let picture_id = *payload.get(at).ok_or(bad("descriptor cut"))?;
            at += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    match payload.get(at..) {
        Some(data) if !data.is_empty() => Ok(Vp8Payload { starts_frame, data }),
        _ => Err(bad("no data after the descriptor")),
    }
}

/// Whether a whole VP8 frame is a keyframe: the P bit (bit 0 of the first
/// byte of the frame tag) is 0, and the keyframe start code follows.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.len() >= 10 && frame[0] & 0x01 == 0 && frame[3..6] == [0x9D, 0x01, 0x2A]
}

/// Picture size of a keyframe: 14-bit little-endian width and height after
/// the start code (the top 2 bits are the scaling mode, not size).
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if !is_keyframe(frame) {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF;
    Some((u32::from(width), u32::from(height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_descriptor() {
        let p = parse(&[0x10, 0xAA, 0xBB]).unwrap();
        assert!(p.starts_frame);
        assert_eq!(p.data, [0xAA, 0xBB]);
        let p = parse(&[0x00, 0xCC]).unwrap();
        assert!(!p.starts_frame);
        // S set but partition 1: not the start of the frame.
        assert!(!parse(&[0x11, 0xCC]).unwrap().starts_frame);
    }

    #[test]
    fn extended_descriptor_with_every_field() {
        // X, S; I L T K; 15-bit picture id; TL0PICIDX; TID/Y/KEYIDX.
        let p = parse(&[0x90, 0xF0, 0x80 | 0x12, 0x34, 0x07, 0x40, 0xAB]).unwrap();
        assert!(p.starts_frame);
        assert_eq!(p.data, [0xAB]);
        // 7-bit picture id only.
        let p = parse(&[0x90, 0x80, 0x12, 0xCD]).unwrap();
        assert_eq!(p.data, [0xCD]);
    }

    #[test]
    fn cut_descriptors_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[0x90],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x80, 0x01],
            &[0x10],
        ] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn keyframe_header() {
        // Frame tag (P=0), start code, 320x240 with scaling bits set.
        let key = [
            0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x41, 0xF0, 0xC0, 0x00,
        ];
        assert!(is_keyframe(&key));
        assert_eq!(keyframe_size(&key), Some((320, 240)));
        let mut inter = key;
        inter[0] |= 1;
        assert!(!is_keyframe(&inter));
        assert_eq!(keyframe_size(&inter), None);
        assert!(!is_keyframe(&key[..9]));
    }
}
