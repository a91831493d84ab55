//! A str0m client peer for one engine transport (full ICE, controlling; DTLS
//! client; RTP mode), shared by the engine tests and the forwarding
//! benchmark so both connect the way a browser does.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::{Value, json};
use str0m::net::TcpType;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};
use vtp_sfu::engine::TransportInfo;

/// A client at `addr` for the transport `info` describes, already told to
/// connect (the engine is told by `connect_transport`).
pub fn client_for(cfg: RtcConfig, info: &TransportInfo, addr: SocketAddr, now: Instant) -> Rtc {
    client_over(cfg, info, addr, now, "udp")
}

/// [`client_for`] using only the transport's candidates of `protocol`
/// (`"udp"` or `"tcp"`): over TCP the client is the active side, as a
/// browser is, and the SFU's candidates are passive.
pub fn client_over(
    cfg: RtcConfig,
    info: &TransportInfo,
    addr: SocketAddr,
    now: Instant,
    protocol: &str,
) -> Rtc {
    let mut rtc = cfg.build(now);
    let local = match protocol {
        "tcp" => Candidate::builder()
            .tcp()
            .host(addr)
            .tcptype(TcpType::Active)
            .build(),
        _ => Candidate::host(addr, "udp"),
    };
    rtc.add_local_candidate(local.expect("local candidate"));
    let c = info
        .ice_candidates
        .iter()
        .find(|c| c.protocol == protocol)
        .expect("a candidate of the protocol");
    let server: SocketAddr = format!("{}:{}", c.ip, c.port)
        .parse()
        .expect("candidate address");
    let remote = match protocol {
        "tcp" => Candidate::builder()
            .tcp()
            .host(server)
            .tcptype(TcpType::Passive)
            .build(),
        _ => Candidate::host(server, "udp"),
    };
    rtc.add_remote_candidate(remote.expect("remote candidate"));
    let fp = &info.dtls_parameters.fingerprints[0];
    let mut api = rtc.direct_api();
    api.set_remote_ice_credentials(IceCreds {
        ufrag: info.ice_parameters.username_fragment.clone(),
        pass: info.ice_parameters.password.clone(),
    });
    api.set_ice_controlling(true);
    api.set_remote_fingerprint(
        format!("{} {}", fp.algorithm, fp.value)
            .parse()
            .expect("fingerprint"),
    );
    api.start_dtls(true).expect("dtls");
    rtc
}

/// The client's `dtlsParameters` for `connect_transport` (role client).
pub fn dtls_parameters(rtc: &mut Rtc) -> Value {
    let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
    let (algorithm, value) = fp.split_once(' ').expect("fingerprint");
    json!({"role": "client", "fingerprints": [{"algorithm": algorithm, "value": value}]})
}
