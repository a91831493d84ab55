//! Validation and normalisation of client-supplied capabilities and
//! parameters.
//!
//! This module is the gate between untrusted JSON and the negotiation code:
//! after [`validate_rtp_parameters`] or [`validate_rtp_capabilities`] has
//! accepted a value, the rest of the crate may rely on its invariants (valid
//! MIME types, payload types within 0–127, RTX codecs pointing at a codec
//! that exists, no duplicate payload types, ids or RIDs, every encoding bound
//! to a media codec). It combines the checks mediasoup does in its Node layer
//! with those its C++ worker does when a producer is created, so that a bad
//! request fails here with a clear [`RtpError`] instead of deeper down.
//! Validation also fills the defaults mediasoup fills (audio channels 1,
//! `reducedSize` true, `""` for a `null` parameter) and drops values that
//! mean "unset" (`ssrc: 0`, `rid: ""`, `mid: ""`).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::codec::{is_fec, is_media_codec, is_rtx, parse_scalability_mode};
use super::error::RtpError;
use super::types::{
    CodecParameters, MediaKind, RtcpFeedback, RtpCapabilities, RtpCodecCapability,
    RtpCodecParameters, RtpParameters,
};

/// Upper bound on encodings per producer (browsers use at most 3 or 4).
/// Each is listed in every room answer's statistics, so it stays small.
pub const MAX_ENCODINGS: usize = 4;
/// Longest `rid` (browsers send `r0`…`r2` or `q`, `h`, `f`).
pub const MAX_RID_CHARS: usize = 16;

/// Deserialises and validates producer (or any) RTP parameters from JSON.
pub fn parse_rtp_parameters(value: &Value) -> Result<RtpParameters, RtpError> {
    let mut params = RtpParameters::deserialize(value).map_err(|e| RtpError::Malformed {
        what: "rtpParameters",
        reason: e.to_string(),
    })?;
    validate_rtp_parameters(&mut params)?;
    Ok(params)
}

/// Deserialises and validates RTP capabilities (a device's or a router's)
/// from JSON.
pub fn parse_rtp_capabilities(value: &Value) -> Result<RtpCapabilities, RtpError> {
    let mut caps = RtpCapabilities::deserialize(value).map_err(|e| RtpError::Malformed {
        what: "rtpCapabilities",
        reason: e.to_string(),
    })?;
    validate_rtp_capabilities(&mut caps)?;
    Ok(caps)
}

/// Checks RTP capabilities and fills their defaults in place.
pub fn validate_rtp_capabilities(caps: &mut RtpCapabilities) -> Result<(), RtpError> {
    for codec in &mut caps.codecs {
        validate_codec_capability(codec)?;
    }
    for ext in &caps.header_extensions {
        if ext.uri.is_empty() {
            return Err(RtpError::InvalidHeaderExtension {
                uri: String::new(),
                reason: "missing uri",
            });
        }
    }
    Ok(())
}

/// Checks one codec capability and fills its defaults in place; its `kind`
/// is set from the MIME type.
pub fn validate_codec_capability(codec: &mut RtpCodecCapability) -> Result<(), RtpError> {
    let kind = MediaKind::from_mime_type(&codec.mime_type)
        .ok_or_else(|| RtpError::InvalidMimeType(codec.mime_type.clone()))?;
    codec.kind = kind;
    if let Some(pt) = codec.preferred_payload_type
        && pt > 127
    {
        return Err(RtpError::InvalidPayloadType(pt));
    }
    if codec.clock_rate == 0 {
        return Err(RtpError::InvalidClockRate(codec.mime_type.clone()));
    }
    codec.channels = normalised_channels(kind, codec.channels);
    validate_codec_params(&codec.mime_type, &mut codec.parameters)?;
    validate_feedback(&codec.mime_type, &codec.rtcp_feedback)
}

/// Checks RTP parameters and normalises them in place. Encodings may be
/// empty here; producing adds the default encoding.
pub fn validate_rtp_parameters(params: &mut RtpParameters) -> Result<(), RtpError> {
    if params.mid.as_deref() == Some("") {
        params.mid = None;
    }
    for codec in &mut params.codecs {
        validate_codec_parameters(codec)?;
    }
    validate_codec_set(&params.codecs)?;
    validate_header_extensions(params)?;
    validate_encodings(params)?;
    if params.rtcp.reduced_size.is_none() {
        params.rtcp.reduced_size = Some(true);
    }
    Ok(())
}

fn normalised_channels(kind: MediaKind, channels: Option<u8>) -> Option<u8> {
    match kind {
        MediaKind::Audio => Some(channels.unwrap_or(1)),
        MediaKind::Video => None,
    }
}

fn validate_codec_parameters(codec: &mut RtpCodecParameters) -> Result<(), RtpError> {
    let kind = MediaKind::from_mime_type(&codec.mime_type)
        .ok_or_else(|| RtpError::InvalidMimeType(codec.mime_type.clone()))?;
    if codec.payload_type > 127 {
        return Err(RtpError::InvalidPayloadType(codec.payload_type));
    }
    if codec.clock_rate == 0 {
        return Err(RtpError::InvalidClockRate(codec.mime_type.clone()));
    }
    codec.channels = normalised_channels(kind, codec.channels);
    validate_codec_params(&codec.mime_type, &mut codec.parameters)?;
    if is_rtx(&codec.mime_type) && codec.parameters.get("apt").is_none() {
        return Err(RtpError::MissingApt(codec.payload_type));
    }
    validate_feedback(&codec.mime_type, &codec.rtcp_feedback)
}

/// Values must be strings or numbers (`null` becomes `""`); `apt` must be an
/// integer payload type.
fn validate_codec_params(mime_type: &str, params: &mut CodecParameters) -> Result<(), RtpError> {
    let bad = |key: &str, reason| RtpError::InvalidCodecParameter {
        mime_type: mime_type.to_owned(),
        key: key.to_owned(),
        reason,
    };
    for (key, value) in params.0.iter_mut() {
        match value {
            Value::Null => *value = Value::String(String::new()),
            Value::String(_) | Value::Number(_) => {}
            _ => return Err(bad(key, "must be a string or a number")),
        }
        if key == "apt" {
            match value.as_u64() {
                Some(pt) if pt <= 127 => {}
                Some(_) => return Err(bad(key, "must be a payload type (0-127)")),
                None => return Err(bad(key, "must be a number")),
            }
        }
    }
    Ok(())
}

fn validate_feedback(mime_type: &str, feedback: &[RtcpFeedback]) -> Result<(), RtpError> {
    if feedback.iter().any(|fb| fb.kind.is_empty()) {
        return Err(RtpError::InvalidRtcpFeedback(mime_type.to_owned()));
    }
    Ok(())
}

/// Payload types are unique, RTX `apt` names a non-RTX, non-FEC codec, and
/// there is at least one media codec.
fn validate_codec_set(codecs: &[RtpCodecParameters]) -> Result<(), RtpError> {
    let mut seen = HashSet::new();
    for codec in codecs {
        if !seen.insert(codec.payload_type) {
            return Err(RtpError::DuplicatedPayloadType(codec.payload_type));
        }
    }
    for codec in codecs.iter().filter(|c| is_rtx(&c.mime_type)) {
        let apt = codec
            .parameters
            .get("apt")
            .and_then(Value::as_u64)
            .ok_or(RtpError::MissingApt(codec.payload_type))?;
        let invalid = |reason| RtpError::InvalidApt {
            rtx: codec.payload_type,
            apt,
            reason,
        };
        let target = codecs
            .iter()
            .find(|c| u64::from(c.payload_type) == apt)
            .ok_or(invalid("is not the payload type of any codec"))?;
        if is_rtx(&target.mime_type) {
            return Err(invalid("is another RTX codec"));
        }
        if is_fec(&target.mime_type) {
            return Err(invalid("is a FEC codec"));
        }
    }
    if !codecs.iter().any(|c| is_media_codec(&c.mime_type)) {
        return Err(RtpError::NoMediaCodec);
    }
    Ok(())
}

fn validate_header_extensions(params: &mut RtpParameters) -> Result<(), RtpError> {
    let mut by_id: BTreeMap<u8, &str> = BTreeMap::new();
    for ext in &mut params.header_extensions {
        if ext.uri.is_empty() {
            return Err(RtpError::InvalidHeaderExtension {
                uri: String::new(),
                reason: "missing uri",
            });
        }
        if ext.id == 0 {
            return Err(RtpError::InvalidHeaderExtension {
                uri: ext.uri.clone(),
                reason: "id cannot be 0",
            });
        }
        validate_codec_params(&ext.uri, &mut ext.parameters).map_err(|_| {
            RtpError::InvalidHeaderExtension {
                uri: ext.uri.clone(),
                reason: "parameters must be strings or numbers",
            }
        })?;
    }
    for ext in &params.header_extensions {
        match by_id.insert(ext.id, &ext.uri) {
            Some(other) if other != ext.uri => {
                return Err(RtpError::DuplicatedHeaderExtensionId(ext.id));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_encodings(params: &mut RtpParameters) -> Result<(), RtpError> {
    let count = params.encodings.len();
    if count > MAX_ENCODINGS {
        return Err(RtpError::TooManyEncodings(count));
    }
    let mut rids = HashSet::new();
    let mut ssrcs = HashSet::new();
    for (index, enc) in params.encodings.iter_mut().enumerate() {
        if enc.ssrc == Some(0) {
            enc.ssrc = None;
        }
        if enc.rid.as_deref() == Some("") {
            enc.rid = None;
        }
        if enc.scalability_mode.as_deref() == Some("") {
            enc.scalability_mode = None;
        }
        if let Some(rtx) = enc.rtx
            && rtx.ssrc == 0
        {
            return Err(RtpError::encoding(index, "rtx.ssrc cannot be 0"));
        }
        if let Some(pt) = enc.codec_payload_type {
            let codec = params
                .codecs
                .iter()
                .find(|c| c.payload_type == pt)
                .ok_or_else(|| {
                    RtpError::encoding(index, format!("unknown codecPayloadType {pt}"))
                })?;
            if !is_media_codec(&codec.mime_type) {
                return Err(RtpError::encoding(
                    index,
                    format!("codecPayloadType {pt} is not a media codec"),
                ));
            }
        }
        if count > 1 && parse_scalability_mode(enc.scalability_mode.as_deref()).spatial_layers > 1 {
            return Err(RtpError::encoding(
                index,
                "cannot use both simulcast and encodings with multiple SVC spatial layers",
            ));
        }
        if let Some(rid) = &enc.rid
            && (rid.len() > MAX_RID_CHARS
                || !rid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(RtpError::encoding(
                index,
                format!("rid: 1 to {MAX_RID_CHARS} letters, digits, '-' or '_' (RFC 8851)"),
            ));
        }
        if let Some(rid) = &enc.rid
            && !rids.insert(rid.clone())
        {
            return Err(RtpError::encoding(index, format!("duplicated rid {rid:?}")));
        }
        for ssrc in enc.ssrc.into_iter().chain(enc.rtx.map(|r| r.ssrc)) {
            if !ssrcs.insert(ssrc) {
                return Err(RtpError::encoding(index, format!("duplicated ssrc {ssrc}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vp8_params() -> Value {
        json!({
            "codecs": [
                { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000 },
                { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000,
                  "parameters": { "apt": 96 } }
            ],
            "encodings": [{ "ssrc": 1111, "rtx": { "ssrc": 2222 } }]
        })
    }

    fn err_of(v: Value) -> RtpError {
        match parse_rtp_parameters(&v) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_minimal_parameters_and_fills_defaults() {
        let p = parse_rtp_parameters(&vp8_params()).expect("valid");
        assert_eq!(p.rtcp.reduced_size, Some(true));
        assert!(p.header_extensions.is_empty());
        assert_eq!(p.codecs[0].channels, None);
    }

    #[test]
    fn refuses_missing_codecs() {
        let e = err_of(json!({ "encodings": [] }));
        assert!(matches!(e, RtpError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains("codecs"), "{e}");
        assert_eq!(err_of(json!({ "codecs": [] })), RtpError::NoMediaCodec);
        assert!(matches!(err_of(json!(42)), RtpError::Malformed { .. }));
    }

    #[test]
    fn refuses_rtx_problems() {
        let mut v = vp8_params();
        v["codecs"][1]["parameters"] = json!({});
        assert_eq!(err_of(v), RtpError::MissingApt(97));
        let mut v = vp8_params();
        v["codecs"][1]["parameters"]["apt"] = json!("96");
        assert!(matches!(err_of(v), RtpError::InvalidCodecParameter { .. }));
        let mut v = vp8_params();
        v["codecs"][1]["parameters"]["apt"] = json!(98);
        assert!(matches!(err_of(v), RtpError::InvalidApt { apt: 98, .. }));
        let mut v = vp8_params();
        v["codecs"][1]["parameters"]["apt"] = json!(97);
        assert!(matches!(err_of(v), RtpError::InvalidApt { .. }));
    }

    #[test]
    fn refuses_duplicates_and_ranges() {
        let mut v = vp8_params();
        v["codecs"][1]["payloadType"] = json!(96);
        assert_eq!(err_of(v), RtpError::DuplicatedPayloadType(96));
        let mut v = vp8_params();
        v["codecs"][0]["payloadType"] = json!(200);
        assert_eq!(err_of(v), RtpError::InvalidPayloadType(200));
        let mut v = vp8_params();
        v["codecs"][0]["payloadType"] = json!(300);
        assert!(matches!(err_of(v), RtpError::Malformed { .. }));
        let mut v = vp8_params();
        v["codecs"][0]["mimeType"] = json!("VP8");
        assert!(matches!(err_of(v), RtpError::InvalidMimeType(_)));
        let mut v = vp8_params();
        v["codecs"][0]["parameters"] = json!({ "x": [1] });
        assert!(matches!(err_of(v), RtpError::InvalidCodecParameter { .. }));
        let mut v = vp8_params();
        v["encodings"] = json!([{ "rid": "r0" }, { "rid": "r0" }]);
        assert!(matches!(
            err_of(v),
            RtpError::InvalidEncoding { index: 1, .. }
        ));
        let mut v = vp8_params();
        v["encodings"] = json!([{ "ssrc": 5, "rtx": { "ssrc": 5 } }]);
        assert!(matches!(
            err_of(v),
            RtpError::InvalidEncoding { index: 0, .. }
        ));
        let mut v = vp8_params();
        v["encodings"] = json!([{ "ssrc": 5, "codecPayloadType": 97 }]);
        assert!(matches!(err_of(v), RtpError::InvalidEncoding { .. }));
        let mut v = vp8_params();
        v["encodings"] = json!([{ "ssrc": 5, "codecPayloadType": 42 }]);
        assert!(matches!(err_of(v), RtpError::InvalidEncoding { .. }));
        let mut v = vp8_params();
        v["encodings"] = json!([{ "rid": "a", "scalabilityMode": "L2T3" }, { "rid": "b" }]);
        assert!(matches!(err_of(v), RtpError::InvalidEncoding { .. }));
        let mut v = vp8_params();
        v["encodings"] = json!(vec![json!({}); MAX_ENCODINGS + 1]);
        assert!(matches!(err_of(v), RtpError::TooManyEncodings(_)));
        for rid in ["r".repeat(MAX_RID_CHARS + 1), "r 0".to_string()] {
            let mut v = vp8_params();
            v["encodings"] = json!([{ "rid": rid }]);
            assert!(matches!(err_of(v), RtpError::InvalidEncoding { .. }));
        }
    }

    #[test]
    fn refuses_bad_header_extensions() {
        let mut v = vp8_params();
        v["headerExtensions"] = json!([{ "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 0 }]);
        assert!(matches!(err_of(v), RtpError::InvalidHeaderExtension { .. }));
        let mut v = vp8_params();
        v["headerExtensions"] = json!([
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1 },
            { "uri": "urn:ietf:params:rtp-hdrext:toffset", "id": 1 }
        ]);
        assert_eq!(err_of(v), RtpError::DuplicatedHeaderExtensionId(1));
        let mut v = vp8_params();
        v["headerExtensions"] = json!([{ "uri": "", "id": 3 }]);
        assert!(matches!(err_of(v), RtpError::InvalidHeaderExtension { .. }));
    }

    #[test]
    fn normalises_unset_values() {
        let mut v = vp8_params();
        v["mid"] = json!("");
        v["encodings"] = json!([{ "ssrc": 0, "rid": "" , "dtx": null}]);
        v["codecs"][0]["parameters"] = json!({ "x": null });
        v["rtcp"] = Value::Null;
        let p = parse_rtp_parameters(&v).expect("valid");
        assert_eq!(p.mid, None);
        assert_eq!(p.encodings[0].ssrc, None);
        assert_eq!(p.encodings[0].rid, None);
        assert_eq!(p.codecs[0].parameters.get("x"), Some(&json!("")));
    }

    #[test]
    fn capabilities_validation() {
        let caps = parse_rtp_capabilities(&json!({
            "codecs": [{ "kind": "video", "mimeType": "audio/opus", "clockRate": 48000,
                         "rtcpFeedback": null, "extra": true }],
            "headerExtensions": null
        }))
        .expect("valid");
        assert_eq!(caps.codecs[0].kind, MediaKind::Audio);
        assert_eq!(caps.codecs[0].channels, Some(1));
        let empty = parse_rtp_capabilities(&json!({})).expect("valid");
        assert!(empty.codecs.is_empty());
        let bad = parse_rtp_capabilities(&json!({
            "codecs": [{ "mimeType": "opus", "clockRate": 48000 }]
        }));
        assert!(matches!(bad, Err(RtpError::InvalidMimeType(_))));
        let bad = parse_rtp_capabilities(&json!({
            "codecs": [{ "mimeType": "audio/opus", "clockRate": 48000,
                         "rtcpFeedback": [{ "parameter": "pli" }] }]
        }));
        assert!(matches!(bad, Err(RtpError::InvalidRtcpFeedback(_))));
        let bad = parse_rtp_capabilities(&json!({
            "headerExtensions": [{ "kind": "data", "uri": "x", "preferredId": 1 }]
        }));
        assert!(matches!(bad, Err(RtpError::Malformed { .. })));
    }
}
