//! ICE-TCP over real loopback TCP: str0m peers that use only the SFU's
//! passive TCP candidate publish and consume through it; framed STUN is
//! answered framed however the bytes are cut; abusive connections (oversize
//! lengths, garbage, silence, too many) are closed while a well-behaved one
//! is still served.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{
    Peer, Room, frame, publisher_config, runtime, send_in_all, take_frames, tcp_candidate,
    wait_until_blocking,
};
use serde_json::Value;
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Input, Output, Rtc, RtcConfig};
use vtp_sfu::engine::{TransportInfo, TransportOptions};
use vtp_sfu::rtp::MediaKind;
use vtp_sfu_driver::{DriverConfig, SfuDriver, SfuHandle, TcpBind, TcpLimits, TcpStats};

const PACKETS: u64 = 200;
const WAIT: Duration = Duration::from_secs(10);

fn start(limits: TcpLimits) -> SfuHandle {
    SfuDriver::start(DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        tcp_limits: limits,
        ..DriverConfig::default()
    })
    .unwrap()
}

fn tcp_stats(sfu: &SfuHandle) -> TcpStats {
    sfu.stats().tcp
}

#[test]
fn media_flows_over_ice_tcp_only() {
    let rt = runtime();
    let sfu = start(TcpLimits::default());
    let tcp = sfu.tcp_addr().unwrap();
    let udp_port = sfu.bound_addr().port();
    let mut room = Room::open_over(&rt, &sfu, "room1", "tcp");
    send_in_all(&mut [&mut room], PACKETS);
    let delivered = room.delivered(PACKETS);
    assert!(
        delivered as u64 * 100 >= PACKETS * 95,
        "{delivered} of {PACKETS} packets arrived over TCP"
    );
    let stats = sfu.stats();
    assert_eq!(stats.datagrams_in, 0, "nothing came over UDP");
    assert_eq!(stats.tcp.connections, 2, "{:?}", stats.tcp);
    assert!(stats.tcp.frames_in >= PACKETS, "{:?}", stats.tcp);
    wait_until_blocking(WAIT, "frames written counted", || {
        tcp_stats(&sfu).frames_out >= PACKETS
    });
    assert_eq!(stats.tcp.send_dropped, 0);
    assert_eq!(stats.transport_failures.ice_timeout, 0);
    // Candidates: UDP first (higher priority), then passive TCP.
    let info = rt
        .block_on(sfu.create_webrtc_transport("room1", "extra", TransportOptions::default()))
        .unwrap();
    let c: Vec<(&str, u16)> = info
        .ice_candidates
        .iter()
        .map(|c| (c.protocol.as_str(), c.port))
        .collect();
    assert_eq!(c, vec![("udp", udp_port), ("tcp", tcp.port())]);
    assert!(info.ice_candidates[0].priority > info.ice_candidates[1].priority);
}

/// A send transport with a producer (so its `Rtc` exists and answers ICE),
/// and a str0m client that will check it over TCP from `local`.
fn transport_and_client(
    rt: &tokio::runtime::Runtime,
    sfu: &SfuHandle,
    router: &str,
    local: SocketAddr,
) -> (TransportInfo, Rtc) {
    let _ = rt.block_on(sfu.create_router(router));
    let id = format!("{router}-{local}");
    let info = rt
        .block_on(sfu.create_webrtc_transport(router, &id, TransportOptions::default()))
        .unwrap();
    let tcp = info
        .ice_candidates
        .iter()
        .find(|c| c.protocol == "tcp")
        .unwrap();
    let server: SocketAddr = format!("{}:{}", tcp.ip, tcp.port).parse().unwrap();
    let mut rtc: Rtc = RtcConfig::new().set_rtp_mode(true).build(Instant::now());
    rtc.add_local_candidate(tcp_candidate(local, TcpType::Active));
    rtc.add_remote_candidate(tcp_candidate(server, TcpType::Passive));
    let fp = &info.dtls_parameters.fingerprints[0];
    {
        let mut api = rtc.direct_api();
        api.set_remote_ice_credentials(str0m::IceCreds {
            ufrag: info.ice_parameters.username_fragment.clone(),
            pass: info.ice_parameters.password.clone(),
        });
        api.set_ice_controlling(true);
        api.set_remote_fingerprint(format!("{} {}", fp.algorithm, fp.value).parse().unwrap());
        api.start_dtls(true).unwrap();
    }
    let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
    let (algorithm, value) = fp.split_once(' ').unwrap();
    let dtls: Value = serde_json::json!({"role": "client",
        "fingerprints": [{"algorithm": algorithm, "value": value}]});
    rt.block_on(sfu.connect_transport(&id, dtls)).unwrap();
    rt.block_on(sfu.produce(
        &id,
        &format!("{id}-video"),
        MediaKind::Video,
        common::video_rtp_parameters(),
    ))
    .unwrap();
    (info, rtc)
}

/// The client's next STUN Binding request, its clock moved on as far as
/// it asks (only STUN is taken from it).
fn binding_request(rtc: &mut Rtc, clock: &mut Instant) -> Vec<u8> {
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "no binding request");
        match rtc.poll_output().unwrap() {
            Output::Transmit(t) if t.contents[0] < 4 && t.contents[..2] == [0, 1] => {
                assert_eq!(t.proto, Protocol::Tcp);
                return t.contents.to_vec();
            }
            Output::Transmit(_) | Output::Event(_) => {}
            Output::Timeout(at) => {
                *clock = at.max(*clock + Duration::from_millis(1));
                rtc.handle_input(Input::Timeout(*clock)).unwrap();
            }
        }
    }
}

/// The value of the USERNAME attribute of a STUN message.
fn username_at(message: &[u8]) -> std::ops::Range<usize> {
    let mut at = 20;
    while at + 4 <= message.len() {
        let kind = u16::from_be_bytes([message[at], message[at + 1]]);
        let len = usize::from(u16::from_be_bytes([message[at + 2], message[at + 3]]));
        if kind == 0x0006 {
            return at + 4..at + 4 + len;
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    panic!("no USERNAME");
}

/// Reads frames until `count` arrived (blocking, with a deadline).
fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<Vec<u8>> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut pending = Vec::new();
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    while frames.len() < count {
        let n = stream
            .read(&mut buf)
            .expect("a response before the deadline");
        assert!(n > 0, "the sfu closed a well-behaved connection");
        pending.extend_from_slice(&buf[..n]);
        frames.extend(take_frames(&mut pending));
    }
    frames
}

/// A STUN success response to `request` (same transaction).
fn assert_success_response(response: &[u8], request: &[u8]) {
    assert_eq!(&response[..2], &[0x01, 0x01], "binding success response");
    assert_eq!(
        &response[4..20],
        &request[4..20],
        "same cookie and transaction"
    );
}

/// Waits until the SFU closes `stream` (EOF or reset).
fn assert_closed_by_sfu(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return;
            }
            Err(e) => panic!("not closed by the sfu: {e}"),
        }
    }
}

/// A connection that checks its transport, with the request cut into
/// pieces and two requests in one write: each answered, framed.
struct WellBehaved {
    stream: TcpStream,
    rtc: Rtc,
    clock: Instant,
    local: SocketAddr,
    server: SocketAddr,
}

impl WellBehaved {
    fn connect(rt: &tokio::runtime::Runtime, sfu: &SfuHandle) -> WellBehaved {
        let stream = TcpStream::connect(sfu.tcp_addr().unwrap()).unwrap();
        stream.set_nodelay(true).unwrap();
        let local = stream.local_addr().unwrap();
        let server = stream.peer_addr().unwrap();
        let (_, rtc) = transport_and_client(rt, sfu, "good", local);
        WellBehaved {
            stream,
            rtc,
            clock: Instant::now(),
            local,
            server,
        }
    }

    fn request(&mut self) -> Vec<u8> {
        binding_request(&mut self.rtc, &mut self.clock)
    }

    /// Gives a response to the client (its checks succeed, so it keeps
    /// sending them).
    fn answer(&mut self, response: &[u8]) {
        let r = Receive::new(Protocol::Tcp, self.server, self.local, response).unwrap();
        self.rtc
            .handle_input(Input::Receive(self.clock, r))
            .unwrap();
    }

    /// One Binding request, answered.
    fn check(&mut self) {
        let request = self.request();
        self.stream.write_all(&frame(&request)).unwrap();
        let response = read_frames(&mut self.stream, 1);
        assert_success_response(&response[0], &request);
        self.answer(&response[0]);
    }
}

#[test]
fn framed_stun_is_answered_framed_however_the_bytes_are_cut() {
    let rt = runtime();
    let sfu = start(TcpLimits::default());
    let mut good = WellBehaved::connect(&rt, &sfu);
    let request = good.request();
    let framed = frame(&request);
    // Byte by byte (each its own segment with NODELAY).
    for b in &framed {
        good.stream.write_all(std::slice::from_ref(b)).unwrap();
    }
    let response = read_frames(&mut good.stream, 1);
    assert_success_response(&response[0], &request);
    good.answer(&response[0]);
    // Two requests and the start of a third in one write, then the rest.
    let second = good.request();
    let third = good.request();
    let mut bytes = framed.clone();
    bytes.extend(frame(&second));
    let third = frame(&third);
    bytes.extend_from_slice(&third[..5]);
    good.stream.write_all(&bytes).unwrap();
    good.stream.write_all(&third[5..]).unwrap();
    let responses = read_frames(&mut good.stream, 3);
    assert_success_response(&responses[0], &request);
    assert_success_response(&responses[1], &second);
    assert_success_response(&responses[2], &third[2..]);
    // (Counted after the write returns, which may be after the client read.)
    wait_until_blocking(WAIT, "four frames each way", || {
        let s = tcp_stats(&sfu);
        s.frames_in == 4 && s.frames_out == 4
    });
}

#[test]
fn abusive_connections_are_closed_while_a_good_one_is_served() {
    let rt = runtime();
    let sfu = start(TcpLimits {
        stun_deadline: Duration::from_millis(300),
        ..TcpLimits::default()
    });
    let addr = sfu.tcp_addr().unwrap();
    let mut good = WellBehaved::connect(&rt, &sfu);
    good.check();

    // A frame announcing 65535 bytes, then trickling.
    let mut huge = TcpStream::connect(addr).unwrap();
    huge.write_all(&[0xFF, 0xFF, 1, 2, 3]).unwrap();
    let _ = huge.write_all(&[4, 5, 6]);
    assert_closed_by_sfu(&mut huge);
    good.check();

    // Garbage: an HTTP request, a zero-length frame, and RTP-looking bytes
    // before any STUN.
    for junk in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0, 0, 0, 0],
        frame(&[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.write_all(&junk).unwrap();
        assert_closed_by_sfu(&mut bad);
        good.check();
    }

    // A STUN request for a ufrag nobody has is not enough, and silence is
    // closed after the deadline.
    let mut stranger = TcpStream::connect(addr).unwrap();
    let mut request = good.request();
    // Another local ufrag (its first character's case flipped).
    let at = username_at(&request).start;
    request[at] ^= 0x20;
    stranger.write_all(&frame(&request)).unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    assert_closed_by_sfu(&mut stranger);
    assert_closed_by_sfu(&mut silent);
    good.check();

    wait_until_blocking(WAIT, "counters", || {
        let s = tcp_stats(&sfu);
        s.closed_bad_frame == 4 && s.closed_no_stun == 2 && s.connections == 1
    });
    let s = tcp_stats(&sfu);
    assert_eq!(s.frames_unknown, 1, "{s:?}");
}

/// With `limits`, `open` connections fit beside the good one; the next
/// three are closed at accept, and the good one carries on.
fn refuses_beyond(limits: TcpLimits, open: usize) {
    let rt = runtime();
    let sfu = start(limits);
    let addr = sfu.tcp_addr().unwrap();
    let mut good = WellBehaved::connect(&rt, &sfu);
    good.check();
    let idle: Vec<TcpStream> = (0..open)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    wait_until_blocking(WAIT, "all open", || {
        tcp_stats(&sfu).connections == open as u64 + 1
    });
    let mut refused: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for r in &mut refused {
        assert_closed_by_sfu(r);
    }
    good.check();
    let s = tcp_stats(&sfu);
    assert_eq!(s.rejected_limit, 3, "{s:?}");
    assert_eq!(s.connections, open as u64 + 1, "{s:?}");
    // Places come back when connections close.
    drop(idle);
    wait_until_blocking(WAIT, "idle ones gone", || tcp_stats(&sfu).connections == 1);
    let mut again = TcpStream::connect(addr).unwrap();
    wait_until_blocking(WAIT, "accepted again", || tcp_stats(&sfu).connections == 2);
    again.write_all(b"\0\0").unwrap();
    assert_closed_by_sfu(&mut again);
    good.check();
}

#[test]
fn connections_beyond_the_global_limit_are_refused() {
    refuses_beyond(
        TcpLimits {
            max_connections: 4,
            ..TcpLimits::default()
        },
        3,
    );
}

#[test]
fn connections_beyond_the_per_ip_limit_are_refused() {
    refuses_beyond(
        TcpLimits {
            max_connections_per_ip: 2,
            ..TcpLimits::default()
        },
        1,
    );
}

#[test]
fn a_transport_nobody_reaches_is_counted_once_as_an_ice_timeout() {
    let sfu = SfuDriver::start(DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        connect_deadline: Duration::from_millis(200),
        ..DriverConfig::default()
    })
    .unwrap();
    let rt = runtime();
    let stream = TcpStream::connect(sfu.tcp_addr().unwrap()).unwrap();
    // A client that is told to connect but never sends a packet.
    let (info, _client) = transport_and_client(&rt, &sfu, "r", stream.local_addr().unwrap());
    wait_until_blocking(WAIT, "the failure counted", || {
        sfu.stats().transport_failures.ice_timeout == 1
    });
    // That it stays counted once is the engine's (crates/sfu/tests/engine_tcp.rs,
    // in simulated time).
    let f = sfu.stats().transport_failures;
    assert_eq!(
        (f.ice_timeout, f.dtls_timeout, f.dtls_failed),
        (1, 0, 0),
        "{f:?}"
    );
    assert!(!info.ice_candidates.is_empty());
}

#[test]
fn the_tcp_listener_can_be_off() {
    let sfu = SfuDriver::start(DriverConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        tcp: TcpBind::Off,
        ..DriverConfig::default()
    })
    .unwrap();
    assert_eq!(sfu.tcp_addr(), None);
    assert!(
        sfu.candidates()
            .iter()
            .all(|c| c.protocol.as_str() == "udp")
    );
    let rt = runtime();
    rt.block_on(sfu.create_router("r")).unwrap();
    let info = rt
        .block_on(sfu.create_webrtc_transport("r", "t", TransportOptions::default()))
        .unwrap();
    assert_eq!(info.ice_candidates.len(), 1);
    let _ = Peer::new(publisher_config(), &info);
}

/// CPU time (ns) the SFU's own threads (`vtp-sfu-*`) have used, from
/// `/proc/self/task/*/schedstat`.
fn sfu_threads_cpu_ns() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("vtp-sfu") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Figures, not a check: CPU of the SFU's threads per forwarded packet, one
/// publisher to one subscriber, over UDP and over ICE-TCP. Run:
/// `cargo test --release -p vtp-sfu-driver --test driver_tcp -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check (figures in docs/benchmarks.md): run it alone with --ignored --nocapture"]
fn figures_sfu_cpu_per_forwarded_packet_udp_and_tcp() {
    const WARM: u64 = 200;
    const COUNT: u64 = 20_000;
    for protocol in ["udp", "tcp", "udp", "tcp"] {
        let rt = runtime();
        let sfu = SfuDriver::start(DriverConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
            // No pacing: the figure is the forwarding path's.
            initial_bandwidth_estimate_bps: None,
            ..DriverConfig::default()
        })
        .unwrap();
        let mut room = Room::open_over(&rt, &sfu, "fig", protocol);
        send_in_all(&mut [&mut room], WARM);
        let (ssrc, pt) = room.consumer_stream();
        let cpu_before = sfu_threads_cpu_ns();
        let sent_before = sfu.stats().datagrams_out;
        let started = Instant::now();
        for i in WARM..WARM + COUNT {
            room.publisher.send_video(i);
            // Paced so that the test's own peers keep up (they, not the
            // SFU, are the bottleneck in a debug build).
            if i % 4 == 0 {
                room.publisher.turn();
                room.subscriber.turn();
            }
        }
        common::turn_until(
            &mut [&mut room.publisher, &mut room.subscriber],
            common::SETTLE,
            |peers| peers[1].received(ssrc, pt).range(WARM..).count() as u64 == COUNT,
        );
        let cpu = sfu_threads_cpu_ns() - cpu_before;
        // What the SFU sent (to the subscriber, and RTCP), whether or not
        // the test's peer kept up with reading it.
        let sent = sfu.stats().datagrams_out - sent_before;
        let delivered = room.subscriber.received(ssrc, pt).range(WARM..).count() as u64;
        let stats = sfu.stats();
        eprintln!(
            "{protocol}: {:.2} µs SFU CPU per packet sent ({sent} sent, {delivered} of \
             {COUNT} delivered in {:.1} s; queue drops {}, tcp send drops {})",
            cpu as f64 / 1000.0 / sent.max(1) as f64,
            started.elapsed().as_secs_f64(),
            stats.dropped_queue_full,
            stats.tcp.send_dropped
        );
    }
}
