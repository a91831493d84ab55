//! `/recordings/*`: listing, details, downloads and deletion of recordings.
//! Recording itself (start, stop, the files' writing) is not here.
//!
//! Who may see a recording is the store's rule (see `vtp_store`'s
//! `recordings` module): admins, the room's owner, the recorded session's
//! hosts and, when the room's `recordingAccess` is `participants`, everyone
//! who attended that session. Anyone else gets 404, so that the existence
//! of a recording is not revealed; only the owner or an admin may delete.
//!
//! Files are served from `<data-dir>/recordings/<id>/<name>`, or from the
//! bucket once the recording is uploaded (proxied with ranges, or a
//! redirect to a presigned URL when configured), where `name` must be a
//! plain file name that the manifest lists (or `manifest.json`): a name
//! that looks like a path is refused before anything is read.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_recording::{Kind, Manifest};
use vtp_store::{
    Recording, RecordingFilter, RecordingState, RecordingViewer, StorageLocation, StoreError,
};

use super::caller::AuthUser;
use super::extract::{Json, Path, Query};
use super::files::{serve_file, serve_object};
use super::links::FileAccess;
use super::paging::{LIMITS, PageDto, PageQuery};
use super::request_context::RequestContext;
use crate::audit::{AuditEntry, AuditKind};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::recording::storage::StorageError;
use crate::state::AppState;

/// The recorder's manifest, next to the track files.
pub const MANIFEST_FILE: &str = "manifest.json";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(get_recording, delete_recording))
        .routes(routes!(download_file))
}

/// A recording, as listed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingDto {
    pub id: Uuid,
    pub room_id: String,
    pub session_id: Uuid,
    /// The host who started it; absent for automatic recordings.
    pub started_by: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    /// Absent while recording.
    pub stopped_at: Option<DateTime<Utc>>,
    /// `recording`, `finalizing`, `ready` or `failed`. Files of a recording
    /// still running can be downloaded as they are (they play).
    pub state: RecordingState,
    /// All files together, as last reported by the recorder.
    pub bytes: u64,
    pub duration_ms: u64,
    /// Why it failed (admins only; others see just the state).
    pub error: Option<String>,
}

impl RecordingDto {
    fn new(r: &Recording, caller: &AuthUser) -> Self {
        RecordingDto {
            id: r.id,
            room_id: r.room_id.clone(),
            session_id: r.session_id,
            started_by: r.started_by,
            started_at: r.started_at,
            stopped_at: r.stopped_at,
            state: r.state,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
            error: r.error.clone().filter(|_| caller.is_admin()),
        }
    }
}

/// One downloadable file of a recording.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFileDto {
    pub name: String,
    /// `audio` or `video` for tracks; `null` for the manifest.
    #[schema(schema_with = super::schema::media_kind_or_null)]
    pub kind: Option<String>,
    #[schema(example = "video/webm")]
    pub content_type: String,
    /// Size on disk (or in the bucket) now; the manifest's figure when the
    /// file is missing.
    pub bytes: u64,
    /// Whether the file exists (on disk, or in the bucket once uploaded).
    pub available: bool,
    /// Where to download it (supports `Range`).
    pub url: String,
}

/// A recording with its manifest and files.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingDetails {
    #[serde(flatten)]
    pub recording: RecordingDto,
    /// The recorder's manifest (tracks, owners, offsets); absent until
    /// first written.
    #[schema(value_type = Option<Object>)]
    pub manifest: Option<serde_json::Value>,
    pub files: Vec<RecordingFileDto>,
}

/// Recordings, newest first.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordingListParams {
    /// Only this room's recordings.
    pub room_id: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

fn viewer(caller: &AuthUser) -> RecordingViewer {
    RecordingViewer {
        user_id: caller.0.id,
        role: caller.0.role,
    }
}

/// The recording if the caller may see it; 404 otherwise, whether or not
/// it exists.
pub(super) async fn load_visible(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
) -> ApiResult<Recording> {
    let hidden = || ApiError::not_found("no such recording");
    let recording = match state.store.get_recording(id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Err(hidden()),
        Err(e) => return Err(e.into()),
    };
    if !state
        .store
        .recording_visible_to(id, &viewer(caller))
        .await?
    {
        return Err(hidden());
    }
    Ok(recording)
}

/// Recordings the caller may see, newest first.
#[utoipa::path(get, path = "/recordings", tag = "recordings", params(RecordingListParams),
    responses((status = 200, body = PageDto<RecordingDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_recordings(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<RecordingListParams>,
) -> ApiResult<Json<PageDto<RecordingDto>>> {
    let paging = PageQuery {
        cursor: params.cursor.as_deref(),
        limit: params.limit,
        ..Default::default()
    }
    .paging(LIMITS)?;
    let filter = RecordingFilter {
        room_id: params.room_id,
        visible_to: Some(viewer(&caller)),
        paging,
    };
    let page = state.store.list_recordings(&filter).await?;
    Ok(Json(PageDto::new(page, &filter.paging, |r| {
        RecordingDto::new(&r, &caller)
    })))
}

/// A recording with its manifest and the list of its files.
#[utoipa::path(get, path = "/recordings/{id}", tag = "recordings", params(("id" = Uuid, Path)),
    responses((status = 200, body = RecordingDetails), (status = 401, body = ErrorBody),
              (status = 404, description = "no such recording, or not visible to the caller", body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_recording(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RecordingDetails>> {
    let recording = load_visible(&state, &caller, id).await?;
    let dir = state.recordings_dir.join(id.to_string());
    // Sizes of uploaded files, by name (one listing of the bucket).
    let uploaded = match state.store.recording_storage(id).await?.location {
        StorageLocation::Local => None,
        StorageLocation::Remote { prefix } => Some(
            state
                .recording_files
                .remote_sizes(&prefix)
                .await
                .inspect_err(|e| {
                    tracing::warn!(recording_id = %id, error = %e, "bucket listing failed");
                })
                .unwrap_or_default(),
        ),
    };
    let mut files = Vec::new();
    for entry in listed_files(&recording) {
        let on_disk = match &uploaded {
            Some(sizes) => sizes.get(&entry.name).copied(),
            None => {
                let meta = tokio::fs::metadata(dir.join(&entry.name)).await.ok();
                meta.filter(|m| m.is_file()).map(|m| m.len())
            }
        };
        files.push(RecordingFileDto {
            url: format!(
                "/api/v1/recordings/{id}/files/{}",
                utf8_percent_encode(&entry.name, PATH_SEGMENT)
            ),
            kind: entry.kind.map(|k| kind_str(k).to_string()),
            content_type: content_type(&entry.name, entry.kind).to_string(),
            bytes: on_disk.unwrap_or(entry.bytes),
            available: on_disk.is_some(),
            name: entry.name,
        });
    }
    Ok(Json(RecordingDetails {
        recording: RecordingDto::new(&recording, &caller),
        manifest: recording.manifest,
        files,
    }))
}

/// Download one file of a recording (a track, or `manifest.json`). Supports
/// single byte ranges: `bytes=a-b`, `bytes=a-`, `bytes=-n` (206); several
/// ranges get the whole file (200); a range past the end gets 416.
#[utoipa::path(get, path = "/recordings/{id}/files/{name}", tag = "recordings",
    params(("id" = Uuid, Path), ("name" = String, Path, description = "a file name from the manifest, or manifest.json \
             (a plain name: no separators, no `..`, not hidden, no control characters, at most 255 bytes)",
             pattern = r"^(?!\.)(?!.*\.\.)[^/\\\u0000-\u001f\u007f-\u009f]+$"),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. bytes=0-1023"),
           super::links::LinkQuery),
    responses((status = 200, description = "the whole file (video/webm, audio/webm, video/x-matroska or application/json)"),
              (status = 206, description = "the requested range, with Content-Range"),
              (status = 307, description = "uploaded file: a presigned URL of the bucket (when downloads are configured to redirect)"),
              (status = 304, description = "unchanged (If-None-Match)"),
              (status = 400, description = "the name is a path", body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 403, description = "a signed link that is altered, expired, or no longer good for its user", body = ErrorBody),
              (status = 404, description = "no such recording or file, or not visible to the caller", body = ErrorBody),
              (status = 416, description = "range not satisfiable (Content-Range: bytes */len)", body = ErrorBody)),
    security(("bearer" = []), ()))]
async fn download_file(
    State(state): State<AppState>,
    access: FileAccess,
    context: RequestContext,
    Path((id, name)): Path<(Uuid, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Before anything else: a path is never looked up, whatever the manifest says.
    check_file_name(&name)?;
    let caller = access
        .user(&state, &super::links::file_resource(id, &name))
        .await?;
    let recording = load_visible(&state, &caller, id).await?;
    let entry = listed_files(&recording)
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| ApiError::not_found("no such file in this recording"))?;
    let content_type = content_type(&entry.name, entry.kind);
    if starts_a_download(&headers) {
        state
            .audit
            .record(
                AuditEntry::new(AuditKind::RecordingDownloaded)
                    .by(&caller.0)
                    .on("recording", id)
                    .from_address(context.address_text())
                    .with_detail(serde_json::json!({ "file": entry.name })),
            )
            .await;
    }
    match state.store.recording_storage(id).await?.location {
        StorageLocation::Local => {
            let path = state.recordings_dir.join(id.to_string()).join(&entry.name);
            serve_file(&path, content_type, &headers).await
        }
        StorageLocation::Remote { prefix } => {
            download_remote(&state, &prefix, &entry.name, content_type, &headers).await
        }
    }
}

/// Whether a request reads a file from its start: the audit log keeps
/// one `recording.downloaded` per download, not one per range a player
/// asks for while seeking.
fn starts_a_download(headers: &HeaderMap) -> bool {
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(range) => range.trim().starts_with("bytes=0-"),
    }
}

/// An uploaded file: a redirect to a presigned URL when so configured,
/// otherwise proxied from the bucket (ranges read from it).
async fn download_remote(
    state: &AppState,
    prefix: &str,
    name: &str,
    content_type: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let files = &state.recording_files;
    match files.presigned_url(prefix, name).await {
        Ok(Some(url)) => {
            let location = HeaderValue::from_str(&url)
                .map_err(|e| ApiError::internal("a presigned URL", e))?;
            let cache = HeaderValue::from_static("private, no-store");
            Ok((
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location), (header::CACHE_CONTROL, cache)],
            )
                .into_response())
        }
        Ok(None) => serve_object(files, prefix, name, content_type, headers).await,
        Err(e) => Err(ApiError::internal("signing a download URL", e)),
    }
}

/// Delete a recording, its files and its exports (the room's owner or an admin). A
/// recording still running or finalizing must be stopped first.
#[utoipa::path(delete, path = "/recordings/{id}", tag = "recordings", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "still recording or finalizing, or its files are being uploaded or copied", body = ErrorBody),
              (status = 503, description = "the recordings' bucket cannot be reached (the recording stays: delete again later)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_recording(
    State(state): State<AppState>,
    caller: AuthUser,
    context: RequestContext,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let recording = load_visible(&state, &caller, id).await?;
    let room = state.store.room_by_id(&recording.room_id).await?;
    if !(caller.is_admin() || room.owner_id == caller.0.id) {
        return Err(ApiError::forbidden(
            "only the room's owner or an admin may delete its recordings",
        ));
    }
    if !recording.state.is_final() {
        return Err(ApiError::conflict(
            "the recording is still running or finalizing: stop it first",
        ));
    }
    // Files first (on disk and in the bucket): if that fails the row stays,
    // and deleting again retries.
    state
        .recording_files
        .delete(&state.store, id)
        .await
        .map_err(|e| match e {
            StorageError::Busy => ApiError::conflict(e.to_string()),
            StorageError::Remote(_) => {
                tracing::warn!(recording_id = %id, error = %e, "recording's objects not deleted");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the recording's storage is not reachable; try again later",
                )
            }
            e => ApiError::internal("removing a recording's files", e),
        })?;
    if let Err(e) = state.exports.remove_files(id).await {
        return Err(ApiError::internal("removing a recording's exports", e));
    }
    match state.store.delete_recording(id).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(recording_id = %id, by = %caller.0.id, "recording deleted");
    state
        .audit
        .record(
            AuditEntry::new(AuditKind::RecordingDeleted)
                .by(&caller.0)
                .on("recording", id)
                .from_address(context.address_text())
                .with_detail(serde_json::json!({ "roomId": recording.room_id })),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A file the manifest lists (or the manifest itself).
pub(super) struct ListedFile {
    pub name: String,
    pub kind: Option<Kind>,
    /// What the manifest says (0 for the manifest itself).
    pub bytes: u64,
}

/// The files of a recording: its tracks, then `manifest.json`. Names that
/// are not plain file names are left out (and logged): they are never served.
pub(super) fn listed_files(recording: &Recording) -> Vec<ListedFile> {
    let manifest = recording.manifest.as_ref().and_then(|value| {
        serde_json::from_value::<Manifest>(value.clone())
            .inspect_err(|e| {
                tracing::warn!(recording_id = %recording.id, error = %e, "unreadable manifest");
            })
            .ok()
    });
    let mut files: Vec<ListedFile> = manifest
        .map(|m| m.tracks)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            let ok = check_file_name(&t.file).is_ok() && t.file != MANIFEST_FILE;
            if !ok {
                tracing::warn!(recording_id = %recording.id, file = %t.file, "manifest names a file that is not served");
            }
            ok
        })
        .map(|t| ListedFile {
            name: t.file,
            kind: Some(t.kind),
            bytes: t.bytes,
        })
        .collect();
    files.push(ListedFile {
        name: MANIFEST_FILE.to_string(),
        kind: None,
        bytes: 0,
    });
    files
}

/// A plain file name: not empty, not hidden, no separators, no `..`, no NUL
/// or other control characters. Anything else is a 400.
fn check_file_name(name: &str) -> ApiResult<()> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains("..")
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if plain {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "name: must be a plain file name of this recording",
        ))
    }
}

pub(super) fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Audio => "audio",
        Kind::Video => "video",
    }
}

pub(super) fn content_type(name: &str, kind: Option<Kind>) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match (ext.as_deref(), kind) {
        (Some("json"), _) => "application/json",
        (Some("webm"), Some(Kind::Audio)) => "audio/webm",
        (Some("webm"), _) => "video/webm",
        (Some("mkv"), Some(Kind::Audio)) => "audio/x-matroska",
        (Some("mkv"), _) => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

/// What a URL path segment escapes: everything but RFC 3986's unreserved
/// characters.
pub(crate) const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        for ok in ["a.webm", "peer-1-camera.mkv", "manifest.json", "x y.webm"] {
            assert!(check_file_name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", "a\0b", ".hidden", "a..b", "a\nb",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a.webm", Some(Kind::Video)), "video/webm");
        assert_eq!(content_type("a.webm", Some(Kind::Audio)), "audio/webm");
        assert_eq!(content_type("a.MKV", Some(Kind::Video)), "video/x-matroska");
        assert_eq!(content_type(MANIFEST_FILE, None), "application/json");
        assert_eq!(content_type("a", None), "application/octet-stream");
        assert_eq!(
            utf8_percent_encode("a b/é~_-.webm", PATH_SEGMENT).to_string(),
            "a%20b%2F%C3%A9~_-.webm"
        );
    }
}
