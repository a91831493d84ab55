//! The physical limit of forwarding on this machine: what an SFU cannot
//! avoid per forwarded packet, measured with the same crypto the engine
//! uses (str0m's provider, aws-lc-rs) and the same socket calls the driver
//! makes.
//!
//! - SRTP protect and unprotect of one 1200-byte packet, for both profiles
//!   browsers negotiate (AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80);
//! - sending one 1200-byte UDP datagram on loopback with `send_to`, in
//!   batches of 32 with `sendmmsg` to one address and to 32 addresses (what
//!   a forwarded packet becomes: one datagram per consumer), and 32 in one
//!   UDP GSO send to one address (a reader thread drains each receiver, so
//!   the kernel really delivers each datagram).
//!
//! A forwarded packet costs at least one protect and one send (its unprotect
//! is shared by all consumers of the stream), so
//! `1 s / (protect + send)` is the most packets one core can forward.
//!
//! Run: `cargo bench -p vtp-sfu-driver --bench physical_limit`.

use std::hint::black_box;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PACKET: usize = 1200;
const HEADER: usize = 12;
const BATCH: usize = 32;

fn srtp(c: &mut Criterion) {
    let provider = str0m::crypto::from_feature_flags();
    let srtp = provider.srtp_provider;
    let header = [
        0x80u8, 0x60, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
    ];
    let payload = vec![0x5au8; PACKET - HEADER];
    let mut group = c.benchmark_group("srtp_1200_bytes");
    group.throughput(Throughput::Elements(1));

    let mut seal = srtp.aead_aes_128_gcm().create_cipher([7; 16], true);
    let mut open = srtp.aead_aes_128_gcm().create_cipher([7; 16], false);
    let iv = [3u8; 12];
    // GCM output carries a 16-byte tag.
    let mut sealed = vec![0u8; payload.len() + 16];
    seal.encrypt(&iv, &header, &payload, &mut sealed)
        .expect("seal");
    group.bench_function("aead_aes_128_gcm/protect", |b| {
        let mut out = vec![0u8; payload.len() + 16];
        b.iter(|| {
            seal.encrypt(&iv, &header, black_box(&payload), &mut out)
                .expect("seal");
            black_box(&out);
        })
    });
    group.bench_function("aead_aes_128_gcm/unprotect", |b| {
        let mut out = vec![0u8; payload.len()];
        b.iter(|| {
            let n = open
                .decrypt(&iv, &[&header], black_box(&sealed), &mut out)
                .expect("open");
            black_box(n);
        })
    });

    let mut ctr = srtp.aes_128_cm_sha1_80().create_cipher([9; 16], true);
    let mut ctr_open = srtp.aes_128_cm_sha1_80().create_cipher([9; 16], false);
    let hmac = provider.sha1_hmac_provider;
    let auth_key = [1u8; 20];
    let iv16 = [5u8; 16];
    let roc = 0u32.to_be_bytes();
    group.bench_function("aes_128_cm_sha1_80/protect", |b| {
        let mut out = vec![0u8; payload.len()];
        b.iter(|| {
            ctr.encrypt(&iv16, black_box(&payload), &mut out)
                .expect("encrypt");
            let tag = hmac.sha1_hmac(&auth_key, &[&header, &out, &roc]);
            black_box((&out, &tag[..10]));
        })
    });
    group.bench_function("aes_128_cm_sha1_80/unprotect", |b| {
        let mut out = vec![0u8; payload.len()];
        b.iter(|| {
            let tag = hmac.sha1_hmac(&auth_key, &[&header, black_box(&payload), &roc]);
            ctr_open
                .decrypt(&iv16, &payload, &mut out)
                .expect("decrypt");
            black_box((&out, tag));
        })
    });
    group.finish();
}

/// A loopback receiver drained by a thread until dropped.
struct Sink {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    fn new() -> Sink {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buf);
            }
        });
        Sink {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn udp(c: &mut Criterion) {
    let sink = Sink::new();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let datagram = vec![0xa5u8; PACKET];
    let mut group = c.benchmark_group("udp_loopback_1200_bytes");

    group.throughput(Throughput::Elements(1));
    group.bench_function("send_to", |b| {
        b.iter(|| {
            let _ = socket.send_to(black_box(&datagram), sink.addr);
        })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("sendmmsg_32", |b| {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let std::net::SocketAddr::V4(v4) = sink.addr else {
            panic!("loopback is IPv4 here");
        };
        let dest = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut iovs: Vec<libc::iovec> = (0..BATCH)
            .map(|_| libc::iovec {
                iov_base: datagram.as_ptr() as *mut libc::c_void,
                iov_len: datagram.len(),
            })
            .collect();
        let mut messages: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: mmsghdr is plain data; zero is a valid "empty"
                // value for every field, which are set just below.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = &dest as *const libc::sockaddr_in as *mut libc::c_void;
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                m.msg_hdr.msg_iov = iov as *mut libc::iovec;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        b.iter(|| {
            // SAFETY: every header points at live buffers (`dest`, `iovs`,
            // `datagram`) that outlive the call; `fd` is an open socket.
            let sent =
                unsafe { libc::sendmmsg(fd, messages.as_mut_ptr(), BATCH as libc::c_uint, 0) };
            black_box(sent);
        })
    });
    // What a forwarded packet becomes: one datagram per consumer, each to
    // another address; 32 receivers, one `sendmmsg`.
    let sinks: Vec<Sink> = (0..BATCH).map(|_| Sink::new()).collect();
    group.bench_function("sendmmsg_32_destinations", |b| {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let dests: Vec<libc::sockaddr_in> = sinks.iter().map(|s| sockaddr(s.addr)).collect();
        let mut iovs: Vec<libc::iovec> = (0..BATCH)
            .map(|_| libc::iovec {
                iov_base: datagram.as_ptr() as *mut libc::c_void,
                iov_len: datagram.len(),
            })
            .collect();
        let mut messages: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .zip(&dests)
            .map(|(iov, dest)| {
                // SAFETY: as above.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = dest as *const libc::sockaddr_in as *mut libc::c_void;
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                m.msg_hdr.msg_iov = iov as *mut libc::iovec;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        b.iter(|| {
            // SAFETY: as above.
            let sent =
                unsafe { libc::sendmmsg(fd, messages.as_mut_ptr(), BATCH as libc::c_uint, 0) };
            black_box(sent);
        })
    });
    // 32 segments to one receiver in one `sendmsg` with UDP_SEGMENT: the
    // kernel cuts the buffer (GSO needs one destination).
    group.bench_function("gso_32_segments", |b| {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let dest = sockaddr(sink.addr);
        let buffer = vec![0xa5u8; PACKET * BATCH];
        let mut iov = libc::iovec {
            iov_base: buffer.as_ptr() as *mut libc::c_void,
            iov_len: buffer.len(),
        };
        let mut control = [0u64; 4];
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &dest as *const libc::sockaddr_in as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE computes a size; the control buffer (32 bytes)
        // holds one header and its u16.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(2) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), PACKET as u16);
        }
        b.iter(|| {
            // SAFETY: `msg` points at live buffers for the call.
            let sent = unsafe { libc::sendmsg(fd, &msg, 0) };
            assert!(sent > 0, "GSO send: {}", std::io::Error::last_os_error());
            black_box(sent);
        })
    });
    group.finish();
}

fn sockaddr(addr: std::net::SocketAddr) -> libc::sockaddr_in {
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("loopback is IPv4 here");
    };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

criterion_group!(benches, srtp, udp);
criterion_main!(benches);
