//! User administration over HTTP.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use vtp_store::Role;

#[tokio::test]
async fn admins_manage_users_and_the_last_admin_is_kept() {
    let s = TestServer::start().await;
    let (admin_id, admin) = s.user("root@example.org", Role::Admin).await;
    let (sid, student) = s.user("stu@example.org", Role::Student).await;
    for i in 0..12 {
        s.post("/api/v1/auth/register", None, json!({ "email": format!("p{i:02}@example.org"), "password": "plum tiger orbit 41", "displayName": format!("Pupil {i}") })).await;
    }

    let (_, page) = s.get("/api/v1/users?perPage=5&page=3", Some(&admin)).await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(14), 4)
    );
    let (_, found) = s.get("/api/v1/users?q=PUPIL%201", Some(&admin)).await;
    assert_eq!(found["total"], 3, "Pupil 1, 10, 11: {found}");
    let (_, admins) = s.get("/api/v1/users?role=admin", Some(&admin)).await;
    assert_eq!(admins["items"][0]["id"], admin_id.as_str());

    // Users see and rename themselves, but cannot raise their own role.
    let (status, me) = s.get(&format!("/api/v1/users/{sid}"), Some(&student)).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("stu@example.org"))
    );
    let (status, renamed) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&student),
            Some(json!({ "displayName": "Stu" })),
        )
        .await;
    assert_eq!(
        (status, renamed["displayName"].as_str()),
        (StatusCode::OK, Some("Stu"))
    );
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&student),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Admin grants instructor: the student can now create rooms with the same token.
    let (status, promoted) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&admin),
            Some(json!({ "role": "instructor" })),
        )
        .await;
    assert_eq!(
        (status, promoted["role"].as_str()),
        (StatusCode::OK, Some("instructor"))
    );
    let (status, _) = s
        .post("/api/v1/rooms", Some(&student), json!({ "title": "Mine" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The only admin cannot demote, disable or delete themselves.
    for (method, body) in [
        (Method::PATCH, Some(json!({ "role": "student" }))),
        (Method::PATCH, Some(json!({ "disabled": true }))),
        (Method::DELETE, None),
    ] {
        let (status, err) = s
            .call(
                method,
                &format!("/api/v1/users/{admin_id}"),
                Some(&admin),
                body,
            )
            .await;
        assert_eq!(
            (status, code(&err)),
            (StatusCode::CONFLICT, "conflict"),
            "{err}"
        );
    }
    // With a second admin, the first may step down.
    s.call(
        Method::PATCH,
        &format!("/api/v1/users/{sid}"),
        Some(&admin),
        Some(json!({ "role": "admin" })),
    )
    .await;
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            Some(json!({ "role": "instructor" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/api/v1/users", Some(&admin)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the stored role decides, not the token's"
    );

    let (status, err) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{sid}"),
            Some(&student),
            Some(json!({ "role": "overlord" })),
        )
        .await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let (status, _) = s
        .get(
            &format!("/api/v1/users/{}", uuid::Uuid::new_v4()),
            Some(&student),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
