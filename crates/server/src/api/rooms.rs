//! `/rooms/*`: classrooms. Instructors and admins create them; their hosts
//! and members find them (everyone signed in, for a room with access
//! `signed_in`: to anyone else a room does not exist); the owner or an
//! admin changes or deletes them.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{
    MAX_TITLE_CHARS, MemberRole, NewRoom, Role, Room, RoomPatch, RoomQuery, RoomSettings,
    RoomStatus,
};

use super::caller::AuthUser;
use super::dto::*;
use super::extract::{Json, Path, Query};
use super::paging::{LIMITS, PageDto, PageQuery};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_room, list_rooms))
        .routes(routes!(get_room, patch_room, delete_room))
}

/// The room, or 404 (also for ids that cannot exist).
pub async fn load_room(state: &AppState, id: &str) -> ApiResult<Room> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::not_found("no such room"));
    }
    state.store.room_by_id(id).await.map_err(|e| match e {
        vtp_store::StoreError::NotFound => ApiError::not_found("no such room"),
        other => other.into(),
    })
}

/// The room and the caller's role on its roster, if the caller may see it
/// (`rooms::can_see`); 404 otherwise, as if it did not exist.
pub async fn load_visible_room(
    state: &AppState,
    caller: &AuthUser,
    id: &str,
) -> ApiResult<(Room, Option<MemberRole>)> {
    let room = load_room(state, id).await?;
    let member = state.store.member_role(&room.id, caller.0.id).await?;
    if !crate::rooms::can_see(&caller.0, &room, member) {
        return Err(ApiError::not_found("no such room"));
    }
    Ok((room, member))
}

/// The room, if the caller is one of its hosts (`rooms::is_host`: owner,
/// admins, co-teachers); 404 if they may not see it, 403 if they may see it
/// but not run it (`what`: the sentence of the refusal).
pub async fn load_hosted_room(
    state: &AppState,
    caller: &AuthUser,
    id: &str,
    what: &str,
) -> ApiResult<Room> {
    let (room, member) = load_visible_room(state, caller, id).await?;
    if !crate::rooms::is_host(&caller.0, &room, member) {
        return Err(ApiError::forbidden(what.to_string()));
    }
    Ok(room)
}

/// Changing or deleting a room (and its roster) is for its owner and
/// admins (`rooms::is_owner_or_admin`); co-teachers run it but do not own it.
pub fn require_owner_or_admin(caller: &AuthUser, room: &Room) -> ApiResult<()> {
    if crate::rooms::is_owner_or_admin(&caller.0, room) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the room's owner or an admin may do this",
        ))
    }
}

/// Create a room (instructors and admins).
#[utoipa::path(post, path = "/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses((status = 201, body = RoomDto), (status = 403, body = ErrorBody),
              (status = 409, description = "slug taken", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_room(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<CreateRoomRequest>,
) -> ApiResult<(StatusCode, Json<RoomDto>)> {
    if !matches!(caller.0.role, Role::Admin | Role::Instructor) {
        return Err(ApiError::forbidden(
            "only instructors and admins may create rooms",
        ));
    }
    let title = clean_text("title", &body.title, MAX_TITLE_CHARS)?;
    let id = match body.slug {
        Some(slug) => {
            validate_slug(&slug)?;
            slug
        }
        None => Uuid::new_v4().to_string(),
    };
    let settings = body
        .settings
        .unwrap_or_default()
        .apply_to(RoomSettings::default(), state.policy.max_room_participants)?;
    let room = state
        .store
        .create_room(
            &NewRoom {
                id,
                title,
                owner_id: caller.0.id,
                settings,
            },
            Utc::now(),
        )
        .await?;
    tracing::info!(room_id = %room.id, owner = %caller.0.id, "room created");
    Ok((StatusCode::CREATED, Json(room.into())))
}

/// List rooms, newest first (by creation).
#[utoipa::path(get, path = "/rooms", tag = "rooms", params(RoomListParams),
    responses((status = 200, body = PageDto<RoomDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_rooms(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<RoomListParams>,
) -> ApiResult<Json<PageDto<RoomDto>>> {
    let paging = PageQuery::paged(
        params.cursor.as_deref(),
        params.limit,
        params.page,
        params.per_page,
    )
    .paging(LIMITS)?;
    let query = RoomQuery {
        status: params.status,
        owner_id: params.owner_id,
        search: params
            .q
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty()),
        // Admins see every room; anyone else the rooms they may join.
        visible_to: (caller.0.role != Role::Admin).then_some(caller.0.id),
        member_of: params.mine.unwrap_or(false).then_some(caller.0.id),
        paging,
    };
    let page = state.store.list_rooms(&query).await?;
    Ok(Json(PageDto::new(page, &query.paging, RoomDto::from)))
}

/// One room.
#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = RoomDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn get_room(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RoomDto>> {
    let (room, member) = load_visible_room(&state, &caller, &id).await?;
    Ok(Json(RoomDto::from(room).with_member_role(member)))
}

/// Change a room's title, settings or status (owner or admin).
#[utoipa::path(patch, path = "/rooms/{id}", tag = "rooms", params(("id" = String, Path)), request_body = RoomPatchRequest,
    responses((status = 200, body = RoomDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn patch_room(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<RoomPatchRequest>,
) -> ApiResult<Json<RoomDto>> {
    let (room, _) = load_visible_room(&state, &caller, &id).await?;
    require_owner_or_admin(&caller, &room)?;
    let title = body
        .title
        .as_deref()
        .map(|t| clean_text("title", t, MAX_TITLE_CHARS))
        .transpose()?;
    if body.status == Some(RoomStatus::Live) {
        return Err(ApiError::validation(
            "status: a room becomes live when people join; set open or closed",
        ));
    }
    // Reopening a room that is live would be a no-op: keep it live.
    let status = match (body.status, room.status) {
        (Some(RoomStatus::Open), RoomStatus::Live) => None,
        (status, _) => status,
    };
    let settings = body
        .settings
        .as_ref()
        .map(|s| s.apply_to(room.settings.clone(), state.policy.max_room_participants))
        .transpose()?;
    // Closing a live room ends its session and tells everyone in it.
    if status == Some(RoomStatus::Closed) && room.status == RoomStatus::Live {
        state
            .hub
            .close_room(&id, "closed by a host")
            .await
            .map_err(|e| ApiError::internal("closing a live room", e))?;
    }
    let room = state
        .store
        .update_room(
            &id,
            &RoomPatch {
                title,
                status,
                settings,
            },
            Utc::now(),
        )
        .await?;
    if room.status == RoomStatus::Live {
        state.hub.refresh_room(&room).await;
        // Who may be in it may have changed (`settings.access`).
        state.hub.reconcile_room(&room.id, None).await;
    }
    Ok(Json(room.into()))
}

/// Delete a room (owner or admin). A live room must be closed first.
#[utoipa::path(delete, path = "/rooms/{id}", tag = "rooms", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "room is live", body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_room(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (room, _) = load_visible_room(&state, &caller, &id).await?;
    require_owner_or_admin(&caller, &room)?;
    if room.status == RoomStatus::Live {
        return Err(ApiError::conflict("the room is live: close it first"));
    }
    state.store.delete_room(&id).await?;
    tracing::info!(room_id = %id, by = %caller.0.id, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}
