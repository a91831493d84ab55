//! `/users/*`: account administration. Admins see and change everyone;
//! other users see themselves and may change only their display name.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{MAX_DISPLAY_NAME_CHARS, UserPatch, UserQuery};

use super::caller::AuthUser;
use super::dto::*;
use super::extract::{Json, Path, Query};
use super::paging::{LIMITS, PageDto, PageQuery};
use super::request_context::RequestContext;
use crate::audit::{AuditEntry, AuditKind};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, patch_user, delete_user))
}

fn require_self_or_admin(caller: &AuthUser, id: Uuid) -> ApiResult<()> {
    if caller.is_admin() || caller.0.id == id {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins may manage other users"))
    }
}

/// List users, oldest first (admins).
#[utoipa::path(get, path = "/users", tag = "users", params(UserListParams),
    responses((status = 200, body = PageDto<UserDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_users(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<UserListParams>,
) -> ApiResult<Json<PageDto<UserDto>>> {
    caller.require_admin()?;
    let paging = PageQuery::paged(
        params.cursor.as_deref(),
        params.limit,
        params.page,
        params.per_page,
    )
    .paging(LIMITS)?;
    let query = UserQuery {
        search: params
            .q
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty()),
        role: params.role,
        paging,
    };
    let page = state.store.list_users(&query).await?;
    Ok(Json(PageDto::new(page, &query.paging, UserDto::from)))
}

/// One user (admins, or the user themselves).
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UserDto>> {
    require_self_or_admin(&caller, id)?;
    Ok(Json(state.store.user_by_id(id).await?.into()))
}

/// Change a user: display name (self or admin), role and disabled (admins).
/// Disabling ends the user's sessions at once.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UserPatchRequest,
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "last admin", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_user(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
    Json(body): Json<UserPatchRequest>,
) -> ApiResult<Json<UserDto>> {
    require_self_or_admin(&caller, id)?;
    if (body.role.is_some() || body.disabled.is_some()) && !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only admins may change roles or disable accounts",
        ));
    }
    let display_name = body
        .display_name
        .as_deref()
        .map(|n| clean_text("displayName", n, MAX_DISPLAY_NAME_CHARS))
        .transpose()?;
    let target = state.store.user_by_id(id).await?;
    let now = Utc::now();
    let patch = UserPatch {
        display_name,
        role: body.role,
        disabled: body.disabled,
    };
    // The last-admin rule is checked in the same statement as the change.
    let user = state
        .store
        .update_user_keeping_an_admin(id, &patch, now)
        .await?;
    if body.disabled == Some(true) && !target.disabled {
        // End every session: re-enabling later must not revive old tokens.
        state.store.revoke_user_refresh_tokens(id, now).await?;
        state.store.bump_token_epoch(id, now).await?;
        state
            .end_live_sessions(id, "an administrator disabled your account")
            .await;
        tracing::info!(user_id = %id, by = %caller.0.id, "user disabled");
    }
    let audit = |kind: AuditKind| {
        AuditEntry::new(kind)
            .by(&caller.0)
            .on("user", id)
            .from_address(context.address_text())
    };
    if body.disabled.is_some_and(|d| d != target.disabled) {
        let kind = if user.disabled {
            AuditKind::UserDisabled
        } else {
            AuditKind::UserEnabled
        };
        state.audit.record(audit(kind)).await;
    }
    if body.role.is_some_and(|r| r != target.role) {
        state.accounts.changed(id);
        state.hub.refresh_user_role(&user).await;
        tracing::info!(user_id = %id, by = %caller.0.id, role = %user.role, "role changed");
        state
            .audit
            .record(
                audit(AuditKind::UserRoleChanged)
                    .with_detail(serde_json::json!({ "from": target.role, "to": user.role })),
            )
            .await;
    }
    Ok(Json(user.into()))
}

/// Delete a user (admins, or the user themselves). Refused while the user owns rooms.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "owns rooms, or last admin", body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_user(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    require_self_or_admin(&caller, id)?;
    state.store.delete_user_keeping_an_admin(id).await?;
    state
        .end_live_sessions(id, "your account was deleted")
        .await;
    tracing::info!(user_id = %id, by = %caller.0.id, "user deleted");
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::UserDeleted)
                .by(&caller.0)
                .on("user", id)
                .from_address(context.address_text()),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
