//! Remote consumers: the declaration of a receive stream from a `consume`
//! answer and the [`RemoteConsumer`] handle that reads its counters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use str0m::media::Mid;
use str0m::rtp::Ssrc;

use super::params::{ConsumeAnswer, Kind};
use super::stats::{ConsumerStats, RxTracker};
use super::transport::{Inner, Shared};
use super::{KeyframeKind, MediaError};

pub(super) struct Consumer {
    pub(super) kind: Kind,
    pub(super) ssrc: Ssrc,
    rtx: Option<Ssrc>,
    pub(super) tracker: RxTracker,
    pub(super) stats: ConsumerStats,
}

/// Declares the stream of a `consume` answer (see
/// [`MediaTransport::consume`](super::MediaTransport::consume)).
pub(super) fn declare(shared: &Arc<Shared>, answer: &Value) -> Result<RemoteConsumer, MediaError> {
    let answer = ConsumeAnswer::parse(answer)?;
    let kind = Kind::parse(&answer.kind)
        .ok_or_else(|| MediaError::invalid("consume answer", "kind is not audio or video"))?;
    let params = &answer.rtp_parameters;
    let mid_str = params
        .mid
        .clone()
        .ok_or_else(|| MediaError::invalid("rtpParameters", "no mid"))?;
    if mid_str.is_empty()
        || mid_str.len() > 16
        || !mid_str.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(MediaError::Unsupported(format!("mid {mid_str:?}")));
    }
    let enc = params
        .encodings
        .first()
        .ok_or_else(|| MediaError::invalid("rtpParameters", "no encodings"))?;
    let ssrc = enc
        .ssrc
        .ok_or_else(|| MediaError::invalid("rtpParameters", "encodings[0] has no ssrc"))?;
    let mut guard = shared.lock();
    let inner = &mut *guard;
    if inner.closed {
        return Err(MediaError::Closed);
    }
    let (_, rtx_pt) = inner.numbering.check_consumer(kind, params)?;
    let rtx = enc
        .rtx
        .as_ref()
        .map(|r| r.ssrc)
        .filter(|_| rtx_pt.is_some());
    if inner.consumers.iter().any(|c| c.stats.mid == mid_str) {
        return Err(MediaError::Conflict(format!(
            "mid {mid_str:?} is already consumed"
        )));
    }
    let used = |s: u32| {
        inner
            .consumers
            .iter()
            .any(|c| *c.ssrc == s || c.rtx.is_some_and(|r| *r == s))
    };
    if used(ssrc) || rtx.is_some_and(used) || rtx == Some(ssrc) {
        return Err(MediaError::Conflict(format!("ssrc {ssrc} is already used")));
    }
    let mid = Mid::from(mid_str.as_str());
    let mut api = inner.rtc.direct_api();
    api.declare_media(mid, kind.str0m());
    api.expect_stream_rx(Ssrc::from(ssrc), rtx.map(Ssrc::from), mid, None);
    let consumer = register(
        shared,
        inner,
        kind,
        mid_str,
        Ssrc::from(ssrc),
        rtx.map(Ssrc::from),
        (answer.id, answer.producer_id),
    );
    drop(guard);
    shared.wake.notify_one();
    Ok(consumer)
}

/// Adds the counters of a received stream that str0m already expects
/// (declared above, or by an SDP negotiation); `ids` are the consumer's and
/// its producer's ids.
pub(super) fn register(
    shared: &Arc<Shared>,
    inner: &mut Inner,
    kind: Kind,
    mid: String,
    ssrc: Ssrc,
    rtx: Option<Ssrc>,
    ids: (String, String),
) -> RemoteConsumer {
    let (id, producer_id) = ids;
    let index = inner.consumers.len();
    inner.consumers.push(Consumer {
        kind,
        ssrc,
        rtx,
        tracker: RxTracker::default(),
        stats: ConsumerStats {
            consumer_id: id.clone(),
            producer_id: producer_id.clone(),
            mid,
            ssrc: *ssrc,
            ..Default::default()
        },
    });
    RemoteConsumer {
        shared: shared.clone(),
        index,
        id,
        producer_id,
        kind,
    }
}

/// A consumer declared on a receive transport (see [`MediaTransport::consume`](super::MediaTransport::consume)).
pub struct RemoteConsumer {
    shared: Arc<Shared>,
    index: usize,
    id: String,
    producer_id: String,
    kind: Kind,
}

impl RemoteConsumer {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn stats(&self) -> ConsumerStats {
        let inner = self.shared.lock();
        inner
            .consumers
            .get(self.index)
            .map(|c| c.stats.clone())
            .unwrap_or_default()
    }

    /// Sends a keyframe request (PLI or FIR) for this consumer's stream.
    pub fn request_keyframe(&self, kind: KeyframeKind) -> Result<(), MediaError> {
        {
            let mut guard = self.shared.lock();
            let inner = &mut *guard;
            if inner.closed {
                return Err(MediaError::Closed);
            }
            let Some(c) = inner.consumers.get_mut(self.index) else {
                return Err(MediaError::Closed);
            };
            let ssrc = c.ssrc;
            c.stats.keyframe_requests_sent += 1;
            let rx = inner
                .rtc
                .direct_api()
                .stream_rx(&ssrc)
                .map(|s| s.request_keyframe(kind.str0m()));
            if rx.is_none() {
                return Err(MediaError::Rtc(format!(
                    "no receive stream for ssrc {ssrc}"
                )));
            }
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Waits until `cond` holds for this consumer's counters (checked every
    /// 10 ms); returns the counters that satisfied it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&ConsumerStats) -> bool,
    ) -> Result<ConsumerStats, MediaError> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.stats();
            if cond(&s) {
                return Ok(s);
            }
            if tokio::time::Instant::now() >= end {
                return Err(MediaError::Timeout("consumer counters"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
