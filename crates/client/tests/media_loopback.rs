//! The media peer against the real SFU engine over real UDP on 127.0.0.1.
//!
//! A small loop stands in for the sfu-driver: one socket, one task that
//! feeds datagrams and timeouts to `vtp_sfu::engine::Engine` and sends its
//! transmits. Control calls go to the engine with the JSON the Socket.IO
//! layer would pass (`create-transport` answers, `connect-transport`,
//! `produce`, `consume`, `resume-consumer`).

#[path = "../../server/tests/server/common/wait.rs"]
mod wait;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use vtp_client::media::{Kind, MediaEvent};
use vtp_client::{AudioOptions, KeyframeKind, MediaPeer, VideoOptions};
use vtp_sfu::engine::forward::KEYFRAME_REQUEST_INTERVAL;
use vtp_sfu::engine::{Engine, EngineConfig, EngineEvent, EngineOutput, TransportOptions};
use vtp_sfu::rtp::MediaKind;
use wait::{wait_for, wait_until};

const WAIT: Duration = Duration::from_secs(5);
/// For waits on media sent in real time (seconds of it), on a busy machine.
const MEDIA_WAIT: Duration = Duration::from_secs(20);

/// The engine behind a UDP socket.
/// Drop every `every`-th RTP packet of SSRC `ssrc` that the SFU sends.
#[derive(Clone, Copy)]
struct Loss {
    ssrc: u32,
    every: u64,
}

/// The engine's time: the real one, moved ahead by a test that must see
/// the engine's own timers (rate limits) run out without waiting for them.
#[derive(Clone, Default)]
struct Clock {
    ahead: Arc<Mutex<Duration>>,
}

impl Clock {
    fn now(&self) -> Instant {
        Instant::now() + self.ahead()
    }

    fn ahead(&self) -> Duration {
        *self.ahead.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        *self.ahead.lock().unwrap() += by;
    }
}

struct Sfu {
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    loss: Arc<Mutex<Option<Loss>>>,
    events: Arc<Mutex<Vec<EngineEvent>>>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Sfu {
    async fn start() -> Sfu {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let engine = Arc::new(Mutex::new(Engine::new(EngineConfig::new(addr)).unwrap()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let wake = Arc::new(Notify::new());
        let loss = Arc::new(Mutex::new(None));
        let clock = Clock::default();
        let task = tokio::spawn(drive(
            socket,
            engine.clone(),
            clock.clone(),
            events.clone(),
            wake.clone(),
            loss.clone(),
        ));
        Sfu {
            engine,
            clock,
            loss,
            events,
            wake,
            task,
        }
    }

    /// Runs a control call on the engine and wakes the loop for its outputs.
    fn call<T>(&self, f: impl FnOnce(&mut Engine, Instant) -> T) -> T {
        let r = f(&mut self.engine.lock().unwrap(), self.clock.now());
        self.wake.notify_one();
        r
    }

    fn events(&self) -> MutexGuard<'_, Vec<EngineEvent>> {
        self.events.lock().unwrap()
    }

    fn router_caps(&self) -> Value {
        self.call(|e, _| serde_json::to_value(e.router_rtp_capabilities("room").unwrap()).unwrap())
    }

    fn create_transport(&self, id: &str) -> Value {
        self.call(|e, _| {
            let info = e
                .create_webrtc_transport("room", id, TransportOptions::default())
                .unwrap();
            serde_json::to_value(info).unwrap()
        })
    }
}

impl Drop for Sfu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The SSRC of a plain RTP datagram (SRTP leaves the header in the clear).
fn rtp_ssrc(bytes: &[u8]) -> Option<u32> {
    let is_rtp = bytes.len() > 12 && bytes[0] >> 6 == 2 && !(192..=223).contains(&bytes[1]);
    is_rtp.then(|| u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]))
}

async fn drive(
    socket: UdpSocket,
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    events: Arc<Mutex<Vec<EngineEvent>>>,
    wake: Arc<Notify>,
    loss: Arc<Mutex<Option<Loss>>>,
) {
    let mut buf = vec![0u8; 4096];
    let mut seen = 0u64;
    loop {
        let (out, deadline) = {
            let mut e = engine.lock().unwrap();
            let now = clock.now();
            if e.next_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
            let mut out = Vec::new();
            while let Some(o) = e.poll_output() {
                match o {
                    EngineOutput::Transmit {
                        destination, bytes, ..
                    } => out.push((destination, bytes)),
                    EngineOutput::Event(ev) => events.lock().unwrap().push(ev),
                    EngineOutput::Tapped { .. } => {}
                }
            }
            let deadline = e
                .next_timeout()
                .unwrap_or(now + Duration::from_millis(100))
                .max(now + Duration::from_micros(200));
            // In real time, for the timer below.
            (out, deadline - clock.ahead())
        };
        let loss = *loss.lock().unwrap();
        for (dest, bytes) in out {
            if let Some(l) = loss
                && rtp_ssrc(&bytes) == Some(l.ssrc)
            {
                seen += 1;
                if seen.is_multiple_of(l.every) {
                    continue;
                }
            }
            let _ = socket.send_to(&bytes, dest).await;
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    engine.lock().unwrap().handle_datagram(clock.now(), src, &buf[..n]);
                }
            }
            // The engine's next timeout, unless a datagram or a call comes first.
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {} // sleep-ok: a timer
            _ = wake.notified() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_consume_video_and_audio() {
    let sfu = Sfu::start().await;
    sfu.call(|e, _| e.create_router("room").map(|_| ()).unwrap());
    let router_caps = sfu.router_caps();

    // A: send transport, VP8 + opus.
    let a = MediaPeer::new();
    let ta = a
        .create_send_transport(&sfu.create_transport("ta"))
        .await
        .unwrap();
    let dtls = ta.dtls_parameters();
    assert_eq!(dtls["role"], "client");
    assert_eq!(dtls["fingerprints"][0]["algorithm"], "sha-256");
    sfu.call(|e, now| e.connect_transport("ta", &dtls, now))
        .unwrap();
    let video = ta.produce_video(VideoOptions::default()).unwrap();
    let audio = ta.produce_audio(AudioOptions::default()).unwrap();
    let vp = video.rtp_parameters().clone();
    let ap = audio.rtp_parameters().clone();
    assert_eq!(vp["codecs"][0]["payloadType"], 96);
    assert_eq!(vp["codecs"][1]["parameters"]["apt"], 96);
    assert!(vp["encodings"][0]["rtx"]["ssrc"].is_u64());
    assert_eq!(ap["codecs"][0]["payloadType"], 111);
    sfu.call(|e, now| e.produce("ta", "pv", MediaKind::Video, &vp, now))
        .unwrap();
    sfu.call(|e, now| e.produce("ta", "pa", MediaKind::Audio, &ap, now))
        .unwrap();

    // B: receive transport, consumes both (consume before connect, as
    // mediasoup-client does).
    let b = MediaPeer::new();
    let tb = b
        .create_recv_transport(&sfu.create_transport("tb"), &router_caps)
        .await
        .unwrap();
    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let cv = sfu
        .call(|e, now| e.consume("tb", "cv", "pv", &caps, now))
        .unwrap();
    let ca = sfu
        .call(|e, now| e.consume("tb", "ca", "pa", &caps, now))
        .unwrap();
    let consumer_v = tb.consume(&serde_json::to_value(&cv).unwrap()).unwrap();
    let consumer_a = tb.consume(&serde_json::to_value(&ca).unwrap()).unwrap();
    assert_eq!(consumer_v.kind(), Kind::Video);
    assert_eq!(consumer_a.producer_id(), "pa");
    let dtls_b = tb.dtls_parameters();
    sfu.call(|e, now| e.connect_transport("tb", &dtls_b, now))
        .unwrap();

    ta.wait_connected(WAIT).await.expect("A connected");
    tb.wait_connected(WAIT).await.expect("B connected");
    for t in ["ta", "tb"] {
        let ev = EngineEvent::TransportConnected {
            transport_id: t.into(),
        };
        wait_until(WAIT, &format!("{t} connected at the SFU"), async || {
            sfu.events().contains(&ev)
        })
        .await;
    }

    // Resuming the video consumer asks A for a keyframe.
    let mut a_events = ta.events();
    let before = video.keyframe_requests();
    sfu.call(|e, now| e.resume_consumer("cv", now)).unwrap();
    sfu.call(|e, now| e.resume_consumer("ca", now)).unwrap();
    video
        .wait_keyframe_requests(before + 1, WAIT)
        .await
        .expect("keyframe request at A after resume");
    let ev = tokio::time::timeout(WAIT, a_events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&ev, MediaEvent::KeyframeRequested { mid, kind: KeyframeKind::Pli, .. } if mid == video.mid()),
        "{ev:?}"
    );

    // ~2 s of media.
    video.start();
    audio.start();
    wait_until(
        MEDIA_WAIT,
        "60 frames and 100 audio packets sent",
        async || video.stats().frames >= 60 && audio.stats().packets >= 100,
    )
    .await;
    video.stop();
    audio.stop();
    let sent_v = video.stats();
    let sent_a = audio.stats();
    let rv = consumer_v
        .wait_until(WAIT, |s| s.packets >= sent_v.packets)
        .await
        .unwrap_or_else(|_| consumer_v.stats());
    let ra = consumer_a
        .wait_until(WAIT, |s| s.packets >= sent_a.packets)
        .await
        .unwrap_or_else(|_| consumer_a.stats());
    eprintln!("sent video {sent_v:?}\nsent audio {sent_a:?}\nrecv video {rv:?}\nrecv audio {ra:?}");

    assert!(rv.packets * 100 >= sent_v.packets * 95, "video ≥95%");
    assert!(ra.packets * 100 >= sent_a.packets * 95, "audio ≥95%");
    for r in [&rv, &ra] {
        assert_eq!(r.integrity_failures, 0, "{r:?}");
        assert_eq!(r.duplicates, 0, "{r:?}");
        assert!(r.first_packet_at.is_some());
    }
    assert!(rv.frames * 100 >= sent_v.frames * 95, "video frames");
    assert!(rv.keyframes >= 1, "the first frame is a keyframe");
    assert!(rv.keyframes <= sent_v.keyframes);
    assert_eq!(ra.frames, ra.packets);

    let stats = b.stats();
    assert_eq!(stats.consumers.len(), 2);
    assert!(stats.transports[0].connected);
    assert!(stats.transports[0].datagrams_in > 0);
    a.close();
    b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_keyframe_request_and_wrong_input() {
    let sfu = Sfu::start().await;
    sfu.call(|e, _| e.create_router("room").map(|_| ()).unwrap());
    let router_caps = sfu.router_caps();
    let a = MediaPeer::new();
    let ta = a
        .create_send_transport(&sfu.create_transport("ta"))
        .await
        .unwrap();
    let dtls = ta.dtls_parameters();
    sfu.call(|e, now| e.connect_transport("ta", &dtls, now))
        .unwrap();
    let video = ta
        .produce_video(VideoOptions {
            simulcast: true,
            bitrate_bps: 700_000,
            ..Default::default()
        })
        .unwrap();
    let vp = video.rtp_parameters().clone();
    assert_eq!(vp["encodings"].as_array().unwrap().len(), 3);
    assert_eq!(vp["encodings"][2]["rid"], "r2");
    sfu.call(|e, now| e.produce("ta", "pv", MediaKind::Video, &vp, now))
        .unwrap();

    let b = MediaPeer::new();
    let tb = b
        .create_recv_transport(&sfu.create_transport("tb"), &router_caps)
        .await
        .unwrap();
    // Direction and shape errors, no panics.
    assert!(tb.produce_audio(AudioOptions::default()).is_err());
    assert!(tb.consume(&serde_json::json!({"id": 3})).is_err());
    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let cv = sfu
        .call(|e, now| e.consume("tb", "cv", "pv", &caps, now))
        .unwrap();
    let mut cv_json = serde_json::to_value(&cv).unwrap();
    let mut wrong_pt = cv_json.clone();
    wrong_pt["rtpParameters"]["codecs"][0]["payloadType"] = 55.into();
    assert!(tb.consume(&wrong_pt).is_err());
    let consumer = tb.consume(&cv_json).unwrap();
    assert!(tb.consume(&cv_json).is_err(), "same mid twice");
    cv_json["rtpParameters"]["mid"] = "x".into();
    assert!(tb.consume(&cv_json).is_err(), "same ssrc twice");
    let dtls_b = tb.dtls_parameters();
    sfu.call(|e, now| e.connect_transport("tb", &dtls_b, now))
        .unwrap();
    ta.wait_connected(WAIT).await.unwrap();
    tb.wait_connected(WAIT).await.unwrap();
    video.start();
    sfu.call(|e, now| e.resume_consumer("cv", now)).unwrap();
    let got = consumer
        .wait_until(WAIT, |s| s.frames >= 10 && s.keyframes >= 1)
        .await
        .expect("r0 frames at B");
    assert_eq!(got.integrity_failures, 0);

    // A PLI from B reaches A once the SFU's keyframe-request interval
    // since the last request (at the resume) is over.
    sfu.clock.advance(KEYFRAME_REQUEST_INTERVAL);
    let before = video.keyframe_requests();
    let keyframes_before = consumer.stats().keyframes;
    consumer.request_keyframe(KeyframeKind::Pli).unwrap();
    video
        .wait_keyframe_requests(before + 1, WAIT)
        .await
        .expect("PLI from B at A");
    consumer
        .wait_until(WAIT, |s| s.keyframes > keyframes_before)
        .await
        .expect("a new keyframe at B");
    let sent = video.stats();
    assert_eq!(sent.layers.len(), 3);
    assert!(sent.layers.iter().all(|l| l.packets > 0));
    assert_eq!(consumer.stats().keyframe_requests_sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_are_repaired_by_nack_and_rtx() {
    let sfu = Sfu::start().await;
    sfu.call(|e, _| e.create_router("room").map(|_| ()).unwrap());
    let router_caps = sfu.router_caps();
    let a = MediaPeer::new();
    let ta = a
        .create_send_transport(&sfu.create_transport("ta"))
        .await
        .unwrap();
    let dtls = ta.dtls_parameters();
    sfu.call(|e, now| e.connect_transport("ta", &dtls, now))
        .unwrap();
    let video = ta.produce_video(VideoOptions::default()).unwrap();
    let vp = video.rtp_parameters().clone();
    sfu.call(|e, now| e.produce("ta", "pv", MediaKind::Video, &vp, now))
        .unwrap();
    let b = MediaPeer::new();
    let tb = b
        .create_recv_transport(&sfu.create_transport("tb"), &router_caps)
        .await
        .unwrap();
    let caps = MediaPeer::rtp_capabilities(&router_caps).unwrap();
    let cv = sfu
        .call(|e, now| e.consume("tb", "cv", "pv", &caps, now))
        .unwrap();
    let ssrc = cv.rtp_parameters.encodings[0].ssrc.unwrap();
    let consumer = tb.consume(&serde_json::to_value(&cv).unwrap()).unwrap();
    let dtls_b = tb.dtls_parameters();
    sfu.call(|e, now| e.connect_transport("tb", &dtls_b, now))
        .unwrap();
    ta.wait_connected(WAIT).await.unwrap();
    tb.wait_connected(WAIT).await.unwrap();
    // 1 in 10 forwarded video packets to B is lost on the way.
    *sfu.loss.lock().unwrap() = Some(Loss { ssrc, every: 10 });
    sfu.call(|e, now| e.resume_consumer("cv", now)).unwrap();
    video.start();
    wait_for(MEDIA_WAIT, "ten losses repaired", async || {
        let got = consumer.stats();
        if got.late >= 10 { Ok(()) } else { Err(got) }
    })
    .await;
    // A lost last packet has no later one to reveal the gap: end cleanly.
    *sfu.loss.lock().unwrap() = None;
    let lossless_from = video.stats().packets;
    wait_for(MEDIA_WAIT, "ten packets past the last loss", async || {
        let got = consumer.stats();
        if got.packets >= lossless_from + 10 {
            Ok(())
        } else {
            Err(got)
        }
    })
    .await;
    video.stop();
    let sent = video.stats();
    let got = consumer
        .wait_until(WAIT, |s| s.packets >= sent.packets && s.lost == 0)
        .await
        .unwrap_or_else(|_| consumer.stats());
    eprintln!("sent {sent:?}\nrecv {got:?}");
    assert!(
        got.late >= sent.packets / 20,
        "repairs arrived late: {got:?}"
    );
    assert_eq!(got.lost, 0, "every gap repaired: {got:?}");
    assert_eq!(got.packets, sent.packets);
    assert_eq!(got.integrity_failures, 0);
    assert_eq!(got.frames, sent.frames);
}
