//! Paging of every list of the HTTP API (docs/protocol.md, "Paging"): the
//! first page, the next ones through `nextCursor`, a last page without one
//! (also when it is exactly full), and a cursor the API did not make
//! refused with 400 and the JSON error body. Plus the older aliases the web
//! app and older clients use (`page`/`perPage`, chat's `before`).

use crate::common;

use common::recordings::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_store::{ExportLayout, NewChatMessage, Role, RoomStatus};

/// The ids of a page's items.
fn page_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// Follows `nextCursor` through `list` (a path with a query) `limit` items
/// at a time, passing the cursor as `cursor_param`. Checks that every page
/// with a next is full and that the last has none; returns the ids in the
/// order they came and the number of pages.
async fn walk(
    s: &TestServer,
    list: &str,
    token: &str,
    limit: usize,
    cursor_param: &str,
) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=50 {
        let path = match &cursor {
            None => format!("{list}&limit={limit}"),
            Some(c) => format!("{list}&limit={limit}&{cursor_param}={c}"),
        };
        let (status, page) = s.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let got = page_ids(&page);
        assert!(got.len() <= limit, "{path}: {page}");
        ids.extend(got.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(got.len(), limit, "a page with a next is full: {page}");
                cursor = Some(next.to_string());
            }
            None => {
                assert!(
                    page.get("nextCursor").is_none(),
                    "the last page has no nextCursor at all: {page}"
                );
                return (ids, pages);
            }
        }
    }
    panic!("{list}: still a next page after 50");
}

/// `list` answers cursors it did not make with 400 and the error body.
async fn refuses_foreign_cursors(s: &TestServer, list: &str, token: &str, cursor_param: &str) {
    for cursor in ["garbage", "1700000000_x", "1700000000.5_x"] {
        let path = format!("{list}&{cursor_param}={cursor}");
        let (status, body) = s.get(&path, Some(token)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(cursor_param), "{path}: {message}");
    }
}

/// Pages of `limit` through `list` give exactly `expected`, in `pages`
/// pages, and foreign cursors are refused.
async fn pages_through(
    s: &TestServer,
    list: &str,
    token: &str,
    limit: usize,
    expected: &[String],
    pages: usize,
) {
    assert_eq!(
        walk(s, list, token, limit, "cursor").await,
        (expected.to_vec(), pages),
        "{list}"
    );
    refuses_foreign_cursors(s, list, token, "cursor").await;
}

#[tokio::test]
async fn rooms_page_newest_first() {
    let s = TestServer::start().await;
    let (_, owner) = s.user("owner@example.org", Role::Instructor).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(s.room(&owner, json!({})).await);
    }
    made.reverse();
    pages_through(&s, "/api/v1/rooms?q=test", &owner, 2, &made, 3).await;
    // Exactly full last page: no next either.
    pages_through(&s, "/api/v1/rooms?q=test", &owner, 5, &made, 1).await;

    // The web app's lobby asks `perPage=100` (an alias of `limit`).
    let (status, page) = s.get("/api/v1/rooms?perPage=100", Some(&owner)).await;
    assert_eq!((status, page_ids(&page)), (StatusCode::OK, made.clone()));
    assert_eq!((page["total"].as_u64(), page.get("page")), (Some(5), None));
}

#[tokio::test]
async fn users_page_oldest_first_and_by_page_number() {
    let s = TestServer::start().await;
    let (admin_id, admin) = s.user("admin@example.org", Role::Admin).await;
    let mut made = vec![admin_id];
    for i in 0..4 {
        made.push(s.user(&format!("u{i}@example.org"), Role::Student).await.0);
    }
    pages_through(&s, "/api/v1/users?q=", &admin, 2, &made, 3).await;
    pages_through(&s, "/api/v1/users?q=example", &admin, 5, &made, 1).await;

    // The web app's admin table pages by number (`page`, `perPage`) and
    // shows the total: offset paging, with those fields in the answer.
    let (status, page) = s.get("/api/v1/users?perPage=2&page=2", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page_ids(&page), made[2..4]);
    assert_eq!(
        (&page["page"], &page["perPage"], &page["total"]),
        (&json!(2), &json!(2), &json!(5))
    );
    let (_, last) = s.get("/api/v1/users?perPage=2&page=3", Some(&admin)).await;
    assert_eq!(
        (page_ids(&last), last.get("nextCursor")),
        (made[4..].to_vec(), None)
    );
    for (path, status) in [
        ("/api/v1/users?page=0", StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/api/v1/users?perPage=101",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v1/users?limit=2&perPage=2", StatusCode::BAD_REQUEST),
    ] {
        let (got, body) = s.get(path, Some(&admin)).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
    let (_, first) = s.get("/api/v1/users?limit=2", Some(&admin)).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let (status, body) = s
        .get(
            &format!("/api/v1/users?page=2&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
}

#[tokio::test]
async fn sessions_page_newest_first() {
    let s = TestServer::start().await;
    let (_, owner) = s.user("owner@example.org", Role::Instructor).await;
    let room = s.room(&owner, json!({})).await;
    let mut made = Vec::new();
    for _ in 0..4 {
        let session = s
            .store
            .start_session(&room, chrono::Utc::now())
            .await
            .unwrap();
        s.store
            .end_session(session.id, RoomStatus::Open, chrono::Utc::now())
            .await
            .unwrap();
        made.push(session.id.to_string());
    }
    made.reverse();
    let list = format!("/api/v1/rooms/{room}/sessions?");
    pages_through(&s, &list, &owner, 2, &made, 2).await;
    pages_through(&s, &list, &owner, 3, &made, 2).await;
}

#[tokio::test]
async fn chat_pages_newest_first_with_before_as_an_alias() {
    let s = TestServer::start().await;
    let (owner_id, owner) = s.user("owner@example.org", Role::Instructor).await;
    let room = s.room(&owner, json!({})).await;
    let session = s
        .store
        .start_session(&room, chrono::Utc::now())
        .await
        .unwrap();
    let mut made = Vec::new();
    for i in 0..5 {
        let message = s
            .store
            .insert_chat_message(
                &NewChatMessage {
                    room_id: room.clone(),
                    session_id: session.id,
                    user_id: owner_id.parse::<Uuid>().unwrap(),
                    peer_id: "peer".into(),
                    display_name: "Owner".into(),
                    body: format!("m{i}"),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        made.push(message.id.to_string());
    }
    made.reverse();
    let list = format!("/api/v1/rooms/{room}/chat?sessionId={}", session.id);
    pages_through(&s, &list, &owner, 2, &made, 3).await;
    assert_eq!(
        walk(&s, &list, &owner, 2, "before").await,
        (made.clone(), 3)
    );
    refuses_foreign_cursors(&s, &list, &owner, "before").await;
    let (status, body) = s.get(&format!("{list}&limit=201"), Some(&owner)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn recordings_and_exports_page_newest_first() {
    let w = World::new().await;
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(w.recording(b"x", &[]).await.id.to_string());
    }
    made.reverse();
    let list = format!("/api/v1/recordings?roomId={}", w.room);
    pages_through(&w.s, &list, &w.owner, 2, &made, 2).await;
    pages_through(&w.s, &list, &w.owner, 3, &made, 2).await;

    let recording: Uuid = made[0].parse().unwrap();
    let mut exports = Vec::new();
    for layout in [
        ExportLayout::Grid,
        ExportLayout::Speaker,
        ExportLayout::Audio,
    ] {
        let export =
            w.s.store
                .create_export(recording, layout, None, chrono::Utc::now())
                .await
                .unwrap();
        exports.push(export.id.to_string());
    }
    let list = format!("/api/v1/recordings/{recording}/exports?");
    // Made within microseconds of each other: the order is the one the
    // whole list gives, which the pages must follow.
    let (status, all) = w.s.get(&list, Some(&w.owner)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let listed = page_ids(&all);
    let mut sorted = listed.clone();
    sorted.sort();
    exports.sort();
    assert_eq!(sorted, exports);
    pages_through(&w.s, &list, &w.owner, 2, &listed, 2).await;
    pages_through(&w.s, &list, &w.owner, 1, &listed, 3).await;
}

/// Every list documents `cursor`, `limit`, the 400 of a foreign cursor, and
/// a page with `nextCursor`.
#[test]
fn the_openapi_document_describes_the_paging() {
    let doc = serde_json::to_value(vtp_server::api::openapi()).unwrap();
    for path in [
        "/api/v1/rooms",
        "/api/v1/users",
        "/api/v1/rooms/{id}/sessions",
        "/api/v1/rooms/{id}/chat",
        "/api/v1/recordings",
        "/api/v1/recordings/{id}/exports",
    ] {
        let get = &doc["paths"][path]["get"];
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no parameters"))
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"cursor") && names.contains(&"limit"),
            "{path}: {names:?}"
        );
        assert!(get["responses"]["400"].is_object(), "{path}: no 400");
        let mut schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
        if let Some(name) = schema["$ref"].as_str() {
            let name = name.trim_start_matches("#/components/schemas/");
            schema = &doc["components"]["schemas"][name];
        }
        assert!(
            schema["properties"]["items"].is_object()
                && schema["properties"]["nextCursor"].is_object(),
            "{path}: {schema}"
        );
    }
}
