//! `vtp doctor`: checks a configuration before a class, one line per
//! check, with the same flags and `VTP_*` variables as `vtp serve` (so it
//! reads the service's environment file as it is). Exits non-zero when a
//! check fails; warnings say what may still go wrong for students.

pub mod turn_probe;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, SystemTime};

use crate::config::ServeArgs;
use crate::turn::TurnConfig;

/// How long one network check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    pub verdict: Verdict,
    pub what: String,
    pub detail: String,
}

impl Check {
    fn new(verdict: Verdict, what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            verdict,
            what: what.into(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{tag} {}: {}", self.what, self.detail)
    }
}

/// Runs every check, printing each line as it completes; true when none
/// failed.
pub async fn run(args: &ServeArgs) -> bool {
    let mut failed = false;
    let mut report = |check: Check| {
        failed |= check.verdict == Verdict::Fail;
        println!("{check}");
    };
    report(store(args).await);
    for check in tls(args) {
        report(check);
    }
    for check in ports(args) {
        report(check);
    }
    for check in turn(args).await {
        report(check);
    }
    !failed
}

async fn store(args: &ServeArgs) -> Check {
    let opened =
        tokio::time::timeout(CHECK_TIMEOUT, crate::commands::open_store(&args.store)).await;
    match opened {
        Ok(Ok(store)) => {
            let ping = store.ping().await;
            let description = store.description();
            store.close().await;
            match ping {
                Ok(()) => Check::new(Verdict::Ok, "store", format!("{description} answers")),
                Err(e) => Check::new(Verdict::Fail, "store", format!("{description}: {e}")),
            }
        }
        Ok(Err(e)) => Check::new(Verdict::Fail, "store", format!("{e:#}")),
        Err(_) => Check::new(
            Verdict::Fail,
            "store",
            format!("no answer within {CHECK_TIMEOUT:?}"),
        ),
    }
}

fn tls(args: &ServeArgs) -> Vec<Check> {
    let (Some(cert), Some(key)) = (&args.tls.tls_cert, &args.tls.tls_key) else {
        let loopback = args.bind.ip().is_loopback();
        return vec![Check::new(
            if loopback { Verdict::Ok } else { Verdict::Warn },
            "https",
            if loopback {
                "off (loopback only: fine behind a TLS reverse proxy)".to_owned()
            } else {
                format!(
                    "off on {}: browsers on other machines will refuse camera and microphone",
                    args.bind
                )
            },
        )];
    };
    match crate::tls::load_pair(cert, key) {
        Ok(pair) => {
            let Some(leaf) = pair.cert.first() else {
                return vec![Check::new(
                    Verdict::Fail,
                    "certificate",
                    "the chain is empty",
                )];
            };
            vec![Check::new(
                Verdict::Ok,
                "certificate",
                format!(
                    "{} loads and matches its key (sha-256 {})",
                    cert.display(),
                    crate::tls::fingerprint(leaf)
                ),
            )]
        }
        Err(e) => vec![Check::new(Verdict::Fail, "certificate", e.to_string())],
    }
}

/// The HTTP and RTC ports: bound by a running `vtp`, or free for one to
/// bind. Anything else (an address not on this host, no permission) fails.
fn ports(args: &ServeArgs) -> Vec<Check> {
    vec![
        port_check("http port (tcp)", args.bind, |a| {
            TcpListener::bind(a).map(drop)
        }),
        port_check("rtc port (udp)", args.rtc_bind, |a| {
            UdpSocket::bind(a).map(drop)
        }),
    ]
}

fn port_check(
    what: &str,
    addr: SocketAddr,
    bind: impl Fn(SocketAddr) -> std::io::Result<()>,
) -> Check {
    if addr.port() == 0 {
        return Check::new(
            Verdict::Warn,
            what,
            format!("{addr}: port 0 picks a new port at each start"),
        );
    }
    match bind(addr) {
        Ok(()) => Check::new(Verdict::Ok, what, format!("{addr} is free for vtp to bind")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Check::new(
            Verdict::Ok,
            what,
            format!("{addr} is bound (a running vtp?)"),
        ),
        Err(e) => Check::new(Verdict::Fail, what, format!("{addr}: {e}")),
    }
}

async fn turn(args: &ServeArgs) -> Vec<Check> {
    let config = match TurnConfig::from_settings(
        &args.turn.turn_urls,
        args.turn.turn_secret.as_ref(),
        args.turn.turn_credential_ttl,
    ) {
        Ok(Some(config)) => config,
        Ok(None) => {
            return vec![Check::new(
                Verdict::Warn,
                "turn",
                "none configured: students whose network blocks UDP rely on ICE-TCP alone",
            )];
        }
        Err(e) => return vec![Check::new(Verdict::Fail, "turn", e.to_string())],
    };
    let server = config.ice_server("vtp-doctor", SystemTime::now());
    let mut checks = Vec::new();
    for url in config.urls() {
        let Some(target) = turn_probe::TurnTarget::from_url(url) else {
            checks.push(Check::new(Verdict::Fail, url.clone(), "not a TURN URL"));
            continue;
        };
        checks.push(
            match turn_probe::allocate(&target, &server.username, &server.credential, CHECK_TIMEOUT)
                .await
            {
                Ok(relayed) => Check::new(
                    Verdict::Ok,
                    url.clone(),
                    format!("allocated a relay at {relayed} with VTP's credential (released)"),
                ),
                Err(e) => Check::new(Verdict::Fail, url.clone(), e.to_string()),
            },
        );
    }
    checks
}
