//! A private network for runs that need a non-loopback address.
//!
//! Janus gathers ICE candidates through libnice, which leaves loopback
//! interfaces out, so it needs an address on some other interface. The
//! machine's own addresses are not ours to use for a benchmark, so
//! `vtp-load compare` runs itself again inside a network namespace of its
//! own (`unshare --net`): there it brings `lo` up and adds a veth pair,
//! one end carrying a documentation address (RFC 5737), [`JANUS_IP`].
//! Janus's ICE is enforced to it and the load generator's peers bind to it
//! too: Linux delivers datagrams between its own addresses through the
//! loopback path, so the path costs what 127.0.0.1 would. The namespace has
//! no name and nothing else in it: it disappears with the last process
//! inside, even after a crash.
//!
//! VTP runs in the same namespace on 127.0.0.1, so both systems are
//! measured under the same conditions.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Janus's ICE address inside the namespace, and its peers'.
pub const JANUS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Set in the environment of the run inside the namespace.
const INSIDE_ENV: &str = "VTP_LOAD_IN_NETNS";

/// The two ends of the veth pair (names local to the namespace).
const LINKS: [&str; 2] = ["vtpload0", "vtpload1"];

/// Whether this process is the run inside the private namespace.
pub fn inside() -> bool {
    std::env::var_os(INSIDE_ENV).is_some()
}

/// Runs this same command again inside a new network namespace and
/// returns its exit code. Needs the right to create namespaces (root).
pub fn run_again_inside() -> anyhow::Result<i32> {
    let exe = std::env::current_exe().context("finding vtp-load's own path")?;
    let status = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INSIDE_ENV, "1")
        .status()
        .context("running `unshare` (util-linux)")?;
    match status.code() {
        Some(code) => Ok(code),
        None => bail!("the run inside the network namespace was killed ({status})"),
    }
}

/// Inside the namespace: `lo` up, the veth pair with Janus's address.
/// (A veth end needs its peer to be up; the `dummy` link type, the
/// natural choice, is not available everywhere.)
pub fn set_up() -> anyhow::Result<()> {
    let [a, b] = LINKS;
    let address = format!("{JANUS_IP}/24");
    let steps: [&[&str]; 5] = [
        &["link", "set", "lo", "up"],
        &["link", "add", a, "type", "veth", "peer", "name", b],
        &["addr", "add", &address, "dev", a],
        &["link", "set", a, "up"],
        &["link", "set", b, "up"],
    ];
    for step in steps {
        let out = Command::new("ip")
            .args(step)
            .output()
            .context("running `ip` (iproute2)")?;
        if !out.status.success() {
            bail!(
                "ip {}: {}",
                step.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_a_documentation_address() {
        let IpAddr::V4(v4) = JANUS_IP else {
            panic!("{JANUS_IP} is not IPv4")
        };
        assert!(v4.is_documentation(), "{JANUS_IP}");
    }
}
