//! Signed links to a recording's files and exports (see `auth::links`):
//! `POST /recordings/{id}/links` issues them to whoever may see the
//! recording, and the two file routes take either a bearer token or a
//! link ([`FileAccess`]), so that `<video src>` plays without headers.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{ExportState, StoreError};

use super::caller::AuthUser;
use super::extract::{Json, Path};
use super::paging::PageQuery;
use super::recordings::{PATH_SEGMENT, content_type, kind_str, listed_files, load_visible};
use crate::auth::links::{LinkError, LinkParams};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_links))
}

/// What a link signs for a recording's file.
pub fn file_resource(recording: Uuid, name: &str) -> String {
    format!("recording/{recording}/file/{name}")
}

/// What a link signs for an export's file.
pub fn export_resource(recording: Uuid, export: Uuid) -> String {
    format!("recording/{recording}/export/{export}")
}

/// The query of a signed link (all three, or none).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Signed link: the user it was issued to.
    pub u: Option<Uuid>,
    /// Signed link: its expiry (Unix seconds).
    pub exp: Option<i64>,
    /// Signed link: its signature.
    pub sig: Option<String>,
}

/// Who asks for a file: a bearer token's user, or the holder of a link
/// (checked by [`FileAccess::user`] once the file is known).
pub enum FileAccess {
    Bearer(AuthUser),
    Link(LinkParams),
}

impl FromRequestParts<AppState> for FileAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if crate::auth::tokens::bearer_token(&parts.headers).is_some() {
            return Ok(FileAccess::Bearer(
                AuthUser::from_request_parts(parts, state).await?,
            ));
        }
        let query = axum::extract::Query::<LinkQuery>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .map_err(|_| ApiError::forbidden(INVALID_LINK))?;
        match (query.u, query.exp, query.sig) {
            (Some(user), Some(expires), Some(signature)) => Ok(FileAccess::Link(LinkParams {
                user,
                expires,
                signature,
            })),
            (None, None, None) => Err(ApiError::unauthorized(
                "missing bearer token (Authorization: Bearer …) or signed link",
            )),
            _ => Err(ApiError::forbidden(INVALID_LINK)),
        }
    }
}

const INVALID_LINK: &str = "this link is not valid: open the recording again for a new one";

impl FileAccess {
    /// The user this request acts for, for `resource`: the bearer's, or
    /// the link's if the link is good for it and its user still exists,
    /// is not disabled and has not signed out everywhere since.
    pub async fn user(self, state: &AppState, resource: &str) -> ApiResult<AuthUser> {
        let link = match self {
            FileAccess::Bearer(user) => return Ok(user),
            FileAccess::Link(link) => link,
        };
        let user = match state.store.user_by_id(link.user).await {
            Ok(u) if !u.disabled => u,
            Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::forbidden(INVALID_LINK)),
            Err(e) => return Err(e.into()),
        };
        match state.tokens.links.check(resource, &link, user.token_epoch) {
            Ok(()) => Ok(AuthUser(user)),
            Err(LinkError::Expired) => Err(ApiError::forbidden(
                "this link has expired: open the recording again for a new one",
            )),
            Err(LinkError::Invalid) => {
                // The user id only: the signature is a credential.
                tracing::info!(user_id = %link.user, "a file link with a bad signature");
                Err(ApiError::forbidden(INVALID_LINK))
            }
        }
    }
}

/// A signed link to one file of a recording.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileLinkDto {
    pub name: String,
    /// `audio` or `video` for tracks; `null` for the manifest.
    #[schema(schema_with = super::schema::media_kind_or_null)]
    pub kind: Option<String>,
    pub content_type: String,
    /// Plays and downloads without headers (supports `Range`) until `expiresAt`.
    pub url: String,
}

/// A signed link to a finished export.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportLinkDto {
    pub id: Uuid,
    #[schema(value_type = vtp_store::ExportLayout)]
    pub layout: String,
    pub url: String,
}

/// Signed links to a recording's files and its ready exports.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingLinks {
    /// When every link here stops working (ask again for new ones).
    pub expires_at: DateTime<Utc>,
    pub files: Vec<FileLinkDto>,
    /// Ready exports, newest first.
    pub exports: Vec<ExportLinkDto>,
}

/// Short-lived signed links to the recording's files and ready exports,
/// for players and downloads that cannot send an `Authorization` header
/// (`<video src>`). Same access as the files themselves; a link is bound
/// to its file and to the caller, and stops working when it expires or
/// when the caller signs out everywhere, is disabled or loses access.
#[utoipa::path(post, path = "/recordings/{id}/links", tag = "recordings", params(("id" = Uuid, Path)),
    responses((status = 200, body = RecordingLinks), (status = 401, body = ErrorBody),
              (status = 404, description = "no such recording, or not visible to the caller", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_links(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RecordingLinks>> {
    let recording = load_visible(&state, &caller, id).await?;
    let sign = |resource: &str| {
        state
            .tokens
            .links
            .sign(resource, caller.0.id, caller.0.token_epoch)
    };
    let mut expires_at = Utc::now();
    let mut files = Vec::new();
    for entry in listed_files(&recording) {
        let (query, at) = sign(&file_resource(id, &entry.name));
        expires_at = at;
        files.push(FileLinkDto {
            url: format!(
                "/api/v1/recordings/{id}/files/{}?{query}",
                percent_encoding::utf8_percent_encode(&entry.name, PATH_SEGMENT)
            ),
            kind: entry.kind.map(|k| kind_str(k).to_string()),
            content_type: content_type(&entry.name, entry.kind).to_string(),
            name: entry.name,
        });
    }
    let paging = PageQuery::default().paging(super::exports::EXPORT_LIMITS)?;
    let exports = state
        .store
        .list_exports(id, &paging)
        .await?
        .items
        .into_iter()
        .filter(|e| e.state == ExportState::Ready)
        .map(|e| {
            let (query, _) = sign(&export_resource(id, e.id));
            ExportLinkDto {
                url: format!("/api/v1/recordings/{id}/exports/{}/file?{query}", e.id),
                id: e.id,
                layout: e.layout.to_string(),
            }
        })
        .collect();
    tracing::info!(recording_id = %id, by = %caller.0.id, "file links issued");
    Ok(Json(RecordingLinks {
        expires_at,
        files,
        exports,
    }))
}
