//! Upgrades: a database as the first release left it (schema version 3,
//! filled with `fixtures/schema-0003.*.sql`) is opened by today's store,
//! which migrates it forward; every row must come through intact and read
//! back through today's types (settings written before later fields
//! existed take their defaults). On SQLite, or on PostgreSQL with
//! `VTP_TEST_POSTGRES_URL`.

use std::path::Path;

use chrono::{TimeZone, Utc};
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use uuid::{Uuid, uuid};
use vtp_store::testing::TestDatabase;
use vtp_store::{
    RecordingAccess, RecordingState, Role, RoomRole, RoomStatus, StorageLocation, Store,
    StoreOptions,
};

/// The schema version of the fixture: the migrations of the first release.
const RELEASE_SCHEMA: i64 = 3;
const TEACHER: Uuid = uuid!("1f9c3d2b-6a55-4e6f-8b1c-2d3e4f5a6b72");
const STUDENT: Uuid = uuid!("2a0d4e3c-7b66-4f70-9c2d-3e4f5a6b7c83");
const SESSION: Uuid = uuid!("5d30716f-ae99-42a3-8f50-6b7c8d9eafb6");
const RECORDING: Uuid = uuid!("a28526b4-f3ee-47f8-b4a5-b0c1d2e3f40b");

/// Applies the first `RELEASE_SCHEMA` migrations of `dialect` and loads the fixture.
async fn release_database(url: &str) {
    let dialect = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut migrator = Migrator::new(crate_dir.join("migrations").join(dialect))
        .await
        .expect("the migrations folder");
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= RELEASE_SCHEMA)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let fixture = std::fs::read_to_string(
        crate_dir
            .join("tests/fixtures")
            .join(format!("schema-0003.{dialect}.sql")),
    )
    .expect("the fixture");
    if dialect == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        migrator.run(&mut conn).await.unwrap();
        sqlx::raw_sql(&fixture).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
        sqlx::raw_sql(&fixture).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

async fn chat_bodies(url: &str) -> Vec<String> {
    let sql = "SELECT body FROM chat_messages ORDER BY sent_at";
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    }
}

#[tokio::test]
async fn the_first_release_database_migrates_forward_intact() {
    let db = TestDatabase::new().await.unwrap();
    release_database(db.url()).await;

    let store = Store::open(StoreOptions::new(db.url())).await.unwrap();
    assert!(store.schema_version() > RELEASE_SCHEMA);

    // Accounts: roles, disabled flags, token epochs and password hashes as they were.
    let teacher = store
        .credentials_by_email("teacher@school.example")
        .await
        .unwrap();
    assert_eq!(teacher.user.id, TEACHER);
    assert_eq!(teacher.user.role, Role::Instructor);
    assert_eq!(teacher.user.token_epoch, 3);
    assert!(teacher.password_hash.starts_with("$argon2id$v=19$"));
    let student = store.user_by_id(STUDENT).await.unwrap();
    assert!(student.disabled);
    assert_eq!(
        student.created_at,
        Utc.with_ymd_and_hms(2026, 10, 3, 10, 0, 0).unwrap()
    );
    assert_eq!(store.count_active_admins().await.unwrap(), 1);

    // The room, whose settings predate automatic recording and recording access.
    let room = store.room_by_id("maths-7b").await.unwrap();
    assert_eq!((room.title.as_str(), room.owner_id), ("Maths 7B", TEACHER));
    assert_eq!(room.status, RoomStatus::Open);
    assert_eq!(room.settings.max_participants, 30);
    assert!(room.settings.allow_student_video && !room.settings.allow_student_screen);
    assert!(!room.settings.auto_record);
    assert_eq!(
        room.settings.recording_access,
        RecordingAccess::Participants
    );
    // Rooms from before classes stay open to anyone signed in (0007).
    assert_eq!(room.settings.access, vtp_store::RoomAccess::SignedIn);
    assert!(store.list_members("maths-7b", 10).await.unwrap().is_empty());

    // The session, its attendance and its chat.
    let session = store.session_by_id(SESSION).await.unwrap();
    assert_eq!(session.room_id, "maths-7b");
    assert!(session.ended_at.is_some());
    let people = store.session_participants(SESSION).await.unwrap();
    assert_eq!(people.len(), 2);
    assert!(
        people
            .iter()
            .any(|p| p.user_id == Some(TEACHER) && p.room_role == RoomRole::Host)
    );
    assert!(store.user_attended_room(STUDENT, "maths-7b").await.unwrap());
    assert_eq!(
        chat_bodies(db.url()).await,
        ["Open your books at page 12", "Done ✓"]
    );

    // The recording, now with a storage place (on this node's disk) it never had.
    let recording = store.get_recording(RECORDING).await.unwrap();
    assert_eq!(recording.state, RecordingState::Ready);
    assert_eq!(
        (recording.bytes, recording.duration_ms),
        (73_400_320, 2_880_000)
    );
    assert_eq!(recording.started_by, Some(TEACHER));
    let storage = store.recording_storage(RECORDING).await.unwrap();
    assert_eq!(storage.location, StorageLocation::Local);
    assert_eq!(storage.upload_attempts, 0);
    store.close().await;
}
