//! The browser app: files of the built `web/` folder (`--web-dir`) served at
//! `/`, with the app's `index.html` for client-side routes (`/rooms/…`).
//!
//! The folder is looked up at each request, so building the app while the
//! server runs is enough. Without it, `/` keeps the small landing page plus a
//! line on how to build the app. Paths of the API and the other machine
//! endpoints never fall back to the app: they keep their JSON 404.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

/// Prefixes that belong to the server, never to the app.
const RESERVED: &[&str] = &[
    "/api",
    "/socket.io",
    "/sfu",
    "/health",
    "/ready",
    "/metrics",
];

/// Esbuild names these with a content hash: they never change under one name.
const HASHED_DIR: &str = "assets";

/// Answers every request no route took: a file of the app, the app's
/// `index.html` for client routes, or the JSON 404 of the API.
pub async fn serve(web_dir: &Path, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if is_reserved(path) {
        return ApiError::not_found(format!("no route for {path}")).into_response();
    }
    let index = web_dir.join("index.html");
    if !tokio::fs::try_exists(&index).await.unwrap_or(false) {
        return if path == "/" && (method == Method::GET || method == Method::HEAD) {
            landing_page(web_dir).into_response()
        } else {
            ApiError::not_found(format!("no route for {path}")).into_response()
        };
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {path}"),
        )
        .into_response();
    }
    let Some(relative) = safe_relative(path) else {
        return ApiError::not_found("no such file").into_response();
    };
    if !relative.as_os_str().is_empty() {
        let file = web_dir.join(&relative);
        if let Some(response) = file_response(web_dir, &file, &method).await {
            return response;
        }
        // A missing file is a 404; anything else is a route of the app.
        if looks_like_file(path) {
            return ApiError::not_found(format!("no file {path}")).into_response();
        }
    }
    file_response(web_dir, &index, &method)
        .await
        .unwrap_or_else(|| ApiError::not_found("the web app has no index.html").into_response())
}

fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The request path as a relative file path, or `None` when a segment could
/// leave the folder or name a hidden file. Only plain names are accepted
/// (the app's files are all made of them), so encoded tricks such as
/// `%2e%2e` never reach the file system.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain || segment.starts_with('.') {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

fn looks_like_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// The file with its content type and caching headers, or `None` when it is
/// not a regular file inside `root` (symbolic links out of it included).
async fn file_response(root: &Path, file: &Path, method: &Method) -> Option<Response> {
    let canonical = tokio::fs::canonicalize(file).await.ok()?;
    let root = tokio::fs::canonicalize(root).await.ok()?;
    if !canonical.starts_with(&root) || !tokio::fs::metadata(&canonical).await.ok()?.is_file() {
        return None;
    }
    let bytes = tokio::fs::read(&canonical).await.ok()?;
    let hashed = canonical
        .strip_prefix(&root)
        .ok()
        .is_some_and(|r| r.starts_with(HASHED_DIR));
    let cache = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let length = bytes.len();
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&canonical)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The server's own page, with a note that the app is not built.
fn landing_page(web_dir: &Path) -> (StatusCode, Html<String>) {
    let note = format!(
        "<p><strong>The web app is not built</strong> (no <code>{}</code>). Build it with \
         <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, or start VTP with \
         <code>scripts/run</code>, which does both.</p>",
        escape(&web_dir.join("index.html").display().to_string())
    );
    let page = include_str!("index.html").replace("</body>", &format!("{note}\n</body>"));
    (StatusCode::OK, Html(page))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_are_files() {
        assert_eq!(
            safe_relative("/assets/app-X1.js"),
            Some(PathBuf::from("assets/app-X1.js"))
        );
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/.env",
            "/a\\b",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn machine_paths_are_reserved() {
        for p in ["/api", "/api/v1/x", "/socket.io/", "/health", "/metrics"] {
            assert!(is_reserved(p), "{p}");
        }
        for p in ["/", "/apiary", "/rooms/x", "/healthy"] {
            assert!(!is_reserved(p), "{p}");
        }
    }
}
