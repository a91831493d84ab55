//! When each datagram reached the host: the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`) instead of the moment a thread got round to it.
//!
//! The engine gives that time to str0m, which reports it to publishers in
//! transport-wide congestion-control feedback (TWCC). A browser's send-side
//! estimator (Chromium's GoogCC) reads those arrival times: packets whose
//! times are bunched up because the receiving or the worker thread was busy
//! (a DTLS handshake of someone joining, a loaded machine) look like a
//! queue that built and drained, so it backs off, or, for a bandwidth probe
//! whose packets all seem to arrive at once, it discards the probe as
//! invalid and is left to creep upwards by tens of kbit/s per second (seen
//! with Chromium 156: a publisher taking 10–25 s to send its top simulcast
//! layer after a viewer joined; see docs/benchmarks.md). The kernel stamps
//! a datagram as it is queued on the socket, before any of that.
//!
//! Linux only; elsewhere (or when the option is refused) the time the
//! datagram is read is used, as before.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

/// Asks the kernel to stamp every datagram of `socket` with its arrival
/// time; whether it will.
#[cfg(target_os = "linux")]
pub(crate) fn enable(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor, a pointer to a `c_int` and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable(_socket: &UdpSocket) -> bool {
    false
}

/// `recv_from` that says when the datagram arrived: when it is read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Instant)> {
    let (len, source) = socket.recv_from(buf)?;
    Ok((len, source, Instant::now()))
}

/// Room for one datagram in a [`BatchReceiver`]: more than any WebRTC
/// datagram (an MTU's worth); longer ones arrive truncated and are dropped.
pub(crate) const SLOT: usize = 2048;

/// Datagrams taken per `recvmmsg` call.
pub(crate) const SLOTS: usize = 32;

/// One datagram a [`BatchReceiver`] read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub len: usize,
    pub source: Option<SocketAddr>,
    pub arrived: Instant,
    /// Longer than [`SLOT`]: its bytes are cut, not to be used.
    pub truncated: bool,
}

/// Reads up to [`SLOTS`] datagrams per system call (`recvmmsg` with
/// `MSG_WAITFORONE`: it waits for the first, under the socket's read
/// timeout, and takes whatever else is queued), each with its kernel
/// arrival stamp. Made on the thread that uses it.
#[cfg(target_os = "linux")]
pub(crate) struct BatchReceiver {
    buffers: Vec<u8>,
    addresses: Vec<libc::sockaddr_storage>,
    /// u64s: aligned for `cmsghdr`; room for one timestamp and more.
    controls: Vec<[u64; 8]>,
    received: Vec<Received>,
}

#[cfg(target_os = "linux")]
impl BatchReceiver {
    pub fn new() -> BatchReceiver {
        BatchReceiver {
            buffers: vec![0; SLOT * SLOTS],
            // SAFETY: all-zero is a valid `sockaddr_storage`.
            addresses: vec![unsafe { std::mem::zeroed() }; SLOTS],
            controls: vec![[0; 8]; SLOTS],
            received: Vec::with_capacity(SLOTS),
        }
    }

    /// Waits for datagrams and reads what is queued: how many.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        use std::mem::{size_of, zeroed};
        use std::os::fd::AsRawFd;

        self.received.clear();
        let mut iovecs: Vec<libc::iovec> = self
            .buffers
            .chunks_mut(SLOT)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: c.len(),
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .zip(self.addresses.iter_mut())
            .zip(self.controls.iter_mut())
            .map(|((iov, addr), control)| {
                // SAFETY: all-zero is a valid `mmsghdr`.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = std::ptr::from_mut(addr).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = std::ptr::from_mut(iov);
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = control.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = size_of::<[u64; 8]>() as _;
                h
            })
            .collect();
        // SAFETY: each header points at a buffer, an address and a control
        // area of the lengths it gives, owned by `self` and alive for the
        // call; `headers.len()` headers (SLOTS) are passed.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                SLOTS as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let now = Instant::now();
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (i, h) in headers.iter().take(n).enumerate() {
            let msg = &h.msg_hdr;
            let mut arrived = now;
            // SAFETY: `msg` was filled by `recvmmsg`; the CMSG macros walk
            // its control buffer within `msg_controllen`.
            let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
            while !cmsg.is_null() {
                // SAFETY: non-null headers from CMSG_FIRSTHDR/NXTHDR are in bounds.
                let header = unsafe { &*cmsg };
                if header.cmsg_level == libc::SOL_SOCKET
                    && header.cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    // SAFETY: an SCM_TIMESTAMPNS message carries one `timespec`.
                    let stamp: libc::timespec =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                    arrived = arrival(stamp.tv_sec, stamp.tv_nsec, now);
                }
                // SAFETY: as above.
                cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
            }
            let len = h.msg_len as usize;
            self.received.push(Received {
                len: len.min(SLOT),
                source: self.addresses.get(i).and_then(socket_addr),
                arrived,
                truncated: msg.msg_flags & libc::MSG_TRUNC != 0 || len > SLOT,
            });
        }
        Ok(self.received.len())
    }

    /// The `i`th datagram of the last `recv`, and its bytes.
    pub fn get(&self, i: usize) -> Option<(Received, &[u8])> {
        let r = *self.received.get(i)?;
        let start = i * SLOT;
        Some((r, &self.buffers[start..start + r.len]))
    }
}

/// Elsewhere: one datagram per call, stamped when read.
#[cfg(not(target_os = "linux"))]
pub(crate) struct BatchReceiver {
    buffer: Vec<u8>,
    received: Option<Received>,
}

#[cfg(not(target_os = "linux"))]
impl BatchReceiver {
    pub fn new() -> BatchReceiver {
        BatchReceiver {
            buffer: vec![0; SLOT],
            received: None,
        }
    }

    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = None;
        let (len, source, arrived) = recv_from(socket, &mut self.buffer)?;
        self.received = Some(Received {
            len: len.min(SLOT),
            source: Some(source),
            arrived,
            truncated: len > SLOT,
        });
        Ok(1)
    }

    pub fn get(&self, i: usize) -> Option<(Received, &[u8])> {
        let r = self.received.filter(|_| i == 0)?;
        Some((r, &self.buffer[..r.len]))
    }
}

#[cfg(target_os = "linux")]
fn socket_addr(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`.
            let v4 = unsafe { &*(std::ptr::from_ref(addr).cast::<libc::sockaddr_in>()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a `sockaddr_in6`.
            let v6 = unsafe { &*(std::ptr::from_ref(addr).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The stamp's wall-clock time (`CLOCK_REALTIME`) as an `Instant`, by its
/// age now. A stamp from the future (the wall clock was stepped back) or
/// older than [`MAX_AGE`] (stepped forward) is not trusted: `now`.
fn arrival(sec: i64, nsec: i64, now: Instant) -> Instant {
    let (Ok(sec), Ok(nsec)) = (u64::try_from(sec), u32::try_from(nsec)) else {
        return now;
    };
    let stamp = std::time::UNIX_EPOCH + std::time::Duration::new(sec, nsec);
    match std::time::SystemTime::now().duration_since(stamp) {
        Ok(age) if age <= MAX_AGE => now.checked_sub(age).unwrap_or(now),
        _ => now,
    }
}

/// The oldest stamp believed: a datagram waits far less than this in the
/// socket's buffer.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn arrival_times_are_the_kernels_stamps() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stamped = enable(&b);
        assert_eq!(stamped, cfg!(target_os = "linux"));
        // Linux turns stamping on at arrival a moment after the first socket
        // asks (until then a datagram is stamped when read), so a few tries.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            a.send_to(b"one", b.local_addr().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(50)); // sleep-ok: the wait between arrival and reading that the stamp must show
            let mut receiver = BatchReceiver::new();
            assert_eq!(receiver.recv(&b).unwrap(), 1);
            let (r, bytes) = receiver.get(0).unwrap();
            let waited = Instant::now().duration_since(r.arrived);
            assert_eq!(
                (bytes, r.source, r.truncated),
                (&b"one"[..], Some(a.local_addr().unwrap()), false)
            );
            if !stamped || waited >= Duration::from_millis(40) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the arrival time is the reading time: {waited:?} ago"
            );
        }
    }

    #[test]
    fn one_call_reads_what_is_queued_and_flags_truncation() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = b.local_addr().unwrap();
        for i in 0..5u8 {
            a.send_to(&[i; 100], to).unwrap();
        }
        a.send_to(&vec![9u8; SLOT + 10], to).unwrap();
        let mut receiver = BatchReceiver::new();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 6 {
            assert!(Instant::now() < deadline, "only {} arrived", got.len());
            let n = receiver.recv(&b).unwrap();
            for i in 0..n {
                let (r, bytes) = receiver.get(i).unwrap();
                got.push((bytes.first().copied(), r.len, r.truncated));
            }
        }
        let expected: Vec<_> = (0..5u8)
            .map(|i| (Some(i), 100, false))
            .chain([(Some(9), SLOT, true)])
            .collect();
        assert_eq!(got, expected);
        if cfg!(target_os = "linux") {
            // All were queued before the first call: so few calls.
            assert!(receiver.get(0).is_some());
        }
    }

    #[test]
    fn untrustworthy_stamps_are_now() {
        let now = Instant::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap();
        let future = wall + Duration::from_secs(5);
        assert_eq!(arrival(secs(future), 0, now), now);
        let old = wall - Duration::from_secs(5);
        assert_eq!(arrival(secs(old), 0, now), now);
        assert_eq!(arrival(-1, 0, now), now);
        let recent = wall - Duration::from_millis(200);
        let at = arrival(secs(recent), i64::from(recent.subsec_nanos()), now);
        let age = now.duration_since(at);
        assert!(
            age >= Duration::from_millis(150) && age <= Duration::from_millis(400),
            "{age:?}"
        );
    }
}
