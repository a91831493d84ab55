//! `/recordings/{id}/exports*`: export a recording to one MP4 (see
//! `recording::export`), follow it (`queued` → `running` with `progress` →
//! `ready` | `failed` with a reason) and download the result.
//!
//! Who may export: whoever may see the recording (the store's rule, as for
//! its files). They may already download every track, so a composed file
//! shows them nothing new; the cost is bounded by the server-wide queue
//! (`--max-concurrent-exports`, `--max-queued-exports`) and by one export
//! per (recording, layout) at a time. Anyone else gets 404, as for the
//! recording itself.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{ExportLayout, RecordingExport, RecordingState, StoreError};

use super::caller::AuthUser;
use super::extract::{Json, Path, Query};
use super::files::serve_file;
use super::links::FileAccess;
use super::paging::{Limits, PageDto, PageQuery};
use super::recordings::load_visible;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::recording::export::INSTALL_FFMPEG;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewExport {
    /// `grid` (every video tiled), `speaker` (the screen share, else the
    /// host's camera, large; the other videos in a strip) or `audio`
    /// (AAC only, in an MP4/M4A container).
    #[schema(value_type = ExportLayout)]
    pub layout: String,
}

/// An export of a recording.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportDto {
    pub id: Uuid,
    pub recording_id: Uuid,
    #[schema(value_type = ExportLayout)]
    pub layout: String,
    /// `queued`, `running`, `ready` or `failed`.
    #[schema(value_type = vtp_store::ExportState)]
    pub state: String,
    /// 0..1 while running; 1 when ready.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Size of the finished file.
    pub bytes: u64,
    /// Where to download the finished file (supports `Range`); absent until ready.
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&RecordingExport> for ExportDto {
    fn from(e: &RecordingExport) -> Self {
        ExportDto {
            id: e.id,
            recording_id: e.recording_id,
            layout: e.layout.to_string(),
            state: e.state.to_string(),
            progress: e.progress,
            error: e.error.clone(),
            bytes: e.bytes,
            url: (e.state == vtp_store::ExportState::Ready).then(|| {
                format!(
                    "/api/v1/recordings/{}/exports/{}/file",
                    e.recording_id, e.id
                )
            }),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Exports, newest first. A page holds all of them by default: there are
/// few per recording (a new ready one replaces the finished ones of its
/// layout).
pub(super) const EXPORT_LIMITS: Limits = Limits {
    default: 100,
    max: 100,
};

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportListParams {
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Export a recording to one MP4. Answers at once (202) with the export
/// queued; follow it with `GET …/exports/{exportId}`.
#[utoipa::path(post, path = "/recordings/{id}/exports", tag = "recordings",
    params(("id" = Uuid, Path)), request_body = NewExport,
    responses((status = 202, body = ExportDto), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 404, description = "no such recording, or not visible to the caller", body = ErrorBody),
              (status = 409, description = "the recording is not ready, or an export with this layout is already queued or running", body = ErrorBody),
              (status = 422, description = "unknown layout", body = ErrorBody),
              (status = 503, description = "ffmpeg is not installed, or the export queue is full", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_export(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<NewExport>,
) -> ApiResult<(StatusCode, Json<ExportDto>)> {
    let layout: ExportLayout = body
        .layout
        .parse()
        .map_err(|e: String| ApiError::validation(format!("layout: {e}")))?;
    let recording = load_visible(&state, &caller, id).await?;
    if !state.exports.ffmpeg_available() {
        return Err(ApiError::new(ErrorCode::Unavailable, INSTALL_FFMPEG));
    }
    match recording.state {
        RecordingState::Ready => {}
        RecordingState::Recording | RecordingState::Finalizing => {
            return Err(ApiError::conflict(format!(
                "the recording is still {}: it can be exported once it is ready",
                recording.state
            )));
        }
        RecordingState::Failed => {
            return Err(ApiError::conflict(
                "the recording failed: there is nothing to export",
            ));
        }
    }
    let waiting = state.store.count_active_exports().await?;
    if waiting >= state.exports.max_queued() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("{waiting} exports are already waiting or running; try again later"),
        ));
    }
    let export = state
        .store
        .create_export(id, layout, Some(caller.0.id), Utc::now())
        .await?;
    state.exports.enqueue(export.id);
    tracing::info!(recording_id = %id, export_id = %export.id, layout = %layout, by = %caller.0.id, "export queued");
    Ok((StatusCode::ACCEPTED, Json(ExportDto::from(&export))))
}

/// A recording's exports, newest first.
#[utoipa::path(get, path = "/recordings/{id}/exports", tag = "recordings",
    params(("id" = Uuid, Path), ExportListParams),
    responses((status = 200, body = PageDto<ExportDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_exports(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<ExportListParams>,
) -> ApiResult<Json<PageDto<ExportDto>>> {
    load_visible(&state, &caller, id).await?;
    let paging = PageQuery {
        cursor: params.cursor.as_deref(),
        limit: params.limit,
        ..Default::default()
    }
    .paging(EXPORT_LIMITS)?;
    let page = state.store.list_exports(id, &paging).await?;
    Ok(Json(PageDto::new(page, &paging, |e| ExportDto::from(&e))))
}

/// The export of this recording, if the caller may see the recording.
async fn load_export(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    export_id: Uuid,
) -> ApiResult<RecordingExport> {
    load_visible(state, caller, id).await?;
    match state.store.get_export(export_id).await {
        Ok(e) if e.recording_id == id => Ok(e),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::not_found("no such export")),
        Err(e) => Err(e.into()),
    }
}

/// One export: its state and progress.
#[utoipa::path(get, path = "/recordings/{id}/exports/{exportId}", tag = "recordings",
    params(("id" = Uuid, Path), ("exportId" = Uuid, Path)),
    responses((status = 200, body = ExportDto), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_export(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, export_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<ExportDto>> {
    let export = load_export(&state, &caller, id, export_id).await?;
    Ok(Json(ExportDto::from(&export)))
}

/// Download a finished export (`video/mp4`, or `audio/mp4` for the audio
/// layout), with single byte ranges like the recording's files.
#[utoipa::path(get, path = "/recordings/{id}/exports/{exportId}/file", tag = "recordings",
    params(("id" = Uuid, Path), ("exportId" = Uuid, Path),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. bytes=0-1023"),
           super::links::LinkQuery),
    responses((status = 200, description = "the whole file"),
              (status = 206, description = "the requested range, with Content-Range"),
              (status = 401, body = ErrorBody),
              (status = 403, description = "a signed link that is altered, expired, or no longer good for its user", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "the export is not ready", body = ErrorBody),
              (status = 416, body = ErrorBody)),
    security(("bearer" = []), ()))]
async fn download_export(
    State(state): State<AppState>,
    access: FileAccess,
    Path((id, export_id)): Path<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = access
        .user(&state, &super::links::export_resource(id, export_id))
        .await?;
    let export = load_export(&state, &caller, id, export_id).await?;
    if export.state != vtp_store::ExportState::Ready {
        return Err(ApiError::conflict(format!(
            "the export is {}: only a ready export can be downloaded",
            export.state
        )));
    }
    let content_type = match export.layout {
        ExportLayout::Audio => "audio/mp4",
        _ => "video/mp4",
    };
    serve_file(&state.exports.file_of(&export), content_type, &headers).await
}
