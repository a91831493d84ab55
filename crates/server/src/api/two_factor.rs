//! `/auth/2fa/*`: two-factor sign-in with TOTP (RFC 6238). Enrolment
//! (`setup` makes a secret and shows it as an `otpauth://` URI and a QR
//! code; `confirm` turns it on with a first code and answers ten
//! single-use recovery codes, shown once and stored hashed), the second
//! step of signing in (`verify`, with the short-lived pending token
//! `/auth/login` answers instead of tokens), and `disable`.
//!
//! Codes are limited per account (`AppState::second_factor`, failures
//! only), and a code is accepted once: the store records the last time
//! step used and refuses that step and earlier ones again.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vtp_store::User;

use super::auth::issue_tokens;
use super::caller::{AuthUser, EnrollingUser};
use super::dto::AuthResponse;
use super::extract::Json;
use crate::auth::AuthError;
use crate::auth::tokens::Scope;
use crate::auth::totp;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// How long the password step of a two-factor sign-in stays good.
const PENDING_TTL: Duration = Duration::from_secs(5 * 60);
/// The issuer an authenticator app shows next to the code.
const ISSUER: &str = "VTP";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(setup))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(verify))
}

/// Answer to `/auth/login`: tokens, or the second step of a two-factor sign-in.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(AuthResponse),
    SecondFactor(SecondFactorChallenge),
}

/// The password was right; send a code to `/auth/2fa/verify`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecondFactorChallenge {
    /// Always true: tells this answer from tokens.
    pub second_factor_required: bool,
    /// Good only for `/auth/2fa/verify`, for `expiresIn` seconds.
    pub pending_token: String,
    pub expires_in: u64,
}

/// The pending token for `user`, whose password was right.
pub fn challenge(state: &AppState, user: &User) -> ApiResult<SecondFactorChallenge> {
    let pending_token = state
        .tokens
        .issue_scoped(user, Utc::now(), Some(Scope::SecondFactor), PENDING_TTL)
        .map_err(|e| ApiError::internal("signing a pending token failed", e))?;
    Ok(SecondFactorChallenge {
        second_factor_required: true,
        pending_token,
        expires_in: PENDING_TTL.as_secs(),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupResponse {
    /// The secret in base32, for typing into an app by hand.
    pub secret: String,
    /// `otpauth://totp/VTP:<e-mail>?secret=…&issuer=VTP&algorithm=SHA1&digits=6&period=30`
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeRequest {
    /// Six digits from the app (or, where accepted, a recovery code).
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    /// Ten single-use codes for when the phone is lost; shown this once.
    pub recovery_codes: Vec<String>,
    /// New tokens (full access from now on).
    pub tokens: AuthResponse,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableRequest {
    /// A code from the app, or a recovery code.
    #[serde(default)]
    pub code: Option<String>,
    /// Or the account's password.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// From `/auth/login`'s answer.
    pub pending_token: String,
    /// Six digits from the app, or a recovery code.
    pub code: String,
}

/// Takes one code attempt of `user`'s budget.
fn spend_attempt(state: &AppState, user: &User) -> ApiResult<()> {
    state
        .second_factor
        .check(&user.id.to_string(), Instant::now())
        .map_err(ApiError::rate_limited)
}

/// Whether `input` is a good second factor for `user` now: a TOTP code
/// of a time step not used before, or an unused recovery code (spent
/// here). A success gives the attempt back.
async fn second_factor_ok(state: &AppState, user: &User, input: &str) -> ApiResult<bool> {
    let ok = if totp::is_recovery_code(input) {
        state
            .store
            .use_recovery_code(user.id, &totp::hash_recovery_code(input), Utc::now())
            .await?
    } else {
        code_ok(state, user, input, true).await?
    };
    if ok {
        state.second_factor.refund(&user.id.to_string());
        tracing::info!(user_id = %user.id, "second factor accepted");
    }
    Ok(ok)
}

/// Whether `code` is the TOTP code of `user`'s secret (in use, or
/// pending when `enabled_only` is false) for a step not used before; the
/// step is recorded, so the same code never works twice.
async fn code_ok(state: &AppState, user: &User, code: &str, enabled_only: bool) -> ApiResult<bool> {
    let Some(record) = state.store.totp_of(user.id).await? else {
        return Ok(false);
    };
    if enabled_only && !record.enabled {
        return Ok(false);
    }
    // A secret that does not open (the secrets key was changed or lost)
    // matches no code: `vtp user reset-2fa` is the way back in.
    let secret = match state.sealer.open(user.id, &record.secret) {
        Ok(secret) => secret,
        Err(e) => {
            tracing::warn!(user_id = %user.id, error = %e, "two-factor secret unreadable");
            return Ok(false);
        }
    };
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let Some(step) = totp::matching_step(&secret, code, totp::step_of(now)) else {
        return Ok(false);
    };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    Ok(state.store.claim_totp_step(user.id, step).await?)
}

/// Start enrolling: a new secret, as a URI and a QR code for the app.
#[utoipa::path(post, path = "/auth/2fa/setup", tag = "auth",
    responses((status = 200, body = SetupResponse), (status = 401, body = ErrorBody),
              (status = 409, description = "two-factor sign-in is already on", body = ErrorBody)),
    security(("bearer" = [])))]
async fn setup(
    State(state): State<AppState>,
    EnrollingUser(user): EnrollingUser,
) -> ApiResult<Json<SetupResponse>> {
    let secret = totp::new_secret();
    state
        .store
        .begin_totp(
            user.id,
            &state.sealer.seal(user.id, secret.expose()),
            Utc::now(),
        )
        .await?;
    let otpauth_uri = totp::otpauth_uri(&secret, ISSUER, &user.email);
    let qr_svg = totp::qr_svg(&otpauth_uri)
        .ok_or_else(|| ApiError::internal("QR code", "the URI does not fit in a QR code"))?;
    Ok(Json(SetupResponse {
        secret: secret.expose().to_string(),
        otpauth_uri,
        qr_svg,
    }))
}

/// Finish enrolling with a first code: two-factor sign-in is on, every
/// other session of the account ends, and the answer holds ten recovery
/// codes (shown once) and new tokens.
#[utoipa::path(post, path = "/auth/2fa/confirm", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = ConfirmResponse), (status = 401, body = ErrorBody),
              (status = 409, description = "no enrolment started, or already on", body = ErrorBody),
              (status = 422, description = "wrong or used code", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
async fn confirm(
    State(state): State<AppState>,
    EnrollingUser(user): EnrollingUser,
    Json(body): Json<CodeRequest>,
) -> ApiResult<Json<ConfirmResponse>> {
    if user.two_factor {
        return Err(ApiError::conflict("two-factor sign-in is already on"));
    }
    if state.store.totp_of(user.id).await?.is_none() {
        return Err(ApiError::conflict(
            "start with /auth/2fa/setup: there is no secret to confirm",
        ));
    }
    spend_attempt(&state, &user)?;
    if !code_ok(&state, &user, &body.code, false).await? {
        return Err(ApiError::validation(
            "code: wrong, expired or already used: type the code your app shows now",
        ));
    }
    state.second_factor.refund(&user.id.to_string());
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::hash_recovery_code(c.expose()))
        .collect();
    let user = state
        .store
        .enable_totp(user.id, &hashes, Utc::now())
        .await?;
    // A session opened with the password alone must not outlive the change.
    state
        .end_live_sessions(user.id, "two-factor sign-in was turned on")
        .await;
    tracing::info!(user_id = %user.id, "two-factor sign-in turned on; other sessions ended");
    Ok(Json(ConfirmResponse {
        recovery_codes: codes.iter().map(|c| c.expose().to_string()).collect(),
        tokens: issue_tokens(&state, user, None).await?,
    }))
}

/// Turn two-factor sign-in off, proven with a code (or recovery code) or
/// the password. Refused when the role requires it.
#[utoipa::path(post, path = "/auth/2fa/disable", tag = "auth", request_body = DisableRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "the role requires it", body = ErrorBody),
              (status = 409, description = "it is off", body = ErrorBody),
              (status = 422, description = "wrong code or password, or neither given", body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disable(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(body): Json<DisableRequest>,
) -> ApiResult<StatusCode> {
    if state.policy.require_2fa_for.contains(&user.role) {
        return Err(ApiError::forbidden(
            "your role requires two-factor sign-in: it cannot be turned off",
        ));
    }
    if !user.two_factor {
        return Err(ApiError::conflict("two-factor sign-in is off"));
    }
    spend_attempt(&state, &user)?;
    let proven = match (&body.code, &body.password) {
        (Some(code), _) => second_factor_ok(&state, &user, code).await?,
        (None, Some(password)) => {
            let credentials = state.store.credentials_by_id(user.id).await?;
            let ok = state
                .passwords
                .verify(password, Some(&credentials.password_hash))
                .await;
            if ok {
                state.second_factor.refund(&user.id.to_string());
            }
            ok
        }
        (None, None) => {
            state.second_factor.refund(&user.id.to_string());
            return Err(ApiError::validation(
                "code: give a code from your app, a recovery code, or your password",
            ));
        }
    };
    if !proven {
        return Err(ApiError::validation(
            "code: wrong or already used code, or wrong password",
        ));
    }
    state.store.disable_totp(user.id, Utc::now()).await?;
    tracing::info!(user_id = %user.id, "two-factor sign-in turned off");
    Ok(StatusCode::NO_CONTENT)
}

/// The second step of signing in: the pending token from `/auth/login`
/// and a code from the app (or a recovery code, which is then spent).
#[utoipa::path(post, path = "/auth/2fa/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 200, body = AuthResponse), (status = 401, description = "wrong or used code, or the pending token expired", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    Json(body): Json<VerifyRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let user = state
        .authenticate_scoped(&body.pending_token, &[Some(Scope::SecondFactor)])
        .await
        .map_err(|e| match e {
            AuthError::InvalidToken => {
                ApiError::unauthorized("the sign-in has expired: enter your password again")
            }
            other => other.into(),
        })?;
    spend_attempt(&state, &user)?;
    if !second_factor_ok(&state, &user, &body.code).await? {
        return Err(ApiError::unauthorized("wrong or already used code"));
    }
    tracing::info!(user_id = %user.id, "signed in with a second factor");
    Ok(Json(issue_tokens(&state, user, None).await?))
}
