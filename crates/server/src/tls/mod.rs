//! HTTPS for `vtp serve`: the certificate in service, its reloading, and
//! the plain-HTTP redirect (`redirect`).
//!
//! Why built in: browsers give `getUserMedia` (camera, microphone) only to
//! a page in a secure context, i.e. over HTTPS or from loopback. A class
//! on a school network should not need a reverse proxy to be usable.
//!
//! Invariants:
//! - The certificate in service lives in [`CertResolver`]; every new
//!   handshake reads it, so replacing it switches new connections at once
//!   and leaves open ones alone. Nothing else holds a certificate.
//! - A reload is all or nothing: the new chain and key are parsed and
//!   checked against each other first, and a failure keeps the old pair in
//!   service (with a warning). Start-up is the only time a bad file is an
//!   error, so `vtp serve` never runs without a usable certificate.
//! - Private keys never reach a log or a `Debug` output: errors name the
//!   file, never its contents.

pub mod acme;
pub mod redirect;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::HeaderValue;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::config::TlsArgs;

/// What can go wrong with TLS settings or certificate files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} file {path}: {error}")]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the TLS certificate file {0} holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)"
    )]
    NoCertificate(PathBuf),
    #[error("the TLS certificate file {path} is not a valid certificate chain: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "the TLS key file {0} holds no PEM private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
    )]
    NoKey(PathBuf),
    /// The reason never quotes the file: it is a private key.
    #[error("the TLS key file {path} cannot be used: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("the TLS key file {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS settings: {0}")]
    Config(String),
}

/// The crypto provider of every TLS config VTP builds: ring, which the
/// tree already has through reqwest (no aws-lc or OpenSSL build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and its private key, and
/// checks that they belong together.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "key")?;
    parse_pair(&cert_pem, &key_pem, cert, key)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

/// Parses a chain and key already read (`cert` and `key` name the files in
/// errors). One file may hold both: each takes only its own PEM blocks.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let private = match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => return Err(TlsError::NoKey(key.to_path_buf())),
        // pem's messages can quote a line of the file: not for a key.
        Err(_) => {
            return Err(TlsError::BadKey {
                path: key.to_path_buf(),
                reason: "not valid PEM".into(),
            });
        }
    };
    CertifiedKey::from_der(chain, private, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        rustls::Error::InvalidCertificate(e) => TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: format!("{e:?}"),
        },
        // rustls says which kinds it accepts, never what the key holds.
        e => TlsError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

/// SHA-256 of a certificate's DER, as operators see it (`openssl x509
/// -fingerprint -sha256`), for logs.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

fn leaf_fingerprint(key: &CertifiedKey) -> String {
    key.cert.first().map(fingerprint).unwrap_or_default()
}

/// `der` as a PEM block.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The certificate every new handshake gets; replaced by reloads. Empty
/// only while an ACME server has no certificate yet (handshakes fail then).
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// ACME's TLS-ALPN-01 certificates, for validators asking `acme-tls/1`.
    challenges: Option<Arc<acme::Challenges>>,
}

impl CertResolver {
    pub fn new(key: Option<CertifiedKey>, challenges: Option<Arc<acme::Challenges>>) -> Self {
        CertResolver {
            current: RwLock::new(key.map(Arc::new)),
            challenges,
        }
    }

    /// Puts `key` in service for the handshakes that follow.
    pub fn set(&self, key: CertifiedKey) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Some(Arc::new(key));
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The SHA-256 fingerprint of the leaf in service, for logs.
    pub fn describe(&self) -> String {
        match self.current() {
            Some(k) => format!("leaf sha256 {}", leaf_fingerprint(&k)),
            None => "no certificate yet".into(),
        }
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The fingerprint only: the key stays out of any output.
        f.debug_struct("CertResolver")
            .field("current", &self.describe())
            .finish()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validating = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == acme::ACME_TLS_ALPN));
        if validating {
            // Only a challenge certificate, never the real one (RFC 8737 §3).
            let name = hello.server_name()?;
            return self.challenges.as_ref()?.alpn_cert(name);
        }
        self.current()
    }
}

/// Counts of certificate reloads (for tests and the log).
#[derive(Debug, Default)]
pub struct ReloadCounters {
    /// New certificates put in service.
    pub reloaded: AtomicU64,
    /// Changes (or SIGHUPs) whose files could not be used: the old
    /// certificate stayed.
    pub failed: AtomicU64,
}

/// What the accept loop needs for TLS.
#[derive(Clone)]
pub struct TlsOptions {
    pub config: Arc<ServerConfig>,
    /// A client that has not finished its handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// `Strict-Transport-Security`, added to every response.
    pub hsts: Option<HeaderValue>,
}

/// Where the certificate comes from.
enum Source {
    /// `--tls-cert`/`--tls-key`, reloaded on change and SIGHUP.
    Files(CertFiles),
    /// `--acme-domain`: issued and renewed by the ACME task.
    Acme {
        settings: Arc<acme::AcmeSettings>,
        challenges: Arc<acme::Challenges>,
    },
}

/// HTTPS as configured: the resolver, the server config over it, and what
/// keeps its certificate current.
pub struct Tls {
    resolver: Arc<CertResolver>,
    options: TlsOptions,
    source: Source,
    reload_interval: Duration,
    counters: Arc<ReloadCounters>,
    redirect_bind: Option<SocketAddr>,
}

impl Tls {
    /// `None` when HTTPS is not configured; an error when the settings or
    /// the files are not usable (the server must not start then).
    /// `data_dir` keeps ACME's account and certificates.
    pub fn from_args(args: &TlsArgs, data_dir: &Path) -> Result<Option<Tls>, TlsError> {
        let source = if !args.acme_domain.is_empty() {
            if args.tls_cert.is_some() || args.tls_key.is_some() {
                return Err(TlsError::Config(
                    "--acme-domain gets its own certificate: leave out --tls-cert and --tls-key"
                        .into(),
                ));
            }
            let settings = acme::AcmeSettings::new(
                &args.acme_domain,
                args.acme_email.as_deref(),
                &args.acme_directory,
                args.acme_ca_cert.as_deref(),
                data_dir,
                if args.http_redirect_bind.is_some() {
                    instant_acme::ChallengeType::Http01
                } else {
                    instant_acme::ChallengeType::TlsAlpn01
                },
            )?;
            Source::Acme {
                settings: Arc::new(settings),
                challenges: Arc::default(),
            }
        } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            Source::Files(CertFiles {
                cert: cert.clone(),
                key: key.clone(),
                last_seen: None,
                unreadable: false,
            })
        } else {
            if args.tls_cert.is_some() || args.tls_key.is_some() {
                return Err(TlsError::Config(
                    "--tls-cert and --tls-key (VTP_TLS_CERT, VTP_TLS_KEY) go together".into(),
                ));
            }
            if args.http_redirect_bind.is_some() {
                return Err(TlsError::Config(
                    "--http-redirect-bind needs HTTPS: set --tls-cert and --tls-key, or --acme-domain"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let (source, first) = match source {
            Source::Files(mut files) => {
                let (cert_pem, key_pem) = files.read()?;
                let pair = parse_pair(&cert_pem, &key_pem, &files.cert, &files.key)?;
                files.last_seen = Some(contents_digest(&cert_pem, &key_pem));
                (Source::Files(files), Some(pair))
            }
            Source::Acme {
                settings,
                challenges,
            } => {
                // Served at once, reachable CA or not; renewed by the task.
                let cached = settings.cached();
                (
                    Source::Acme {
                        settings,
                        challenges,
                    },
                    cached,
                )
            }
        };
        let challenges = match &source {
            Source::Acme { challenges, .. } => Some(challenges.clone()),
            Source::Files(_) => None,
        };
        let acme = challenges.is_some();
        let resolver = Arc::new(CertResolver::new(first, challenges));
        let config = server_config(resolver.clone(), acme)?;
        let hsts = (!args.hsts_max_age.is_zero()).then(|| {
            HeaderValue::from_str(&format!("max-age={}", args.hsts_max_age.as_secs()))
                .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
        });
        Ok(Some(Tls {
            resolver,
            options: TlsOptions {
                config,
                handshake_timeout: args.tls_handshake_timeout,
                hsts,
            },
            source,
            reload_interval: args.tls_reload_interval.max(Duration::from_millis(10)),
            counters: Arc::default(),
            redirect_bind: args.http_redirect_bind,
        }))
    }

    pub fn options(&self) -> TlsOptions {
        self.options.clone()
    }

    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    pub fn counters(&self) -> &Arc<ReloadCounters> {
        &self.counters
    }

    /// Where `--http-redirect-bind` asks for the plain-HTTP redirect.
    pub fn redirect_bind(&self) -> Option<SocketAddr> {
        self.redirect_bind
    }

    /// The HTTP-01 challenges the redirect listener answers (ACME only).
    pub fn challenges(&self) -> Option<Arc<acme::Challenges>> {
        match &self.source {
            Source::Acme { challenges, .. } => Some(challenges.clone()),
            Source::Files(_) => None,
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let source = match &self.source {
            Source::Files(files) => format!(
                "certificate from {} ({}), reloaded on SIGHUP and when the files change \
                 (checked every {:?})",
                files.cert.display(),
                self.resolver.describe(),
                self.reload_interval,
            ),
            Source::Acme { settings, .. } => format!(
                "ACME certificate for {} from {} ({}), kept in {}, renewed at 2/3 of its lifetime",
                settings.domains.join(", "),
                settings.directory,
                self.resolver.describe(),
                settings.dir.display(),
            ),
        };
        format!(
            "tls: {source}; handshake within {:?}; {}",
            self.options.handshake_timeout,
            match &self.options.hsts {
                Some(v) => format!("HSTS {}", v.to_str().unwrap_or("")),
                None => "no HSTS".into(),
            }
        )
    }

    /// What keeps the certificate current, to spawn: the ACME task, or
    /// the file reloader. Call within the runtime, before the server is
    /// reachable, so that no SIGHUP is missed.
    pub fn background(&self) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        match &self.source {
            Source::Files(files) => Box::pin(self.reloader(files)),
            Source::Acme {
                settings,
                challenges,
            } => Box::pin(acme::run(
                settings.clone(),
                self.resolver.clone(),
                challenges.clone(),
                self.counters.clone(),
            )),
        }
    }

    /// Reloads the certificate on SIGHUP and when its files change, until
    /// dropped (SIGHUP then no longer ends `vtp`).
    ///
    /// Why polling rather than the `notify` crate: certificate tools
    /// replace files by renaming or by swapping a symlinked directory
    /// (certbot's `live/`, Kubernetes secrets), which inotify watches on
    /// the old inode miss, and network file systems send no events at
    /// all. Reading two small files every few seconds costs nothing and
    /// sees every kind of change, with no new dependency.
    fn reloader(
        &self,
        files: &CertFiles,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let hangup = hangup_signal();
        let mut files = files.clone();
        let resolver = self.resolver.clone();
        let counters = self.counters.clone();
        let interval = self.reload_interval;
        async move {
            let mut hangup = hangup;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let forced = tokio::select! {
                    _ = tick.tick() => false,
                    () = next_hangup(&mut hangup) => {
                        tracing::info!("SIGHUP: reloading the TLS certificate");
                        true
                    }
                };
                files.check(&resolver, &counters, forced).await;
            }
        }
    }
}

/// The TLS server config over `resolver`: TLS 1.2 and 1.3 with ring's
/// safe defaults, HTTP/1.1 only (VTP serves HTTP/1.1 and websockets), and
/// ACME's `acme-tls/1` when `acme` (chosen only by validators that offer
/// nothing else; the accept loop closes those connections after the
/// handshake).
pub fn server_config(
    resolver: Arc<CertResolver>,
    acme: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if acme {
        config.alpn_protocols.push(acme::ACME_TLS_ALPN.to_vec());
    }
    Ok(Arc::new(config))
}

/// The files a certificate is reloaded from, and what was last seen in them.
#[derive(Clone)]
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    /// SHA-256 over both files' contents when last looked at (used or not):
    /// a change is noticed once, however the file was replaced.
    last_seen: Option<[u8; 32]>,
    /// The files could not be read at the last look (warned once).
    unreadable: bool,
}

impl CertFiles {
    fn read(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        Ok((read(&self.cert, "certificate")?, read(&self.key, "key")?))
    }

    /// Puts the files' pair in service when they changed (or `forced`);
    /// anything wrong keeps the pair in service.
    async fn check(&mut self, resolver: &CertResolver, counters: &ReloadCounters, forced: bool) {
        let (cert, key) = (self.cert.clone(), self.key.clone());
        let read = tokio::task::spawn_blocking(move || -> Result<_, TlsError> {
            Ok((
                std::fs::read(&cert).map_err(|error| TlsError::Read {
                    what: "certificate",
                    path: cert.clone(),
                    error,
                })?,
                std::fs::read(&key).map_err(|error| TlsError::Read {
                    what: "key",
                    path: key.clone(),
                    error,
                })?,
            ))
        })
        .await;
        let (cert_pem, key_pem) = match read {
            Ok(Ok(pems)) => pems,
            Ok(Err(e)) => {
                // Mid-rename a file can be briefly missing: say so once.
                if forced || !self.unreadable {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in service");
                }
                self.unreadable = true;
                return;
            }
            Err(_) => return,
        };
        self.unreadable = false;
        let digest = contents_digest(&cert_pem, &key_pem);
        if !forced && self.last_seen == Some(digest) {
            return;
        }
        self.last_seen = Some(digest);
        match parse_pair(&cert_pem, &key_pem, &self.cert, &self.key) {
            Ok(pair) => {
                let leaf = leaf_fingerprint(&pair);
                resolver.set(pair);
                counters.reloaded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(leaf_sha256 = %leaf, "TLS certificate reloaded");
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in service");
            }
        }
    }
}

fn contents_digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert_pem.len() as u64).to_be_bytes());
    h.update(cert_pem);
    h.update(key_pem);
    h.finalize().into()
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: the certificate reloads only when its files change");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(s) => {
            if s.recv().await.is_none() {
                *hangup = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_hangup: &mut Hangup) {
    std::future::pending::<()>().await
}

/// Logs why a server reachable from other machines without HTTPS will
/// not get cameras and microphones from browsers there.
pub fn warn_if_insecure(bind: SocketAddr, tls: bool) {
    if !tls && !bind.ip().is_loopback() {
        tracing::warn!(
            %bind,
            "serving plain HTTP on a non-loopback address: browsers allow camera and microphone \
             only over HTTPS or on localhost, so people on other machines can watch and chat \
             but not send; set --tls-cert/--tls-key or --acme-domain, or put a TLS reverse \
             proxy in front"
        );
    }
}
