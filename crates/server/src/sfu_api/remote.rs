//! [`SfuControl`] over HTTP: what an `api` node uses when its media runs on
//! an `sfu` node. Every call is one request to `/sfu/v1`, the REST form of
//! its [`SfuRequest`] (the control API's table); the SFU's refusals come
//! back as the same [`SfuError`]s the local driver gives, and an SFU that
//! cannot be reached is `unavailable`. Taps are left to the trait's
//! answer: a remote SFU cannot hand packets over.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use vtp_sfu_driver::control::{REST_PREFIX, RestMethod};
use vtp_sfu_driver::{
    DriverEvent, SfuControl, SfuError, SfuErrorCode, SfuRequest, SfuResponse, SfuResult,
};

use crate::config::Secret;

/// How long one control call may take before the SFU counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before the event stream is opened again after it broke.
const EVENTS_RETRY: Duration = Duration::from_secs(1);

/// A client of one SFU node's control API.
pub struct RemoteSfu {
    base: String,
    secret: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteSfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSfu")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RemoteSfu {
    /// A client of the SFU node at `base` (e.g. `http://10.0.0.5:8080`).
    pub fn new(base: &str, secret: Secret) -> Result<RemoteSfu, SfuError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SfuError::bad_request(format!(
                "the SFU URL {base:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SfuError::new(SfuErrorCode::Internal, e.to_string()))?;
        Ok(RemoteSfu { base, secret, http })
    }
}

fn unreachable(err: reqwest::Error) -> SfuError {
    SfuError::unavailable(format!("the SFU node cannot be reached: {err}"))
}

/// The SFU's `{ error: { code, message } }`, or a description of the status.
fn refusal(status: StatusCode, body: &[u8]) -> SfuError {
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_owned(),
                e.get("message")?.as_str()?.to_owned(),
            ))
        });
    let by_status = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => SfuErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => SfuErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => SfuErrorCode::Forbidden,
        StatusCode::NOT_FOUND => SfuErrorCode::NotFound,
        StatusCode::CONFLICT => SfuErrorCode::Conflict,
        StatusCode::TOO_MANY_REQUESTS => SfuErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => SfuErrorCode::Unavailable,
        _ => SfuErrorCode::Internal,
    };
    match parsed {
        Some((code, message)) => {
            let code = serde_json::from_value(Value::String(code)).unwrap_or(by_status);
            SfuError::new(code, message)
        }
        None => SfuError::new(by_status, format!("the SFU answered {status}")),
    }
}

#[async_trait]
impl SfuControl for RemoteSfu {
    fn describe(&self) -> String {
        format!("remote: SFU node at {}", self.base)
    }

    /// The request's REST form (the control API's table), sent to the node.
    async fn call(&self, request: SfuRequest) -> SfuResult<SfuResponse> {
        let call = request.to_rest()?;
        let method = match call.route.method {
            RestMethod::Get => Method::GET,
            RestMethod::Put => Method::PUT,
            RestMethod::Post => Method::POST,
            RestMethod::Delete => Method::DELETE,
        };
        let mut http = self
            .http
            .request(method, format!("{}{REST_PREFIX}{}", self.base, call.path))
            .bearer_auth(self.secret.expose())
            .timeout(CALL_TIMEOUT);
        if let Some(body) = call.body {
            http = http
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = http.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(refusal(status, &bytes));
        }
        call.route.decode(&bytes).map_err(|e| {
            SfuError::new(
                SfuErrorCode::Internal,
                format!(
                    "the SFU answered {} with unexpected JSON: {e}",
                    call.route.op
                ),
            )
        })
    }

    /// Follows `GET /sfu/v1/events`, opening it again when it breaks, until
    /// the receiver is dropped. Events sent while it was broken are lost
    /// (logged): what they told is re-learnt when the API node next asks.
    fn events(&self) -> UnboundedReceiver<DriverEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let url = format!("{}{REST_PREFIX}/events", self.base);
        let secret = self.secret.clone();
        let http = self.http.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                if let Err(e) = follow_events(&http, &url, &secret, &tx).await {
                    tracing::warn!(error = %e, "sfu event stream broke; reopening");
                }
                tokio::time::sleep(EVENTS_RETRY).await;
            }
        });
        rx
    }

    async fn shutdown(&self) {}
}

/// Reads one event stream until it ends; each `data:` line is one event.
async fn follow_events(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    tx: &UnboundedSender<DriverEvent>,
) -> Result<(), String> {
    let mut response = http
        .get(url)
        .bearer_auth(secret.expose())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the SFU answered {}", response.status()));
    }
    let mut pending: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            () = tx.closed() => return Ok(()),
            chunk = response.chunk() => {
                let Some(chunk) = chunk.map_err(|e| e.to_string())? else {
                    return Err("the stream ended".into());
                };
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let Some(data) = line.strip_prefix(b"data:") else {
                        continue;
                    };
                    match serde_json::from_slice::<DriverEvent>(data.trim_ascii()) {
                        Ok(event) => {
                            if tx.send(event).is_err() {
                                return Ok(());
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable sfu event"),
                    }
                }
            }
        }
    }
}
