//! A worker's UDP sends, batched.
//!
//! One forwarded packet becomes one datagram per consumer, each to another
//! address, so the cost that scales is the system call per datagram. The
//! worker queues the engine's UDP transmits of a turn here and hands them
//! to the kernel with `sendmmsg(2)`, up to [`SEND_BATCH`] per call.
//!
//! Where one destination has several datagrams of the same size in a turn
//! (a subscriber getting the packets of several publishers, or of a burst
//! of one, that arrived in the same turn), those go out in one
//! `sendmsg(2)` with UDP generic segmentation offload (`UDP_SEGMENT`): the
//! kernel cuts one buffer into datagrams of the segment size (the last may
//! be shorter). To find those runs the queue is sorted by destination, a
//! stable sort, so each destination's datagrams keep their order; the order
//! between destinations does not matter. A kernel or route that refuses
//! GSO turns it off for the worker and the run goes out through
//! `sendmmsg` instead.
//!
//! Failures: a datagram the kernel refuses (the first of a batch: an
//! unreachable destination) is counted and skipped, the rest are sent;
//! a partial batch continues where the kernel stopped; `WouldBlock` (the
//! socket's send buffer is full, shared by every destination) drops and
//! counts what is left of the turn rather than spin; `Interrupted` retries.
//!
//! The system calls sit behind [`SendCalls`], so tests can make the kernel
//! take part of a batch, refuse, or lack GSO. Off Linux (or with batching
//! turned off) [`SingleCalls`] sends one datagram per `send_to`: the
//! portable path, with the same bookkeeping.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most datagrams handed to the kernel in one `sendmmsg` (its own cap,
/// `UIO_MAXIOV`, is 1024; past a few dozen the saving per datagram is flat).
pub(crate) const SEND_BATCH: usize = 64;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 on
/// older kernels, 128 on newer ones).
pub(crate) const GSO_MAX_SEGMENTS: usize = 64;

/// Most bytes in one GSO send: what fits in one UDP datagram over IPv6
/// (65,535 minus the UDP header), the smaller of the two families' limits.
const GSO_MAX_BYTES: usize = 65_527;

/// How often an interrupted call is retried before its datagrams count as
/// failed (a signal storm must not hold the worker).
const MAX_INTERRUPTS: u32 = 3;

/// Queued datagrams past which the worker sends before its turn ends, so a
/// large turn (many inputs times many consumers) does not hold them all.
pub(crate) const QUEUE_LIMIT: usize = 8192;

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub destination: SocketAddr,
    pub bytes: Vec<u8>,
}

/// The system calls under [`UdpOut`].
pub(crate) trait SendCalls {
    /// Sends each datagram to its destination in one call: how many the
    /// kernel took from the front (at least one), or the error of the first.
    fn send_many(&mut self, datagrams: &[Datagram]) -> io::Result<usize>;

    /// Sends `bytes` to `destination` cut into datagrams of `segment`
    /// bytes, the last possibly shorter (UDP GSO).
    fn send_segments(
        &mut self,
        destination: SocketAddr,
        bytes: &[u8],
        segment: u16,
    ) -> io::Result<()>;
}

/// What one [`UdpOut::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SendReport {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams dropped: refused, or left when the send buffer was full.
    pub failed: u64,
    /// System calls made.
    pub calls: u64,
    /// Of `sent`, those that went out in GSO sends.
    pub segmented: u64,
}

/// The queue of a worker's UDP datagrams and how they are sent.
#[derive(Debug)]
pub(crate) struct UdpOut {
    queue: Vec<Datagram>,
    /// Whether runs to one destination go out with GSO; turned off for good
    /// when the kernel refuses it.
    gso: bool,
    /// The buffer a GSO run is concatenated into.
    scratch: Vec<u8>,
}

impl UdpOut {
    pub fn new(gso: bool) -> UdpOut {
        UdpOut {
            queue: Vec::new(),
            gso,
            scratch: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn gso(&self) -> bool {
        self.gso
    }

    pub fn push(&mut self, destination: SocketAddr, bytes: Vec<u8>) {
        self.queue.push(Datagram { destination, bytes });
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Sends everything queued (see the module doc for failures); the
    /// queue is empty after.
    pub fn flush(&mut self, calls: &mut impl SendCalls) -> SendReport {
        let mut report = SendReport::default();
        if self.queue.is_empty() {
            return report;
        }
        if self.gso && self.queue.len() > 1 {
            // Stable: each destination's datagrams keep their order.
            self.queue.sort_by_key(|d| d.destination);
        }
        let n = self.queue.len();
        let mut i = 0;
        let mut interrupts = 0;
        while i < n {
            let run = if self.gso {
                gso_run(&self.queue[i..])
            } else {
                1
            };
            if run > 1 {
                let first = &self.queue[i];
                let segment = u16::try_from(first.bytes.len()).unwrap_or(u16::MAX);
                let destination = first.destination;
                self.scratch.clear();
                for d in &self.queue[i..i + run] {
                    self.scratch.extend_from_slice(&d.bytes);
                }
                report.calls += 1;
                match calls.send_segments(destination, &self.scratch, segment) {
                    Ok(()) => {
                        report.sent += run as u64;
                        report.segmented += run as u64;
                        i += run;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        interrupts += 1;
                        if interrupts > MAX_INTERRUPTS {
                            report.failed += run as u64;
                            i += run;
                            interrupts = 0;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        report.failed += (n - i) as u64;
                        break;
                    }
                    Err(e) if gso_refused(&e) => {
                        // Sent again below, without GSO.
                        tracing::info!(error = %e, "UDP GSO refused: sending one datagram per segment");
                        self.gso = false;
                    }
                    Err(_) => {
                        report.failed += run as u64;
                        i += run;
                    }
                }
                continue;
            }
            let end = self.batch_end(i);
            report.calls += 1;
            match calls.send_many(&self.queue[i..end]) {
                Ok(taken) => {
                    // A kernel that took nothing still must not stall the
                    // worker: the first counts as failed.
                    let taken = taken.min(end - i);
                    if taken == 0 {
                        report.failed += 1;
                        i += 1;
                    } else {
                        report.sent += taken as u64;
                        i += taken;
                    }
                    interrupts = 0;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    interrupts += 1;
                    if interrupts > MAX_INTERRUPTS {
                        report.failed += 1;
                        i += 1;
                        interrupts = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    report.failed += (n - i) as u64;
                    break;
                }
                // The first datagram was refused (its destination): skip it.
                Err(_) => {
                    report.failed += 1;
                    i += 1;
                }
            }
        }
        self.queue.clear();
        report
    }

    /// Where a `sendmmsg` batch starting at `start` ends: after
    /// [`SEND_BATCH`] datagrams, or where a GSO run begins.
    fn batch_end(&self, start: usize) -> usize {
        let limit = (start + SEND_BATCH).min(self.queue.len());
        if !self.gso {
            return limit;
        }
        (start + 1..limit)
            .find(|&j| gso_run(&self.queue[j..]) > 1)
            .unwrap_or(limit)
    }
}

/// How many datagrams from the front of `queue` one GSO send can carry:
/// the same destination, the same size (the last may be shorter), within
/// the kernel's limits. 1 when GSO would not help.
fn gso_run(queue: &[Datagram]) -> usize {
    let Some(first) = queue.first() else {
        return 0;
    };
    let segment = first.bytes.len();
    if segment == 0 || segment > usize::from(u16::MAX) {
        return 1;
    }
    let max = GSO_MAX_SEGMENTS.min(GSO_MAX_BYTES / segment).max(1);
    let mut run = 1;
    for d in queue.iter().skip(1).take(max - 1) {
        if d.destination != first.destination || d.bytes.is_empty() || d.bytes.len() > segment {
            break;
        }
        run += 1;
        if d.bytes.len() < segment {
            // A shorter datagram can only be the last segment.
            break;
        }
    }
    run
}

/// Whether a GSO send failed because segmentation is not available (an
/// old kernel, or a device without checksum offload): then it is turned
/// off, not the datagrams dropped.
fn gso_refused(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
        ) || e.kind() == io::ErrorKind::Unsupported
    }
    #[cfg(not(target_os = "linux"))]
    {
        e.kind() == io::ErrorKind::Unsupported
    }
}

/// The portable path: one `send_to` per datagram, no GSO.
pub(crate) struct SingleCalls<'a>(pub &'a UdpSocket);

impl SendCalls for SingleCalls<'_> {
    fn send_many(&mut self, datagrams: &[Datagram]) -> io::Result<usize> {
        let Some(first) = datagrams.first() else {
            return Ok(0);
        };
        self.0.send_to(&first.bytes, first.destination).map(|_| 1)
    }

    fn send_segments(&mut self, _: SocketAddr, _: &[u8], _: u16) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The batched path: `sendmmsg(2)`, and `sendmsg(2)` with a `UDP_SEGMENT`
/// control message for GSO. Called through `libc` (see
/// docs/ARCHITECTURE.md, "Batched UDP I/O", for why not a wrapper crate).
#[cfg(target_os = "linux")]
pub(crate) struct BatchCalls<'a>(pub &'a UdpSocket);

#[cfg(target_os = "linux")]
impl SendCalls for BatchCalls<'_> {
    fn send_many(&mut self, datagrams: &[Datagram]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        let datagrams = &datagrams[..datagrams.len().min(SEND_BATCH)];
        if let [d] = datagrams {
            // One datagram: `send_to` avoids the batch's set-up.
            return self.0.send_to(&d.bytes, d.destination).map(|_| 1);
        }
        let addresses: Vec<RawAddr> = datagrams
            .iter()
            .map(|d| RawAddr::new(d.destination))
            .collect();
        let mut iovecs: Vec<libc::iovec> = datagrams
            .iter()
            .map(|d| libc::iovec {
                iov_base: d.bytes.as_ptr().cast_mut().cast(),
                iov_len: d.bytes.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = addresses
            .iter()
            .zip(iovecs.iter_mut())
            .map(|(address, iov)| {
                // SAFETY: all-zero is a valid `mmsghdr` (no control data,
                // no flags); the fields used are set just below.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = address.as_ptr().cast_mut();
                h.msg_hdr.msg_namelen = address.len;
                h.msg_hdr.msg_iov = std::ptr::from_mut(iov);
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let count = libc::c_uint::try_from(headers.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: each header points at an address and an iovec that live in
        // `addresses` and `iovecs` until after the call, and each iovec at
        // a datagram of `datagrams`; the kernel only reads them (and writes
        // `msg_len`); `count` is the number of headers.
        let sent = unsafe { libc::sendmmsg(self.0.as_raw_fd(), headers.as_mut_ptr(), count, 0) };
        usize::try_from(sent).map_err(|_| io::Error::last_os_error())
    }

    fn send_segments(
        &mut self,
        destination: SocketAddr,
        bytes: &[u8],
        segment: u16,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;

        let address = RawAddr::new(destination);
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        // u64s keep the buffer aligned for `cmsghdr`; one u16 needs 24 bytes.
        let mut control = [0u64; 4];
        // SAFETY: all-zero is a valid `msghdr`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = address.as_ptr().cast_mut();
        msg.msg_namelen = address.len;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as _;
        // SAFETY: `msg` has a control buffer of `msg_controllen` (≤ 32)
        // bytes, so CMSG_FIRSTHDR is non-null and the header and its u16
        // fit in it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
        }
        // SAFETY: every pointer in `msg` points at a live buffer of the
        // length it is given with, for the duration of the call.
        let sent = unsafe { libc::sendmsg(self.0.as_raw_fd(), &raw const msg, 0) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// A socket address in the form the kernel reads.
#[cfg(target_os = "linux")]
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

#[cfg(target_os = "linux")]
impl RawAddr {
    fn new(addr: SocketAddr) -> RawAddr {
        // SAFETY: all-zero is a valid `sockaddr_storage`.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*v4.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: `sockaddr_storage` is larger than and aligned for
                // every socket address type.
                unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: as above.
                unsafe { std::ptr::write(std::ptr::from_mut(&mut storage).cast(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn as_ptr(&self) -> *const libc::c_void {
        std::ptr::from_ref(&self.storage).cast()
    }
}

/// Whether the kernel knows `UDP_SEGMENT` on this socket (Linux 4.18+).
#[cfg(target_os = "linux")]
pub(crate) fn gso_supported(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a `c_int` and its size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn gso_supported(_socket: &UdpSocket) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Calls that answer from a script and record what they were given.
    #[derive(Default)]
    struct Scripted {
        many: VecDeque<io::Result<usize>>,
        segments: VecDeque<io::Result<()>>,
        /// Every datagram the fake kernel took, in order, and how.
        taken: Vec<(SocketAddr, Vec<u8>, &'static str)>,
        calls: usize,
    }

    impl SendCalls for Scripted {
        fn send_many(&mut self, datagrams: &[Datagram]) -> io::Result<usize> {
            self.calls += 1;
            let answer = self.many.pop_front().unwrap_or(Ok(datagrams.len()));
            if let Ok(n) = answer {
                for d in &datagrams[..n.min(datagrams.len())] {
                    self.taken.push((d.destination, d.bytes.clone(), "mmsg"));
                }
            }
            answer
        }

        fn send_segments(
            &mut self,
            destination: SocketAddr,
            bytes: &[u8],
            segment: u16,
        ) -> io::Result<()> {
            self.calls += 1;
            let answer = self.segments.pop_front().unwrap_or(Ok(()));
            if answer.is_ok() {
                for chunk in bytes.chunks(usize::from(segment)) {
                    self.taken.push((destination, chunk.to_vec(), "gso"));
                }
            }
            answer
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn queue(out: &mut UdpOut, items: &[(u16, u8, usize)]) {
        for &(port, tag, len) in items {
            out.push(addr(port), vec![tag; len]);
        }
    }

    #[test]
    fn a_partial_batch_continues_where_the_kernel_stopped() {
        let mut out = UdpOut::new(false);
        for i in 0..10u8 {
            out.push(addr(1000 + u16::from(i)), vec![i; 100]);
        }
        let mut calls = Scripted::default();
        calls.many.extend([Ok(3), Ok(4)]);
        let report = out.flush(&mut calls);
        assert_eq!(report.sent, 10);
        assert_eq!(report.failed, 0);
        assert_eq!(report.calls, 3, "3, then 4, then the last 3");
        let tags: Vec<u8> = calls.taken.iter().map(|t| t.1[0]).collect();
        assert_eq!(tags, (0..10).collect::<Vec<u8>>(), "each once, in order");
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn batches_are_at_most_send_batch_long() {
        let mut out = UdpOut::new(false);
        for i in 0..(SEND_BATCH + 5) {
            out.push(addr(2000 + u16::try_from(i).unwrap()), vec![1; 10]);
        }
        let mut calls = Scripted::default();
        let report = out.flush(&mut calls);
        assert_eq!(report.sent, (SEND_BATCH + 5) as u64);
        assert_eq!(report.calls, 2);
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_sent() {
        let mut out = UdpOut::new(false);
        queue(&mut out, &[(1, 1, 50), (2, 2, 50), (3, 3, 50)]);
        let mut calls = Scripted::default();
        calls
            .many
            .push_back(Err(io::Error::from_raw_os_error(libc::EHOSTUNREACH)));
        let report = out.flush(&mut calls);
        assert_eq!((report.sent, report.failed), (2, 1));
        let tags: Vec<u8> = calls.taken.iter().map(|t| t.1[0]).collect();
        assert_eq!(tags, vec![2, 3]);
    }

    #[test]
    fn would_block_drops_the_rest_of_the_turn_without_spinning() {
        let mut out = UdpOut::new(false);
        for i in 0..8u8 {
            out.push(addr(3000 + u16::from(i)), vec![i; 10]);
        }
        let mut calls = Scripted::default();
        calls
            .many
            .extend([Ok(5), Err(io::ErrorKind::WouldBlock.into())]);
        let report = out.flush(&mut calls);
        assert_eq!((report.sent, report.failed, report.calls), (5, 3, 2));
        assert_eq!(out.len(), 0, "nothing is kept for later");
        // The next turn sends again.
        queue(&mut out, &[(9, 9, 10)]);
        assert_eq!(out.flush(&mut calls).sent, 1);
    }

    #[test]
    fn interrupted_calls_are_retried_a_few_times() {
        let mut out = UdpOut::new(false);
        queue(&mut out, &[(1, 1, 10), (2, 2, 10)]);
        let mut calls = Scripted::default();
        calls.many.push_back(Err(io::ErrorKind::Interrupted.into()));
        let report = out.flush(&mut calls);
        assert_eq!((report.sent, report.failed, report.calls), (2, 0, 2));

        queue(&mut out, &[(1, 1, 10)]);
        for _ in 0..10 {
            calls.many.push_back(Err(io::ErrorKind::Interrupted.into()));
        }
        let report = out.flush(&mut calls);
        assert_eq!(
            (report.sent, report.failed),
            (0, 1),
            "gives up, does not hang"
        );
    }

    #[test]
    fn runs_to_one_destination_go_out_segmented_in_order() {
        let mut out = UdpOut::new(true);
        // Two input packets of a turn, each to three consumers; port 2 also
        // gets a short last packet, port 3 a longer one (not segmentable
        // after a shorter segment size).
        queue(
            &mut out,
            &[
                (1, 10, 1000),
                (2, 20, 1000),
                (3, 30, 500),
                (1, 11, 1000),
                (2, 21, 1000),
                (3, 31, 1000),
                (2, 22, 300),
            ],
        );
        let mut calls = Scripted::default();
        let report = out.flush(&mut calls);
        assert_eq!(report.sent, 7);
        assert_eq!(report.segmented, 5, "port 1: 2, port 2: 3");
        let got: Vec<(u16, u8, &str)> = calls
            .taken
            .iter()
            .map(|(a, b, how)| (a.port(), b[0], *how))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 10, "gso"),
                (1, 11, "gso"),
                (2, 20, "gso"),
                (2, 21, "gso"),
                (2, 22, "gso"),
                (3, 30, "mmsg"),
                (3, 31, "mmsg"),
            ]
        );
        assert_eq!(calls.calls, 3);
    }

    #[test]
    fn gso_refused_falls_back_to_sendmmsg_for_good() {
        let mut out = UdpOut::new(true);
        queue(&mut out, &[(1, 1, 100), (1, 2, 100), (2, 3, 100)]);
        let mut calls = Scripted::default();
        calls
            .segments
            .push_back(Err(io::Error::from_raw_os_error(libc::EIO)));
        let report = out.flush(&mut calls);
        assert!(!out.gso(), "turned off");
        assert_eq!((report.sent, report.failed, report.segmented), (3, 0, 0));
        let tags: Vec<u8> = calls.taken.iter().map(|t| t.1[0]).collect();
        assert_eq!(tags, vec![1, 2, 3]);
        // Later turns do not try again.
        queue(&mut out, &[(1, 4, 100), (1, 5, 100)]);
        let before = calls.calls;
        let report = out.flush(&mut calls);
        assert_eq!((report.sent, report.segmented), (2, 0));
        assert_eq!(calls.calls, before + 1, "one sendmmsg");
    }

    #[test]
    fn gso_runs_respect_the_kernels_limits() {
        let many: Vec<Datagram> = (0..100)
            .map(|_| Datagram {
                destination: addr(1),
                bytes: vec![0; 100],
            })
            .collect();
        assert_eq!(gso_run(&many), GSO_MAX_SEGMENTS);
        let big: Vec<Datagram> = (0..10)
            .map(|_| Datagram {
                destination: addr(1),
                bytes: vec![0; 20_000],
            })
            .collect();
        assert_eq!(gso_run(&big), 3, "65,527 bytes at most");
        assert_eq!(gso_run(&big[..1]), 1);
        assert_eq!(gso_run(&[]), 0);
    }

    /// The portable path: one `send_to` per call, never GSO.
    #[test]
    fn the_portable_path_sends_one_datagram_per_call() {
        use std::time::Duration;
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut out = UdpOut::new(true);
        for i in 0..3u8 {
            out.push(receiver.local_addr().unwrap(), vec![i; 100]);
        }
        let report = out.flush(&mut SingleCalls(&sender));
        assert!(!out.gso(), "refused by the portable path: off");
        assert_eq!((report.sent, report.failed, report.segmented), (3, 0, 0));
        let mut buf = [0u8; 256];
        for i in 0..3u8 {
            let (len, _) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!((len, buf[0]), (100, i));
        }
    }

    /// The real calls on loopback: what goes out arrives, one datagram per
    /// queued one, with or without GSO.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_delivers_batched_and_segmented_datagrams() {
        use std::time::Duration;
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receivers: Vec<UdpSocket> = (0..3)
            .map(|_| {
                let r = UdpSocket::bind("127.0.0.1:0").unwrap();
                r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                r
            })
            .collect();
        let gso = gso_supported(&sender);
        let mut out = UdpOut::new(gso);
        for round in 0..4u8 {
            for (i, r) in receivers.iter().enumerate() {
                let len = if i == 2 && round == 3 { 77 } else { 600 };
                out.push(
                    r.local_addr().unwrap(),
                    vec![round * 10 + u8::try_from(i).unwrap(); len],
                );
            }
        }
        let report = out.flush(&mut BatchCalls(&sender));
        assert_eq!((report.sent, report.failed), (12, 0));
        if gso {
            assert_eq!(report.segmented, 12, "every receiver got a run of 4");
        }
        for (i, r) in receivers.iter().enumerate() {
            let mut buf = [0u8; 2048];
            for round in 0..4u8 {
                let (len, _) = r.recv_from(&mut buf).unwrap();
                let expected = if i == 2 && round == 3 { 77 } else { 600 };
                assert_eq!(len, expected, "one datagram per segment");
                assert_eq!(buf[0], round * 10 + u8::try_from(i).unwrap(), "in order");
            }
        }
    }
}
