//! Sans-IO media engine of VTP.
//!
//! Owns everything about media that can be decided without sockets, clocks,
//! threads or a database: RTP negotiation after mediasoup's rules ([`rtp`]:
//! router capabilities, producer mapping, consumer parameters) and the
//! engine ([`engine`]: WebRTC transports over str0m, producers, consumers,
//! forwarding, simulcast layer switching, bandwidth allocation, keyframe
//! relay, active speaker, statistics and recording taps). Time and packets
//! are inputs; packets to send and events are outputs. The driver crate
//! runs it on sockets and threads; the server crate talks to it through the
//! driver. Nothing here may depend on either. docs/ARCHITECTURE.md has the
//! map of its modules.

#[cfg(feature = "engine")]
pub mod engine;
pub mod rtp;
