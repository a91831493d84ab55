//! Who is calling, seen from HTTP: the [`AuthUser`] extractor every
//! protected route takes, and how `auth`'s errors are answered.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use vtp_store::{Role, User};

use crate::auth::AuthError;
use crate::auth::tokens::Scope;
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

/// [`AuthUser`], or the holder of a token good only for enrolling in
/// two-factor sign-in (`--require-2fa-for`) or for replacing a temporary
/// password: for the routes that such a user needs (enrolment, changing
/// the password, reading oneself, signing out).
#[derive(Clone, Debug)]
pub struct EnrollingUser(pub User);

impl FromRequestParts<AppState> for EnrollingUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::tokens::bearer_token(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer …)")
        })?;
        let allowed = [None, Some(Scope::Enrol), Some(Scope::PasswordChange)];
        Ok(EnrollingUser(
            state.authenticate_scoped(token, &allowed).await?,
        ))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::tokens::bearer_token(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer …)")
        })?;
        match state.authenticate(token).await {
            Ok(user) => {
                if let Some(context) = parts
                    .extensions
                    .get::<super::request_context::RequestContext>()
                {
                    context.record_user(user.id);
                }
                Ok(AuthUser(user))
            }
            // Say what to do rather than "invalid token" (and a client
            // that refreshes on 401 would only get the same token again).
            Err(AuthError::InvalidToken)
                if state
                    .tokens
                    .verify_access(token)
                    .is_some_and(|c| c.scp == Some(Scope::PasswordChange)) =>
            {
                Err(ApiError::forbidden(
                    "you signed in with a temporary password: choose a new password first",
                ))
            }
            Err(AuthError::InvalidToken)
                if state
                    .tokens
                    .verify_access(token)
                    .is_some_and(|c| c.scp == Some(Scope::Enrol)) =>
            {
                Err(ApiError::forbidden(
                    "your role requires two-factor sign-in: turn it on in your account first",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::PasswordTooShort
            | AuthError::PasswordTooLong
            | AuthError::PasswordWeak(_) => ApiError::validation(err.to_string()),
            AuthError::InvalidToken => ApiError::unauthorized(err.to_string()),
            AuthError::Hashing(_) => ApiError::internal("password hashing failed", err),
            AuthError::Store(e) => e.into(),
        }
    }
}
