//! Browser numberings for the engine tests, from the `produce` parameters
//! mediasoup-client emitted in real browsers (`tests/fixtures`): each
//! browser's payload types and header-extension ids, and a str0m publisher
//! that sends with exactly those.
#![allow(dead_code)]

use serde_json::{Value, json};
use str0m::RtcConfig;
use str0m::format::Codec;
use str0m::media::Frequency;
use str0m::rtp::{Extension, ExtensionMap};
use vtp_sfu::rtp::uri;

/// One browser's `produce` parameters (its own numbering).
pub struct Browser {
    pub name: &'static str,
    /// A camera with one encoding (explicit SSRC and RTX SSRC).
    pub camera: Value,
    /// A camera with three RID encodings (no SSRCs).
    pub simulcast: Value,
    pub microphone: Value,
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture JSON")
}

impl Browser {
    /// Firefox 153 (mediasoup-client's Firefox120 handler): opus 109, VP8
    /// 120 with RTX 124; mid 3, abs-send-time 4, toffset 5, playout-delay
    /// 6, transport-cc 7, rid 9, repaired-rid 10, audio level 1.
    pub fn firefox153() -> Browser {
        let f = fixture(include_str!("../fixtures/mediasoup-client-firefox153.json"));
        let one = &f["one-transport"]["produce"];
        Browser {
            name: "firefox153",
            camera: one[0]["rtpParameters"].clone(),
            microphone: one[1]["rtpParameters"].clone(),
            simulcast: f["rid-simulcast"]["produce"][0]["rtpParameters"].clone(),
        }
    }

    /// Chromium 156 (mediasoup-client's Chrome111 handler): opus 111, VP8
    /// 96 with RTX 97; mid 9, abs-send-time 2, transport-cc 4, rid 10,
    /// repaired-rid 11. The capture's router offered no audio level or
    /// video orientation; Chromium 156 numbers them 12 and 13 when the
    /// router does (issue 15), which is added here.
    pub fn chromium156() -> Browser {
        let f = fixture(include_str!(
            "../fixtures/mediasoup-client-chromium156.json"
        ));
        let rid = &f["rid-simulcast"]["produce"];
        let orientation = json!({"uri": uri::VIDEO_ORIENTATION, "id": 13});
        let mut camera = f["single-video"].clone();
        push_ext(&mut camera, orientation.clone());
        let mut simulcast = rid[0]["rtpParameters"].clone();
        push_ext(&mut simulcast, orientation);
        let mut microphone = rid[1]["rtpParameters"].clone();
        push_ext(
            &mut microphone,
            json!({"uri": uri::SSRC_AUDIO_LEVEL, "id": 12}),
        );
        Browser {
            name: "chromium156",
            camera,
            simulcast,
            microphone,
        }
    }

    fn all(&self) -> [&Value; 3] {
        [&self.camera, &self.simulcast, &self.microphone]
    }

    /// The payload type of `mime` (case-insensitive), and its RTX's.
    pub fn pt(&self, mime: &str) -> (u8, Option<u8>) {
        for p in self.all() {
            let codecs = p["codecs"].as_array().expect("codecs");
            let Some(c) = codecs
                .iter()
                .find(|c| c["mimeType"].as_str().unwrap().eq_ignore_ascii_case(mime))
            else {
                continue;
            };
            let pt = c["payloadType"].as_u64().unwrap();
            let rtx = codecs
                .iter()
                .find(|r| r["parameters"]["apt"].as_u64() == Some(pt))
                .map(|r| r["payloadType"].as_u64().unwrap() as u8);
            return (pt as u8, rtx);
        }
        panic!("{} has no {mime}", self.name);
    }

    /// The id of a header extension in any of its parameters.
    pub fn ext_id(&self, u: &str) -> Option<u8> {
        self.all().into_iter().find_map(|p| {
            p["headerExtensions"]
                .as_array()?
                .iter()
                .find(|e| e["uri"] == u)
                .map(|e| e["id"].as_u64().unwrap() as u8)
        })
    }

    /// A str0m publisher that numbers as this browser does.
    pub fn client_config(&self) -> RtcConfig {
        let mut exts = ExtensionMap::empty();
        for (u, ext) in [
            (uri::MID, Extension::RtpMid),
            (uri::RTP_STREAM_ID, Extension::RtpStreamId),
            (uri::REPAIRED_RTP_STREAM_ID, Extension::RepairedRtpStreamId),
            (uri::ABS_SEND_TIME, Extension::AbsoluteSendTime),
            (uri::TRANSPORT_WIDE_CC, Extension::TransportSequenceNumber),
            (uri::SSRC_AUDIO_LEVEL, Extension::AudioLevel),
            (uri::VIDEO_ORIENTATION, Extension::VideoOrientation),
        ] {
            if let Some(id) = self.ext_id(u) {
                exts.set(id, ext);
            }
        }
        let mut cfg = RtcConfig::new()
            .set_rtp_mode(true)
            .clear_codecs()
            .set_extension_map(exts);
        let (vp8, rtx) = self.pt("video/VP8");
        let (opus, _) = self.pt("audio/opus");
        let cc = cfg.codec_config();
        cc.add_config(
            vp8.into(),
            rtx.map(Into::into),
            Codec::Vp8,
            Frequency::NINETY_KHZ,
            None,
            Default::default(),
        );
        cc.add_config(
            opus.into(),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            Default::default(),
        );
        cfg
    }
}

fn push_ext(params: &mut Value, ext: Value) {
    params["headerExtensions"]
        .as_array_mut()
        .expect("headerExtensions")
        .push(ext);
}

/// `params` with another MID.
pub fn with_mid(params: &Value, mid: &str) -> Value {
    let mut p = params.clone();
    p["mid"] = json!(mid);
    p
}

/// `params` with one encoding of these SSRCs (a second camera, a screen).
pub fn with_ssrcs(params: &Value, ssrc: u32, rtx: u32) -> Value {
    let mut p = params.clone();
    p["encodings"] = json!([{"ssrc": ssrc, "rtx": {"ssrc": rtx}}]);
    p
}

/// The (SSRC, RTX SSRC) of a one-encoding parameter set.
pub fn ssrcs(params: &Value) -> (u32, Option<u32>) {
    let e = &params["encodings"][0];
    (
        e["ssrc"].as_u64().expect("an ssrc") as u32,
        e["rtx"]["ssrc"].as_u64().map(|s| s as u32),
    )
}

/// The RIDs of a simulcast parameter set.
pub fn rids(params: &Value) -> Vec<String> {
    params["encodings"]
        .as_array()
        .expect("encodings")
        .iter()
        .map(|e| e["rid"].as_str().expect("a rid").to_owned())
        .collect()
}
