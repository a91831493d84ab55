//! Active speaker detection in simulated time: two publishers send
//! synthetic Opus with the `ssrc-audio-level` extension, and the engine's
//! `ActiveSpeaker` events are checked as the levels change.

use std::time::Duration;

use serde_json::{Value, json};
use str0m::media::{MediaKind as StrKind, Mid};
use str0m::rtp::{ExtensionValues, RtpWrite, Ssrc};
use vtp_sfu::engine::{EngineEvent, SPEAKER_DEBOUNCE, TransportOptions};
use vtp_sfu::rtp::MediaKind;

#[path = "support/net.rs"]
mod net;
use net::{Net, chromium_config};

/// Silence in dBov.
const SILENT: i8 = -127;

fn audio_params(ssrc: u32) -> Value {
    json!({
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2}],
        "headerExtensions": [
            {"uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 9},
            {"uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1}
        ],
        "encodings": [{"ssrc": ssrc}],
        "rtcp": {"cname": format!("c{ssrc}")}
    })
}

struct Room {
    net: Net,
    /// (client, ssrc, producer id) of each publisher.
    publishers: Vec<(usize, u32, &'static str)>,
    seq: u64,
}

fn room() -> Room {
    let mut net = Net::new();
    net.engine.create_router("room").unwrap();
    let mut publishers = Vec::new();
    for (transport, producer, ssrc) in [("ta", "pa", 5001u32), ("tc", "pc", 5002)] {
        let info = net
            .engine
            .create_webrtc_transport("room", transport, TransportOptions::default())
            .unwrap();
        let client = net.add_client(chromium_config(), &info);
        {
            let mut api = net.clients[client].rtc.direct_api();
            api.declare_media(Mid::from("0"), StrKind::Audio);
            api.declare_stream_tx(Ssrc::from(ssrc), None, Mid::from("0"), None);
        }
        let now = net.now;
        let dtls = net.dtls_of(client);
        net.engine.connect_transport(transport, &dtls, now).unwrap();
        net.engine
            .produce(
                transport,
                producer,
                MediaKind::Audio,
                &audio_params(ssrc),
                now,
            )
            .unwrap();
        publishers.push((client, ssrc, producer));
    }
    net.run(Duration::from_millis(300));
    Room {
        net,
        publishers,
        seq: 0,
    }
}

impl Room {
    /// Both publishers talk at these levels for `dur`, a packet each 20 ms.
    fn talk(&mut self, levels: [i8; 2], dur: Duration) {
        for _ in 0..dur.as_millis() / 20 {
            self.seq += 1;
            let now = self.net.now;
            for (&(client, ssrc, _), level) in self.publishers.iter().zip(levels) {
                let ext = ExtensionValues {
                    audio_level: Some(level),
                    voice_activity: Some(level > -60),
                    ..Default::default()
                };
                let mut api = self.net.clients[client].rtc.direct_api();
                api.stream_tx(&Ssrc::from(ssrc)).unwrap().write_rtp(
                    RtpWrite::new(
                        111.into(),
                        self.seq.into(),
                        (self.seq * 960) as u32,
                        now,
                        vec![0xfc, 1, 2, 3],
                    )
                    .ext_vals(ext),
                );
            }
            self.net.run(Duration::from_millis(20));
        }
    }

    fn speakers(&self) -> Vec<(String, i8)> {
        self.net
            .engine_events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ActiveSpeaker {
                    producer_id,
                    volume,
                } => Some((producer_id.clone(), *volume)),
                _ => None,
            })
            .collect()
    }

    fn speaker_ids(&self) -> Vec<String> {
        self.speakers().into_iter().map(|s| s.0).collect()
    }
}

#[test]
fn the_louder_of_two_speakers_is_picked_and_silence_says_nothing() {
    let mut room = room();
    let long = SPEAKER_DEBOUNCE * 4;
    room.talk([SILENT, SILENT], long);
    assert!(room.speakers().is_empty(), "a silent room says nothing");

    room.talk([-20, -45], long);
    let speakers = room.speakers();
    assert_eq!(room.speaker_ids(), ["pa"], "{speakers:?}");
    assert!(
        (-25..=-15).contains(&speakers[0].1),
        "volume is A's level: {speakers:?}"
    );

    // A brief louder moment of C does not move the speaker.
    room.talk([-20, -5], SPEAKER_DEBOUNCE / 3);
    room.talk([-20, -45], long);
    assert_eq!(room.speaker_ids(), ["pa"]);

    // They swap for real.
    room.talk([-50, -15], long);
    assert_eq!(room.speaker_ids(), ["pa", "pc"]);

    // Silence again: nothing more.
    room.talk([SILENT, SILENT], long);
    assert_eq!(room.speaker_ids(), ["pa", "pc"]);

    // A producer that closes cannot be announced; the other one can.
    room.net.engine.close_producer("pc").unwrap();
    room.talk([-30, -10], long);
    assert_eq!(room.speaker_ids(), ["pa", "pc", "pa"]);
}
