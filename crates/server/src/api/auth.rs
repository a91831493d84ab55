//! `/auth/*`: registration, sign-in, token refresh, sign-out, password change.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{
    MAX_DISPLAY_NAME_CHARS, NewRefreshToken, NewUser, RefreshClaim, Role, StoreError, User,
};

use super::caller::EnrollingUser;
use super::client_addr::client_ip;
use super::dto::*;
use super::extract::{Body, Json};
use super::two_factor::{self, LoginResponse};
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::password::validate_new_password;
use crate::auth::tokens::{Scope, hash_refresh_token, new_refresh_token};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::webhooks::WebhookEvent;

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

/// The sign-in budgets one attempt took: it takes one from each before
/// the (slow) password check, so that parallel guesses cannot all pass a
/// check that only counts finished failures, and a right password gives
/// them back: only failures count.
///
/// Three budgets: per client address (a guesser trying many accounts);
/// per (account, address), the lockout, which stops one guesser without
/// touching the owner elsewhere; and per account from anywhere. Once that
/// last one is spent (many addresses failing for one account), only an
/// address that has not failed for the account lately may try, and a
/// failure from it spends that address's whole budget: guessing slows to
/// one try per address per refill, while the owner, from an address of
/// their own, still signs in.
struct LoginLimits {
    address: String,
    account: String,
    account_here: String,
    /// The per-account budget had an attempt to take (and took it).
    took_total: bool,
}

impl LoginLimits {
    fn take(state: &AppState, account: &str, address: &str, now: Instant) -> ApiResult<Self> {
        let account_here = format!("{account}\n{address}");
        let fresh = state.login_by_account.is_full(&account_here, now);
        state
            .login_by_ip
            .check(address, now)
            .map_err(ApiError::rate_limited)?;
        if let Err(wait) = state.login_by_account.check(&account_here, now) {
            state.login_by_ip.refund(address);
            return Err(ApiError::rate_limited(wait));
        }
        let took_total = match state.login_by_account_total.check(account, now) {
            Ok(()) => true,
            Err(_) if fresh => false,
            Err(wait) => {
                state.login_by_ip.refund(address);
                state.login_by_account.refund(&account_here);
                return Err(ApiError::rate_limited(wait));
            }
        };
        Ok(LoginLimits {
            address: address.to_string(),
            account: account.to_string(),
            account_here,
            took_total,
        })
    }

    fn failed(&self, state: &AppState, now: Instant) {
        if !self.took_total {
            state.login_by_account.drain(&self.account_here, now);
        }
    }

    fn succeeded(&self, state: &AppState) {
        state.login_by_ip.refund(&self.address);
        state.login_by_account.refund(&self.account_here);
        if self.took_total {
            state.login_by_account_total.refund(&self.account);
        }
    }
}

/// New tokens for `user`, continuing `family` or starting a new one.
pub(super) async fn issue_tokens(
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

/// Tokens for `user`: a full access token, or one good only for
/// enrolling when the role requires two-factor sign-in and the account
/// has none yet (`--require-2fa-for`).
fn auth_response(state: &AppState, user: User, refresh_token: String) -> ApiResult<AuthResponse> {
    let enrolment_required = state.policy.require_2fa_for.contains(&user.role) && !user.two_factor;
    // A temporary password comes first: enrolling follows on the next token.
    let password_change_required = user.password_must_change;
    let scope = if password_change_required {
        Some(Scope::PasswordChange)
    } else {
        enrolment_required.then_some(Scope::Enrol)
    };
    let access_token = state
        .tokens
        .issue_scoped(&user, Utc::now(), scope, state.tokens.access_ttl)
        .map_err(|e| ApiError::internal("signing an access token failed", e))?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        expires_in: state.tokens.access_ttl.as_secs(),
        token_type: "Bearer",
        user: user.into(),
        enrolment_required,
        password_change_required,
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
    validate_new_password(&body.password, &[&email, &display_name])?;
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
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::UserCreated)
                .by(&user)
                .on("user", user.id)
                .from_address(client_key(&state, &headers, peer))
                .with_detail(serde_json::json!({ "via": "registration", "role": user.role })),
        )
        .await;
    state.webhooks.emit(
        WebhookEvent::UserCreated,
        serde_json::json!({ "userId": user.id, "role": user.role, "via": "registration" }),
    );
    Ok((
        StatusCode::CREATED,
        Json(issue_tokens(&state, user, None).await?),
    ))
}

/// Sign in with e-mail and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "tokens, or (two-factor sign-in) a pending token for `/auth/2fa/verify`", body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 403, description = "account disabled", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let now = Instant::now();
    let account = body.email.trim().to_lowercase();
    let address = client_key(&state, &headers, peer);
    let limits = match LoginLimits::take(&state, &account, &address, now) {
        Ok(limits) => limits,
        Err(refused) => {
            state
                .audit
                .record(
                    AuditEntry::new(AuditKind::LockedOut)
                        .by_id(None, Some(&account))
                        .from_address(&address),
                )
                .await;
            return Err(refused);
        }
    };

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
    let known_id = credentials.as_ref().map(|c| c.user.id);
    let Some(credentials) = credentials.filter(|_| matched) else {
        limits.failed(&state, now);
        state
            .audit
            .record(
                AuditEntry::new(AuditKind::SignInFailed)
                    .by_id(known_id, Some(&account))
                    .from_address(&address),
            )
            .await;
        return Err(ApiError::unauthorized("wrong e-mail or password"));
    };
    limits.succeeded(&state);
    if credentials.user.disabled {
        return Err(ApiError::forbidden("this account is disabled"));
    }
    if credentials.user.two_factor {
        tracing::info!(user_id = %credentials.user.id, "password accepted; second factor asked");
        return Ok(Json(LoginResponse::SecondFactor(two_factor::challenge(
            &state,
            &credentials.user,
        )?)));
    }
    tracing::info!(user_id = %credentials.user.id, "signed in");
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::SignIn)
                .by(&credentials.user)
                .from_address(&address),
        )
        .await;
    Ok(Json(LoginResponse::Tokens(
        issue_tokens(&state, credentials.user, None).await?,
    )))
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
    EnrollingUser(user): EnrollingUser,
    Body(body): Body,
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
        state
            .end_live_sessions(user.id, "you signed out everywhere")
            .await;
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
async fn me(EnrollingUser(user): EnrollingUser) -> Json<UserDto> {
    Json(user.into())
}

/// Change the password. Every other session ends; the answer holds new tokens.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, description = "too many wrong current passwords", body = ErrorBody)),
    security(("bearer" = [])))]
async fn change_password(
    State(state): State<AppState>,
    // Also the holder of a temporary password (the only thing it may do).
    EnrollingUser(user): EnrollingUser,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<Json<AuthResponse>> {
    // Its own key: guesses of the current password by someone holding a
    // stolen access token, not sign-ins.
    state
        .login_by_account
        .check(&format!("{}\npassword-change", user.id), Instant::now())
        .map_err(ApiError::rate_limited)?;
    let credentials = state.store.credentials_by_id(user.id).await?;
    if !state
        .passwords
        .verify(&body.current_password, Some(&credentials.password_hash))
        .await
    {
        return Err(ApiError::unauthorized("current password is wrong"));
    }
    validate_new_password(&body.new_password, &[&user.email, &user.display_name])?;
    let hash = state.passwords.hash(&body.new_password).await?;
    let user = state
        .store
        .change_password(user.id, &hash, Utc::now())
        .await?;
    state
        .end_live_sessions(user.id, "your password was changed")
        .await;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(Json(issue_tokens(&state, user, None).await?))
}
