//! Errors of the media peer.

use thiserror::Error;

/// Why a media-peer call failed. Network input never causes one of these to
/// be returned from the driving task: bad datagrams are counted and dropped.
#[derive(Debug, Error)]
pub enum MediaError {
    /// A socket could not be bound or used.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON object from the server (or given by the caller) does not have
    /// the mediasoup shape this peer needs.
    #[error("invalid {what}: {reason}")]
    InvalidParameters { what: &'static str, reason: String },
    /// Well-formed parameters this peer cannot take (another payload type or
    /// header-extension id than its `Rtc` was built with, an unknown codec…).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A MID or SSRC that is already used on the transport.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A send call on a receive transport or the other way round.
    #[error("transport {transport_id:?} is a {direction} transport")]
    WrongDirection {
        transport_id: String,
        direction: &'static str,
    },
    /// str0m refused a call.
    #[error("webrtc error: {0}")]
    Rtc(String),
    /// The transport was closed (or its task ended).
    #[error("the transport is closed")]
    Closed,
    /// Something awaited did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl MediaError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        MediaError::InvalidParameters {
            what,
            reason: reason.into(),
        }
    }
}
