//! A room is a class: who may find and join it (`settings.access`, the
//! roster), invitation links, roster import, and roster changes reaching
//! live sockets. SQLite, or PostgreSQL with `VTP_TEST_POSTGRES_URL`.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_store::{MemberRole, NewInvitation, Role};

/// anonymous, a student who is no member, a member student, a co-teacher, the owner.
const ACTORS: [&str; 5] = ["anonymous", "outsider", "member", "co-teacher", "owner"];

struct Class {
    s: TestServer,
    /// By `ACTORS`.
    tokens: Vec<Option<String>>,
    ids: Vec<String>,
    room: String,
}

/// A members-only room of `owner` with a member student and a co-teacher.
async fn class() -> Class {
    let s = TestServer::start().await;
    let (owner_id, owner) = s.user("owner@example.org", Role::Instructor).await;
    let (outsider_id, outsider) = s.user("outsider@example.org", Role::Student).await;
    let (member_id, member) = s.user("member@example.org", Role::Student).await;
    let (co_id, co) = s.user("co@example.org", Role::Instructor).await;
    let room = s.room(&owner, json!({ "access": "members" })).await;
    for (email, role) in [
        ("member@example.org", "student"),
        ("co@example.org", "co_teacher"),
    ] {
        let (status, body) = s
            .post(
                &format!("/api/v1/rooms/{room}/members"),
                Some(&owner),
                json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"], "added", "{body}");
    }
    Class {
        s,
        tokens: vec![None, Some(outsider), Some(member), Some(co), Some(owner)],
        ids: vec![String::new(), outsider_id, member_id, co_id, owner_id],
        room,
    }
}

#[tokio::test]
async fn a_members_only_room_does_not_exist_for_outsiders() {
    let c = class().await;
    let session =
        c.s.store
            .start_session(&c.room, chrono::Utc::now())
            .await
            .unwrap();
    c.s.store
        .end_session(session.id, vtp_store::RoomStatus::Open, chrono::Utc::now())
        .await
        .unwrap();
    let member_id = c.ids[2].clone();
    let rows: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (
            Method::GET,
            "/rooms/{room}".into(),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::PATCH,
            "/rooms/{room}".into(),
            Some(json!({ "title": "Renamed" })),
            [401, 404, 403, 403, 200],
        ),
        (
            Method::GET,
            "/rooms/{room}/participants".into(),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::GET,
            "/rooms/{room}/sessions".into(),
            None,
            [401, 404, 403, 200, 200],
        ),
        (
            Method::GET,
            format!("/rooms/{{room}}/sessions/{}/attendance", session.id),
            None,
            [401, 404, 403, 200, 200],
        ),
        // The member attended no session: only hosts read every session's chat.
        (
            Method::GET,
            "/rooms/{room}/chat".into(),
            None,
            [401, 404, 403, 200, 200],
        ),
        (
            Method::POST,
            "/rooms/{room}/recording".into(),
            None,
            [401, 404, 403, 409, 409],
        ),
        (
            Method::GET,
            "/rooms/{room}/members".into(),
            None,
            [401, 404, 403, 200, 200],
        ),
        (
            Method::POST,
            "/rooms/{room}/members".into(),
            Some(json!({ "email": "member@example.org" })),
            [401, 404, 403, 403, 200],
        ),
        (
            Method::GET,
            "/rooms/{room}/invitations".into(),
            None,
            [401, 404, 403, 403, 200],
        ),
        (
            Method::POST,
            "/rooms/{room}/invitations".into(),
            Some(json!({})),
            [401, 404, 403, 403, 201],
        ),
        (
            Method::DELETE,
            format!("/rooms/{{room}}/members/{member_id}"),
            None,
            [401, 404, 403, 403, 204],
        ),
        (
            Method::DELETE,
            "/rooms/{room}".into(),
            None,
            [401, 404, 404, 403, 204],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expect) in &rows {
        for (i, actor) in ACTORS.iter().enumerate() {
            let path = format!("/api/v1{}", path.replace("{room}", &c.room));
            let (status, answer) =
                c.s.call(method.clone(), &path, c.tokens[i].as_deref(), body.clone())
                    .await;
            if status.as_u16() != expect[i] {
                failures.push(format!(
                    "{method} {path} as {actor}: expected {}, got {status} {answer}",
                    expect[i]
                ));
            }
            if status == StatusCode::NOT_FOUND {
                assert_eq!(code(&answer), "not_found", "{answer}");
            }
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_room_list_shows_what_one_may_join_and_my_classes() {
    let c = class().await;
    let owner = c.tokens[4].as_deref().unwrap();
    let open = c.s.room(owner, json!({ "access": "signed_in" })).await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let outsider = c.tokens[1].as_deref();
    let (_, all) = c.s.get("/api/v1/rooms", outsider).await;
    assert_eq!(ids(&all), vec![open.clone()], "{all}");
    let (_, mine) = c.s.get("/api/v1/rooms?mine=true", outsider).await;
    assert!(ids(&mine).is_empty(), "{mine}");
    let member = c.tokens[2].as_deref();
    let (_, all) = c.s.get("/api/v1/rooms", member).await;
    assert_eq!(ids(&all).len(), 2, "{all}");
    let (_, mine) = c.s.get("/api/v1/rooms?mine=true", member).await;
    assert_eq!(ids(&mine), vec![c.room.clone()], "{mine}");
    let (_, room) = c.s.get(&format!("/api/v1/rooms/{}", c.room), member).await;
    assert_eq!(room["memberRole"], "student", "{room}");
    assert_eq!(room["settings"]["access"], "members", "{room}");
    // The owner's classes: both rooms.
    let (_, mine) = c.s.get("/api/v1/rooms?mine=true", Some(owner)).await;
    assert_eq!(ids(&mine).len(), 2, "{mine}");
}

#[tokio::test]
async fn new_rooms_are_members_only_and_access_is_checked() {
    let s = TestServer::start().await;
    let (_, owner) = s.user("owner@example.org", Role::Instructor).await;
    let (status, room) = s
        .post("/api/v1/rooms", Some(&owner), json!({ "title": "Class" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(room["settings"]["access"], "members", "{room}");
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/rooms/{}", room["id"].as_str().unwrap()),
            Some(&owner),
            Some(json!({ "settings": { "access": "everyone" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn outsiders_cannot_join_members_can_and_co_teachers_host() {
    let c = class().await;
    let outsider = c.s.socket(c.tokens[1].as_deref().unwrap()).await;
    let refusal = outsider
        .request("join-room", json!({ "roomId": c.room }))
        .await;
    assert_eq!(refused(refusal), "not_found");
    // A co-teacher opens the class (a host), a member joins it.
    let co = c.s.socket(c.tokens[3].as_deref().unwrap()).await;
    let joined = join(&co, &c.room).await;
    assert_eq!(joined["role"], "host", "{joined}");
    let member = c.s.socket(c.tokens[2].as_deref().unwrap()).await;
    let joined = join(&member, &c.room).await;
    assert_eq!(joined["role"], "participant", "{joined}");
    // Live or not, outsiders still get not_found (and see no participants).
    let refusal = outsider
        .request("join-room", json!({ "roomId": c.room }))
        .await;
    assert_eq!(refused(refusal), "not_found");
    let refusal = outsider
        .request("get-room-info", json!({ "roomId": c.room }))
        .await;
    assert_eq!(refused(refusal), "not_found");
}

#[tokio::test]
async fn removing_a_member_takes_them_out_of_the_live_room() {
    let c = class().await;
    let owner = c.tokens[4].as_deref().unwrap();
    let host = c.s.socket(owner).await;
    join(&host, &c.room).await;
    let member = c.s.socket(c.tokens[2].as_deref().unwrap()).await;
    join(&member, &c.room).await;
    let co = c.s.socket(c.tokens[3].as_deref().unwrap()).await;
    let joined = join(&co, &c.room).await;
    let co_peer = joined["peerId"].as_str().unwrap().to_string();

    let (status, _) =
        c.s.call(
            Method::DELETE,
            &format!("/api/v1/rooms/{}/members/{}", c.room, c.ids[2]),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removed = member.next_event("removed", WAIT).await.unwrap();
    assert!(
        removed["reason"]
            .as_str()
            .unwrap()
            .contains("no longer a member"),
        "{removed}"
    );
    host.next_event("peer-left", WAIT).await.unwrap();
    let again = member
        .request("join-room", json!({ "roomId": c.room }))
        .await;
    assert_eq!(refused(again), "not_found");

    // A co-teacher made a student stays, as a participant.
    let (status, body) =
        c.s.post(
            &format!("/api/v1/rooms/{}/members", c.room),
            Some(owner),
            json!({ "email": "co@example.org", "role": "student" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed = host.next_event("role-changed", WAIT).await.unwrap();
    assert_eq!(changed, json!({ "peerId": co_peer, "role": "participant" }));

    // A room opened to anyone signed in lets the outsider in; closing it
    // again takes them out.
    let room_path = format!("/api/v1/rooms/{}", c.room);
    let set_access = async |access: &str| {
        let (status, body) =
            c.s.call(
                Method::PATCH,
                &room_path,
                Some(owner),
                Some(json!({ "settings": { "access": access } })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    set_access("signed_in").await;
    let outsider = c.s.socket(c.tokens[1].as_deref().unwrap()).await;
    join(&outsider, &c.room).await;
    set_access("members").await;
    outsider.next_event("removed", WAIT).await.unwrap();
}

/// Makes a link through the API; returns (invitation id, token).
async fn invite(c: &Class, body: Value) -> (String, String) {
    let (status, made) =
        c.s.post(
            &format!("/api/v1/rooms/{}/invitations", c.room),
            c.tokens[4].as_deref(),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    assert_eq!(made["path"], format!("/invite/{token}"));
    (
        made["invitation"]["id"].as_str().unwrap().to_string(),
        token,
    )
}

async fn accept(c: &Class, token: &str, who: &str) -> (StatusCode, Value) {
    c.s.post(
        &format!("/api/v1/invitations/{token}/accept"),
        Some(who),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn invitation_links_expire_are_revoked_and_used_up() {
    let c = class().await;
    let (_, first) = c.s.user("first@example.org", Role::Student).await;
    let (_, second) = c.s.user("second@example.org", Role::Student).await;
    let (_, third) = c.s.user("third@example.org", Role::Student).await;

    // One use: the first user joins the class; using it again changes
    // nothing and counts nothing; the second user finds it used up.
    let (id, token) = invite(&c, json!({ "maxUses": 1, "expiresInHours": 2 })).await;
    let (status, body) = accept(&c, &token, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roomId"], c.room.as_str());
    assert_eq!(body["role"], "student");
    let (status, _) = accept(&c, &token, &first).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a member may open the link again, used up or not"
    );
    let (status, room) =
        c.s.get(&format!("/api/v1/rooms/{}", c.room), Some(&first))
            .await;
    assert_eq!(status, StatusCode::OK, "{room}");
    let (status, body) = accept(&c, &token, &second).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used as many times"),
        "{body}"
    );
    let (_, links) =
        c.s.get(
            &format!("/api/v1/rooms/{}/invitations", c.room),
            c.tokens[4].as_deref(),
        )
        .await;
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["id"] != id.as_str()),
        "a used-up link is no longer listed: {links}"
    );

    // Revoked: refused with the reason, and the link list drops it.
    let (id, token) = invite(&c, json!({ "role": "co_teacher" })).await;
    let (status, _) =
        c.s.call(
            Method::DELETE,
            &format!("/api/v1/rooms/{}/invitations/{id}", c.room),
            c.tokens[4].as_deref(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = accept(&c, &token, &second).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("withdrawn"),
        "{body}"
    );

    // Expired (made in the store with a past expiry: the API gives at least an hour).
    let token = "expired-link-token-for-the-test-0123456789ab";
    c.s.store
        .create_invitation(
            &NewInvitation {
                room_id: c.room.clone(),
                token_hash: vtp_server::auth::tokens::hash_refresh_token(token),
                role: MemberRole::Student,
                created_by: c.ids[4].parse().unwrap(),
                expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
                max_uses: None,
            },
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let (status, body) = accept(&c, token, &third).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // A made-up token, and bounds.
    let (status, body) = accept(&c, "no-such-token", &third).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid"),
        "{body}"
    );
    for bad in [
        json!({ "expiresInHours": 0 }),
        json!({ "expiresInHours": 721 }),
        json!({ "maxUses": 0 }),
        json!({ "role": "admin" }),
    ] {
        let (status, body) =
            c.s.post(
                &format!("/api/v1/rooms/{}/invitations", c.room),
                c.tokens[4].as_deref(),
                bad.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) =
        c.s.get(&format!("/api/v1/rooms/{}", c.room), Some(&third))
            .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "refused links made no member"
    );
}

#[tokio::test]
async fn a_co_teacher_link_makes_a_host() {
    let c = class().await;
    let (_, helper) = c.s.user("helper@example.org", Role::Instructor).await;
    let (_, token) = invite(&c, json!({ "role": "co_teacher" })).await;
    let (status, body) = accept(&c, &token, &helper).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "co_teacher");
    let socket = c.s.socket(&helper).await;
    let joined = join(&socket, &c.room).await;
    assert_eq!(joined["role"], "host", "{joined}");
}

#[tokio::test]
async fn a_roster_is_imported_from_csv_row_by_row() {
    let c = class().await;
    c.s.user("known@example.org", Role::Student).await;
    let owner = c.tokens[4].as_deref().unwrap();
    let csv = "email,role\nknown@example.org\nnew@example.org,co_teacher\nnot an address\nx@example.org,admin\n\n";
    let response =
        c.s.http
            .post(c.s.url(&format!("/api/v1/rooms/{}/members/import", c.room)))
            .bearer_auth(owner)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["invitedNotRegistered"], 1, "{report}");
    assert_eq!(report["errors"], 2, "{report}");
    let results: Vec<(u64, &str)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        vec![
            (2, "added"),
            (3, "invited_not_registered"),
            (4, "error"),
            (5, "error")
        ]
    );
    // The pending address becomes a co-teacher when it registers.
    let (_, roster) =
        c.s.get(&format!("/api/v1/rooms/{}/members", c.room), Some(owner))
            .await;
    assert_eq!(roster["pending"][0]["email"], "new@example.org", "{roster}");
    let (_, newcomer) = c.s.user("new@example.org", Role::Instructor).await;
    let (status, room) =
        c.s.get(&format!("/api/v1/rooms/{}", c.room), Some(&newcomer))
            .await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(room["memberRole"], "co_teacher");
    let (_, roster) =
        c.s.get(&format!("/api/v1/rooms/{}/members", c.room), Some(owner))
            .await;
    assert_eq!(roster["pending"], json!([]), "{roster}");

    // Limits: rows and bytes.
    let many: String = (0..501).map(|i| format!("s{i}@example.org\n")).collect();
    let big = "a".repeat(65 * 1024);
    for (body, status) in [
        (many, StatusCode::UNPROCESSABLE_ENTITY),
        (big, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let response =
            c.s.http
                .post(c.s.url(&format!("/api/v1/rooms/{}/members/import", c.room)))
                .bearer_auth(owner)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap();
        assert_eq!(response.status(), status);
    }
}
