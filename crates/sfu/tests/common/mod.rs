//! Helpers shared by the RTP negotiation integration tests: the Chromium
//! fixture and a deterministic SSRC generator.
#![allow(dead_code)]

use serde_json::Value;
use vtp_sfu::rtp::{self, RtpCapabilities, RtpParameters};

/// What mediasoup-client 3.18.7 sent from Chromium 156 (copied from
/// `shared/fixtures`).
pub fn fixture() -> Value {
    serde_json::from_str(include_str!(
        "../fixtures/mediasoup-client-chromium156.json"
    ))
    .expect("fixture is JSON")
}

pub fn video_produce_json() -> Value {
    fixture()["rid-simulcast"]["produce"][0]["rtpParameters"].clone()
}

pub fn audio_produce_json() -> Value {
    fixture()["rid-simulcast"]["produce"][1]["rtpParameters"].clone()
}

pub fn single_video_json() -> Value {
    fixture()["single-video"].clone()
}

pub fn device_caps_json() -> Value {
    fixture()["deviceRtpCapabilities"].clone()
}

pub fn params(v: &Value) -> RtpParameters {
    rtp::parse_rtp_parameters(v).expect("valid rtpParameters")
}

pub fn device_caps() -> RtpCapabilities {
    rtp::parse_rtp_capabilities(&device_caps_json()).expect("valid capabilities")
}

/// Hands out 1000, 2000, 3000, … so every draw is recognisable.
pub fn counter() -> impl FnMut() -> u32 {
    let mut n = 0u32;
    move || {
        n += 1000;
        n
    }
}
