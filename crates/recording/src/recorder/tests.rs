//! Unit tests of the recorder with synthetic VP8 and Opus packets.

use std::io::Cursor;

use super::*;
use crate::repair::scan;

const KEY: [u8; 12] = [
    0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00, 0xAA, 0xBB,
];
const INTER: [u8; 4] = [0x51, 0x00, 0x00, 0xCC];

/// Frame `n` (15 fps) as two packets: seq 2n and 2n+1.
fn vp8_packets(n: u16, key: bool) -> [RtpPacket; 2] {
    let data: &[u8] = if key { &KEY } else { &INTER };
    let ts = u32::from(n) * 6000;
    let (head, tail) = data.split_at(2);
    let mut first = vec![0x10];
    first.extend_from_slice(head);
    let mut second = vec![0x00];
    second.extend_from_slice(tail);
    [
        RtpPacket {
            sequence_number: 2 * n,
            timestamp: ts,
            marker: false,
            payload: first,
        },
        RtpPacket {
            sequence_number: 2 * n + 1,
            timestamp: ts,
            marker: true,
            payload: second,
        },
    ]
}

fn events<W: Write>(r: &mut TrackRecorder<W>) -> Vec<RecorderEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(epoch: Instant) -> RecorderConfig {
    RecorderConfig {
        jitter: JitterConfig {
            max_delay: ms(100),
            max_packets: 100,
        },
        ..RecorderConfig::new(Codec::Vp8, epoch)
    }
}

#[test]
fn video_starts_at_a_keyframe_and_restarts_at_one_after_a_loss() {
    let t0 = Instant::now();
    let mut r = TrackRecorder::new(config(t0), Cursor::new(Vec::new()));
    // Frames 0..30, keyframes at 2 and 20; frame 8's second packet lost.
    for n in 0..30u16 {
        let now = t0 + ms(500 + u64::from(n) * 66);
        for p in vp8_packets(n, n == 2 || n == 20) {
            if p.sequence_number != 17 {
                r.push_rtp(p, now).unwrap();
            }
        }
    }
    let ev = events(&mut r);
    assert_eq!(ev[0], RecorderEvent::KeyframeRequest, "{ev:?}");
    assert!(
        ev.contains(&RecorderEvent::Started {
            offset: ms(500 + 2 * 66)
        }),
        "{ev:?}"
    );
    assert!(ev.contains(&RecorderEvent::Lost { count: 1 }), "{ev:?}");
    assert_eq!(
        ev.iter()
            .filter(|e| **e == RecorderEvent::KeyframeRequest)
            .count(),
        2,
        "{ev:?}"
    );
    assert_eq!(r.start_offset(), Some(ms(632)));
    let stats = r.stats();
    // Written: 2..=7 and 20..=29 (the last ones once finished).
    let Finished::Written(writer) = r.finish().unwrap() else {
        panic!("nothing written")
    };
    let file = writer.into_inner().unwrap().into_inner();
    let report = scan(&mut Cursor::new(&file)).unwrap();
    assert_eq!(report.blocks, 6 + 10);
    // 27 frames of 66.7 ms after the first keyframe.
    assert_eq!(report.duration_ms, 1800);
    assert_eq!(stats.frames_skipped, 2 + 11);
    assert_eq!(stats.keyframe_requests, 2);
}

#[test]
fn unanswered_keyframe_requests_are_repeated() {
    let t0 = Instant::now();
    let mut r = TrackRecorder::new(config(t0), Vec::new());
    r.push_rtp(vp8_packets(0, false)[0].clone(), t0).unwrap();
    assert_eq!(events(&mut r), [RecorderEvent::KeyframeRequest]);
    assert_eq!(r.poll_timeout(), Some(t0 + ms(100)));
    r.handle_timeout(t0 + ms(100)).unwrap();
    assert!(events(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(t0 + ms(1000)));
    r.handle_timeout(t0 + ms(1000)).unwrap();
    assert_eq!(events(&mut r), [RecorderEvent::KeyframeRequest]);
    assert!(matches!(r.finish().unwrap(), Finished::Empty(sink) if sink.is_empty()));
}

#[test]
fn size_and_duration_limits_stop_the_track() {
    let t0 = Instant::now();
    let cases = [
        (
            RecorderConfig {
                max_bytes: Some(600),
                ..config(t0)
            },
            Limit::Size,
        ),
        (
            RecorderConfig {
                max_duration: Some(ms(1000)),
                ..config(t0)
            },
            Limit::Duration,
        ),
    ];
    for (config, limit) in cases {
        let mut r = TrackRecorder::new(config, Vec::new());
        for n in 0..60u16 {
            for p in vp8_packets(n, n % 15 == 0) {
                r.push_rtp(p, t0 + ms(u64::from(n) * 66)).unwrap();
            }
        }
        let ev = events(&mut r);
        assert!(ev.contains(&RecorderEvent::LimitReached(limit)), "{ev:?}");
        assert_eq!(r.stopped(), Some(limit));
        match limit {
            Limit::Size => assert!(
                r.bytes_written() <= 600 && r.bytes_written() > 500,
                "{}",
                r.bytes_written()
            ),
            // The frame at 1000 ms is the last one, 67 ms after the one before.
            Limit::Duration => assert_eq!(r.duration(), ms(1067)),
        }
        let Finished::Written(w) = r.finish().unwrap() else {
            panic!()
        };
        assert!(w.bytes_written() <= 600 || limit == Limit::Duration);
    }
}

#[test]
fn opus_gaps_are_only_gaps_and_timestamps_wrap() {
    let t0 = Instant::now();
    let mut r = TrackRecorder::new(
        RecorderConfig::new(Codec::Opus, t0),
        Cursor::new(Vec::new()),
    );
    let start = u32::MAX - 960 * 10;
    for n in 0..100u16 {
        if n == 50 {
            continue;
        }
        let packet = RtpPacket {
            sequence_number: n.wrapping_add(65500),
            timestamp: start.wrapping_add(u32::from(n) * 960),
            marker: n == 0,
            payload: vec![0xFC, n as u8],
        };
        r.push_rtp(packet, t0 + ms(u64::from(n) * 20)).unwrap();
    }
    r.handle_timeout(t0 + ms(5000)).unwrap();
    let ev = events(&mut r);
    assert!(!ev.contains(&RecorderEvent::KeyframeRequest));
    assert!(ev.contains(&RecorderEvent::Lost { count: 1 }));
    let w = match r.finish().unwrap() {
        Finished::Written(w) => w,
        Finished::Empty(_) => panic!("nothing written"),
    };
    assert_eq!((w.frames(), w.duration_ms()), (99, 2000));
}

#[test]
fn rtp_time_jumps_are_not_followed() {
    let t0 = Instant::now();
    let mut r = TrackRecorder::new(config(t0), Cursor::new(Vec::new()));
    for n in 0..40u16 {
        let mut packets = vp8_packets(n, n == 0 || n == 20);
        for p in &mut packets {
            // The encoder restarts at frame 20 with a random clock.
            if n >= 20 {
                p.timestamp = p.timestamp.wrapping_add(2_000_000_000);
            }
        }
        for p in packets {
            r.push_rtp(p, t0 + ms(u64::from(n) * 66)).unwrap();
        }
    }
    let Finished::Written(w) = r.finish().unwrap() else {
        panic!()
    };
    // 40 frames, 66.7 ms apart by RTP and 66 ms by arrival.
    assert!(
        (2580..=2680).contains(&w.duration_ms()),
        "{}",
        w.duration_ms()
    );
}

#[test]
fn random_packets_never_panic() {
    let t0 = Instant::now();
    for codec in [Codec::Vp8, Codec::H264, Codec::Opus] {
        let mut r = TrackRecorder::new(RecorderConfig::new(codec, t0), Vec::new());
        let mut x: u32 = 5;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            x >> 8
        };
        for i in 0..3000u64 {
            let len = (next() % 40) as usize;
            let payload = (0..len).map(|_| next() as u8).collect();
            let packet = RtpPacket {
                sequence_number: (i as u16).wrapping_add((next() % 5) as u16),
                timestamp: (i as u32 / 3) * 3000 + next() % 2,
                marker: next() % 3 == 0,
                payload,
            };
            r.push_rtp(packet, t0 + ms(i * 5)).unwrap();
            while r.poll_event().is_some() {}
        }
        r.finish().unwrap();
    }
}
