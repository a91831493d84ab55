//! Negotiation of what the public mediasoup-client really sends from
//! Chromium 156 (RID simulcast video, audio, single-stream video, device
//! capabilities) against VTP's router capabilities.

mod common;

use common::*;
use serde_json::json;
use vtp_sfu::rtp::{self, ConsumerOptions, MediaKind, RtpError, RtpParameters, RtpStreamType, uri};

#[test]
fn fixture_parameters_round_trip_exactly() {
    for v in [
        video_produce_json(),
        audio_produce_json(),
        single_video_json(),
    ] {
        let p: RtpParameters = serde_json::from_value(v.clone()).expect("deserialises");
        assert_eq!(serde_json::to_value(&p).expect("serialises"), v);
    }
    let caps: rtp::RtpCapabilities =
        serde_json::from_value(device_caps_json()).expect("deserialises");
    assert_eq!(
        serde_json::to_value(&caps).expect("serialises"),
        device_caps_json()
    );
}

#[test]
fn rid_simulcast_video_is_mapped_onto_the_router() {
    let router = rtp::router_rtp_capabilities();
    let produce = params(&video_produce_json());
    let p = rtp::negotiate_producer(MediaKind::Video, &produce, &router, &mut counter())
        .expect("accepted");

    assert_eq!(p.stream_type, RtpStreamType::Simulcast);
    // VP8 96 → router VP8 101, its RTX 97 → router RTX 102.
    let codecs: Vec<(u8, u8)> = p
        .rtp_mapping
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.mapped_payload_type))
        .collect();
    assert_eq!(codecs, vec![(96, 101), (97, 102)]);
    // Browser extension ids → router ids.
    let exts: Vec<(&str, u8, u8)> = p
        .rtp_mapping
        .header_extensions
        .iter()
        .map(|e| (e.uri.as_str(), e.id, e.mapped_id))
        .collect();
    assert_eq!(
        exts,
        vec![
            (uri::MID, 9, 1),
            (uri::ABS_SEND_TIME, 2, 4),
            (uri::TRANSPORT_WIDE_CC, 4, 5),
            (uri::RTP_STREAM_ID, 10, 2),
            (uri::REPAIRED_RTP_STREAM_ID, 11, 3),
        ]
    );
    assert_eq!(p.rtp_mapping.mapped_header_extension_id(10), Some(2));
    // RID encodings: no ssrc on input, consecutive router SSRCs.
    type Row<'a> = (Option<&'a str>, Option<u32>, Option<&'a str>, u32);
    let encs: Vec<Row> = p
        .rtp_mapping
        .encodings
        .iter()
        .map(|e| {
            (
                e.rid.as_deref(),
                e.ssrc,
                e.scalability_mode.as_deref(),
                e.mapped_ssrc,
            )
        })
        .collect();
    assert_eq!(
        encs,
        vec![
            (Some("r0"), None, Some("L1T3"), 1000),
            (Some("r1"), None, Some("L1T3"), 1001),
            (Some("r2"), None, Some("L1T3"), 1002),
        ]
    );

    // Consumable parameters are in router numbering.
    let c = &p.consumable_rtp_parameters;
    let codecs: Vec<(&str, u8)> = c
        .codecs
        .iter()
        .map(|c| (c.mime_type.as_str(), c.payload_type))
        .collect();
    assert_eq!(codecs, vec![("video/VP8", 101), ("video/rtx", 102)]);
    assert_eq!(c.codecs[1].parameters.get_u64("apt"), Some(101));
    assert_eq!(c.codecs[0].rtcp_feedback.len(), 5);
    let ext_uris: Vec<&str> = c.header_extensions.iter().map(|e| e.uri.as_str()).collect();
    assert!(ext_uris.contains(&uri::MID));
    assert!(ext_uris.contains(&uri::TRANSPORT_WIDE_CC));
    // The RID extensions are receive-only: never sent to consumers.
    assert!(!ext_uris.contains(&uri::RTP_STREAM_ID));
    assert!(!ext_uris.contains(&uri::REPAIRED_RTP_STREAM_ID));
    assert!(c.header_extensions.iter().all(|e| e.id != 9 && e.id != 10));
    let encs: Vec<(Option<u32>, Option<&str>, Option<u32>)> = c
        .encodings
        .iter()
        .map(|e| (e.ssrc, e.rid.as_deref(), e.max_bitrate))
        .collect();
    assert_eq!(
        encs,
        vec![
            (Some(1000), None, Some(100_000)),
            (Some(1001), None, Some(300_000)),
            (Some(1002), None, Some(900_000)),
        ]
    );
    assert_eq!(c.rtcp.reduced_size, Some(true));
    assert_eq!(c.rtcp.cname.as_deref(), Some(""));
    assert_eq!(c.msid, produce.msid);
    assert_eq!(c.mid, None);
}

#[test]
fn device_consumes_simulcast_video_as_one_encoding() {
    let router = rtp::router_rtp_capabilities();
    let p = rtp::negotiate_producer(
        MediaKind::Video,
        &params(&video_produce_json()),
        &router,
        &mut counter(),
    )
    .expect("accepted");
    let device = device_caps();
    assert_eq!(
        rtp::can_consume(&p.consumable_rtp_parameters, &device),
        Ok(true)
    );

    let mut ssrcs = [4242u32, 4343].into_iter();
    let mut next = move || ssrcs.next().unwrap_or(1);
    let options = ConsumerOptions {
        mid: Some("3".into()),
        ..ConsumerOptions::for_kind(MediaKind::Video)
    };
    let consumer =
        rtp::consumer_rtp_parameters(&p.consumable_rtp_parameters, &device, &options, &mut next)
            .expect("consumable");

    let v = serde_json::to_value(&consumer).expect("serialises");
    assert_eq!(v["mid"], json!("3"));
    assert_eq!(
        v["encodings"],
        json!([{ "ssrc": 4242, "rtx": { "ssrc": 4343 }, "scalabilityMode": "L3T3",
                 "maxBitrate": 900000 }])
    );
    assert_eq!(
        v["codecs"],
        json!([
            { "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
              "rtcpFeedback": [
                  { "type": "transport-cc", "parameter": "" },
                  { "type": "ccm", "parameter": "fir" },
                  { "type": "nack", "parameter": "" },
                  { "type": "nack", "parameter": "pli" }
              ] },
            { "mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000,
              "parameters": { "apt": 101 }, "rtcpFeedback": [] }
        ])
    );
    assert_eq!(
        v["headerExtensions"],
        json!([
            { "uri": uri::MID, "id": 1, "encrypt": false, "parameters": {} },
            { "uri": uri::ABS_SEND_TIME, "id": 4, "encrypt": false, "parameters": {} },
            { "uri": uri::TRANSPORT_WIDE_CC, "id": 5, "encrypt": false, "parameters": {} }
        ])
    );
    assert_eq!(v["rtcp"], json!({ "cname": "", "reducedSize": true }));
    assert_eq!(v["msid"], video_produce_json()["msid"]);
}

#[test]
fn audio_is_mapped_and_consumed() {
    let router = rtp::router_rtp_capabilities();
    let p = rtp::negotiate_producer(
        MediaKind::Audio,
        &params(&audio_produce_json()),
        &router,
        &mut counter(),
    )
    .expect("accepted");
    assert_eq!(p.stream_type, RtpStreamType::Simple);
    assert_eq!(p.rtp_mapping.mapped_payload_type(111), Some(100));
    assert_eq!(p.rtp_mapping.encodings[0].ssrc, Some(3_095_228_173));
    assert_eq!(p.rtp_mapping.encodings[0].mapped_ssrc, 1000);
    let c = &p.consumable_rtp_parameters;
    assert_eq!(c.codecs.len(), 1);
    assert_eq!(c.codecs[0].payload_type, 100);
    assert_eq!(c.codecs[0].channels, Some(2));
    // The producer's opus parameters travel to consumers.
    assert_eq!(c.codecs[0].parameters.get_u64("useinbandfec"), Some(1));
    let ext_uris: Vec<&str> = c.header_extensions.iter().map(|e| e.uri.as_str()).collect();
    assert!(ext_uris.contains(&uri::SSRC_AUDIO_LEVEL));
    // Transport-wide CC is receive-only for audio.
    assert!(!ext_uris.contains(&uri::TRANSPORT_WIDE_CC));
    assert_eq!(c.rtcp.cname.as_deref(), Some("qpYKhXG2YAb/xKGS"));

    let device = device_caps();
    assert_eq!(rtp::can_consume(c, &device), Ok(true));
    let consumer = rtp::consumer_rtp_parameters(
        c,
        &device,
        &ConsumerOptions::for_kind(MediaKind::Audio),
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(consumer.codecs.len(), 1);
    assert_eq!(consumer.encodings.len(), 1);
    assert_eq!(consumer.encodings[0].ssrc, Some(1000));
    assert_eq!(consumer.encodings[0].rtx, None);
    assert_eq!(consumer.encodings[0].scalability_mode, None);
    // The device listed its extensions under "video" only; like mediasoup we
    // match by URI and id, so mid and abs-send-time still apply to audio.
    let ext_uris: Vec<&str> = consumer
        .header_extensions
        .iter()
        .map(|e| e.uri.as_str())
        .collect();
    assert_eq!(ext_uris, vec![uri::MID, uri::ABS_SEND_TIME]);
    // No RTX for audio drops plain NACK; abs-send-time without transport-cc
    // drops transport-cc feedback.
    assert!(consumer.codecs[0].rtcp_feedback.is_empty());
}

#[test]
fn single_stream_video_with_rtx() {
    let router = rtp::router_rtp_capabilities();
    let p = rtp::negotiate_producer(
        MediaKind::Video,
        &params(&single_video_json()),
        &router,
        &mut counter(),
    )
    .expect("accepted");
    assert_eq!(p.stream_type, RtpStreamType::Simple);
    assert_eq!(p.rtp_mapping.encodings.len(), 1);
    assert_eq!(p.rtp_mapping.encodings[0].ssrc, Some(4_070_529_480));
    assert_eq!(p.consumable_rtp_parameters.encodings[0].rtx, None);
    let consumer = rtp::consumer_rtp_parameters(
        &p.consumable_rtp_parameters,
        &device_caps(),
        &ConsumerOptions::for_kind(MediaKind::Video),
        &mut counter(),
    )
    .expect("consumable");
    assert_eq!(consumer.encodings[0].scalability_mode, None);
    assert_eq!(consumer.encodings[0].max_bitrate, None);
    assert_eq!(consumer.encodings[0].rtx.map(|r| r.ssrc), Some(2000));
}

#[test]
fn unsupported_codecs_are_refused() {
    let router = rtp::router_rtp_capabilities();
    for (mime, kind) in [
        ("video/VP9", MediaKind::Video),
        ("video/AV1", MediaKind::Video),
        ("video/bogus", MediaKind::Video),
        ("audio/bogus", MediaKind::Audio),
    ] {
        let mut v = if kind == MediaKind::Video {
            single_video_json()
        } else {
            audio_produce_json()
        };
        v["codecs"][0]["mimeType"] = json!(mime);
        let e =
            rtp::negotiate_producer(kind, &params(&v), &router, &mut counter()).expect_err(mime);
        assert!(
            matches!(&e, RtpError::UnsupportedCodec { mime_type, .. } if mime_type == mime),
            "{mime}: {e}"
        );
        assert!(e.is_unsupported());
        assert!(e.to_string().contains(mime), "{e}");
    }
    // A mimeType that is not audio/… or video/… is malformed, not unsupported.
    let mut v = single_video_json();
    v["codecs"][0]["mimeType"] = json!("bogus");
    assert!(matches!(
        rtp::parse_rtp_parameters(&v),
        Err(RtpError::InvalidMimeType(_))
    ));
}

#[test]
fn malformed_produce_parameters_are_refused() {
    let mut v = video_produce_json();
    v.as_object_mut().expect("object").remove("codecs");
    assert!(matches!(
        rtp::parse_rtp_parameters(&v),
        Err(RtpError::Malformed { .. })
    ));

    let mut v = video_produce_json();
    v["codecs"][1]["parameters"] = json!({});
    assert_eq!(rtp::parse_rtp_parameters(&v), Err(RtpError::MissingApt(97)));

    let mut v = video_produce_json();
    v["codecs"][1]["payloadType"] = json!(96);
    assert_eq!(
        rtp::parse_rtp_parameters(&v),
        Err(RtpError::DuplicatedPayloadType(96))
    );

    let mut v = video_produce_json();
    v["codecs"] = json!([]);
    assert_eq!(rtp::parse_rtp_parameters(&v), Err(RtpError::NoMediaCodec));

    let mut v = video_produce_json();
    v["encodings"][1]["ssrc"] = json!("1234");
    assert!(matches!(
        rtp::parse_rtp_parameters(&v),
        Err(RtpError::Malformed { .. })
    ));
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = video_produce_json();
    v["future"] = json!({ "x": 1 });
    v["codecs"][0]["future"] = json!(true);
    v["encodings"][0]["priority"] = json!("high");
    v["headerExtensions"][0]["future"] = json!([]);
    v["rtcp"]["future"] = json!(null);
    let p = params(&v);
    assert_eq!(p, params(&video_produce_json()));
    let mut caps = device_caps_json();
    caps["future"] = json!(1);
    caps["codecs"][0]["future"] = json!("x");
    caps["headerExtensions"][0]["future"] = json!(2);
    assert_eq!(
        rtp::parse_rtp_capabilities(&caps).expect("valid"),
        device_caps()
    );
}
