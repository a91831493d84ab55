//! Codec identity: when two codec descriptions denote the same codec.
//!
//! This module owns the codec-matching rule that every negotiation step uses
//! (router capabilities from the supported set, producer codecs against the
//! router, router codecs against a consumer's device): same MIME type
//! (case-insensitive), same clock rate, same channel count, and — for the
//! codecs whose format parameters change the bitstream — the same values of
//! those parameters. For H.264 that means the same packetization mode and the
//! same profile (RFC 6184 `profile-level-id`, levels may differ), which is why
//! a small profile-level-id parser lives here. It also classifies MIME types
//! (media, RTX, FEC, comfort noise) and parses `scalabilityMode` strings.

use serde_json::Value;

use super::types::{CodecParameters, MediaKind, RtpCodecCapability, RtpCodecParameters};

/// The subtype of a MIME type, lowercased (`"video/H264"` → `"h264"`).
pub(crate) fn subtype_lower(mime_type: &str) -> String {
    mime_type
        .split_once('/')
        .map(|(_, s)| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the MIME type names a retransmission codec (`*/rtx`).
pub fn is_rtx(mime_type: &str) -> bool {
    matches!(mime_type.split_once('/'), Some((t, s)) if !t.is_empty() && s.eq_ignore_ascii_case("rtx"))
}

/// Whether the MIME type names forward error correction, which may not be the
/// target of an RTX `apt`.
pub(crate) fn is_fec(mime_type: &str) -> bool {
    matches!(
        subtype_lower(mime_type).as_str(),
        "ulpfec" | "flexfec" | "x-ulpfecuc"
    )
}

/// Whether the MIME type names a codec that carries media by itself, as
/// opposed to RTX, FEC, RED, comfort noise or DTMF. Encodings are bound to
/// media codecs only.
pub fn is_media_codec(mime_type: &str) -> bool {
    MediaKind::from_mime_type(mime_type).is_some()
        && !matches!(
            subtype_lower(mime_type).as_str(),
            "rtx" | "ulpfec" | "flexfec" | "x-ulpfecuc" | "red" | "cn" | "telephone-event"
        )
}

/// Read access shared by codec capabilities and codec parameters, so that one
/// matching rule serves both.
pub(crate) trait CodecLike {
    fn mime_type(&self) -> &str;
    fn clock_rate(&self) -> u32;
    fn channels(&self) -> Option<u8>;
    fn parameters(&self) -> &CodecParameters;
}

impl CodecLike for RtpCodecCapability {
    fn mime_type(&self) -> &str {
        &self.mime_type
    }
    fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
    fn channels(&self) -> Option<u8> {
        self.channels
    }
    fn parameters(&self) -> &CodecParameters {
        &self.parameters
    }
}

impl CodecLike for RtpCodecParameters {
    fn mime_type(&self) -> &str {
        &self.mime_type
    }
    fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
    fn channels(&self) -> Option<u8> {
        self.channels
    }
    fn parameters(&self) -> &CodecParameters {
        &self.parameters
    }
}

/// Channel count as compared: audio defaults to 1, video has none.
fn effective_channels(c: &impl CodecLike) -> Option<u8> {
    match MediaKind::from_mime_type(c.mime_type()) {
        Some(MediaKind::Audio) => Some(c.channels().unwrap_or(1)),
        _ => None,
    }
}

/// Equality of two optional parameter values, treating `2` and `"2"` alike.
fn param_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn as_f64(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => match (as_f64(x), as_f64(y)) {
            (Some(fx), Some(fy)) => fx == fy,
            _ => x == y,
        },
        _ => false,
    }
}

/// Whether `a` and `b` denote the same codec.
///
/// Non-strict matching (used when building router capabilities) compares MIME
/// type, clock rate, channels and the multi-opus stream layout. Strict
/// matching additionally requires the same H.264 packetization mode and
/// profile and the same VP9 `profile-id`.
pub(crate) fn match_codecs(a: &impl CodecLike, b: &impl CodecLike, strict: bool) -> bool {
    if !a.mime_type().eq_ignore_ascii_case(b.mime_type()) {
        return false;
    }
    if a.clock_rate() != b.clock_rate() {
        return false;
    }
    if effective_channels(a) != effective_channels(b) {
        return false;
    }
    let (pa, pb) = (a.parameters(), b.parameters());
    match subtype_lower(a.mime_type()).as_str() {
        "multiopus" => {
            param_eq(pa.get("num_streams"), pb.get("num_streams"))
                && param_eq(pa.get("coupled_streams"), pb.get("coupled_streams"))
        }
        "h264" | "h264-svc" if strict => {
            pa.get_u64("packetization-mode").unwrap_or(0)
                == pb.get_u64("packetization-mode").unwrap_or(0)
                && h264::is_same_profile(pa, pb)
                && h264::answer_profile_level_id(pa, pb).is_ok()
        }
        "vp9" if strict => {
            pa.get_u64("profile-id").unwrap_or(0) == pb.get_u64("profile-id").unwrap_or(0)
        }
        _ => true,
    }
}

/// H.264 `profile-level-id` handling (RFC 6184 §8.1 and H.264 Annex A).
pub(crate) mod h264 {
    use super::CodecParameters;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Profile {
        ConstrainedBaseline,
        Baseline,
        Main,
        ConstrainedHigh,
        High,
        PredictiveHigh444,
    }

    /// `level_idc` value used here for level 1b (which shares 11 with 1.1 on
    /// the wire and is told apart by constraint_set3).
    const LEVEL_1B: u8 = 0;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct ProfileLevel {
        pub profile: Profile,
        pub level: u8,
    }

    /// (profile_idc, mask over profile-iop, required bits, profile). The iop
    /// byte holds constraint_set0..5 flags; RFC 6184 Table 5 lists which
    /// combinations mean which profile. First match wins.
    const PATTERNS: [(u8, u8, u8, Profile); 9] = [
        (0x42, 0b0100_1111, 0b0100_0000, Profile::ConstrainedBaseline),
        (0x4d, 0b1000_1111, 0b1000_0000, Profile::ConstrainedBaseline),
        (0x58, 0b1100_1111, 0b1100_0000, Profile::ConstrainedBaseline),
        (0x42, 0b0100_1111, 0b0000_0000, Profile::Baseline),
        (0x58, 0b1100_1111, 0b1000_0000, Profile::Baseline),
        (0x4d, 0b1010_1111, 0b0000_0000, Profile::Main),
        (0x64, 0b1111_1111, 0b0000_0000, Profile::High),
        (0x64, 0b1111_1111, 0b0000_1100, Profile::ConstrainedHigh),
        (0xf4, 0b1111_1111, 0b0000_0000, Profile::PredictiveHigh444),
    ];

    /// Parses a 6-hex-digit profile-level-id.
    pub(crate) fn parse(s: &str) -> Option<ProfileLevel> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = u32::from_str_radix(s, 16).ok()?;
        if n == 0 {
            return None;
        }
        let level_idc = (n & 0xff) as u8;
        let iop = ((n >> 8) & 0xff) as u8;
        let idc = ((n >> 16) & 0xff) as u8;
        let level = match level_idc {
            11 if iop & 0x10 != 0 => LEVEL_1B,
            10..=13 | 20..=22 | 30..=32 | 40..=42 | 50..=52 | 60..=62 => level_idc,
            _ => return None,
        };
        PATTERNS
            .iter()
            .find(|(p_idc, mask, bits, _)| *p_idc == idc && iop & mask == *bits)
            .map(|&(_, _, _, profile)| ProfileLevel { profile, level })
    }

    /// Whether the parameters carry a profile-level-id at all (an empty
    /// string counts as absent).
    fn has_profile_level_id(params: &CodecParameters) -> bool {
        match params.get("profile-level-id") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        }
    }

    /// The profile and level the parameters describe; when absent, the
    /// WebRTC default (Constrained Baseline, level 3.1). `None` if present
    /// but unparsable.
    pub(crate) fn from_params(params: &CodecParameters) -> Option<ProfileLevel> {
        if !has_profile_level_id(params) {
            return Some(ProfileLevel {
                profile: Profile::ConstrainedBaseline,
                level: 31,
            });
        }
        parse(params.get_str("profile-level-id")?)
    }

    /// Same profile on both sides (levels may differ).
    pub(crate) fn is_same_profile(a: &CodecParameters, b: &CodecParameters) -> bool {
        matches!((from_params(a), from_params(b)), (Some(x), Some(y)) if x.profile == y.profile)
    }

    /// Orders levels; 1b sits between 1 and 1.1.
    fn level_rank(level: u8) -> u16 {
        if level == LEVEL_1B {
            105
        } else {
            u16::from(level) * 10
        }
    }

    fn level_asymmetry_allowed(params: &CodecParameters) -> bool {
        params.get_u64("level-asymmetry-allowed") == Some(1)
    }

    /// The canonical string of a profile and level, if one exists.
    pub(crate) fn to_string(pl: ProfileLevel) -> Option<String> {
        if pl.level == LEVEL_1B {
            return match pl.profile {
                Profile::ConstrainedBaseline => Some("42f00b".into()),
                Profile::Baseline => Some("42100b".into()),
                Profile::Main => Some("4d100b".into()),
                _ => None,
            };
        }
        let prefix = match pl.profile {
            Profile::ConstrainedBaseline => "42e0",
            Profile::Baseline => "4200",
            Profile::Main => "4d00",
            Profile::ConstrainedHigh => "640c",
            Profile::High => "6400",
            Profile::PredictiveHigh444 => "f400",
        };
        Some(format!("{prefix}{:02x}", pl.level))
    }

    /// The profile-level-id that `local` (the side whose parameters are being
    /// settled) should use against `remote`: its own level when both allow
    /// level asymmetry, otherwise the lower of the two. `Ok(None)` when
    /// neither side names one; `Err` when either is invalid or the profiles
    /// differ.
    pub(crate) fn answer_profile_level_id(
        local: &CodecParameters,
        remote: &CodecParameters,
    ) -> Result<Option<String>, ()> {
        if !has_profile_level_id(local) && !has_profile_level_id(remote) {
            return Ok(None);
        }
        let l = from_params(local).ok_or(())?;
        let r = from_params(remote).ok_or(())?;
        if l.profile != r.profile {
            return Err(());
        }
        let level = if level_asymmetry_allowed(local) && level_asymmetry_allowed(remote) {
            l.level
        } else if level_rank(r.level) < level_rank(l.level) {
            r.level
        } else {
            l.level
        };
        Ok(to_string(ProfileLevel {
            profile: l.profile,
            level,
        }))
    }
}

/// Layers announced by a `scalabilityMode` such as `"L1T3"` or `"L3T3_KEY"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalabilityMode {
    pub spatial_layers: u8,
    pub temporal_layers: u8,
    pub ksvc: bool,
}

impl Default for ScalabilityMode {
    fn default() -> Self {
        ScalabilityMode {
            spatial_layers: 1,
            temporal_layers: 1,
            ksvc: false,
        }
    }
}

/// Parses `[LS]<spatial>T<temporal>[_KEY]…` (layers 1–99, anything after the
/// recognised prefix ignored). Unset or unrecognised modes mean one spatial
/// and one temporal layer, as in mediasoup.
pub fn parse_scalability_mode(mode: Option<&str>) -> ScalabilityMode {
    fn layers(s: &str) -> Option<(u8, &str)> {
        let digits = s.bytes().take(2).take_while(u8::is_ascii_digit).count();
        if digits == 0 || s.starts_with('0') {
            return None;
        }
        let n = s[..digits].parse().ok()?;
        Some((n, &s[digits..]))
    }
    let parse = |m: &str| -> Option<ScalabilityMode> {
        let rest = m.strip_prefix('L').or_else(|| m.strip_prefix('S'))?;
        let (spatial_layers, rest) = layers(rest)?;
        let rest = rest.strip_prefix('T')?;
        let (temporal_layers, rest) = layers(rest)?;
        Some(ScalabilityMode {
            spatial_layers,
            temporal_layers,
            ksvc: rest.starts_with("_KEY"),
        })
    };
    mode.and_then(parse).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(plid: &str, pm: u64) -> RtpCodecParameters {
        RtpCodecParameters {
            mime_type: "video/H264".into(),
            payload_type: 100,
            clock_rate: 90000,
            channels: None,
            parameters: CodecParameters::new()
                .with("profile-level-id", plid)
                .with("packetization-mode", pm)
                .with("level-asymmetry-allowed", 1),
            rtcp_feedback: vec![],
        }
    }

    #[test]
    fn profile_level_id_parsing() {
        use h264::{Profile, parse};
        assert_eq!(
            parse("42e01f").map(|p| p.profile),
            Some(Profile::ConstrainedBaseline)
        );
        assert_eq!(parse("42E01F").map(|p| p.level), Some(31));
        assert_eq!(parse("42001f").map(|p| p.profile), Some(Profile::Baseline));
        assert_eq!(parse("4d0032").map(|p| p.profile), Some(Profile::Main));
        assert_eq!(parse("4d0032").map(|p| p.level), Some(50));
        assert_eq!(
            parse("640c1f").map(|p| p.profile),
            Some(Profile::ConstrainedHigh)
        );
        assert_eq!(parse("64001f").map(|p| p.profile), Some(Profile::High));
        assert_eq!(parse("42f00b").map(|p| p.level), Some(0));
        assert_eq!(parse("42e0ff"), None);
        assert_eq!(parse("12e01f"), None);
        assert_eq!(parse("42e01"), None);
        assert_eq!(parse("zze01f"), None);
        assert_eq!(parse("000000"), None);
    }

    #[test]
    fn h264_strict_matching_respects_profile_and_mode() {
        assert!(match_codecs(&h264("42e01f", 1), &h264("42e01f", 1), true));
        // Same profile, different level: still the same codec.
        assert!(match_codecs(&h264("42e01f", 1), &h264("42e034", 1), true));
        assert!(!match_codecs(&h264("42e01f", 1), &h264("42e01f", 0), true));
        assert!(!match_codecs(&h264("42e01f", 1), &h264("4d0032", 1), true));
        assert!(!match_codecs(&h264("42001f", 1), &h264("42e01f", 1), true));
        // Non-strict ignores the profile.
        assert!(match_codecs(&h264("42e01f", 1), &h264("4d0032", 0), false));
    }

    #[test]
    fn h264_answer_level() {
        let mut a = h264("42e034", 1).parameters;
        let b = h264("42e01f", 1).parameters;
        assert_eq!(
            h264::answer_profile_level_id(&a, &b),
            Ok(Some("42e034".into()))
        );
        a.remove("level-asymmetry-allowed");
        assert_eq!(
            h264::answer_profile_level_id(&a, &b),
            Ok(Some("42e01f".into()))
        );
        let none = CodecParameters::new();
        assert_eq!(h264::answer_profile_level_id(&none, &none), Ok(None));
        assert!(h264::answer_profile_level_id(&a, &h264("4d0032", 1).parameters).is_err());
    }

    #[test]
    fn mime_classification() {
        assert!(is_rtx("video/rtx"));
        assert!(is_rtx("video/RTX"));
        assert!(!is_rtx("rtx"));
        assert!(is_media_codec("audio/opus"));
        assert!(!is_media_codec("audio/CN"));
        assert!(!is_media_codec("video/red"));
        assert!(!is_media_codec("text/plain"));
        assert!(is_fec("video/ulpfec"));
    }

    #[test]
    fn audio_channels_default_to_one() {
        let mut a = RtpCodecCapability::new("audio/opus", 48000);
        let b = RtpCodecCapability::new("audio/opus", 48000).channels(1);
        assert!(match_codecs(&a, &b, true));
        a.channels = Some(2);
        assert!(!match_codecs(&a, &b, true));
        // Video channel counts are ignored.
        let v1 = RtpCodecCapability::new("video/VP8", 90000).channels(3);
        let v2 = RtpCodecCapability::new("video/vp8", 90000);
        assert!(match_codecs(&v1, &v2, true));
    }

    #[test]
    fn scalability_modes() {
        let p = |s: &str| parse_scalability_mode(Some(s));
        assert_eq!(
            (p("L1T3").spatial_layers, p("L1T3").temporal_layers),
            (1, 3)
        );
        assert_eq!((p("S3T3").spatial_layers, p("L3T3_KEY").ksvc), (3, true));
        assert_eq!(p("L12T10").temporal_layers, 10);
        assert_eq!(p("L1T123").temporal_layers, 12);
        assert_eq!(p("L123T3"), ScalabilityMode::default());
        assert_eq!(p("L0T3"), ScalabilityMode::default());
        assert_eq!(p("X1T3"), ScalabilityMode::default());
        assert_eq!(p("L1T"), ScalabilityMode::default());
        assert_eq!(p(""), ScalabilityMode::default());
        assert_eq!(parse_scalability_mode(None), ScalabilityMode::default());
    }
}
