//! Cross-origin requests: with no `--cors-origins` a page of another origin
//! gets no `Access-Control-Allow-Origin`, so a browser keeps its script from
//! reading the API with a user's token; with a list, only the origins on it
//! are allowed, and never with credentials for `*`.

use crate::common;

use common::*;
use reqwest::Method;

const SCHOOL: &str = "https://school.example";
const STRANGER: &str = "https://stranger.example";

/// The `Access-Control-Allow-Origin` of a preflight for a signed-in GET.
async fn preflight(s: &TestServer, origin: &str) -> Option<String> {
    let resp = s
        .http
        .request(Method::OPTIONS, s.url("/api/v1/auth/me"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

/// The same for a plain GET carrying an `Origin`.
async fn simple_get(s: &TestServer, origin: &str) -> Option<String> {
    let resp = s
        .http
        .get(s.url("/health"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn other_origins_are_not_allowed_by_default() {
    let s = TestServer::start().await;
    assert_eq!(preflight(&s, STRANGER).await, None);
    assert_eq!(simple_get(&s, STRANGER).await, None);
}

#[tokio::test]
async fn only_listed_origins_are_allowed() {
    let s = TestServer::start_with(|a| a.cors_origins = vec![SCHOOL.to_string()]).await;
    assert_eq!(preflight(&s, SCHOOL).await.as_deref(), Some(SCHOOL));
    assert_eq!(simple_get(&s, SCHOOL).await.as_deref(), Some(SCHOOL));
    assert_eq!(preflight(&s, STRANGER).await, None);
    assert_eq!(simple_get(&s, STRANGER).await, None);
}
