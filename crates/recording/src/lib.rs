//! Recording of VTP's media, sans-IO: RTP packets in, crash-safe WebM or
//! Matroska files and a JSON manifest out.
//!
//! This crate owns what can be decided without sockets, clocks, threads or a
//! database:
//! - [`JitterBuffer`]: reorder a track's RTP, wait briefly for
//!   retransmissions, give up and report losses, with bounded memory;
//! - [`Depacketizer`]: whole frames from RTP payloads of VP8 (RFC 7741),
//!   H.264 (RFC 6184: single NAL, STAP-A, FU-A) and Opus;
//! - [`WebmWriter`]: one track per file, written incrementally in Clusters of
//!   unknown size so that a file cut anywhere still plays, finalized with
//!   Cues and Duration when the sink can seek;
//! - [`TrackRecorder`]: the three above for one track, dropping video until
//!   a keyframe after any loss and asking for keyframes, with size and
//!   duration limits;
//! - [`repair`]: cut a crashed file after its last whole block and say
//!   whether it is playable;
//! - [`Manifest`]: who owns each track and where it starts.
//!
//! It does not know the SFU (which subscribes a recorder to a producer and
//! turns [`RecorderEvent::KeyframeRequest`] into a PLI), the store (which
//! keeps the recording's state: `recording`, `ready`, `failed`), HTTP, or
//! where files live: the caller opens them and passes any `Write` (+ `Seek`
//! to finalize). Time is an input (`Instant`), never read here.

pub mod depack;
pub mod ebml;
mod error;
pub mod h264;
pub mod jitter;
pub mod manifest;
pub mod recorder;
pub mod repair;
pub mod vp8;
pub mod webm;

pub use depack::{Codec, Depacketizer, Frame, Kind};
pub use error::{Error, Result};
pub use jitter::{JitterBuffer, JitterConfig, JitterOutput, RtpPacket};
pub use manifest::{Manifest, ManifestTrack};
pub use recorder::{Finished, Limit, RecorderConfig, RecorderEvent, RecorderStats, TrackRecorder};
pub use repair::{RepairReport, repair_file, scan};
pub use webm::{TrackInfo, WebmWriter};
