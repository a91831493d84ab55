//! Publishing and subscribing with the Rust client over Socket.IO and
//! real UDP (or ICE-TCP), for the media tests.

use std::time::Duration;

use serde_json::{Value, json};
use vtp_client::{
    AudioOptions, IceTransport, LocalProducer, MediaPeer, MediaTransport, RemoteConsumer,
    SocketIoClient, VideoOptions,
};

use super::{TestServer, join};

const CONNECT: Duration = Duration::from_secs(5);

pub struct Publisher {
    pub socket: SocketIoClient,
    pub peer: MediaPeer,
    pub transport: MediaTransport,
    pub transport_id: Value,
    pub video: LocalProducer,
    pub audio: LocalProducer,
    pub ids: (Value, Value),
}

pub async fn publish(s: &TestServer, token: &str, room: &str) -> Publisher {
    publish_at(&s.url(""), token, room).await
}

/// [`publish`] to the server at `base` (e.g. a spawned `vtp` process).
pub async fn publish_at(base: &str, token: &str, room: &str) -> Publisher {
    publish_video_at(base, token, room, VideoOptions::default()).await
}

/// [`publish_at`] with video of these options (e.g. simulcast).
pub async fn publish_video_at(
    base: &str,
    token: &str,
    room: &str,
    video_options: VideoOptions,
) -> Publisher {
    publish_with(base, token, room, video_options, IceTransport::Udp).await
}

/// [`publish`] with the transport reaching the SFU over `ice`.
pub async fn publish_over(s: &TestServer, token: &str, room: &str, ice: IceTransport) -> Publisher {
    publish_with(&s.url(""), token, room, VideoOptions::default(), ice).await
}

async fn publish_with(
    base: &str,
    token: &str,
    room: &str,
    video_options: VideoOptions,
    ice: IceTransport,
) -> Publisher {
    let socket = SocketIoClient::connect(base, Some(token))
        .await
        .expect("socket connects");
    join(&socket, room).await;
    let peer = MediaPeer::new().with_ice_transport(ice);
    let answer = socket
        .request(
            "create-transport",
            json!({ "roomId": room, "direction": "send" }),
        )
        .await
        .unwrap();
    let transport = peer.create_send_transport(&answer).await.unwrap();
    socket
        .request("connect-transport", json!({ "roomId": room, "transportId": answer["id"], "dtlsParameters": transport.dtls_parameters() }))
        .await
        .unwrap();
    let video = transport.produce_video(video_options).unwrap();
    let audio = transport.produce_audio(AudioOptions::default()).unwrap();
    let mut ids = Vec::new();
    for (kind, producer) in [("video", &video), ("audio", &audio)] {
        let produced = socket
            .request("produce", json!({ "roomId": room, "transportId": answer["id"], "kind": kind, "rtpParameters": producer.rtp_parameters() }))
            .await
            .unwrap();
        ids.push(produced["id"].clone());
    }
    transport
        .wait_connected(CONNECT)
        .await
        .expect("publisher connects");
    Publisher {
        socket,
        peer,
        transport,
        transport_id: answer["id"].clone(),
        video,
        audio,
        ids: (ids[0].clone(), ids[1].clone()),
    }
}

pub struct Subscriber {
    pub socket: SocketIoClient,
    pub peer: MediaPeer,
    pub transport: MediaTransport,
    pub transport_id: Value,
    pub video: RemoteConsumer,
    pub audio: RemoteConsumer,
    pub video_id: Value,
}

pub async fn subscribe(
    s: &TestServer,
    token: &str,
    room: &str,
    producers: &(Value, Value),
) -> Subscriber {
    subscribe_over(s, token, room, producers, IceTransport::Udp).await
}

/// [`subscribe`] with the transport reaching the SFU over `ice`.
pub async fn subscribe_over(
    s: &TestServer,
    token: &str,
    room: &str,
    producers: &(Value, Value),
    ice: IceTransport,
) -> Subscriber {
    let socket = s.socket(token).await;
    let joined = join(&socket, room).await;
    let router_caps = joined["routerRtpCapabilities"].clone();
    let peer = MediaPeer::new().with_ice_transport(ice);
    let answer = socket
        .request(
            "create-transport",
            json!({ "roomId": room, "direction": "recv" }),
        )
        .await
        .unwrap();
    let transport = peer
        .create_recv_transport(&answer, &router_caps)
        .await
        .unwrap();
    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let mut consumers = Vec::new();
    let mut video_id = Value::Null;
    for producer in [&producers.0, &producers.1] {
        let c = socket
            .request("consume", json!({ "roomId": room, "transportId": answer["id"], "producerId": producer, "rtpCapabilities": caps }))
            .await
            .unwrap();
        if c["kind"] == "video" {
            video_id = c["id"].clone();
        }
        consumers.push((c["id"].clone(), transport.consume(&c).unwrap()));
    }
    socket
        .request("connect-transport", json!({ "roomId": room, "transportId": answer["id"], "dtlsParameters": transport.dtls_parameters() }))
        .await
        .unwrap();
    transport
        .wait_connected(CONNECT)
        .await
        .expect("subscriber connects");
    for (id, _) in &consumers {
        socket
            .request(
                "resume-consumer",
                json!({ "roomId": room, "consumerId": id }),
            )
            .await
            .unwrap();
    }
    let audio = consumers.pop().unwrap().1;
    let video = consumers.pop().unwrap().1;
    Subscriber {
        socket,
        peer,
        transport,
        transport_id: answer["id"].clone(),
        video,
        audio,
        video_id,
    }
}

/// How long a layer change may take to be told (a keyframe must come
/// through, perhaps across two nodes, on a busy machine).
pub const LAYERS_WAIT: Duration = Duration::from_secs(10);

/// A teacher publishing simulcast video (already sending) in a new room,
/// and a student subscribed to it: `(room, publisher, subscriber)`.
pub async fn simulcast_call(s: &TestServer) -> (String, Publisher, Subscriber) {
    let (_, teacher) = s.user("t@example.org", vtp_store::Role::Instructor).await;
    let (_, ann) = s.user("ann@example.org", vtp_store::Role::Student).await;
    let room = s.room(&teacher, json!({})).await;
    let options = VideoOptions {
        simulcast: true,
        ..VideoOptions::default()
    };
    let a = publish_video_at(&s.url(""), &teacher, &room, options).await;
    a.video.start();
    let b = subscribe(s, &ann, &room, &a.ids).await;
    (room, a, b)
}

/// The subscriber's next `consumer-layers-changed`.
pub async fn layers_changed(b: &Subscriber, what: &str) -> Value {
    b.socket
        .next_event("consumer-layers-changed", LAYERS_WAIT)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// Asks for `spatial_layer` on the subscriber's video consumer.
pub async fn prefer_spatial(b: &Subscriber, room: &str, spatial_layer: u8) {
    b.socket
        .request(
            "set-preferred-layers",
            json!({ "roomId": room, "consumerId": b.video_id, "spatialLayer": spatial_layer }),
        )
        .await
        .unwrap();
}
