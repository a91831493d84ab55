//! Consumer side of negotiation: from a producer's consumable parameters
//! and a receiving device's capabilities to what that device receives
//! (mediasoup's `canConsume`, `getConsumerRtpParameters` and
//! `getPipeConsumerRtpParameters`).
//!
//! The consumable codecs are filtered by the device's capabilities, RTX is
//! kept only when enabled and both sides have it, header extensions only
//! when the device knows them under the same id, RTCP feedback is reduced to
//! one bandwidth estimator, and a simulcast producer becomes a single
//! encoding whose `scalabilityMode` announces the layers. Pipe consumers
//! (router to router) keep every encoding instead.

use super::capabilities::uri;
use super::codec::{is_rtx, match_codecs, parse_scalability_mode};
use super::error::RtpError;
use super::ssrc::{SsrcGenerator, ssrc_at, ssrc_base};
use super::types::{
    MediaKind, RtcpFeedback, RtpCapabilities, RtpCodecParameters, RtpEncodingParameters,
    RtpParameters, RtxParameters,
};
use super::validate::validate_rtp_capabilities;

/// Whether a device with `caps` can receive a producer whose consumable
/// parameters are `consumable`: the first consumable codec the device
/// matches must be a media codec. Errors only when `caps` is malformed.
pub fn can_consume(consumable: &RtpParameters, caps: &RtpCapabilities) -> Result<bool, RtpError> {
    let mut caps = caps.clone();
    validate_rtp_capabilities(&mut caps)?;
    let first_match = consumable.codecs.iter().find(|codec| {
        caps.codecs
            .iter()
            .any(|cap| match_codecs(cap, *codec, true))
    });
    Ok(first_match.is_some_and(|c| !is_rtx(&c.mime_type)))
}

/// Options of a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// Offer retransmissions (RTX and plain NACK). mediasoup's default is on
    /// for video and off for audio; see [`ConsumerOptions::for_kind`].
    pub enable_rtx: bool,
    /// Forward every encoding as is (router-to-router pipe) instead of one
    /// encoding chosen among the layers.
    pub pipe: bool,
    /// The MID the consumer's m-section gets (the transport allocates them).
    pub mid: Option<String>,
}

impl ConsumerOptions {
    /// mediasoup's defaults: RTX for video only, not a pipe, no MID.
    pub fn for_kind(kind: MediaKind) -> Self {
        ConsumerOptions {
            enable_rtx: kind == MediaKind::Video,
            pipe: false,
            mid: None,
        }
    }
}

/// The parameters a consumer receives with (mediasoup's
/// `getConsumerRtpParameters`).
///
/// Codecs: the consumable codecs the device matches strictly, in consumable
/// order and with router payload types, each taking the device's RTCP
/// feedback (without plain NACK when RTX is disabled); RTX only if enabled,
/// supported by the device and its media codec survived. Header extensions:
/// those the device lists with the same URI and id. Feedback: transport-cc
/// when the transport-wide-cc extension survived, else goog-remb when
/// abs-send-time did, else neither. Encodings: one, with a new SSRC (and a
/// new RTX SSRC when RTX is on), `scalabilityMode` `L<encodings>T<temporal
/// layers>` for simulcast, and the highest `maxBitrate`; or, for a pipe,
/// every encoding with consecutive new SSRCs.
pub fn consumer_rtp_parameters(
    consumable: &RtpParameters,
    caps: &RtpCapabilities,
    options: &ConsumerOptions,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> Result<RtpParameters, RtpError> {
    let mut caps = caps.clone();
    validate_rtp_capabilities(&mut caps)?;
    if consumable.encodings.is_empty() {
        return Err(RtpError::encoding(
            0,
            "consumable parameters have no encodings",
        ));
    }
    let mut params = RtpParameters {
        rtcp: consumable.rtcp.clone(),
        msid: consumable.msid.clone(),
        ..Default::default()
    };

    for codec in &consumable.codecs {
        if !options.enable_rtx && is_rtx(&codec.mime_type) {
            continue;
        }
        let Some(cap) = caps
            .codecs
            .iter()
            .find(|cap| match_codecs(*cap, codec, true))
        else {
            continue;
        };
        let mut codec = codec.clone();
        codec.rtcp_feedback = cap
            .rtcp_feedback
            .iter()
            .filter(|fb| options.enable_rtx || fb.kind != "nack" || !fb.parameter.is_empty())
            .cloned()
            .collect();
        params.codecs.push(codec);
    }

    // Drop RTX codecs whose media codec did not make it.
    let media_pts: Vec<u8> = params
        .codecs
        .iter()
        .filter(|c| !is_rtx(&c.mime_type))
        .map(|c| c.payload_type)
        .collect();
    params.codecs.retain(|c| {
        !is_rtx(&c.mime_type)
            || c.parameters
                .get_u64("apt")
                .is_some_and(|apt| media_pts.iter().any(|&pt| u64::from(pt) == apt))
    });
    let rtx_supported = params.codecs.iter().any(|c| is_rtx(&c.mime_type));
    if params.codecs.first().is_none_or(|c| is_rtx(&c.mime_type)) {
        return Err(RtpError::NoCompatibleCodecs);
    }

    params.header_extensions = consumable
        .header_extensions
        .iter()
        .filter(|ext| {
            caps.header_extensions
                .iter()
                .any(|c| c.preferred_id == ext.id && c.uri == ext.uri)
        })
        .cloned()
        .collect();
    let has_ext = |u: &str| params.header_extensions.iter().any(|e| e.uri == u);
    let drop: &[&str] = if has_ext(uri::TRANSPORT_WIDE_CC) {
        &["goog-remb"]
    } else if has_ext(uri::ABS_SEND_TIME) {
        &["transport-cc"]
    } else {
        &["transport-cc", "goog-remb"]
    };
    for codec in &mut params.codecs {
        codec
            .rtcp_feedback
            .retain(|fb| !drop.contains(&fb.kind.as_str()));
    }

    if options.pipe {
        params.encodings = pipe_encodings(&consumable.encodings, rtx_supported, next_ssrc);
    } else {
        params.mid = options.mid.clone();
        params.encodings = vec![single_encoding(
            &consumable.encodings,
            rtx_supported,
            next_ssrc,
        )];
    }
    Ok(params)
}

fn single_encoding(
    encodings: &[RtpEncodingParameters],
    rtx_supported: bool,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> RtpEncodingParameters {
    let ssrc = ssrc_base(next_ssrc, 1);
    let rtx = rtx_supported.then(|| {
        let candidate = ssrc_base(next_ssrc, 1);
        let ssrc = if candidate == ssrc {
            ssrc.checked_add(1).unwrap_or(1)
        } else {
            candidate
        };
        RtxParameters { ssrc }
    });
    let mut mode = encodings.iter().find_map(|e| e.scalability_mode.clone());
    if encodings.len() > 1 {
        let temporal = parse_scalability_mode(mode.as_deref()).temporal_layers;
        mode = Some(format!("L{}T{}", encodings.len(), temporal));
    }
    let max_bitrate = encodings.iter().filter_map(|e| e.max_bitrate).max();
    RtpEncodingParameters {
        ssrc: Some(ssrc),
        rtx,
        scalability_mode: mode,
        max_bitrate: max_bitrate.filter(|&b| b > 0),
        ..Default::default()
    }
}

/// Every encoding kept, with consecutive new SSRCs (and RTX SSRCs from a
/// second, non-overlapping block when RTX is on).
fn pipe_encodings(
    encodings: &[RtpEncodingParameters],
    rtx: bool,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> Vec<RtpEncodingParameters> {
    let n = encodings.len();
    let base = ssrc_base(next_ssrc, n);
    let mut rtx_base = ssrc_base(next_ssrc, n);
    let (lo, hi) = (u64::from(base), u64::from(base) + n as u64);
    if u64::from(rtx_base) < hi && u64::from(rtx_base) + n as u64 > lo {
        // Overlapping blocks: put the RTX block right after (or before) the
        // media block. `ssrc_base` keeps `base + n - 1` within u32.
        rtx_base = if hi + n as u64 - 1 <= u64::from(u32::MAX) {
            ssrc_at(base, n)
        } else {
            base.wrapping_sub(u32::try_from(n).unwrap_or(0))
        };
    }
    encodings
        .iter()
        .enumerate()
        .map(|(i, enc)| RtpEncodingParameters {
            ssrc: Some(ssrc_at(base, i)),
            rtx: rtx.then(|| RtxParameters {
                ssrc: ssrc_at(rtx_base, i),
            }),
            ..enc.clone()
        })
        .collect()
}

/// Parameters of a consumer that feeds another router (mediasoup's
/// `getPipeConsumerRtpParameters`): every consumable codec (RTX only if
/// enabled), feedback reduced to PLI, FIR and (with RTX) NACK, no MID or
/// bandwidth-estimation header extensions, every encoding with new SSRCs.
pub fn pipe_consumer_rtp_parameters(
    consumable: &RtpParameters,
    enable_rtx: bool,
    next_ssrc: &mut SsrcGenerator<'_>,
) -> RtpParameters {
    let keep_fb = |fb: &RtcpFeedback| {
        (fb.kind == "nack" && fb.parameter == "pli")
            || (fb.kind == "ccm" && fb.parameter == "fir")
            || (enable_rtx && fb.kind == "nack" && fb.parameter.is_empty())
    };
    let codecs = consumable
        .codecs
        .iter()
        .filter(|c| enable_rtx || !is_rtx(&c.mime_type))
        .map(|c| RtpCodecParameters {
            rtcp_feedback: c
                .rtcp_feedback
                .iter()
                .filter(|fb| keep_fb(fb))
                .cloned()
                .collect(),
            ..c.clone()
        })
        .collect();
    let header_extensions = consumable
        .header_extensions
        .iter()
        .filter(|e| {
            ![uri::MID, uri::ABS_SEND_TIME, uri::TRANSPORT_WIDE_CC].contains(&e.uri.as_str())
        })
        .cloned()
        .collect();
    RtpParameters {
        mid: None,
        codecs,
        header_extensions,
        encodings: pipe_encodings(&consumable.encodings, enable_rtx, next_ssrc),
        rtcp: consumable.rtcp.clone(),
        msid: consumable.msid.clone(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_rtx_block_does_not_overlap() {
        let encs = vec![RtpEncodingParameters::default(); 3];
        let mut g = || 500;
        let out = pipe_encodings(&encs, true, &mut g);
        let ssrcs: Vec<u32> = out.iter().filter_map(|e| e.ssrc).collect();
        let rtx: Vec<u32> = out.iter().filter_map(|e| e.rtx.map(|r| r.ssrc)).collect();
        assert_eq!(ssrcs, vec![500, 501, 502]);
        assert_eq!(rtx, vec![503, 504, 505]);
        let mut g = || u32::MAX;
        let out = pipe_encodings(&encs, true, &mut g);
        let mut all: Vec<u32> = out
            .iter()
            .flat_map(|e| [e.ssrc.unwrap_or(0), e.rtx.map_or(0, |r| r.ssrc)])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 6);
        assert!(!all.contains(&0));
    }

    #[test]
    fn single_encoding_rtx_ssrc_differs_from_media_ssrc() {
        let encs = vec![RtpEncodingParameters::default()];
        let mut g = || 77;
        let e = single_encoding(&encs, true, &mut g);
        assert_eq!(e.ssrc, Some(77));
        assert_eq!(e.rtx.map(|r| r.ssrc), Some(78));
    }
}
