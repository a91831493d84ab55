//! `POST` / `DELETE /rooms/{id}/recording`: hosts start and stop the
//! recording of a live room over HTTP, as `start-recording` and
//! `stop-recording` do over Socket.IO.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::AuthUser;
use super::extract::{Json, Path};
use super::rooms::load_hosted_room;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::rooms::{SignalCode, SignalError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_recording, stop_recording))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStarted {
    pub recording_id: Uuid,
}

fn api_error(err: SignalError) -> ApiError {
    let code = match err.code {
        SignalCode::BadRequest => ErrorCode::BadRequest,
        SignalCode::Unauthorized => ErrorCode::Unauthorized,
        SignalCode::Forbidden => ErrorCode::Forbidden,
        SignalCode::NotFound => ErrorCode::NotFound,
        SignalCode::Conflict
        | SignalCode::RoomFull
        | SignalCode::RoomClosed
        | SignalCode::NotStarted => ErrorCode::Conflict,
        SignalCode::RateLimited => ErrorCode::RateLimited,
        SignalCode::LimitReached => ErrorCode::LimitReached,
        SignalCode::Internal => ErrorCode::Internal,
    };
    ApiError::new(code, err.message)
}

async fn host_of(state: &AppState, caller: &AuthUser, id: &str) -> ApiResult<String> {
    let room = load_hosted_room(state, caller, id, "only the room's hosts may record it").await?;
    Ok(room.id)
}

/// Starts recording a live room (everyone in it is told).
#[utoipa::path(post, path = "/rooms/{id}/recording", tag = "rooms", params(("id" = String, Path)),
    responses((status = 201, body = RecordingStarted), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody,
        description = "not live, already recorded, or the disk is nearly full")),
    security(("bearer" = [])))]
async fn start_recording(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RecordingStarted>)> {
    let room_id = host_of(&state, &caller, &id).await?;
    let ack = state
        .hub
        .set_recording_by(&room_id, caller.0.id, true)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(RecordingStarted {
            recording_id: ack.recording_id,
        }),
    ))
}

/// Stops the recording of a live room and finalizes its files.
#[utoipa::path(delete, path = "/rooms/{id}/recording", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = RecordingStarted), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn stop_recording(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RecordingStarted>> {
    let room_id = host_of(&state, &caller, &id).await?;
    let ack = state
        .hub
        .set_recording_by(&room_id, caller.0.id, false)
        .await
        .map_err(api_error)?;
    Ok(Json(RecordingStarted {
        recording_id: ack.recording_id,
    }))
}
