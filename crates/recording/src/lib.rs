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
//! - [`repair`]: cut a crashed file after its last whole block, re-index
//!   it as finalize would have, and say whether it is playable;
//! - [`Manifest`]: who owns each track and where it starts.
//!
//! It does not know the SFU (which subscribes a recorder to a producer and
//! turns [`RecorderEvent::KeyframeRequest`] into a PLI), the store (which
//! keeps the recording's state: `recording`, `ready`, `failed`), HTTP, or
//! where files live: the caller opens them and passes any `Write` (+ `Seek`
//! to finalize). Time is an input (`Instant`), never read here.
//!
//! # Recording a track
//!
//! ```
//! use std::io::Cursor;
//! use std::time::{Duration, Instant};
//! use vtp_recording::{Codec, RecorderConfig, RecorderEvent, RtpPacket, TrackRecorder};
//!
//! let epoch = Instant::now(); // when the recording started
//! let config = RecorderConfig {
//!     max_bytes: Some(512 << 20),
//!     ..RecorderConfig::new(Codec::Opus, epoch)
//! };
//! // In the server: a `BufWriter<File>`. Any `Write` works; `Seek` finalizes.
//! let mut track = TrackRecorder::new(config, Cursor::new(Vec::new()));
//! for n in 0..50u16 {
//!     let payload = vec![0xFC, 0xFF, 0xFE]; // an Opus packet
//!     let packet = RtpPacket { sequence_number: n, timestamp: u32::from(n) * 960, marker: false, payload };
//!     track.push_rtp(packet, epoch + Duration::from_millis(u64::from(n) * 20))?;
//!     // Also call `handle_timeout(now)` at `poll_timeout()`, then drain events.
//!     while let Some(event) = track.poll_event() {
//!         match event {
//!             RecorderEvent::KeyframeRequest => { /* the SFU sends a PLI upstream */ }
//!             RecorderEvent::LimitReached(_) => { /* stop and finish this track */ }
//!             RecorderEvent::Started { offset } => { /* the manifest's start_offset_ms */ }
//!             RecorderEvent::Lost { .. } => {}
//!         }
//!     }
//! }
//! let duration = track.duration();
//! let file = track.finish()?.finalize()?.into_inner();
//! assert_eq!(duration, Duration::from_millis(1000));
//!
//! // At start-up, a file left by a crash: ready if playable, else failed.
//! let report = vtp_recording::scan(&mut Cursor::new(&file[..file.len() / 2]))?;
//! assert!(report.playable && report.truncated());
//! # Ok::<(), vtp_recording::Error>(())
//! ```

mod clock;
pub mod depack;
pub mod ebml;
mod error;
pub mod h264;
mod index;
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
