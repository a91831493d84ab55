//! Reading an RTP packet's fixed header and its RFC 8285 header
//! extensions from the wire, before str0m sees it.
//!
//! SRTP (RFC 3711) encrypts only the payload: the header, CSRCs and header
//! extensions stay readable (and authenticated, so they are never changed
//! here). The engine reads the MID, RID and repaired RID of packets whose
//! SSRC str0m does not know yet, with the ids of the producer they belong
//! to (see `rtpmap`). Everything here is bounded by the packet's length and
//! never panics on any input.

/// The one-byte form's profile (RFC 8285 §4.2).
const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// The two-byte form's profile; its low 4 bits are "appbits" (§4.3).
const TWO_BYTE_PROFILE: u16 = 0x1000;
const TWO_BYTE_MASK: u16 = 0xFFF0;
const FIXED_HEADER: usize = 12;

/// The parts of an RTP header the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHead<'a> {
    pub payload_type: u8,
    pub ssrc: u32,
    /// The header extension block (after its 4-byte header), and whether
    /// it is in the two-byte form; `None` without RFC 8285 extensions.
    extensions: Option<(&'a [u8], bool)>,
}

/// Whether a datagram is RTP (not RTCP, STUN or DTLS): RFC 7983's first
/// byte range 128–191, and a second byte outside RTCP's packet types
/// 192–223 (RFC 5761 §4).
pub(crate) fn is_rtp(buf: &[u8]) -> bool {
    buf.len() >= FIXED_HEADER && (128..=191).contains(&buf[0]) && !(192..=223).contains(&buf[1])
}

/// Parses the fixed header, CSRCs and extension block of an RTP packet.
/// `None` for anything that is not a well-formed RTP version 2 header.
pub(crate) fn parse(buf: &[u8]) -> Option<RtpHead<'_>> {
    if !is_rtp(buf) {
        return None;
    }
    let csrcs = usize::from(buf[0] & 0x0F);
    let has_extension = buf[0] & 0x10 != 0;
    let payload_type = buf[1] & 0x7F;
    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let mut at = FIXED_HEADER + 4 * csrcs;
    if buf.len() < at {
        return None;
    }
    let mut extensions = None;
    if has_extension {
        let head = buf.get(at..at + 4)?;
        let profile = u16::from_be_bytes([head[0], head[1]]);
        let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
        at += 4;
        let block = buf.get(at..at + 4 * words)?;
        if profile == ONE_BYTE_PROFILE {
            extensions = Some((block, false));
        } else if profile & TWO_BYTE_MASK == TWO_BYTE_PROFILE {
            extensions = Some((block, true));
        }
        // Another profile is a non-RFC 8285 extension: nothing to read.
    }
    Some(RtpHead {
        payload_type,
        ssrc,
        extensions,
    })
}

impl<'a> RtpHead<'a> {
    /// The value of the extension element with `id`, if present (the first
    /// one; RFC 8285 allows no repeats).
    pub(crate) fn extension(&self, id: u8) -> Option<&'a [u8]> {
        let (mut buf, two_byte) = self.extensions?;
        if id == 0 {
            return None;
        }
        while let Some((&first, rest)) = buf.split_first() {
            // Padding between elements.
            if first == 0 {
                buf = rest;
                continue;
            }
            let (element_id, len, rest) = if two_byte {
                let (&len, rest) = rest.split_first()?;
                (first, usize::from(len), rest)
            } else {
                let element_id = first >> 4;
                // Id 15 stops processing (RFC 8285 §4.2).
                if element_id == 15 {
                    return None;
                }
                (element_id, usize::from(first & 0x0F) + 1, rest)
            };
            let value = rest.get(..len)?;
            if element_id == id {
                return Some(value);
            }
            buf = &rest[len..];
        }
        None
    }

    /// The extension `id` as an RTP stream or media identifier (MID, RID,
    /// repaired RID: RFC 8852 SDES items, ASCII). Trailing NULs are padding
    /// some senders leave.
    pub(crate) fn text_extension(&self, id: u8) -> Option<&'a str> {
        let value = self.extension(id)?;
        let end = value.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let text = std::str::from_utf8(&value[..end]).ok()?;
        (!text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet with `csrcs` CSRCs and an extension block of `profile`
    /// holding `block` (padded to whole words).
    fn packet(csrcs: u8, ext: Option<(u16, &[u8])>) -> Vec<u8> {
        let mut p = vec![0x80 | csrcs, 96, 0, 1, 0, 0, 0, 9, 0xAA, 0xBB, 0xCC, 0xDD];
        for i in 0..csrcs {
            p.extend_from_slice(&[0, 0, 0, i]);
        }
        if let Some((profile, block)) = ext {
            p[0] |= 0x10;
            let mut block = block.to_vec();
            while block.len() % 4 != 0 {
                block.push(0);
            }
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(&block);
        }
        p.extend_from_slice(&[1, 2, 3]);
        p
    }

    #[test]
    fn one_byte_elements_are_found() {
        // mid "1" at id 3, rid "r2" at id 9, audio level at id 1, padding.
        let block = [0x30, b'1', 0, 0x91, b'r', b'2', 0x10, 0xA5];
        let p = packet(2, Some((ONE_BYTE_PROFILE, &block)));
        let head = parse(&p).unwrap();
        assert_eq!(head.ssrc, 0xAABBCCDD);
        assert_eq!(head.payload_type, 96);
        assert_eq!(head.text_extension(3), Some("1"));
        assert_eq!(head.text_extension(9), Some("r2"));
        assert_eq!(head.extension(1), Some(&[0xA5][..]));
        assert_eq!(head.extension(10), None);
        assert_eq!(head.extension(0), None);
    }

    #[test]
    fn two_byte_elements_are_found() {
        // appbits set; an empty element (allowed in this form), then rid.
        let block = [7, 0, 10, 2, b'r', b'0', 0, 0, 12, 1, 0x7F];
        let p = packet(0, Some((TWO_BYTE_PROFILE | 0x3, &block)));
        let head = parse(&p).unwrap();
        assert_eq!(head.extension(7), Some(&[][..]));
        assert_eq!(head.text_extension(7), None);
        assert_eq!(head.text_extension(10), Some("r0"));
        assert_eq!(head.extension(12), Some(&[0x7F][..]));
    }

    #[test]
    fn id_15_stops_and_other_profiles_have_nothing() {
        let block = [0xF0, 0x30, b'1'];
        let head_owner = packet(0, Some((ONE_BYTE_PROFILE, &block)));
        assert_eq!(parse(&head_owner).unwrap().extension(3), None);
        let other = packet(0, Some((0x1234, &[0x30, b'1'])));
        assert_eq!(parse(&other).unwrap().extension(3), None);
        assert_eq!(parse(&packet(0, None)).unwrap().extension(3), None);
    }

    #[test]
    fn not_rtp_or_truncated_is_none_and_never_panics() {
        let block = [0x30, b'1', 0, 0x91, b'r', b'2'];
        let good = packet(3, Some((ONE_BYTE_PROFILE, &block)));
        // Every truncation and every single-byte corruption is handled.
        for len in 0..good.len() {
            if let Some(head) = parse(&good[..len]) {
                for id in 0..=16 {
                    let _ = head.text_extension(id);
                }
            }
        }
        for i in 0..good.len() {
            for v in [0x00, 0x0F, 0x10, 0x7F, 0x80, 0xBE, 0xDE, 0xFF] {
                let mut bad = good.clone();
                bad[i] = v;
                if let Some(head) = parse(&bad) {
                    for id in 0..=16 {
                        let _ = head.text_extension(id);
                    }
                }
            }
        }
        // An element claiming more than the block holds.
        let over = packet(0, Some((ONE_BYTE_PROFILE, &[0x3F, b'1'])));
        assert_eq!(parse(&over).unwrap().extension(3), None);
        // RTCP (PT 200) and STUN are not RTP.
        assert!(parse(&[0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]).is_none());
        assert!(parse(&[0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0]).is_none());
        // A block longer than the packet.
        let mut long = packet(0, Some((ONE_BYTE_PROFILE, &[0x30, b'1'])));
        long[15] = 200;
        assert!(parse(&long).is_none());
    }
}
