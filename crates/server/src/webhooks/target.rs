//! Where a webhook may be sent. An endpoint is an `http(s)` URL without
//! credentials; by default (SSRF) it may not reach loopback, private,
//! link-local or other non-public addresses, checked both when it is
//! registered (for a clear error) and on every connection (the resolver
//! below drops such addresses, so a name re-pointed later is caught too).
//! `--webhook-allow-private-targets` lifts this for lab set-ups and tests.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Whether an address is one the public internet routes (roughly: what
/// the standard library can tell, plus the ranges it cannot yet).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                // 198.18.0.0/15, benchmarking
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Why a URL cannot be an endpoint, in plain words.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("url: at most {MAX_URL_CHARS} characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url: must be http:// or https://".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: must not hold credentials (the signature authenticates us)".into());
    }
    let Some(host) = parsed.host() else {
        return Err("url: has no host".into());
    };
    if !allow_private {
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
                return Err("url: refers to this machine (private targets are off)".into());
            }
            url::Host::Domain(_) => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) {
            return Err(
                "url: a loopback or private address (private targets are off: \
                 --webhook-allow-private-targets)"
                    .into(),
            );
        }
    }
    Ok(parsed)
}

/// A resolver that keeps only public addresses, unless private ones are allowed.
pub struct PublicOnly {
    pub allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host}: no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

pub fn resolver(allow_private: bool) -> Arc<PublicOnly> {
    Arc::new(PublicOnly { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://localhost/hook",
            "http://192.0.2.1/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("ftp://example.org/", true).is_err());
        assert!(check_url("https://user:pw@example.org/", true).is_err());
        assert!(check_url("https://example.org/hook", false).is_ok());
    }
}
