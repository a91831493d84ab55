//! The records the store keeps, as the rest of VTP sees them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A platform-wide role. Decides what a user may do outside rooms (create
/// rooms, manage users); inside a room the room role decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Instructor,
    Student,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Instructor, Role::Student];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Instructor => "instructor",
            Role::Student => "student",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "instructor" => Ok(Role::Instructor),
            "student" => Ok(Role::Student),
            other => Err(format!(
                "unknown role {other:?} (expected admin, instructor or student)"
            )),
        }
    }
}

/// Longest e-mail address, in characters (the SMTP path limit of RFC 5321).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest display name, in characters: an account's, and the name a peer
/// may take for one room.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest room title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Upper bound on `maxParticipants` of one room.
pub const MAX_ROOM_PARTICIPANTS: u32 = 1000;

/// A person who can sign in. The password hash is not part of it: it is read
/// only through [`Credentials`], so it cannot end up in a response by accident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    /// Normalised: trimmed and lower-case, unique.
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// A disabled user cannot sign in and their tokens stop working.
    pub disabled: bool,
    /// Access tokens carry the epoch they were issued in; bumping it (password
    /// change, "sign out everywhere", disable) invalidates them all at once.
    pub token_epoch: i64,
    /// Signs in with a second factor (TOTP) after the password.
    pub two_factor: bool,
    /// An admin set a temporary password: it must be changed before
    /// anything else.
    pub password_must_change: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user together with their password hash, for sign-in and password change.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

#[derive(Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// Fields of a user that may change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of the e-mail or display name.
    pub search: Option<String>,
    pub role: Option<Role>,
    /// Oldest first: by `created_at`, then id.
    pub paging: Paging<TimeKey>,
}

/// How much of a list to read. Each list has one order (said on its
/// `list_*`) that ends in the row's id, so no two rows tie; `K` holds that
/// order's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paging<K> {
    /// Keyset paging: the first `limit` rows after `after` (the `next` of
    /// the previous page), or from the start. Stable while rows are added
    /// or removed: no row is skipped or shown twice.
    After { after: Option<K>, limit: u32 },
    /// Page `page` (1-based) of `per_page` rows: offset paging, kept for the
    /// HTTP API's older `page` parameter.
    Offset { page: u32, per_page: u32 },
}

impl<K> Default for Paging<K> {
    fn default() -> Self {
        Paging::first(20)
    }
}

impl<K> Paging<K> {
    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Paging::After { after: None, limit }
    }

    /// Rows on a page.
    pub fn limit(&self) -> u32 {
        match self {
            Paging::After { limit, .. } => *limit,
            Paging::Offset { per_page, .. } => *per_page,
        }
    }

    pub(crate) fn after(&self) -> Option<&K> {
        match self {
            Paging::After { after, .. } => after.as_ref(),
            Paging::Offset { .. } => None,
        }
    }

    /// Rows to ask the database for: one more than a page, to learn whether
    /// another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        i64::from(self.limit()) + 1
    }

    pub(crate) fn offset(&self) -> i64 {
        match self {
            Paging::After { .. } => 0,
            Paging::Offset { page, per_page } => {
                i64::from(page.saturating_sub(1)) * i64::from(*per_page)
            }
        }
    }
}

/// The key of a list ordered by a time, then by a UUID id.
pub type TimeKey = (DateTime<Utc>, Uuid);
/// The key of the rooms list: room ids are text (a slug or a UUID).
pub type RoomKey = (DateTime<Utc>, String);

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    /// The key of the last item when more rows follow it: the `after` of
    /// the next page. `None` on the last page.
    pub next: Option<K>,
    /// Rows matching over all pages, for the lists that count them (rooms,
    /// users, sessions).
    pub total: Option<u64>,
}

impl<T, K> Page<T, K> {
    /// A page from `rows` read with [`Paging::fetch`] as their limit.
    pub(crate) fn cut(mut rows: Vec<T>, paging: &Paging<K>, key: impl Fn(&T) -> K) -> Self {
        let limit = usize::try_from(paging.limit()).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Page {
            items: rows,
            next,
            total: None,
        }
    }

    pub(crate) fn with_total(mut self, total: i64) -> Self {
        self.total = Some(u64::try_from(total).unwrap_or(0));
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RoomStatus {
    /// Exists, nobody is in it.
    Open,
    /// A live session is running.
    Live,
    /// Closed by a host: nobody can join until it is reopened.
    Closed,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomStatus::Open => "open",
            RoomStatus::Live => "live",
            RoomStatus::Closed => "closed",
        }
    }
}

impl FromStr for RoomStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(RoomStatus::Open),
            "live" => Ok(RoomStatus::Live),
            "closed" => Ok(RoomStatus::Closed),
            other => Err(format!(
                "unknown room status {other:?} (expected open, live or closed)"
            )),
        }
    }
}

/// Per-room settings, stored as JSON so that new settings need no migration:
/// every field has a default, and unknown fields are kept out by the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoomSettings {
    /// Most people in the room at once, hosts included.
    pub max_participants: u32,
    /// Whether students may publish their camera (hosts and presenters always may).
    pub allow_student_video: bool,
    /// Whether students may share their screen.
    pub allow_student_screen: bool,
    /// Start recording as soon as the session goes live.
    pub auto_record: bool,
    /// Who may watch the room's recordings besides admins and the owner.
    pub recording_access: RecordingAccess,
    /// Who may find and join the room besides its owner and admins.
    pub access: RoomAccess,
    /// Whether students wait to be let in (hosts never wait).
    pub waiting_room: WaitingRoom,
}

/// A room's waiting room: whether students (not hosts) wait before they
/// are in the room, and until what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WaitingRoom {
    /// No waiting room: students join a running class at once.
    #[default]
    Off,
    /// Students wait until a host is in the room, then all come in.
    UntilHostPresent,
    /// Students wait until a host lets them in, one by one or all at once.
    HostAdmits,
}

impl WaitingRoom {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingRoom::Off => "off",
            WaitingRoom::UntilHostPresent => "until_host_present",
            WaitingRoom::HostAdmits => "host_admits",
        }
    }
}

impl FromStr for WaitingRoom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(WaitingRoom::Off),
            "until_host_present" => Ok(WaitingRoom::UntilHostPresent),
            "host_admits" => Ok(WaitingRoom::HostAdmits),
            other => Err(format!(
                "unknown waiting room {other:?} (expected off, until_host_present or host_admits)"
            )),
        }
    }
}

/// Who may find and join a room besides its owner and the admins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomAccess {
    /// Its members only (a class with a roster): the default of new rooms.
    #[default]
    Members,
    /// Anyone signed in (what every room was before members existed).
    SignedIn,
}

impl RoomAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomAccess::Members => "members",
            RoomAccess::SignedIn => "signed_in",
        }
    }
}

impl FromStr for RoomAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "members" => Ok(RoomAccess::Members),
            "signed_in" => Ok(RoomAccess::SignedIn),
            other => Err(format!(
                "unknown room access {other:?} (expected members or signed_in)"
            )),
        }
    }
}

/// A member's role in one room (a class): students attend, co-teachers are
/// hosts like the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Student,
    CoTeacher,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Student => "student",
            MemberRole::CoTeacher => "co_teacher",
        }
    }
}

impl FromStr for MemberRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "student" => Ok(MemberRole::Student),
            "co_teacher" => Ok(MemberRole::CoTeacher),
            other => Err(format!(
                "unknown member role {other:?} (expected student or co_teacher)"
            )),
        }
    }
}

/// Most members (and pending members) one room may have.
pub const MAX_ROOM_MEMBERS: u64 = 2000;
/// Most invitation links of one room that are neither expired nor revoked.
pub const MAX_ROOM_INVITATIONS: u64 = 50;

/// A member of a room, with their account's name and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomMember {
    pub room_id: String,
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: MemberRole,
    pub added_at: DateTime<Utc>,
}

/// An address added to a room's roster before it had an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingMember {
    pub room_id: String,
    pub email: String,
    pub role: MemberRole,
    pub added_at: DateTime<Utc>,
}

/// An invitation link of a room (its token is never stored, only its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: Uuid,
    pub room_id: String,
    pub role: MemberRole,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct NewInvitation {
    pub room_id: String,
    /// SHA-256 of the link's token, hex.
    pub token_hash: String,
    pub role: MemberRole,
    pub created_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<u32>,
}

impl fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInvitation")
            .field("room_id", &self.room_id)
            .field("token_hash", &"<redacted>")
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .field("max_uses", &self.max_uses)
            .finish()
    }
}

/// Why an invitation link cannot be used (the caller words it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationRefusal {
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

/// Who may see a room's recordings, besides admins and the room's owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecordingAccess {
    /// The hosts of the recorded session and everyone who attended it.
    #[default]
    Participants,
    /// The hosts of the recorded session only.
    Hosts,
}

impl RecordingAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingAccess::Participants => "participants",
            RecordingAccess::Hosts => "hosts",
        }
    }
}

impl FromStr for RecordingAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "participants" => Ok(RecordingAccess::Participants),
            "hosts" => Ok(RecordingAccess::Hosts),
            other => Err(format!(
                "unknown recording access {other:?} (expected participants or hosts)"
            )),
        }
    }
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            max_participants: 50,
            allow_student_video: true,
            allow_student_screen: false,
            auto_record: false,
            recording_access: RecordingAccess::Participants,
            access: RoomAccess::Members,
            waiting_room: WaitingRoom::Off,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub title: String,
    pub owner_id: Uuid,
    pub status: RoomStatus,
    pub settings: RoomSettings,
    /// When its sessions happen, if it has a timetable.
    pub schedule: Option<crate::Schedule>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewRoom {
    pub id: String,
    pub title: String,
    pub owner_id: Uuid,
    pub settings: RoomSettings,
}

#[derive(Clone, Debug, Default)]
pub struct RoomPatch {
    pub title: Option<String>,
    pub status: Option<RoomStatus>,
    pub settings: Option<RoomSettings>,
}

#[derive(Clone, Debug, Default)]
pub struct RoomQuery {
    pub status: Option<RoomStatus>,
    pub owner_id: Option<Uuid>,
    /// Case-insensitive substring of the title.
    pub search: Option<String>,
    /// Only rooms this user may see: owned, a member of, or open to anyone
    /// signed in (`None`: every room, for admins).
    pub visible_to: Option<Uuid>,
    /// Only rooms this user owns or is a member of ("my classes").
    pub member_of: Option<Uuid>,
    /// Newest first: by `created_at`, then id, both descending.
    pub paging: Paging<RoomKey>,
}

/// A stored refresh token (the token itself is never stored, only its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct NewRefreshToken {
    pub user_id: Uuid,
    pub family_id: Uuid,
    /// SHA-256 of the opaque token, hex.
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("user_id", &self.user_id)
            .field("family_id", &self.family_id)
            .field("token_hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Escapes `%`, `_` and `\` so that user text in a LIKE pattern matches literally.
pub(crate) fn like_pattern(search: &str) -> String {
    let mut out = String::with_capacity(search.len() + 2);
    out.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A person's role inside one room (docs/protocol.md, `Peer.role`), as opposed to their
/// platform [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RoomRole {
    /// The owner, or an instructor/admin: may mute, remove, promote, record, close.
    Host,
    /// Promoted by a host: may always publish.
    Presenter,
    Participant,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Host => "host",
            RoomRole::Presenter => "presenter",
            RoomRole::Participant => "participant",
        }
    }
}

impl FromStr for RoomRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "host" => Ok(RoomRole::Host),
            "presenter" => Ok(RoomRole::Presenter),
            "participant" => Ok(RoomRole::Participant),
            other => Err(format!("unknown room role {other:?}")),
        }
    }
}

/// One continuous use of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub id: Uuid,
    pub room_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the session runs.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A session with its head count, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    pub session: LiveSession,
    /// People who took part, each once however often they came back (a
    /// presence whose account was deleted counts as one person).
    pub participant_count: u64,
}

/// One presence of one person in one session: the attendance record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub id: Uuid,
    pub session_id: Uuid,
    /// `None` once the account has been deleted.
    pub user_id: Option<Uuid>,
    pub peer_id: String,
    pub display_name: String,
    pub room_role: RoomRole,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewParticipant {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub peer_id: String,
    pub display_name: String,
    pub room_role: RoomRole,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: Uuid,
    pub room_id: String,
    pub session_id: Uuid,
    pub user_id: Option<Uuid>,
    pub peer_id: String,
    pub display_name: String,
    pub body: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewChatMessage {
    pub room_id: String,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub peer_id: String,
    pub display_name: String,
    pub body: String,
}

/// Which chat messages to read.
#[derive(Clone, Debug)]
pub struct ChatQuery {
    pub room_id: String,
    /// Only this session's messages.
    pub session_id: Option<Uuid>,
    /// Only messages of sessions this user attended (was a participant
    /// of): what someone who is not a host of the room may read.
    pub attended_by: Option<Uuid>,
    /// Newest first: by `sent_at`, then id, both descending.
    pub paging: Paging<TimeKey>,
}

/// Where a recording is in its life. `recording` → `finalizing` → `ready`,
/// or `failed` from either of the first two; `ready` and `failed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    /// Tracks are being written (the files already play as they are).
    Recording,
    /// Stopped; the files are being closed and indexed.
    Finalizing,
    Ready,
    Failed,
}

impl RecordingState {
    pub const ALL: [RecordingState; 4] = [
        RecordingState::Recording,
        RecordingState::Finalizing,
        RecordingState::Ready,
        RecordingState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Finalizing => "finalizing",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }

    /// `ready` and `failed` never change again.
    pub fn is_final(self) -> bool {
        matches!(self, RecordingState::Ready | RecordingState::Failed)
    }

    /// Whether a recording may go from `self` to `to`. Only forward moves:
    /// a finished recording is never reopened.
    pub fn can_become(self, to: RecordingState) -> bool {
        use RecordingState::*;
        matches!(
            (self, to),
            (Recording, Finalizing | Ready | Failed) | (Finalizing, Ready | Failed)
        )
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "recording" => Ok(RecordingState::Recording),
            "finalizing" => Ok(RecordingState::Finalizing),
            "ready" => Ok(RecordingState::Ready),
            "failed" => Ok(RecordingState::Failed),
            other => Err(format!(
                "unknown recording state {other:?} (expected recording, finalizing, ready or failed)"
            )),
        }
    }
}

/// A recording of (part of) a live session. Its files live under
/// `<data-dir>/recordings/<id>/`; the manifest says which they are.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub id: Uuid,
    pub room_id: String,
    pub session_id: Uuid,
    /// `None` for automatic recordings, or once the account is deleted.
    pub started_by: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    /// `None` while recording.
    pub stopped_at: Option<DateTime<Utc>>,
    pub state: RecordingState,
    /// All files together, as last reported.
    pub bytes: u64,
    pub duration_ms: u64,
    /// The recorder's manifest (`vtp_recording::Manifest` as JSON); `None`
    /// until it is first written.
    pub manifest: Option<serde_json::Value>,
    /// Why it failed, for operators.
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewRecording {
    pub room_id: String,
    pub session_id: Uuid,
    /// The host who started it; `None` for automatic recordings.
    pub started_by: Option<Uuid>,
}

/// The last word on a recording (see [`crate::Store::finish_recording`]).
#[derive(Clone, Debug)]
pub struct FinishedRecording {
    pub stopped_at: DateTime<Utc>,
    /// `ready` or `failed`.
    pub state: RecordingState,
    pub bytes: u64,
    pub duration_ms: u64,
    pub manifest: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// Someone asking to see recordings; what they may see is decided in SQL
/// (see [`crate::Store::list_recordings`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingViewer {
    pub user_id: Uuid,
    pub role: Role,
}

/// Which recordings to list.
#[derive(Clone, Debug)]
pub struct RecordingFilter {
    pub room_id: Option<String>,
    /// Only those this person may see; `None`: all (for the server itself).
    pub visible_to: Option<RecordingViewer>,
    /// Newest first: by `started_at`, then id, both descending.
    pub paging: Paging<TimeKey>,
}
