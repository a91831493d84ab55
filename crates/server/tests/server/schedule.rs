//! Scheduled sessions over HTTP, the `.ics` feed and its subscribe links
//! (issue 17).

use crate::common;

use chrono::{Datelike, Duration, NaiveDateTime, Utc};
use common::*;
use icalendar::{CalendarDateTime, Component, DatePerhapsTime};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vtp_store::Role;

fn weekday_code(day: chrono::Weekday) -> &'static str {
    ["mo", "tu", "we", "th", "fr", "sa", "su"][day.num_days_from_monday() as usize]
}

/// A weekly schedule starting a week ago at 10:00 in Berlin, on that day.
fn weekly(extra: Value) -> (Value, NaiveDateTime) {
    let start = (Utc::now() - Duration::days(7))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut recurrence = json!({ "kind": "weekly", "weekdays": [weekday_code(start.weekday())] });
    for (k, v) in extra.as_object().unwrap() {
        recurrence[k] = v.clone();
    }
    (
        json!({
            "timeZone": "Europe/Berlin",
            "entries": [{ "start": start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                          "durationMinutes": 90, "recurrence": recurrence }]
        }),
        start,
    )
}

async fn put(s: &TestServer, room: &str, token: &str, body: Value) -> (StatusCode, Value) {
    s.call(
        Method::PUT,
        &format!("/api/v1/rooms/{room}/schedule"),
        Some(token),
        Some(body),
    )
    .await
}

async fn feed(s: &TestServer, url: &str) -> (StatusCode, String, String) {
    let resp = reqwest::get(s.url(url)).await.unwrap();
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

#[tokio::test]
async fn hosts_schedule_a_weekly_class_and_members_see_the_next_session() {
    let s = TestServer::start().await;
    let (_, teacher) = s.user("teacher@example.org", Role::Instructor).await;
    let (_, student) = s.user("stu@example.org", Role::Student).await;
    let (_, outsider) = s.user("out@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({ "access": "members" })).await;
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&teacher),
            json!({ "email": "stu@example.org" }),
        )
        .await;
    assert!(status.is_success(), "{status}");

    let (body, start) = weekly(json!({}));
    // Students may see but not set it; outsiders do not see the room.
    assert_eq!(
        put(&s, &room, &student, body.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&s, &room, &outsider, body.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, dto) = put(&s, &room, &teacher, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{dto}");
    assert_eq!(dto["schedule"], body);

    // The next session is a week after the first, at 10:00 Berlin time.
    let (_, seen) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&student))
        .await;
    let next = seen["nextSession"]["start"].as_str().expect("next session");
    let next = chrono::DateTime::parse_from_rfc3339(next)
        .unwrap()
        .with_timezone(&Utc);
    let berlin = next.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(berlin.naive_local(), start + Duration::days(7), "{seen}");
    let end = seen["nextSession"]["end"].as_str().unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(end)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(end - next, Duration::minutes(90));
    // And the lobby's list carries it.
    let (_, mine) = s.get("/api/v1/rooms?mine=true", Some(&student)).await;
    assert_eq!(
        mine["items"][0]["nextSession"], seen["nextSession"],
        "{mine}"
    );

    // A series that is over has no next session.
    let (over, _) = weekly(json!({ "count": 1 }));
    let (status, dto) = put(&s, &room, &teacher, over).await;
    assert_eq!(status, StatusCode::OK, "{dto}");
    assert!(dto.get("nextSession").is_none(), "{dto}");

    // Bad input: a clear 422, nothing changed.
    let bad = [
        json!({ "timeZone": "Mars/Olympus", "entries": [] }),
        weekly(json!({ "count": 10_000 })).0,
        weekly(json!({ "count": 3, "until": "2099-01-01" })).0,
        json!({ "timeZone": "UTC", "entries": [{ "start": "2026-12-09T10:00:00", "durationMinutes": 0, "recurrence": { "kind": "none" } }] }),
        json!({ "timeZone": "UTC", "entries": vec![json!({ "start": "2026-12-09T10:00:00", "durationMinutes": 60, "recurrence": { "kind": "none" } }); 9] }),
        json!({ "timeZone": "UTC", "entries": [], "extra": 1 }),
    ];
    for body in bad {
        let (status, err) = put(&s, &room, &teacher, body.clone()).await;
        // 400 for a body of the wrong shape, 422 for a value out of bounds.
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{body} → {status} {err}"
        );
        assert!(err["error"]["message"].is_string(), "{err}");
    }
    let (_, still) = s
        .get(&format!("/api/v1/rooms/{room}"), Some(&teacher))
        .await;
    assert_eq!(still["schedule"]["entries"][0]["recurrence"]["count"], 1);

    // Removing it.
    let (status, dto) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/schedule"),
            Some(&teacher),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(dto.get("schedule").is_none(), "{dto}");
}

#[tokio::test]
async fn the_ics_feed_is_rfc5545_and_its_link_is_signed_revocable_and_bound_to_access() {
    const SECRET: &str = "a test signing key of at least 32 bytes";
    let s = TestServer::start_with(|a| {
        a.jwt_secret = Some(vtp_server::config::Secret::new(SECRET));
    })
    .await;
    let (_, teacher) = s.user("teacher@example.org", Role::Instructor).await;
    let (student_id, student) = s.user("stu@example.org", Role::Student).await;
    let (_, outsider) = s.user("out@example.org", Role::Student).await;
    let room = s.room(&teacher, json!({ "access": "members" })).await;
    s.post(
        &format!("/api/v1/rooms/{room}/members"),
        Some(&teacher),
        json!({ "email": "stu@example.org" }),
    )
    .await;
    let (body, start) = weekly(json!({ "until": "2027-06-30" }));
    assert_eq!(put(&s, &room, &teacher, body).await.0, StatusCode::OK);

    let link_path = format!("/api/v1/rooms/{room}/calendar-link");
    assert_eq!(
        s.post(&link_path, Some(&outsider), json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, link) = s.post(&link_path, Some(&student), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    // The same link until it is revoked.
    assert_eq!(
        s.post(&link_path, Some(&student), json!({})).await.1["url"],
        url.as_str()
    );

    // Fetched without any header, as a calendar app does.
    let (status, kind, text) = feed(&s, &url).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(kind.starts_with("text/calendar"), "{kind}");
    assert!(text.contains("\r\n"), "CRLF lines");
    let calendar: icalendar::Calendar = text.parse().expect("parses as iCalendar");
    let events: Vec<_> = calendar.events().collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events[0];
    assert_eq!(event.get_uid(), Some(format!("{room}-0@vtp").as_str()));
    assert_eq!(event.get_summary(), Some("Test room"));
    assert_eq!(
        event.get_start(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone {
            date_time: start,
            tzid: "Europe/Berlin".into()
        }))
    );
    assert_eq!(event.property_value("DURATION"), Some("PT90M"));
    // UNTIL: the end of 30 June 2027 in Berlin (CEST, UTC+2), in UTC.
    assert_eq!(
        event.property_value("RRULE"),
        Some(
            format!(
                "FREQ=WEEKLY;BYDAY={};UNTIL=20270630T215959Z",
                weekday_code(start.weekday()).to_uppercase()
            )
            .as_str()
        )
    );
    assert!(event.property_value("DTSTAMP").is_some());

    // Forged: another signature, another feed id, another user.
    let forged = url.replace("sig=", "sig=A");
    assert_eq!(feed(&s, &forged).await.0, StatusCode::FORBIDDEN);
    let other_user = url.replace(
        &format!("u={student_id}"),
        &format!("u={}", uuid::Uuid::new_v4()),
    );
    assert_eq!(feed(&s, &other_user).await.0, StatusCode::FORBIDDEN);
    let no_sig = url.split("&sig=").next().unwrap().to_string();
    assert_eq!(feed(&s, &no_sig).await.0, StatusCode::FORBIDDEN);
    // Expired: a link whose expiry is past (signed as the server would).
    let feed_id = url.split('/').nth(4).unwrap().to_string();
    let past = Utc::now().timestamp() - 10;
    let links = vtp_server::auth::links::FileLinks::new(SECRET.as_bytes(), Default::default());
    let sig = links.signature(
        &format!("calendar/{feed_id}"),
        student_id.parse().unwrap(),
        0,
        past,
    );
    let expired = format!(
        "/api/v1/calendar-feeds/{feed_id}/calendar.ics?u={student_id}&exp={past}&sig={sig}"
    );
    let (status, _, text) = feed(&s, &expired).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("expired"), "{text}");

    // Leaving the class voids it (404, as for any room one may not see).
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{student_id}"),
            Some(&teacher),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(feed(&s, &url).await.0, StatusCode::NOT_FOUND);
    s.post(
        &format!("/api/v1/rooms/{room}/members"),
        Some(&teacher),
        json!({ "email": "stu@example.org" }),
    )
    .await;
    assert_eq!(feed(&s, &url).await.0, StatusCode::OK);

    // Revoked: refused, and the next link is a new one that works.
    let (status, _) = s
        .call(Method::DELETE, &link_path, Some(&student), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, text) = feed(&s, &url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("revoked"), "{text}");
    let (_, again) = s.post(&link_path, Some(&student), json!({})).await;
    assert_ne!(again["url"], url.as_str());
    assert_eq!(
        feed(&s, again["url"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}
