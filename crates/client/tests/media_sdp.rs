//! The SDP path of the media peer, peer to peer: one peer offers send-only
//! VP8 and Opus, another answers as a receiver, and the synthetic media
//! flows between them and is counted by the same counters as the JSON path.

use std::time::Duration;

use vtp_client::{AudioOptions, Direction, Kind, MediaError, MediaPeer, VideoOptions};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn an_sdp_offer_and_answer_carry_synthetic_media() {
    let sender = MediaPeer::new();
    let receiver = MediaPeer::new();
    let send = sender
        .create_sdp_transport("pub", Direction::Send)
        .await
        .unwrap();
    let recv = receiver
        .create_sdp_transport("sub", Direction::Recv)
        .await
        .unwrap();

    let (offer, pending) = send
        .sdp_offer(Some(VideoOptions::default()), Some(AudioOptions::default()))
        .unwrap();
    let (answer, consumers) = recv.accept_sdp_offer(&offer, "pub").unwrap();
    assert_eq!(consumers.len(), 2);
    let producers = send.accept_sdp_answer(pending, &answer).unwrap();
    assert_eq!(producers.len(), 2);
    assert_eq!(producers[0].kind(), Kind::Video);
    assert_eq!(producers[1].kind(), Kind::Audio);

    send.wait_connected(DEADLINE).await.unwrap();
    recv.wait_connected(DEADLINE).await.unwrap();
    for p in &producers {
        p.start();
    }
    for c in &consumers {
        let stats = c
            .wait_until(DEADLINE, |s| s.packets >= 40)
            .await
            .unwrap_or_else(|e| panic!("{:?} consumer: {e}", c.kind()));
        assert_eq!(stats.integrity_failures, 0);
        assert_eq!(stats.producer_id, "pub");
        if c.kind() == Kind::Video {
            assert!(stats.keyframes >= 1 && stats.first_keyframe_at.is_some());
        }
    }
}

#[tokio::test]
async fn sdp_calls_refuse_the_wrong_direction_and_bad_sdp() {
    let peer = MediaPeer::new();
    let recv = peer
        .create_sdp_transport("sub", Direction::Recv)
        .await
        .unwrap();
    let send = peer
        .create_sdp_transport("pub", Direction::Send)
        .await
        .unwrap();
    assert!(matches!(
        recv.sdp_offer(Some(VideoOptions::default()), None),
        Err(MediaError::WrongDirection { .. })
    ));
    assert!(matches!(
        send.accept_sdp_offer("v=0\r\n", "x"),
        Err(MediaError::WrongDirection { .. })
    ));
    assert!(matches!(
        recv.accept_sdp_offer("not an sdp", "x"),
        Err(MediaError::InvalidParameters { .. })
    ));
    let simulcast = VideoOptions {
        simulcast: true,
        ..VideoOptions::default()
    };
    assert!(matches!(
        send.sdp_offer(Some(simulcast), None),
        Err(MediaError::InvalidParameters { .. })
    ));
    // The transports still work after the refusals.
    let (offer, _pending) = send.sdp_offer(None, Some(AudioOptions::default())).unwrap();
    assert!(offer.contains("m=audio"));
}
