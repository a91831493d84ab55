//! Scheduled sessions over HTTP and a room's `.ics` calendar feed.
//!
//! Hosts set a room's schedule (`PUT`/`DELETE /rooms/{id}/schedule`);
//! everyone who may see the room reads it (and the next session) on the
//! room itself and gets a subscribe link (`POST /rooms/{id}/calendar-link`,
//! voided by `DELETE`). Calendar apps send no headers, so the feed
//! (`GET /calendar-feeds/{feed}/calendar.ics`) is reached by a signed link
//! (`auth::links`, the resource `calendar/<feed>`): its row in the store
//! makes it revocable, and it is served only while its user still exists,
//! is enabled and may see the room. It is not bound to the user's token
//! epoch: signing out everywhere should not break a calendar subscription
//! (revoking the link does).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, Utc};
use icalendar::{Calendar, CalendarDateTime, Component, EventLike};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vtp_store::{Room, Schedule, StoreError};

use super::caller::AuthUser;
use super::dto::RoomDto;
use super::extract::{Json, Path, Query};
use super::links::LinkQuery;
use super::rooms::{load_hosted_room, load_room, load_visible_room};
use crate::auth::links::{LinkError, LinkParams};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::rooms::schedule;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_schedule, delete_schedule))
        .routes(routes!(create_calendar_link, revoke_calendar_links))
        .routes(routes!(calendar_feed))
}

/// How long a subscribe link stays good: a school year and a bit. A
/// calendar app keeps polling it; a new one is a click away.
pub const FEED_TTL_DAYS: i64 = 400;

const INVALID_LINK: &str =
    "this calendar link is not valid: copy a new one from the room's settings";

fn feed_resource(feed: Uuid) -> String {
    format!("calendar/{feed}")
}

/// A subscribe link to a room's calendar.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarLinkDto {
    /// Path and query of the feed on this server (prefix the server's
    /// origin); works without an `Authorization` header.
    #[schema(example = "/api/v1/calendar-feeds/0e8c…/calendar.ics?u=…&exp=…&sig=…")]
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Set a room's schedule (its hosts). Replaces the whole schedule.
#[utoipa::path(put, path = "/rooms/{id}/schedule", tag = "rooms", params(("id" = String, Path)),
    request_body = Schedule,
    responses((status = 200, body = RoomDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_schedule(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<Schedule>,
) -> ApiResult<Json<RoomDto>> {
    load_hosted_room(
        &state,
        &caller,
        &id,
        "only the room's hosts may change its schedule",
    )
    .await?;
    schedule::validate(&body).map_err(ApiError::validation)?;
    let room = state
        .store
        .set_room_schedule(&id, Some(&body), Utc::now())
        .await?;
    tracing::info!(room_id = %id, by = %caller.0.id, entries = body.entries.len(), "schedule set");
    refreshed(&state, room).await
}

/// Remove a room's schedule (its hosts).
#[utoipa::path(delete, path = "/rooms/{id}/schedule", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = RoomDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_schedule(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RoomDto>> {
    load_hosted_room(
        &state,
        &caller,
        &id,
        "only the room's hosts may change its schedule",
    )
    .await?;
    let room = state.store.set_room_schedule(&id, None, Utc::now()).await?;
    tracing::info!(room_id = %id, by = %caller.0.id, "schedule removed");
    refreshed(&state, room).await
}

async fn refreshed(state: &AppState, room: Room) -> ApiResult<Json<RoomDto>> {
    if room.status == vtp_store::RoomStatus::Live {
        state.hub.refresh_room(&room).await;
    }
    Ok(Json(room.into()))
}

/// The caller's subscribe link to the room's calendar (made on first
/// use; the same link until it expires or is revoked).
#[utoipa::path(post, path = "/rooms/{id}/calendar-link", tag = "rooms", params(("id" = String, Path)),
    responses((status = 200, body = CalendarLinkDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_calendar_link(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CalendarLinkDto>> {
    let (room, _) = load_visible_room(&state, &caller, &id).await?;
    let now = Utc::now();
    let feed = match state
        .store
        .active_calendar_feed(&room.id, caller.0.id, now)
        .await?
    {
        Some(feed) => feed,
        None => {
            let expires = now + Duration::days(FEED_TTL_DAYS);
            state
                .store
                .create_calendar_feed(&room.id, caller.0.id, expires, now)
                .await?
        }
    };
    let exp = feed.expires_at.timestamp();
    let sig = state
        .tokens
        .links
        .signature(&feed_resource(feed.id), feed.user_id, 0, exp);
    Ok(Json(CalendarLinkDto {
        url: format!(
            "/api/v1/calendar-feeds/{}/calendar.ics?u={}&exp={exp}&sig={sig}",
            feed.id, feed.user_id
        ),
        expires_at: feed.expires_at,
    }))
}

/// Revoke the caller's subscribe links to the room's calendar.
#[utoipa::path(delete, path = "/rooms/{id}/calendar-link", tag = "rooms", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_calendar_links(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (room, _) = load_visible_room(&state, &caller, &id).await?;
    let n = state
        .store
        .revoke_calendar_feeds(&room.id, caller.0.id, Utc::now())
        .await?;
    tracing::info!(room_id = %room.id, user_id = %caller.0.id, revoked = n, "calendar links revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// A room's sessions as an iCalendar (RFC 5545) feed, for calendar apps:
/// one `VEVENT` per schedule entry (`UID` stable per room and entry,
/// `DTSTART;TZID=<IANA name>`, `DURATION`, and `RRULE` for weekly
/// classes). Reached by the signed link of `POST /rooms/{id}/calendar-link`.
#[utoipa::path(get, path = "/calendar-feeds/{feed}/calendar.ics", tag = "rooms",
    params(("feed" = Uuid, Path), LinkQuery),
    responses((status = 200, description = "the calendar", content((String = "text/calendar"))),
              (status = 403, description = "a link altered, expired, revoked, or whose user lost access", body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn calendar_feed(
    State(state): State<AppState>,
    Path(feed_id): Path<Uuid>,
    Query(query): Query<LinkQuery>,
) -> ApiResult<impl IntoResponse> {
    let (Some(user), Some(expires), Some(signature)) = (query.u, query.exp, query.sig) else {
        return Err(ApiError::forbidden(INVALID_LINK));
    };
    let link = LinkParams {
        user,
        expires,
        signature,
    };
    match state.tokens.links.check(&feed_resource(feed_id), &link, 0) {
        Ok(()) => {}
        Err(LinkError::Expired) => {
            return Err(ApiError::forbidden(
                "this calendar link has expired: copy a new one from the room's settings",
            ));
        }
        Err(LinkError::Invalid) => {
            // The feed id only: the signature is a credential.
            tracing::info!(feed_id = %feed_id, "a calendar link with a bad signature");
            return Err(ApiError::forbidden(INVALID_LINK));
        }
    }
    let feed = match state.store.calendar_feed(feed_id).await {
        Ok(feed) if feed.user_id == link.user => feed,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::forbidden(INVALID_LINK)),
        Err(e) => return Err(e.into()),
    };
    if feed.revoked_at.is_some() {
        return Err(ApiError::forbidden(
            "this calendar link was revoked: copy a new one from the room's settings",
        ));
    }
    let user = match state.store.user_by_id(feed.user_id).await {
        Ok(u) if !u.disabled => u,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApiError::forbidden(INVALID_LINK)),
        Err(e) => return Err(e.into()),
    };
    let room = load_room(&state, &feed.room_id).await?;
    let member = state.store.member_role(&room.id, user.id).await?;
    if !crate::rooms::can_see(&user, &room, member) {
        return Err(ApiError::not_found("no such room"));
    }
    Ok((
        [
            (CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (CACHE_CONTROL, "private, max-age=300"),
        ],
        render(&room),
    ))
}

/// The room's calendar as RFC 5545 text.
pub fn render(room: &Room) -> String {
    let mut calendar = Calendar::new();
    calendar.name(&room.title);
    if let Some(schedule) = &room.schedule {
        let tz = schedule::time_zone(schedule).ok();
        for (i, entry) in schedule.entries.iter().enumerate() {
            let mut event = icalendar::Event::new();
            event
                // Stable across edits of the entry, so a calendar updates it.
                .uid(&format!("{}-{i}@vtp", room.id))
                .summary(&room.title)
                .starts(CalendarDateTime::WithTimezone {
                    date_time: entry.start,
                    tzid: schedule.time_zone.clone(),
                })
                .add_property("DURATION", format!("PT{}M", entry.duration_minutes));
            if let Some(rule) = tz.and_then(|tz| schedule::rrule_value(tz, entry)) {
                event.add_property("RRULE", rule);
            }
            calendar.push(event.done());
        }
    }
    calendar.done().to_string()
}
