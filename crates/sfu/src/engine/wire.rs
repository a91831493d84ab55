//! Small translations between the wire, mediasoup's JSON and str0m's
//! configuration: the STUN facts used for demultiplexing (here and in the
//! driver), the checks on `dtlsParameters`, and the codec and
//! header-extension tables an `Rtc` is built with.
//!
//! Why not str0m's STUN parser (`str0m::ice::StunMessage`): its module is
//! `#[doc(hidden)]` (no semver promise), and it validates a whole message
//! (exact length, MESSAGE-INTEGRITY and PRIORITY on requests, every
//! attribute decoded, an error `String` built for each refusal), which is
//! the `Rtc`'s job once the packet reaches it. Routing needs less and must
//! be cheap on every datagram: whether it is STUN at all, whether it is a
//! Binding request, and the USERNAME, without copying. Measured with
//! `cargo bench -p vtp-sfu --bench wire` (a browser's Binding request: 64
//! ns here, 208 ns for str0m's parse; an RTP packet told apart from STUN:
//! 10 ns here, 68 ns for str0m's, which builds an error message).

use std::collections::BTreeMap;

use serde_json::Value;
use str0m::crypto::Fingerprint;
use str0m::format::{Codec, CodecConfig, FormatParams};
use str0m::media::Frequency;
use str0m::rtp::{Extension, ExtensionMap};

use super::types::{DtlsParameters, EngineError};
use crate::rtp::{RtpCodecParameters, is_rtx, uri};

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_HEADER_LEN: usize = 20;
const STUN_BINDING_REQUEST: u16 = 0x0001;
const STUN_ATTR_USERNAME: u16 = 0x0006;

/// What routing needs of a STUN message; see [`parse_stun`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StunInfo<'a> {
    /// Class request, method Binding (type 0x0001): an ICE connectivity
    /// check.
    pub binding_request: bool,
    /// The USERNAME attribute; `None` when absent, cut short or not UTF-8.
    pub username: Option<&'a str>,
}

impl<'a> StunInfo<'a> {
    /// The local (our) ufrag: USERNAME up to its `:`, or all of it.
    pub fn local_ufrag(&self) -> Option<&'a str> {
        let username = self.username?;
        Some(
            username
                .split_once(':')
                .map_or(username, |(local, _)| local),
        )
    }

    /// USERNAME as ICE writes it, `local:remote`; `None` without the `:`.
    pub fn ufrags(&self) -> Option<(&'a str, &'a str)> {
        self.username?.split_once(':')
    }
}

/// Reads a packet as STUN (RFC 7983: first byte 0–3, then the magic
/// cookie after the type and length); `None` when it is not (DTLS, RTP,
/// RTCP, anything shorter than the header). The message is not validated
/// further: attributes are walked only up to USERNAME, and one that runs
/// past the declared length or the packet ends the walk.
pub fn parse_stun(buf: &[u8]) -> Option<StunInfo<'_>> {
    if buf.len() < STUN_HEADER_LEN || buf[0] & 0xC0 != 0 || buf[4..8] != STUN_MAGIC {
        return None;
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let username = buf
        .get(STUN_HEADER_LEN..STUN_HEADER_LEN + len)
        .and_then(find_username);
    Some(StunInfo {
        binding_request: msg_type == STUN_BINDING_REQUEST,
        username,
    })
}

fn find_username(body: &[u8]) -> Option<&str> {
    let mut at = 0;
    while at + 4 <= body.len() {
        let attr = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        if attr == STUN_ATTR_USERNAME {
            return std::str::from_utf8(value).ok();
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// Validated `connect` input: the peer's sha-256 fingerprint and whether we
/// are the DTLS client (`active`).
#[derive(Clone, Debug)]
pub(crate) struct RemoteDtls {
    pub fingerprint: Fingerprint,
    pub active: bool,
}

fn digest_len(algorithm: &str) -> Option<usize> {
    Some(match algorithm {
        "md2" | "md5" => 16,
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        _ => return None,
    })
}

fn parse_hex_fingerprint(value: &str, len: usize) -> Option<Vec<u8>> {
    let bytes: Option<Vec<u8>> = value
        .split(':')
        .map(|pair| {
            if pair.len() == 2 {
                u8::from_str_radix(pair, 16).ok()
            } else {
                None
            }
        })
        .collect();
    bytes.filter(|b| b.len() == len)
}

/// Checks `dtlsParameters` from a client: role `client`, `server` or `auto`
/// (absent = `auto`), every fingerprint of a known algorithm with a
/// well-formed value, and one of them sha-256 (the one str0m verifies).
/// A remote `client` makes us the DTLS server (what mediasoup-client always
/// asks); `server` or `auto` makes us the client, as mediasoup does.
pub(crate) fn parse_remote_dtls(value: &Value) -> Result<RemoteDtls, EngineError> {
    let bad = |m: String| EngineError::InvalidDtlsParameters(m);
    let params: DtlsParameters =
        serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
    let active = match params.role.as_str() {
        "client" => false,
        "server" | "auto" => true,
        other => return Err(bad(format!("unknown role {other:?}"))),
    };
    if params.fingerprints.is_empty() {
        return Err(bad("no fingerprints".into()));
    }
    let mut sha256 = None;
    for fp in &params.fingerprints {
        let algorithm = fp.algorithm.to_ascii_lowercase();
        let len = digest_len(&algorithm)
            .ok_or_else(|| bad(format!("unknown fingerprint algorithm {:?}", fp.algorithm)))?;
        let bytes = parse_hex_fingerprint(&fp.value, len)
            .ok_or_else(|| bad(format!("malformed {algorithm} fingerprint")))?;
        if algorithm == "sha-256" && sha256.is_none() {
            sha256 = Some(bytes);
        }
    }
    let bytes = sha256.ok_or_else(|| bad("no sha-256 fingerprint".into()))?;
    Ok(RemoteDtls {
        fingerprint: Fingerprint {
            hash_func: "sha-256".into(),
            bytes,
        },
        active,
    })
}

/// `AB:CD:…` of a fingerprint.
pub(crate) fn fingerprint_value(fp: &Fingerprint) -> String {
    fp.bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The str0m extension for a header-extension URI the forwarding path
/// understands; `None` for the rest (ignored on input).
pub(crate) fn extension_for_uri(u: &str) -> Option<Extension> {
    Some(match u {
        uri::MID => Extension::RtpMid,
        uri::RTP_STREAM_ID => Extension::RtpStreamId,
        uri::REPAIRED_RTP_STREAM_ID => Extension::RepairedRtpStreamId,
        uri::ABS_SEND_TIME => Extension::AbsoluteSendTime,
        uri::TRANSPORT_WIDE_CC => Extension::TransportSequenceNumber,
        uri::SSRC_AUDIO_LEVEL => Extension::AudioLevel,
        uri::VIDEO_ORIENTATION => Extension::VideoOrientation,
        _ => return None,
    })
}

/// What identifies a codec for str0m in RTP mode: its payload type, codec,
/// clock rate, channels, RTX payload type and H.264 format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CodecEntry {
    pub pt: u8,
    pub mime: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub rtx: Option<u8>,
    pub packetization_mode: Option<u8>,
    pub profile_level_id: Option<u32>,
}

fn str0m_codec(mime: &str) -> Option<Codec> {
    Some(match mime {
        "audio/opus" => Codec::Opus,
        "audio/pcmu" => Codec::PCMU,
        "audio/pcma" => Codec::PCMA,
        "audio/g722" => Codec::G722,
        "video/vp8" => Codec::Vp8,
        "video/vp9" => Codec::Vp9,
        "video/h264" => Codec::H264,
        "video/av1" => Codec::Av1,
        _ => return None,
    })
}

/// The media codecs of `params` (with their RTX payload types) as str0m
/// codec entries. Errors on a codec str0m cannot carry.
pub(crate) fn codec_entries(codecs: &[RtpCodecParameters]) -> Result<Vec<CodecEntry>, EngineError> {
    let mut out = Vec::new();
    for c in codecs.iter().filter(|c| !is_rtx(&c.mime_type)) {
        let mime = c.mime_type.to_ascii_lowercase();
        if str0m_codec(&mime).is_none() {
            return Err(EngineError::Unsupported(format!(
                "codec {} cannot be forwarded",
                c.mime_type
            )));
        }
        let rtx = codecs
            .iter()
            .find(|r| {
                is_rtx(&r.mime_type) && r.parameters.get_u64("apt") == Some(c.payload_type.into())
            })
            .map(|r| r.payload_type);
        out.push(CodecEntry {
            pt: c.payload_type,
            mime,
            clock_rate: c.clock_rate,
            channels: c.channels,
            rtx,
            packetization_mode: c
                .parameters
                .get_u64("packetization-mode")
                .and_then(|v| u8::try_from(v).ok()),
            profile_level_id: c
                .parameters
                .get_str("profile-level-id")
                .and_then(|v| u32::from_str_radix(v, 16).ok()),
        });
    }
    Ok(out)
}

/// Fills a str0m codec table.
pub(crate) fn apply_codecs(config: &mut CodecConfig, entries: &[CodecEntry]) {
    for e in entries {
        let (Some(codec), Some(freq)) = (str0m_codec(&e.mime), Frequency::new(e.clock_rate)) else {
            continue;
        };
        let format = FormatParams {
            packetization_mode: e.packetization_mode,
            profile_level_id: e.profile_level_id,
            level_asymmetry_allowed: e.profile_level_id.map(|_| true),
            ..Default::default()
        };
        config.add_config(
            e.pt.into(),
            e.rtx.map(Into::into),
            codec,
            freq,
            e.channels,
            format,
        );
    }
}

/// A str0m extension map from `id → uri`.
pub(crate) fn extension_map(ids: &BTreeMap<u8, String>) -> ExtensionMap {
    let mut map = ExtensionMap::empty();
    for (id, u) in ids {
        if let Some(ext) = extension_for_uri(u) {
            map.set(*id, ext);
        }
    }
    map
}

/// Whether `s` survives str0m's `Mid`/`Rid` conversion unchanged (ASCII
/// alphanumerics, at most `max` characters, not empty).
pub(crate) fn valid_str0m_id(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A STUN message of `msg_type` with a padded USERNAME after another
    /// attribute.
    fn stun(username: &str, msg_type: u16) -> Vec<u8> {
        let mut attrs = vec![0x80, 0x22, 0, 3, b'a', b'b', b'c', 0];
        attrs.extend_from_slice(&STUN_ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = msg_type.to_be_bytes().to_vec();
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn stun_username_gives_both_ufrags() {
        let m = stun("abcd:xyz", 1);
        let info = parse_stun(&m).unwrap();
        assert!(info.binding_request);
        assert_eq!(info.ufrags(), Some(("abcd", "xyz")));
        assert_eq!(info.local_ufrag(), Some("abcd"));
        let m = stun("nocolon", 1);
        let no_colon = parse_stun(&m).unwrap();
        assert_eq!(no_colon.ufrags(), None);
        assert_eq!(no_colon.local_ufrag(), Some("nocolon"));
        let mut not_utf8 = stun("ab:c", 1);
        let at = not_utf8.len() - 4;
        not_utf8[at] = 0xFF;
        assert_eq!(parse_stun(&not_utf8).unwrap().username, None);
    }

    #[test]
    fn binding_requests_are_told_from_other_stun() {
        assert!(parse_stun(&stun("a:b", 0x0001)).unwrap().binding_request);
        for (msg_type, what) in [(0x0101, "a response"), (0x0011, "an indication")] {
            let m = stun("a:b", msg_type);
            let info = parse_stun(&m).unwrap();
            assert!(!info.binding_request, "{what}");
            assert_eq!(info.local_ufrag(), Some("a"), "{what}");
        }
    }

    #[test]
    fn other_packets_are_not_stun() {
        assert_eq!(parse_stun(&[0x80, 0x60, 0, 0]), None);
        assert_eq!(parse_stun(&[22, 254, 253, 0, 0, 0, 0, 0]), None);
        let m = stun("abcd:xyz", 1);
        assert_eq!(parse_stun(&m[..19]), None, "shorter than the header");
        let mut rtp = m.clone();
        rtp[0] = 0x80;
        assert_eq!(parse_stun(&rtp), None);
        let mut no_cookie = m;
        no_cookie[4] = 0;
        assert_eq!(parse_stun(&no_cookie), None);
    }

    #[test]
    fn cut_stun_is_stun_without_username() {
        let m = stun("abcd:xyz", 1);
        for cut in [&m[..20], &m[..26], &m[..m.len() - 1]] {
            let info = parse_stun(cut).unwrap();
            assert_eq!(info.username, None, "{} bytes", cut.len());
            assert!(info.binding_request);
        }
        // A USERNAME longer than the declared length.
        let mut short_len = m.clone();
        short_len[3] = 12;
        assert_eq!(parse_stun(&short_len).unwrap().username, None);
        let mut empty = m[..20].to_vec();
        empty[2] = 0;
        empty[3] = 0;
        assert_eq!(parse_stun(&empty).unwrap().username, None);
    }

    #[test]
    fn dtls_parameters_are_checked() {
        let fp = vec!["AB"; 32].join(":");
        let ok = parse_remote_dtls(&json!({"role": "client", "fingerprints": [
            {"algorithm": "sha-1", "value": vec!["00"; 20].join(":")},
            {"algorithm": "sha-256", "value": fp}]}))
        .unwrap();
        assert!(!ok.active);
        assert_eq!(ok.fingerprint.bytes, vec![0xAB; 32]);
        assert!(
            parse_remote_dtls(&json!({"fingerprints": [{"algorithm": "sha-256", "value": fp}]}))
                .unwrap()
                .active
        );
        for bad in [
            json!({"role": "boss", "fingerprints": [{"algorithm": "sha-256", "value": fp}]}),
            json!({"role": "client", "fingerprints": []}),
            json!({"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": "AB:CD"}]}),
            json!({"role": "client", "fingerprints": [{"algorithm": "rot13", "value": fp}]}),
            json!({"role": "client", "fingerprints": [{"algorithm": "sha-1", "value": vec!["00"; 20].join(":")}]}),
            json!({"role": 3}),
            json!("x"),
        ] {
            assert!(parse_remote_dtls(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn str0m_ids() {
        assert!(valid_str0m_id("0", 16));
        assert!(valid_str0m_id("r2", 8));
        assert!(!valid_str0m_id("a-b", 16));
        assert!(!valid_str0m_id("", 16));
        assert!(!valid_str0m_id("123456789", 8));
    }
}
