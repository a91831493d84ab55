//! Records real encoded media (committed fixtures made with ffmpeg) sent as
//! RTP through a lossy, reordering network, and checks the files with
//! Debian's ffprobe and ffmpeg. These tests fail, not skip, without them.

mod support;

use std::fs::File;
use std::io::BufWriter;
use std::time::{Duration, Instant};

use support::media::{Packetizer, annexb_access_units, ivf_frames, ogg_opus_packets};
use support::{
    Network, assert_about, assert_decodes_cleanly, doc_type, fixture, out_dir, probe, record,
};
use vtp_recording::{
    Codec, Kind, Manifest, ManifestTrack, RecorderConfig, RecorderEvent, RtpPacket, TrackRecorder,
    repair_file,
};

/// RTP time to the time it is sent (the sender's clock follows the media).
fn at(rtp_time: u32, clock_rate: u32) -> Duration {
    Duration::from_micros(u64::from(rtp_time) * 1_000_000 / u64::from(clock_rate))
}

fn vp8_packets() -> Vec<(Duration, RtpPacket)> {
    // Sequence numbers and timestamps start near their wrap points.
    let mut packetizer = Packetizer::new(65_500, u32::MAX - 90_000);
    ivf_frames(&fixture("vp8-320x240-15fps-5s.ivf"))
        .iter()
        .flat_map(|frame| {
            let sent = at(frame.rtp_time, 90_000);
            packetizer.vp8(frame).into_iter().map(move |p| (sent, p))
        })
        .collect()
}

fn opus_packets() -> Vec<(Duration, RtpPacket)> {
    let mut packetizer = Packetizer::new(65_000, 12_345);
    ogg_opus_packets(&fixture("opus-48k-stereo-5s.ogg"))
        .iter()
        .flat_map(|frame| {
            let sent = at(frame.rtp_time, 48_000);
            packetizer.opus(frame).into_iter().map(move |p| (sent, p))
        })
        .collect()
}

fn h264_packets() -> Vec<(Duration, RtpPacket)> {
    let mut packetizer = Packetizer::new(100, 0);
    annexb_access_units(&fixture("h264-320x240-15fps-5s.h264"), 15)
        .iter()
        .flat_map(|(time, nals)| {
            let sent = at(*time, 90_000);
            packetizer
                .h264(*time, nals)
                .into_iter()
                .map(move |p| (sent, p))
        })
        .collect()
}

fn assert_no_loss(events: &[RecorderEvent]) {
    let lost = events
        .iter()
        .filter(|e| matches!(e, RecorderEvent::Lost { .. }))
        .count();
    let requests = events
        .iter()
        .filter(|e| **e == RecorderEvent::KeyframeRequest)
        .count();
    assert_eq!(lost, 0, "{events:?}");
    // Only the request made before the first keyframe.
    assert!(requests <= 1, "{events:?}");
}

#[test]
fn vp8_with_reordering_duplicates_and_retransmissions() {
    let dir = out_dir("vp8");
    let path = dir.join("camera.webm");
    let events = record(
        Codec::Vp8,
        Network::impaired().deliver(vp8_packets()),
        &path,
        true,
    );
    assert_no_loss(&events);
    let p = probe(&path);
    assert_eq!(
        (p.codec.as_str(), p.width, p.height),
        ("vp8", Some(320), Some(240)),
        "{p:?}"
    );
    assert_eq!(doc_type(&path), "webm");
    assert_eq!(p.packets, 75);
    assert_about(p.duration, 5.0, "VP8 duration");
    assert_decodes_cleanly(&path);
}

#[test]
fn opus_with_reordering_duplicates_and_retransmissions() {
    let dir = out_dir("opus");
    let path = dir.join("mic.webm");
    let sent = opus_packets();
    let count = sent.len();
    let events = record(Codec::Opus, Network::impaired().deliver(sent), &path, true);
    assert_no_loss(&events);
    let p = probe(&path);
    assert_eq!(p.codec, "opus", "{p:?}");
    assert_eq!(doc_type(&path), "webm");
    assert_eq!(p.packets, count);
    assert_about(p.duration, 5.0, "Opus duration");
    assert_decodes_cleanly(&path);
}

#[test]
fn h264_with_reordering_duplicates_and_retransmissions() {
    let dir = out_dir("h264");
    let path = dir.join("camera.mkv");
    let events = record(
        Codec::H264,
        Network::impaired().deliver(h264_packets()),
        &path,
        true,
    );
    assert_no_loss(&events);
    let p = probe(&path);
    assert_eq!(
        (p.codec.as_str(), p.width, p.height),
        ("h264", Some(320), Some(240)),
        "{p:?}"
    );
    // WebM does not allow H.264: plain Matroska.
    assert_eq!(doc_type(&path), "matroska");
    assert_eq!(p.packets, 75);
    assert_about(p.duration, 5.0, "H.264 duration");
    assert_decodes_cleanly(&path);
}

#[test]
fn video_loss_skips_to_the_next_keyframe_and_still_decodes_cleanly() {
    let dir = out_dir("vp8-loss");
    for (codec, sent, name) in [
        (Codec::Vp8, vp8_packets(), "camera.webm"),
        (Codec::H264, h264_packets(), "camera.mkv"),
    ] {
        let path = dir.join(name);
        // Two packets lost for good in the first GOP (keyframes every 2 s).
        let network = Network {
            lost: vec![40, 41],
            ..Network::impaired()
        };
        let events = record(codec, network.deliver(sent), &path, true);
        assert!(
            events.contains(&RecorderEvent::Lost { count: 2 }),
            "{events:?}"
        );
        let requests = events
            .iter()
            .filter(|e| **e == RecorderEvent::KeyframeRequest)
            .count();
        // One at the start, one after the loss, then one a second until the
        // keyframe comes (the fixture's come every 2 s whatever is asked).
        assert!((2..=3).contains(&requests), "{codec:?}: {events:?}");
        let p = probe(&path);
        assert!(p.packets < 75 && p.packets >= 40, "{codec:?}: {p:?}");
        eprintln!("{codec:?}: {} of 75 frames kept after the loss", p.packets);
        assert_about(p.duration, 5.0, "duration with a gap");
        assert_decodes_cleanly(&path);
    }
}

#[test]
fn files_cut_anywhere_by_a_crash_are_repaired_and_play() {
    let dir = out_dir("crash");
    let recordings = [
        (Codec::Vp8, vp8_packets(), "camera.webm"),
        (Codec::Opus, opus_packets(), "mic.webm"),
        (Codec::H264, h264_packets(), "camera.mkv"),
    ];
    for (codec, sent, name) in recordings {
        // Not finalized: as the file is on disk while recording.
        let live = dir.join(name);
        record(codec, Network::impaired().deliver(sent), &live, false);
        let whole = probe(&live);
        assert_about(whole.duration, 5.0, "unfinalized duration");
        assert_decodes_cleanly(&live);
        let bytes = std::fs::read(&live).unwrap();
        for percent in [9, 33, 50, 77, 99] {
            let cut = dir.join(format!("cut-{percent}-{name}"));
            std::fs::write(&cut, &bytes[..bytes.len() * percent / 100 + 3]).unwrap();
            let report = repair_file(&cut).unwrap();
            assert!(
                report.playable && report.truncated() && report.reindexed,
                "{codec:?} at {percent}%: {report:?}"
            );
            let p = probe(&cut);
            assert!(
                p.duration < whole.duration && p.duration > 0.0,
                "{codec:?} at {percent}%: {p:?}"
            );
            assert!(
                (p.duration - report.duration_ms as f64 / 1000.0).abs() < 0.1,
                "{codec:?} at {percent}%: ffprobe {} s, repair {} ms",
                p.duration,
                report.duration_ms
            );
            assert_decodes_cleanly(&cut);
        }
    }
}

#[test]
fn a_recorder_killed_mid_track_leaves_files_that_repair_and_play() {
    let dir = out_dir("killed");
    let recordings = [
        (Codec::Vp8, vp8_packets(), "camera.webm"),
        (Codec::Opus, opus_packets(), "mic.webm"),
        (Codec::H264, h264_packets(), "camera.mkv"),
    ];
    for (codec, sent, name) in recordings {
        let path = dir.join(name);
        let t0 = Instant::now();
        let sink = BufWriter::with_capacity(8 * 1024, File::create(&path).unwrap());
        let mut recorder = TrackRecorder::new(RecorderConfig::new(codec, t0), sink);
        let delivered = Network::impaired().deliver(sent);
        let mut flushed = Duration::ZERO;
        // Three seconds in, flushing once a second as a server would...
        for (at, packet) in delivered
            .into_iter()
            .take_while(|(at, _)| *at < Duration::from_secs(3))
        {
            recorder.push_rtp(packet, t0 + at).unwrap();
            if at >= flushed + Duration::from_secs(1) {
                recorder.flush().unwrap();
                flushed = at;
            }
        }
        // ...then SIGKILL: no flush, no finalize; what the buffer held is lost.
        std::mem::forget(recorder);
        let report = repair_file(&path).unwrap();
        assert!(report.playable && report.reindexed, "{codec:?}: {report:?}");
        let p = probe(&path);
        assert!(p.duration > 1.5 && p.duration < 3.0, "{codec:?}: {p:?}");
        assert_decodes_cleanly(&path);
    }
}

#[test]
fn a_two_track_recording_and_its_manifest_line_up() {
    let dir = out_dir("manifest");
    // The microphone starts 1.5 s after the camera.
    let late = Duration::from_millis(1500);
    let opus: Vec<_> = opus_packets()
        .into_iter()
        .map(|(at, p)| (at + late, p))
        .collect();
    let mut manifest = Manifest::new(
        "rec-1".into(),
        "room-1".into(),
        "session-1".into(),
        1_700_000_000_000,
    );
    for (codec, sent, name, source) in [
        (Codec::Vp8, vp8_packets(), "peer-a-camera.webm", "camera"),
        (Codec::Opus, opus, "peer-a-mic.webm", "mic"),
    ] {
        let path = dir.join(name);
        let events = record(codec, Network::impaired().deliver(sent), &path, true);
        let offset = events
            .iter()
            .find_map(|e| match e {
                RecorderEvent::Started { offset } => Some(*offset),
                _ => None,
            })
            .unwrap();
        let p = probe(&path);
        manifest.tracks.push(ManifestTrack {
            file: name.into(),
            peer_id: "peer-a".into(),
            user_id: "user-a".into(),
            kind: codec.kind(),
            codec,
            source: source.into(),
            start_offset_ms: offset.as_millis() as u64,
            duration_ms: (p.duration * 1000.0) as u64,
            bytes: std::fs::metadata(&path).unwrap().len(),
        });
    }
    let json = manifest.to_json().unwrap();
    std::fs::write(dir.join("manifest.json"), &json).unwrap();
    let read =
        Manifest::from_json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(read, manifest);
    let [camera, mic] = &read.tracks[..] else {
        panic!()
    };
    // Each file starts at 0; the offsets (first frame's arrival, 10 ms of
    // network) put the microphone 1.5 s after the camera.
    assert_eq!(mic.start_offset_ms - camera.start_offset_ms, 1500, "{json}");
    assert!(camera.start_offset_ms < 100, "{json}");
    assert_eq!((camera.kind, mic.kind), (Kind::Video, Kind::Audio));
    assert!(camera.bytes > 50_000 && mic.bytes > 20_000, "{json}");
}
