//! A VTP publisher and subscriber as the load runs use them: a Socket.IO
//! connection that joins a room, one transport and its str0m peer, with the
//! join time and the moment the consumers were resumed (for time to first
//! frame).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vtp_client::{
    AudioOptions, IceTransport, LocalProducer, MediaPeer, RemoteConsumer, SocketIoClient,
    VideoOptions,
};

use crate::spawn::post;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection joined into a room, with its `join-room` latency.
pub struct Joined {
    pub socket: SocketIoClient,
    pub join_ms: f64,
    pub router_caps: Value,
}

/// Connects with `token` and joins `room`.
pub async fn join(base: &str, token: &str, room: &str) -> anyhow::Result<Joined> {
    let socket = SocketIoClient::connect(base, Some(token)).await?;
    let started = Instant::now();
    let joined = socket
        .request("join-room", json!({ "roomId": room }))
        .await?;
    Ok(Joined {
        socket,
        join_ms: started.elapsed().as_secs_f64() * 1000.0,
        router_caps: joined["routerRtpCapabilities"].clone(),
    })
}

async fn create_transport(
    socket: &SocketIoClient,
    room: &str,
    direction: &str,
) -> anyhow::Result<Value> {
    Ok(socket
        .request(
            "create-transport",
            json!({ "roomId": room, "direction": direction }),
        )
        .await?)
}

pub struct Publisher {
    pub joined: Joined,
    /// Held for its transport: dropping the peer closes it.
    _peer: MediaPeer,
    pub producers: Vec<LocalProducer>,
    /// The server's ids of `producers`, in the same order.
    pub producer_ids: Vec<Value>,
}

/// Joins `room` and produces the given tracks (sources not started).
pub async fn publish(
    base: &str,
    token: &str,
    room: &str,
    video: Option<VideoOptions>,
    audio: Option<AudioOptions>,
    ice: IceTransport,
) -> anyhow::Result<Publisher> {
    let joined = join(base, token, room).await?;
    let socket = &joined.socket;
    let peer = MediaPeer::new().with_ice_transport(ice);
    let answer = create_transport(socket, room, "send").await?;
    let transport = peer.create_send_transport(&answer).await?;
    socket.request("connect-transport", json!({ "roomId": room, "transportId": answer["id"], "dtlsParameters": transport.dtls_parameters() })).await?;
    let mut producers = Vec::new();
    if let Some(v) = video {
        producers.push(transport.produce_video(v)?);
    }
    if let Some(a) = audio {
        producers.push(transport.produce_audio(a)?);
    }
    let mut producer_ids = Vec::new();
    for p in &producers {
        let produced = socket.request("produce", json!({ "roomId": room, "transportId": answer["id"], "kind": p.kind().as_str(), "rtpParameters": p.rtp_parameters() })).await?;
        producer_ids.push(produced["id"].clone());
    }
    transport.wait_connected(CONNECT_TIMEOUT).await?;
    Ok(Publisher {
        joined,
        _peer: peer,
        producers,
        producer_ids,
    })
}

pub struct Subscriber {
    pub joined: Joined,
    /// Held for its transport: dropping the peer closes it.
    _peer: MediaPeer,
    pub consumers: Vec<RemoteConsumer>,
    /// When the last `resume-consumer` was acknowledged.
    pub resumed_at: Instant,
}

/// Joins `room` and consumes every producer of `producers` with `peer`.
pub async fn subscribe(
    base: &str,
    token: &str,
    room: &str,
    producers: &[Value],
    peer: MediaPeer,
) -> anyhow::Result<Subscriber> {
    let joined = join(base, token, room).await?;
    let socket = &joined.socket;
    let answer = create_transport(socket, room, "recv").await?;
    let transport = peer
        .create_recv_transport(&answer, &joined.router_caps)
        .await?;
    let caps = MediaPeer::rtp_capabilities(&joined.router_caps)?;
    let mut consumers = Vec::new();
    let mut ids = Vec::new();
    for producer in producers {
        let c = socket.request("consume", json!({ "roomId": room, "transportId": answer["id"], "producerId": producer, "rtpCapabilities": caps })).await?;
        ids.push(c["id"].clone());
        consumers.push(transport.consume(&c)?);
    }
    socket.request("connect-transport", json!({ "roomId": room, "transportId": answer["id"], "dtlsParameters": transport.dtls_parameters() })).await?;
    transport.wait_connected(CONNECT_TIMEOUT).await?;
    for id in ids {
        socket
            .request(
                "resume-consumer",
                json!({ "roomId": room, "consumerId": id }),
            )
            .await?;
    }
    if consumers.is_empty() {
        bail!("nothing to consume");
    }
    Ok(Subscriber {
        joined,
        _peer: peer,
        consumers,
        resumed_at: Instant::now(),
    })
}

/// Signs in and returns the access token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let login = post(
        http,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({ "email": email, "password": password }),
    )
    .await?;
    Ok(login["accessToken"]
        .as_str()
        .context("no access token")?
        .to_string())
}

/// Registers a student and returns the access token.
pub async fn register(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let reg = post(
        http,
        format!("{base}/api/v1/auth/register"),
        None,
        json!({ "email": email, "password": "student-Tq7-vB2k-9wZr", "displayName": "Load" }),
    )
    .await?;
    Ok(reg["accessToken"].as_str().context("token")?.to_string())
}

/// Creates a room for `capacity` participants and returns its id.
pub async fn create_room(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    title: &str,
    capacity: usize,
) -> anyhow::Result<String> {
    let room = post(
        http,
        format!("{base}/api/v1/rooms"),
        Some(token),
        // The load's students are no members of the class: the room is
        // open to anyone signed in.
        json!({ "title": title, "settings": { "maxParticipants": capacity, "access": "signed_in" } }),
    )
    .await?;
    Ok(room["id"].as_str().context("room id")?.to_string())
}
