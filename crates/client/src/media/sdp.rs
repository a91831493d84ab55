//! The SDP path of the media peer, for servers that negotiate with offers
//! and answers (Janus) rather than mediasoup's JSON.
//!
//! The transport, its task, the synthetic sources and the receive counters
//! are the ones of the JSON path; only the negotiation differs. str0m's SDP
//! API makes the streams, and the producer and consumer handles are then
//! registered on the streams it made, so the figures of both paths are
//! computed by the same code.
//!
//! * Publishing: [`MediaTransport::sdp_offer`] adds send-only m-lines (VP8
//!   with RTX, Opus) and returns the offer; [`MediaTransport::accept_sdp_answer`]
//!   applies the server's answer and returns one [`LocalProducer`] per m-line.
//! * Subscribing: [`MediaTransport::accept_sdp_offer`] applies the server's
//!   offer and returns the answer and one [`RemoteConsumer`] per received
//!   m-line, keyed by the SSRC the offer announces (`a=ssrc-group:FID` or
//!   the first `a=ssrc`).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction as SdpDirection, Mid};
use str0m::rtp::Ssrc;
use tokio::net::UdpSocket;

use super::params::{Kind, Numbering};
use super::producer::{NegotiatedStream, SourceKind};
use super::{
    AudioOptions, Direction, LocalProducer, MediaError, MediaPeer, MediaTransport, RemoteConsumer,
    VideoOptions, consumer, producer,
};

/// Longest SDP this peer parses (a few m-lines are a few KB).
const MAX_SDP_BYTES: usize = 64 * 1024;

/// An offer sent to the server, waiting for its answer.
pub struct PendingPublish {
    pending: SdpPendingOffer,
    medias: Vec<(Mid, Kind, SourceKindOptions)>,
}

enum SourceKindOptions {
    Video(VideoOptions),
    Audio(AudioOptions),
}

/// One m-line of a remote SDP, as far as this peer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpMedia {
    pub kind: Option<Kind>,
    pub mid: Option<String>,
    /// The media SSRC: the first of an `a=ssrc-group:FID`, else the first
    /// `a=ssrc`.
    pub ssrc: Option<u32>,
    /// The RTX SSRC of the FID group.
    pub rtx_ssrc: Option<u32>,
    /// Port 0: the m-line is rejected or disabled.
    pub disabled: bool,
}

/// The m-lines of an SDP (session-level lines are skipped). Lines that do
/// not parse are ignored, never a panic.
pub fn sdp_medias(sdp: &str) -> Vec<SdpMedia> {
    let mut medias: Vec<SdpMedia> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            let mut fields = rest.split_whitespace();
            let kind = fields.next().and_then(Kind::parse);
            let disabled = fields.next() == Some("0");
            medias.push(SdpMedia {
                kind,
                mid: None,
                ssrc: None,
                rtx_ssrc: None,
                disabled,
            });
            continue;
        }
        let Some(media) = medias.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            media.mid = Some(mid.trim().to_string());
        } else if let Some(group) = line.strip_prefix("a=ssrc-group:FID ") {
            let mut ssrcs = group.split_whitespace().map(str::parse::<u32>);
            if let (Some(Ok(main)), Some(Ok(rtx))) = (ssrcs.next(), ssrcs.next()) {
                media.ssrc = Some(main);
                media.rtx_ssrc = Some(rtx);
            }
        } else if let Some(ssrc) = line.strip_prefix("a=ssrc:")
            && media.ssrc.is_none()
            && let Some(Ok(ssrc)) = ssrc.split_whitespace().next().map(str::parse::<u32>)
        {
            media.ssrc = Some(ssrc);
        }
    }
    medias
}

impl MediaPeer {
    /// A transport negotiated with SDP (see the module doc), with no
    /// server-side id: `id` names it in stats and logs. str0m's SDP API
    /// decides the ICE and DTLS roles from the offer and answer.
    pub async fn create_sdp_transport(
        &self,
        id: &str,
        direction: Direction,
    ) -> Result<MediaTransport, MediaError> {
        let socket = UdpSocket::bind(SocketAddr::new(self.ip(), 0)).await?;
        let local_addr = socket.local_addr()?;
        let numbering = Numbering::chromium();
        let mut rtc = numbering.rtc_config().build(Instant::now());
        let local = Candidate::host(local_addr, "udp")
            .map_err(|e| MediaError::Rtc(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(local);
        let t = MediaTransport::launch(
            id.to_string(),
            direction,
            numbering,
            rtc,
            super::transport::Link::Udp(socket),
            SocketAddr::from(([0, 0, 0, 0], 0)),
            serde_json::Value::Null,
        );
        self.adopt(t.clone());
        Ok(t)
    }
}

impl MediaTransport {
    /// An offer with a send-only VP8 m-line (if `video`) and a send-only
    /// Opus m-line (if `audio`), with this transport's host candidate.
    pub fn sdp_offer(
        &self,
        video: Option<VideoOptions>,
        audio: Option<AudioOptions>,
    ) -> Result<(String, PendingPublish), MediaError> {
        if self.direction() != Direction::Send {
            return Err(self.wrong_direction());
        }
        if let Some(v) = &video
            && (v.fps == 0 || v.fps > 1000 || v.simulcast)
        {
            return Err(MediaError::invalid(
                "VideoOptions",
                "fps must be 1..=1000 and simulcast is not offered over SDP",
            ));
        }
        if let Some(a) = &audio
            && (a.ptime_ms == 0 || a.ptime_ms > 120)
        {
            return Err(MediaError::invalid(
                "AudioOptions",
                "ptime_ms must be 1..=120",
            ));
        }
        let shared = self.shared();
        let mut inner = shared.lock();
        if inner.closed {
            return Err(MediaError::Closed);
        }
        let mut api = inner.rtc.sdp_api();
        let mut medias = Vec::new();
        if let Some(v) = video {
            let mid = api.add_media(
                Kind::Video.str0m(),
                SdpDirection::SendOnly,
                None,
                None,
                None,
            );
            medias.push((mid, Kind::Video, SourceKindOptions::Video(v)));
        }
        if let Some(a) = audio {
            let mid = api.add_media(
                Kind::Audio.str0m(),
                SdpDirection::SendOnly,
                None,
                None,
                None,
            );
            medias.push((mid, Kind::Audio, SourceKindOptions::Audio(a)));
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| MediaError::invalid("sdp offer", "nothing to offer"))?;
        Ok((offer.to_sdp_string(), PendingPublish { pending, medias }))
    }

    /// Applies the server's answer to [`MediaTransport::sdp_offer`]; returns
    /// the producers, in the order of the offer. Start them once connected.
    pub fn accept_sdp_answer(
        &self,
        pending: PendingPublish,
        answer: &str,
    ) -> Result<Vec<LocalProducer>, MediaError> {
        let answer = parse_sdp(answer, SdpAnswer::from_sdp_string)?;
        let shared = self.shared();
        let mut guard = shared.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(MediaError::Closed);
        }
        inner
            .rtc
            .sdp_api()
            .accept_answer(pending.pending, answer)
            .map_err(|e| MediaError::Rtc(format!("sdp answer: {e}")))?;
        let mut producers = Vec::new();
        for (mid, kind, options) in pending.medias {
            let stream = inner
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, None)
                .map(|s| NegotiatedStream {
                    ssrc: s.ssrc(),
                    rtx: s.rtx(),
                })
                .ok_or_else(|| {
                    MediaError::Unsupported(format!("the answer does not receive mid {mid}"))
                })?;
            let source = match options {
                SourceKindOptions::Video(v) => SourceKind::Video(v),
                SourceKindOptions::Audio(a) => SourceKind::Audio(a),
            };
            producers.push(producer::register_negotiated(
                shared, inner, mid, kind, source, stream,
            ));
        }
        drop(guard);
        shared.wake.notify_one();
        Ok(producers)
    }

    /// Applies the server's offer; returns the answer and a consumer for
    /// each enabled m-line that announces an SSRC (its id is `mid:<mid>`,
    /// its producer id `producer_id`).
    pub fn accept_sdp_offer(
        &self,
        offer: &str,
        producer_id: &str,
    ) -> Result<(String, Vec<RemoteConsumer>), MediaError> {
        if self.direction() != Direction::Recv {
            return Err(self.wrong_direction());
        }
        let medias = sdp_medias(offer);
        let parsed = parse_sdp(offer, SdpOffer::from_sdp_string)?;
        let shared = self.shared();
        let mut guard = shared.lock();
        let inner = &mut *guard;
        if inner.closed {
            return Err(MediaError::Closed);
        }
        let answer = inner
            .rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| MediaError::Rtc(format!("sdp offer: {e}")))?;
        let mut consumers = Vec::new();
        for m in medias.into_iter().filter(|m| !m.disabled) {
            let (Some(kind), Some(mid), Some(ssrc)) = (m.kind, m.mid, m.ssrc) else {
                continue;
            };
            consumers.push(consumer::register(
                shared,
                inner,
                kind,
                mid.clone(),
                Ssrc::from(ssrc),
                m.rtx_ssrc.map(Ssrc::from),
                (format!("mid:{mid}"), producer_id.to_string()),
            ));
        }
        drop(guard);
        shared.wake.notify_one();
        Ok((answer.to_sdp_string(), consumers))
    }
}

fn parse_sdp<T, E: std::fmt::Display>(
    sdp: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, MediaError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(MediaError::invalid("sdp", "longer than 64 KiB"));
    }
    parse(sdp).map_err(|e| MediaError::invalid("sdp", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JANUS_OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=VideoRoom 1234\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=ssrc:1111 cname:janus\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:1\r\n\
a=ssrc-group:FID 2222 3333\r\n\
a=ssrc:2222 cname:janus\r\n\
a=ssrc:3333 cname:janus\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\n\
a=mid:2\r\n";

    #[test]
    fn media_lines_give_kind_mid_and_ssrcs() {
        let m = sdp_medias(JANUS_OFFER);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].kind, Some(Kind::Audio));
        assert_eq!(m[0].mid.as_deref(), Some("0"));
        assert_eq!((m[0].ssrc, m[0].rtx_ssrc), (Some(1111), None));
        assert_eq!(m[1].kind, Some(Kind::Video));
        assert_eq!((m[1].ssrc, m[1].rtx_ssrc), (Some(2222), Some(3333)));
        assert!(!m[1].disabled);
        assert!(m[2].disabled);
        assert_eq!(m[2].ssrc, None);
    }

    #[test]
    fn garbage_sdp_gives_no_media_and_no_panic() {
        assert!(sdp_medias("").is_empty());
        let m = sdp_medias("a=ssrc:1\nm=text\na=ssrc:notanumber\na=ssrc-group:FID 1\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, None);
        assert_eq!(m[0].ssrc, None);
    }

    #[test]
    fn oversized_sdp_is_refused() {
        let big = "a".repeat(MAX_SDP_BYTES + 1);
        let r = parse_sdp(&big, SdpOffer::from_sdp_string);
        assert!(matches!(r, Err(MediaError::InvalidParameters { .. })));
    }
}
