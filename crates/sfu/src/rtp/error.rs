//! The one error type of RTP negotiation.
//!
//! Every refusal of client-supplied capabilities or parameters, and every
//! "cannot negotiate" outcome, is an [`RtpError`] with a message that can be
//! shown to the client as is (the signalling layer maps all of them to
//! `bad_request`). Nothing in this module tree panics on input.

use thiserror::Error;

use super::types::MediaKind;

/// Why RTP capabilities or parameters were refused or could not be negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// The JSON did not have the expected shape (wrong type, missing member).
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },

    /// A codec MIME type that is not `audio/…` or `video/…`.
    #[error("invalid codec mimeType {0:?} (expected audio/<name> or video/<name>)")]
    InvalidMimeType(String),

    /// A payload type outside 0–127.
    #[error("invalid payload type {0} (must be 0-127)")]
    InvalidPayloadType(u8),

    /// Two codecs with the same payload type.
    #[error("duplicated payload type {0}")]
    DuplicatedPayloadType(u8),

    /// A clock rate of zero.
    #[error("invalid clock rate 0 in codec {0}")]
    InvalidClockRate(String),

    /// A format parameter that is not a string or number, or a bad `apt`.
    #[error("invalid parameter {key:?} in codec {mime_type}: {reason}")]
    InvalidCodecParameter {
        mime_type: String,
        key: String,
        reason: &'static str,
    },

    /// An RTX codec without a usable `apt` (associated payload type).
    #[error("RTX codec with payload type {0} has no apt parameter")]
    MissingApt(u8),

    /// An RTX codec whose `apt` names no codec, or names one that is not a
    /// media codec.
    #[error("RTX codec with payload type {rtx} has apt {apt}, which {reason}")]
    InvalidApt {
        rtx: u8,
        apt: u64,
        reason: &'static str,
    },

    /// An RTCP feedback entry without a type.
    #[error("RTCP feedback without type in codec {0}")]
    InvalidRtcpFeedback(String),

    /// Parameters with no media codec at all (only RTX, or none).
    #[error("no media codec in rtpParameters.codecs")]
    NoMediaCodec,

    /// A header extension with an empty URI or id 0.
    #[error("invalid header extension {uri:?}: {reason}")]
    InvalidHeaderExtension { uri: String, reason: &'static str },

    /// One header extension id used for two different URIs.
    #[error("header extension id {0} is used for two different URIs")]
    DuplicatedHeaderExtensionId(u8),

    /// An encoding that breaks a rule (missing ssrc/rid, unknown
    /// codecPayloadType, duplicate rid, …).
    #[error("invalid encoding {index}: {reason}")]
    InvalidEncoding { index: usize, reason: String },

    /// A codec of the wrong kind for the producer (`audio/opus` in a video
    /// producer).
    #[error("codec {mime_type} does not belong to a {kind} producer")]
    KindMismatch { kind: MediaKind, mime_type: String },

    /// A media codec the router (or the supported set) does not offer.
    #[error("unsupported codec {mime_type}{}", payload_type.map(|pt| format!(" (payload type {pt})")).unwrap_or_default())]
    UnsupportedCodec {
        mime_type: String,
        payload_type: Option<u8>,
    },

    /// A producer sends RTX for a codec the router has no RTX codec for.
    #[error("router has no RTX codec for its payload type {0}")]
    NoRtxForCodec(u8),

    /// The layering of the producer's encodings is not possible for its codec
    /// (simulcast of VP9, temporal layers of opus, …).
    #[error("{mime_type} cannot be sent as a {stream_type} stream")]
    UnsupportedStreamType {
        mime_type: String,
        stream_type: &'static str,
    },

    /// Router capabilities need more dynamic payload types than exist.
    #[error("cannot allocate more dynamic payload types")]
    PayloadTypesExhausted,

    /// Nothing the consumer can receive matches what the producer sends.
    #[error("no compatible media codecs")]
    NoCompatibleCodecs,

    /// More encodings than any real sender uses.
    #[error("too many encodings ({0}, at most {max})", max = super::validate::MAX_ENCODINGS)]
    TooManyEncodings(usize),
}

impl RtpError {
    /// Whether the input was well-formed but asks for something not offered
    /// (mediasoup's `UnsupportedError`), as opposed to being malformed.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            RtpError::UnsupportedCodec { .. }
                | RtpError::NoRtxForCodec(_)
                | RtpError::UnsupportedStreamType { .. }
                | RtpError::NoCompatibleCodecs
        )
    }

    pub(crate) fn encoding(index: usize, reason: impl Into<String>) -> Self {
        RtpError::InvalidEncoding {
            index,
            reason: reason.into(),
        }
    }
}
