//! The JSON shapes of the HTTP API (docs/protocol.md, "HTTP API") and the validation of what
//! clients send. Field names are camelCase on the wire.

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vtp_store::{
    MAX_EMAIL_CHARS, MemberRole, RecordingAccess, Role, Room, RoomAccess, RoomSettings, RoomStatus,
    User, WaitingRoom,
};

use super::schema;
use crate::error::ApiError;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// Signs in with a code from an authenticator app after the password.
    pub two_factor: bool,
    /// Has a temporary password that must be changed at the next sign-in.
    pub password_must_change: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            disabled: u.disabled,
            two_factor: u.two_factor,
            password_must_change: u.password_must_change,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// Answer to register, login, refresh and change-password.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    /// JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; exchange it at `/auth/refresh`. Each one works once.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub user: UserDto,
    /// The account's role requires two-factor sign-in and it has none yet:
    /// the access token is good only for `/auth/2fa/setup`,
    /// `/auth/2fa/confirm`, `/auth/me` and `/auth/logout` until it has.
    pub enrolment_required: bool,
    /// An admin gave the account a temporary password: the access token is
    /// good only for `/auth/change-password`, `/auth/me` and `/auth/logout`
    /// until it is changed.
    pub password_change_required: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(schema_with = schema::email)]
    pub email: String,
    #[schema(schema_with = schema::new_password)]
    pub password: String,
    #[schema(schema_with = schema::display_name)]
    pub display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = schema::email)]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogoutRequest {
    /// Sign out of the device that holds this refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Sign out everywhere: every refresh token and access token of the user.
    #[serde(default)]
    pub everywhere: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(format = Password)]
    pub current_password: String,
    #[schema(schema_with = schema::new_password)]
    pub new_password: String,
}

/// Changes to a user. Users may change their own display name; only admins
/// may change roles or disable accounts.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatchRequest {
    #[serde(default)]
    #[schema(schema_with = schema::display_name_or_null)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Users, oldest first.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
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
    /// Case-insensitive search in e-mail and display name.
    pub q: Option<String>,
    /// Only users with this role.
    pub role: Option<Role>,
}

/// Rooms, newest first.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoomListParams {
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
    /// Case-insensitive search in titles.
    pub q: Option<String>,
    /// Only rooms in this state.
    pub status: Option<RoomStatus>,
    pub owner_id: Option<Uuid>,
    /// `true`: only the caller's classes (rooms they own or are a member of).
    pub mine: Option<bool>,
}

#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomSettingsDto {
    /// Most people in the room at once, hosts included.
    #[schema(schema_with = schema::max_participants)]
    pub max_participants: u32,
    /// Students may publish their camera.
    pub allow_student_video: bool,
    /// Students may share their screen.
    pub allow_student_screen: bool,
    /// Recording starts when the session goes live.
    pub auto_record: bool,
    /// Who may watch the room's recordings besides admins and the owner:
    /// `participants` (the hosts of the recorded session and everyone who
    /// attended it) or `hosts` (the session's hosts only).
    pub recording_access: RecordingAccess,
    /// Who may find and join the room besides its owner and admins:
    /// `members` (its roster) or `signed_in` (anyone signed in).
    pub access: RoomAccess,
    /// Whether students wait before they are in the room: `off`,
    /// `until_host_present` (until a host is in it) or `host_admits` (until
    /// a host lets them in). Hosts never wait.
    pub waiting_room: WaitingRoom,
}

impl From<RoomSettings> for RoomSettingsDto {
    fn from(s: RoomSettings) -> Self {
        RoomSettingsDto {
            max_participants: s.max_participants,
            allow_student_video: s.allow_student_video,
            allow_student_screen: s.allow_student_screen,
            auto_record: s.auto_record,
            recording_access: s.recording_access,
            access: s.access,
            waiting_room: s.waiting_room,
        }
    }
}

/// Settings to change; absent fields keep their current (or default) value.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomSettingsInput {
    /// 1 to the server's limit.
    #[schema(schema_with = schema::max_participants_or_null)]
    pub max_participants: Option<u32>,
    pub allow_student_video: Option<bool>,
    pub allow_student_screen: Option<bool>,
    pub auto_record: Option<bool>,
    /// `participants` or `hosts`.
    #[schema(value_type = Option<RecordingAccess>)]
    pub recording_access: Option<String>,
    /// `members` or `signed_in`.
    #[schema(value_type = Option<RoomAccess>)]
    pub access: Option<String>,
    /// `off`, `until_host_present` or `host_admits`.
    #[schema(value_type = Option<WaitingRoom>)]
    pub waiting_room: Option<String>,
}

impl RoomSettingsInput {
    /// `base` with these changes, checked.
    pub fn apply_to(
        &self,
        mut base: RoomSettings,
        max_participants_limit: u32,
    ) -> Result<RoomSettings, ApiError> {
        if let Some(n) = self.max_participants {
            if n == 0 || n > max_participants_limit {
                return Err(ApiError::validation(format!(
                    "settings.maxParticipants: must be between 1 and {max_participants_limit}"
                )));
            }
            base.max_participants = n;
        }
        if let Some(v) = self.allow_student_video {
            base.allow_student_video = v;
        }
        if let Some(v) = self.allow_student_screen {
            base.allow_student_screen = v;
        }
        if let Some(v) = self.auto_record {
            base.auto_record = v;
        }
        if let Some(v) = &self.recording_access {
            // A string rather than the enum, so that an unknown value is a
            // validation failure (422) like the other settings, not a 400.
            base.recording_access = v.parse().map_err(|_| {
                ApiError::validation(
                    "settings.recordingAccess: must be \"participants\" or \"hosts\"",
                )
            })?;
        }
        if let Some(v) = &self.access {
            base.access = v.parse().map_err(|_| {
                ApiError::validation("settings.access: must be \"members\" or \"signed_in\"")
            })?;
        }
        if let Some(v) = &self.waiting_room {
            base.waiting_room = v.parse().map_err(|_| {
                ApiError::validation(
                    "settings.waitingRoom: must be \"off\", \"until_host_present\" or \"host_admits\"",
                )
            })?;
        }
        Ok(base)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomDto {
    /// A UUID, or the slug chosen at creation.
    pub id: String,
    pub title: String,
    pub owner_id: Uuid,
    pub status: RoomStatus,
    pub settings: RoomSettingsDto,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When its sessions happen (`PUT /rooms/{id}/schedule`); absent when
    /// it has no timetable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<vtp_store::Schedule>,
    /// The session in progress or the next one, from the schedule; absent
    /// when there is none to come.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_session: Option<SessionTimeDto>,
    /// The caller's role on the room's roster (`GET /rooms/{id}` only;
    /// absent when the caller is no member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_role: Option<MemberRole>,
}

impl RoomDto {
    pub fn with_member_role(mut self, member: Option<MemberRole>) -> Self {
        self.member_role = member;
        self
    }
}

impl From<Room> for RoomDto {
    fn from(r: Room) -> Self {
        RoomDto {
            id: r.id,
            title: r.title,
            owner_id: r.owner_id,
            status: r.status,
            settings: r.settings.into(),
            next_session: r.schedule.as_ref().and_then(|s| {
                crate::rooms::schedule::next_session(s, Utc::now()).map(|o| SessionTimeDto {
                    start: o.start,
                    end: o.end,
                })
            }),
            schedule: r.schedule,
            created_at: r.created_at,
            updated_at: r.updated_at,
            member_role: None,
        }
    }
}

/// One scheduled session's times.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionTimeDto {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRoomRequest {
    #[schema(schema_with = schema::title)]
    pub title: String,
    /// Optional short id for friendly links (`physics-101`): 3–48 characters
    /// of a–z, 0–9 and `-`. Default: a random UUID.
    #[serde(default)]
    #[schema(schema_with = schema::slug_or_null)]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "optional_object")]
    pub settings: Option<RoomSettingsInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomPatchRequest {
    #[serde(default)]
    #[schema(schema_with = schema::title_or_null)]
    pub title: Option<String>,
    /// `open` to reopen a closed room, `closed` to close it. `live` is set by
    /// the server while a session runs.
    #[serde(default)]
    #[schema(schema_with = schema::settable_room_status_or_null)]
    pub status: Option<RoomStatus>,
    #[serde(default, deserialize_with = "optional_object")]
    pub settings: Option<RoomSettingsInput>,
}

/// An optional object field, refused when sent as an array (serde would
/// take one as the fields in order; see `extract::Json`).
fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => serde_json::from_value(value)
            .map(Some)
            .map_err(de::Error::custom),
        Some(_) => Err(de::Error::custom("expected an object")),
    }
}

/// Trimmed, lower-case e-mail, or a validation error.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let invalid = || ApiError::validation("email: not a valid e-mail address");
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@');
    if local.is_empty() || !domain_ok || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    Ok(email)
}

/// A trimmed, non-empty single-line text of at most `max` characters.
pub fn clean_text(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(ApiError::validation(format!("{field}: must not be empty")));
    }
    if text.chars().count() > max {
        return Err(ApiError::validation(format!(
            "{field}: must be at most {max} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field}: must not contain control characters"
        )));
    }
    Ok(text.to_string())
}

pub fn validate_slug(slug: &str) -> Result<(), ApiError> {
    let ok_len = (3..=48).contains(&slug.len());
    let ok_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_edges = !slug.starts_with('-') && !slug.ends_with('-');
    if ok_len && ok_chars && ok_edges {
        Ok(())
    } else {
        Err(ApiError::validation(
            "slug: 3–48 characters of a–z, 0–9 and '-', not starting or ending with '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Example.ORG ").unwrap(),
            "ann@example.org"
        );
        for bad in [
            "",
            "ann",
            "@x.org",
            "ann@",
            "ann@x",
            "a b@x.org",
            "a@b@c.org",
            "ann@.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_and_slugs() {
        assert_eq!(clean_text("t", "  Hi ", 10).unwrap(), "Hi");
        assert!(clean_text("t", "   ", 10).is_err());
        assert!(clean_text("t", "a\nb", 10).is_err());
        assert!(clean_text("t", &"é".repeat(11), 10).is_err());
        assert!(validate_slug("physics-101").is_ok());
        for bad in ["ab", "Physics", "-x-", "a_b", "x".repeat(49).as_str()] {
            assert!(validate_slug(bad).is_err(), "{bad:?}");
        }
    }
}
