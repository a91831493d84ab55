//! Who is calling: password hashing, access and refresh tokens, and
//! [`authenticate`], which turns an access token into a current user.
//!
//! Knows nothing of HTTP or sockets: failures are [`AuthError`]s, which the
//! edges turn into their own answers (the HTTP API maps them in
//! `api::caller`, where the `AuthUser` extractor lives; signalling refuses
//! the `CONNECT`).

pub mod links;
pub mod password;
pub mod sealing;
pub mod tokens;
pub mod totp;
pub mod watch;

use vtp_store::{Store, StoreError, User};

use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use tokens::{Scope, TokenIssuer};

/// What can go wrong in authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password: must be at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("password: must be at most {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    /// Long enough but guessable; the text says why and what helps.
    #[error("password: {0}")]
    PasswordWeak(String),
    /// The access token is malformed, expired or forged, or its user is
    /// gone, disabled, or signed out everywhere since it was issued.
    #[error("invalid or expired access token")]
    InvalidToken,
    /// Hashing failed or its blocking task died (an internal failure).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user an access token stands for, if it is still good: the token
/// verifies, is a full access token (not one limited to a second factor
/// or to enrolment), and its user exists, is not disabled, and has the
/// token's epoch. Read from the store every time, so that disabling or
/// deleting a user, or moving their epoch, takes effect at once.
pub async fn authenticate(
    store: &Store,
    tokens: &TokenIssuer,
    token: &str,
) -> Result<User, AuthError> {
    authenticate_scoped(store, tokens, token, &[None]).await
}

/// [`authenticate`] for a token whose scope is one of `allowed` (`None`
/// standing for a full access token).
pub async fn authenticate_scoped(
    store: &Store,
    tokens: &TokenIssuer,
    token: &str,
    allowed: &[Option<Scope>],
) -> Result<User, AuthError> {
    let claims = tokens.verify_access(token).ok_or(AuthError::InvalidToken)?;
    if !allowed.contains(&claims.scp) {
        return Err(AuthError::InvalidToken);
    }
    let user = match store.user_by_id(claims.sub).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => return Err(AuthError::InvalidToken),
        Err(e) => return Err(e.into()),
    };
    if user.disabled || user.token_epoch != claims.ep {
        return Err(AuthError::InvalidToken);
    }
    Ok(user)
}
