//! H.264 over RTP (RFC 6184, packetization mode 1): single NAL unit packets,
//! STAP-A aggregates and FU-A fragments, turned into length-prefixed (AVCC)
//! access units as Matroska stores them; plus the SPS/PPS that make the
//! track's `avcC` CodecPrivate and the SPS's picture size.

use crate::error::{Error, Result};

fn bad(reason: &'static str) -> Error {
    Error::Depacketize {
        codec: "H264",
        reason,
    }
}

pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Whether a NAL whose type is `kind` and whose payload (after the NAL
/// header) starts with `first` can begin an access unit: any non-slice NAL
/// that precedes pictures (SEI, parameter sets, delimiter…), or the first
/// slice of a picture (first_mb_in_slice = 0, coded as a single 1 bit).
fn nal_starts_access_unit(kind: u8, first: Option<u8>) -> bool {
    match kind {
        1 | 2 | 5 => first.is_some_and(|b| b & 0x80 != 0),
        6..=23 => true,
        _ => false,
    }
}

/// Whether an RTP payload can be the first of an access unit. A frame whose
/// first packet is not was cut at its start (a packet lost just before it)
/// and must not be written: its picture would miss its first slices.
pub fn starts_access_unit(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1F {
        STAP_A => match payload.get(3) {
            Some(&nal) => nal_starts_access_unit(nal & 0x1F, payload.get(4).copied()),
            None => false,
        },
        FU_A => match payload.get(1) {
            Some(&fu) => {
                fu & 0x80 != 0 && nal_starts_access_unit(fu & 0x1F, payload.get(2).copied())
            }
            None => false,
        },
        kind => nal_starts_access_unit(kind, payload.get(1).copied()),
    }
}

/// Reassembles NAL units across the packets of one access unit.
#[derive(Default)]
pub struct H264Depacketizer {
    /// FU-A fragments of the NAL being reassembled.
    fragment: Option<Vec<u8>>,
    /// Latest SPS and PPS seen, for the `avcC`.
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// Whether the access unit being built holds an IDR slice.
    idr: bool,
}

impl H264Depacketizer {
    /// Forgets the access unit being built (loss, or a new one starts).
    pub fn reset(&mut self) {
        self.fragment = None;
        self.idr = false;
    }

    /// Whether the access unit so far holds an IDR slice.
    pub fn has_idr(&self) -> bool {
        self.idr
    }

    /// Whether a FU-A is still open, i.e. the access unit is incomplete.
    pub fn in_fragment(&self) -> bool {
        self.fragment.is_some()
    }

    /// Appends the NAL units of one RTP payload to `out` as AVCC (4-byte
    /// big-endian length, then the NAL).
    pub fn push(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let header = *payload.first().ok_or(bad("empty payload"))?;
        match header & 0x1F {
            1..=23 => self.emit(payload, out),
            STAP_A => {
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    let [hi, lo, ..] = *rest else {
                        return Err(bad("STAP-A size cut"));
                    };
                    let size = usize::from(u16::from_be_bytes([hi, lo]));
                    let nal = rest.get(2..2 + size).ok_or(bad("STAP-A unit cut"))?;
                    if nal.is_empty() {
                        return Err(bad("empty STAP-A unit"));
                    }
                    self.emit(nal, out);
                    rest = &rest[2 + size..];
                }
            }
            FU_A => {
                let fu = *payload.get(1).ok_or(bad("FU-A header cut"))?;
                let data = &payload[2..];
                if fu & 0x80 != 0 {
                    // Start: rebuild the NAL header from the FU indicator's
                    // F/NRI bits and the FU header's type.
                    let mut nal = Vec::with_capacity(data.len() * 4 + 1);
                    nal.push((header & 0xE0) | (fu & 0x1F));
                    self.fragment = Some(nal);
                }
                let nal = self
                    .fragment
                    .as_mut()
                    .ok_or(bad("FU-A without its start"))?;
                nal.extend_from_slice(data);
                if fu & 0x40 != 0
                    && let Some(nal) = self.fragment.take()
                {
                    self.emit(&nal, out);
                }
            }
            _ => return Err(bad("unsupported packetization (STAP-B, MTAP, FU-B)")),
        }
        Ok(())
    }

    fn emit(&mut self, nal: &[u8], out: &mut Vec<u8>) {
        match nal[0] & 0x1F {
            NAL_IDR => self.idr = true,
            NAL_SPS => self.sps = Some(nal.to_vec()),
            NAL_PPS => self.pps = Some(nal.to_vec()),
            _ => {}
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }

    /// The `avcC` (AVCDecoderConfigurationRecord, ISO 14496-15) for the
    /// latest SPS and PPS, or `None` before both were seen.
    pub fn avcc(&self) -> Option<Vec<u8>> {
        let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
        if sps.len() < 4 || sps.len() > 0xFFFF || pps.len() > 0xFFFF {
            return None;
        }
        let mut out = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
        out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        out.extend_from_slice(sps);
        out.push(1);
        out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        out.extend_from_slice(pps);
        Some(out)
    }

    /// Picture size from the latest SPS (`None` before one came, or when
    /// [`sps_size`] refuses it).
    pub fn size(&self) -> Option<(u32, u32)> {
        sps_size(self.sps.as_ref()?).ok()
    }

    /// Bytes held for the NAL unit being reassembled from FU-A fragments.
    pub fn buffered_bytes(&self) -> usize {
        self.fragment.as_ref().map_or(0, Vec::len)
    }
}

/// Bit reader over an RBSP (emulation prevention bytes already removed).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.at / 8)?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb code.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Signed Exp-Golomb code (only skipped here).
    fn se(&mut self) -> Option<()> {
        self.ue().map(|_| ())
    }
}

/// Picture width and height coded in an SPS NAL (H.264 7.3.2.1.1), after
/// frame cropping. The SPS comes from the publisher, so every value is
/// checked: a cut SPS, a size that overflows `u32` or cropping that leaves
/// no picture is an [`Error::Depacketize`] saying which, never a panic.
pub fn sps_size(sps: &[u8]) -> Result<(u32, u32)> {
    read_sps_size(sps).ok_or(bad("SPS cut short"))?
}

/// [`sps_size`] with `None` for a cut SPS, so the reader can use `?`.
fn read_sps_size(sps: &[u8]) -> Option<Result<(u32, u32)>> {
    // Remove emulation prevention: 00 00 03 → 00 00.
    let mut rbsp = Vec::with_capacity(sps.len());
    let mut zeros = 0;
    for &b in sps.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits { data: &rbsp, at: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma
        r.ue()?; // bit_depth_chroma
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            let code = i64::from(r.ue()?);
                            let delta = if code % 2 == 1 {
                                (code + 1) / 2
                            } else {
                                -(code / 2)
                            };
                            next = (last + delta).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            for _ in 0..cycle.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field
    }
    r.bit()?; // direct_8x8_inference
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let field_factor = 2 - frame_mbs_only;
    let (crop_x, crop_y) = match chroma_format {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    Some(
        cropped(width_mbs, 16, crop_x, left, right).and_then(|width| {
            let height = cropped(height_units, 16 * field_factor, crop_y, top, bottom)?;
            Ok((width, height))
        }),
    )
}

/// `units * unit - crop * (before + after)`: one dimension of the picture,
/// all in checked arithmetic (each value may be up to 2^32 - 2).
fn cropped(units: u32, unit: u32, crop: u32, before: u32, after: u32) -> Result<u32> {
    let full = units
        .checked_mul(unit)
        .ok_or(bad("SPS picture size overflows"))?;
    let cut = before
        .checked_add(after)
        .and_then(|offsets| offsets.checked_mul(crop))
        .ok_or(bad("SPS frame cropping overflows"))?;
    match full.checked_sub(cut) {
        Some(size) if size > 0 => Ok(size),
        _ => Err(bad("SPS frame cropping leaves no picture")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The SPS and PPS of the 320x240 baseline fixture (x264), with an
    // emulation prevention byte in the SPS.
    const SPS: [u8; 22] = [
        0x67, 0x42, 0xC0, 0x0C, 0xDA, 0x05, 0x07, 0xEC, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
        0x00, 0x00, 0x07, 0xA3, 0xC5, 0x0A, 0xA8,
    ];
    const PPS: [u8; 4] = [0x68, 0xCE, 0x3C, 0x80];

    fn nals(avcc: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = avcc;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            out.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        out
    }

    #[test]
    fn single_nal_and_stap_a() {
        let mut d = H264Depacketizer::default();
        let mut out = Vec::new();
        let mut stap = vec![0x78];
        for nal in [&SPS[..], &PPS[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        d.push(&stap, &mut out).unwrap();
        d.push(&[0x65, 0x88, 0x84], &mut out).unwrap();
        assert_eq!(
            nals(&out),
            [SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, 0x84]]
        );
        assert!(d.has_idr());
        let avcc = d.avcc().unwrap();
        assert_eq!(avcc[..6], [1, 0x42, 0xC0, 0x0C, 0xFF, 0xE1]);
        assert_eq!(avcc.len(), 6 + 2 + SPS.len() + 1 + 2 + PPS.len());
        assert_eq!(d.size(), Some((320, 240)));
    }

    #[test]
    fn fu_a_is_reassembled() {
        let mut d = H264Depacketizer::default();
        let mut out = Vec::new();
        // FU indicator NRI=3 type 28; FU header S/E with type 5.
        d.push(&[0x7C, 0x85, 1, 2], &mut out).unwrap();
        assert!(d.in_fragment());
        d.push(&[0x7C, 0x05, 3], &mut out).unwrap();
        d.push(&[0x7C, 0x45, 4, 5], &mut out).unwrap();
        assert!(!d.in_fragment());
        assert_eq!(nals(&out), [vec![0x65, 1, 2, 3, 4, 5]]);
        assert!(d.has_idr());
    }

    #[test]
    fn access_units_start_at_parameter_sets_or_a_first_slice() {
        assert!(starts_access_unit(&SPS));
        assert!(starts_access_unit(&[0x78, 0x00, 0x04, 0x67, 0x42, 0, 0]));
        assert!(
            starts_access_unit(&[0x65, 0x88]),
            "IDR, first_mb_in_slice 0"
        );
        assert!(!starts_access_unit(&[0x65, 0x40]), "IDR, a later slice");
        assert!(!starts_access_unit(&[0x41, 0x12]), "non-IDR, a later slice");
        assert!(
            starts_access_unit(&[0x7C, 0x85, 0x88]),
            "FU-A start of a first slice"
        );
        assert!(
            !starts_access_unit(&[0x7C, 0x05, 0x88]),
            "FU-A continuation"
        );
        assert!(
            !starts_access_unit(&[0x7C, 0x85, 0x08]),
            "FU-A start of a later slice"
        );
        assert!(!starts_access_unit(&[]) && !starts_access_unit(&[0x78, 0, 1]));
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let mut d = H264Depacketizer::default();
        let mut out = Vec::new();
        for bad in [
            &[][..],
            &[0x78, 0x00],
            &[0x78, 0x00, 0x05, 0x67],
            &[0x7C],
            &[0x7C, 0x05, 1],
            &[0x79, 0],
        ] {
            assert!(d.push(bad, &mut out).is_err(), "{bad:?}");
        }
        assert!(sps_size(&[0x67]).is_err());
        assert!(sps_size(&[0x67, 0x64, 0, 0, 0, 0]).is_err());
    }

    /// Writes an SPS bit by bit, with emulation prevention, so that tests
    /// can put any value in any field.
    #[derive(Default)]
    struct SpsWriter {
        bits: Vec<bool>,
    }

    impl SpsWriter {
        fn bits(&mut self, value: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push((value >> i) & 1 == 1);
            }
            self
        }

        /// Unsigned Exp-Golomb: `zeros` zeros, then `value + 1` in `zeros + 1` bits.
        fn ue(&mut self, value: u32) -> &mut Self {
            let coded = u64::from(value) + 1;
            let zeros = 63 - coded.leading_zeros();
            self.bits(0, zeros);
            for i in (0..=zeros).rev() {
                self.bits.push((coded >> i) & 1 == 1);
            }
            self
        }

        /// A baseline SPS of `width_mbs` x `height_mbs` macroblocks with
        /// these cropping offsets (left, right, top, bottom).
        fn baseline(width_mbs: u32, height_mbs: u32, crop: [u32; 4]) -> Vec<u8> {
            let mut w = SpsWriter::default();
            w.bits(66, 8).bits(0xC0, 8).bits(30, 8); // profile, flags, level
            w.ue(0).ue(0).ue(2).ue(1).bits(0, 1); // id, frame_num, poc type 2, refs, gaps
            w.ue(width_mbs - 1).ue(height_mbs - 1);
            w.bits(1, 1).bits(1, 1).bits(1, 1); // frame_mbs_only, direct_8x8, cropping
            for offset in crop {
                w.ue(offset);
            }
            w.bits(0, 1).bits(1, 1); // no VUI, stop bit
            while w.bits.len() % 8 != 0 {
                w.bits.push(false);
            }
            let rbsp = w.bits.chunks(8).map(|byte| {
                byte.iter()
                    .fold(0u8, |acc, &bit| (acc << 1) | u8::from(bit))
            });
            let mut nal = vec![0x67];
            let mut zeros = 0;
            for b in rbsp {
                if zeros >= 2 && b <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                nal.push(b);
            }
            nal
        }
    }

    #[test]
    fn cropping_is_checked_arithmetic() {
        // 20 x 15 macroblocks with 8 pixels cropped at the bottom.
        let sps = SpsWriter::baseline(20, 15, [0, 0, 0, 4]);
        assert_eq!(sps_size(&sps).unwrap(), (320, 232));

        // Offsets whose sum fits u32 but whose product with the chroma
        // unit (2) does not: the multiplication that used to overflow.
        let hostile = SpsWriter::baseline(20, 15, [1 << 31, 0, 0, 0]);
        let err = sps_size(&hostile).unwrap_err();
        assert!(err.to_string().contains("cropping overflows"), "{err}");
        let hostile = SpsWriter::baseline(20, 15, [u32::MAX - 1, u32::MAX - 1, 0, 0]);
        assert!(sps_size(&hostile).is_err());
        let hostile = SpsWriter::baseline(20, 15, [0, 0, 1 << 30, 1 << 30]);
        assert!(sps_size(&hostile).is_err());

        // Cropping more than the picture, or all of it.
        let err = sps_size(&SpsWriter::baseline(20, 15, [100, 100, 0, 0])).unwrap_err();
        assert!(err.to_string().contains("leaves no picture"), "{err}");
        assert!(sps_size(&SpsWriter::baseline(20, 15, [80, 80, 0, 0])).is_err());

        // A width that overflows before any cropping.
        let err = sps_size(&SpsWriter::baseline(u32::MAX - 1, 15, [0; 4])).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");

        // Through the depacketizer: the size is absent, nothing panics.
        let mut d = H264Depacketizer::default();
        let mut out = Vec::new();
        d.push(&SpsWriter::baseline(20, 15, [1 << 31, 0, 0, 0]), &mut out)
            .unwrap();
        assert_eq!(d.size(), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut d = H264Depacketizer::default();
        let mut out = Vec::new();
        let mut x: u32 = 7;
        for len in 0..3000usize {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = d.push(&bytes, &mut out);
            let _ = sps_size(&bytes);
            out.clear();
        }
    }
}
