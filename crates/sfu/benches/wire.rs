//! The packet reading the engine and the driver do themselves, against
//! str0m's own readers of the same bytes (the reasons next to `wire` and
//! `vp8` in `engine/` cite these figures):
//!
//! - `stun`: routing a STUN Binding request by its USERNAME, as a browser
//!   sends it (USERNAME, ICE-CONTROLLING, USE-CANDIDATE, PRIORITY,
//!   MESSAGE-INTEGRITY, FINGERPRINT), and telling an RTP packet is not
//!   STUN (what every media datagram goes through);
//! - `vp8`: reading a Chromium VP8 payload descriptor.
//!
//! Run: `cargo bench -p vtp-sfu --bench wire`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use str0m::ice::{StunMessage, TransId};
use vtp_sfu::engine::parse_stun;
use vtp_sfu::engine::vp8::parse_vp8;

/// A Binding request written by str0m's ICE agent code, with a dummy HMAC
/// (routing never checks it).
fn binding_request() -> Vec<u8> {
    let username = "Vq3xk9TbHlWm2pZe:b7Qf";
    let message = StunMessage::binding_request(
        username,
        TransId::new(),
        true,
        0x1234_5678,
        0x6e7f_1eff,
        true,
    );
    let mut buf = vec![0u8; 1500];
    let len = message
        .to_bytes(Some(b"password"), &mut buf, |_, _| [0u8; 20])
        .expect("serialized");
    buf.truncate(len);
    buf
}

fn stun(c: &mut Criterion) {
    let request = binding_request();
    let mut rtp = vec![0x90u8, 96, 0, 1, 0, 0, 0, 90, 0, 0, 0x04, 0x57];
    rtp.resize(1100, 0x10);
    assert_eq!(
        parse_stun(&request).and_then(|s| s.local_ufrag()),
        Some("Vq3xk9TbHlWm2pZe")
    );
    assert!(StunMessage::parse(&request).is_ok());

    let mut group = c.benchmark_group("stun");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("binding_request/vtp", |b| {
        b.iter(|| parse_stun(black_box(&request)).and_then(|s| s.local_ufrag()))
    });
    group.bench_function("binding_request/str0m", |b| {
        b.iter(|| {
            StunMessage::parse(black_box(&request))
                .ok()
                .and_then(|m| m.split_username().map(|(local, _)| local.len()))
        })
    });
    group.bench_function("rtp/vtp", |b| {
        b.iter(|| parse_stun(black_box(&rtp)).is_some())
    });
    group.bench_function("rtp/str0m", |b| {
        b.iter(|| StunMessage::parse(black_box(&rtp)).is_ok())
    });
    group.finish();
}

fn vp8(c: &mut Criterion) {
    // X, S; I L T; 15-bit picture id; TL0PICIDX; TID 0; a keyframe's header.
    let mut payload = vec![0x90u8, 0xE0, 0x80 | 0x12, 0x34, 0x56, 0x00];
    payload.resize(1100, 0x10);
    let mut group = c.benchmark_group("vp8");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("descriptor/vtp", |b| {
        b.iter(|| parse_vp8(black_box(&payload)))
    });
    group.bench_function("descriptor/str0m", |b| {
        b.iter(|| str0m::rtp::Vp8Descriptor::parse(black_box(&payload)).ok())
    });
    group.finish();
}

criterion_group!(benches, stun, vp8);
criterion_main!(benches);
