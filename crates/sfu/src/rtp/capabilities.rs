//! What the engine can negotiate, and the capabilities of a router.
//!
//! This module owns two tables and one builder:
//! - [`supported_rtp_capabilities`]: every codec and header extension the
//!   engine is willing to put into a router, with their RTCP feedback and
//!   header-extension ids and directions (these ids are the ones browsers
//!   already know from mediasoup, so they stay stable across rooms);
//! - [`default_media_codecs`]: the codecs VTP rooms use (docs/protocol.md, "Media requests": opus,
//!   VP8, H.264 Constrained Baseline and Main);
//! - [`generate_router_rtp_capabilities`]: turns a list of wanted media codecs
//!   into router capabilities the way mediasoup does — each codec is looked
//!   up in the supported table, keeps a payload type it asks for or takes the
//!   next free dynamic one (100…127 then 96…99), merges its parameters over
//!   the supported ones, and every video codec gets its own `video/rtx`.
//!
//! The router capabilities are what `join-room` returns as
//! `routerRtpCapabilities` and what every producer is mapped onto.

use super::codec::match_codecs;
use super::error::RtpError;
use super::types::{
    MediaKind, RtcpFeedback, RtpCapabilities, RtpCodecCapability, RtpHeaderExtension,
    RtpHeaderExtensionDirection,
};
use super::validate::validate_codec_capability;

/// Header extension URIs the negotiation code refers to by name.
pub mod uri {
    pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    pub const RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    pub const REPAIRED_RTP_STREAM_ID: &str =
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    pub const TRANSPORT_WIDE_CC: &str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    pub const SSRC_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    pub const VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
    pub const TOFFSET: &str = "urn:ietf:params:rtp-hdrext:toffset";
    pub const ABS_CAPTURE_TIME: &str =
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
    pub const PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
}

/// Dynamic payload types in the order they are handed out.
const DYNAMIC_PAYLOAD_TYPES: [u8; 32] = [
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 96, 97, 98, 99,
];

fn feedback(list: &[(&str, &str)]) -> Vec<RtcpFeedback> {
    list.iter().map(|(t, p)| RtcpFeedback::new(t, p)).collect()
}

/// Feedback of every supported video codec: NACK, PLI, FIR and both
/// bandwidth-estimation mechanisms (consumers keep one of the last two).
fn video_feedback() -> Vec<RtcpFeedback> {
    feedback(&[
        ("nack", ""),
        ("nack", "pli"),
        ("ccm", "fir"),
        ("goog-remb", ""),
        ("transport-cc", ""),
    ])
}

fn opus_like(mime_type: &str, channels: u8) -> RtpCodecCapability {
    let mut c = RtpCodecCapability::new(mime_type, 48000).channels(channels);
    c.rtcp_feedback = feedback(&[("nack", ""), ("transport-cc", "")]);
    c
}

fn audio(mime_type: &str, clock_rate: u32, pt: Option<u8>) -> RtpCodecCapability {
    let mut c = RtpCodecCapability::new(mime_type, clock_rate);
    c.preferred_payload_type = pt;
    c.rtcp_feedback = feedback(&[("transport-cc", "")]);
    c
}

fn video(mime_type: &str) -> RtpCodecCapability {
    let mut c = RtpCodecCapability::new(mime_type, 90000);
    c.rtcp_feedback = video_feedback();
    c
}

fn ext(
    kind: MediaKind,
    uri: &str,
    id: u8,
    direction: RtpHeaderExtensionDirection,
) -> RtpHeaderExtension {
    RtpHeaderExtension {
        kind,
        uri: uri.to_owned(),
        preferred_id: id,
        preferred_encrypt: false,
        direction,
    }
}

/// Everything the engine can put into a router.
///
/// Codecs carry no payload type unless the codec has a static one (PCMU 0,
/// PCMA 8, G722 9, CN 13). Header extensions are listed per kind with the
/// router's id and direction: RID and repaired-RID are only received (they
/// identify a producer's simulcast streams and are stripped on the way out),
/// and transport-wide CC is only received for audio, as in mediasoup.
pub fn supported_rtp_capabilities() -> RtpCapabilities {
    use MediaKind::{Audio, Video};
    use RtpHeaderExtensionDirection::{Recvonly, Sendrecv};
    let multiopus = |channels: u8, mapping: &str, streams: u8, coupled: u8| {
        opus_like("audio/multiopus", channels)
            .param("channel_mapping", mapping)
            .param("num_streams", streams)
            .param("coupled_streams", coupled)
    };
    let h264_like = |mime_type: &str| video(mime_type).param("level-asymmetry-allowed", 1);
    let comfort_noise = |rate| {
        let mut c = RtpCodecCapability::new("audio/CN", rate);
        c.preferred_payload_type = Some(13);
        c
    };
    let codecs = vec![
        opus_like("audio/opus", 2),
        multiopus(4, "0,1,2,3", 2, 2),
        multiopus(6, "0,4,1,2,3,5", 4, 2),
        multiopus(8, "0,6,1,2,3,4,5,7", 5, 3),
        audio("audio/PCMU", 8000, Some(0)),
        audio("audio/PCMA", 8000, Some(8)),
        audio("audio/G722", 8000, Some(9)),
        comfort_noise(32000),
        comfort_noise(16000),
        comfort_noise(8000),
        RtpCodecCapability::new("audio/telephone-event", 48000),
        RtpCodecCapability::new("audio/telephone-event", 32000),
        RtpCodecCapability::new("audio/telephone-event", 16000),
        RtpCodecCapability::new("audio/telephone-event", 8000),
        video("video/VP8"),
        video("video/VP9"),
        h264_like("video/H264"),
        h264_like("video/H264-SVC"),
        h264_like("video/H265"),
    ];
    let header_extensions = vec![
        ext(Audio, uri::MID, 1, Sendrecv),
        ext(Video, uri::MID, 1, Sendrecv),
        ext(Video, uri::RTP_STREAM_ID, 2, Recvonly),
        ext(Video, uri::REPAIRED_RTP_STREAM_ID, 3, Recvonly),
        ext(Audio, uri::ABS_SEND_TIME, 4, Sendrecv),
        ext(Video, uri::ABS_SEND_TIME, 4, Sendrecv),
        ext(Audio, uri::TRANSPORT_WIDE_CC, 5, Recvonly),
        ext(Video, uri::TRANSPORT_WIDE_CC, 5, Sendrecv),
        ext(Audio, uri::SSRC_AUDIO_LEVEL, 10, Sendrecv),
        ext(Video, uri::VIDEO_ORIENTATION, 11, Sendrecv),
        ext(Video, uri::TOFFSET, 12, Sendrecv),
        ext(Audio, uri::ABS_CAPTURE_TIME, 13, Sendrecv),
        ext(Video, uri::ABS_CAPTURE_TIME, 13, Sendrecv),
        ext(Audio, uri::PLAYOUT_DELAY, 14, Sendrecv),
        ext(Video, uri::PLAYOUT_DELAY, 14, Sendrecv),
    ];
    RtpCapabilities {
        codecs,
        header_extensions,
    }
}

/// The media codecs of a VTP room: opus 48000/2, VP8, and H.264 with
/// packetization-mode 1 in Constrained Baseline 3.1 (`42e01f`) and Main 5.0
/// (`4d0032`), both allowing level asymmetry.
pub fn default_media_codecs() -> Vec<RtpCodecCapability> {
    let h264 = |plid: &str| {
        RtpCodecCapability::new("video/H264", 90000)
            .param("packetization-mode", 1)
            .param("profile-level-id", plid)
            .param("level-asymmetry-allowed", 1)
    };
    vec![
        RtpCodecCapability::new("audio/opus", 48000).channels(2),
        RtpCodecCapability::new("video/VP8", 90000),
        h264("42e01f"),
        h264("4d0032"),
    ]
}

/// Router capabilities for [`default_media_codecs`]: opus 100, VP8 101 (RTX
/// 102), H.264 42e01f 103 (RTX 104), H.264 4d0032 105 (RTX 106), and every
/// supported header extension.
pub fn router_rtp_capabilities() -> RtpCapabilities {
    // The default list is fixed and known to be supported; should that ever
    // stop being true, fall back to the supported extensions with no codecs
    // rather than panicking (tests guard the happy path).
    generate_router_rtp_capabilities(&default_media_codecs()).unwrap_or_else(|_| RtpCapabilities {
        codecs: Vec::new(),
        header_extensions: supported_rtp_capabilities().header_extensions,
    })
}

/// Builds router capabilities from wanted media codecs (mediasoup's
/// `generateRouterRtpCapabilities`).
///
/// Each media codec must match a supported codec (MIME type, clock rate,
/// channels; audio channels default to 1, so opus must say 2). Its
/// `preferredPayloadType`, if given, is kept; otherwise a static payload
/// type of the supported codec is used, otherwise the next dynamic one.
/// Parameters of the media codec override the supported codec's. Each video
/// codec is followed by a `video/rtx` codec with `apt` set to it.
pub fn generate_router_rtp_capabilities(
    media_codecs: &[RtpCodecCapability],
) -> Result<RtpCapabilities, RtpError> {
    let supported = supported_rtp_capabilities();
    let mut dynamic: Vec<u8> = DYNAMIC_PAYLOAD_TYPES.to_vec();
    let mut caps = RtpCapabilities {
        codecs: Vec::new(),
        header_extensions: supported.header_extensions,
    };

    for wanted in media_codecs {
        let mut wanted = wanted.clone();
        validate_codec_capability(&mut wanted)?;
        let base = supported
            .codecs
            .iter()
            .find(|s| match_codecs(&wanted, *s, false))
            .ok_or_else(|| RtpError::UnsupportedCodec {
                mime_type: wanted.mime_type.clone(),
                payload_type: wanted.preferred_payload_type,
            })?;
        let mut codec = base.clone();

        let pt = match (wanted.preferred_payload_type, base.preferred_payload_type) {
            (Some(pt), _) => {
                dynamic.retain(|&d| d != pt);
                pt
            }
            (None, Some(static_pt)) => static_pt,
            (None, None) => take_dynamic(&mut dynamic)?,
        };
        if caps
            .codecs
            .iter()
            .any(|c| c.preferred_payload_type == Some(pt))
        {
            return Err(RtpError::DuplicatedPayloadType(pt));
        }
        codec.preferred_payload_type = Some(pt);
        for (key, value) in wanted.parameters.iter() {
            codec.parameters.insert(key, value.clone());
        }
        let kind = codec.kind;
        let clock_rate = codec.clock_rate;
        caps.codecs.push(codec);

        if kind == MediaKind::Video {
            let rtx_pt = take_dynamic(&mut dynamic)?;
            let mut rtx = RtpCodecCapability::new("video/rtx", clock_rate)
                .payload_type(rtx_pt)
                .param("apt", pt);
            rtx.kind = MediaKind::Video;
            caps.codecs.push(rtx);
        }
    }
    Ok(caps)
}

fn take_dynamic(dynamic: &mut Vec<u8>) -> Result<u8, RtpError> {
    if dynamic.is_empty() {
        return Err(RtpError::PayloadTypesExhausted);
    }
    Ok(dynamic.remove(0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn default_router_capabilities_have_design_payload_types() {
        let caps = generate_router_rtp_capabilities(&default_media_codecs()).expect("supported");
        let summary: Vec<(String, Option<u8>, Option<u64>)> = caps
            .codecs
            .iter()
            .map(|c| {
                (
                    c.mime_type.clone(),
                    c.preferred_payload_type,
                    c.parameters.get_u64("apt"),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("audio/opus".into(), Some(100), None),
                ("video/VP8".into(), Some(101), None),
                ("video/rtx".into(), Some(102), Some(101)),
                ("video/H264".into(), Some(103), None),
                ("video/rtx".into(), Some(104), Some(103)),
                ("video/H264".into(), Some(105), None),
                ("video/rtx".into(), Some(106), Some(105)),
            ]
        );
        assert_eq!(caps, router_rtp_capabilities());
        let h264 = &caps.codecs[5];
        assert_eq!(h264.parameters.get_str("profile-level-id"), Some("4d0032"));
        assert_eq!(h264.parameters.get_u64("packetization-mode"), Some(1));
        assert_eq!(h264.parameters.get_u64("level-asymmetry-allowed"), Some(1));
        assert_eq!(caps.codecs[0].channels, Some(2));
        assert_eq!(caps.codecs[1].rtcp_feedback, video_feedback());
        assert!(caps.codecs[2].rtcp_feedback.is_empty());
    }

    #[test]
    fn router_capabilities_json_shape() {
        let v = serde_json::to_value(router_rtp_capabilities()).expect("serialises");
        assert_eq!(
            v["codecs"][0],
            json!({
                "kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100,
                "clockRate": 48000, "channels": 2, "parameters": {},
                "rtcpFeedback": [
                    { "type": "nack", "parameter": "" },
                    { "type": "transport-cc", "parameter": "" }
                ]
            })
        );
        assert_eq!(
            v["codecs"][2],
            json!({
                "kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102,
                "clockRate": 90000, "parameters": { "apt": 101 }, "rtcpFeedback": []
            })
        );
        let exts = v["headerExtensions"].as_array().expect("array");
        let has = |kind: &str, u: &str| {
            exts.iter()
                .any(|e| e["kind"] == json!(kind) && e["uri"] == json!(u))
        };
        for u in [
            uri::MID,
            uri::ABS_SEND_TIME,
            uri::TRANSPORT_WIDE_CC,
            uri::SSRC_AUDIO_LEVEL,
        ] {
            assert!(has("audio", u), "{u}");
        }
        for u in [
            uri::MID,
            uri::RTP_STREAM_ID,
            uri::REPAIRED_RTP_STREAM_ID,
            uri::ABS_SEND_TIME,
            uri::TRANSPORT_WIDE_CC,
        ] {
            assert!(has("video", u), "{u}");
        }
        assert_eq!(
            exts[2],
            json!({ "kind": "video", "uri": uri::RTP_STREAM_ID, "preferredId": 2,
                    "preferredEncrypt": false, "direction": "recvonly" })
        );
        // Round-trips.
        let back: RtpCapabilities = serde_json::from_value(v).expect("deserialises");
        assert_eq!(back, router_rtp_capabilities());
    }

    #[test]
    fn preferred_and_static_payload_types() {
        let caps = generate_router_rtp_capabilities(&[
            RtpCodecCapability::new("video/VP8", 90000).payload_type(100),
            RtpCodecCapability::new("audio/PCMU", 8000),
            RtpCodecCapability::new("audio/opus", 48000).channels(2),
        ])
        .expect("supported");
        let pts: Vec<Option<u8>> = caps
            .codecs
            .iter()
            .map(|c| c.preferred_payload_type)
            .collect();
        assert_eq!(pts, vec![Some(100), Some(101), Some(0), Some(102)]);
    }

    #[test]
    fn refuses_unsupported_and_conflicting_codecs() {
        let e = generate_router_rtp_capabilities(&[RtpCodecCapability::new("video/bogus", 90000)]);
        assert!(matches!(e, Err(RtpError::UnsupportedCodec { .. })));
        // Opus without channels means mono, which is not supported.
        let e = generate_router_rtp_capabilities(&[RtpCodecCapability::new("audio/opus", 48000)]);
        assert!(matches!(e, Err(RtpError::UnsupportedCodec { .. })));
        let e = generate_router_rtp_capabilities(&[
            RtpCodecCapability::new("video/VP8", 90000),
            RtpCodecCapability::new("video/VP9", 90000).payload_type(101),
        ]);
        assert_eq!(e, Err(RtpError::DuplicatedPayloadType(101)));
        let e = generate_router_rtp_capabilities(&[RtpCodecCapability::new("nonsense", 1)]);
        assert!(matches!(e, Err(RtpError::InvalidMimeType(_))));
        let many = vec![RtpCodecCapability::new("video/VP8", 90000); 17];
        assert_eq!(
            generate_router_rtp_capabilities(&many),
            Err(RtpError::PayloadTypesExhausted)
        );
    }
}
