//! Per-track jitter buffer: puts RTP packets back in sequence order, waits a
//! little for the ones that are missing (a NACKed retransmission arrives one
//! round trip late), and then gives up on them and says so.
//!
//! A recording does not care about latency, only about completeness, so the
//! wait can be generous (hundreds of milliseconds); it is bounded in time
//! ([`JitterConfig::max_delay`]) and in memory ([`JitterConfig::max_packets`]).
//! What to do about a loss (drop the frame, ask for a keyframe) is decided
//! one layer up, in [`crate::TrackRecorder`], which knows the codec.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The parts of an RTP packet a recording needs. Header extensions, SSRC and
/// CSRCs are the SFU's business; the payload is the codec's. Retransmissions
/// come as the packet they repair (RTX unwrapped to the original sequence
/// number, as str0m hands them out); padding-only packets may come with an
/// empty payload and only fill their sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    /// RTP sequence number (wraps at 65535).
    pub sequence_number: u16,
    /// RTP timestamp in the codec's clock (90 kHz video, 48 kHz Opus).
    pub timestamp: u32,
    /// Marker bit: last packet of a video frame.
    pub marker: bool,
    /// RTP payload, padding already removed.
    pub payload: Vec<u8>,
}

/// How long and how much a [`JitterBuffer`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// How long to wait for a missing packet, counted from the arrival of the
    /// first packet after the gap. Also how long the first packet is held, so
    /// that packets reordered at the very start are not lost.
    pub max_delay: Duration,
    /// Most packets held at once; past this the oldest gap is given up at
    /// once instead of waiting.
    pub max_packets: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        // 200 ms covers a retransmission on most paths; 1000 packets is about
        // a second of 5 Mbit/s video, a few hundred kilobytes at most.
        JitterConfig {
            max_delay: Duration::from_millis(200),
            max_packets: 1000,
        }
    }
}

/// What a [`JitterBuffer`] releases, in sequence order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JitterOutput {
    /// The next packet in sequence, with the time it arrived.
    Packet { packet: RtpPacket, arrived: Instant },
    /// `count` packets starting at `first` were given up on.
    Lost { first: u16, count: u64 },
    /// The sequence numbers jumped far back and stayed there: the sender
    /// restarted its stream. What was held of the old one was dropped; the
    /// packets that follow are the new stream's.
    Restarted,
}

/// Counters of a [`JitterBuffer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed, including duplicates and late ones.
    pub received: u64,
    /// Packets released in order.
    pub released: u64,
    /// Packets that arrived after a later one (filled a gap in time).
    pub reordered: u64,
    /// Packets already held or already released, ignored.
    pub duplicates: u64,
    /// Packets that arrived after their gap was given up, ignored.
    pub late: u64,
    /// Packets given up on.
    pub lost: u64,
}

/// How many given-up ranges are remembered for the late/duplicate count.
const GIVEN_UP_KEPT: usize = 16;

/// Packets this far behind the next expected one are no retransmission...
const FAR_BEHIND: u64 = 4096;
/// ...and this many of them in a row mean the sender restarted its sequence.
const RESTART_AFTER: u32 = 8;

struct Held {
    packet: RtpPacket,
    arrived: Instant,
}

/// Reorders one track's RTP packets; see the module documentation.
///
/// Sans-IO: [`push`](Self::push) packets as they arrive, then call
/// [`poll`](Self::poll) until it returns `None`, and call it again at
/// [`poll_timeout`](Self::poll_timeout).
pub struct JitterBuffer {
    config: JitterConfig,
    /// Held packets by extended (unwrapped) sequence number.
    held: BTreeMap<u64, Held>,
    /// Extended sequence number of the next packet to release; `None` until
    /// the first packet has been held for `max_delay`.
    next: Option<u64>,
    /// Highest extended sequence number seen, the reference for unwrapping.
    highest: Option<u64>,
    /// When the hold of the very first packet ends.
    start_deadline: Option<Instant>,
    /// The last few given-up ranges `[start, end)`, to tell a late packet
    /// from a duplicate in the stats.
    given_up: VecDeque<(u64, u64)>,
    /// Packets far behind `next` in a row, see [`FAR_BEHIND`].
    far_behind: u32,
    /// A [`JitterOutput::Restarted`] is due.
    restarted: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        JitterBuffer {
            config: JitterConfig {
                max_packets: config.max_packets.max(1),
                ..config
            },
            held: BTreeMap::new(),
            next: None,
            highest: None,
            start_deadline: None,
            given_up: VecDeque::new(),
            far_behind: 0,
            restarted: false,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets held right now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Extends a 16-bit sequence number to the 64-bit one closest to the
    /// highest seen, so that 65535 → 0 counts as one step forward.
    fn extend(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start well above zero so that packets older than the first one
            // still have a place below it.
            return (1 << 32) | u64::from(seq);
        };
        let candidate = (highest & !0xFFFF) | u64::from(seq);
        if candidate > highest && candidate - highest > 0x8000 {
            candidate - 0x1_0000
        } else if highest > candidate && highest - candidate > 0x8000 {
            candidate + 0x1_0000
        } else {
            candidate
        }
    }

    /// Takes a packet that arrived at `now`. Duplicates and packets whose
    /// gap was already given up are counted and dropped.
    pub fn push(&mut self, packet: RtpPacket, now: Instant) {
        self.stats.received += 1;
        let ext = self.extend(packet.sequence_number);
        if let Some(next) = self.next
            && ext < next
        {
            if next - ext > FAR_BEHIND {
                self.far_behind += 1;
                if self.far_behind >= RESTART_AFTER {
                    self.restart();
                    self.stats.received -= 1;
                    return self.push(packet, now);
                }
            } else {
                self.far_behind = 0;
            }
            if self
                .given_up
                .iter()
                .any(|&(start, end)| (start..end).contains(&ext))
            {
                self.stats.late += 1;
            } else {
                self.stats.duplicates += 1;
            }
            return;
        }
        self.far_behind = 0;
        if self.held.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        match self.highest {
            Some(highest) if ext < highest => self.stats.reordered += 1,
            _ => self.highest = Some(ext),
        }
        if self.start_deadline.is_none() {
            self.start_deadline = Some(now + self.config.max_delay);
        }
        self.held.insert(
            ext,
            Held {
                packet,
                arrived: now,
            },
        );
    }

    /// Starts over as if no packet had come yet, dropping what is held.
    fn restart(&mut self) {
        self.stats.lost += self.held.len() as u64;
        self.held.clear();
        self.next = None;
        self.highest = None;
        self.start_deadline = None;
        self.given_up.clear();
        self.far_behind = 0;
        self.restarted = true;
    }

    /// Releases the next packet or loss that is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<JitterOutput> {
        self.release(Some(now))
    }

    /// Releases everything held, giving up on every gap; for the end of a
    /// recording. Call until it returns `None`.
    pub fn flush(&mut self) -> Option<JitterOutput> {
        self.release(None)
    }

    /// `now == None` means every deadline has passed.
    fn release(&mut self, now: Option<Instant>) -> Option<JitterOutput> {
        if std::mem::take(&mut self.restarted) {
            return Some(JitterOutput::Restarted);
        }
        let (&first, held) = self.held.first_key_value()?;
        let next = match self.next {
            Some(next) => next,
            None => {
                let waiting =
                    matches!((now, self.start_deadline), (Some(now), Some(end)) if now < end);
                if waiting && self.held.len() <= self.config.max_packets {
                    return None;
                }
                self.next = Some(first);
                first
            }
        };
        if first == next {
            let held = self.held.pop_first()?.1;
            self.next = Some(next + 1);
            self.stats.released += 1;
            return Some(JitterOutput::Packet {
                packet: held.packet,
                arrived: held.arrived,
            });
        }
        let overflow = self.held.len() > self.config.max_packets;
        let expired = now.is_none_or(|now| now >= held.arrived + self.config.max_delay);
        if !(overflow || expired) {
            return None;
        }
        let count = first - next;
        self.stats.lost += count;
        if self.given_up.len() == GIVEN_UP_KEPT {
            self.given_up.pop_front();
        }
        self.given_up.push_back((next, first));
        self.next = Some(first);
        Some(JitterOutput::Lost {
            first: next as u16,
            count,
        })
    }

    /// When [`poll`](Self::poll) may release something next: now or in the
    /// past when something is due, `None` when nothing is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (&first, held) = self.held.first_key_value()?;
        match self.next {
            None => self.start_deadline,
            Some(next) if next == first => Some(held.arrived),
            Some(_) => Some(held.arrived + self.config.max_delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> RtpPacket {
        RtpPacket {
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            marker: true,
            payload: vec![seq as u8],
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(jb: &mut JitterBuffer, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| jb.poll(now))
            .map(|out| match out {
                JitterOutput::Packet { packet, .. } => packet.sequence_number.to_string(),
                JitterOutput::Lost { first, count } => format!("lost {first}+{count}"),
                JitterOutput::Restarted => "restarted".to_string(),
            })
            .collect()
    }

    fn config() -> JitterConfig {
        JitterConfig {
            max_delay: ms(100),
            max_packets: 64,
        }
    }

    #[test]
    fn holds_the_first_packet_then_reorders() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        jb.push(pkt(11), t0);
        jb.push(pkt(10), t0 + ms(5));
        jb.push(pkt(13), t0 + ms(10));
        assert!(
            drain(&mut jb, t0 + ms(50)).is_empty(),
            "the first packet is held"
        );
        assert_eq!(jb.poll_timeout(), Some(t0 + ms(100)));
        jb.push(pkt(12), t0 + ms(60));
        assert_eq!(drain(&mut jb, t0 + ms(100)), ["10", "11", "12", "13"]);
        assert_eq!(jb.stats().reordered, 2);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn sequence_numbers_wrap_at_65535() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        for seq in [65533, 65534, 0, 65535, 1, 2] {
            jb.push(pkt(seq), t0);
        }
        assert_eq!(
            drain(&mut jb, t0 + ms(100)),
            ["65533", "65534", "65535", "0", "1", "2"]
        );
        jb.push(pkt(4), t0 + ms(110));
        jb.push(pkt(3), t0 + ms(120));
        assert_eq!(drain(&mut jb, t0 + ms(120)), ["3", "4"]);
    }

    #[test]
    fn a_late_retransmission_fills_the_gap() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        jb.push(pkt(1), t0);
        assert_eq!(drain(&mut jb, t0 + ms(100)), ["1"]);
        jb.push(pkt(3), t0 + ms(120));
        jb.push(pkt(4), t0 + ms(130));
        assert!(drain(&mut jb, t0 + ms(200)).is_empty(), "waits for 2");
        assert_eq!(jb.poll_timeout(), Some(t0 + ms(220)));
        jb.push(pkt(2), t0 + ms(210));
        assert_eq!(drain(&mut jb, t0 + ms(210)), ["2", "3", "4"]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn gives_up_after_max_delay_and_ignores_the_late_packet() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        jb.push(pkt(1), t0);
        drain(&mut jb, t0 + ms(100));
        jb.push(pkt(4), t0 + ms(120));
        assert!(drain(&mut jb, t0 + ms(219)).is_empty());
        assert_eq!(drain(&mut jb, t0 + ms(220)), ["lost 2+2", "4"]);
        jb.push(pkt(3), t0 + ms(230));
        assert!(drain(&mut jb, t0 + ms(400)).is_empty());
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.late, stats.released), (2, 1, 2));
    }

    #[test]
    fn duplicates_are_ignored() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        jb.push(pkt(1), t0);
        jb.push(pkt(1), t0);
        jb.push(pkt(2), t0);
        assert_eq!(drain(&mut jb, t0 + ms(100)), ["1", "2"]);
        jb.push(pkt(2), t0 + ms(101));
        jb.push(pkt(1), t0 + ms(102));
        assert!(drain(&mut jb, t0 + ms(300)).is_empty());
        assert_eq!(jb.stats().duplicates, 3);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn memory_is_bounded_by_giving_up_early() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig {
            max_delay: ms(100),
            max_packets: 8,
        });
        jb.push(pkt(0), t0);
        drain(&mut jb, t0 + ms(100));
        // Packet 1 never comes; 2.. pile up faster than the delay expires.
        for seq in 2..20 {
            jb.push(pkt(seq), t0 + ms(101));
            drain(&mut jb, t0 + ms(101));
            assert!(jb.len() <= 8, "held {}", jb.len());
        }
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn a_sequence_that_jumps_far_back_and_stays_is_a_restart() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        for seq in 30_000..30_010 {
            jb.push(pkt(seq), t0);
        }
        drain(&mut jb, t0 + ms(100));
        // A stray very old packet is only late...
        jb.push(pkt(100), t0 + ms(110));
        jb.push(pkt(30_010), t0 + ms(110));
        assert_eq!(drain(&mut jb, t0 + ms(110)), ["30010"]);
        // ...but a run of them is a new stream, from its 8th packet on.
        for (i, seq) in (100..120).enumerate() {
            jb.push(pkt(seq), t0 + ms(120 + i as u64));
        }
        let out = drain(&mut jb, t0 + ms(300));
        assert_eq!(out[0], "restarted");
        assert_eq!(
            out[1..],
            (107..120).map(|s| s.to_string()).collect::<Vec<_>>()[..]
        );
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn flush_releases_everything() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(config());
        for seq in [5, 7, 10] {
            jb.push(pkt(seq), t0);
        }
        let out: Vec<_> = std::iter::from_fn(|| jb.flush()).collect();
        assert_eq!(out.len(), 5);
        assert_eq!(out[1], JitterOutput::Lost { first: 6, count: 1 });
        assert!(jb.is_empty());
        assert_eq!(jb.poll_timeout(), None);
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig {
            max_delay: ms(50),
            max_packets: 32,
        });
        let mut x: u32 = 12345;
        for i in 0..20_000u64 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            jb.push(pkt((x >> 16) as u16), t0 + ms(i));
            while jb.poll(t0 + ms(i)).is_some() {}
            assert!(jb.len() <= 33);
        }
    }
}
