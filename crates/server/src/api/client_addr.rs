//! Which address a request comes from, for per-address limits: the TCP
//! peer, or — only when that peer is a reverse proxy the operator named —
//! the address the proxies recorded in `X-Forwarded-For`.
//!
//! Each proxy appends the address it received the request from, so the
//! header reads `client, proxy1, proxy2` and the TCP peer is the last
//! proxy. Walking it from the right and stopping at the first address that
//! is not a trusted proxy gives the nearest hop nobody trusted can have
//! forged; anything to its left was written by the client itself. Taking
//! the first entry instead (what VTP did before) let any client pick its
//! own rate-limit key.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// `X-Forwarded-For` entries read at most: a longer header is cut there
/// (the left part is the client's own claim anyway).
const MAX_HOPS: usize = 16;

/// The address per-address limits count `peer`'s request against.
pub fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        hops.extend(value.split(','));
    }
    let mut nearest = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Some(ip) = parse_hop(hop) else {
            // Garbage from a hop we cannot read: stop at the last one we could.
            return nearest;
        };
        if !is_trusted(trusted, ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]` or either with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_counted_by_their_own_address() {
        let h = headers(&["198.51.100.9"]);
        assert_eq!(client_ip(&[], ip("203.0.113.5"), &h), ip("203.0.113.5"));
        let proxies = ["192.0.2.0/24".parse().unwrap()];
        assert_eq!(
            client_ip(&proxies, ip("203.0.113.5"), &h),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let proxies: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap(), "::1/128".parse().unwrap()];
        // The client forged the first entry; the proxy appended the real one.
        let h = headers(&["203.0.113.66, 198.51.100.7"]);
        assert_eq!(client_ip(&proxies, ip("192.0.2.1"), &h), ip("198.51.100.7"));
        // Two proxies, in two header lines.
        let h = headers(&["198.51.100.7", "192.0.2.2"]);
        assert_eq!(client_ip(&proxies, ip("192.0.2.1"), &h), ip("198.51.100.7"));
        // Ports and brackets.
        let h = headers(&["[2001:db8::5]:4711"]);
        assert_eq!(client_ip(&proxies, ip("::1"), &h), ip("2001:db8::5"));
        let h = headers(&["198.51.100.7:999"]);
        assert_eq!(client_ip(&proxies, ip("192.0.2.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn missing_or_bad_headers_fall_back_to_the_last_readable_hop() {
        let proxies: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        assert_eq!(
            client_ip(&proxies, ip("192.0.2.1"), &HeaderMap::new()),
            ip("192.0.2.1")
        );
        let h = headers(&["not-an-address, 192.0.2.3"]);
        assert_eq!(client_ip(&proxies, ip("192.0.2.1"), &h), ip("192.0.2.3"));
        // IPv4-mapped IPv6 peers match IPv4 ranges.
        let h = headers(&["198.51.100.7"]);
        assert_eq!(
            client_ip(&proxies, ip("::ffff:192.0.2.1"), &h),
            ip("198.51.100.7")
        );
    }
}
