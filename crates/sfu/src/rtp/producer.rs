//! Producer side of negotiation: from what a client sends to what the
//! router forwards (mediasoup's `getProducerRtpParametersMapping` and
//! `getConsumableRtpParameters`, plus the checks its worker does when a
//! producer is created).
//!
//! Every codec the client sends must match a router codec. The result is an
//! [`RtpMapping`] — client payload types, header-extension ids and encodings
//! → router payload types, ids and fresh SSRCs — which the forwarding path
//! uses to rewrite incoming packets, and the *consumable* parameters, which
//! describe the producer's media in router numbering and are the input of
//! every consumer (see [`super::consumer`]).

use super::capabilities::uri;
use super::codec::{
    h264, is_media_codec, is_rtx, match_codecs, parse_scalability_mode, subtype_lower,
};
use super::error::RtpError;
use super::ssrc::{SsrcGenerator, ssrc_at, ssrc_base};
use super::types::{
    CodecMapping, EncodingMapping, HeaderExtensionMapping, MediaKind, RtcpParameters,
    RtpCapabilities, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters,
    RtpHeaderExtensionDirection, RtpHeaderExtensionParameters, RtpMapping, RtpParameters,
    RtpStreamType,
};
use super::validate::validate_rtp_parameters;

/// Everything decided when a producer is created.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerNegotiation {
    pub kind: MediaKind,
    /// The producer's parameters as accepted: validated, defaults filled, one
    /// encoding added if none was given, H.264 profile-level-id settled
    /// against the router codec. Payload types and ids are the client's.
    pub rtp_parameters: RtpParameters,
    pub stream_type: RtpStreamType,
    pub rtp_mapping: RtpMapping,
    /// The producer's media in router numbering; input of every consumer.
    pub consumable_rtp_parameters: RtpParameters,
}

/// Validates a client's `produce` parameters and negotiates them against
/// the router capabilities.
///
/// Refuses malformed parameters, codecs of the other kind, codecs the
/// router does not offer, RTX for a codec the router has no RTX for,
/// layering the codec cannot do (simulcast of opus, …), and encodings the
/// router could not tell apart (several encodings without `ssrc` or `rid`,
/// one encoding without `ssrc`, `rid` or `mid`, RID simulcast without the
/// rtp-stream-id header extension). `next_ssrc` is called once, for the
/// first of the consecutive SSRCs the encodings get inside the router.
pub fn negotiate_producer(
    kind: MediaKind,
    rtp_parameters: &RtpParameters,
    router_caps: &RtpCapabilities,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> Result<ProducerNegotiation, RtpError> {
    let mut params = rtp_parameters.clone();
    validate_rtp_parameters(&mut params)?;
    if params.encodings.is_empty() {
        params.encodings.push(RtpEncodingParameters::default());
    }
    if let Some(codec) = params.codecs.iter().find(|c| c.kind() != Some(kind)) {
        return Err(RtpError::KindMismatch {
            kind,
            mime_type: codec.mime_type.clone(),
        });
    }
    // Unsupported codecs first (the clearest refusal), then layering and
    // stream identification, as mediasoup's Node layer and worker do.
    let rtp_mapping = producer_rtp_mapping(kind, &mut params, router_caps, next_ssrc)?;
    let stream_type = rtp_stream_type(&params)?;
    check_stream_identification(&params)?;
    let consumable_rtp_parameters =
        consumable_rtp_parameters(kind, &params, router_caps, &rtp_mapping)?;
    Ok(ProducerNegotiation {
        kind,
        rtp_parameters: params,
        stream_type,
        rtp_mapping,
        consumable_rtp_parameters,
    })
}

/// Gives a producer the CNAME of its transport, as mediasoup's transports
/// do: the first producer on a transport that brings a non-empty CNAME sets
/// the transport's CNAME (`transport_cname`); a transport that has none when
/// a producer without one arrives takes `generate()`; every producer's
/// `rtcp.cname` is then overwritten with the transport's. Call it before
/// [`negotiate_producer`] (the consumable parameters carry the CNAME to
/// consumers, and browsers sending RID simulcast send an empty one).
pub fn apply_transport_cname(
    params: &mut RtpParameters,
    transport_cname: &mut Option<String>,
    generate: impl FnOnce() -> String,
) {
    let cname = match (transport_cname.as_ref(), params.rtcp.cname.as_deref()) {
        (Some(existing), _) => existing.clone(),
        (None, Some(given)) if !given.is_empty() => given.to_owned(),
        (None, _) => generate(),
    };
    *transport_cname = Some(cname.clone());
    params.rtcp.cname = Some(cname);
}

/// The media codec an encoding is bound to: its `codecPayloadType`, else the
/// first media codec.
fn codec_for_encoding<'a>(
    params: &'a RtpParameters,
    encoding: &RtpEncodingParameters,
) -> Result<&'a RtpCodecParameters, RtpError> {
    let by_pt = encoding
        .codec_payload_type
        .and_then(|pt| params.codecs.iter().find(|c| c.payload_type == pt));
    by_pt
        .or_else(|| params.codecs.iter().find(|c| is_media_codec(&c.mime_type)))
        .ok_or(RtpError::NoMediaCodec)
}

fn simulcast_capable(mime_type: &str) -> bool {
    MediaKind::from_mime_type(mime_type) == Some(MediaKind::Video)
        && matches!(subtype_lower(mime_type).as_str(), "vp8" | "h264")
}

fn svc_capable(mime_type: &str) -> bool {
    MediaKind::from_mime_type(mime_type) == Some(MediaKind::Video)
        && matches!(subtype_lower(mime_type).as_str(), "vp9" | "h264-svc")
}

/// How a producer's encodings are layered: several encodings are simulcast
/// (VP8 and H.264 only); one encoding with layers in its `scalabilityMode` is
/// SVC when the codec can do SVC, else simulcast when it can do that (VP8
/// temporal layers); one plain encoding is simple.
pub fn rtp_stream_type(params: &RtpParameters) -> Result<RtpStreamType, RtpError> {
    let first = params
        .encodings
        .first()
        .ok_or_else(|| RtpError::encoding(0, "no encodings"))?;
    let codec = codec_for_encoding(params, first)?;
    let refuse = |stream_type| RtpError::UnsupportedStreamType {
        mime_type: codec.mime_type.clone(),
        stream_type,
    };
    if params.encodings.len() > 1 {
        return if simulcast_capable(&codec.mime_type) {
            Ok(RtpStreamType::Simulcast)
        } else {
            Err(refuse("simulcast"))
        };
    }
    let mode = parse_scalability_mode(first.scalability_mode.as_deref());
    if mode.spatial_layers == 1 && mode.temporal_layers == 1 {
        Ok(RtpStreamType::Simple)
    } else if svc_capable(&codec.mime_type) {
        Ok(RtpStreamType::Svc)
    } else if simulcast_capable(&codec.mime_type) {
        Ok(RtpStreamType::Simulcast)
    } else {
        Err(refuse("layered"))
    }
}

/// The router must be able to tell which incoming stream is which encoding.
fn check_stream_identification(params: &RtpParameters) -> Result<(), RtpError> {
    let several = params.encodings.len() > 1;
    for (index, enc) in params.encodings.iter().enumerate() {
        if enc.ssrc.is_none() && enc.rid.is_none() {
            if several {
                return Err(RtpError::encoding(index, "missing ssrc or rid"));
            }
            if params.mid.is_none() {
                return Err(RtpError::encoding(
                    index,
                    "missing ssrc or rid, or rtpParameters.mid",
                ));
            }
        }
    }
    let rid_only = params
        .encodings
        .iter()
        .any(|e| e.rid.is_some() && e.ssrc.is_none());
    if several
        && rid_only
        && !params
            .header_extensions
            .iter()
            .any(|e| e.uri == uri::RTP_STREAM_ID)
    {
        return Err(RtpError::encoding(
            0,
            "rid encodings need the urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id header extension",
        ));
    }
    Ok(())
}

/// Maps a producer onto the router (mediasoup's
/// `getProducerRtpParametersMapping`).
///
/// `params` must have passed [`validate_rtp_parameters`]. Each media codec is
/// matched strictly against the router codecs (first match wins); for H.264
/// the producer's `profile-level-id` is rewritten to the level negotiated
/// with the router codec. Each RTX codec maps to the router RTX of its media
/// codec. Header extensions the router receives for this kind map to the
/// router's ids; others are left out. Encodings get consecutive SSRCs
/// starting from one `next_ssrc` draw.
pub fn producer_rtp_mapping(
    kind: MediaKind,
    params: &mut RtpParameters,
    router_caps: &RtpCapabilities,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> Result<RtpMapping, RtpError> {
    let mut mapping = RtpMapping::default();

    for codec in params.codecs.iter_mut().filter(|c| !is_rtx(&c.mime_type)) {
        let unsupported = || RtpError::UnsupportedCodec {
            mime_type: codec.mime_type.clone(),
            payload_type: Some(codec.payload_type),
        };
        let cap = router_caps
            .codecs
            .iter()
            .find(|cap| match_codecs(&*codec, *cap, true))
            .ok_or_else(unsupported)?;
        let mapped = cap.preferred_payload_type.ok_or_else(unsupported)?;
        if matches!(
            subtype_lower(&codec.mime_type).as_str(),
            "h264" | "h264-svc"
        ) {
            match h264::answer_profile_level_id(&codec.parameters, &cap.parameters) {
                Ok(Some(plid)) => codec.parameters.insert("profile-level-id", plid),
                Ok(None) => {
                    codec.parameters.remove("profile-level-id");
                }
                Err(()) => return Err(unsupported()),
            }
        }
        mapping.codecs.push(CodecMapping {
            payload_type: codec.payload_type,
            mapped_payload_type: mapped,
        });
    }

    for codec in params.codecs.iter().filter(|c| is_rtx(&c.mime_type)) {
        let apt = codec
            .parameters
            .get_u64("apt")
            .ok_or(RtpError::MissingApt(codec.payload_type))?;
        let media_mapped = mapping
            .codecs
            .iter()
            .find(|m| u64::from(m.payload_type) == apt)
            .map(|m| m.mapped_payload_type)
            .ok_or(RtpError::InvalidApt {
                rtx: codec.payload_type,
                apt,
                reason: "is not the payload type of a media codec",
            })?;
        let rtx_mapped = router_rtx_for(router_caps, media_mapped)
            .and_then(|c| c.preferred_payload_type)
            .ok_or(RtpError::NoRtxForCodec(media_mapped))?;
        mapping.codecs.push(CodecMapping {
            payload_type: codec.payload_type,
            mapped_payload_type: rtx_mapped,
        });
    }

    for ext in &params.header_extensions {
        let router_ext = router_caps.header_extensions.iter().find(|r| {
            r.kind == kind
                && r.uri == ext.uri
                && matches!(
                    r.direction,
                    RtpHeaderExtensionDirection::Sendrecv | RtpHeaderExtensionDirection::Recvonly
                )
        });
        if let Some(r) = router_ext {
            mapping.header_extensions.push(HeaderExtensionMapping {
                uri: ext.uri.clone(),
                id: ext.id,
                mapped_id: r.preferred_id,
            });
        }
    }

    let base = ssrc_base(next_ssrc, params.encodings.len());
    for (index, enc) in params.encodings.iter().enumerate() {
        mapping.encodings.push(EncodingMapping {
            ssrc: enc.ssrc,
            rid: enc.rid.clone(),
            scalability_mode: enc.scalability_mode.clone(),
            mapped_ssrc: ssrc_at(base, index),
        });
    }
    Ok(mapping)
}

pub(crate) fn router_rtx_for(caps: &RtpCapabilities, media_pt: u8) -> Option<&RtpCodecCapability> {
    caps.codecs
        .iter()
        .find(|c| is_rtx(&c.mime_type) && c.parameters.get_u64("apt") == Some(u64::from(media_pt)))
}

/// The producer's media in router numbering (mediasoup's
/// `getConsumableRtpParameters`): router codecs (with the producer's format
/// parameters) each followed by the router's RTX for it, the router's
/// header extensions that may be sent for this kind, the producer's
/// encodings with their router SSRCs (and without rid, rtx or
/// codecPayloadType), and the producer's CNAME and msid.
pub fn consumable_rtp_parameters(
    kind: MediaKind,
    params: &RtpParameters,
    router_caps: &RtpCapabilities,
    mapping: &RtpMapping,
) -> Result<RtpParameters, RtpError> {
    let mut consumable = RtpParameters::default();

    for codec in params.codecs.iter().filter(|c| !is_rtx(&c.mime_type)) {
        let unmapped = || RtpError::UnsupportedCodec {
            mime_type: codec.mime_type.clone(),
            payload_type: Some(codec.payload_type),
        };
        let pt = mapping
            .mapped_payload_type(codec.payload_type)
            .ok_or_else(unmapped)?;
        let cap = router_caps
            .codecs
            .iter()
            .find(|c| c.preferred_payload_type == Some(pt))
            .ok_or_else(unmapped)?;
        consumable.codecs.push(RtpCodecParameters {
            mime_type: cap.mime_type.clone(),
            payload_type: pt,
            clock_rate: cap.clock_rate,
            channels: cap.channels,
            parameters: codec.parameters.clone(),
            rtcp_feedback: cap.rtcp_feedback.clone(),
        });
        if let Some(rtx) = router_rtx_for(router_caps, pt)
            && let Some(rtx_pt) = rtx.preferred_payload_type
        {
            consumable.codecs.push(RtpCodecParameters {
                mime_type: rtx.mime_type.clone(),
                payload_type: rtx_pt,
                clock_rate: rtx.clock_rate,
                channels: None,
                parameters: rtx.parameters.clone(),
                rtcp_feedback: rtx.rtcp_feedback.clone(),
            });
        }
    }

    consumable.header_extensions = router_caps
        .header_extensions
        .iter()
        .filter(|e| {
            e.kind == kind
                && matches!(
                    e.direction,
                    RtpHeaderExtensionDirection::Sendrecv | RtpHeaderExtensionDirection::Sendonly
                )
        })
        .map(|e| RtpHeaderExtensionParameters {
            uri: e.uri.clone(),
            id: e.preferred_id,
            encrypt: e.preferred_encrypt,
            parameters: Default::default(),
        })
        .collect();

    if params.encodings.len() != mapping.encodings.len() {
        return Err(RtpError::encoding(
            0,
            "encodings do not match the encodings of the mapping",
        ));
    }
    for (enc, mapped) in params.encodings.iter().zip(&mapping.encodings) {
        let mut enc = enc.clone();
        enc.rid = None;
        enc.rtx = None;
        enc.codec_payload_type = None;
        enc.ssrc = Some(mapped.mapped_ssrc);
        consumable.encodings.push(enc);
    }

    consumable.rtcp = RtcpParameters {
        cname: params.rtcp.cname.clone(),
        reduced_size: Some(true),
        mux: None,
    };
    consumable.msid = params.msid.clone();
    Ok(consumable)
}
