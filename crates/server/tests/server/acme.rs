//! Certificates from an ACME CA (`--acme-domain`), against Debian's
//! `pebble` on 127.0.0.1 with `pebble-challtestsrv` as its DNS (every
//! name is 127.0.0.1), so HTTP-01 is really checked on the redirect
//! listener (or TLS-ALPN-01 on the HTTPS one). Issuance, renewal of
//! short-lived certificates, a cached certificate served while the CA is
//! down, retries, and refusals of bad settings. Skipped (with a note) when
//! pebble is not installed.

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::pki::{Pki, pem};
use common::{Home, wait_until};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vtp_server::Server;
use vtp_server::config::ServeArgs;
use vtp_server::tls::ReloadCounters;
use vtp_store::testing::TempDir;

const WAIT: Duration = Duration::from_secs(60);
const DOMAIN: &str = "class.vtp.test";

fn pebble_installed() -> bool {
    let found = std::path::Path::new("/usr/bin/pebble").exists()
        && std::path::Path::new("/usr/bin/pebble-challtestsrv").exists();
    if !found {
        eprintln!("pebble not installed (apt-get install pebble): ACME test skipped");
    }
    found
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// pebble (ACME directory on HTTPS with a certificate of our test CA) and
/// its DNS, killed on drop.
struct Pebble {
    directory: String,
    /// The test CA that signed pebble's own HTTPS certificate.
    ca_file: PathBuf,
    dir: TempDir,
    _pebble: Child,
    _dns: Child,
}

impl Pebble {
    /// Validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of
    /// 127.0.0.1; certificates live `validity` seconds.
    async fn start(http_port: u16, tls_port: u16, validity: u64) -> Pebble {
        let pki = Pki::new();
        let leaf = pki.leaf(1);
        let dir = TempDir::new("vtp-pebble").unwrap();
        let cert = dir.path().join("pebble.crt");
        let key = dir.path().join("pebble.key");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        std::fs::write(&ca_file, pem("CERTIFICATE", &pki.ca)).unwrap();
        let (listen, management, dns_port) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity,
        }});
        let config_file = dir.path().join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble-challtestsrv starts");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("pebble starts");
        let directory = format!("https://127.0.0.1:{listen}/dir");
        let http = pki.http();
        wait_until(WAIT, "pebble to answer", async || {
            http.get(&directory)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Pebble {
            directory,
            ca_file,
            dir,
            _pebble: pebble,
            _dns: dns,
        }
    }
}

impl Pebble {
    /// Stops the CA (its processes are killed); its files stay.
    fn kill(self) -> TempDir {
        self.dir
    }
}

/// A VTP server with `--acme-domain`, built (so its redirect listener is
/// bound) but not yet running.
struct Built {
    server: Server,
    args: ServeArgs,
}

fn acme_args(home: &Home, directory: &str, ca_file: Option<&PathBuf>) -> ServeArgs {
    let mut args = home.args();
    args.tls.acme_domain = vec![DOMAIN.into()];
    args.tls.acme_email = Some("admin@vtp.test".into());
    args.tls.acme_directory = directory.into();
    args.tls.acme_ca_cert = ca_file.cloned();
    args.tls.http_redirect_bind = Some("127.0.0.1:0".parse().unwrap());
    args
}

async fn build(args: ServeArgs) -> Built {
    let server = match Server::build(&args).await {
        Ok(s) => s,
        Err(e) => panic!("server builds: {e:#}"),
    };
    Built { server, args }
}

struct Running {
    addr: SocketAddr,
    counters: Arc<ReloadCounters>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Built {
    async fn run(self) -> Running {
        let counters = self.server.tls().unwrap().counters().clone();
        let listener = tokio::net::TcpListener::bind(self.args.bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.server.run(listener, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            counters,
            stop,
            task,
        }
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("server ran cleanly");
    }
}

/// Accepts any certificate: these tests look at what is served (pebble's
/// roots change per run), not at the web PKI.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vtp_server::tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The leaf served to a client asking for [`DOMAIN`], or `None` when the
/// handshake fails (no certificate yet).
async fn served(addr: SocketAddr) -> Option<CertificateDer<'static>> {
    let config = rustls::ClientConfig::builder_with_provider(vtp_server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.ok()?;
    let tls = connector
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .ok()?;
    let (_, conn) = tls.get_ref();
    Some(conn.peer_certificates()?[0].clone().into_owned())
}

/// The DNS names and the lifetime of a certificate.
fn names_and_lifetime(cert: &CertificateDer<'_>) -> (Vec<String>, i64) {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    let names = parsed
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let v = parsed.validity();
    (names, v.not_after.timestamp() - v.not_before.timestamp())
}

#[tokio::test]
async fn a_certificate_is_issued_over_http01_then_renewed() {
    if !pebble_installed() {
        return;
    }
    let home = Home::new().await;
    // pebble validates on the redirect listener's port.
    let http_port = free_port();
    // Certificates of 9 s: renewed after 6.
    let pebble = Pebble::start(http_port, free_port(), 9).await;
    let mut args = acme_args(&home, &pebble.directory, Some(&pebble.ca_file));
    args.tls.http_redirect_bind = Some(format!("127.0.0.1:{http_port}").parse().unwrap());
    let s = build(args).await.run().await;

    let mut first = None;
    wait_until(WAIT, "the first certificate", async || {
        first = served(s.addr).await;
        first.is_some()
    })
    .await;
    let first = first.unwrap();
    let (names, lifetime) = names_and_lifetime(&first);
    assert_eq!(names, vec![DOMAIN.to_string()]);
    assert!(lifetime <= 10, "pebble's short lifetime: {lifetime}");
    // Kept in the data directory, key readable by its owner only.
    let acme_dir = std::fs::read_dir(home.data_dir.path().join("acme"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(acme_dir.join("account.json").is_file());
    let key = acme_dir.join(format!("{DOMAIN}.key.pem"));
    assert!(acme_dir.join(format!("{DOMAIN}.crt.pem")).is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
    }

    wait_until(WAIT, "the renewed certificate", async || {
        served(s.addr).await.is_some_and(|c| c != first)
    })
    .await;
    assert!(s.counters.reloaded.load(Ordering::Relaxed) >= 2);
    s.stop().await;
}

#[tokio::test]
async fn without_a_redirect_listener_names_are_proven_with_tls_alpn01() {
    if !pebble_installed() {
        return;
    }
    let home = Home::new().await;
    // pebble validates on the HTTPS port itself; nothing listens for HTTP.
    let https_port = free_port();
    let pebble = Pebble::start(free_port(), https_port, 3600).await;
    let mut args = acme_args(&home, &pebble.directory, Some(&pebble.ca_file));
    args.tls.http_redirect_bind = None;
    args.bind = format!("127.0.0.1:{https_port}").parse().unwrap();
    let s = build(args).await.run().await;
    let mut issued = None;
    wait_until(WAIT, "the certificate", async || {
        issued = served(s.addr).await;
        issued.is_some()
    })
    .await;
    let (names, _) = names_and_lifetime(&issued.unwrap());
    assert_eq!(names, vec![DOMAIN.to_string()]);
    s.stop().await;
}

#[tokio::test]
async fn a_cached_certificate_is_served_while_the_ca_is_down() {
    if !pebble_installed() {
        return;
    }
    let home = Home::new().await;
    let http_port = free_port();
    // 12 s certificates: due for renewal 8 s after issuance, while the CA is down.
    let pebble = Pebble::start(http_port, free_port(), 12).await;
    let mut args = acme_args(&home, &pebble.directory, Some(&pebble.ca_file));
    args.tls.http_redirect_bind = Some(format!("127.0.0.1:{http_port}").parse().unwrap());
    let s = build(args.clone()).await.run().await;
    let mut issued = None;
    wait_until(WAIT, "the certificate", async || {
        issued = served(s.addr).await;
        issued.is_some()
    })
    .await;
    s.stop().await;
    let _files = pebble.kill();

    // The CA is gone; the same data directory serves the same certificate
    // from the first handshake on, and still after a failed renewal.
    args.tls.http_redirect_bind = Some("127.0.0.1:0".parse().unwrap());
    let s = build(args).await.run().await;
    assert_eq!(served(s.addr).await, issued);
    wait_until(WAIT, "a renewal attempt to fail", async || {
        s.counters.failed.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert_eq!(served(s.addr).await, issued);
    assert_eq!(s.counters.reloaded.load(Ordering::Relaxed), 0);
    s.stop().await;
}

#[tokio::test]
async fn an_unreachable_ca_without_a_cached_certificate_is_retried() {
    let home = Home::new().await;
    let closed = free_port();
    let args = acme_args(&home, &format!("https://127.0.0.1:{closed}/dir"), None);
    let s = build(args).await.run().await;
    wait_until(WAIT, "a failed attempt", async || {
        s.counters.failed.load(Ordering::Relaxed) >= 1
    })
    .await;
    // No certificate yet: handshakes fail, the server runs on.
    assert_eq!(served(s.addr).await, None);
    s.stop().await;
}

async fn refusal(configure: impl FnOnce(&mut ServeArgs)) -> String {
    let home = Home::new().await;
    let mut args = acme_args(&home, "https://127.0.0.1:1/dir", None);
    configure(&mut args);
    match Server::build(&args).await {
        Ok(_) => panic!("the server must not start"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn bad_acme_settings_stop_the_start_with_a_clear_message() {
    for (bad, needle) in [
        ("192.0.2.1", "\"192.0.2.1\" is not a DNS name"),
        ("*.vtp.test", "\"*.vtp.test\" is not a DNS name"),
        ("localhost", "\"localhost\" is not a DNS name"),
        ("class.vtp.test:443", "is not a DNS name"),
    ] {
        let err = refusal(|a| a.tls.acme_domain = vec![bad.into()]).await;
        assert!(err.contains(needle), "{bad}: {err}");
    }
    let err = refusal(|a| a.tls.tls_cert = Some("cert.pem".into())).await;
    assert!(err.contains("leave out --tls-cert and --tls-key"), "{err}");
    let err = refusal(|a| a.tls.acme_directory = "http://127.0.0.1:1/dir".into()).await;
    assert!(err.contains("must be an https:// URL"), "{err}");
    let err = refusal(|a| a.tls.acme_email = Some("not an address".into())).await;
    assert!(err.contains("is not an e-mail address"), "{err}");
    let missing = PathBuf::from("/nonexistent/vtp-test-ca.pem");
    let err = refusal(|a| a.tls.acme_ca_cert = Some(missing.clone())).await;
    assert!(
        err.contains("cannot read the TLS ACME CA certificate file /nonexistent/vtp-test-ca.pem"),
        "{err}"
    );
}
