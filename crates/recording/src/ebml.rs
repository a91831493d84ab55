//! EBML, the binary format under Matroska and WebM: element IDs, variable
//! length sizes, and the few element types this crate writes and reads.
//!
//! Writing builds elements into a `Vec<u8>` first, so every element reaches
//! the sink in one `write_all`: a crash then cuts at most the last element,
//! which [`crate::repair`] removes.

/// Matroska element IDs used here, with their marker bits as in the spec.
pub(crate) mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const VOID: u32 = 0xEC;

    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;

    pub const INFO: u32 = 0x1549_A966;
    pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;

    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const LANGUAGE: u32 = 0x22_B59C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;

    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMECODE: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;

    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;

    pub const TAGS: u32 = 0x1254_C367;
    pub const CHAPTERS: u32 = 0x1043_A770;
    pub const ATTACHMENTS: u32 = 0x1941_A469;
}

/// The first bytes of every EBML file: the EBML header's ID.
pub const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// The 8-byte "unknown size" of a live Segment or Cluster: all value bits set.
/// Readers then end the element at the first element that cannot be its
/// child, which is what lets a file be played before it is finalized.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Largest size an 8-byte VINT can hold (all ones is reserved for unknown).
pub const MAX_SIZE: u64 = (1 << 56) - 2;

/// Appends an element ID; IDs carry their own length marker, so the bytes are
/// the ID's big-endian representation without leading zero bytes.
pub fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8).min(3) as usize;
    out.extend_from_slice(&bytes[skip..]);
}

/// Number of bytes of the shortest VINT for `size` (1..=8).
pub fn size_len(size: u64) -> usize {
    // A VINT of n bytes has 7n value bits, and the all-ones value is reserved.
    (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// Appends `size` as a VINT of exactly `len` bytes (1..=8); `len` must fit.
pub fn write_size_len(out: &mut Vec<u8>, size: u64, len: usize) {
    let len = len.clamp(1, 8);
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// Appends `size` as the shortest VINT.
pub fn write_size(out: &mut Vec<u8>, size: u64) {
    write_size_len(out, size, size_len(size));
}

/// Appends an unsigned integer element in as few bytes as hold the value.
pub fn uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let len = (8 - (value.leading_zeros() / 8) as usize).max(1);
    write_id(out, id);
    write_size(out, len as u64);
    out.extend_from_slice(&value.to_be_bytes()[8 - len..]);
}

/// Appends an unsigned integer element always 8 bytes long, for values that
/// are patched in place later and so must not change length.
pub fn uint_fixed(out: &mut Vec<u8>, id: u32, value: u64) {
    write_id(out, id);
    write_size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends an 8-byte float element.
pub fn float(out: &mut Vec<u8>, id: u32, value: f64) {
    write_id(out, id);
    write_size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a string (or binary) element.
pub fn bytes(out: &mut Vec<u8>, id: u32, value: &[u8]) {
    write_id(out, id);
    write_size(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends a master element of known size around an already built body.
pub fn master(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    bytes(out, id, body);
}

/// Appends a Void element of exactly `total` bytes (at least 2), used to
/// reserve room that finalize later overwrites in place.
pub fn void(out: &mut Vec<u8>, total: usize) {
    let total = total.max(2);
    // One ID byte, then a size VINT whose length depends on the payload.
    let mut size_bytes = 1;
    while size_len((total - 1 - size_bytes) as u64) > size_bytes {
        size_bytes += 1;
    }
    let payload = total - 1 - size_bytes;
    write_id(out, id::VOID);
    write_size_len(out, payload as u64, size_bytes);
    out.resize(out.len() + payload, 0);
}

/// Reads an element ID at the start of `buf`: `(id, length)`, or `None` when
/// the bytes are cut or not a valid ID (no marker bit in the first 4 bits).
pub fn read_id(buf: &[u8]) -> Option<(u32, usize)> {
    let first = *buf.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || buf.len() < len {
        return None;
    }
    let id = buf[..len]
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    Some((id, len))
}

/// Reads a size VINT at the start of `buf`: `(Some(size) or None for the
/// unknown size, length)`, or `None` when cut or invalid.
pub fn read_size(buf: &[u8]) -> Option<(Option<u64>, usize)> {
    let first = *buf.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || buf.len() < len {
        return None;
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut value = u64::from(first & mask);
    for &b in &buf[1..len] {
        value = (value << 8) | u64::from(b);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Some(((value != all_ones).then_some(value), len))
}

/// Reads an element header (ID then size): `(id, size, header length)`.
pub fn read_header(buf: &[u8]) -> Option<(u32, Option<u64>, usize)> {
    let (id, id_len) = read_id(buf)?;
    let (size, size_len) = read_size(&buf[id_len..])?;
    Some((id, size, id_len + size_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_marker_bits_and_length() {
        let mut out = Vec::new();
        write_id(&mut out, id::EBML);
        write_id(&mut out, id::DURATION);
        write_id(&mut out, id::SIMPLE_BLOCK);
        write_id(&mut out, id::TIMECODE_SCALE);
        assert_eq!(
            out,
            [0x1A, 0x45, 0xDF, 0xA3, 0x44, 0x89, 0xA3, 0x2A, 0xD7, 0xB1]
        );
        assert_eq!(read_id(&out), Some((id::EBML, 4)));
        assert_eq!(read_id(&out[4..]), Some((id::DURATION, 2)));
        assert_eq!(read_id(&out[6..]), Some((id::SIMPLE_BLOCK, 1)));
        assert_eq!(read_id(&[0x00, 0x01]), None);
        assert_eq!(read_id(&[0x1A, 0x45]), None);
    }

    #[test]
    fn sizes_are_shortest_vints_and_avoid_the_reserved_value() {
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x80]),
            (126, &[0xFE]),
            // 127 is all ones in one byte (unknown), so it takes two.
            (127, &[0x40, 0x7F]),
            (300, &[0x41, 0x2C]),
            (16_382, &[0x7F, 0xFE]),
            (16_383, &[0x20, 0x3F, 0xFF]),
        ];
        for (size, expected) in cases {
            let mut out = Vec::new();
            write_size(&mut out, size);
            assert_eq!(out, expected, "size {size}");
            assert_eq!(read_size(&out), Some((Some(size), expected.len())));
        }
        assert_eq!(read_size(&UNKNOWN_SIZE), Some((None, 8)));
        assert_eq!(read_size(&[0xFF]), Some((None, 1)));
        assert_eq!(read_size(&[0x00]), None);
        let mut out = Vec::new();
        write_size_len(&mut out, 5, 8);
        assert_eq!(out, [0x01, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(size_len(MAX_SIZE), 8);
    }

    #[test]
    fn elements_encode_as_in_the_spec() {
        let mut out = Vec::new();
        uint(&mut out, id::TIMECODE_SCALE, 1_000_000);
        assert_eq!(out, [0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]);
        out.clear();
        uint(&mut out, id::TRACK_NUMBER, 0);
        assert_eq!(out, [0xD7, 0x81, 0x00]);
        out.clear();
        float(&mut out, id::DURATION, 5000.0);
        assert_eq!(&out[..3], [0x44, 0x89, 0x88]);
        assert_eq!(f64::from_be_bytes(out[3..].try_into().unwrap()), 5000.0);
        out.clear();
        bytes(&mut out, id::DOC_TYPE, b"webm");
        assert_eq!(out, [0x42, 0x82, 0x84, b'w', b'e', b'b', b'm']);
        assert_eq!(read_header(&out), Some((id::DOC_TYPE, Some(4), 3)));
    }

    #[test]
    fn voids_fill_exactly_the_reserved_room() {
        for total in [2, 3, 11, 100, 128, 129, 130, 200, 20_000] {
            let mut out = Vec::new();
            void(&mut out, total);
            assert_eq!(out.len(), total, "void of {total}");
            let (id, size, header) = read_header(&out).unwrap();
            assert_eq!(id, id::VOID);
            assert_eq!(header as u64 + size.unwrap(), total as u64);
        }
    }
}
