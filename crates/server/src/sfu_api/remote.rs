//! [`SfuControl`] over HTTP: what an `api` node uses when its media runs on
//! an `sfu` node. Every call is one request to `/sfu/v1`; the SFU's
//! refusals come back as the same [`SfuError`]s the local driver gives,
//! and an SFU that cannot be reached is `unavailable`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use vtp_sfu::engine::{
    ConsumerInfo, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary, TransportInfo,
};
use vtp_sfu::rtp::RtpCapabilities;
use vtp_sfu_driver::{
    Consume, CreateTransport, DriverEvent, PreferredLayers, Produce, SfuControl, SfuError,
    SfuErrorCode, SfuHealth, SfuResult, Tap,
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

    fn room_path(room_id: &str, rest: &str) -> String {
        format!("/sfu/v1/rooms/{}{rest}", segment(room_id))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> SfuResult<T> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.secret.expose())
            .timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                SfuError::new(
                    SfuErrorCode::Internal,
                    format!("the SFU answered {path} with unexpected JSON: {e}"),
                )
            });
        }
        Err(refusal(status, &bytes))
    }

    async fn act(&self, path: &str) -> SfuResult<()> {
        let _: Value = self.call(Method::POST, path, Some(json!({}))).await?;
        Ok(())
    }
}

/// A path segment with everything but unreserved characters escaped.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn body(request: &impl Serialize) -> SfuResult<Value> {
    serde_json::to_value(request).map_err(|e| SfuError::new(SfuErrorCode::Internal, e.to_string()))
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerBody<'a> {
    peer_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectBody {
    dtls_parameters: Value,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithCapabilities {
    rtp_capabilities: RtpCapabilities,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithIceParameters {
    ice_parameters: IceParameters,
}

#[async_trait]
impl SfuControl for RemoteSfu {
    fn describe(&self) -> String {
        format!("remote: SFU node at {}", self.base)
    }

    async fn health(&self) -> SfuResult<SfuHealth> {
        self.call(Method::GET, "/sfu/v1/health", None).await
    }

    async fn rooms(&self) -> SfuResult<Vec<RouterSummary>> {
        self.call(Method::GET, "/sfu/v1/rooms", None).await
    }

    async fn room(&self, room_id: &str) -> SfuResult<RouterSnapshot> {
        self.call(Method::GET, &Self::room_path(room_id, ""), None)
            .await
    }

    async fn open_room(&self, room_id: &str) -> SfuResult<RtpCapabilities> {
        let opened: WithCapabilities = self
            .call(Method::PUT, &Self::room_path(room_id, ""), None)
            .await?;
        Ok(opened.rtp_capabilities)
    }

    async fn close_room(&self, room_id: &str) -> SfuResult<()> {
        let _: Value = self
            .call(Method::DELETE, &Self::room_path(room_id, ""), None)
            .await?;
        Ok(())
    }

    async fn add_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<RtpCapabilities> {
        let added: WithCapabilities = self
            .call(
                Method::POST,
                &Self::room_path(room_id, "/peers"),
                Some(body(&PeerBody { peer_id })?),
            )
            .await?;
        Ok(added.rtp_capabilities)
    }

    async fn remove_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<()> {
        self.act(&Self::room_path(
            room_id,
            &format!("/peers/{}/leave", segment(peer_id)),
        ))
        .await
    }

    async fn create_transport(
        &self,
        room_id: &str,
        request: CreateTransport,
    ) -> SfuResult<TransportInfo> {
        self.call(
            Method::POST,
            &Self::room_path(room_id, "/transports"),
            Some(body(&request)?),
        )
        .await
    }

    async fn connect_transport(
        &self,
        room_id: &str,
        transport_id: &str,
        dtls_parameters: Value,
    ) -> SfuResult<()> {
        let path = Self::room_path(
            room_id,
            &format!("/transports/{}/connect", segment(transport_id)),
        );
        let _: Value = self
            .call(
                Method::POST,
                &path,
                Some(body(&ConnectBody { dtls_parameters })?),
            )
            .await?;
        Ok(())
    }

    async fn restart_ice(&self, room_id: &str, transport_id: &str) -> SfuResult<IceParameters> {
        let path = Self::room_path(
            room_id,
            &format!("/transports/{}/restart-ice", segment(transport_id)),
        );
        let answer: WithIceParameters = self.call(Method::POST, &path, Some(json!({}))).await?;
        Ok(answer.ice_parameters)
    }

    async fn close_transport(&self, room_id: &str, transport_id: &str) -> SfuResult<()> {
        self.act(&Self::room_path(
            room_id,
            &format!("/transports/{}/close", segment(transport_id)),
        ))
        .await
    }

    async fn produce(&self, room_id: &str, request: Produce) -> SfuResult<ProducerInfo> {
        self.call(
            Method::POST,
            &Self::room_path(room_id, "/producers"),
            Some(body(&request)?),
        )
        .await
    }

    async fn set_producer_paused(
        &self,
        room_id: &str,
        producer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        let verb = if paused { "pause" } else { "resume" };
        self.act(&Self::room_path(
            room_id,
            &format!("/producers/{}/{verb}", segment(producer_id)),
        ))
        .await
    }

    async fn close_producer(&self, room_id: &str, producer_id: &str) -> SfuResult<()> {
        self.act(&Self::room_path(
            room_id,
            &format!("/producers/{}/close", segment(producer_id)),
        ))
        .await
    }

    async fn consume(&self, room_id: &str, request: Consume) -> SfuResult<ConsumerInfo> {
        self.call(
            Method::POST,
            &Self::room_path(room_id, "/consumers"),
            Some(body(&request)?),
        )
        .await
    }

    async fn set_consumer_paused(
        &self,
        room_id: &str,
        consumer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        let verb = if paused { "pause" } else { "resume" };
        self.act(&Self::room_path(
            room_id,
            &format!("/consumers/{}/{verb}", segment(consumer_id)),
        ))
        .await
    }

    async fn set_consumer_preferred_layers(
        &self,
        room_id: &str,
        consumer_id: &str,
        layers: PreferredLayers,
    ) -> SfuResult<()> {
        let _: Value = self
            .call(
                Method::POST,
                &Self::room_path(
                    room_id,
                    &format!("/consumers/{}/layers", segment(consumer_id)),
                ),
                Some(body(&layers)?),
            )
            .await?;
        Ok(())
    }

    async fn close_consumer(&self, room_id: &str, consumer_id: &str) -> SfuResult<()> {
        self.act(&Self::room_path(
            room_id,
            &format!("/consumers/{}/close", segment(consumer_id)),
        ))
        .await
    }

    async fn open_tap(&self, _room_id: &str, _producer_id: &str) -> SfuResult<Tap> {
        Err(SfuError::unavailable(
            "recording needs the SFU in this process: an --role api node cannot record yet",
        ))
    }

    async fn close_tap(&self, _room_id: &str, tap_id: &str) -> SfuResult<()> {
        Err(SfuError::new(
            SfuErrorCode::NotFound,
            format!("unknown tap {tap_id:?}"),
        ))
    }

    async fn request_tap_keyframe(&self, _room_id: &str, tap_id: &str) -> SfuResult<()> {
        Err(SfuError::new(
            SfuErrorCode::NotFound,
            format!("unknown tap {tap_id:?}"),
        ))
    }

    /// Follows `GET /sfu/v1/events`, opening it again when it breaks, until
    /// the receiver is dropped. Events sent while it was broken are lost
    /// (logged): what they told is re-learnt when the API node next asks.
    fn events(&self) -> UnboundedReceiver<DriverEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let url = format!("{}/sfu/v1/events", self.base);
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
