//! The one error type of the crate.

/// Why a packet was refused or a connection ended. None of these reach the
/// [`crate::Handler`]: the engine logs them (at debug level, they are the
/// client's doing) and closes the session.
#[derive(Debug, thiserror::Error)]
pub enum SioError {
    #[error("websocket i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed")]
    Eof,
    #[error("websocket protocol: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidText,
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(u64),
    /// Not an Engine.IO v4 / Socket.IO v5 packet, or one this server does
    /// not take (binary Engine.IO packets, `connect_error` from a client).
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// A polling session's upgrade to websocket that did not complete.
    #[error("websocket upgrade: {0}")]
    Upgrade(&'static str),
    /// The client did not take a frame within the ping timeout.
    #[error("write timed out")]
    WriteTimeout,
}

impl SioError {
    /// The websocket close code that tells a client why its connection
    /// ends (RFC 6455 §7.4.1), or `None` when it is gone or was only slow.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            SioError::Protocol(_) | SioError::Upgrade(_) => Some(1002),
            SioError::InvalidText => Some(1007),
            SioError::Malformed(_) => Some(1008),
            SioError::TooLarge(_) => Some(1009),
            SioError::Io(_) | SioError::Eof | SioError::WriteTimeout => None,
        }
    }
}

pub(crate) fn malformed(message: impl Into<String>) -> SioError {
    SioError::Malformed(message.into())
}
