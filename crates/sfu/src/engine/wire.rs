//! Small translations between the wire, mediasoup's JSON and str0m's
//! configuration: the STUN USERNAME used for demultiplexing, the checks on
//! `dtlsParameters`, and the codec and header-extension tables an `Rtc` is
//! built with.

use std::collections::BTreeMap;

use serde_json::Value;
use str0m::crypto::Fingerprint;
use str0m::format::{Codec, CodecConfig, FormatParams};
use str0m::media::Frequency;
use str0m::rtp::{Extension, ExtensionMap};

use super::types::{DtlsParameters, EngineError};
use crate::rtp::{RtpCodecParameters, is_rtx, uri};

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_BINDING_REQUEST: u16 = 0x0001;
const STUN_ATTR_USERNAME: u16 = 0x0006;

/// A STUN message's USERNAME split into `(local, remote)` ufrags, and
/// whether it is a Binding request. `None` for anything that is not STUN or
/// has no usable USERNAME.
pub(crate) fn stun_username(buf: &[u8]) -> Option<(String, String, bool)> {
    if buf.len() < 20 || buf[0] & 0xC0 != 0 || buf[4..8] != STUN_MAGIC {
        return None;
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let body = buf.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let attr = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        if attr == STUN_ATTR_USERNAME {
            let text = std::str::from_utf8(value).ok()?;
            let (local, remote) = text.split_once(':')?;
            return Some((
                local.to_owned(),
                remote.to_owned(),
                msg_type == STUN_BINDING_REQUEST,
            ));
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

    fn stun(username: &str, msg_type: u16) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&STUN_ATTR_USERNAME.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&msg_type.to_be_bytes());
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn stun_username_is_split() {
        let m = stun("abcd:xyz", 1);
        assert_eq!(stun_username(&m), Some(("abcd".into(), "xyz".into(), true)));
        assert_eq!(
            stun_username(&stun("abcd:xyz", 0x0101)).map(|u| u.2),
            Some(false)
        );
        assert_eq!(stun_username(&stun("nocolon", 1)), None);
        assert_eq!(stun_username(&m[..24]), None);
        assert_eq!(stun_username(&[0x80, 0x60, 0, 0]), None);
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
