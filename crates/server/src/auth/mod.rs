//! Who is calling: password hashing, tokens, sign-in rate limits and the
//! [`AuthUser`] extractor that every protected route takes.

pub mod client_addr;
pub mod password;
pub mod rate_limit;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use vtp_store::{Role, StoreError, User};

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

impl AppState {
    /// The user an access token stands for, if it is still good.
    pub async fn authenticate(&self, token: &str) -> Result<User, ApiError> {
        let refused = || ApiError::unauthorized("invalid or expired access token");
        let claims = self.tokens.verify_access(token).ok_or_else(refused)?;
        let user = match self.store.user_by_id(claims.sub).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        if user.disabled || user.token_epoch != claims.ep {
            return Err(refused());
        }
        Ok(user)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer …)")
        })?;
        state.authenticate(token).await.map(AuthUser)
    }
}
