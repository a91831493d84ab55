//! `/rooms/{id}/participants|sessions|chat`: what is happening in a room now,
//! and what happened in it (attendance, chat history).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{ChatQuery, MemberRole, Participant, Room};

use super::caller::AuthUser;
use super::extract::{Json, Path, Query};
use super::paging::{LIMITS, Limits, PageDto, PageQuery};
use super::rooms::load_visible_room;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::rooms::{ChatView, PeerView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(participants))
        .routes(routes!(sessions))
        .routes(routes!(attendance))
        .routes(routes!(chat_history))
}

/// Hosts of a room (`rooms::is_host`: its owner, admins, co-teachers) see
/// its history.
fn require_host(caller: &AuthUser, room: &Room, member: Option<MemberRole>) -> ApiResult<()> {
    if crate::rooms::is_host(&caller.0, room, member) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the room's hosts may see this"))
    }
}

#[derive(Serialize, ToSchema)]
pub struct LiveParticipants {
    /// Everyone in the room now (peers within their reconnect grace included).
    pub peers: Vec<PeerView>,
}

/// Who is in the room right now.
#[utoipa::path(get, path = "/rooms/{id}/participants", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = LiveParticipants), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn participants(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LiveParticipants>> {
    let (room, _) = load_visible_room(&state, &caller, &id).await?;
    Ok(Json(LiveParticipants {
        peers: state.hub.participants(&room.id).await,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: Uuid,
    pub room_id: String,
    pub started_at: DateTime<Utc>,
    /// Absent while the session runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// People who took part, each once however often they came back (a
    /// presence whose account was deleted counts as one person).
    pub participant_count: u64,
}

/// Sessions, newest first.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionListParams {
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Deprecated: offset paging (1-based page number), for older clients;
    /// the answer then adds `page` and `perPage`.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<u32>,
    /// Deprecated: the older name of `limit`.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

/// The room's sessions, newest first (hosts).
#[utoipa::path(get, path = "/rooms/{id}/sessions", tag = "rooms", params(("id" = String, Path), SessionListParams),
    responses((status = 200, body = PageDto<SessionDto>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn sessions(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<SessionListParams>,
) -> ApiResult<Json<PageDto<SessionDto>>> {
    let (room, member) = load_visible_room(&state, &caller, &id).await?;
    require_host(&caller, &room, member)?;
    let paging = PageQuery::paged(
        params.cursor.as_deref(),
        params.limit,
        params.page,
        params.per_page,
    )
    .paging(LIMITS)?;
    let page = state.store.list_sessions(&room.id, &paging).await?;
    Ok(Json(PageDto::new(page, &paging, |s| SessionDto {
        id: s.session.id,
        room_id: s.session.room_id,
        started_at: s.session.started_at,
        ended_at: s.session.ended_at,
        participant_count: s.participant_count,
    })))
}

/// One person's attendance in a session, over all their presences.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// Absent when the account has since been deleted.
    pub user_id: Option<Uuid>,
    pub display_name: String,
    /// The room role at the end of the session.
    #[schema(value_type = vtp_store::RoomRole)]
    pub role: String,
    pub first_joined_at: DateTime<Utc>,
    /// Absent while still present.
    pub last_left_at: Option<DateTime<Utc>>,
    /// Minutes present, summed over presences (rounded to 0.1).
    pub total_minutes: f64,
    /// Number of separate presences.
    pub visits: u32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttendanceReport {
    pub session: SessionDto,
    pub attendees: Vec<Attendee>,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttendanceParams {
    /// `json` (default) or `csv`.
    #[param(schema_with = super::schema::attendance_format)]
    pub format: Option<String>,
}

/// Attendance report of a session (hosts): who, role, first join, last leave,
/// total minutes. `?format=csv` gives the same as CSV.
#[utoipa::path(get, path = "/rooms/{id}/sessions/{session_id}/attendance", tag = "rooms",
    params(("id" = String, Path), ("session_id" = Uuid, Path), AttendanceParams),
    responses((status = 200, body = AttendanceReport), (status = 200, content_type = "text/csv", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn attendance(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, session_id)): Path<(String, Uuid)>,
    Query(params): Query<AttendanceParams>,
) -> ApiResult<Response> {
    let (room, member) = load_visible_room(&state, &caller, &id).await?;
    require_host(&caller, &room, member)?;
    let session = match state.store.session_by_id(session_id).await {
        Ok(s) if s.room_id == room.id => s,
        Ok(_) | Err(vtp_store::StoreError::NotFound) => {
            return Err(ApiError::not_found("no such session in this room"));
        }
        Err(e) => return Err(e.into()),
    };
    let presences = state.store.session_participants(session.id).await?;
    let end = session.ended_at.unwrap_or_else(Utc::now);
    let attendees = summarise(&presences, end);
    let report = AttendanceReport {
        session: SessionDto {
            id: session.id,
            room_id: session.room_id,
            started_at: session.started_at,
            ended_at: session.ended_at,
            participant_count: attendees.len() as u64,
        },
        attendees,
    };
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"attendance-{session_id}.csv\""),
                ),
            ],
            to_csv(&report.attendees),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(format!(
            "format: {other:?} is not json or csv"
        ))),
    }
}

/// Groups presences by person (by user, or by presence once the account is gone).
fn summarise(presences: &[Participant], session_end: DateTime<Utc>) -> Vec<Attendee> {
    let mut attendees: Vec<(Option<Uuid>, Attendee)> = Vec::new();
    for p in presences {
        let until = p.left_at.unwrap_or(session_end);
        let minutes = (until - p.joined_at).num_milliseconds().max(0) as f64 / 60_000.0;
        let key = p.user_id;
        match attendees.iter_mut().find(|(k, _)| k.is_some() && *k == key) {
            Some((_, a)) => {
                a.total_minutes += minutes;
                a.visits += 1;
                a.display_name.clone_from(&p.display_name);
                a.role = p.room_role.as_str().to_string();
                a.last_left_at = match (a.last_left_at, p.left_at) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    _ => None,
                };
            }
            None => attendees.push((
                key,
                Attendee {
                    user_id: p.user_id,
                    display_name: p.display_name.clone(),
                    role: p.room_role.as_str().to_string(),
                    first_joined_at: p.joined_at,
                    last_left_at: p.left_at,
                    total_minutes: minutes,
                    visits: 1,
                },
            )),
        }
    }
    attendees
        .into_iter()
        .map(|(_, mut a)| {
            a.total_minutes = (a.total_minutes * 10.0).round() / 10.0;
            a
        })
        .collect()
}

fn csv_field(text: &str) -> String {
    // Quote everything; double inner quotes. A leading =,+,-,@ would be run
    // as a formula by spreadsheets: prefix it with a quote mark.
    let safe = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    format!("\"{}\"", safe.replace('"', "\"\""))
}

fn to_csv(attendees: &[Attendee]) -> String {
    let mut out = String::from(
        "user_id,display_name,role,first_joined_at,last_left_at,total_minutes,visits\n",
    );
    for a in attendees {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            a.user_id.map(|u| u.to_string()).unwrap_or_default(),
            csv_field(&a.display_name),
            a.role,
            a.first_joined_at.to_rfc3339(),
            a.last_left_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            a.total_minutes,
            a.visits
        ));
    }
    out
}

/// Chat pages: 1–200 messages, 50 by default.
const CHAT_LIMITS: Limits = Limits {
    default: 50,
    max: 200,
};

/// Chat messages, newest first.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChatParams {
    /// Only this session's messages.
    pub session_id: Option<Uuid>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Deprecated: the older name of `cursor`.
    pub before: Option<String>,
    /// Messages per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Chat history, newest first. Hosts read every session's; anyone else
/// only the sessions they attended (asking for another is 403).
#[utoipa::path(get, path = "/rooms/{id}/chat", tag = "rooms", params(("id" = String, Path), ChatParams),
    responses((status = 200, body = PageDto<ChatView>), (status = 400, description = "a cursor this API did not make", body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn chat_history(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<ChatParams>,
) -> ApiResult<Json<PageDto<ChatView>>> {
    let (room, member) = load_visible_room(&state, &caller, &id).await?;
    let host = require_host(&caller, &room, member).is_ok();
    let attended = match params.session_id {
        _ if host => true,
        Some(session) => {
            state
                .store
                .user_attended_session(caller.0.id, session)
                .await?
        }
        None => {
            state
                .store
                .user_attended_room(caller.0.id, &room.id)
                .await?
        }
    };
    if !attended {
        return Err(ApiError::forbidden(
            "only the room's hosts and those who attended a session may read its chat",
        ));
    }
    let paging = PageQuery {
        cursor: params.cursor.as_deref(),
        before: params.before.as_deref(),
        limit: params.limit,
        ..Default::default()
    }
    .paging(CHAT_LIMITS)?;
    let query = ChatQuery {
        room_id: room.id.clone(),
        session_id: params.session_id,
        attended_by: (!host).then_some(caller.0.id),
        paging,
    };
    let page = state.store.chat_messages(&query).await?;
    Ok(Json(PageDto::new(page, &query.paging, ChatView::from)))
}
