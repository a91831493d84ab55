//! The largest answers a room can give, built from the caps of
//! [`super::limits`] with the worst content each field allows, and measured
//! against the per-connection outbox (docs/protocol.md, *Limits*).

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;
use vtp_sfu::engine::{LayersSnapshot, StreamStats};
use vtp_store::{MAX_DISPLAY_NAME_CHARS, RoomRole, RoomStatus};

use super::limits::*;
use super::*;

/// `vtp-sio`'s outbox: more queued for one connection and it is closed.
const OUTBOX: usize = 1024 * 1024;
/// What every answer must stay under: five eighths of the outbox, so that
/// the notifications queued around it (384 KiB of them) still fit.
const BUDGET: usize = OUTBOX / 8 * 5;

/// A name of the most bytes a name may serialize to: 4-byte characters.
fn worst_name() -> String {
    "\u{1D11E}".repeat(MAX_DISPLAY_NAME_CHARS)
}

/// An `appData` of exactly the most bytes allowed.
fn worst_app_data() -> Value {
    let empty = serde_json::to_vec(&json!({ "source": "camera", "x": "" }))
        .unwrap()
        .len();
    let app_data = json!({ "source": "camera", "x": "a".repeat(APP_DATA_MAX_BYTES - empty) });
    assert!(limits::app_data(&app_data, vtp_sfu::rtp::MediaKind::Video).is_ok());
    app_data
}

fn producer(peer_id: &str) -> ProducerInfo {
    ProducerInfo {
        producer_id: Uuid::new_v4().to_string(),
        peer_id: peer_id.to_string(),
        kind: "video".into(),
        paused: false,
        app_data: worst_app_data(),
        source: Source::Camera,
    }
}

/// The most peers a room holds, the room's producers spread over them.
fn worst_peers() -> Vec<PeerView> {
    let mut producers_left = MAX_PRODUCERS_PER_ROOM;
    (0..MAX_PARTICIPANTS + MAX_EXTRA_HOSTS)
        .map(|_| {
            let peer_id = Uuid::new_v4().to_string();
            let n = producers_left.min(media::MAX_PRODUCERS_PER_PEER);
            producers_left -= n;
            PeerView {
                producers: (0..n).map(|_| producer(&peer_id)).collect(),
                peer_id,
                user_id: Uuid::new_v4(),
                display_name: worst_name(),
                role: RoomRole::Participant,
                hand_raised: false,
            }
        })
        .collect()
}

fn worst_stats() -> StreamStats {
    StreamStats {
        bitrate: u64::MAX,
        packets: u64::MAX,
        bytes: u64::MAX,
        packets_lost: u64::MAX,
        fraction_lost: 0.123_456_789_012_345_68,
        jitter_ms: -1.234_567_890_123_456_7e-300,
        rtt_ms: Some(-1.234_567_890_123_456_7e-300),
        nack_count: u64::MAX,
        pli_count: u64::MAX,
        fir_count: u64::MAX,
        score: 10,
    }
}

fn size(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).unwrap().len()
}

#[test]
fn the_largest_answers_fit_well_under_the_outbox() {
    let peers = worst_peers();
    let chat_message = ChatView {
        id: Uuid::new_v4(),
        peer_id: Uuid::new_v4().to_string(),
        user_id: Some(Uuid::new_v4()),
        display_name: worst_name(),
        // Quotes serialize to two bytes each.
        text: "\"".repeat(CHAT_MAX_BYTES),
        sent_at: Utc::now(),
    };
    let chat: Vec<ChatView> = vec![chat_message; 1000];

    let join = JoinOutcome {
        room_id: "r".repeat(64),
        title: worst_name(),
        peer_id: Uuid::new_v4().to_string(),
        role: RoomRole::Participant,
        router_rtp_capabilities: serde_json::to_value(vtp_sfu::rtp::router_rtp_capabilities())
            .unwrap(),
        peers: peers.clone(),
        chat: chat_page(&chat, CHAT_ON_JOIN_MESSAGES, CHAT_ON_JOIN_BYTES),
        chat_more: true,
        session_id: Uuid::new_v4(),
        resumed: false,
        recording: true,
        active_speaker: None,
        spotlight: Some(crate::rooms::SpotlightView {
            peer_id: Uuid::new_v4().to_string(),
            source: crate::rooms::SpotlightSource::Screen,
        }),
    };
    let history = ChatHistory {
        messages: chat_page(&chat, CHAT_PAGE_MESSAGES as usize, CHAT_PAGE_BYTES),
        more: true,
    };

    let stats = ProducerStatsView {
        score: 10,
        bitrate: u64::MAX,
        packets_lost: u64::MAX,
        fraction_lost: 0.123_456_789_012_345_68,
        jitter_ms: -1.234_567_890_123_456_7e-300,
        layers: (0..vtp_sfu::rtp::MAX_ENCODINGS)
            .map(|i| LayerStatsView {
                spatial_layer: i,
                rid: Some("r".repeat(vtp_sfu::rtp::MAX_RID_CHARS)),
                active: true,
                bitrate: u64::MAX,
                score: 10,
            })
            .collect(),
    };
    let producers: Vec<RoomProducer> = peers
        .iter()
        .flat_map(|p| p.producers.iter().cloned())
        .map(|info| RoomProducer {
            info,
            stats: Some(stats.clone()),
        })
        .collect();
    let layers = LayersSnapshot {
        spatial_layer: 2,
        temporal_layer: 2,
    };
    let consumers = (0..MAX_CONSUMERS_PER_PEER)
        .map(|_| ConsumerView {
            consumer_id: Uuid::new_v4().to_string(),
            producer_id: Uuid::new_v4().to_string(),
            kind: "video".into(),
            paused: Some(false),
            preferred_layers: Some(layers),
            current_layers: Some(layers),
            stats: Some(worst_stats()),
        })
        .collect();
    let info = RoomInfo {
        room_id: "r".repeat(64),
        title: worst_name(),
        status: RoomStatus::Live,
        created_at: Utc::now(),
        peers: peers.clone(),
        producers,
        recording: true,
        session_id: Some(Uuid::new_v4()),
        consumers,
        active_speaker: Some(ActiveSpeakerView {
            peer_id: Uuid::new_v4().to_string(),
            producer_id: Uuid::new_v4().to_string(),
            volume: -127,
        }),
    };
    let participants = json!({ "peers": peers });

    // The envelope and Socket.IO framing add a few dozen bytes.
    let answers = [
        ("join-room", size(&join)),
        ("get-room-info", size(&info)),
        ("get-participants", size(&participants)),
        ("get-chat-history", size(&history)),
    ];
    for (name, bytes) in answers {
        println!("{name}: {bytes} bytes ({} KiB)", bytes / 1024);
    }
    for (name, bytes) in answers {
        assert!(
            bytes + 1024 <= BUDGET,
            "{name} can reach {bytes} bytes, over {BUDGET}"
        );
    }
}

/// `waiting-changed` lists everyone waiting: at most `MAX_WAITING` people
/// with the longest names. It goes to every host at each change, so it is
/// kept far below the budget (64 KiB, a twelfth of what an answer may take).
#[test]
fn the_waiting_list_stays_small() {
    let waiting: Vec<WaitingView> = (0..MAX_WAITING)
        .map(|_| WaitingView {
            waiting_id: Uuid::new_v4().to_string(),
            user_id: Uuid::new_v4(),
            display_name: worst_name(),
            since: Utc::now(),
        })
        .collect();
    let bytes = size(&json!({ "roomId": "r".repeat(64), "waiting": waiting }));
    println!("waiting-changed: {bytes} bytes ({} KiB)", bytes / 1024);
    assert!(
        bytes <= 64 * 1024,
        "waiting-changed can reach {bytes} bytes"
    );
}
