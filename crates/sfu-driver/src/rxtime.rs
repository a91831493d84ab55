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

/// `recv_from` that also says when the datagram arrived: the kernel's
/// stamp when there is one, else now.
#[cfg(target_os = "linux")]
pub(crate) fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Instant)> {
    use std::mem::{size_of, size_of_val, zeroed};
    use std::os::fd::AsRawFd;

    // SAFETY: all-zero is a valid `sockaddr_storage` and `msghdr`.
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: aligned for `cmsghdr`; room for one timestamp and more.
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut addr).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points at a live buffer of the length
    // it is given with, for the duration of the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, 0) };
    let now = Instant::now();
    let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let source = socket_addr(&addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP source address"))?;
    let mut arrived = now;
    // SAFETY: `msg` was filled by `recvmsg`; the CMSG macros walk its
    // control buffer within `msg_controllen`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers from CMSG_FIRSTHDR/NXTHDR are in bounds.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one `timespec`.
            let stamp: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            arrived = arrival(stamp.tv_sec, stamp.tv_nsec, now);
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    Ok((len, source, arrived))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Instant)> {
    let (len, source) = socket.recv_from(buf)?;
    Ok((len, source, Instant::now()))
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
            let mut buf = [0u8; 16];
            let (len, source, at) = recv_from(&b, &mut buf).unwrap();
            let waited = Instant::now().duration_since(at);
            assert_eq!(
                (&buf[..len], source),
                (&b"one"[..], a.local_addr().unwrap())
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
