//! RTP negotiation: the capabilities a router offers, and how producers and
//! consumers are fitted to them.
//!
//! This is the part of the engine that speaks `mediasoup-client`'s language.
//! It owns the JSON shapes of `rtpCapabilities` and `rtpParameters`
//! ([`types`]), the checks applied to them when they come from a client
//! ([`validate`]), the codec-identity rule ([`codec`]), the router
//! capabilities ([`capabilities`]) and the producer and consumer rules
//! ([`producer`], [`consumer`], with SSRC blocks from [`ssrc`]). The rules follow mediasoup's `ortc` module, re-written
//! for this code base; where VTP is stricter or simpler, the item docs say
//! so.
//!
//! It is pure computation on values: no I/O, no clock, no randomness (SSRCs
//! come from a generator the caller passes in), no shared state. The
//! forwarding path consumes its outputs ([`RtpMapping`] to rewrite incoming
//! packets, consumer [`RtpParameters`] to rewrite outgoing ones).
//!
//! Typical use, per room and per `produce` / `consume` request:
//!
//! ```
//! use vtp_sfu::rtp::{self, ConsumerOptions, MediaKind};
//!
//! let router_caps = rtp::router_rtp_capabilities();
//! let produce: rtp::RtpParameters = serde_json::from_value(serde_json::json!({
//!     "mid": "0",
//!     "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000,
//!                  "channels": 2 }],
//!     "encodings": [{ "ssrc": 1234 }]
//! })).unwrap();
//! let mut ssrcs = [5000u32, 6000, 7000].into_iter().cycle();
//! let mut next_ssrc = move || ssrcs.next().unwrap_or(1);
//! let producer = rtp::negotiate_producer(MediaKind::Audio, &produce, &router_caps, &mut next_ssrc)?;
//! assert_eq!(producer.rtp_mapping.mapped_payload_type(111), Some(100));
//!
//! // The receiving device's capabilities (here: the router's own).
//! let consumable = &producer.consumable_rtp_parameters;
//! assert!(rtp::can_consume(consumable, &router_caps)?);
//! let consumer = rtp::consumer_rtp_parameters(
//!     consumable, &router_caps, &ConsumerOptions::for_kind(MediaKind::Audio), &mut next_ssrc)?;
//! assert_eq!(consumer.encodings.len(), 1);
//! # Ok::<(), rtp::RtpError>(())
//! ```

pub mod capabilities;
pub mod codec;
pub mod consumer;
mod error;
pub mod producer;
pub mod ssrc;
pub mod types;
pub mod validate;

pub use capabilities::{
    default_media_codecs, generate_router_rtp_capabilities, router_rtp_capabilities,
    supported_rtp_capabilities, uri,
};
pub use codec::{ScalabilityMode, is_media_codec, is_rtx, parse_scalability_mode};
pub use consumer::{
    ConsumerOptions, can_consume, consumer_rtp_parameters, pipe_consumer_rtp_parameters,
};
pub use error::RtpError;
pub use producer::{
    ProducerNegotiation, apply_transport_cname, consumable_rtp_parameters, negotiate_producer,
    producer_rtp_mapping, rtp_stream_type,
};
pub use ssrc::SsrcGenerator;
pub use types::{
    CodecMapping, CodecParameters, EncodingMapping, HeaderExtensionMapping, MediaKind,
    RtcpFeedback, RtcpParameters, RtpCapabilities, RtpCodecCapability, RtpCodecParameters,
    RtpEncodingParameters, RtpHeaderExtension, RtpHeaderExtensionDirection,
    RtpHeaderExtensionParameters, RtpMapping, RtpParameters, RtpStreamType, RtxParameters,
};
pub use validate::{
    MAX_ENCODINGS, MAX_RID_CHARS, parse_rtp_capabilities, parse_rtp_parameters,
    validate_codec_capability, validate_rtp_capabilities, validate_rtp_parameters,
};
