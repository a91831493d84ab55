//! `/auth/*`: registration, sign-in, token refresh, sign-out, password change.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{
    MAX_DISPLAY_NAME_CHARS, NewRefreshToken, NewUser, RefreshClaim, Role, StoreError, User,
};

use super::caller::AuthUser;
use super::client_addr::client_ip;
use super::dto::*;
use super::extract::Json;
use crate::auth::password::validate_new_password;
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// The address a request came from, for rate limits.
fn client_key(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    client_ip(&state.policy.trust_forwarded_for, peer.ip(), headers).to_string()
}

/// New tokens for `user`, continuing `family` or starting a new one.
async fn issue_tokens(
    state: &AppState,
    user: User,
    family: Option<Uuid>,
) -> ApiResult<AuthResponse> {
    let now = Utc::now();
    let refresh_token = new_refresh_token();
    let record = NewRefreshToken {
        user_id: user.id,
        family_id: family.unwrap_or_else(Uuid::new_v4),
        token_hash: hash_refresh_token(&refresh_token),
        expires_at: state.tokens.refresh_expiry(now),
    };
    state.store.insert_refresh_token(&record, now).await?;
    auth_response(state, user, refresh_token)
}

fn auth_response(state: &AppState, user: User, refresh_token: String) -> ApiResult<AuthResponse> {
    let access_token = state
        .tokens
        .issue_access(&user, Utc::now())
        .map_err(|e| ApiError::internal("signing an access token failed", e))?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        expires_in: state.tokens.access_ttl.as_secs(),
        token_type: "Bearer",
        user: user.into(),
    })
}

/// Create a student account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 403, description = "registration is disabled", body = ErrorBody),
              (status = 409, description = "e-mail taken", body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    if !state.policy.allow_registration {
        return Err(ApiError::forbidden(
            "registration is disabled: ask an administrator for an account",
        ));
    }
    let email = normalize_email(&body.email)?;
    let display_name = clean_text("displayName", &body.display_name, MAX_DISPLAY_NAME_CHARS)?;
    validate_new_password(&body.password)?;
    // Hashing is expensive: registrations count against the sign-in budget.
    state
        .login_by_ip
        .check(&client_key(&state, &headers, peer), Instant::now())
        .map_err(ApiError::rate_limited)?;
    let password_hash = state.passwords.hash(&body.password).await?;
    let user = state
        .store
        .create_user(
            NewUser {
                email,
                display_name,
                password_hash,
                role: Role::Student,
            },
            Utc::now(),
        )
        .await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(issue_tokens(&state, user, None).await?),
    ))
}

/// Sign in with e-mail and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody),
              (status = 403, description = "account disabled", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let now = Instant::now();
    let account = body.email.trim().to_lowercase();
    let address = client_key(&state, &headers, peer);
    // Each attempt takes one from both budgets before the (slow) password
    // check and a successful one gives them back: only failures count.
    state
        .login_by_ip
        .check(&address, now)
        .map_err(ApiError::rate_limited)?;
    if let Err(wait) = state.login_by_account.check(&account, now) {
        state.login_by_ip.refund(&address);
        return Err(ApiError::rate_limited(wait));
    }

    let credentials = match state.store.credentials_by_email(&account).await {
        Ok(c) => Some(c),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let matched = state
        .passwords
        .verify(
            &body.password,
            credentials.as_ref().map(|c| c.password_hash.as_str()),
        )
        .await;
    let Some(credentials) = credentials.filter(|_| matched) else {
        return Err(ApiError::unauthorized("wrong e-mail or password"));
    };
    state.login_by_ip.refund(&address);
    state.login_by_account.refund(&account);
    if credentials.user.disabled {
        return Err(ApiError::forbidden("this account is disabled"));
    }
    tracing::info!(user_id = %credentials.user.id, "signed in");
    Ok(Json(issue_tokens(&state, credentials.user, None).await?))
}

/// Exchange a refresh token for new tokens. Each refresh token works once;
/// presenting a spent one signs out every device of that sign-in.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let now = Utc::now();
    let next = new_refresh_token();
    let claim = state
        .store
        .rotate_refresh_token(
            &hash_refresh_token(&body.refresh_token),
            &hash_refresh_token(&next),
            state.tokens.refresh_expiry(now),
            now,
        )
        .await?;
    match claim {
        RefreshClaim::Rotated { new, .. } => {
            let user = match state.store.user_by_id(new.user_id).await {
                Ok(u) if !u.disabled => u,
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(ApiError::unauthorized("account unavailable"));
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Json(auth_response(&state, user, next)?))
        }
        RefreshClaim::Reused { user_id, family_id } => {
            tracing::warn!(%user_id, %family_id, "spent refresh token presented again: family revoked");
            Err(ApiError::unauthorized(
                "refresh token already used: sign in again",
            ))
        }
        RefreshClaim::Expired => Err(ApiError::unauthorized(
            "refresh token expired: sign in again",
        )),
        RefreshClaim::Unknown => Err(ApiError::unauthorized("invalid refresh token")),
    }
}

/// Sign out: of the device holding `refreshToken`, or `everywhere`. The body
/// is optional; without one, nothing but the caller's access token is checked.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    responses((status = 204), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn logout(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let now = Utc::now();
    if request.everywhere {
        state.store.revoke_user_refresh_tokens(user.id, now).await?;
        state.store.bump_token_epoch(user.id, now).await?;
    } else if let Some(token) = request.refresh_token {
        state
            .store
            .revoke_refresh_family_of(&hash_refresh_token(&token), user.id, now)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
async fn me(AuthUser(user): AuthUser) -> Json<UserDto> {
    Json(user.into())
}

/// Change the password. Every other session ends; the answer holds new tokens.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, description = "too many wrong current passwords", body = ErrorBody)),
    security(("bearer" = [])))]
async fn change_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<Json<AuthResponse>> {
    state
        .login_by_account
        .check(&user.email, Instant::now())
        .map_err(ApiError::rate_limited)?;
    let credentials = state.store.credentials_by_id(user.id).await?;
    if !state
        .passwords
        .verify(&body.current_password, Some(&credentials.password_hash))
        .await
    {
        return Err(ApiError::unauthorized("current password is wrong"));
    }
    validate_new_password(&body.new_password)?;
    let hash = state.passwords.hash(&body.new_password).await?;
    let user = state
        .store
        .change_password(user.id, &hash, Utc::now())
        .await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(Json(issue_tokens(&state, user, None).await?))
}
