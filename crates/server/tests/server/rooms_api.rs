//! Rooms over HTTP: create, find, change, delete, with validation.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use vtp_store::Role;

#[tokio::test]
async fn rooms_lifecycle() {
    let s = TestServer::start().await;
    let (owner_id, owner) = s.user("olga@example.org", Role::Instructor).await;
    let (_, other) = s.user("omar@example.org", Role::Instructor).await;
    let (_, student) = s.user("sue@example.org", Role::Student).await;

    let (status, room) = s
        .post("/api/v1/rooms", Some(&owner), json!({ "title": "  Physics 101 ", "slug": "physics-101", "settings": { "maxParticipants": 30, "access": "signed_in" } }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["id"], "physics-101");
    assert_eq!(room["title"], "Physics 101");
    assert_eq!(room["ownerId"], owner_id.as_str());
    assert_eq!(room["status"], "open");
    assert_eq!(
        room["settings"],
        json!({ "maxParticipants": 30, "allowStudentVideo": true, "allowStudentScreen": false, "autoRecord": false, "recordingAccess": "participants", "access": "signed_in", "waitingRoom": "off" })
    );

    let (status, taken) = s
        .post(
            "/api/v1/rooms",
            Some(&other),
            json!({ "title": "Again", "slug": "physics-101" }),
        )
        .await;
    assert_eq!((status, code(&taken)), (StatusCode::CONFLICT, "conflict"));

    let (status, generated) = s
        .post(
            "/api/v1/rooms",
            Some(&other),
            json!({ "title": "Chemistry", "settings": { "access": "signed_in" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let chem_id = generated["id"].as_str().unwrap().to_string();
    assert!(
        uuid::Uuid::parse_str(&chem_id).is_ok(),
        "default id is a UUID: {chem_id}"
    );
    for i in 0..3 {
        s.post(
            "/api/v1/rooms",
            Some(&owner),
            json!({ "title": format!("Extra {i}"), "settings": { "access": "signed_in" } }),
        )
        .await;
    }

    // Everyone signed in can list and filter the rooms open to them.
    let (_, page) = s
        .get("/api/v1/rooms?perPage=2&page=2", Some(&student))
        .await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len(),
            page["page"].as_u64()
        ),
        (Some(5), 2, Some(2))
    );
    let (_, mine) = s
        .get(&format!("/api/v1/rooms?ownerId={owner_id}"), Some(&student))
        .await;
    assert_eq!(mine["total"], 4);
    let (_, found) = s.get("/api/v1/rooms?q=chem", Some(&student)).await;
    assert_eq!(found["items"][0]["id"], chem_id.as_str());

    // Partial settings change keeps the other settings.
    let (status, patched) = s
        .call(
            Method::PATCH,
            "/api/v1/rooms/physics-101",
            Some(&owner),
            Some(json!({ "settings": { "autoRecord": true }, "title": "Physics I" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (
            patched["settings"]["maxParticipants"].as_u64(),
            patched["settings"]["autoRecord"].as_bool()
        ),
        (Some(30), Some(true))
    );
    assert_eq!(patched["title"], "Physics I");

    let (status, err) = s
        .call(
            Method::PATCH,
            "/api/v1/rooms/physics-101",
            Some(&owner),
            Some(json!({ "status": "live" })),
        )
        .await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (_, closed) = s
        .call(
            Method::PATCH,
            "/api/v1/rooms/physics-101",
            Some(&owner),
            Some(json!({ "status": "closed" })),
        )
        .await;
    assert_eq!(closed["status"], "closed");
    let (_, closed_list) = s.get("/api/v1/rooms?status=closed", Some(&student)).await;
    assert_eq!(closed_list["total"], 1);

    // An owner cannot be deleted while owning rooms.
    let (_, admin) = s.user("ada@example.org", Role::Admin).await;
    let (status, err) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{owner_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::CONFLICT, "conflict"),
        "{err}"
    );

    let (status, _) = s
        .call(
            Method::DELETE,
            "/api/v1/rooms/physics-101",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s.get("/api/v1/rooms/physics-101", Some(&owner)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
