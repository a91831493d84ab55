//! A client of Janus's VideoRoom plugin over Janus's HTTP API, with the
//! media peer's SDP path (`media::sdp`), so the benchmark can run the same
//! workload against Janus and VTP and count what arrives the same way.
//!
//! Janus's HTTP API: `POST /janus` creates a session, `POST
//! /janus/{session}` attaches a plugin handle, `POST
//! /janus/{session}/{handle}` sends a plugin message. A synchronous plugin
//! request (`create` a room) is answered in the POST's response; an
//! asynchronous one (`join`, `publish`, `start`) is answered `ack` there and
//! its result comes later as an event on the session's long poll (`GET
//! /janus/{session}?maxev=N`), tagged with the request's transaction. One
//! task per [`JanusSession`] runs the long poll (which also keeps the
//! session alive) and hands each event to the request that waits for its
//! transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::oneshot;

use crate::media::{
    AudioOptions, Direction, LocalProducer, MediaError, MediaPeer, MediaTransport, RemoteConsumer,
    VideoOptions,
};

/// How long a request waits for its answer or event.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Events taken per long poll.
const EVENTS_PER_POLL: u32 = 32;
/// How long a subscriber waits for its feed to become subscribable.
const FEED_WAIT: Duration = Duration::from_secs(5);
/// VideoRoom's error code for an unknown (or not yet published) feed.
const NO_SUCH_FEED: i64 = 428;
/// Requests waiting for their events at once (per session).
const MAX_WAITING: usize = 4096;

/// Why a Janus call failed.
#[derive(Debug, Error)]
pub enum JanusError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Janus answered `error`, or the plugin answered with `error_code`.
    #[error("janus refused {request}: {code} {reason}")]
    Refused {
        request: String,
        code: i64,
        reason: String,
    },
    /// An answer without the fields the API documents.
    #[error("unexpected answer to {request}: {answer}")]
    Unexpected { request: String, answer: String },
    #[error("timed out waiting for the answer to {0}")]
    Timeout(String),
    #[error("too many requests waiting for events")]
    Busy,
    #[error("the session's long poll ended")]
    SessionClosed,
    #[error(transparent)]
    Media(#[from] MediaError),
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// A Janus session with its long-poll task; dropping it stops the task
/// (Janus then times the session out).
pub struct JanusSession {
    http: reqwest::Client,
    url: String,
    next_transaction: AtomicU64,
    waiters: Waiters,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for JanusSession {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// A handle of the VideoRoom plugin in a session.
pub struct JanusHandle {
    session: Arc<JanusSession>,
    url: String,
}

/// The result of an asynchronous plugin request: the plugin's data and the
/// JSEP (SDP) that came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEvent {
    pub data: Value,
    pub jsep: Option<Value>,
}

impl JanusSession {
    /// Creates a session on the Janus at `base` (e.g. `http://127.0.0.1:8088/janus`).
    pub async fn create(base: &str) -> Result<Arc<JanusSession>, JanusError> {
        let http = reqwest::Client::new();
        let base = base.trim_end_matches('/').to_string();
        let answer = post(
            &http,
            &base,
            json!({ "janus": "create", "transaction": "c" }),
        )
        .await?;
        let id = success_id(&answer, "create")?;
        let url = format!("{base}/{id}");
        let waiters: Waiters = Arc::default();
        let poller = tokio::spawn(long_poll(http.clone(), url.clone(), waiters.clone()));
        Ok(Arc::new(JanusSession {
            http,
            url,
            next_transaction: AtomicU64::new(1),
            waiters,
            poller,
        }))
    }

    /// Attaches a VideoRoom handle.
    pub async fn attach_videoroom(self: &Arc<Self>) -> Result<JanusHandle, JanusError> {
        let answer = post(
            &self.http,
            &self.url,
            json!({ "janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self.transaction() }),
        )
        .await?;
        let id = success_id(&answer, "attach")?;
        Ok(JanusHandle {
            session: self.clone(),
            url: format!("{}/{id}", self.url),
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed))
    }
}

impl JanusHandle {
    /// A synchronous plugin request (`create`, `list`, …): the plugin's data.
    pub async fn request(&self, body: Value) -> Result<Value, JanusError> {
        let name = request_name(&body);
        let msg =
            json!({ "janus": "message", "body": body, "transaction": self.session.transaction() });
        let answer = post(&self.session.http, &self.url, msg).await?;
        plugin_event(&answer, &name).map(|e| e.data)
    }

    /// An asynchronous plugin request, with an optional JSEP; waits for its
    /// event.
    pub async fn message(
        &self,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<PluginEvent, JanusError> {
        let name = request_name(&body);
        let transaction = self.session.transaction();
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self
                .session
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if waiters.len() >= MAX_WAITING {
                return Err(JanusError::Busy);
            }
            waiters.insert(transaction.clone(), tx);
        }
        let mut msg = json!({ "janus": "message", "body": body, "transaction": transaction });
        if let Some(jsep) = jsep {
            msg["jsep"] = jsep;
        }
        let result = async {
            let answer = post(&self.session.http, &self.url, msg).await?;
            match answer["janus"].as_str() {
                Some("ack") => {}
                // Janus may answer at once when the plugin is quick.
                Some("event") | Some("success") => return plugin_event(&answer, &name),
                _ => return Err(refusal(&answer, &name)),
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
                Ok(Ok(event)) => plugin_event(&event, &name),
                Ok(Err(_)) => Err(JanusError::SessionClosed),
                Err(_) => Err(JanusError::Timeout(name.clone())),
            }
        }
        .await;
        self.session
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&transaction);
        result
    }

    /// Tells Janus that this handle has no more ICE candidates (they are all
    /// in the SDP).
    pub async fn trickle_completed(&self) -> Result<(), JanusError> {
        let msg = json!({ "janus": "trickle", "candidate": { "completed": true }, "transaction": self.session.transaction() });
        let answer = post(&self.session.http, &self.url, msg).await?;
        match answer["janus"].as_str() {
            Some("ack") | Some("success") => Ok(()),
            _ => Err(refusal(&answer, "trickle")),
        }
    }
}

/// Creates a VideoRoom room for one publisher (VP8, Opus) and returns its id.
pub async fn create_room(handle: &JanusHandle, room: u64) -> Result<u64, JanusError> {
    let data = handle
        .request(json!({
            "request": "create", "room": room, "publishers": 1, "is_private": true,
            "videocodec": "vp8", "audiocodec": "opus", "bitrate": 0,
        }))
        .await?;
    data["room"].as_u64().ok_or_else(|| JanusError::Unexpected {
        request: "create".into(),
        answer: data.to_string(),
    })
}

/// A publisher in a Janus room: its feed id, transport and producers.
pub struct JanusPublisher {
    pub handle: JanusHandle,
    pub feed: u64,
    pub transport: MediaTransport,
    pub video: Option<LocalProducer>,
    pub audio: Option<LocalProducer>,
}

/// Joins `room` as a publisher and publishes synthetic VP8 and/or Opus
/// through `peer` (sources not started yet).
pub async fn publish(
    session: &Arc<JanusSession>,
    peer: &MediaPeer,
    room: u64,
    video: Option<VideoOptions>,
    audio: Option<AudioOptions>,
) -> Result<JanusPublisher, JanusError> {
    let handle = session.attach_videoroom().await?;
    let joined = handle
        .message(
            json!({ "request": "join", "ptype": "publisher", "room": room, "display": "load" }),
            None,
        )
        .await?;
    let feed = joined.data["id"]
        .as_u64()
        .ok_or_else(|| JanusError::Unexpected {
            request: "join".into(),
            answer: joined.data.to_string(),
        })?;
    let transport = peer
        .create_sdp_transport(&format!("janus-pub-{feed}"), Direction::Send)
        .await?;
    let with_video = video.is_some();
    let with_audio = audio.is_some();
    let (offer, pending) = transport.sdp_offer(video, audio)?;
    let published = handle
        .message(
            json!({ "request": "publish", "audio": with_audio, "video": with_video }),
            Some(json!({ "type": "offer", "sdp": offer })),
        )
        .await?;
    let answer = jsep_sdp(&published, "answer", "publish")?;
    handle.trickle_completed().await?;
    let mut producers = transport.accept_sdp_answer(pending, answer)?.into_iter();
    let video = with_video.then(|| producers.next()).flatten();
    let audio = with_audio.then(|| producers.next()).flatten();
    Ok(JanusPublisher {
        handle,
        feed,
        transport,
        video,
        audio,
    })
}

/// A subscriber of one feed: its transport and one consumer per stream.
pub struct JanusSubscriber {
    pub handle: JanusHandle,
    pub transport: MediaTransport,
    pub consumers: Vec<RemoteConsumer>,
}

/// Subscribes to every stream of `feed` in `room` through `peer`.
pub async fn subscribe(
    session: &Arc<JanusSession>,
    peer: &MediaPeer,
    room: u64,
    feed: u64,
) -> Result<JanusSubscriber, JanusError> {
    let handle = session.attach_videoroom().await?;
    let join = json!({ "request": "join", "ptype": "subscriber", "room": room, "streams": [{ "feed": feed }] });
    // A feed can be subscribed once Janus has its PeerConnection up, which
    // may be a moment after the publisher's side is up.
    let deadline = tokio::time::Instant::now() + FEED_WAIT;
    let attached = loop {
        match handle.message(join.clone(), None).await {
            Err(JanusError::Refused {
                code: NO_SUCH_FEED, ..
            }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other?,
        }
    };
    let offer = jsep_sdp(&attached, "offer", "join as subscriber")?;
    let transport = peer
        .create_sdp_transport(&format!("janus-sub-{feed}"), Direction::Recv)
        .await?;
    let (answer, consumers) = transport.accept_sdp_offer(offer, &feed.to_string())?;
    handle
        .message(
            json!({ "request": "start" }),
            Some(json!({ "type": "answer", "sdp": answer })),
        )
        .await?;
    handle.trickle_completed().await?;
    Ok(JanusSubscriber {
        handle,
        transport,
        consumers,
    })
}

// ----------------------------------------------------------------------
// JSON of the API (pure, unit-tested).

fn request_name(body: &Value) -> String {
    body["request"].as_str().unwrap_or("message").to_string()
}

/// The `data.id` of a `success` answer (session or handle id).
fn success_id(answer: &Value, request: &str) -> Result<u64, JanusError> {
    if answer["janus"] != "success" {
        return Err(refusal(answer, request));
    }
    answer["data"]["id"]
        .as_u64()
        .ok_or_else(|| JanusError::Unexpected {
            request: request.into(),
            answer: answer.to_string(),
        })
}

/// The plugin's data and JSEP of an `event` or `success` answer; a plugin
/// `error_code` or a Janus `error` is a refusal.
fn plugin_event(answer: &Value, request: &str) -> Result<PluginEvent, JanusError> {
    let data = &answer["plugindata"]["data"];
    if answer["janus"] == "error" || data.get("error_code").is_some() || data.is_null() {
        return Err(refusal(answer, request));
    }
    Ok(PluginEvent {
        data: data.clone(),
        jsep: answer.get("jsep").cloned(),
    })
}

fn refusal(answer: &Value, request: &str) -> JanusError {
    let plugin = &answer["plugindata"]["data"];
    let (code, reason) = if let Some(code) = plugin["error_code"].as_i64() {
        (code, plugin["error"].as_str().unwrap_or_default())
    } else if let Some(code) = answer["error"]["code"].as_i64() {
        (code, answer["error"]["reason"].as_str().unwrap_or_default())
    } else {
        return JanusError::Unexpected {
            request: request.into(),
            answer: answer.to_string(),
        };
    };
    JanusError::Refused {
        request: request.into(),
        code,
        reason: reason.to_string(),
    }
}

/// The SDP of an event's JSEP of the given type.
fn jsep_sdp<'a>(event: &'a PluginEvent, kind: &str, request: &str) -> Result<&'a str, JanusError> {
    event
        .jsep
        .as_ref()
        .filter(|j| j["type"] == kind)
        .and_then(|j| j["sdp"].as_str())
        .ok_or_else(|| JanusError::Unexpected {
            request: request.into(),
            answer: format!("no {kind} in {:?}", event.jsep),
        })
}

/// The events of one long-poll answer: Janus gives one object, or an array
/// when `maxev` > 1.
fn poll_events(answer: Value) -> Vec<Value> {
    match answer {
        Value::Array(events) => events,
        Value::Null => Vec::new(),
        event => vec![event],
    }
}

// ----------------------------------------------------------------------
// I/O.

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<Value, JanusError> {
    let answer = http
        .post(url)
        .timeout(REQUEST_TIMEOUT)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    Ok(answer)
}

async fn long_poll(http: reqwest::Client, url: String, waiters: Waiters) {
    let poll_url = format!("{url}?maxev={EVENTS_PER_POLL}");
    loop {
        // Janus answers a keepalive after 30 s without events.
        let answer = http
            .get(&poll_url)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let events = match answer {
            Ok(r) => match r.json::<Value>().await {
                Ok(v) => poll_events(v),
                Err(e) => {
                    tracing::debug!(error = %e, "janus long poll: bad answer");
                    Vec::new()
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "janus long poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for event in events {
            if event["janus"] == "error" && event["error"]["code"] == 458 {
                // No such session: nothing more will come.
                return;
            }
            let Some(transaction) = event["transaction"].as_str() else {
                continue;
            };
            let waiter = waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(transaction);
            if let Some(waiter) = waiter {
                let _ = waiter.send(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_ids_are_read_and_errors_refused() {
        let ok = json!({ "janus": "success", "transaction": "c", "data": { "id": 42 } });
        assert_eq!(success_id(&ok, "create").ok(), Some(42));
        let err =
            json!({ "janus": "error", "error": { "code": 458, "reason": "No such session" } });
        match success_id(&err, "attach") {
            Err(JanusError::Refused { code, reason, .. }) => {
                assert_eq!(code, 458);
                assert_eq!(reason, "No such session");
            }
            other => panic!("{other:?}"),
        }
        let odd = json!({ "janus": "success", "data": {} });
        assert!(matches!(
            success_id(&odd, "create"),
            Err(JanusError::Unexpected { .. })
        ));
    }

    #[test]
    fn plugin_events_carry_data_and_jsep_and_plugin_errors_are_refusals() {
        let ev = json!({
            "janus": "event", "sender": 7, "transaction": "t3",
            "plugindata": { "plugin": "janus.plugin.videoroom", "data": { "videoroom": "attached", "room": 1 } },
            "jsep": { "type": "offer", "sdp": "v=0\r\n" }
        });
        let e = plugin_event(&ev, "join").unwrap();
        assert_eq!(e.data["videoroom"], "attached");
        assert_eq!(jsep_sdp(&e, "offer", "join").ok(), Some("v=0\r\n"));
        assert!(jsep_sdp(&e, "answer", "join").is_err());
        let refused = json!({
            "janus": "event",
            "plugindata": { "data": { "videoroom": "event", "error_code": 426, "error": "No such room" } }
        });
        match plugin_event(&refused, "join") {
            Err(JanusError::Refused {
                code,
                reason,
                request,
            }) => {
                assert_eq!(
                    (code, reason.as_str(), request.as_str()),
                    (426, "No such room", "join")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(plugin_event(&json!({ "janus": "ack" }), "join").is_err());
    }

    #[test]
    fn long_poll_answers_are_one_event_or_many() {
        assert_eq!(poll_events(json!({ "janus": "keepalive" })).len(), 1);
        assert_eq!(poll_events(json!([{ "a": 1 }, { "b": 2 }])).len(), 2);
        assert!(poll_events(Value::Null).is_empty());
    }
}
