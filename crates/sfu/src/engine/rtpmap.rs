//! A send transport's payload types and header-extension ids, learnt
//! producer by producer around str0m's tables that are fixed when its `Rtc`
//! is built (at the first `produce`).
//!
//! # Why it works
//!
//! A send transport is one browser `RTCPeerConnection` with every m-section
//! in one BUNDLE group. RFC 8843 §9.1 (and RFC 8285 §6) give a header
//! extension URI one id across the group and never reuse an id for another
//! URI, and browsers number each codec identically in every m-section. So
//! the transport has one consistent numbering; the engine only learns it
//! late, one producer at a time. str0m 0.25 cannot change its codec table or
//! extension map after build, so the `Rtc` is built to accept what the
//! numbering may still bring, and the meaning comes from each producer's
//! own `rtpParameters`:
//!
//! * **Payload types.** str0m drops a packet whose PT is not in its codec
//!   table. The table gets the first producer's codecs exactly (with their
//!   RTX pairs) and, for every other PT browsers number dynamically in
//!   (96–127, and 35–63 that libwebrtc uses once those run out), an opaque
//!   placeholder ([`Codec::Null`] at 90 kHz, no RTX). In RTP mode str0m does
//!   not depacketize; per PT it only uses the clock rate (receiver-report
//!   jitter) and the RTX pairing, so a placeholder is not a guess of
//!   meaning. The engine maps each packet's PT through its producer's own
//!   negotiation. A later producer's RTX is known by its RTX SSRC
//!   (`expect_stream_rx(ssrc, Some(rtx), …)` at `produce`, or found below
//!   for RID simulcast): str0m then un-RTXes it and stamps the placeholder's
//!   own PT, the RTX PT, on the repaired packet, which
//!   [`ProducerRtpMap::main_pt`] maps back to the producer's media PT.
//! * **Extension ids.** str0m parses with one map. It gets the first
//!   producer's ids for what str0m itself reads on receive (MID, RID,
//!   repaired RID, transport-wide CC), and on every other id 1–14 a user
//!   extension that keeps the raw value ([`RawCapture`]). The engine reads
//!   what it forwards or uses (audio level, video orientation) from those
//!   raw values with each producer's own ids, whatever producer came first.
//! * **RID simulcast produced later** (the web app's microphone, then a
//!   three-RID camera): str0m cannot read the RID, so it cannot map the new
//!   SSRCs and would drop them before decryption. The engine reads MID, RID
//!   and repaired RID from the clear-text header ([`hdrext`](super::hdrext))
//!   of packets whose SSRC str0m does not know, with that producer's ids,
//!   and declares the streams itself: only RIDs the producer declared, one
//!   SSRC per RID and one per repair.
//!
//! What stays refused is a real conflict: a later producer giving a PT
//! another meaning than an earlier one on the same transport, or one of the
//! ids str0m parses (MID, RID, repaired RID, transport-cc) another meaning,
//! or a PT outside the ranges above. Other extension ids may differ between
//! producers (RFC 8843 says they must not; Chromium 156 does anyway).
//! What is not possible: str0m registers transport-wide sequence numbers
//! for its TWCC feedback only at the id it was built with (the first
//! producer's; browsers put transport-cc in every m-section), and reports
//! receiver jitter of a later producer's PTs at the placeholder's 90 kHz.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use str0m::Rtc;
use str0m::RtcConfig;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Mid, Rid};
use str0m::rtp::{ExtensionMap, ExtensionValues, Ssrc, VideoOrientation};

use super::EngineError;
use super::hdrext;
use super::rawext::{RAW_MAX_ID, raw_extension, raw_value};
use super::wire::{self, CodecEntry};
use crate::rtp::{RtpCodecParameters, RtpParameters, is_rtx, uri};

/// The payload types browsers number codecs in dynamically.
const DYNAMIC_RANGES: [std::ops::RangeInclusive<u8>; 2] = [96..=127, 35..=63];

/// Header-extension URIs str0m itself reads on a receiving transport: the
/// stream mapping (MID, RID, repaired RID) and transport-wide sequence
/// numbers for its TWCC feedback. Every other id is captured raw.
const STR0M_READS: [&str; 4] = [
    uri::MID,
    uri::RTP_STREAM_ID,
    uri::REPAIRED_RTP_STREAM_ID,
    uri::TRANSPORT_WIDE_CC,
];

/// The codec table and extension map an `Rtc` is built with.
pub(super) struct RtcTables {
    codecs: Vec<CodecEntry>,
    placeholders: Vec<u8>,
    exts: ExtensionMap,
}

impl RtcTables {
    /// A receive transport's tables: the router's numbering.
    pub(super) fn receiving(codecs: Vec<CodecEntry>, exts: &BTreeMap<u8, String>) -> Self {
        RtcTables {
            codecs,
            placeholders: Vec::new(),
            exts: wire::extension_map(exts),
        }
    }

    /// Puts the tables into a str0m configuration (codecs first, so that
    /// str0m's per-packet lookup finds them before the placeholders).
    pub(super) fn apply(&self, config: RtcConfig) -> RtcConfig {
        let mut config = config.clear_codecs().set_extension_map(self.exts.clone());
        let table = config.codec_config();
        wire::apply_codecs(table, &self.codecs);
        for &pt in &self.placeholders {
            table.add_config(
                pt.into(),
                None,
                Codec::Null,
                Frequency::NINETY_KHZ,
                None,
                FormatParams::default(),
            );
        }
        config
    }
}

/// What a payload type means on a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PtMeaning {
    mime: String,
    clock_rate: u32,
    channels: u8,
    /// RTX: the payload type it repairs.
    apt: Option<u64>,
}

impl PtMeaning {
    fn of(c: &RtpCodecParameters) -> Self {
        PtMeaning {
            mime: c.mime_type.to_ascii_lowercase(),
            clock_rate: c.clock_rate,
            channels: c.channels.unwrap_or(1),
            apt: if is_rtx(&c.mime_type) {
                c.parameters.get_u64("apt")
            } else {
                None
            },
        }
    }
}

impl fmt::Display for PtMeaning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.mime, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        if let Some(apt) = self.apt {
            write!(f, " (apt {apt})")?;
        }
        Ok(())
    }
}

/// A send transport's numbering: what its producers declared, and what
/// its `Rtc` was built with. See the module doc.
#[derive(Default)]
pub(super) struct SendTables {
    /// Payload type → meaning, as the transport's producers declared it.
    pts: BTreeMap<u8, PtMeaning>,
    /// The payload types str0m's table holds.
    receivable: BTreeSet<u8>,
    /// The ids str0m parses itself → URI.
    native: BTreeMap<u8, String>,
    /// RID-simulcast producers whose streams the engine finds itself.
    watch: Vec<RidWatch>,
    /// The raw-captured ids some producer's value is read from (bit `id`),
    /// shared with the capturing extensions: the others are skipped at
    /// parse time, so an extension nobody reads costs no allocation.
    wanted: Arc<AtomicU16>,
}

impl SendTables {
    /// The tables of a send transport whose first producer has `params`
    /// (already negotiated), and what its `Rtc` is built with.
    pub(super) fn first(params: &RtpParameters) -> Result<(SendTables, RtcTables), EngineError> {
        let codecs = wire::codec_entries(&params.codecs)?;
        let own: BTreeSet<u8> = codecs
            .iter()
            .flat_map(|c| std::iter::once(c.pt).chain(c.rtx))
            .collect();
        let placeholders: Vec<u8> = DYNAMIC_RANGES
            .iter()
            .flat_map(|r| r.clone())
            .filter(|pt| !own.contains(pt))
            .collect();
        let mut tables = SendTables {
            receivable: own.iter().chain(&placeholders).copied().collect(),
            ..SendTables::default()
        };
        let mut exts = ExtensionMap::empty();
        for e in &params.header_extensions {
            if STR0M_READS.contains(&e.uri.as_str())
                && let Some(ext) = wire::extension_for_uri(&e.uri)
                && (1..=RAW_MAX_ID).contains(&e.id)
            {
                exts.set(e.id, ext);
                tables.native.insert(e.id, e.uri.clone());
            }
        }
        for id in 1..=RAW_MAX_ID {
            if !tables.native.contains_key(&id)
                && let Some(ext) = raw_extension(id, &tables.wanted)
            {
                exts.set(id, ext);
            }
        }
        tables.learn(params);
        Ok((
            tables,
            RtcTables {
                codecs,
                placeholders,
                exts,
            },
        ))
    }

    /// Whether a later producer's numbering fits the transport: no payload
    /// type with another meaning than before, no extension id str0m parses
    /// with another meaning, no payload type str0m's table lacks.
    pub(super) fn check(&self, params: &RtpParameters) -> Result<(), EngineError> {
        for c in &params.codecs {
            let meaning = PtMeaning::of(c);
            match self.pts.get(&c.payload_type) {
                Some(have) if *have != meaning => {
                    return Err(EngineError::Unsupported(format!(
                        "payload type {} is {have} on this transport, not {meaning}: \
                         produce on a new transport",
                        c.payload_type
                    )));
                }
                Some(_) => {}
                None if !self.receivable.contains(&c.payload_type) => {
                    return Err(EngineError::Unsupported(format!(
                        "payload type {} ({meaning}) is outside the dynamic ranges 96-127 \
                         and 35-63 a send transport receives",
                        c.payload_type
                    )));
                }
                None => {}
            }
        }
        // Only the ids str0m parses itself (the first producer's MID, RID,
        // repaired RID, transport-cc) must keep their meaning: str0m reads
        // them from every packet. Every other id is read per producer from
        // its raw value, so producers may number those as they like — and
        // do: Chromium 156 gives id 5 to abs-capture-time in its audio
        // section and to playout-delay in its video section of one
        // transport, whatever RFC 8843 asks.
        for e in &params.header_extensions {
            if let Some(have) = self.native.get(&e.id)
                && *have != e.uri
            {
                return Err(EngineError::Unsupported(format!(
                    "header extension id {} is {have} on this transport, not {}: \
                     produce on a new transport",
                    e.id, e.uri
                )));
            }
        }
        Ok(())
    }

    /// Records a producer's numbering (after [`SendTables::check`]).
    pub(super) fn learn(&mut self, params: &RtpParameters) {
        for id in ProducerRtpMap::new(params).read_ids() {
            if (1..=RAW_MAX_ID).contains(&id) {
                self.wanted.fetch_or(1 << id, Ordering::Relaxed);
            }
        }
        for c in &params.codecs {
            self.pts.insert(c.payload_type, PtMeaning::of(c));
        }
        for e in &params.header_extensions {
            let own = self.native.get(&e.id).is_some_and(|u| *u == e.uri);
            if STR0M_READS.contains(&e.uri.as_str()) && !own {
                // str0m reads this URI at the id it was built with only.
                tracing::debug!(id = e.id, uri = %e.uri, "header extension not read by str0m on this transport");
            }
        }
    }

    /// Starts finding the streams of a RID-simulcast producer whose RID (or
    /// repaired RID) str0m cannot read (its id was not the first
    /// producer's). Returns whether it is watched.
    pub(super) fn watch_rids(
        &mut self,
        producer_id: &str,
        mid: &str,
        params: &RtpParameters,
    ) -> bool {
        let rids: Vec<String> = params
            .encodings
            .iter()
            .filter(|e| e.ssrc.is_none())
            .filter_map(|e| e.rid.clone())
            .collect();
        if rids.is_empty() {
            return false;
        }
        let id_of = |u: &str| {
            params
                .header_extensions
                .iter()
                .find(|e| e.uri == u)
                .map(|e| e.id)
        };
        let native = |id: Option<u8>, u: &str| {
            id.is_none_or(|id| self.native.get(&id).is_some_and(|n| n == u))
        };
        let (Some(mid_id), Some(rid_id)) = (id_of(uri::MID), id_of(uri::RTP_STREAM_ID)) else {
            return false;
        };
        let rrid_id = id_of(uri::REPAIRED_RTP_STREAM_ID);
        if native(Some(rid_id), uri::RTP_STREAM_ID)
            && native(rrid_id, uri::REPAIRED_RTP_STREAM_ID)
            && native(Some(mid_id), uri::MID)
        {
            // str0m maps them itself.
            return false;
        }
        self.watch.push(RidWatch {
            producer_id: producer_id.to_owned(),
            mid: mid.to_owned(),
            mid_id,
            rid_id,
            rrid_id,
            layers: rids
                .into_iter()
                .map(|rid| RidLayer {
                    rid,
                    main: None,
                    rtx: None,
                })
                .collect(),
        });
        true
    }

    /// A producer closed: its streams are no longer looked for.
    pub(super) fn forget(&mut self, producer_id: &str) {
        self.watch.retain(|w| w.producer_id != producer_id);
    }

    /// Called with every packet of the transport before str0m gets it:
    /// declares the RID streams str0m cannot map itself (see the module
    /// doc). `taken`: SSRCs in use on the transport, never claimed here.
    /// Returns the SSRC of a stream it declared.
    pub(super) fn discover(
        &mut self,
        rtc: &mut Rtc,
        bytes: &[u8],
        taken: &BTreeSet<u32>,
        transport_id: &str,
    ) -> Option<u32> {
        if self.watch.is_empty() {
            return None;
        }
        let head = hdrext::parse(bytes)?;
        let ssrc = head.ssrc;
        let claimed = |w: &RidWatch| {
            w.layers
                .iter()
                .any(|l| l.main == Some(ssrc) || l.rtx == Some(ssrc))
        };
        if taken.contains(&ssrc) || self.watch.iter().any(claimed) {
            return None;
        }
        let mut api = rtc.direct_api();
        if api.stream_rx(&Ssrc::from(ssrc)).is_some() {
            return None;
        }
        let w = self
            .watch
            .iter_mut()
            .find(|w| head.text_extension(w.mid_id) == Some(w.mid.as_str()))?;
        let mid = Mid::from(w.mid.as_str());
        if let Some(rid) = head.text_extension(w.rid_id) {
            let layer = w.layers.iter_mut().find(|l| l.rid == rid)?;
            if layer.main.is_some() {
                return None;
            }
            layer.main = Some(ssrc);
            api.expect_stream_rx(
                Ssrc::from(ssrc),
                layer.rtx.map(Ssrc::from),
                mid,
                Some(Rid::from(rid)),
            );
            tracing::debug!(transport_id, producer_id = %w.producer_id, rid, ssrc, "RID stream found");
            Some(ssrc)
        } else if let Some(rid) = w.rrid_id.and_then(|id| head.text_extension(id)) {
            let layer = w.layers.iter_mut().find(|l| l.rid == rid)?;
            // A repair before its stream cannot be paired yet; the next
            // one after it is.
            let (Some(main), None) = (layer.main, layer.rtx) else {
                return None;
            };
            layer.rtx = Some(ssrc);
            api.expect_stream_rx(
                Ssrc::from(main),
                Some(Ssrc::from(ssrc)),
                mid,
                Some(Rid::from(rid)),
            );
            tracing::debug!(transport_id, producer_id = %w.producer_id, rid, ssrc, "RID repair stream found");
            Some(ssrc)
        } else {
            None
        }
    }
}

/// A RID-simulcast producer whose streams the engine finds (see
/// [`SendTables::discover`]).
struct RidWatch {
    producer_id: String,
    mid: String,
    /// The producer's own header-extension ids.
    mid_id: u8,
    rid_id: u8,
    rrid_id: Option<u8>,
    layers: Vec<RidLayer>,
}

struct RidLayer {
    rid: String,
    main: Option<u32>,
    rtx: Option<u32>,
}

/// How one producer's packets are read: its RTX payload types' media
/// payload types and its own ids of the extensions the engine uses.
#[derive(Clone, Debug, Default)]
pub(super) struct ProducerRtpMap {
    /// (RTX payload type, media payload type).
    rtx: Vec<(u8, u8)>,
    audio_level: Option<u8>,
    video_orientation: Option<u8>,
}

impl ProducerRtpMap {
    pub(super) fn new(params: &RtpParameters) -> Self {
        let rtx = params
            .codecs
            .iter()
            .filter(|c| is_rtx(&c.mime_type))
            .filter_map(|c| {
                let apt = u8::try_from(c.parameters.get_u64("apt")?).ok()?;
                Some((c.payload_type, apt))
            })
            .collect();
        let id_of = |u: &str| {
            params
                .header_extensions
                .iter()
                .find(|e| e.uri == u)
                .map(|e| e.id)
        };
        ProducerRtpMap {
            rtx,
            audio_level: id_of(uri::SSRC_AUDIO_LEVEL),
            video_orientation: id_of(uri::VIDEO_ORIENTATION),
        }
    }

    /// The ids of the extensions the engine reads from this producer.
    fn read_ids(&self) -> impl Iterator<Item = u8> {
        self.audio_level.into_iter().chain(self.video_orientation)
    }

    /// The producer's media payload type of a packet str0m delivered: a
    /// packet repaired from a placeholder RTX payload type carries that RTX
    /// payload type.
    pub(super) fn main_pt(&self, pt: u8) -> u8 {
        self.rtx
            .iter()
            .find(|(rtx, _)| *rtx == pt)
            .map_or(pt, |(_, apt)| *apt)
    }

    /// The extension values the engine uses and forwards (audio level and
    /// voice activity, RFC 6464; video orientation, 3GPP TS 26.114), read
    /// at the producer's own ids.
    pub(super) fn ext_vals(&self, ev: &ExtensionValues) -> ExtensionValues {
        let mut out = ExtensionValues::default();
        if let Some(&b) = self
            .audio_level
            .and_then(|id| raw_value(ev, id))
            .and_then(<[u8]>::first)
        {
            out.audio_level = Some(-((b & 0x7F) as i8));
            out.voice_activity = Some(b & 0x80 != 0);
        }
        if let Some(&b) = self
            .video_orientation
            .and_then(|id| raw_value(ev, id))
            .and_then(<[u8]>::first)
        {
            out.video_orientation = Some(VideoOrientation::from(b & 3));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::rawext::RawCapture;
    use super::*;
    use serde_json::json;
    use str0m::rtp::{Extension, ExtensionSerializer};

    fn params(v: serde_json::Value) -> RtpParameters {
        serde_json::from_value(v).unwrap()
    }

    fn params_ext(id: u8, uri: &str) -> crate::rtp::RtpHeaderExtensionParameters {
        serde_json::from_value(json!({ "uri": uri, "id": id })).unwrap()
    }

    fn firefox_camera() -> RtpParameters {
        params(json!({
            "mid": "0",
            "codecs": [
                {"mimeType": "video/VP8", "payloadType": 120, "clockRate": 90000},
                {"mimeType": "video/rtx", "payloadType": 124, "clockRate": 90000, "parameters": {"apt": 120}}
            ],
            "headerExtensions": [
                {"uri": uri::MID, "id": 3},
                {"uri": uri::ABS_SEND_TIME, "id": 4},
                {"uri": uri::TRANSPORT_WIDE_CC, "id": 7}
            ],
            "encodings": [{"ssrc": 1, "rtx": {"ssrc": 2}}]
        }))
    }

    fn firefox_microphone() -> RtpParameters {
        params(json!({
            "mid": "1",
            "codecs": [{"mimeType": "audio/opus", "payloadType": 109, "clockRate": 48000, "channels": 2}],
            "headerExtensions": [
                {"uri": uri::MID, "id": 3},
                {"uri": uri::TRANSPORT_WIDE_CC, "id": 7},
                {"uri": uri::SSRC_AUDIO_LEVEL, "id": 1}
            ],
            "encodings": [{"ssrc": 3}]
        }))
    }

    #[test]
    fn first_producer_exactly_then_placeholders_then_raw_ids() {
        let (tables, rtc) = SendTables::first(&firefox_camera()).unwrap();
        assert_eq!(rtc.codecs.len(), 1);
        assert_eq!((rtc.codecs[0].pt, rtc.codecs[0].rtx), (120, Some(124)));
        assert!(!rtc.placeholders.contains(&120) && !rtc.placeholders.contains(&124));
        assert!(rtc.placeholders.contains(&109) && rtc.placeholders.contains(&35));
        assert!(!rtc.placeholders.contains(&64) && !rtc.placeholders.contains(&0));
        assert_eq!(rtc.placeholders.len(), 32 + 29 - 2);
        assert_eq!(rtc.exts.lookup(3), Some(&Extension::RtpMid));
        assert_eq!(
            rtc.exts.lookup(7),
            Some(&Extension::TransportSequenceNumber)
        );
        // abs-send-time is not read by str0m on receive: captured raw.
        for id in [1, 4, 9, 14] {
            assert!(
                matches!(rtc.exts.lookup(id), Some(Extension::UnknownUri(..))),
                "{id}"
            );
        }
        assert!(tables.check(&firefox_microphone()).is_ok());
    }

    #[test]
    fn conflicts_are_refused_and_new_numbers_are_not() {
        let (mut tables, _) = SendTables::first(&firefox_camera()).unwrap();
        tables.learn(&firefox_microphone());
        // Opus at 120 (VP8 here).
        let mut p = firefox_microphone();
        p.codecs[0].payload_type = 120;
        let e = tables.check(&p).unwrap_err().to_string();
        assert!(e.contains("payload type 120 is video/vp8/90000"), "{e}");
        // An RTX of another media PT.
        let mut p = firefox_camera();
        p.codecs[1].parameters.insert("apt", 121);
        assert!(tables.check(&p).is_err());
        // Audio level on the MID's id.
        let mut p = firefox_microphone();
        p.header_extensions[2].id = 3;
        let e = tables.check(&p).unwrap_err().to_string();
        assert!(e.contains("header extension id 3"), "{e}");
        // An id str0m does not parse may mean something else in another
        // producer (Chromium's id 5: abs-capture-time for audio,
        // playout-delay for video).
        let mut p = firefox_camera();
        p.header_extensions
            .push(params_ext(1, uri::VIDEO_ORIENTATION));
        assert!(
            tables.check(&p).is_ok(),
            "id 1 is the microphone's audio level"
        );
        // A PT outside the ranges.
        let mut p = firefox_microphone();
        p.codecs[0].payload_type = 80;
        assert!(
            tables
                .check(&p)
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        // New PTs and ids of the same numbering are fine.
        let mut p = firefox_camera();
        p.codecs[0].payload_type = 126;
        p.codecs[1].payload_type = 127;
        p.codecs[1].parameters.insert("apt", 126);
        assert!(tables.check(&p).is_ok());
    }

    fn firefox_simulcast(mid: &str) -> RtpParameters {
        params(json!({
            "mid": mid,
            "codecs": [
                {"mimeType": "video/VP8", "payloadType": 120, "clockRate": 90000},
                {"mimeType": "video/rtx", "payloadType": 124, "clockRate": 90000, "parameters": {"apt": 120}}
            ],
            "headerExtensions": [
                {"uri": uri::MID, "id": 3},
                {"uri": uri::RTP_STREAM_ID, "id": 9},
                {"uri": uri::REPAIRED_RTP_STREAM_ID, "id": 10}
            ],
            "encodings": [{"rid": "r0"}, {"rid": "r1"}]
        }))
    }

    /// An RTP packet of `ssrc` with MID `mid` (id 3) and a RID (id 9) or
    /// repaired RID (id 10), one-byte form.
    fn rid_packet(ssrc: u32, mid: &str, rid: Option<&str>, rrid: Option<&str>) -> Vec<u8> {
        let mut block = vec![0x30 | (mid.len() as u8 - 1)];
        block.extend(mid.as_bytes());
        for (id, value) in [(9u8, rid), (10, rrid)] {
            if let Some(v) = value {
                block.push((id << 4) | (v.len() as u8 - 1));
                block.extend(v.as_bytes());
            }
        }
        while block.len() % 4 != 0 {
            block.push(0);
        }
        let mut p = vec![0x90, 120, 0, 1, 0, 0, 0, 1];
        p.extend(ssrc.to_be_bytes());
        p.extend([0xBE, 0xDE]);
        p.extend(((block.len() / 4) as u16).to_be_bytes());
        p.extend(block);
        p.extend([0; 8]);
        p
    }

    #[test]
    fn rid_streams_are_found_once_per_rid_and_repair_and_only_if_declared() {
        // A simulcast camera first: str0m reads its RIDs itself.
        let (mut first, _) = SendTables::first(&firefox_simulcast("0")).unwrap();
        assert!(!first.watch_rids("cam", "0", &firefox_simulcast("0")));

        // The microphone first: the camera's RID ids are unknown to str0m.
        let (mut tables, rtc_tables) = SendTables::first(&firefox_microphone()).unwrap();
        let mut rtc = rtc_tables
            .apply(RtcConfig::new().set_rtp_mode(true))
            .build(std::time::Instant::now());
        let cam = firefox_simulcast("2");
        tables.check(&cam).unwrap();
        tables.learn(&cam);
        rtc.direct_api()
            .declare_media(Mid::from("2"), str0m::media::MediaKind::Video);
        assert!(tables.watch_rids("cam", "2", &cam));
        let taken = BTreeSet::from([3u32]);
        let mut found = |bytes: Vec<u8>| tables.discover(&mut rtc, &bytes, &taken, "t");
        // A repair before its stream is not paired.
        assert_eq!(found(rid_packet(210, "2", None, Some("r1"))), None);
        assert_eq!(found(rid_packet(100, "2", Some("r0"), None)), Some(100));
        // Again, or another SSRC for the same RID: nothing.
        assert_eq!(found(rid_packet(100, "2", Some("r0"), None)), None);
        assert_eq!(found(rid_packet(101, "2", Some("r0"), None)), None);
        // A RID the producer did not declare, another MID, a taken SSRC,
        // something that is not RTP.
        assert_eq!(found(rid_packet(102, "2", Some("r9"), None)), None);
        assert_eq!(found(rid_packet(103, "7", Some("r1"), None)), None);
        assert_eq!(found(rid_packet(3, "2", Some("r1"), None)), None);
        assert_eq!(found(vec![0x80, 200, 0, 1]), None);
        // The repair of r0, once.
        assert_eq!(found(rid_packet(110, "2", None, Some("r0"))), Some(110));
        assert_eq!(found(rid_packet(111, "2", None, Some("r0"))), None);
        assert_eq!(found(rid_packet(200, "2", Some("r1"), None)), Some(200));
        let mut api = rtc.direct_api();
        let r0 = api.stream_rx(&Ssrc::from(100)).unwrap();
        assert_eq!(r0.rid(), Some(Rid::from("r0")));
        assert_eq!(r0.rtx(), Some(Ssrc::from(110)));
        assert!(api.stream_rx(&Ssrc::from(101)).is_none());
        // A closed producer's streams are no longer looked for.
        tables.forget("cam");
        first.forget("cam");
        assert_eq!(
            tables.discover(
                &mut rtc,
                &rid_packet(220, "2", None, Some("r1")),
                &taken,
                "t"
            ),
            None
        );
    }

    #[test]
    fn producer_map_reads_its_own_ids() {
        let mic = ProducerRtpMap::new(&firefox_microphone());
        let cam = ProducerRtpMap::new(&firefox_camera());
        assert_eq!(cam.main_pt(124), 120);
        assert_eq!(cam.main_pt(120), 120);
        assert_eq!(mic.main_pt(124), 124);
        let mut ev = ExtensionValues::default();
        let wanted = Arc::new(AtomicU16::new((1 << 1) | (1 << 2) | (1 << 13)));
        let capture = |_| wanted.clone();
        assert!(RawCapture::<1> { wanted: capture(1) }.parse_value(&[0x80 | 37], &mut ev));
        assert!(
            RawCapture::<13> {
                wanted: capture(13)
            }
            .parse_value(&[0x02], &mut ev)
        );
        assert!(!RawCapture::<2> { wanted: capture(2) }.parse_value(&[0; 17], &mut ev));
        // Not wanted: skipped.
        assert!(RawCapture::<4> { wanted: capture(4) }.parse_value(&[9], &mut ev));
        assert_eq!(raw_value(&ev, 4), None);
        let read = mic.ext_vals(&ev);
        assert_eq!(read.audio_level, Some(-37));
        assert_eq!(read.voice_activity, Some(true));
        assert_eq!(read.video_orientation, None);
        assert_eq!(cam.ext_vals(&ev).audio_level, None);
        assert_eq!(raw_value(&ev, 13), Some(&[2u8][..]));
        assert_eq!(raw_value(&ev, 15), None);
    }
}
