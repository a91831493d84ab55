//! The one error type of the crate.

use std::io;

/// Everything that can go wrong while recording or repairing a track.
///
/// Malformed *network input* (a truncated RTP payload, an unknown H.264
/// packetization mode) is reported as [`Error::Depacketize`] and never panics:
/// a recorder drops the packet, counts it, and goes on. I/O errors come from
/// the sink the caller handed in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A payload that the codec's RTP format does not allow.
    #[error("cannot depacketize {codec} payload: {reason}")]
    Depacketize {
        codec: &'static str,
        reason: &'static str,
    },
    /// The header of a track cannot be written yet or at all (for example an
    /// H.264 track whose keyframe carried no SPS/PPS).
    #[error("cannot describe the track: {0}")]
    Track(&'static str),
    /// A file that is not the WebM/Matroska this crate writes, cut before its
    /// track header, or otherwise not repairable.
    #[error("not a repairable recording: {0}")]
    Corrupt(&'static str),
    /// A manifest that is not valid JSON of the expected shape.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    /// The sink (file, buffer) failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
