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
    let tls = &args.tls;
    if !tls.acme_domain.is_empty() {
        let settings = crate::tls::acme::AcmeSettings::new(
            &tls.acme_domain,
            tls.acme_email.as_deref(),
            &tls.acme_directory,
            tls.acme_ca_cert.as_deref(),
            &args.store.data_dir,
            instant_acme::ChallengeType::Http01,
        );
        return vec![match settings {
            Err(e) => Check::new(Verdict::Fail, "certificate", e.to_string()),
            Ok(settings) => match settings.cached() {
                Some(pair) => certificate_check(&pair, "ACME, cached", &settings.domains),
                None => Check::new(
                    Verdict::Warn,
                    "certificate",
                    format!(
                        "none yet for {}: vtp asks {} at start (port {} must reach this host)",
                        settings.domains.join(", "),
                        tls.acme_directory,
                        if tls.http_redirect_bind.is_some() {
                            "80"
                        } else {
                            "443"
                        }
                    ),
                ),
            },
        }];
    }
    let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) else {
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
    vec![match crate::tls::load_pair(cert, key) {
        Ok(pair) => certificate_check(&pair, &cert.display().to_string(), &[]),
        Err(e) => Check::new(Verdict::Fail, "certificate", e.to_string()),
    }]
}

/// A certificate in service: its names (each of `expected` among them)
/// and how long it has left (under 14 days is a warning).
fn certificate_check(
    pair: &rustls::sign::CertifiedKey,
    source: &str,
    expected: &[String],
) -> Check {
    let Some(leaf) = pair.cert.first() else {
        return Check::new(Verdict::Fail, "certificate", "the chain is empty");
    };
    let names = certificate_names(leaf.as_ref());
    let missing: Vec<&String> = expected
        .iter()
        .filter(|n| !names.iter().any(|have| have.eq_ignore_ascii_case(n)))
        .collect();
    let Some((not_before, not_after)) = crate::tls::acme::validity(leaf) else {
        return Check::new(Verdict::Fail, "certificate", "its validity cannot be read");
    };
    let now = SystemTime::now();
    let days_left = not_after
        .duration_since(now)
        .map_or(-1, |d| (d.as_secs() / 86_400) as i64);
    let what = format!(
        "{source}: names {}; valid until {} ({} days)",
        names.join(", "),
        chrono::DateTime::<chrono::Utc>::from(not_after).format("%Y-%m-%d %H:%M UTC"),
        days_left.max(0)
    );
    if now < not_before || days_left < 0 {
        Check::new(
            Verdict::Fail,
            "certificate",
            format!("{what}: not valid now"),
        )
    } else if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Check::new(
            Verdict::Fail,
            "certificate",
            format!("{what}: does not name {}", missing.join(", ")),
        )
    } else if days_left < 14 {
        Check::new(
            Verdict::Warn,
            "certificate",
            format!("{what}: renew it soon"),
        )
    } else {
        Check::new(Verdict::Ok, "certificate", what)
    }
}

/// The DNS names and addresses a certificate is for (its subject
/// alternative names; the common name when it has none).
fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push((*n).to_owned()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(cn.to_owned());
            }
        }
    }
    names
}

/// The HTTP and RTC ports: bound by a running `vtp`, or free for one to
/// bind. Anything else (an address not on this host, no permission) fails.
fn ports(args: &ServeArgs) -> Vec<Check> {
    let tcp = |a| TcpListener::bind(a).map(drop);
    let mut checks = vec![
        port_check("http port (tcp)", args.bind, tcp),
        port_check("rtc port (udp)", args.rtc_bind, |a| {
            UdpSocket::bind(a).map(drop)
        }),
    ];
    checks.push(match args.rtc_tcp_bind {
        Some(crate::config::RtcTcpBind::Off) => Check::new(
            Verdict::Warn,
            "rtc port (tcp)",
            "ICE-TCP is off: students whose network blocks UDP need TURN",
        ),
        Some(crate::config::RtcTcpBind::Addr(addr)) => port_check("rtc port (tcp)", addr, tcp),
        None => port_check("rtc port (tcp)", args.rtc_bind, tcp),
    });
    checks.push(announced(args));
    checks
}

/// What the SFU will announce, and whether students elsewhere can use it.
fn announced(args: &ServeArgs) -> Check {
    let what = "announced addresses";
    let own = vtp_sfu_driver::host_addresses(true).unwrap_or_default();
    if args.announced_ip.is_empty() {
        let ip = args.rtc_bind.ip();
        if ip.is_unspecified() {
            return if own.is_empty() {
                Check::new(
                    Verdict::Fail,
                    what,
                    "none: this host has no address but loopback; set --announced-ip",
                )
            } else {
                let list: Vec<String> = own.iter().map(ToString::to_string).collect();
                Check::new(
                    Verdict::Ok,
                    what,
                    format!("this host's own: {}", list.join(", ")),
                )
            };
        }
        if ip.is_loopback() && !args.bind.ip().is_loopback() {
            return Check::new(
                Verdict::Fail,
                what,
                format!(
                    "only {ip}: students on other machines get no media; \
                     set --announced-ip (or --rtc-bind 0.0.0.0:…)"
                ),
            );
        }
        return Check::new(Verdict::Ok, what, format!("{ip} (the --rtc-bind address)"));
    }
    let elsewhere: Vec<String> = args
        .announced_ip
        .iter()
        .filter(|ip| !own.contains(ip))
        .map(ToString::to_string)
        .collect();
    let list: Vec<String> = args.announced_ip.iter().map(ToString::to_string).collect();
    if elsewhere.is_empty() {
        Check::new(
            Verdict::Ok,
            what,
            format!("{} (on this host)", list.join(", ")),
        )
    } else {
        Check::new(
            Verdict::Warn,
            what,
            format!(
                "{}: {} not on this host (behind NAT?): UDP and TCP port {} must be forwarded here",
                list.join(", "),
                elsewhere.join(", "),
                args.rtc_bind.port()
            ),
        )
    }
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
