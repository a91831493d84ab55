//! The plain-HTTP listener of an HTTPS server (`--http-redirect-bind`):
//! every request gets a 308 to the same path on `https://`.
//!
//! The host comes from the request's `Host` header, so one server answers
//! for all its names; it is checked to be a plain host name or IP address
//! first, so the redirect can never point at a URL the client did not
//! already ask for (no header injection, no user-info, no other path).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::acme::Challenges;

/// The redirect listener's app: everything redirects to HTTPS on
/// `https_port`, except the ACME HTTP-01 challenges in `challenges`.
pub fn router(https_port: u16, challenges: Option<Arc<Challenges>>) -> Router {
    let mut router = Router::new();
    if let Some(challenges) = challenges {
        router = router.route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |Path(token): Path<String>| async move {
                match challenges.get(&token) {
                    Some(key_authorization) => (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        key_authorization,
                    )
                        .into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        );
    }
    router
        .fallback(redirect)
        .with_state(RedirectTo { https_port })
}

#[derive(Clone, Copy)]
struct RedirectTo {
    https_port: u16,
}

async fn redirect(State(to): State<RedirectTo>, headers: HeaderMap, uri: Uri) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_of);
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            "this address serves HTTPS only; a valid Host header is needed to redirect you\n",
        )
            .into_response();
    };
    let location = https_url(&host, to.https_port, &uri);
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

/// `https://host[:port]/path?query` for a host [`host_of`] accepted.
pub fn https_url(host: &str, https_port: u16, uri: &Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // An origin-form target always starts with `/`; anything else (`*`)
    // goes to the root.
    let path = if path.starts_with('/') { path } else { "/" };
    if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    }
}

/// The host of a `Host` header value (`name`, `name:port`, `1.2.3.4:80`,
/// `[::1]:80`), lower-cased and without the port; `None` unless it is a
/// DNS name (letters, digits, hyphens; labels of 1–63, 253 at most) or an
/// IP address.
pub fn host_of(value: &str) -> Option<String> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (name, port) = match value.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (value, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return None;
        }
        (name.to_ascii_lowercase(), port)
    };
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return None;
    }
    Some(host)
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked() {
        assert_eq!(
            host_of("Class.Example.org").as_deref(),
            Some("class.example.org")
        );
        assert_eq!(
            host_of("class.example.org:80").as_deref(),
            Some("class.example.org")
        );
        assert_eq!(
            host_of("class.example.org.").as_deref(),
            Some("class.example.org")
        );
        assert_eq!(host_of("192.0.2.5:8080").as_deref(), Some("192.0.2.5"));
        assert_eq!(host_of("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(host_of("[FE80::1]").as_deref(), Some("[fe80::1]"));
        for bad in [
            "",
            ":80",
            "evil.org/x",
            "a@evil.org",
            "evil.org:80:80",
            "evil.org:",
            "evil.org:99999",
            "evil.org:8o",
            "-a.org",
            "a..org",
            "[::1",
            "[not-ip]:80",
            "[::1]x",
            "a b",
            "évil.org",
        ] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
        assert_eq!(host_of(&"a".repeat(64)), None);
    }

    #[test]
    fn urls_keep_path_and_query_and_name_the_https_port() {
        let uri: Uri = "/room/7?x=1".parse().unwrap();
        assert_eq!(
            https_url("class.example.org", 443, &uri),
            "https://class.example.org/room/7?x=1"
        );
        assert_eq!(
            https_url("[::1]", 8443, &uri),
            "https://[::1]:8443/room/7?x=1"
        );
        let absolute: Uri = "http://other.example/a?b".parse().unwrap();
        assert_eq!(https_url("h", 443, &absolute), "https://h/a?b");
        assert_eq!(https_url("h", 443, &"*".parse().unwrap()), "https://h/");
    }
}
