//! Errors of room operations, with the stable codes of docs/protocol.md.

use serde::Serialize;
use vtp_store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RoomFull,
    RoomClosed,
    /// Nobody has opened the room yet: a session starts when a host
    /// joins. Try again later.
    NotStarted,
    RateLimited,
    /// A cap on how many of something there may be is reached (consumers,
    /// producers in the room): close some first; waiting does not help.
    LimitReached,
    Internal,
}

/// A refused or failed room operation, answered as
/// `{ ok: false, error: { code, message } }`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct SignalError {
    pub code: SignalCode,
    pub message: String,
}

impl SignalError {
    pub fn new(code: SignalCode, message: impl Into<String>) -> Self {
        SignalError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(SignalCode::BadRequest, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(SignalCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(SignalCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(SignalCode::Conflict, message)
    }
    pub fn not_in_room(room_id: &str) -> Self {
        Self::not_found(format!("you are not in room {room_id:?}: join it first"))
    }
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(SignalCode::Internal, "internal error")
    }
}

impl From<StoreError> for SignalError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => SignalError::not_found("not found"),
            StoreError::Conflict(m) => SignalError::conflict(m),
            other => SignalError::internal("store failure", other),
        }
    }
}
