//! The browser app: files of the built `web/` folder (`--web-dir`) served at
//! `/`, with the app's `index.html` for client-side routes (`/rooms/…`).
//!
//! The folder is looked up at each request, so building the app while the
//! server runs is enough. Without it, `/` keeps the small landing page plus a
//! line on how to build the app. Paths of the API and the other machine
//! endpoints never fall back to the app: they keep their JSON 404.
//!
//! Files go out through tower-http's `ServeDir`: streamed, with
//! `Last-Modified` and `304 Not Modified` (what makes `no-cache` cheap),
//! byte ranges and `HEAD`. Around it, what `ServeDir` does not do: the
//! fallback to `index.html` for client routes (and a JSON 404 for a
//! missing file), caching by name (`assets/` hashed names immutable, the
//! rest `no-cache`), `nosniff`, `charset=utf-8` on text, JSON errors, and
//! stricter paths: only plain segments (no hidden files, no percent
//! escapes, which `ServeDir` would decode) and no symbolic link out of the
//! folder (which `ServeDir` would follow).
//!
//! Every answer of the server (the app, the API, its docs, signalling,
//! errors) also carries the browser hardening of [`security_headers`]: a
//! Content-Security-Policy that runs only the server's own script files
//! (the app, the docs page and the landing page have no inline script or
//! style), no framing, no referrer, and camera, microphone and screen
//! capture for the app's own origin only. HSTS is added over HTTPS by the
//! accept loop (`crate::serve`).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;

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

const INDEX: &str = "index.html";

/// The Content-Security-Policy of every answer. Scripts, styles, fonts and
/// images come from the server itself (esbuild's files, the favicon);
/// `data:`/`blob:` images and `blob:` media are what the app makes itself
/// (video tiles use `srcObject`, which CSP does not govern); `connect-src
/// 'self'` covers the API and the Socket.IO websocket of the same host;
/// nothing may frame the app, and forms and `<base>` stay on the origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; worker-src 'self' blob:; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the app may ask of the browser's devices: camera, microphone and
/// screen sharing for its own origin, nothing for anyone else.
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), display-capture=(self), \
    geolocation=(), payment=(), usb=()";

/// Adds the browser hardening headers to an answer (see the module doc).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    response
}

/// The API page (`/api/docs`) and the files it and the landing page use,
/// kept out of the pages so that the CSP needs no inline script or style.
pub fn docs_routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    use axum::routing::get;
    fn asset(content_type: &'static str, body: &'static str) -> Response {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    }
    axum::Router::new()
        .route(
            "/api/docs",
            get(|| async { Html(include_str!("docs.html")) }),
        )
        .route(
            "/api/docs.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("docs.js")) }),
        )
        .route(
            "/api/docs.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("docs.css")) }),
        )
}

/// Answers every request no route took: a file of the app, the app's
/// `index.html` for client routes, or the JSON 404 of the API.
pub async fn serve(web_dir: &Path, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path();
    if is_reserved(path) {
        return ApiError::not_found(format!("no route for {path}")).into_response();
    }
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    if !tokio::fs::try_exists(web_dir.join(INDEX))
        .await
        .unwrap_or(false)
    {
        return if path == "/" && get {
            landing_page(web_dir).into_response()
        } else {
            ApiError::not_found(format!("no route for {path}")).into_response()
        };
    }
    if !get {
        return ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on {path}", parts.method),
        )
        .into_response();
    }
    let Some(relative) = safe_relative(path) else {
        return ApiError::not_found("no such file").into_response();
    };
    if !relative.as_os_str().is_empty() {
        if let Some(response) = file(web_dir, &parts, &relative).await {
            return response;
        }
        // A missing file is a 404; anything else is a route of the app.
        if looks_like_file(path) {
            return ApiError::not_found(format!("no file {path}")).into_response();
        }
    }
    file(web_dir, &parts, Path::new(INDEX))
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

/// Whether `relative` exists inside `root` once symbolic links are resolved.
async fn stays_inside(root: &Path, relative: &Path) -> bool {
    match (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(root.join(relative)).await,
    ) {
        (Ok(root), Ok(file)) => file.starts_with(root),
        _ => false,
    }
}

/// `relative` (plain segments, see [`safe_relative`]) answered by
/// `ServeDir` with the request's method and headers (conditional and range
/// requests), plus the headers of the module doc. `None` when it is not a
/// file inside `root` (a directory, a link out of it) or cannot be read.
async fn file(root: &Path, parts: &Parts, relative: &Path) -> Option<Response> {
    if !stays_inside(root, relative).await {
        return None;
    }
    let mut target = String::new();
    for segment in relative.iter() {
        target.push('/');
        target.push_str(segment.to_str()?);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = target.parse::<Uri>().ok()?;
    *request.headers_mut() = parts.headers.clone();
    let served = ServeDir::new(root)
        .append_index_html_on_directories(false)
        .try_call(request)
        .await;
    let mut response = match served {
        Ok(response) if response.status() != StatusCode::NOT_FOUND => response.map(Body::new),
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(path = %relative.display(), error = %e, "web app file unreadable");
            return None;
        }
    };
    let hashed = relative.starts_with(HASHED_DIR);
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(with_charset) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .filter(|t| is_text(t) && !t.contains("charset"))
        .and_then(|t| HeaderValue::from_str(&format!("{t}; charset=utf-8")).ok())
    {
        headers.insert(header::CONTENT_TYPE, with_charset);
    }
    Some(response)
}

/// Types whose files esbuild writes in UTF-8 and that a browser would
/// otherwise decode by guess.
fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || matches!(
            content_type,
            "application/javascript" | "application/json" | "application/manifest+json"
        )
}

/// The server's own page, with a note that the app is not built.
fn landing_page(web_dir: &Path) -> (StatusCode, Html<String>) {
    let note = format!(
        "<p><strong>The web app is not built</strong> (no <code>{}</code>). Build it with \
         <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, or start VTP with \
         <code>scripts/run</code>, which does both.</p>",
        escape(&web_dir.join(INDEX).display().to_string())
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
