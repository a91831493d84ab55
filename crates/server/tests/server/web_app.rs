//! The built web app is served at `/`: files with their content types and
//! caching, the app's index for client routes, never a file outside the
//! folder, and the API's JSON 404s untouched. Without the folder, `/` is the
//! landing page saying how to build the app.

use crate::common;

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vtp_store::testing::TempDir;

const INDEX: &str = "<!doctype html><title>VTP app</title><div id=app></div>";

/// A fake build: index, one hashed asset, a file beside the folder that must
/// stay unreachable.
fn fake_build() -> (TempDir, std::path::PathBuf) {
    let outer = TempDir::new("vtp-web-test").expect("temp dir");
    std::fs::write(outer.path().join("secret.txt"), "outside").unwrap();
    let dist = outer.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), INDEX).unwrap();
    std::fs::write(dist.join("assets/app-AB12CD.js"), "console.log(1)").unwrap();
    std::fs::write(dist.join("assets/app-AB12CD.css"), "body{}").unwrap();
    (outer, dist)
}

/// A request sent byte for byte (clients normalise `..` away before sending).
async fn raw_get(s: &TestServer, target: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test]
async fn the_built_app_is_served_with_types_caching_and_fallback() {
    let (_outer, dist) = fake_build();
    let s = TestServer::start_with(|args| args.web_dir = dist.clone()).await;

    let root = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(root.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(root.headers()["cache-control"], "no-cache");
    assert_eq!(root.text().await.unwrap(), INDEX);

    let js = s
        .http
        .get(s.url("/assets/app-AB12CD.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let css = s
        .http
        .get(s.url("/assets/app-AB12CD.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Client routes get the app; missing files do not.
    for route in ["/rooms/physics-101", "/account", "/admin/users"] {
        let r = s.http.get(s.url(route)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{route}");
        assert_eq!(r.text().await.unwrap(), INDEX, "{route}");
    }
    let (status, body) = s.get("/assets/missing-123.js", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    // The server's own paths keep their JSON 404s.
    for path in [
        "/api/v1/nothing",
        "/api",
        "/sfu/v1/x",
        "/health/x",
        "/metrics/x",
    ] {
        let (status, body) = s.get(path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    // Socket.IO answers its own path (a bad handshake here), never with the app.
    let sio = s.http.get(s.url("/socket.io/x")).send().await.unwrap();
    assert!(sio.status().is_client_error(), "{}", sio.status());
    assert_ne!(sio.text().await.unwrap(), INDEX);
    // And the real ones still work.
    assert_eq!(s.get("/health", None).await.0, StatusCode::OK);

    // Nothing outside the folder, however the path is spelt.
    for target in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ] {
        let (status, text) = raw_get(&s, target).await;
        assert!(!text.contains("outside"), "{target}: {text}");
        assert!(
            status == 404 || (status == 200 && text.contains("VTP app")),
            "{target}: {status}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn files_answer_conditional_range_and_head_requests_but_never_leave_the_folder() {
    let (outer, dist) = fake_build();
    std::fs::write(dist.join(".env"), "hidden").unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), dist.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outer.path(), dist.join("up")).unwrap();
    let s = TestServer::start_with(|args| args.web_dir = dist.clone()).await;

    // The index is no-cache: revalidating it costs a 304, not the file;
    // a client route is the index too.
    for path in ["/", "/rooms/x"] {
        let first = s.http.get(s.url(path)).send().await.unwrap();
        let again = s
            .http
            .get(s.url(path))
            .header("if-modified-since", &first.headers()["last-modified"])
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["cache-control"], "no-cache", "{path}");
        assert!(again.text().await.unwrap().is_empty(), "{path}");
    }

    let part = s
        .http
        .get(s.url("/assets/app-AB12CD.js"))
        .header("range", "bytes=0-6")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["x-content-type-options"], "nosniff");
    assert_eq!(part.text().await.unwrap(), "console");

    let head = s
        .http
        .head(s.url("/assets/app-AB12CD.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "14");
    assert!(head.text().await.unwrap().is_empty());

    // Hidden files and links out of the folder are missing files.
    for path in ["/.env", "/link.txt", "/up/secret.txt"] {
        let (status, text) = raw_get(&s, path).await;
        assert_eq!(status, 404, "{path}: {text}");
        assert!(
            !text.contains("outside") && !text.contains("hidden"),
            "{path}"
        );
    }
    // A directory is a route of the app.
    let (status, text) = raw_get(&s, "/assets").await;
    assert_eq!(status, 200);
    assert!(text.contains("VTP app"), "{text}");
    let (status, body) = s
        .post("/assets/app-AB12CD.js", None, serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    s.stop().await;
}

#[tokio::test]
async fn without_a_build_the_landing_page_says_how_to_build_it() {
    let empty = TempDir::new("vtp-web-none").expect("temp dir");
    let s = TestServer::start_with(|args| args.web_dir = empty.path().join("dist")).await;
    let root = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    let text = root.text().await.unwrap();
    assert!(text.contains("VTP is running"), "{text}");
    assert!(text.contains("web app is not built"), "{text}");
    assert!(text.contains("npm run build"), "{text}");
    // It runs under the CSP like every page: no inline style or script
    // (nor has the app's own page template).
    assert_inline_free(&text);
    assert_inline_free(include_str!("../../../../web/src/index.html"));
    let (status, body) = s.get("/rooms/x", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    s.stop().await;
}

/// Every kind of answer: the app, a client route, an asset, the API (a
/// success and an error), its docs, the probes, Socket.IO, a 404.
const EVERY_KIND: &[&str] = &[
    "/",
    "/rooms/some-room",
    "/assets/app-AB12CD.js",
    "/api/v1/openapi.json",
    "/api/v1/users/me",
    "/api/docs",
    "/api/docs.js",
    "/api/docs.css",
    "/health",
    "/socket.io/?EIO=3&transport=polling",
    "/no-such-file.txt",
];

#[tokio::test]
async fn every_answer_carries_the_browser_hardening_headers() {
    let (_outer, dist) = fake_build();
    let s = TestServer::start_with(|args| args.web_dir = dist.clone()).await;
    for path in EVERY_KIND {
        let answer = s.http.get(s.url(path)).send().await.unwrap();
        let h = answer.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let permissions = h["permissions-policy"].to_str().unwrap();
        for allowed in [
            "camera=(self)",
            "microphone=(self)",
            "display-capture=(self)",
        ] {
            assert!(permissions.contains(allowed), "{path}: {permissions}");
        }
        // HSTS only over HTTPS (tests/tls.rs).
        assert!(!h.contains_key("strict-transport-security"), "{path}");
    }

    // The server's own pages run under that policy: no inline script or style.
    let docs = s.http.get(s.url("/api/docs")).send().await.unwrap();
    assert_inline_free(&docs.text().await.unwrap());
    let js = s.http.get(s.url("/api/docs.js")).send().await.unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().await.unwrap().contains("openapi.json"));
}

/// No `<script>` without `src`, no `<style>`, no `style=` or `on…=` attributes.
fn assert_inline_free(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!lower.contains("<style"), "inline style");
    assert!(!lower.contains(" style="), "style attribute");
    assert!(
        !lower.contains(" onload=") && !lower.contains(" onclick="),
        "handler attribute"
    );
}
