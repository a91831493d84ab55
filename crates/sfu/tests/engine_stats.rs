//! Producer and consumer statistics in simulated time: what arrives from a
//! publisher (loss from sequence gaps, jitter, bitrate, requests sent) and
//! what a subscriber's receiver reports say (packets, loss, NACKs, PLIs),
//! and the scores derived from them.

use std::time::Duration;

use serde_json::{Value, json};
use str0m::media::{KeyframeRequestKind, MediaKind as StrKind, Mid};
use str0m::rtp::Ssrc;
use vtp_sfu::engine::{
    ConsumerSnapshot, ProducerLayerSnapshot, RouterSnapshot, STATS_INTERVAL, StreamStats,
};
use vtp_sfu::rtp::MediaKind;

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config, router_caps_json};

const A_VIDEO_SSRC: u32 = 1111;
const A_VIDEO_RTX: u32 = 1112;
/// Payload bytes of every packet A sends.
const PAYLOAD: usize = 1000;
/// One packet every 10 ms: 800 kbit/s of payload.
const SENT_BPS: u64 = (PAYLOAD as u64) * 8 * 100;

fn video_params() -> Value {
    json!({
        "mid": "0",
        "codecs": [
            {"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
             "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]},
            {"mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": {"apt": 96}}
        ],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9},
            {"uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2}
        ],
        "encodings": [{"ssrc": A_VIDEO_SSRC, "rtx": {"ssrc": A_VIDEO_RTX}}],
        "rtcp": {"cname": "alice"}
    })
}

struct Call {
    net: Net,
    a: usize,
    b: usize,
    /// The SSRCs B receives the video on (media, RTX).
    b_ssrc: u32,
    b_rtx: u32,
    /// The next sequence number A writes.
    next_seq: u64,
}

/// A publishes VP8 on its send transport; B consumes it on its receive
/// transport; both are connected and the consumer is resumed.
fn call() -> Call {
    let mut net = Net::new();
    let (a, b) = net.two_parties(chromium_config());
    {
        let mut api = net.clients[a].rtc.direct_api();
        api.declare_media(Mid::from("0"), StrKind::Video);
        api.declare_stream_tx(
            Ssrc::from(A_VIDEO_SSRC),
            Some(Ssrc::from(A_VIDEO_RTX)),
            Mid::from("0"),
            None,
        );
    }
    let now = net.now;
    let dtls_a = net.dtls_of(a);
    net.engine.connect_transport("ta", &dtls_a, now).unwrap();
    net.engine
        .produce("ta", "pv", MediaKind::Video, &video_params(), now)
        .unwrap();
    let caps = router_caps_json(&net);
    let consumer = net.engine.consume("tb", "cv", "pv", &caps, now).unwrap();
    net.expect_consumer(b, &consumer);
    let dtls_b = net.dtls_of(b);
    net.engine.connect_transport("tb", &dtls_b, now).unwrap();
    net.run(Duration::from_millis(300));
    assert!(net.clients[a].rtc.is_connected() && net.clients[b].rtc.is_connected());
    let now = net.now;
    net.engine.resume_consumer("cv", now).unwrap();
    let enc = &consumer.rtp_parameters.encodings[0];
    Call {
        net,
        a,
        b,
        b_ssrc: enc.ssrc.unwrap(),
        b_rtx: enc.rtx.as_ref().unwrap().ssrc,
        next_seq: 7000,
    }
}

impl Call {
    /// A sends `count` packets 10 ms apart, with RTP timestamps that match
    /// (900 ticks at 90 kHz); sequence numbers for which `skip` is true
    /// are used up but never sent.
    fn send(&mut self, count: u64, skip: impl Fn(u64) -> bool) {
        for _ in 0..count {
            let seq = self.next_seq;
            self.next_seq += 1;
            if !skip(seq) {
                let mut payload = vec![0x10, 0, 0];
                payload.resize(PAYLOAD, (seq % 251) as u8);
                self.net
                    .write_rtp(self.a, A_VIDEO_SSRC, 96, seq, (seq * 900) as u32, payload);
            }
            self.net.run(Duration::from_millis(10));
        }
    }

    fn snapshot(&self) -> RouterSnapshot {
        self.net.engine.router_snapshot("room").unwrap()
    }

    fn producer_layer(&self) -> ProducerLayerSnapshot {
        let snap = self.snapshot();
        assert_eq!(snap.producers.len(), 1);
        snap.producers[0].layers[0].clone()
    }

    fn consumer(&self) -> ConsumerSnapshot {
        let snap = self.snapshot();
        assert_eq!(snap.consumers.len(), 1);
        snap.consumers[0].clone()
    }
}

fn assert_bitrate_near(stats: &StreamStats, bps: u64) {
    let low = bps * 9 / 10;
    let high = bps * 11 / 10;
    assert!(
        (low..=high).contains(&stats.bitrate),
        "bitrate {} not within 10 % of {bps}: {stats:?}",
        stats.bitrate
    );
}

#[test]
fn a_clean_stream_has_no_loss_and_a_perfect_score() {
    let mut call = call();
    call.send(100, |_| false);
    // B asks for a keyframe: the consumer counts a PLI received, the
    // producer one sent.
    let b_ssrc = call.b_ssrc;
    call.net.clients[call.b]
        .rtc
        .direct_api()
        .stream_rx(&Ssrc::from(b_ssrc))
        .unwrap()
        .request_keyframe(KeyframeRequestKind::Pli);
    call.send(250, |_| false);

    let layer = call.producer_layer();
    let p = &layer.stats;
    assert!(layer.active);
    assert_eq!(p.packets, 350);
    assert_eq!(p.bytes, 350 * PAYLOAD as u64);
    assert_eq!(p.packets_lost, 0, "{p:?}");
    assert_eq!(p.fraction_lost, 0.0);
    assert!(
        p.jitter_ms.is_finite() && p.jitter_ms < 5.0,
        "steady arrival: {p:?}"
    );
    assert_eq!(p.score, 10);
    assert_eq!(p.bitrate, layer.bitrate);
    assert_bitrate_near(p, SENT_BPS);
    assert!(p.pli_count >= 1, "the keyframe request went to A: {p:?}");

    let c = call.consumer();
    let s = &c.stats;
    // str0m reports once per interval: what was sent up to its last event.
    let forwarded = call.net.received(call.b, b_ssrc).len() as u64;
    assert!(
        s.packets >= forwarded - (STATS_INTERVAL.as_millis() as u64 / 10) - 1
            && s.packets <= forwarded,
        "consumer sent {} of {forwarded}: {s:?}",
        s.packets
    );
    assert!(s.bytes >= s.packets * PAYLOAD as u64);
    assert_bitrate_near(s, SENT_BPS);
    assert_eq!(s.packets_lost, 0, "B reports no loss: {s:?}");
    assert_eq!(s.fraction_lost, 0.0);
    assert!(s.jitter_ms.is_finite() && s.jitter_ms < 5.0, "{s:?}");
    assert!(s.pli_count >= 1, "B's PLI was received: {s:?}");
    assert_eq!(s.nack_count, 0);
    assert_eq!(s.score, 10);
    assert!(c.current_layers.is_some() || s.packets > 0);

    // The publisher stops: the layer goes inactive, the scores drop to 0.
    call.net.run(Duration::from_secs(3));
    let layer = call.producer_layer();
    assert!(!layer.active);
    assert_eq!((layer.stats.bitrate, layer.stats.score), (0, 0));
    assert_eq!(call.consumer().stats.score, 0, "nothing to receive");
}

#[test]
fn sequence_gaps_from_the_publisher_show_as_loss() {
    let mut call = call();
    // Every 10th sequence number is never sent: 10 % loss that NACKs
    // cannot repair.
    call.send(300, |seq| seq % 10 == 3);

    let p = call.producer_layer().stats;
    assert_eq!(p.packets, 270);
    assert_eq!(p.packets_lost, 30, "{p:?}");
    assert!((p.fraction_lost - 0.1).abs() < 0.02, "{p:?}");
    assert!(p.score < 10, "{p:?}");
    assert_eq!(p.score, 6, "10 − ⌈40 × 0.1⌉");
    assert!(p.nack_count > 0, "the engine asked A for the gaps: {p:?}");
    assert!(p.jitter_ms.is_finite());

    // The consumer forwards the gaps as they are: B sees the loss too, and
    // its score is never above what it receives.
    let c = call.consumer().stats;
    assert!(c.packets_lost > 0, "{c:?}");
    assert!(c.fraction_lost > 0.0, "{c:?}");
    assert!(c.nack_count > 0, "B asked for the gaps: {c:?}");
    assert!(c.score <= p.score, "{c:?} vs {p:?}");
}

#[test]
fn a_lossy_downlink_shows_in_the_consumer_only() {
    let mut call = call();
    let (ssrc, rtx) = (call.b_ssrc, call.b_rtx);
    let mut n = 0u64;
    // Every 8th packet on its way to B is lost, and so is every
    // retransmission: B's reports carry the loss.
    call.net.drop_to_client = Box::new(move |client, bytes| {
        let is_rtp = bytes.len() > 12 && bytes[0] >> 6 == 2 && !(192..=223).contains(&bytes[1]);
        if client != 1 || !is_rtp {
            return false;
        }
        let s = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if s == rtx {
            return true;
        }
        if s == ssrc {
            n += 1;
            return n.is_multiple_of(8);
        }
        false
    });
    call.send(300, |_| false);

    let p = call.producer_layer().stats;
    assert_eq!((p.packets_lost, p.score), (0, 10), "uplink is clean: {p:?}");
    let c = call.consumer().stats;
    assert!(c.packets_lost > 10, "{c:?}");
    assert!(
        (c.fraction_lost - 0.125).abs() < 0.05,
        "about 1 in 8 lost: {c:?}"
    );
    assert!(c.nack_count > 0, "{c:?}");
    assert!(c.score <= 6, "12.5 % loss costs at least 4 points: {c:?}");
    assert!(c.packets > 0 && c.bytes > 0);
}
