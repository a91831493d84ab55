//! The host's own addresses, for a driver bound to a wildcard address with
//! nothing announced: every interface address that is up and that another
//! host could reach (not loopback, link-local, multicast or unspecified).
//!
//! `getifaddrs(3)` through `libc` (already a dependency of the workspace)
//! rather than a crate for one call. Also: which addresses the driver
//! announces, and how they are written in the log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use vtp_sfu::engine::LocalCandidate;

use crate::{DriverConfig, DriverError};

/// Whether peers elsewhere could use `ip` as a host candidate.
pub(crate) fn is_announceable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || link_local)
        }
    }
}

/// The host's announceable addresses: IPv4 ones, then (with `ipv6`) IPv6
/// ones, each once, in the order the system lists them.
/// The announced IPs: configured, else the bound IP, else (wildcard bind)
/// the host's interface addresses.
pub(crate) fn announced_ips(
    config: &DriverConfig,
    bound: SocketAddr,
) -> Result<Vec<IpAddr>, DriverError> {
    if let Some(bad) = config.announced_ips.iter().find(|ip| ip.is_unspecified()) {
        return Err(DriverError::Config(format!(
            "announced address {bad} is unspecified: announce the address peers reach"
        )));
    }
    if !config.announced_ips.is_empty() {
        let mut ips = Vec::new();
        for ip in &config.announced_ips {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        return Ok(ips);
    }
    if !bound.ip().is_unspecified() {
        return Ok(vec![bound.ip()]);
    }
    let ips = host_addresses(bound.is_ipv6())?;
    if ips.is_empty() {
        return Err(DriverError::Config(format!(
            "bound to {bound} and this host has no address others can reach: \
             set announced_ips (--announced-ip) to the address peers reach"
        )));
    }
    tracing::info!(
        addresses = ?ips,
        "sfu bound to a wildcard address with none announced: announcing the host's interface addresses"
    );
    Ok(ips)
}

/// `udp 192.0.2.1:40000, tcp 192.0.2.1:40000, …`: every candidate.
pub fn describe_candidates(candidates: &[LocalCandidate]) -> String {
    candidates
        .iter()
        .map(|c| format!("{} {}", c.protocol.as_str(), c.addr))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(unix)]
pub fn host_addresses(ipv6: bool) -> std::io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `getifaddrs` fills `head` with a list it allocated, which is
    // only read below and freed once with `freeifaddrs`.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: a non-null node of the list `getifaddrs` returned.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 {
            continue;
        }
        // SAFETY: `ifa_addr` is non-null and points to a sockaddr whose
        // family says which struct it is.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let ip = match family {
            libc::AF_INET => {
                // SAFETY: AF_INET addresses are `sockaddr_in`.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 if ipv6 => {
                // SAFETY: AF_INET6 addresses are `sockaddr_in6`.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
            }
            _ => continue,
        };
        let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
        if is_announceable(ip) && !list.contains(&ip) {
            list.push(ip);
        }
    }
    // SAFETY: the list from `getifaddrs`, freed once, not used after.
    unsafe { libc::freeifaddrs(head) };
    v4.extend(v6);
    Ok(v4)
}

#[cfg(not(unix))]
pub fn host_addresses(_ipv6: bool) -> std::io::Result<Vec<IpAddr>> {
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_others_can_reach_are_announceable() {
        for bad in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.2",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
        ] {
            assert!(!is_announceable(bad.parse().unwrap()), "{bad}");
        }
        for good in ["10.1.2.3", "192.0.2.7", "2001:db8::5", "fd00::1"] {
            assert!(is_announceable(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn host_addresses_are_announceable_and_v4_first() {
        let all = host_addresses(true).unwrap();
        assert!(all.iter().all(|ip| is_announceable(*ip)), "{all:?}");
        let first_v6 = all.iter().position(IpAddr::is_ipv6).unwrap_or(all.len());
        assert!(all[first_v6..].iter().all(IpAddr::is_ipv6), "{all:?}");
        assert!(host_addresses(false).unwrap().iter().all(IpAddr::is_ipv4));
    }
}
