//! Sans-IO media engine of VTP.
//!
//! Owns everything about media that can be decided without sockets, clocks,
//! threads or a database: RTP negotiation ([`rtp`]: router capabilities,
//! producer mapping, consumer parameters), and — as the engine grows —
//! transports, producers, consumers, forwarding, simulcast layer choice,
//! keyframe requests and speaker detection. The driver crate runs it; the
//! server crate talks to it. Nothing here may depend on either.

pub mod engine;
pub mod rtp;
