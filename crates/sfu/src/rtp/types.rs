//! Wire types of RTP negotiation: capabilities, parameters and the producer
//! mapping.
//!
//! These structs own the JSON shape that `mediasoup-client` sends and expects
//! (camelCase field names, optional fields left out when unset), so that
//! whatever a browser `Device` produces deserialises here and whatever we
//! answer is accepted there unchanged. Deserialisation is deliberately
//! forgiving in the same places the reference implementation is forgiving:
//! unknown fields are ignored, `null` is read as "unset", and a `parameters`
//! member that is not an object reads as empty. Semantic checks (payload-type
//! ranges, RTX `apt`, duplicates, …) are not done here but in
//! [`super::validate`], which reports them as [`super::RtpError`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Reads `null` as the type's default (serde only does that for `Option`).
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// Media kind of a codec, header extension, producer or consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The lowercase name used on the wire and as the type part of a MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }

    /// The kind named by the type part of a MIME type (`"video/VP8"` → video),
    /// case-insensitively; `None` when it is neither audio nor video or the
    /// subtype is missing.
    pub fn from_mime_type(mime_type: &str) -> Option<MediaKind> {
        let (kind, subtype) = mime_type.split_once('/')?;
        if subtype.is_empty() {
            return None;
        }
        if kind.eq_ignore_ascii_case("audio") {
            Some(MediaKind::Audio)
        } else if kind.eq_ignore_ascii_case("video") {
            Some(MediaKind::Video)
        } else {
            None
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codec (or header extension) format parameters: a JSON object whose values
/// are strings or numbers, e.g. `{"apt": 96}` or
/// `{"packetization-mode": 1, "profile-level-id": "42e01f"}`.
///
/// Values are kept as JSON so they round-trip exactly (a number stays a
/// number, a string stays a string). A member that is not an object (or is
/// `null`) deserialises as an empty map; validation rejects values that are
/// neither strings nor numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CodecParameters(pub BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for CodecParameters {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(de)? {
            Value::Object(map) => CodecParameters(map.into_iter().collect()),
            _ => CodecParameters::default(),
        })
    }
}

impl CodecParameters {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder-style insertion.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), value.into());
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key` as a non-negative integer: a JSON integer, or a
    /// string holding one (SDP munging tools sometimes send `"1"`).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        match self.0.get(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value of `key` if it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }

    /// Iterates over the entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
}

/// One RTCP feedback mechanism of a codec (`nack`, `nack pli`, `ccm fir`,
/// `goog-remb`, `transport-cc`). `parameter` is `""` when there is none, as
/// mediasoup normalises it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcpFeedback {
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub parameter: String,
}

impl RtcpFeedback {
    /// A feedback entry; pass `""` for no parameter.
    pub fn new(kind: &str, parameter: &str) -> Self {
        RtcpFeedback {
            kind: kind.to_owned(),
            parameter: parameter.to_owned(),
        }
    }
}

/// A codec the router or an endpoint can handle.
///
/// `kind` is always derived from `mimeType` when the type part of the MIME
/// type is audio or video (mediasoup does the same), so a missing or odd
/// `kind` member does not prevent reading the codec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "CodecCapabilityWire")]
pub struct RtpCodecCapability {
    pub kind: MediaKind,
    pub mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_payload_type: Option<u8>,
    pub clock_rate: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    pub parameters: CodecParameters,
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

/// What a codec capability looks like before its kind is settled.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodecCapabilityWire {
    #[serde(default)]
    kind: Option<String>,
    mime_type: String,
    #[serde(default)]
    preferred_payload_type: Option<u8>,
    clock_rate: u32,
    #[serde(default)]
    channels: Option<u8>,
    #[serde(default)]
    parameters: CodecParameters,
    #[serde(default, deserialize_with = "null_as_default")]
    rtcp_feedback: Vec<RtcpFeedback>,
}

impl From<CodecCapabilityWire> for RtpCodecCapability {
    fn from(w: CodecCapabilityWire) -> Self {
        // The MIME type wins; an invalid MIME type is reported by validation,
        // so the fallback kind only has to be something.
        let kind = MediaKind::from_mime_type(&w.mime_type)
            .or((w.kind.as_deref() == Some("video")).then_some(MediaKind::Video))
            .unwrap_or(MediaKind::Audio);
        RtpCodecCapability {
            kind,
            mime_type: w.mime_type,
            preferred_payload_type: w.preferred_payload_type,
            clock_rate: w.clock_rate,
            channels: w.channels,
            parameters: w.parameters,
            rtcp_feedback: w.rtcp_feedback,
        }
    }
}

impl RtpCodecCapability {
    /// A capability for `mime_type`; kind is taken from the MIME type (audio
    /// when it names neither, which validation then refuses).
    pub fn new(mime_type: &str, clock_rate: u32) -> Self {
        RtpCodecCapability {
            kind: MediaKind::from_mime_type(mime_type).unwrap_or(MediaKind::Audio),
            mime_type: mime_type.to_owned(),
            preferred_payload_type: None,
            clock_rate,
            channels: None,
            parameters: CodecParameters::new(),
            rtcp_feedback: Vec::new(),
        }
    }

    /// Builder: number of audio channels.
    pub fn channels(mut self, channels: u8) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Builder: one format parameter.
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.parameters.insert(key, value);
        self
    }

    /// Builder: preferred payload type.
    pub fn payload_type(mut self, pt: u8) -> Self {
        self.preferred_payload_type = Some(pt);
        self
    }
}

/// Direction in which a header extension is used, seen from the router:
/// `recvonly` means the router only receives it (from producers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpHeaderExtensionDirection {
    #[default]
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

/// A header extension the router or an endpoint supports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtension {
    pub kind: MediaKind,
    pub uri: String,
    pub preferred_id: u8,
    #[serde(default, deserialize_with = "null_as_default")]
    pub preferred_encrypt: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub direction: RtpHeaderExtensionDirection,
}

/// What a router or an endpoint can send and receive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCapabilities {
    #[serde(default, deserialize_with = "null_as_default")]
    pub codecs: Vec<RtpCodecCapability>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub header_extensions: Vec<RtpHeaderExtension>,
}

/// A codec in use by one producer or consumer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecParameters {
    pub mime_type: String,
    pub payload_type: u8,
    pub clock_rate: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    #[serde(default)]
    pub parameters: CodecParameters,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

impl RtpCodecParameters {
    /// The kind named by the MIME type, if valid.
    pub fn kind(&self) -> Option<MediaKind> {
        MediaKind::from_mime_type(&self.mime_type)
    }
}

/// A header extension in use, with its negotiated id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtensionParameters {
    pub uri: String,
    pub id: u8,
    #[serde(default, deserialize_with = "null_as_default")]
    pub encrypt: bool,
    #[serde(default)]
    pub parameters: CodecParameters,
}

/// The RTX stream paired with an encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtxParameters {
    pub ssrc: u32,
}

/// One RTP stream (simulcast layer or the single stream) of a producer or
/// consumer. A RID-simulcast encoding from a browser has `rid` and no `ssrc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpEncodingParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec_payload_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtx: Option<RtxParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtx: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_resolution_down_by: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_framerate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// RTCP settings of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcpParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_size: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mux: Option<bool>,
}

/// What one producer sends or one consumer receives.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    pub codecs: Vec<RtpCodecParameters>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub header_extensions: Vec<RtpHeaderExtensionParameters>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub encodings: Vec<RtpEncodingParameters>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rtcp: RtcpParameters,
    /// `"<stream id> <track id>"` (RFC 8830), sent by mediasoup-client 3.18+
    /// so that receivers can group and synchronise tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msid: Option<String>,
}

/// How a producer's stream is layered; consumers of a pipe are `Pipe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpStreamType {
    /// One encoding, no layers.
    Simple,
    /// Several encodings (or one with temporal layers on a codec that only
    /// knows simulcast).
    Simulcast,
    /// One encoding with spatial and/or temporal layers (VP9, H264-SVC).
    Svc,
    /// Consumer feeding another router: every encoding is forwarded.
    Pipe,
}

impl fmt::Display for RtpStreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RtpStreamType::Simple => "simple",
            RtpStreamType::Simulcast => "simulcast",
            RtpStreamType::Svc => "svc",
            RtpStreamType::Pipe => "pipe",
        })
    }
}

/// A producer payload type and the router payload type it is rewritten to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecMapping {
    pub payload_type: u8,
    pub mapped_payload_type: u8,
}

/// A producer header extension id and the router id it is rewritten to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderExtensionMapping {
    pub uri: String,
    pub id: u8,
    pub mapped_id: u8,
}

/// How one producer encoding is recognised on input (by `ssrc` or `rid`)
/// and the SSRC its packets carry once inside the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodingMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    pub mapped_ssrc: u32,
}

/// Everything the forwarding path needs to rewrite a producer's packets into
/// the router's numbering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpMapping {
    pub codecs: Vec<CodecMapping>,
    /// Only extensions the router knows for this kind; others are dropped.
    pub header_extensions: Vec<HeaderExtensionMapping>,
    pub encodings: Vec<EncodingMapping>,
}

impl RtpMapping {
    /// Router payload type for a producer payload type.
    pub fn mapped_payload_type(&self, payload_type: u8) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.payload_type == payload_type)
            .map(|c| c.mapped_payload_type)
    }

    /// Router header extension id for a producer id.
    pub fn mapped_header_extension_id(&self, id: u8) -> Option<u8> {
        self.header_extensions
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.mapped_id)
    }
}
