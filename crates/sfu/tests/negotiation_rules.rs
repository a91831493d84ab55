//! Negotiation rules beyond the fixture: H.264 profiles, RTX availability,
//! stream identification, pipes, and robustness against arbitrary input.

mod common;

use common::*;
use serde_json::{Value, json};
use vtp_sfu::rtp::{
    self, ConsumerOptions, MediaKind, RtpCapabilities, RtpError, RtpParameters, RtpStreamType, uri,
};

fn h264_produce(plid: &str, packetization_mode: u64) -> Value {
    let mut v = single_video_json();
    v["codecs"][0]["mimeType"] = json!("video/H264");
    v["codecs"][0]["parameters"] = json!({
        "level-asymmetry-allowed": 1,
        "packetization-mode": packetization_mode,
        "profile-level-id": plid
    });
    v
}

fn produce(kind: MediaKind, v: &Value) -> Result<rtp::ProducerNegotiation, RtpError> {
    rtp::negotiate_producer(
        kind,
        &params(v),
        &rtp::router_rtp_capabilities(),
        &mut counter(),
    )
}

#[test]
fn h264_profiles_pick_the_matching_router_codec() {
    let p = produce(MediaKind::Video, &h264_produce("42e01f", 1)).expect("baseline");
    assert_eq!(p.rtp_mapping.mapped_payload_type(96), Some(103));
    assert_eq!(p.rtp_mapping.mapped_payload_type(97), Some(104));

    // Main profile at a lower level maps to the 4d0032 codec and keeps its
    // own level (both sides allow level asymmetry).
    let p = produce(MediaKind::Video, &h264_produce("4d001f", 1)).expect("main");
    assert_eq!(p.rtp_mapping.mapped_payload_type(96), Some(105));
    assert_eq!(p.rtp_mapping.mapped_payload_type(97), Some(106));
    let plid = |params: &RtpParameters| {
        params.codecs[0]
            .parameters
            .get_str("profile-level-id")
            .map(str::to_owned)
    };
    assert_eq!(
        plid(&p.consumable_rtp_parameters).as_deref(),
        Some("4d001f")
    );

    // Without level asymmetry the lower level wins.
    let mut v = h264_produce("4d0034", 1);
    v["codecs"][0]["parameters"]
        .as_object_mut()
        .expect("object")
        .remove("level-asymmetry-allowed");
    let p = produce(MediaKind::Video, &v).expect("main");
    assert_eq!(plid(&p.rtp_parameters).as_deref(), Some("4d0032"));

    for (plid, mode) in [("42e01f", 0), ("640c1f", 1), ("42001f", 1), ("zzzzzz", 1)] {
        let e = produce(MediaKind::Video, &h264_produce(plid, mode)).expect_err(plid);
        assert!(
            matches!(e, RtpError::UnsupportedCodec { .. }),
            "{plid}: {e}"
        );
    }
}

#[test]
fn h264_consumer_needs_the_same_profile() {
    let p = produce(MediaKind::Video, &h264_produce("42e01f", 1)).expect("baseline");
    let device = device_caps();
    assert_eq!(
        rtp::can_consume(&p.consumable_rtp_parameters, &device),
        Ok(true)
    );
    let c = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device,
        &ConsumerOptions::for_kind(MediaKind::Video),
        &mut counter(),
    )
    .expect("consumable");
    let pts: Vec<u8> = c.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, vec![103, 104]);

    // The device only has Constrained Baseline; a Main producer is not for it.
    let p = produce(MediaKind::Video, &h264_produce("4d001f", 1)).expect("main");
    assert_eq!(
        rtp::can_consume(&p.consumable_rtp_parameters, &device),
        Ok(false)
    );
    assert_eq!(
        rtp::consumer_rtp_parameters(
            &p.consumable_rtp_parameters,
            &device,
            &ConsumerOptions::for_kind(MediaKind::Video),
            &mut counter(),
        ),
        Err(RtpError::NoCompatibleCodecs)
    );
}

#[test]
fn rtx_follows_what_both_sides_support() {
    // Router without RTX refuses a producer that sends RTX.
    let mut router = rtp::router_rtp_capabilities();
    router.codecs.retain(|c| !rtp::is_rtx(&c.mime_type));
    let e = rtp::negotiate_producer(
        MediaKind::Video,
        &params(&single_video_json()),
        &router,
        &mut counter(),
    );
    assert_eq!(e.map(|_| ()), Err(RtpError::NoRtxForCodec(101)));

    // A producer without RTX still gets router RTX in its consumable
    // parameters (the SFU retransmits from its own buffer).
    let mut v = single_video_json();
    v["codecs"].as_array_mut().expect("array").truncate(1);
    v["encodings"][0]
        .as_object_mut()
        .expect("object")
        .remove("rtx");
    let p = produce(MediaKind::Video, &v).expect("accepted");
    assert_eq!(p.consumable_rtp_parameters.codecs.len(), 2);

    // A device without RTX gets no RTX codec and no RTX SSRC.
    let mut device = device_caps();
    device.codecs.retain(|c| !rtp::is_rtx(&c.mime_type));
    let c = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device,
        &ConsumerOptions::for_kind(MediaKind::Video),
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(c.codecs.len(), 1);
    assert_eq!(c.encodings[0].rtx, None);

    // RTX disabled: no RTX codec, no plain NACK, PLI kept.
    let options = ConsumerOptions {
        enable_rtx: false,
        ..ConsumerOptions::for_kind(MediaKind::Video)
    };
    let c = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device_caps(),
        &options,
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(c.codecs.len(), 1);
    let fb: Vec<(&str, &str)> = c.codecs[0]
        .rtcp_feedback
        .iter()
        .map(|f| (f.kind.as_str(), f.parameter.as_str()))
        .collect();
    assert_eq!(
        fb,
        vec![("transport-cc", ""), ("ccm", "fir"), ("nack", "pli")]
    );
}

#[test]
fn bandwidth_feedback_falls_back_to_remb_then_none() {
    let p = produce(MediaKind::Video, &single_video_json()).expect("accepted");
    let consume = |caps: &RtpCapabilities| {
        rtp::consumer_rtp_parameters(
            &p.consumable_rtp_parameters,
            caps,
            &ConsumerOptions::for_kind(MediaKind::Video),
            &mut counter(),
        )
        .expect("consumable")
    };
    let kinds = |c: &RtpParameters| -> Vec<String> {
        c.codecs[0]
            .rtcp_feedback
            .iter()
            .map(|f| f.kind.clone())
            .collect()
    };
    let mut device = device_caps();
    device
        .header_extensions
        .retain(|e| e.uri != uri::TRANSPORT_WIDE_CC);
    let c = consume(&device);
    assert!(kinds(&c).contains(&"goog-remb".to_owned()));
    assert!(!kinds(&c).contains(&"transport-cc".to_owned()));
    device.header_extensions.clear();
    let c = consume(&device);
    assert!(c.header_extensions.is_empty());
    assert_eq!(kinds(&c), vec!["ccm", "nack", "nack"]);
    // A device that knows an extension under another id does not get it.
    let mut device = device_caps();
    for e in &mut device.header_extensions {
        e.preferred_id += 1;
    }
    assert!(consume(&device).header_extensions.is_empty());
}

#[test]
fn producer_kind_and_layering_are_checked() {
    let e = produce(MediaKind::Video, &audio_produce_json()).expect_err("audio as video");
    assert!(
        matches!(
            e,
            RtpError::KindMismatch {
                kind: MediaKind::Video,
                ..
            }
        ),
        "{e}"
    );

    let mut v = audio_produce_json();
    v["encodings"] = json!([{ "ssrc": 1 }, { "ssrc": 2 }]);
    let e = produce(MediaKind::Audio, &v).expect_err("simulcast opus");
    assert!(matches!(e, RtpError::UnsupportedStreamType { .. }), "{e}");

    let mut v = audio_produce_json();
    v["encodings"][0]["scalabilityMode"] = json!("L1T3");
    assert!(matches!(
        produce(MediaKind::Audio, &v),
        Err(RtpError::UnsupportedStreamType { .. })
    ));

    // One VP8 encoding with temporal layers is handled as simulcast.
    let mut v = single_video_json();
    v["encodings"][0]["scalabilityMode"] = json!("L1T3");
    let p = produce(MediaKind::Video, &v).expect("vp8 temporal layers");
    assert_eq!(p.stream_type, RtpStreamType::Simulcast);
}

#[test]
fn encodings_must_be_identifiable() {
    let mut v = video_produce_json();
    v["encodings"][1]
        .as_object_mut()
        .expect("object")
        .remove("rid");
    assert!(matches!(
        produce(MediaKind::Video, &v),
        Err(RtpError::InvalidEncoding { index: 1, .. })
    ));

    // RID simulcast without the rtp-stream-id extension cannot be demuxed.
    let mut v = video_produce_json();
    v["headerExtensions"]
        .as_array_mut()
        .expect("array")
        .retain(|e| e["uri"] != json!(uri::RTP_STREAM_ID));
    assert!(matches!(
        produce(MediaKind::Video, &v),
        Err(RtpError::InvalidEncoding { .. })
    ));

    // No encodings: one is added, identified by the MID.
    let mut v = single_video_json();
    v["encodings"] = json!([]);
    let p = produce(MediaKind::Video, &v).expect("mid identifies the stream");
    assert_eq!(p.rtp_parameters.encodings.len(), 1);
    assert_eq!(p.consumable_rtp_parameters.encodings[0].ssrc, Some(1000));
    v.as_object_mut().expect("object").remove("mid");
    assert!(matches!(
        produce(MediaKind::Video, &v),
        Err(RtpError::InvalidEncoding { index: 0, .. })
    ));
}

#[test]
fn ssrc_simulcast_is_mapped_like_rid_simulcast() {
    let mut v = single_video_json();
    v["encodings"] = json!([
        { "ssrc": 111, "rtx": { "ssrc": 211 }, "scalabilityMode": "L1T3", "maxBitrate": 100000 },
        { "ssrc": 112, "rtx": { "ssrc": 212 }, "scalabilityMode": "L1T3", "maxBitrate": 300000 },
        { "ssrc": 113, "rtx": { "ssrc": 213 }, "scalabilityMode": "L1T3", "maxBitrate": 900000 }
    ]);
    let p = produce(MediaKind::Video, &v).expect("accepted");
    assert_eq!(p.stream_type, RtpStreamType::Simulcast);
    let mapped: Vec<(Option<u32>, Option<&str>, u32)> = p
        .rtp_mapping
        .encodings
        .iter()
        .map(|e| (e.ssrc, e.rid.as_deref(), e.mapped_ssrc))
        .collect();
    assert_eq!(
        mapped,
        vec![
            (Some(111), None, 1000),
            (Some(112), None, 1001),
            (Some(113), None, 1002)
        ]
    );
    assert!(
        p.consumable_rtp_parameters
            .encodings
            .iter()
            .all(|e| e.rtx.is_none())
    );
    let c = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device_caps(),
        &ConsumerOptions::for_kind(MediaKind::Video),
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(c.encodings.len(), 1);
    assert_eq!(c.encodings[0].scalability_mode.as_deref(), Some("L3T3"));

    // A simulcast producer of a codec the router lacks is refused for the
    // codec, not for its layering.
    let mut v = video_produce_json();
    v["codecs"][0]["mimeType"] = json!("video/VP9");
    assert!(matches!(
        produce(MediaKind::Video, &v),
        Err(RtpError::UnsupportedCodec { .. })
    ));
}

#[test]
fn producers_on_a_transport_share_its_cname() {
    let mut transport_cname = None;
    let mut video = params(&video_produce_json());
    rtp::apply_transport_cname(&mut video, &mut transport_cname, || "gen00001".into());
    // The RID producer brought an empty CNAME: one is generated.
    assert_eq!(video.rtcp.cname.as_deref(), Some("gen00001"));
    let mut audio = params(&audio_produce_json());
    rtp::apply_transport_cname(&mut audio, &mut transport_cname, || unreachable!());
    assert_eq!(audio.rtcp.cname.as_deref(), Some("gen00001"));

    // On a fresh transport the first non-empty CNAME wins.
    let mut transport_cname = None;
    let mut audio = params(&audio_produce_json());
    rtp::apply_transport_cname(&mut audio, &mut transport_cname, || unreachable!());
    assert_eq!(transport_cname.as_deref(), Some("qpYKhXG2YAb/xKGS"));
    let mut video = params(&video_produce_json());
    rtp::apply_transport_cname(&mut video, &mut transport_cname, || unreachable!());
    let p = rtp::negotiate_producer(
        MediaKind::Video,
        &video,
        &rtp::router_rtp_capabilities(),
        &mut counter(),
    )
    .expect("accepted");
    assert_eq!(
        p.consumable_rtp_parameters.rtcp.cname.as_deref(),
        Some("qpYKhXG2YAb/xKGS")
    );
}

#[test]
fn pipe_consumers_keep_every_encoding() {
    let p = produce(MediaKind::Video, &video_produce_json()).expect("accepted");
    let c = rtp::pipe_consumer_rtp_parameters(&p.consumable_rtp_parameters, true, &mut counter());
    let ssrcs: Vec<(Option<u32>, Option<u32>)> = c
        .encodings
        .iter()
        .map(|e| (e.ssrc, e.rtx.map(|r| r.ssrc)))
        .collect();
    assert_eq!(
        ssrcs,
        vec![
            (Some(1000), Some(2000)),
            (Some(1001), Some(2001)),
            (Some(1002), Some(2002))
        ]
    );
    assert_eq!(c.encodings[2].max_bitrate, Some(900_000));
    assert!(c.header_extensions.iter().all(|e| {
        ![uri::MID, uri::ABS_SEND_TIME, uri::TRANSPORT_WIDE_CC].contains(&e.uri.as_str())
    }));
    let fb: Vec<&str> = c.codecs[0]
        .rtcp_feedback
        .iter()
        .map(|f| f.parameter.as_str())
        .collect();
    assert_eq!(fb, vec!["", "pli", "fir"]);
    let c = rtp::pipe_consumer_rtp_parameters(&p.consumable_rtp_parameters, false, &mut counter());
    assert_eq!(c.codecs.len(), 1);
    assert!(c.encodings.iter().all(|e| e.rtx.is_none()));

    // The pipe option of a normal consumer also keeps the encodings.
    let options = ConsumerOptions {
        pipe: true,
        ..ConsumerOptions::for_kind(MediaKind::Video)
    };
    let c = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device_caps(),
        &options,
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(c.encodings.len(), 3);
    assert_eq!(c.mid, None);
}

#[test]
fn malformed_consumer_capabilities_are_errors_not_panics() {
    let p = produce(MediaKind::Video, &single_video_json()).expect("accepted");
    let mut caps = device_caps();
    caps.codecs[1].mime_type = "VP8".into();
    assert!(matches!(
        rtp::can_consume(&p.consumable_rtp_parameters, &caps),
        Err(RtpError::InvalidMimeType(_))
    ));
    assert_eq!(
        rtp::can_consume(&p.consumable_rtp_parameters, &RtpCapabilities::default()),
        Ok(false)
    );
}

/// Every value of the fixture, replaced in turn by junk of every JSON type:
/// parsing and negotiation must answer, never panic.
#[test]
fn arbitrary_values_never_panic() {
    let junk = [
        json!(null),
        json!(0),
        json!(-1),
        json!(128),
        json!(4_294_967_296u64),
        json!(1.5),
        json!(""),
        json!("video/VP9"),
        json!(true),
        json!([]),
        json!({}),
    ];
    let router = rtp::router_rtp_capabilities();
    let device = device_caps();
    let mut runs = 0;
    for (kind, base) in [
        (MediaKind::Video, video_produce_json()),
        (MediaKind::Audio, audio_produce_json()),
        (MediaKind::Video, single_video_json()),
    ] {
        for path in leaf_paths(&base, String::new()) {
            for j in &junk {
                let mut v = base.clone();
                if let Some(slot) = v.pointer_mut(&path) {
                    *slot = j.clone();
                }
                runs += 1;
                let Ok(p) = rtp::parse_rtp_parameters(&v) else {
                    continue;
                };
                let Ok(n) = rtp::negotiate_producer(kind, &p, &router, &mut counter()) else {
                    continue;
                };
                let _ = rtp::can_consume(&n.consumable_rtp_parameters, &device);
                let _ = rtp::consumer_rtp_parameters(
                    &n.consumable_rtp_parameters,
                    &device,
                    &ConsumerOptions::for_kind(kind),
                    &mut counter(),
                );
            }
        }
    }
    for path in leaf_paths(&device_caps_json(), String::new()) {
        for j in &junk {
            let mut v = device_caps_json();
            if let Some(slot) = v.pointer_mut(&path) {
                *slot = j.clone();
            }
            runs += 1;
            let Ok(caps) = rtp::parse_rtp_capabilities(&v) else {
                continue;
            };
            let n = produce(MediaKind::Video, &video_produce_json()).expect("accepted");
            let _ = rtp::can_consume(&n.consumable_rtp_parameters, &caps);
            let _ = rtp::consumer_rtp_parameters(
                &n.consumable_rtp_parameters,
                &caps,
                &ConsumerOptions::for_kind(MediaKind::Video),
                &mut counter(),
            );
        }
    }
    assert!(runs > 1000, "{runs}");
}

/// JSON pointers to every value (objects and arrays included).
fn leaf_paths(v: &Value, prefix: String) -> Vec<String> {
    let mut out = vec![prefix.clone()];
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                out.extend(leaf_paths(child, format!("{prefix}/{k}")));
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                out.extend(leaf_paths(child, format!("{prefix}/{i}")));
            }
        }
        _ => {}
    }
    out
}
