//! A room as a class: its roster (`/rooms/{id}/members`, CSV import) and its
//! invitation links (`/rooms/{id}/invitations`, `/invitations/{token}/accept`).
//!
//! The owner and admins change the roster; every host (co-teachers too)
//! reads it. A link's token is shown once, when it is made: the store keeps
//! its SHA-256 only. Roster changes reach live rooms at once
//! (`RoomHub::reconcile_room`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{
    Invitation, InvitationRefusal, MAX_ROOM_INVITATIONS, MAX_ROOM_MEMBERS, MemberRole,
    NewInvitation, PendingMember, Room, RoomMember, StoreError,
};

use super::caller::AuthUser;
use super::dto::normalize_email;
use super::extract::{Body, Json, Path};
use super::rooms::{load_hosted_room, load_visible_room, require_owner_or_admin};
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::state::AppState;

/// Largest roster CSV accepted, in bytes.
pub const MAX_ROSTER_CSV_BYTES: usize = 64 * 1024;
/// Most data rows of one roster CSV.
pub const MAX_ROSTER_CSV_ROWS: usize = 500;
/// Longest life of an invitation link, in hours (30 days); the default is 7 days.
pub const MAX_INVITATION_HOURS: u32 = 720;
const DEFAULT_INVITATION_HOURS: u32 = 168;
/// Most uses one link may be given.
pub const MAX_INVITATION_USES: u32 = 10_000;
/// Longest token in a link (ours are 43 characters).
const MAX_TOKEN_CHARS: usize = 128;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(import_roster))
        .routes(routes!(remove_pending_member))
        .routes(routes!(list_invitations, create_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(accept_invitation))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberDto {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: MemberRole,
    pub added_at: DateTime<Utc>,
}

impl From<RoomMember> for MemberDto {
    fn from(m: RoomMember) -> Self {
        MemberDto {
            user_id: m.user_id,
            email: m.email,
            display_name: m.display_name,
            role: m.role,
            added_at: m.added_at,
        }
    }
}

/// An address on the roster that has no account yet: it becomes a member
/// when an account with that address is created.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingMemberDto {
    pub email: String,
    pub role: MemberRole,
    pub added_at: DateTime<Utc>,
}

impl From<PendingMember> for PendingMemberDto {
    fn from(p: PendingMember) -> Self {
        PendingMemberDto {
            email: p.email,
            role: p.role,
            added_at: p.added_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Roster {
    /// By name; at most 2000.
    pub members: Vec<MemberDto>,
    /// By address; at most 2000 (members and pending together).
    pub pending: Vec<PendingMemberDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMemberRequest {
    #[schema(max_length = 254)]
    pub email: String,
    /// `student` (default) or `co_teacher`.
    #[serde(default)]
    #[schema(value_type = Option<MemberRole>)]
    pub role: Option<String>,
}

/// What adding an address did.
#[derive(Clone, Copy, Serialize, ToSchema, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum AddOutcome {
    /// The account is a member now (or had its role changed).
    Added,
    /// No account has this address yet: it joins when one is created.
    InvitedNotRegistered,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddMemberResponse {
    pub result: AddOutcome,
    /// The member, when `result` is `added`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberDto>,
}

fn parse_role(raw: Option<&str>) -> Result<MemberRole, String> {
    match raw.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("student") => Ok(MemberRole::Student),
        Some("co_teacher" | "co-teacher" | "coteacher" | "teacher") => Ok(MemberRole::CoTeacher),
        Some(other) => Err(format!(
            "role {other:?}: must be \"student\" or \"co_teacher\""
        )),
    }
}

/// The room's roster (its hosts).
#[utoipa::path(get, path = "/rooms/{id}/members", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = Roster), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Roster>> {
    let room = load_hosted_room(
        &state,
        &caller,
        &id,
        "only the room's hosts may see its members",
    )
    .await?;
    let members = state.store.list_members(&room.id, MAX_ROOM_MEMBERS).await?;
    let pending = state
        .store
        .list_pending_members(&room.id, MAX_ROOM_MEMBERS)
        .await?;
    Ok(Json(Roster {
        members: members.into_iter().map(MemberDto::from).collect(),
        pending: pending.into_iter().map(PendingMemberDto::from).collect(),
    }))
}

/// The room, if the caller may change its roster (owner or admin).
async fn roster_room(state: &AppState, caller: &AuthUser, id: &str) -> ApiResult<Room> {
    let (room, _) = load_visible_room(state, caller, id).await?;
    require_owner_or_admin(caller, &room)?;
    Ok(room)
}

/// Puts one address on the roster: an account becomes a member, an
/// address without one waits for it. Refuses past the roster's limit.
async fn put_on_roster(
    state: &AppState,
    room: &Room,
    email: &str,
    role: MemberRole,
    now: DateTime<Utc>,
) -> ApiResult<(AddOutcome, Option<MemberDto>)> {
    let account = match state.store.credentials_by_email(email).await {
        Ok(credentials) => Some(credentials.user),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let already = match &account {
        Some(user) => state.store.member_role(&room.id, user.id).await?.is_some(),
        None => false,
    };
    if !already && state.store.count_roster(&room.id).await? >= MAX_ROOM_MEMBERS {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("a class has at most {MAX_ROOM_MEMBERS} members"),
        ));
    }
    match account {
        Some(user) if user.id == room.owner_id => Err(ApiError::validation(
            "email: this is the room's owner, who is always in the class",
        )),
        Some(user) => {
            let member = state.store.put_member(&room.id, user.id, role, now).await?;
            tracing::info!(room_id = %room.id, user_id = %user.id, role = role.as_str(), "member added");
            // A new co-teacher in the live room is a host from now on.
            state.hub.reconcile_room(&room.id, Some(user.id)).await;
            Ok((AddOutcome::Added, Some(member.into())))
        }
        None => {
            state
                .store
                .put_pending_member(&room.id, email, role, now)
                .await?;
            tracing::info!(room_id = %room.id, role = role.as_str(), "address added to the roster");
            Ok((AddOutcome::InvitedNotRegistered, None))
        }
    }
}

/// Add a student or co-teacher by e-mail (owner or admin). Adding a member
/// again changes their role.
#[utoipa::path(post, path = "/rooms/{id}/members", tag = "rooms", params(("id" = String, Path)),
    request_body = AddMemberRequest,
    responses((status = 200, body = AddMemberResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "the roster is full", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn add_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<AddMemberRequest>,
) -> ApiResult<Json<AddMemberResponse>> {
    let room = roster_room(&state, &caller, &id).await?;
    let email = normalize_email(&body.email)?;
    let role = parse_role(body.role.as_deref()).map_err(ApiError::validation)?;
    let (result, member) = put_on_roster(&state, &room, &email, role, Utc::now()).await?;
    Ok(Json(AddMemberResponse { result, member }))
}

/// Take a member off the roster (owner or admin). Someone in the live room
/// who may no longer see it gets `removed` and leaves at once.
#[utoipa::path(delete, path = "/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = String, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn remove_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, user_id)): Path<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    let room = roster_room(&state, &caller, &id).await?;
    state
        .store
        .remove_member(&room.id, user_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("no such member"),
            other => other.into(),
        })?;
    tracing::info!(room_id = %room.id, %user_id, by = %caller.0.id, "member removed");
    state.hub.reconcile_room(&room.id, Some(user_id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Take an address without an account off the roster (owner or admin).
#[utoipa::path(delete, path = "/rooms/{id}/pending-members/{email}", tag = "rooms",
    params(("id" = String, Path), ("email" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn remove_pending_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, email)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room = roster_room(&state, &caller, &id).await?;
    let gone = || ApiError::not_found("no such address on the roster");
    let email = normalize_email(&email).map_err(|_| gone())?;
    state
        .store
        .remove_pending_member(&room.id, &email)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => gone(),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// One line of an imported roster and what became of it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRow {
    /// 1-based line number in the file.
    pub line: u32,
    pub email: String,
    /// `added`, `invited_not_registered` or `error`.
    pub result: String,
    /// Why the line was refused (`result` = `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub added: u32,
    pub invited_not_registered: u32,
    pub errors: u32,
    pub rows: Vec<ImportRow>,
}

/// The data lines of a roster CSV: `(line number, email, role)`, blank
/// lines and a header line (`email,...`) left out. Fields may be quoted.
fn roster_lines(text: &str) -> Vec<(u32, String, Option<String>)> {
    let unquote = |field: &str| {
        let field = field.trim();
        field
            .strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(field)
            .trim()
            .to_string()
    };
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, [',', ';']).map(unquote);
        let email = fields.next().unwrap_or_default();
        let role = fields.next().filter(|r| !r.is_empty());
        if rows.is_empty() && email.eq_ignore_ascii_case("email") {
            continue;
        }
        rows.push((u32::try_from(index + 1).unwrap_or(u32::MAX), email, role));
    }
    rows
}

/// Import a roster (owner or admin): CSV, one `email[,role]` per line
/// (role `student` by default, or `co_teacher`), an optional header line.
/// At most 64 KiB and 500 rows; each row's result is reported (a file of
/// which no row could be added is a 422).
#[utoipa::path(post, path = "/rooms/{id}/members/import", tag = "rooms", params(("id" = String, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, description = "not sent as text/csv (or text/plain)", body = ErrorBody),
              (status = 422, description = "not UTF-8 text, too many rows, or no row could be added", body = ErrorBody)),
    security(("bearer" = [])))]
async fn import_roster(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<ImportReport>> {
    let room = roster_room(&state, &caller, &id).await?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(media_type.as_deref(), Some("text/csv" | "text/plain")) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the roster as text/csv",
        ));
    }
    if body.len() > MAX_ROSTER_CSV_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "a roster file may be at most {} KiB",
                MAX_ROSTER_CSV_BYTES / 1024
            ),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::validation("the roster must be UTF-8 text (CSV)"))?;
    let lines = roster_lines(text);
    if lines.len() > MAX_ROSTER_CSV_ROWS {
        return Err(ApiError::validation(format!(
            "a roster file may have at most {MAX_ROSTER_CSV_ROWS} rows (this one has {})",
            lines.len()
        )));
    }
    let now = Utc::now();
    let mut report = ImportReport {
        added: 0,
        invited_not_registered: 0,
        errors: 0,
        rows: Vec::with_capacity(lines.len()),
    };
    for (line, raw_email, raw_role) in lines {
        let outcome = async {
            let email = normalize_email(&raw_email)?;
            let role = parse_role(raw_role.as_deref()).map_err(ApiError::validation)?;
            put_on_roster(&state, &room, &email, role, now)
                .await
                .map(|(result, _)| (email, result))
        };
        let row = match outcome.await {
            Ok((email, AddOutcome::Added)) => {
                report.added += 1;
                ImportRow {
                    line,
                    email,
                    result: "added".into(),
                    error: None,
                }
            }
            Ok((email, AddOutcome::InvitedNotRegistered)) => {
                report.invited_not_registered += 1;
                ImportRow {
                    line,
                    email,
                    result: "invited_not_registered".into(),
                    error: None,
                }
            }
            Err(e) if e.code == ErrorCode::Internal => return Err(e),
            Err(e) => {
                report.errors += 1;
                ImportRow {
                    line,
                    email: raw_email.chars().take(254).collect(),
                    result: "error".into(),
                    error: Some(e.message),
                }
            }
        };
        report.rows.push(row);
    }
    // A file of which no line is an address (JSON, a number, a table
    // without e-mails) is not a roster: refused as a whole, like any
    // body of the wrong shape (it changed nothing).
    if report.errors > 0 && report.added == 0 && report.invited_not_registered == 0 {
        let first = report
            .rows
            .iter()
            .find_map(|r| Some(format!("line {}: {}", r.line, r.error.as_deref()?)))
            .unwrap_or_default();
        return Err(ApiError::validation(format!(
            "no line of this file is an address that could be added ({first})"
        )));
    }
    tracing::info!(room_id = %room.id, added = report.added, invited = report.invited_not_registered,
        errors = report.errors, "roster imported");
    Ok(Json(report))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationDto {
    pub id: Uuid,
    pub room_id: String,
    /// The role the link gives.
    pub role: MemberRole,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// How many times the link may be used (absent: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    pub uses: u32,
}

impl From<Invitation> for InvitationDto {
    fn from(i: Invitation) -> Self {
        InvitationDto {
            id: i.id,
            room_id: i.room_id,
            role: i.role,
            created_at: i.created_at,
            expires_at: i.expires_at,
            max_uses: i.max_uses,
            uses: i.uses,
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInvitationRequest {
    /// `student` (default) or `co_teacher`.
    #[serde(default)]
    #[schema(value_type = Option<MemberRole>)]
    pub role: Option<String>,
    /// 1–720 hours (default 168: a week).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 720)]
    pub expires_in_hours: Option<u32>,
    /// 1–10000 uses (default: no limit).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_uses: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitation {
    pub invitation: InvitationDto,
    /// The link's secret: shown this once (only its hash is kept).
    pub token: String,
    /// The web app's page for the link, relative to the server (`/invite/{token}`).
    pub path: String,
}

/// The room's invitation links that still work (its owner and admins).
#[utoipa::path(get, path = "/rooms/{id}/invitations", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = Vec<InvitationDto>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_invitations(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<InvitationDto>>> {
    let room = roster_room(&state, &caller, &id).await?;
    let links = state.store.list_invitations(&room.id, Utc::now()).await?;
    Ok(Json(links.into_iter().map(InvitationDto::from).collect()))
}

/// Make an invitation link (owner or admin): whoever signs in and opens it
/// becomes a member with its role, until it expires, is revoked or is used
/// up. At most 50 working links per room.
#[utoipa::path(post, path = "/rooms/{id}/invitations", tag = "rooms", params(("id" = String, Path)),
    request_body = CreateInvitationRequest,
    responses((status = 201, body = CreatedInvitation), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "too many working links", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<CreateInvitationRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInvitation>)> {
    let room = roster_room(&state, &caller, &id).await?;
    let role = parse_role(body.role.as_deref()).map_err(ApiError::validation)?;
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_INVITATION_HOURS);
    if !(1..=MAX_INVITATION_HOURS).contains(&hours) {
        return Err(ApiError::validation(format!(
            "expiresInHours: must be between 1 and {MAX_INVITATION_HOURS}"
        )));
    }
    if body
        .max_uses
        .is_some_and(|n| !(1..=MAX_INVITATION_USES).contains(&n))
    {
        return Err(ApiError::validation(format!(
            "maxUses: must be between 1 and {MAX_INVITATION_USES}"
        )));
    }
    let now = Utc::now();
    if state.store.count_live_invitations(&room.id, now).await? >= MAX_ROOM_INVITATIONS {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("a room has at most {MAX_ROOM_INVITATIONS} working links: revoke one first"),
        ));
    }
    let token = new_refresh_token();
    let invitation = state
        .store
        .create_invitation(
            &NewInvitation {
                room_id: room.id.clone(),
                token_hash: hash_refresh_token(&token),
                role,
                created_by: caller.0.id,
                expires_at: now + Duration::hours(i64::from(hours)),
                max_uses: body.max_uses,
            },
            now,
        )
        .await?;
    tracing::info!(room_id = %room.id, invitation_id = %invitation.id, "invitation link made");
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvitation {
            invitation: invitation.into(),
            path: format!("/invite/{token}"),
            token,
        }),
    ))
}

/// Revoke an invitation link (owner or admin): it stops working at once.
#[utoipa::path(delete, path = "/rooms/{id}/invitations/{invitation_id}", tag = "rooms",
    params(("id" = String, Path), ("invitation_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, invitation_id)): Path<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    let room = roster_room(&state, &caller, &id).await?;
    state
        .store
        .revoke_invitation(&room.id, invitation_id, Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("no such invitation link"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedInvitation {
    pub room_id: String,
    pub title: String,
    /// The caller's role on the roster now (absent for the owner and admins,
    /// who need no membership).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<MemberRole>,
}

fn refusal_error(refusal: InvitationRefusal) -> ApiError {
    ApiError::not_found(match refusal {
        InvitationRefusal::Unknown => {
            "this invitation link is not valid: check that it was copied whole"
        }
        InvitationRefusal::Revoked => {
            "this invitation link was withdrawn: ask your teacher for a new one"
        }
        InvitationRefusal::Expired => {
            "this invitation link has expired: ask your teacher for a new one"
        }
        InvitationRefusal::UsedUp => {
            "this invitation link has been used as many times as it allows: ask your teacher for a new one"
        }
    })
}

/// Use an invitation link: the caller becomes a member of its room with the
/// link's role. Using it again (or as someone already in the class) changes
/// nothing and counts no use. 404 with the reason for a link that is not
/// valid, revoked, expired or used up.
#[utoipa::path(post, path = "/invitations/{token}/accept", tag = "rooms", params(("token" = String, Path)),
    responses((status = 200, body = AcceptedInvitation), (status = 401, body = ErrorBody),
              (status = 404, description = "not valid, revoked, expired or used up", body = ErrorBody)),
    security(("bearer" = [])))]
async fn accept_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(token): Path<String>,
) -> ApiResult<Json<AcceptedInvitation>> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(refusal_error(InvitationRefusal::Unknown));
    }
    let hash = hash_refresh_token(&token);
    let now = Utc::now();
    let invitation = match state.store.invitation_by_hash(&hash).await {
        Ok(i) => i,
        Err(StoreError::NotFound) => return Err(refusal_error(InvitationRefusal::Unknown)),
        Err(e) => return Err(e.into()),
    };
    let room = state.store.room_by_id(&invitation.room_id).await?;
    let member = state.store.member_role(&room.id, caller.0.id).await?;
    // Already in the class: nothing to do, no use counted (a link opened
    // twice, or by the teacher checking it) — unless the link was revoked
    // or has expired (used up does not matter to someone already in).
    if member.is_some() || crate::rooms::is_owner_or_admin(&caller.0, &room) {
        if let Some(refusal) = invitation
            .refusal(now)
            .filter(|r| *r != InvitationRefusal::UsedUp)
        {
            return Err(refusal_error(refusal));
        }
        return Ok(Json(AcceptedInvitation {
            room_id: room.id,
            title: room.title,
            role: member,
        }));
    }
    let invitation = state
        .store
        .consume_invitation(&hash, now)
        .await?
        .map_err(refusal_error)?;
    let added = state
        .store
        .put_member(&room.id, caller.0.id, invitation.role, now)
        .await?;
    tracing::info!(room_id = %room.id, user_id = %caller.0.id, invitation_id = %invitation.id,
        "member joined by invitation link");
    Ok(Json(AcceptedInvitation {
        room_id: room.id,
        title: room.title,
        role: Some(added.role),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_lines_skip_header_blank_lines_and_quotes() {
        let rows = roster_lines("email,role\n\n\"a@example.org\", co_teacher\nb@example.org\r\n");
        assert_eq!(
            rows,
            vec![
                (
                    3,
                    "a@example.org".to_string(),
                    Some("co_teacher".to_string())
                ),
                (4, "b@example.org".to_string(), None),
            ]
        );
    }

    #[test]
    fn roles_in_words() {
        assert_eq!(parse_role(None), Ok(MemberRole::Student));
        assert_eq!(parse_role(Some("Co-Teacher")), Ok(MemberRole::CoTeacher));
        assert!(parse_role(Some("admin")).is_err());
    }
}
