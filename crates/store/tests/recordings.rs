//! Recordings on both backends: states, compare-and-set, visibility,
//! pagination, deletion; exports of recordings.

use chrono::{Duration, SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;
use vtp_store::testing::TestDatabase;
use vtp_store::*;

struct Fixture {
    _db: TestDatabase,
    store: Store,
    owner: User,
    room: Room,
    session: LiveSession,
}

async fn user(store: &Store, email: &str, role: Role) -> User {
    store
        .create_user(
            NewUser {
                email: email.into(),
                display_name: email.into(),
                password_hash: "x".into(),
                role,
            },
            Utc::now(),
        )
        .await
        .unwrap()
}

async fn room(store: &Store, id: &str, owner: &User, access: RecordingAccess) -> Room {
    store
        .create_room(
            &NewRoom {
                id: id.into(),
                title: id.into(),
                owner_id: owner.id,
                settings: RoomSettings {
                    recording_access: access,
                    // Attendees see recordings only of rooms they may
                    // still see: this one is open to anyone signed in.
                    access: vtp_store::RoomAccess::SignedIn,
                    ..Default::default()
                },
            },
            Utc::now(),
        )
        .await
        .unwrap()
}

async fn attend(store: &Store, session: &LiveSession, who: &User, role: RoomRole) {
    store
        .add_participant(
            &NewParticipant {
                session_id: session.id,
                user_id: who.id,
                peer_id: format!("peer-{}", who.id),
                display_name: who.display_name.clone(),
                room_role: role,
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

async fn setup() -> Fixture {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let owner = user(&store, "owner@example.org", Role::Instructor).await;
    let room = room(&store, "r1", &owner, RecordingAccess::Participants).await;
    let session = store.start_session(&room.id, Utc::now()).await.unwrap();
    Fixture {
        _db: db,
        store,
        owner,
        room,
        session,
    }
}

fn new_recording(f: &Fixture) -> NewRecording {
    NewRecording {
        room_id: f.room.id.clone(),
        session_id: f.session.id,
        started_by: Some(f.owner.id),
    }
}

#[tokio::test]
async fn a_recording_goes_through_its_states_once() {
    let f = setup().await;
    let t0 = Utc::now().trunc_subsecs(6);
    let rec = f
        .store
        .create_recording(&new_recording(&f), t0)
        .await
        .unwrap();
    assert_eq!(rec.state, RecordingState::Recording);
    assert_eq!((rec.bytes, rec.duration_ms), (0, 0));
    assert_eq!(rec.started_at, t0);
    assert_eq!(rec.stopped_at, None);
    assert_eq!(rec.manifest, None);
    assert_eq!(f.store.get_recording(rec.id).await.unwrap(), rec);

    // One running recording per session.
    let second = f.store.create_recording(&new_recording(&f), t0).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    // The session must be the room's.
    let other_room = room(&f.store, "r2", &f.owner, RecordingAccess::Hosts).await;
    let wrong = NewRecording {
        room_id: other_room.id.clone(),
        ..new_recording(&f)
    };
    assert!(matches!(
        f.store.create_recording(&wrong, t0).await,
        Err(StoreError::Conflict(_))
    ));

    let manifest = json!({ "version": 1, "tracks": [{ "file": "a.webm", "bytes": 10 }] });
    assert!(
        f.store
            .update_recording_progress(rec.id, 10, 1500, &manifest, t0)
            .await
            .unwrap()
    );
    let got = f.store.get_recording(rec.id).await.unwrap();
    assert_eq!((got.bytes, got.duration_ms), (10, 1500));
    assert_eq!(got.manifest.as_ref(), Some(&manifest));

    // recording → finalizing: stopped_at is set; a second actor loses.
    let t1 = t0 + Duration::seconds(30);
    use RecordingState::*;
    assert!(
        f.store
            .set_recording_state(rec.id, Recording, Finalizing, t1, None)
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .set_recording_state(rec.id, Recording, Failed, t1, Some("late"))
            .await
            .unwrap()
    );
    let got = f.store.get_recording(rec.id).await.unwrap();
    assert_eq!(got.state, Finalizing);
    assert_eq!(got.stopped_at, Some(t1));
    assert_eq!(got.error, None);
    // Once stopped, a new recording of the same session may start.
    let next = f
        .store
        .create_recording(&new_recording(&f), t1)
        .await
        .unwrap();

    // Progress still lands while finalizing.
    assert!(
        f.store
            .update_recording_progress(rec.id, 20, 2000, &manifest, t1)
            .await
            .unwrap()
    );
    // Finish once: the second finish and later progress change nothing.
    let outcome = FinishedRecording {
        stopped_at: t1 + Duration::seconds(5),
        state: Ready,
        bytes: 30,
        duration_ms: 30_000,
        manifest: Some(manifest.clone()),
        error: None,
    };
    assert!(f.store.finish_recording(rec.id, &outcome).await.unwrap());
    let failed = FinishedRecording {
        state: Failed,
        error: Some("too late".into()),
        ..outcome.clone()
    };
    assert!(!f.store.finish_recording(rec.id, &failed).await.unwrap());
    assert!(
        !f.store
            .update_recording_progress(rec.id, 99, 99, &manifest, t1)
            .await
            .unwrap()
    );
    let got = f.store.get_recording(rec.id).await.unwrap();
    assert_eq!(got.state, Ready);
    assert_eq!((got.bytes, got.duration_ms), (30, 30_000));
    assert_eq!(got.stopped_at, Some(t1), "the stop time is the first one");
    assert_eq!(got.error, None);

    // Backward or sideways moves are refused outright.
    for (from, to) in [(Ready, Recording), (Failed, Ready), (Finalizing, Recording)] {
        assert!(matches!(
            f.store
                .set_recording_state(rec.id, from, to, t1, None)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(matches!(
        f.store
            .finish_recording(
                next.id,
                &FinishedRecording {
                    state: Finalizing,
                    ..outcome.clone()
                }
            )
            .await,
        Err(StoreError::Conflict(_))
    ));

    // recording → failed directly, with its reason; finish from recording works too.
    assert!(
        f.store
            .set_recording_state(next.id, Recording, Failed, t1, Some("disk full"))
            .await
            .unwrap()
    );
    let got = f.store.get_recording(next.id).await.unwrap();
    assert_eq!(
        (got.state, got.error.as_deref()),
        (Failed, Some("disk full"))
    );
    let third = f
        .store
        .create_recording(&new_recording(&f), t1)
        .await
        .unwrap();
    assert!(f.store.finish_recording(third.id, &failed).await.unwrap());
    let got = f.store.get_recording(third.id).await.unwrap();
    assert_eq!(
        (got.state, got.error.as_deref()),
        (Failed, Some("too late"))
    );
    assert_eq!(got.stopped_at, Some(outcome.stopped_at));

    // Unknown ids.
    assert!(matches!(
        f.store.get_recording(Uuid::new_v4()).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !f.store
            .set_recording_state(Uuid::new_v4(), Recording, Ready, t1, None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn crash_repair_finds_unfinished_recordings() {
    let f = setup().await;
    let t0 = Utc::now();
    let a = f
        .store
        .create_recording(&new_recording(&f), t0)
        .await
        .unwrap();
    use RecordingState::*;
    f.store
        .set_recording_state(a.id, Recording, Finalizing, t0, None)
        .await
        .unwrap();
    let b = f
        .store
        .create_recording(&new_recording(&f), t0 + Duration::seconds(1))
        .await
        .unwrap();
    let ids = |v: Vec<vtp_store::Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f.store.recordings_in_state(Recording).await.unwrap()),
        [b.id]
    );
    assert_eq!(
        ids(f.store.recordings_in_state(Finalizing).await.unwrap()),
        [a.id]
    );
    assert!(f.store.recordings_in_state(Ready).await.unwrap().is_empty());
    for s in RecordingState::ALL {
        assert_eq!(RecordingState::parse(s.as_str()), Ok(s));
    }
    assert!(RecordingState::parse("done").is_err());
}

#[tokio::test]
async fn visibility_follows_the_rule_in_sql() {
    let f = setup().await;
    let s = &f.store;
    let admin = user(s, "admin@example.org", Role::Admin).await;
    let host = user(s, "host@example.org", Role::Instructor).await;
    let attendee = user(s, "att@example.org", Role::Student).await;
    let stranger = user(s, "stranger@example.org", Role::Student).await;
    let instructor = user(s, "other-instr@example.org", Role::Instructor).await;
    attend(s, &f.session, &host, RoomRole::Host).await;
    attend(s, &f.session, &attendee, RoomRole::Participant).await;
    // The attendee came back: two rows, still one recording listed.
    attend(s, &f.session, &attendee, RoomRole::Presenter).await;
    let rec = s
        .create_recording(&new_recording(&f), Utc::now())
        .await
        .unwrap();
    // A later session the attendee did not attend.
    s.end_session(f.session.id, RoomStatus::Open, Utc::now())
        .await
        .unwrap();
    let later = s.start_session(&f.room.id, Utc::now()).await.unwrap();
    let rec2 = s
        .create_recording(
            &NewRecording {
                room_id: f.room.id.clone(),
                session_id: later.id,
                started_by: None,
            },
            Utc::now() + Duration::seconds(1),
        )
        .await
        .unwrap();

    let viewer = |u: &User| RecordingViewer {
        user_id: u.id,
        role: u.role,
    };
    let listed = |u: Option<&User>| {
        let filter = RecordingFilter {
            room_id: None,
            visible_to: u.map(viewer),
            paging: Paging::first(50),
        };
        async move {
            s.list_recordings(&filter)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(None).await, [rec2.id, rec.id]);
    assert_eq!(listed(Some(&admin)).await, [rec2.id, rec.id]);
    assert_eq!(listed(Some(&f.owner)).await, [rec2.id, rec.id]);
    assert_eq!(listed(Some(&host)).await, [rec.id]);
    assert_eq!(listed(Some(&attendee)).await, [rec.id]);
    assert!(listed(Some(&stranger)).await.is_empty());
    assert!(listed(Some(&instructor)).await.is_empty());
    for (who, expect) in [
        (&admin, true),
        (&f.owner, true),
        (&host, true),
        (&attendee, true),
        (&stranger, false),
        (&instructor, false),
    ] {
        assert_eq!(
            s.recording_visible_to(rec.id, &viewer(who)).await.unwrap(),
            expect,
            "{}",
            who.email
        );
    }

    // `hosts`: the attendee loses access, the session's host keeps it.
    let settings = RoomSettings {
        recording_access: RecordingAccess::Hosts,
        ..f.room.settings.clone()
    };
    s.update_room(
        &f.room.id,
        &RoomPatch {
            settings: Some(settings),
            ..Default::default()
        },
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(listed(Some(&attendee)).await.is_empty());
    assert!(
        !s.recording_visible_to(rec.id, &viewer(&attendee))
            .await
            .unwrap()
    );
    assert_eq!(listed(Some(&host)).await, [rec.id]);
    assert_eq!(listed(Some(&f.owner)).await, [rec2.id, rec.id]);
    assert!(
        !s.recording_visible_to(Uuid::new_v4(), &viewer(&admin))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn listing_paginates_by_room_newest_first() {
    let f = setup().await;
    let s = &f.store;
    let other = room(s, "r2", &f.owner, RecordingAccess::Participants).await;
    let other_session = s.start_session(&other.id, Utc::now()).await.unwrap();
    let t0 = Utc::now();
    let mut made = Vec::new();
    for i in 0..5 {
        let r = s
            .create_recording(&new_recording(&f), t0 + Duration::seconds(i))
            .await
            .unwrap();
        s.set_recording_state(
            r.id,
            RecordingState::Recording,
            RecordingState::Ready,
            t0,
            None,
        )
        .await
        .unwrap();
        made.push(r.id);
    }
    // Same start time as the newest: the id breaks the tie.
    let twin = s
        .create_recording(&new_recording(&f), t0 + Duration::seconds(4))
        .await
        .unwrap();
    made.push(twin.id);
    s.create_recording(
        &NewRecording {
            room_id: other.id.clone(),
            session_id: other_session.id,
            started_by: None,
        },
        t0,
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_recordings(&RecordingFilter {
                room_id: Some(f.room.id.clone()),
                visible_to: Some(RecordingViewer {
                    user_id: f.owner.id,
                    role: f.owner.role,
                }),
                paging: Paging::After { after, limit: 2 },
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| (r.started_at, r.id)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "every recording of the room, once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id");
    let mut ids: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
    ids.sort();
    made.sort();
    assert_eq!(ids, made);
}

#[tokio::test]
async fn deleting_recordings_and_their_rooms() {
    let f = setup().await;
    let s = &f.store;
    let rec = s
        .create_recording(&new_recording(&f), Utc::now())
        .await
        .unwrap();
    // A room with recordings cannot go: its files would be orphaned.
    s.end_session(f.session.id, RoomStatus::Open, Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        s.delete_room(&f.room.id).await,
        Err(StoreError::Conflict(_))
    ));
    s.delete_recording(rec.id).await.unwrap();
    assert!(matches!(
        s.get_recording(rec.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_recording(rec.id).await,
        Err(StoreError::NotFound)
    ));
    s.delete_room(&f.room.id).await.unwrap();
}

#[tokio::test]
async fn old_room_settings_load_with_the_default_access() {
    let f = setup().await;
    // A row written before `recordingAccess` existed.
    let old: RoomSettings =
        serde_json::from_value(json!({ "maxParticipants": 10, "autoRecord": true })).unwrap();
    assert_eq!(old.recording_access, RecordingAccess::Participants);
    assert_eq!(
        serde_json::to_value(RoomSettings {
            recording_access: RecordingAccess::Hosts,
            ..Default::default()
        })
        .unwrap()["recordingAccess"],
        "hosts"
    );
    assert_eq!(
        f.room.settings.recording_access,
        RecordingAccess::Participants
    );
}

#[tokio::test]
async fn exports_queue_run_and_finish_once_and_go_with_their_recording() {
    let f = setup().await;
    let now = Utc::now();
    let rec = f
        .store
        .create_recording(&new_recording(&f), now)
        .await
        .unwrap();
    let grid = f
        .store
        .create_export(rec.id, ExportLayout::Grid, Some(f.owner.id), now)
        .await
        .unwrap();
    assert_eq!(
        (grid.state, grid.progress, grid.bytes),
        (ExportState::Queued, 0.0, 0)
    );
    // One per (recording, layout) while queued or running; other layouts may wait too.
    let again = f
        .store
        .create_export(rec.id, ExportLayout::Grid, None, now)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let audio = f
        .store
        .create_export(rec.id, ExportLayout::Audio, None, now)
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .create_export(Uuid::new_v4(), ExportLayout::Grid, None, now)
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(f.store.count_active_exports().await.unwrap(), 2);

    // Progress only while running; finishing once.
    assert!(
        !f.store
            .set_export_progress(grid.id, 0.5, now)
            .await
            .unwrap()
    );
    assert!(f.store.start_export(grid.id, now).await.unwrap());
    assert!(!f.store.start_export(grid.id, now).await.unwrap());
    assert!(
        f.store
            .set_export_progress(grid.id, 7.0, now)
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.get_export(grid.id).await.unwrap().progress,
        1.0,
        "clamped"
    );
    assert!(
        f.store
            .set_export_progress(grid.id, 0.25, now)
            .await
            .unwrap()
    );
    assert!(f.store.finish_export(grid.id, Ok(1234), now).await.unwrap());
    assert!(
        !f.store
            .finish_export(grid.id, Err("late"), now)
            .await
            .unwrap()
    );
    let done = f.store.get_export(grid.id).await.unwrap();
    assert_eq!(
        (done.state, done.progress, done.bytes),
        (ExportState::Ready, 1.0, 1234)
    );
    // A ready export no longer blocks another of its layout.
    let regrid = f
        .store
        .create_export(rec.id, ExportLayout::Grid, None, now)
        .await
        .unwrap();

    // A restart: running ones fail, queued ones stay queued.
    assert!(f.store.start_export(audio.id, now).await.unwrap());
    assert_eq!(
        f.store
            .fail_running_exports("restarted", now)
            .await
            .unwrap(),
        1
    );
    let cut = f.store.get_export(audio.id).await.unwrap();
    assert_eq!(
        (cut.state, cut.error.as_deref()),
        (ExportState::Failed, Some("restarted"))
    );
    let queued = f.store.exports_in_state(ExportState::Queued).await.unwrap();
    assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), [regrid.id]);
    let listed = f.store.list_exports(rec.id, &Paging::default()).await;
    assert_eq!(listed.unwrap().items.len(), 3);

    // A new ready export replaces the finished ones of its layout only.
    assert!(f.store.start_export(regrid.id, now).await.unwrap());
    assert!(f.store.finish_export(regrid.id, Ok(99), now).await.unwrap());
    let regrid = f.store.get_export(regrid.id).await.unwrap();
    let gone = f.store.delete_superseded_exports(&regrid).await.unwrap();
    assert_eq!(gone.iter().map(|e| e.id).collect::<Vec<_>>(), [grid.id]);
    // (All were made at the same instant here: compare as sets.)
    let mut left: Vec<Uuid> = f
        .store
        .list_exports(rec.id, &Paging::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.id)
        .collect();
    left.sort();
    let mut expected = [regrid.id, audio.id];
    expected.sort();
    assert_eq!(left, expected);

    // Deleting the recording deletes its exports.
    f.store
        .finish_recording(
            rec.id,
            &FinishedRecording {
                stopped_at: now,
                state: RecordingState::Failed,
                bytes: 0,
                duration_ms: 0,
                manifest: None,
                error: None,
            },
        )
        .await
        .unwrap();
    f.store.delete_recording(rec.id).await.unwrap();
    assert!(matches!(
        f.store.get_export(grid.id).await,
        Err(StoreError::NotFound)
    ));
    let listed = f.store.list_exports(rec.id, &Paging::default()).await;
    assert!(listed.unwrap().items.is_empty());
}

fn finished(state: RecordingState) -> FinishedRecording {
    FinishedRecording {
        stopped_at: Utc::now(),
        state,
        bytes: 10,
        duration_ms: 1000,
        manifest: None,
        error: None,
    }
}

#[tokio::test]
async fn storage_moves_to_the_bucket_once_and_only_when_ready() {
    let f = setup().await;
    let rec = f
        .store
        .create_recording(&new_recording(&f), Utc::now())
        .await
        .unwrap();
    let storage = f.store.recording_storage(rec.id).await.unwrap();
    assert_eq!(storage.location, StorageLocation::Local);
    assert_eq!(storage.upload_attempts, 0);
    // Still recording: not on the work list, and cannot be marked uploaded.
    assert!(
        f.store
            .recordings_awaiting_upload(10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !f.store
            .mark_recording_uploaded(rec.id, "p/", Utc::now())
            .await
            .unwrap()
    );

    assert!(
        f.store
            .finish_recording(rec.id, &finished(RecordingState::Ready))
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.recordings_awaiting_upload(10).await.unwrap(),
        vec![rec.id]
    );
    f.store
        .note_upload_failure(rec.id, "bucket unreachable")
        .await
        .unwrap();
    let storage = f.store.recording_storage(rec.id).await.unwrap();
    assert_eq!(storage.upload_attempts, 1);
    assert_eq!(storage.upload_error.as_deref(), Some("bucket unreachable"));
    assert_eq!(storage.location, StorageLocation::Local);

    // One that keeps failing goes behind the others.
    let later = f
        .store
        .create_recording(&new_recording(&f), Utc::now())
        .await
        .unwrap();
    f.store
        .finish_recording(later.id, &finished(RecordingState::Ready))
        .await
        .unwrap();
    assert_eq!(
        f.store.recordings_awaiting_upload(10).await.unwrap(),
        vec![later.id, rec.id]
    );
    assert_eq!(
        f.store.recordings_awaiting_upload(1).await.unwrap(),
        vec![later.id]
    );

    let prefix = format!("recordings/{}/", rec.id);
    assert!(
        f.store
            .mark_recording_uploaded(rec.id, &prefix, Utc::now())
            .await
            .unwrap()
    );
    // Once: a second uploader loses, and it leaves the work list.
    assert!(
        !f.store
            .mark_recording_uploaded(rec.id, "other/", Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.recordings_awaiting_upload(10).await.unwrap(),
        vec![later.id]
    );
    let storage = f.store.recording_storage(rec.id).await.unwrap();
    assert_eq!(storage.location, StorageLocation::Remote { prefix });
    assert!(storage.uploaded_at.is_some());
    assert_eq!(storage.upload_error, None);

    // Failed recordings are never uploaded (a second recording of the
    // session may start once the first is no longer running).
    let failed = f
        .store
        .create_recording(&new_recording(&f), Utc::now())
        .await
        .unwrap();
    f.store
        .finish_recording(failed.id, &finished(RecordingState::Failed))
        .await
        .unwrap();
    assert_eq!(
        f.store.recordings_awaiting_upload(10).await.unwrap(),
        vec![later.id]
    );
    // A deleted recording has no storage.
    f.store.delete_recording(rec.id).await.unwrap();
    assert!(matches!(
        f.store.recording_storage(rec.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn recordings_are_counted_by_state_and_queries_timed() {
    let f = setup().await;
    assert_eq!(f.store.count_recordings_by_state().await.unwrap(), []);
    let before = f.store.query_timings().count;
    let t0 = Utc::now();
    let rec = f
        .store
        .create_recording(&new_recording(&f), t0)
        .await
        .unwrap();
    let manifest = json!({ "version": 1 });
    f.store
        .update_recording_progress(rec.id, 1234, 10, &manifest, t0)
        .await
        .unwrap();
    assert_eq!(
        f.store.count_recordings_by_state().await.unwrap(),
        [(RecordingState::Recording, 1, 1234)]
    );
    assert!(
        f.store
            .set_recording_state(
                rec.id,
                RecordingState::Recording,
                RecordingState::Failed,
                t0,
                Some("x")
            )
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.count_recordings_by_state().await.unwrap(),
        [(RecordingState::Failed, 1, 1234)]
    );
    assert_eq!(f.store.count_exports_by_state().await.unwrap(), []);
    // Every query above went through the store's one seam and was timed.
    let timings = f.store.query_timings();
    assert!(timings.count >= before + 5, "{timings:?}");
    let in_buckets: u64 = timings.buckets.iter().map(|b| b.1).sum();
    assert_eq!(in_buckets, timings.count);
}
