//! mediasoup's JSON shapes as this peer reads and writes them, and the
//! payload-type and header-extension numbering of its `Rtc`s.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use str0m::RtcConfig;
use str0m::format::Codec;
use str0m::media::Frequency;
use str0m::rtp::{Extension, ExtensionMap};

use super::MediaError;

pub(crate) mod uri {
    pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    pub const RRID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    pub const TWCC: &str =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
}

/// Header extensions this peer understands, by URI.
fn extension_of(uri: &str) -> Option<Extension> {
    Some(match uri {
        uri::MID => Extension::RtpMid,
        uri::RID => Extension::RtpStreamId,
        uri::RRID => Extension::RepairedRtpStreamId,
        uri::ABS_SEND_TIME => Extension::AbsoluteSendTime,
        uri::TWCC => Extension::TransportSequenceNumber,
        uri::AUDIO_LEVEL => Extension::AudioLevel,
        _ => return None,
    })
}

/// Payload types and header-extension ids of one `Rtc` (fixed when it is
/// built, as str0m wants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Numbering {
    pub opus: Option<u8>,
    pub vp8: Option<u8>,
    pub vp8_rtx: Option<u8>,
    /// (id, URI) pairs.
    pub extensions: Vec<(u8, &'static str)>,
}

/// Chromium's numbering, used by every send transport: VP8 96 + RTX 97,
/// opus 111; audio-level 14, abs-send-time 2, transport-cc 4, mid 9, rid 10,
/// repaired-rid 11 (as Chromium 156 numbers them with mediasoup-client).
pub(crate) const CHROMIUM_VP8: u8 = 96;
pub(crate) const CHROMIUM_VP8_RTX: u8 = 97;
pub(crate) const CHROMIUM_OPUS: u8 = 111;

impl Numbering {
    pub(crate) fn chromium() -> Self {
        Numbering {
            opus: Some(CHROMIUM_OPUS),
            vp8: Some(CHROMIUM_VP8),
            vp8_rtx: Some(CHROMIUM_VP8_RTX),
            extensions: vec![
                (14, uri::AUDIO_LEVEL),
                (2, uri::ABS_SEND_TIME),
                (4, uri::TWCC),
                (9, uri::MID),
                (10, uri::RID),
                (11, uri::RRID),
            ],
        }
    }

    /// The numbering of a router's `rtpCapabilities` (what consumers use):
    /// the first opus, the first VP8 and its RTX, every understood
    /// extension (the first id of each URI; an id already taken is skipped).
    pub(crate) fn from_router_capabilities(caps: &Value) -> Result<Self, MediaError> {
        let caps: Capabilities = serde_json::from_value(caps.clone())
            .map_err(|e| MediaError::invalid("routerRtpCapabilities", e.to_string()))?;
        let pt_of = |mime: &str| {
            caps.codecs
                .iter()
                .find(|c| c.mime_type.eq_ignore_ascii_case(mime))
                .and_then(|c| c.preferred_payload_type)
        };
        let opus = pt_of("audio/opus");
        let vp8 = pt_of("video/VP8");
        let vp8_rtx = vp8.and_then(|vp8| {
            caps.codecs
                .iter()
                .find(|c| c.mime_type.eq_ignore_ascii_case("video/rtx") && c.apt() == Some(vp8))
                .and_then(|c| c.preferred_payload_type)
        });
        if opus.is_none() && vp8.is_none() {
            return Err(MediaError::Unsupported(
                "the router offers neither audio/opus nor video/VP8".into(),
            ));
        }
        let mut extensions: Vec<(u8, &'static str)> = Vec::new();
        for e in &caps.header_extensions {
            let Some(known) = KNOWN_URIS.iter().find(|u| **u == e.uri) else {
                continue;
            };
            if !(1..=14).contains(&e.preferred_id)
                || extensions
                    .iter()
                    .any(|(id, u)| *id == e.preferred_id || u == known)
            {
                continue;
            }
            extensions.push((e.preferred_id, known));
        }
        Ok(Numbering {
            opus,
            vp8,
            vp8_rtx,
            extensions,
        })
    }

    pub(crate) fn ext_id(&self, uri: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(_, u)| *u == uri)
            .map(|(id, _)| *id)
    }

    /// An RTP-mode `RtcConfig` with exactly this numbering.
    pub(crate) fn rtc_config(&self) -> RtcConfig {
        let mut exts = ExtensionMap::empty();
        for (id, u) in &self.extensions {
            if let Some(ext) = extension_of(u) {
                exts.set(*id, ext);
            }
        }
        // Ingress stats once a second give the NACKs sent and the jitter.
        let mut cfg = RtcConfig::new()
            .set_rtp_mode(true)
            .set_stats_interval(Some(std::time::Duration::from_secs(1)))
            .clear_codecs()
            .set_extension_map(exts);
        let codecs = cfg.codec_config();
        if let Some(pt) = self.vp8 {
            codecs.add_config(
                pt.into(),
                self.vp8_rtx.map(Into::into),
                Codec::Vp8,
                Frequency::NINETY_KHZ,
                None,
                Default::default(),
            );
        }
        if let Some(pt) = self.opus {
            codecs.add_config(
                pt.into(),
                None,
                Codec::Opus,
                Frequency::FORTY_EIGHT_KHZ,
                Some(2),
                Default::default(),
            );
        }
        cfg
    }

    /// Checks that a consumer's `rtpParameters` use this numbering: its
    /// media codec and RTX payload types, and the id of every understood
    /// extension. Returns (media PT, RTX PT).
    pub(crate) fn check_consumer(
        &self,
        kind: Kind,
        params: &RtpParams,
    ) -> Result<(u8, Option<u8>), MediaError> {
        let (mime, ours, ours_rtx) = match kind {
            Kind::Audio => ("audio/opus", self.opus, None),
            Kind::Video => ("video/VP8", self.vp8, self.vp8_rtx),
        };
        let codec = params
            .codecs
            .first()
            .ok_or_else(|| MediaError::invalid("rtpParameters", "no codecs"))?;
        if !codec.mime_type.eq_ignore_ascii_case(mime) {
            return Err(MediaError::Unsupported(format!(
                "consumer codec {} (this peer receives {mime} only)",
                codec.mime_type
            )));
        }
        if Some(codec.payload_type) != ours {
            return Err(MediaError::Unsupported(format!(
                "consumer payload type {} for {mime}, the transport was built with {ours:?}",
                codec.payload_type
            )));
        }
        let rtx = params
            .codecs
            .iter()
            .find(|c| {
                c.mime_type.eq_ignore_ascii_case("video/rtx") && c.apt() == Some(codec.payload_type)
            })
            .map(|c| c.payload_type);
        if rtx.is_some() && rtx != ours_rtx {
            return Err(MediaError::Unsupported(format!(
                "consumer RTX payload type {rtx:?}, the transport was built with {ours_rtx:?}"
            )));
        }
        for e in &params.header_extensions {
            if let Some(known) = KNOWN_URIS.iter().find(|u| **u == e.uri) {
                match self.ext_id(known) {
                    Some(id) if id == e.id => {}
                    mine => {
                        return Err(MediaError::Unsupported(format!(
                            "header extension {known} with id {}, the transport uses {mine:?}",
                            e.id
                        )));
                    }
                }
            }
        }
        Ok((codec.payload_type, rtx))
    }
}

const KNOWN_URIS: [&str; 6] = [
    uri::MID,
    uri::RID,
    uri::RRID,
    uri::ABS_SEND_TIME,
    uri::TWCC,
    uri::AUDIO_LEVEL,
];

/// Media kind of a producer or consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        match s {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }

    pub(crate) fn str0m(self) -> str0m::media::MediaKind {
        match self {
            Kind::Audio => str0m::media::MediaKind::Audio,
            Kind::Video => str0m::media::MediaKind::Video,
        }
    }
}

// ----------------------------------------------------------------------
// Incoming shapes (lenient: unknown fields are ignored).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Capabilities {
    #[serde(default)]
    codecs: Vec<CodecCapability>,
    #[serde(default)]
    header_extensions: Vec<ExtensionCapability>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodecCapability {
    mime_type: String,
    preferred_payload_type: Option<u8>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

impl CodecCapability {
    fn apt(&self) -> Option<u8> {
        apt_of(&self.parameters)
    }
}

fn apt_of(parameters: &Map<String, Value>) -> Option<u8> {
    parameters
        .get("apt")
        .and_then(Value::as_u64)
        .and_then(|v| u8::try_from(v).ok())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionCapability {
    uri: String,
    preferred_id: u8,
}

/// The `create-transport` answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransportAnswer {
    pub id: String,
    pub ice_parameters: IceParams,
    pub ice_candidates: Vec<CandidateParams>,
    pub dtls_parameters: DtlsParams,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IceParams {
    pub username_fragment: String,
    pub password: String,
}

#[derive(Deserialize)]
pub(crate) struct CandidateParams {
    ip: Option<String>,
    address: Option<String>,
    port: u16,
    #[serde(default)]
    protocol: String,
    #[serde(default, rename = "tcpType")]
    tcp_type: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DtlsParams {
    pub fingerprints: Vec<FingerprintParams>,
}

#[derive(Deserialize)]
pub(crate) struct FingerprintParams {
    pub algorithm: String,
    pub value: String,
}

impl TransportAnswer {
    pub(crate) fn parse(answer: &Value) -> Result<Self, MediaError> {
        serde_json::from_value(answer.clone())
            .map_err(|e| MediaError::invalid("create-transport answer", e.to_string()))
    }

    /// The server's candidate of `protocol` (`"udp"`, or `"tcp"`: passive
    /// ones only), preferring the family of `local`.
    pub(crate) fn server_addr(
        &self,
        local: IpAddr,
        protocol: &str,
    ) -> Result<SocketAddr, MediaError> {
        let addrs: Vec<SocketAddr> = self
            .ice_candidates
            .iter()
            .filter(|c| match protocol {
                "udp" => c.protocol.is_empty() || c.protocol.eq_ignore_ascii_case("udp"),
                _ => {
                    c.protocol.eq_ignore_ascii_case(protocol)
                        && c.tcp_type.as_deref().is_none_or(|t| t == "passive")
                }
            })
            .filter_map(|c| {
                let ip = c.ip.as_deref().or(c.address.as_deref())?;
                Some(SocketAddr::new(ip.parse().ok()?, c.port))
            })
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4() == local.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| {
                MediaError::invalid("iceCandidates", format!("no usable {protocol} candidate"))
            })
    }

    /// The server's sha-256 fingerprint (the one algorithm str0m checks).
    pub(crate) fn fingerprint(&self) -> Result<str0m::crypto::Fingerprint, MediaError> {
        let fp = self
            .dtls_parameters
            .fingerprints
            .iter()
            .find(|f| f.algorithm.eq_ignore_ascii_case("sha-256"))
            .ok_or_else(|| MediaError::invalid("dtlsParameters", "no sha-256 fingerprint"))?;
        format!("sha-256 {}", fp.value)
            .parse()
            .map_err(|_| MediaError::invalid("dtlsParameters", "malformed sha-256 fingerprint"))
    }
}

/// `rtpParameters` as far as a receiver needs them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RtpParams {
    pub mid: Option<String>,
    pub codecs: Vec<CodecParams>,
    #[serde(default)]
    pub header_extensions: Vec<ExtensionParams>,
    pub encodings: Vec<EncodingParams>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CodecParams {
    pub mime_type: String,
    pub payload_type: u8,
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

impl CodecParams {
    fn apt(&self) -> Option<u8> {
        apt_of(&self.parameters)
    }
}

#[derive(Deserialize)]
pub(crate) struct ExtensionParams {
    pub uri: String,
    pub id: u8,
}

#[derive(Deserialize)]
pub(crate) struct EncodingParams {
    pub ssrc: Option<u32>,
    pub rtx: Option<RtxParams>,
}

#[derive(Deserialize)]
pub(crate) struct RtxParams {
    pub ssrc: u32,
}

/// The `consume` answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsumeAnswer {
    pub id: String,
    pub producer_id: String,
    pub kind: String,
    pub rtp_parameters: RtpParams,
}

impl ConsumeAnswer {
    pub(crate) fn parse(answer: &Value) -> Result<Self, MediaError> {
        serde_json::from_value(answer.clone())
            .map_err(|e| MediaError::invalid("consume answer", e.to_string()))
    }
}

// ----------------------------------------------------------------------
// Outgoing shapes.

/// `dtlsParameters` for `connect-transport`.
pub(crate) fn dtls_parameters(fingerprint: &str) -> Value {
    let (algorithm, value) = fingerprint
        .split_once(' ')
        .unwrap_or(("sha-256", fingerprint));
    json!({"role": "client", "fingerprints": [{"algorithm": algorithm, "value": value}]})
}

fn ext_json(numbering: &Numbering, uris: &[&str]) -> Vec<Value> {
    uris.iter()
        .filter_map(|u| {
            numbering
                .ext_id(u)
                .map(|id| json!({"uri": u, "id": id, "encrypt": false, "parameters": {}}))
        })
        .collect()
}

/// One simulcast layer as announced in `encodings`.
pub(crate) struct LayerParams<'a> {
    pub ssrc: u32,
    pub rtx: Option<u32>,
    pub rid: Option<&'a str>,
    pub max_bitrate: u32,
}

/// `rtpParameters` of a VP8 producer (Chromium's shape). With RIDs the
/// encodings carry `rid` only (the server learns SSRCs from the rid
/// extension), otherwise `ssrc` and `rtx.ssrc`.
pub(crate) fn video_rtp_parameters(mid: &str, cname: &str, layers: &[LayerParams<'_>]) -> Value {
    let n = Numbering::chromium();
    let simulcast = layers.iter().any(|l| l.rid.is_some());
    let mut uris = vec![uri::MID, uri::ABS_SEND_TIME, uri::TWCC];
    if simulcast {
        uris.extend([uri::RID, uri::RRID]);
    }
    let encodings: Vec<Value> = layers
        .iter()
        .map(|l| match l.rid {
            Some(rid) => json!({"active": true, "rid": rid, "maxBitrate": l.max_bitrate,
                "scalabilityMode": "L1T1", "dtx": false}),
            None => {
                let mut e = json!({"ssrc": l.ssrc, "dtx": false});
                if let Some(rtx) = l.rtx {
                    e["rtx"] = json!({"ssrc": rtx});
                }
                e
            }
        })
        .collect();
    json!({
        "mid": mid,
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": CHROMIUM_VP8, "clockRate": 90000,
             "parameters": {},
             "rtcpFeedback": [
                {"type": "goog-remb", "parameter": ""},
                {"type": "transport-cc", "parameter": ""},
                {"type": "ccm", "parameter": "fir"},
                {"type": "nack", "parameter": ""},
                {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": CHROMIUM_VP8_RTX, "clockRate": 90000,
             "parameters": {"apt": CHROMIUM_VP8}, "rtcpFeedback": []}
        ],
        "headerExtensions": ext_json(&n, &uris),
        "encodings": encodings,
        "rtcp": {"cname": cname, "reducedSize": true}
    })
}

/// `rtpParameters` of an opus producer (Chromium's shape, plus audio-level).
pub(crate) fn audio_rtp_parameters(mid: &str, cname: &str, ssrc: u32) -> Value {
    let n = Numbering::chromium();
    json!({
        "mid": mid,
        "codecs": [
            {"mimeType": "audio/opus", "payloadType": CHROMIUM_OPUS, "clockRate": 48000,
             "channels": 2, "parameters": {"minptime": 10, "useinbandfec": 1},
             "rtcpFeedback": [{"type": "transport-cc", "parameter": ""},
                              {"type": "nack", "parameter": ""}]}
        ],
        "headerExtensions": ext_json(&n, &[uri::MID, uri::ABS_SEND_TIME, uri::TWCC, uri::AUDIO_LEVEL]),
        "encodings": [{"ssrc": ssrc, "dtx": false}],
        "rtcp": {"cname": cname, "reducedSize": true}
    })
}

/// The device `rtpCapabilities` to send with `consume`: the router's
/// capabilities cut down to what this peer receives (opus, VP8 and its RTX,
/// the understood header extensions).
pub fn receive_rtp_capabilities(router_caps: &Value) -> Result<Value, MediaError> {
    let numbering = Numbering::from_router_capabilities(router_caps)?;
    let codecs: Vec<Value> = router_caps
        .get("codecs")
        .and_then(Value::as_array)
        .map(|codecs| {
            codecs
                .iter()
                .filter(|c| {
                    let pt = c
                        .get("preferredPayloadType")
                        .and_then(Value::as_u64)
                        .and_then(|v| u8::try_from(v).ok());
                    pt.is_some() && [numbering.opus, numbering.vp8, numbering.vp8_rtx].contains(&pt)
                })
                .cloned()
                .map(without_transport_cc)
                .collect()
        })
        .unwrap_or_default();
    let exts: Vec<Value> = router_caps
        .get("headerExtensions")
        .and_then(Value::as_array)
        .map(|exts| {
            exts.iter()
                .filter(|e| {
                    let uri = e.get("uri").and_then(Value::as_str).unwrap_or("");
                    let id = e.get("preferredId").and_then(Value::as_u64);
                    numbering
                        .ext_id(uri)
                        .is_some_and(|mine| Some(u64::from(mine)) == id)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({"codecs": codecs, "headerExtensions": exts}))
}

/// This client sends no transport-wide congestion-control feedback, so it
/// does not claim it: the SFU then neither paces nor estimates towards it
/// (an estimate that feedback never informs would hold its downlink to the
/// initial guess).
fn without_transport_cc(mut codec: Value) -> Value {
    if let Some(feedback) = codec.get_mut("rtcpFeedback").and_then(Value::as_array_mut) {
        feedback.retain(|f| f.get("type").and_then(Value::as_str) != Some("transport-cc"));
    }
    codec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(candidates: Value, fp: &str) -> Value {
        json!({"id": "t", "iceParameters": {"usernameFragment": "u", "password": "p", "iceLite": true},
               "iceCandidates": candidates,
               "dtlsParameters": {"role": "auto", "fingerprints": [{"algorithm": "sha-256", "value": fp}]}})
    }

    #[test]
    fn transport_answers() {
        let fp = vec!["AB"; 32].join(":");
        let local = IpAddr::from([127, 0, 0, 1]);
        let a = TransportAnswer::parse(&answer(
            json!([{"address": "127.0.0.1", "port": 40000, "protocol": "udp", "type": "host"}]),
            &fp,
        ))
        .unwrap();
        assert_eq!(a.server_addr(local, "udp").unwrap().port(), 40000);
        assert!(a.server_addr(local, "tcp").is_err(), "no TCP candidate");
        let both = TransportAnswer::parse(&answer(
            json!([{"address": "127.0.0.1", "port": 40000, "protocol": "udp", "type": "host"},
                   {"address": "127.0.0.1", "port": 40001, "protocol": "tcp", "type": "host",
                    "tcpType": "passive"}]),
            &fp,
        ))
        .unwrap();
        assert_eq!(both.server_addr(local, "udp").unwrap().port(), 40000);
        assert_eq!(both.server_addr(local, "tcp").unwrap().port(), 40001);
        assert!(a.fingerprint().is_ok());
        for bad in [
            answer(
                json!([{"ip": "nonsense", "port": 1, "protocol": "udp"}]),
                &fp,
            ),
            answer(
                json!([{"ip": "127.0.0.1", "port": 1, "protocol": "tcp"}]),
                &fp,
            ),
        ] {
            let parsed = TransportAnswer::parse(&bad);
            assert!(parsed.is_ok_and(|a| a.server_addr(local, "udp").is_err()));
        }
        let bad_fp = TransportAnswer::parse(&answer(json!([]), "zz"));
        assert!(bad_fp.is_ok_and(|a| a.fingerprint().is_err()));
        assert!(TransportAnswer::parse(&json!({"id": 1})).is_err());
    }

    #[test]
    fn router_numbering_and_device_capabilities() {
        let caps = json!({
            "codecs": [
                {"kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100, "clockRate": 48000, "channels": 2},
                {"kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101, "clockRate": 90000},
                {"kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102, "clockRate": 90000, "parameters": {"apt": 101}},
                {"kind": "video", "mimeType": "video/H264", "preferredPayloadType": 103, "clockRate": 90000}
            ],
            "headerExtensions": [
                {"kind": "audio", "uri": uri::MID, "preferredId": 1},
                {"kind": "video", "uri": uri::MID, "preferredId": 1},
                {"kind": "video", "uri": "urn:3gpp:video-orientation", "preferredId": 11},
                {"kind": "audio", "uri": uri::AUDIO_LEVEL, "preferredId": 10}
            ]
        });
        let n = Numbering::from_router_capabilities(&caps).map_err(|e| e.to_string());
        assert_eq!(
            n,
            Ok(Numbering {
                opus: Some(100),
                vp8: Some(101),
                vp8_rtx: Some(102),
                extensions: vec![(1, uri::MID), (10, uri::AUDIO_LEVEL)],
            })
        );
        let device = receive_rtp_capabilities(&caps).unwrap_or_default();
        assert_eq!(device["codecs"].as_array().map(Vec::len), Some(3));
        assert_eq!(device["headerExtensions"].as_array().map(Vec::len), Some(3));
        assert!(Numbering::from_router_capabilities(&json!({"codecs": []})).is_err());
        assert!(Numbering::from_router_capabilities(&json!("x")).is_err());
    }
}
