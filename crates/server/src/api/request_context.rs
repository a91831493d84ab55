//! Every request's id and client address, set by one layer: the id comes
//! from the caller's `X-Request-Id` when it is well formed (at most
//! [`MAX_REQUEST_ID_CHARS`] of `A–Z a–z 0–9 . _ : -`), else a new one; it
//! is echoed in the answer's `X-Request-Id` and is a field (`request_id`)
//! of every log line the request causes, as is the caller's `user_id` once
//! [`super::caller::AuthUser`] knows it. Handlers take [`RequestContext`]
//! for the audit log's address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::client_addr::client_ip;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// What the layer learnt about a request.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    /// The client's address (through trusted proxies), if known.
    pub address: Option<IpAddr>,
    span: tracing::Span,
}

impl RequestContext {
    /// Adds the signed-in user to the request's log lines.
    pub fn record_user(&self, user_id: uuid::Uuid) {
        self.span
            .record("user_id", tracing::field::display(user_id));
    }

    /// The address as the audit log writes it.
    pub fn address_text(&self) -> String {
        self.address.map(|a| a.to_string()).unwrap_or_default()
    }
}

fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The layer (`axum::middleware::from_fn_with_state`).
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| well_formed(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            client_ip(
                &state.policy.trust_forwarded_for,
                c.0.ip(),
                request.headers(),
            )
        });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        user_id = tracing::field::Empty
    );
    request.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        address,
        span: span.clone(),
    });
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext {
                request_id: String::new(),
                address: None,
                span: tracing::Span::none(),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_plain_ids_are_taken() {
        assert!(well_formed("abc-123_x.y:z"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed("a\nb"));
        assert!(!well_formed(&"a".repeat(MAX_REQUEST_ID_CHARS + 1)));
        assert!(well_formed(&"a".repeat(MAX_REQUEST_ID_CHARS)));
    }
}
