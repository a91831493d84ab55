//! Who is calling, seen from HTTP: the [`AuthUser`] extractor every
//! protected route takes, and how `auth`'s errors are answered.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use vtp_store::{Role, User};

use crate::auth::AuthError;
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in user of a request: a valid access token whose user exists,
/// is not disabled, and whose token epoch still matches. Checked against the
/// store on every request, so disabling or deleting a user takes effect at once.
#[derive(Clone, Debug)]
pub struct AuthUser(pub User);

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("admins only"))
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer …)")
        })?;
        Ok(AuthUser(state.authenticate(token).await?))
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::PasswordTooShort | AuthError::PasswordTooLong => {
                ApiError::validation(err.to_string())
            }
            AuthError::InvalidToken => ApiError::unauthorized(err.to_string()),
            AuthError::Hashing(_) => ApiError::internal("password hashing failed", err),
            AuthError::Store(e) => e.into(),
        }
    }
}
