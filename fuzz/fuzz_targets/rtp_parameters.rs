//! The RTP negotiation (`vtp_sfu::rtp`) on any JSON a client can send as
//! `produce`'s `{ kind, rtpParameters }` or as a device's
//! `rtpCapabilities` (the seeds are what mediasoup-client sends from
//! Chromium and Firefox).
//!
//! Beyond "no panic": validation is idempotent (accepted parameters and
//! capabilities validate again unchanged, also after a JSON round trip), a
//! negotiated producer maps every encoding to a distinct router SSRC and
//! every payload type to a codec the router offers, and a device with the
//! router's own capabilities can consume it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vtp_sfu::rtp::{self, ConsumerOptions, MediaKind};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(caps) = rtp::parse_rtp_capabilities(&value) {
        let mut again = caps.clone();
        rtp::validate_rtp_capabilities(&mut again).expect("accepted capabilities validate again");
        assert_eq!(again, caps);
        let json = serde_json::to_value(&caps).expect("capabilities serialise");
        let back = rtp::parse_rtp_capabilities(&json).expect("capabilities read back");
        assert_eq!(back, caps);
    }
    let kind = match value.get("kind").and_then(Value::as_str) {
        Some("audio") => MediaKind::Audio,
        Some("video") => MediaKind::Video,
        _ => return,
    };
    let Some(params) = value.get("rtpParameters") else {
        return;
    };
    let Ok(params) = rtp::parse_rtp_parameters(params) else {
        return;
    };
    let mut again = params.clone();
    rtp::validate_rtp_parameters(&mut again).expect("accepted parameters validate again");
    assert_eq!(again, params);
    let json = serde_json::to_value(&params).expect("parameters serialise");
    assert_eq!(rtp::parse_rtp_parameters(&json).ok(), Some(params.clone()));

    let router = rtp::router_rtp_capabilities();
    let mut n = 0u32;
    let mut next_ssrc = || {
        n = n.wrapping_add(0x1234_5678);
        n
    };
    let Ok(producer) = rtp::negotiate_producer(kind, &params, &router, &mut next_ssrc) else {
        return;
    };
    let mapping = &producer.rtp_mapping;
    let mut ssrcs: Vec<u32> = mapping.encodings.iter().map(|e| e.mapped_ssrc).collect();
    ssrcs.sort_unstable();
    ssrcs.dedup();
    assert_eq!(ssrcs.len(), mapping.encodings.len(), "router SSRCs collide");
    for codec in &mapping.codecs {
        assert!(
            router
                .codecs
                .iter()
                .any(|c| c.preferred_payload_type == Some(codec.mapped_payload_type)),
            "payload type {} is not the router's",
            codec.mapped_payload_type
        );
    }
    let consumable = &producer.consumable_rtp_parameters;
    assert_eq!(rtp::can_consume(consumable, &router).ok(), Some(true));
    let options = ConsumerOptions::for_kind(kind);
    let consumer = rtp::consumer_rtp_parameters(consumable, &router, &options, &mut next_ssrc)
        .expect("the router's own capabilities can consume");
    assert!(!consumer.codecs.is_empty() && consumer.encodings.len() == 1);
});
