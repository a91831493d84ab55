//! Asks a TURN server for one allocation with a credential VTP would hand
//! out, then releases it: proof that the server is up, reachable over the
//! URL's transport and shares VTP's secret.
//!
//! Only the two requests of RFC 8656 this needs (Allocate and a Refresh
//! with lifetime 0) and the long-term credential mechanism of RFC 8489
//! §9.2 (first answer 401 with REALM and NONCE, then the request again
//! with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed by
//! MD5(username:realm:password)). Why not a STUN crate: the maintained
//! ones are whole ICE/TURN stacks or servers; these ~200 lines are the
//! whole client side `vtp doctor` needs, and the test runs them against
//! Debian's coturn.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const ALLOCATE: u16 = 0x0003;
const REFRESH: u16 = 0x0004;
const SUCCESS: u16 = 0x0100;
const ERROR: u16 = 0x0110;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_LIFETIME: u16 = 0x000D;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;
const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;
const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;

/// Largest answer read (a TURN answer is a few hundred bytes).
const MAX_MESSAGE: usize = 2048;

/// Where and how to reach a TURN server, from a `turn:`/`turns:` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnTarget {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// Why a probe failed, in words for the doctor's line.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(
        "the server refused the credential: {0} {1} (is --turn-secret coturn's static-auth-secret?)"
    )]
    Refused(u16, String),
    #[error("the server answered {0} {1}")]
    Error(u16, String),
    #[error("not a TURN answer: {0}")]
    Malformed(&'static str),
}

impl TurnTarget {
    /// The host, port and transport of a URL `turn::TurnConfig` accepted.
    pub fn from_url(url: &str) -> Option<TurnTarget> {
        let (secure, rest) = match url.strip_prefix("turns:") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("turn:")?),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let transport = match (secure, query) {
            (true, _) => Transport::Tls,
            (false, "transport=tcp") => Transport::Tcp,
            _ => Transport::Udp,
        };
        let default_port = if secure { 5349 } else { 3478 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').map(str::parse).transpose().ok()?;
            (host.to_owned(), port.unwrap_or(default_port))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().ok()?),
                None => (authority.to_owned(), default_port),
            }
        };
        Some(TurnTarget {
            host,
            port,
            transport,
        })
    }
}

/// One allocation with `username`/`password`, released at once. Returns
/// the relayed address the server gave.
pub async fn allocate(
    target: &TurnTarget,
    username: &str,
    password: &str,
    timeout: Duration,
) -> Result<SocketAddr, ProbeError> {
    tokio::time::timeout(timeout, allocate_inner(target, username, password))
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

async fn allocate_inner(
    target: &TurnTarget,
    username: &str,
    password: &str,
) -> Result<SocketAddr, ProbeError> {
    let mut conn = Conn::open(target).await?;
    let first = conn.exchange(&request(ALLOCATE, &[], None)).await?;
    let answer = parse(&first)?;
    let (realm, nonce) = match answer.class {
        ERROR if answer.error.as_ref().is_some_and(|(c, _)| *c == 401) => (
            answer
                .attr(ATTR_REALM)
                .ok_or(ProbeError::Malformed("401 without REALM"))?,
            answer
                .attr(ATTR_NONCE)
                .ok_or(ProbeError::Malformed("401 without NONCE"))?,
        ),
        ERROR => {
            let (code, reason) = answer.error.unwrap_or((0, String::new()));
            return Err(ProbeError::Error(code, reason));
        }
        _ => {
            return Err(ProbeError::Malformed(
                "allocated without asking a credential",
            ));
        }
    };
    let key = Md5::digest([username.as_bytes(), b":", &realm, b":", password.as_bytes()].concat());
    let auth = [
        (ATTR_USERNAME, username.as_bytes().to_vec()),
        (ATTR_REALM, realm.clone()),
        (ATTR_NONCE, nonce.clone()),
    ];
    let second = conn.exchange(&request(ALLOCATE, &auth, Some(&key))).await?;
    let answer = parse(&second)?;
    if answer.class == ERROR {
        let (code, reason) = answer.error.unwrap_or((0, String::new()));
        return Err(if matches!(code, 401 | 431 | 441) {
            ProbeError::Refused(code, reason)
        } else {
            ProbeError::Error(code, reason)
        });
    }
    let relayed = answer
        .attr(ATTR_XOR_RELAYED_ADDRESS)
        .and_then(|v| xor_address(&v))
        .ok_or(ProbeError::Malformed("success without XOR-RELAYED-ADDRESS"))?;
    // Give the allocation back (lifetime 0); its answer does not matter.
    let mut release = auth.to_vec();
    release.push((ATTR_LIFETIME, 0u32.to_be_bytes().to_vec()));
    let _ = conn.exchange(&request(REFRESH, &release, Some(&key))).await;
    Ok(relayed)
}

/// A STUN request: `attrs` in order, REQUESTED-TRANSPORT (UDP) on an
/// Allocate, MESSAGE-INTEGRITY last when `key` is given.
fn request(method: u16, attrs: &[(u16, Vec<u8>)], key: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    let put = |body: &mut Vec<u8>, kind: u16, value: &[u8]| {
        body.extend_from_slice(&kind.to_be_bytes());
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
        body.resize(body.len().next_multiple_of(4), 0);
    };
    if method == ALLOCATE {
        put(&mut body, ATTR_REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    }
    for (kind, value) in attrs {
        put(&mut body, *kind, value);
    }
    let mut txid = [0u8; 12];
    rand::Rng::fill(&mut rand::rng(), &mut txid);
    let header = |len: usize| {
        let mut h = Vec::with_capacity(20);
        h.extend_from_slice(&method.to_be_bytes());
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        h.extend_from_slice(&txid);
        h
    };
    let Some(key) = key else {
        let mut message = header(body.len());
        message.extend_from_slice(&body);
        return message;
    };
    // The HMAC covers the message with its length already counting the
    // MESSAGE-INTEGRITY attribute (4 + 20 bytes) that follows.
    let mut message = header(body.len() + 24);
    message.extend_from_slice(&body);
    let mut mac = match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return message,
    };
    mac.update(&message);
    let digest = mac.finalize().into_bytes();
    message.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
    message.extend_from_slice(&20u16.to_be_bytes());
    message.extend_from_slice(&digest);
    message
}

struct Answer {
    class: u16,
    attrs: Vec<(u16, Vec<u8>)>,
    error: Option<(u16, String)>,
}

impl Answer {
    fn attr(&self, kind: u16) -> Option<Vec<u8>> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
    }
}

fn parse(bytes: &[u8]) -> Result<Answer, ProbeError> {
    if bytes.len() < 20
        || u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) != MAGIC_COOKIE
    {
        return Err(ProbeError::Malformed("no STUN header"));
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    let class = kind & 0x0110;
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let body = bytes
        .get(20..20 + len)
        .ok_or(ProbeError::Malformed("truncated"))?;
    let mut attrs = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest
            .get(4..4 + len)
            .ok_or(ProbeError::Malformed("attribute overruns the message"))?;
        attrs.push((kind, value.to_vec()));
        rest = rest.get(4 + len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    let error = attrs
        .iter()
        .find(|(k, _)| *k == ATTR_ERROR_CODE)
        .and_then(|(_, v)| {
            let code = u16::from(*v.get(2)? & 0x07) * 100 + u16::from(*v.get(3)?);
            Some((code, String::from_utf8_lossy(v.get(4..)?).into_owned()))
        });
    if class != SUCCESS && class != ERROR {
        return Err(ProbeError::Malformed("not a response"));
    }
    Ok(Answer {
        class,
        attrs,
        error,
    })
}

fn xor_address(value: &[u8]) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match family {
        0x01 => {
            let raw: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            let ip = u32::from_be_bytes(raw) ^ MAGIC_COOKIE;
            Some(SocketAddr::new(std::net::Ipv4Addr::from(ip).into(), port))
        }
        // The doctor asks for an IPv4 relay (the default); an IPv6 answer
        // would need the transaction id to decode: say "relayed" anyway.
        0x02 => Some(SocketAddr::new(
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            port,
        )),
        _ => None,
    }
}

/// A UDP socket, or a TCP/TLS stream carrying STUN messages back to back.
enum Conn {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Conn {
    async fn open(target: &TurnTarget) -> Result<Conn, ProbeError> {
        let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                ProbeError::Unreachable(target.host.clone(), "the name does not resolve".into())
            })?;
        let unreachable =
            |e: std::io::Error| ProbeError::Unreachable(addr.to_string(), e.to_string());
        match target.transport {
            Transport::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0"
                        .parse()
                        .map_err(|_| ProbeError::Malformed("address"))?
                } else {
                    "[::]:0"
                        .parse()
                        .map_err(|_| ProbeError::Malformed("address"))?
                };
                let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
                socket.connect(addr).await.map_err(unreachable)?;
                Ok(Conn::Udp(socket))
            }
            Transport::Tcp => {
                let stream = TcpStream::connect(addr).await.map_err(unreachable)?;
                Ok(Conn::Stream(Box::new(stream)))
            }
            Transport::Tls => {
                let stream = TcpStream::connect(addr).await.map_err(unreachable)?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ProbeError::Unreachable(addr.to_string(), e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|e| ProbeError::Unreachable(target.host.clone(), e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, stream)
                    .await
                    .map_err(unreachable)?;
                Ok(Conn::Stream(Box::new(tls)))
            }
        }
    }

    /// Sends `message` and reads one answer (UDP: resends on loss).
    async fn exchange(&mut self, message: &[u8]) -> Result<Vec<u8>, ProbeError> {
        let io =
            |e: std::io::Error| ProbeError::Unreachable("the TURN server".into(), e.to_string());
        match self {
            Conn::Udp(socket) => {
                let mut buf = vec![0u8; MAX_MESSAGE];
                let mut wait = Duration::from_millis(250);
                loop {
                    socket.send(message).await.map_err(io)?;
                    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
                        Ok(Ok(n)) => return Ok(buf[..n].to_vec()),
                        Ok(Err(e)) => return Err(io(e)),
                        Err(_) => wait = (wait * 2).min(Duration::from_secs(2)),
                    }
                }
            }
            Conn::Stream(stream) => {
                stream.write_all(message).await.map_err(io)?;
                let mut header = [0u8; 20];
                stream.read_exact(&mut header).await.map_err(io)?;
                let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
                if 20 + len > MAX_MESSAGE {
                    return Err(ProbeError::Malformed("answer too large"));
                }
                let mut out = header.to_vec();
                out.resize(20 + len, 0);
                stream.read_exact(&mut out[20..]).await.map_err(io)?;
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_transport() {
        let t = TurnTarget::from_url("turn:turn.example.org:3478?transport=tcp").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("turn.example.org", 3478, Transport::Tcp)
        );
        let t = TurnTarget::from_url("turns:turn.example.org?transport=tcp").unwrap();
        assert_eq!((t.port, t.transport), (5349, Transport::Tls));
        let t = TurnTarget::from_url("turn:[2001:db8::1]:3479").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("2001:db8::1", 3479, Transport::Udp)
        );
        assert!(TurnTarget::from_url("stun:x").is_none());
    }

    #[test]
    fn requests_carry_a_valid_integrity() {
        let key = [7u8; 16];
        let msg = request(ALLOCATE, &[(ATTR_USERNAME, b"1:peer".to_vec())], Some(&key));
        assert_eq!(msg.len() % 4, 0);
        let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
        assert_eq!(msg.len(), 20 + len, "length counts every attribute");
        let (covered, mi) = msg.split_at(msg.len() - 24);
        let mut mac = Hmac::<Sha1>::new_from_slice(&key).unwrap();
        mac.update(covered);
        assert_eq!(&mi[4..], mac.finalize().into_bytes().as_slice());
        assert!(parse(&msg).is_err(), "a request is not an answer");
    }

    #[test]
    fn garbage_answers_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[0u8; 19][..],
            &[
                1, 1, 0, 200, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ][..],
        ] {
            assert!(parse(bytes).is_err());
        }
        let mut odd = vec![0x01, 0x13, 0, 8, 0x21, 0x12, 0xA4, 0x42];
        odd.extend_from_slice(&[0; 12]);
        odd.extend_from_slice(&[0, 9, 0, 40, 0, 0, 4, 1]);
        assert!(parse(&odd).is_err(), "an attribute longer than the message");
    }
}
