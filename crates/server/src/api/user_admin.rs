//! Admins making accounts and resetting passwords (`POST /users`,
//! `POST /users/{id}/password-reset`). A password an admin sets or has
//! generated is temporary: its holder signs in only to replace it
//! (`Scope::PasswordChange`, see `api::auth`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{MAX_DISPLAY_NAME_CHARS, NewUser, Role};

use super::caller::AuthUser;
use super::dto::{UserDto, clean_text, normalize_email};
use super::extract::{Body, Json, Path};
use super::request_context::RequestContext;
use super::schema;
use crate::audit::{AuditEntry, AuditKind};
use crate::auth::password::validate_new_password;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::webhooks::WebhookEvent;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(reset_password))
}

/// A new account, made by an admin.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(schema_with = schema::email)]
    pub email: String,
    #[schema(schema_with = schema::display_name)]
    pub display_name: String,
    pub role: Role,
    /// The temporary password to give the user; omitted, the server makes
    /// one (and returns it once). Either way it must be changed at the
    /// first sign-in.
    #[serde(default)]
    #[schema(schema_with = schema::new_password_or_null)]
    pub temporary_password: Option<String>,
}

/// A temporary password for an existing account.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// Omitted: the server makes one.
    #[serde(default)]
    #[schema(schema_with = schema::new_password_or_null)]
    pub temporary_password: Option<String>,
}

/// The account and its temporary password (shown once: give it to the
/// user by a safe way; it works only to choose a new password).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryPasswordDto {
    pub user: UserDto,
    #[schema(format = Password)]
    pub temporary_password: String,
}

/// 80 random bits in base32 (16 letters and digits): easy to read out,
/// impossible to guess.
fn generated_password() -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    BASE32_NOPAD.encode(&bytes)
}

fn temporary_password(given: Option<String>, inputs: &[&str]) -> ApiResult<String> {
    match given {
        Some(p) => {
            validate_new_password(&p, inputs).map_err(|e| {
                ApiError::validation(e.to_string().replacen("password", "temporaryPassword", 1))
            })?;
            Ok(p)
        }
        None => Ok(generated_password()),
    }
}

/// Create an account with a temporary password (admins).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = TemporaryPasswordDto), (status = 403, body = ErrorBody),
              (status = 409, description = "e-mail taken", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_user(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Json(body): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<TemporaryPasswordDto>)> {
    caller.require_admin()?;
    let email = normalize_email(&body.email)?;
    let display_name = clean_text("displayName", &body.display_name, MAX_DISPLAY_NAME_CHARS)?;
    let password = temporary_password(body.temporary_password, &[&email, &display_name])?;
    let password_hash = state.passwords.hash(&password).await?;
    let user = state
        .store
        .create_user_with(
            NewUser {
                email,
                display_name,
                password_hash,
                role: body.role,
            },
            true,
            Utc::now(),
        )
        .await?;
    tracing::info!(user_id = %user.id, by = %caller.0.id, role = %user.role, "user created by an admin");
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::UserCreated)
                .by(&caller.0)
                .on("user", user.id)
                .from_address(context.address_text())
                .with_detail(serde_json::json!({ "via": "admin", "role": user.role })),
        )
        .await;
    state.webhooks.emit(
        WebhookEvent::UserCreated,
        serde_json::json!({ "userId": user.id, "role": user.role, "via": "admin" }),
    );
    Ok((
        StatusCode::CREATED,
        Json(TemporaryPasswordDto {
            user: user.into(),
            temporary_password: password,
        }),
    ))
}

/// Give an account a temporary password (admins). Every session of the
/// account ends; the user must choose a new password at the next sign-in.
#[utoipa::path(post, path = "/users/{id}/password-reset", tag = "users", params(("id" = Uuid, Path)),
    request_body(content = Option<PasswordResetRequest>),
    responses((status = 200, body = TemporaryPasswordDto), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn reset_password(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
    Body(body): Body,
) -> ApiResult<Json<TemporaryPasswordDto>> {
    caller.require_admin()?;
    // The body is optional (as `/auth/logout`'s).
    let body: PasswordResetRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PasswordResetRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::validation(format!("invalid body: {e}")))?
    };
    let target = state.store.user_by_id(id).await?;
    let password = temporary_password(
        body.temporary_password,
        &[&target.email, &target.display_name],
    )?;
    let hash = state.passwords.hash(&password).await?;
    let user = state
        .store
        .set_temporary_password(id, &hash, Utc::now())
        .await?;
    // Live sockets of the account end as after "sign out everywhere".
    state
        .end_live_sessions(id, "an administrator reset your password")
        .await;
    tracing::info!(user_id = %id, by = %caller.0.id, "password reset by an admin");
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::UserPasswordReset)
                .by(&caller.0)
                .on("user", id)
                .from_address(context.address_text()),
        )
        .await;
    Ok(Json(TemporaryPasswordDto {
        user: user.into(),
        temporary_password: password,
    }))
}
