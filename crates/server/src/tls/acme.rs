//! Certificates from an ACME CA (Let's Encrypt): `--acme-domain`.
//!
//! Why `instant-acme`: it is maintained (rustls project people), async on
//! tokio, speaks RFC 8555 with nothing else attached (no web server, no
//! certificate store of its own), and takes any HTTP client, so it runs on
//! the reqwest and rustls VTP already has (no hyper-rustls stack, no
//! platform verifier) and `--acme-ca-cert` is one added root.
//!
//! How it runs:
//! - Kept in `<data-dir>/acme/<directory>/`: the account (`account.json`,
//!   its private key inside, mode 0600) and, per set of names, the
//!   certificate chain and its key (`<names>.crt.pem`, `<names>.key.pem`).
//! - At start a cached certificate is put in service at once, whether or
//!   not the CA can be reached; without one, handshakes fail until the
//!   first issuance (no self-signed stand-in that browsers would warn about).
//! - A certificate is renewed at 2/3 of its lifetime (day 60 of Let's
//!   Encrypt's 90); a failure is retried with a doubling delay (up to an
//!   hour) while the current certificate stays in service.
//! - Challenges are HTTP-01, answered by the `--http-redirect-bind`
//!   listener (which port 80 must reach) from [`Challenges`]; without that
//!   listener, TLS-ALPN-01 on the HTTPS listener (port 443 must reach it):
//!   a validator offering only `acme-tls/1` gets the challenge's
//!   self-signed certificate from the resolver, and its connection is
//!   closed after the handshake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http;
use http_body_util::BodyExt as _;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::{CertResolver, ReloadCounters, TlsError, leaf_fingerprint, provider};

/// Let's Encrypt's production directory, the default of `--acme-directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The challenges in progress: HTTP-01 key authorizations by token, and
/// TLS-ALPN-01 certificates by name.
#[derive(Default)]
pub struct Challenges {
    by_token: RwLock<HashMap<String, String>>,
    alpn_certs: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges")
    }
}

impl Challenges {
    /// The TLS-ALPN-01 certificate for `name`, if one is being validated.
    pub fn alpn_cert(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.alpn_certs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The key authorization to answer for `token`, if it is ours.
    pub fn get(&self, token: &str) -> Option<String> {
        self.by_token
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    fn insert(&self, token: String, key_authorization: String) {
        self.by_token
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, key_authorization);
    }

    fn insert_alpn(&self, name: String, cert: CertifiedKey) {
        self.alpn_certs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, Arc::new(cert));
    }

    fn clear(&self) {
        self.by_token
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.alpn_certs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// What `--acme-*` configured, checked.
pub struct AcmeSettings {
    pub domains: Vec<String>,
    pub email: Option<String>,
    pub directory: String,
    /// PEM roots to trust for the directory besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// `<data-dir>/acme/<directory>/`.
    pub dir: PathBuf,
    /// Prove names with HTTP-01 on the redirect listener (when there is
    /// one), else with TLS-ALPN-01 on the HTTPS listener.
    pub challenge: ChallengeType,
}

impl AcmeSettings {
    /// Checks the names (DNS names only: HTTP-01 cannot prove IP addresses
    /// or wildcards), the e-mail and the extra root, and picks the folder.
    pub fn new(
        domains: &[String],
        email: Option<&str>,
        directory: &str,
        ca_cert: Option<&Path>,
        data_dir: &Path,
        challenge: ChallengeType,
    ) -> Result<AcmeSettings, TlsError> {
        let mut names = Vec::new();
        for d in domains {
            let name = d.trim().trim_end_matches('.').to_ascii_lowercase();
            let is_dns = super::redirect::host_of(&name).is_some_and(|h| h == name)
                && name.contains('.')
                && name.parse::<std::net::IpAddr>().is_err()
                && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if !is_dns {
                return Err(TlsError::Config(format!(
                    "--acme-domain {d:?} is not a DNS name a CA can issue for (like class.example.org; \
                     no IP addresses, wildcards, ports or single labels)"
                )));
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(TlsError::Config("--acme-domain is empty".into()));
        }
        if let Some(e) = email
            && (!e.contains('@') || e.contains(char::is_whitespace) || e.contains(','))
        {
            return Err(TlsError::Config(format!(
                "--acme-email {e:?} is not an e-mail address"
            )));
        }
        let url: http::Uri = directory.parse().map_err(|_| {
            TlsError::Config(format!("--acme-directory {directory:?} is not a URL"))
        })?;
        if url.scheme_str() != Some("https") || url.host().is_none() {
            return Err(TlsError::Config(format!(
                "--acme-directory {directory:?} must be an https:// URL"
            )));
        }
        if let Some(ca) = ca_cert {
            let pem = std::fs::read(ca).map_err(|error| TlsError::Read {
                what: "ACME CA certificate",
                path: ca.to_path_buf(),
                error,
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
            if roots.is_empty() {
                return Err(TlsError::NoCertificate(ca.to_path_buf()));
            }
        }
        // One folder per directory: staging and production accounts differ.
        let host = url.host().unwrap_or("acme").replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "_",
        );
        let digest = Sha256::digest(directory.as_bytes());
        let dir = data_dir.join("acme").join(format!(
            "{host}-{:02x}{:02x}{:02x}{:02x}",
            digest[0], digest[1], digest[2], digest[3]
        ));
        Ok(AcmeSettings {
            domains: names,
            email: email.map(str::to_owned),
            directory: directory.to_owned(),
            ca_cert: ca_cert.map(Path::to_path_buf),
            dir,
            challenge,
        })
    }

    /// Where the certificate for exactly these names is kept.
    fn cert_paths(&self) -> (PathBuf, PathBuf) {
        let mut sorted = self.domains.clone();
        sorted.sort();
        let stem = if sorted.len() == 1 {
            sorted[0].clone()
        } else {
            let digest = Sha256::digest(sorted.join(",").as_bytes());
            format!(
                "{}-and-{}-more-{:02x}{:02x}{:02x}{:02x}",
                sorted[0],
                sorted.len() - 1,
                digest[0],
                digest[1],
                digest[2],
                digest[3]
            )
        };
        (
            self.dir.join(format!("{stem}.crt.pem")),
            self.dir.join(format!("{stem}.key.pem")),
        )
    }

    /// The cached certificate for these names, if there is a usable one.
    pub fn cached(&self) -> Option<CertifiedKey> {
        let (cert, key) = self.cert_paths();
        if !cert.exists() {
            return None;
        }
        match super::load_pair(&cert, &key) {
            Ok(pair) => Some(pair),
            Err(e) => {
                tracing::warn!(error = %e, "cached ACME certificate unusable: getting a new one");
                None
            }
        }
    }
}

/// Gets and renews the certificate, forever. The resolver holds what is
/// in service; failures leave it alone.
pub async fn run(
    settings: Arc<AcmeSettings>,
    resolver: Arc<CertResolver>,
    challenges: Arc<Challenges>,
    counters: Arc<ReloadCounters>,
) {
    const FIRST_RETRY: Duration = Duration::from_secs(5);
    const LAST_RETRY: Duration = Duration::from_secs(3600);
    let mut retry = FIRST_RETRY;
    loop {
        if let Some(current) = resolver.current() {
            let wait = until_renewal(&current, SystemTime::now());
            if !wait.is_zero() {
                tracing::info!(
                    renew_in_secs = wait.as_secs(),
                    "ACME certificate valid; renewal scheduled"
                );
                // Woken at least hourly: a suspended machine's clock jumps.
                tokio::time::sleep(wait.min(Duration::from_secs(3600))).await;
                continue;
            }
        }
        match issue(&settings, &challenges).await {
            Ok(pair) => {
                tracing::info!(
                    domains = ?settings.domains,
                    leaf_sha256 = %leaf_fingerprint(&pair),
                    "ACME certificate issued and in service"
                );
                resolver.set(pair);
                counters
                    .reloaded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                retry = FIRST_RETRY;
            }
            Err(e) => {
                counters
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    error = %e,
                    retry_in_secs = retry.as_secs(),
                    directory = %settings.directory,
                    "ACME certificate not obtained; the current one (if any) stays in service"
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
        challenges.clear();
    }
}

/// How long until `pair` is due for renewal: at 2/3 of its lifetime.
pub fn until_renewal(pair: &CertifiedKey, now: SystemTime) -> Duration {
    let Some((not_before, not_after)) = pair.cert.first().and_then(validity) else {
        return Duration::ZERO;
    };
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let due = not_before + lifetime * 2 / 3;
    due.duration_since(now).unwrap_or_default()
}

/// A certificate's notBefore and notAfter.
pub fn validity(cert: &CertificateDer<'_>) -> Option<(SystemTime, SystemTime)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let at = |t: i64| {
        u64::try_from(t)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    };
    Some((
        at(parsed.validity().not_before.timestamp())?,
        at(parsed.validity().not_after.timestamp())?,
    ))
}

/// Errors of one issuance, for the log (never a key).
#[derive(Debug, thiserror::Error)]
enum IssueError {
    #[error("ACME: {0}")]
    Acme(#[from] instant_acme::Error),
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

async fn issue(
    settings: &AcmeSettings,
    challenges: &Challenges,
) -> Result<CertifiedKey, IssueError> {
    let account = account(settings).await?;
    let identifiers: Vec<Identifier> = settings
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(IssueError::Other(format!("authorization is {other:?}")));
            }
        }
        let name = match &authorization.identifier().identifier {
            Identifier::Dns(name) => name.to_ascii_lowercase(),
            other => {
                return Err(IssueError::Other(format!(
                    "unexpected identifier {other:?}"
                )));
            }
        };
        let mut challenge = authorization
            .challenge(settings.challenge.clone())
            .ok_or_else(|| {
                IssueError::Other(format!(
                    "the CA offers no {:?} challenge",
                    settings.challenge
                ))
            })?;
        if settings.challenge == ChallengeType::TlsAlpn01 {
            let digest = challenge.key_authorization().digest();
            challenges.insert_alpn(
                name,
                alpn_certificate(&challenge.identifier().to_string(), digest.as_ref())?,
            );
        } else {
            challenges.insert(
                challenge.token.clone(),
                challenge.key_authorization().as_str().to_owned(),
            );
        }
        challenge.set_ready().await?;
    }
    let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
    let status = order.poll_ready(&retries).await?;
    if status != OrderStatus::Ready {
        return Err(IssueError::Other(format!(
            "order is {status:?} after the challenges (does port 80 of {} reach --http-redirect-bind?)",
            settings.domains.join(", ")
        )));
    }
    let key = rcgen::KeyPair::generate().map_err(|e| IssueError::Other(format!("key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(settings.domains.clone())
        .map_err(|e| IssueError::Other(format!("CSR: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| IssueError::Other(format!("CSR: {e}")))?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&retries).await?;

    let key_der = key.serialize_der();
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IssueError::Other(format!("the CA's certificate is not PEM: {e}")))?;
    let pair = CertifiedKey::from_der(
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.clone())),
        &provider(),
    )
    .map_err(|e| IssueError::Other(format!("the CA's certificate is not usable: {e}")))?;
    let (cert_path, key_path) = settings.cert_paths();
    // Key first: a crash between the two leaves an old certificate with a
    // new key, which the next start refuses (and re-issues), never serves.
    write_private(
        &key_path,
        super::pem_encode("PRIVATE KEY", &key_der).as_bytes(),
    )
    .map_err(|e| {
        IssueError::Other(format!(
            "cannot keep the key in {}: {e}",
            key_path.display()
        ))
    })?;
    write_private(&cert_path, chain_pem.as_bytes()).map_err(|e| {
        IssueError::Other(format!(
            "cannot keep the certificate in {}: {e}",
            cert_path.display()
        ))
    })?;
    Ok(pair)
}

/// The self-signed certificate of a TLS-ALPN-01 challenge (RFC 8737):
/// the name, and the key authorization's digest in a critical
/// acmeIdentifier extension.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<CertifiedKey, IssueError> {
    if digest.len() != 32 {
        return Err(IssueError::Other(
            "key authorization digest is not SHA-256".into(),
        ));
    }
    let key = rcgen::KeyPair::generate().map_err(|e| IssueError::Other(format!("key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| IssueError::Other(format!("challenge certificate: {e}")))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| IssueError::Other(format!("challenge certificate: {e}")))?;
    // Not `from_der`: its key check parses the certificate with webpki,
    // which refuses the critical acmeIdentifier extension. The key is the
    // one just made for it.
    let signing = provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .map_err(|e| IssueError::Other(format!("challenge certificate: {e}")))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// The ACME account: loaded from the data directory, or registered (and kept).
async fn account(settings: &AcmeSettings) -> Result<Account, IssueError> {
    let path = settings.dir.join("account.json");
    let http = ReqwestClient::new(settings.ca_cert.as_deref())?;
    if let Ok(json) = std::fs::read(&path) {
        match serde_json::from_slice::<AccountCredentials>(&json) {
            Ok(credentials) => {
                return Ok(Account::builder_with_http(Box::new(http))
                    .from_credentials(credentials)
                    .await?);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ACME account file unreadable: registering a new account");
            }
        }
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = Account::builder_with_http(Box::new(http))
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await?;
    let json =
        serde_json::to_vec(&credentials).map_err(|e| IssueError::Other(format!("account: {e}")))?;
    write_private(&path, &json).map_err(|e| {
        IssueError::Other(format!(
            "cannot keep the ACME account in {}: {e}",
            path.display()
        ))
    })?;
    tracing::info!(account = %account.id(), "ACME account registered");
    Ok(account)
}

/// Writes a file only its owner can read, atomically (write aside, rename).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let aside = path.with_extension("part");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&aside)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&aside, path)
}

/// instant-acme's HTTP client over the reqwest (rustls, system roots) VTP
/// already has, with `--acme-ca-cert` added.
struct ReqwestClient(reqwest::Client);

impl ReqwestClient {
    fn new(ca_cert: Option<&Path>) -> Result<Self, IssueError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("vtp/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_cert {
            let pem = std::fs::read(ca).map_err(|error| TlsError::Read {
                what: "ACME CA certificate",
                path: ca.to_path_buf(),
                error,
            })?;
            for root in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| IssueError::Other(format!("{}: {e}", ca.display())))?
            {
                builder = builder.add_root_certificate(root);
            }
        }
        builder
            .build()
            .map(ReqwestClient)
            .map_err(|e| IssueError::Other(format!("HTTP client: {e}")))
    }
}

impl HttpClient for ReqwestClient {
    fn request(
        &self,
        req: http::Request<instant_acme::BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let answer = answer.body(http_body_util::Full::new(bytes))?;
            Ok(BytesResponse::from(answer))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> CertifiedKey {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["class.example.org".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.self_signed(&key).unwrap();
        CertifiedKey::from_der(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            &provider(),
        )
        .unwrap()
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        // 90 days from 1 January 2030: due 60 days in, on 2 March.
        let cert = pair((2030, 1, 1), (2030, 4, 1));
        let day = |m: u8, d: u8| {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(rcgen::date_time_ymd(2030, m, d).unix_timestamp() as u64)
        };
        assert_eq!(until_renewal(&cert, day(3, 2)), Duration::ZERO);
        let early = until_renewal(&cert, day(1, 31));
        assert_eq!(early.as_secs() / 86_400, 30, "{early:?}");
        assert_eq!(until_renewal(&cert, day(1, 1)).as_secs() / 86_400, 60);
    }

    #[test]
    fn names_are_normalised_and_checked() {
        let dir = Path::new("/data");
        let s = AcmeSettings::new(
            &[
                "Class.Example.org.".into(),
                "class.example.org".into(),
                "b.example.org".into(),
            ],
            None,
            LETS_ENCRYPT,
            None,
            dir,
            ChallengeType::Http01,
        )
        .unwrap();
        assert_eq!(s.domains, ["class.example.org", "b.example.org"]);
        assert!(
            s.dir
                .to_string_lossy()
                .starts_with("/data/acme/acme-v02.api.letsencrypt.org-")
        );
        let (cert, key) = s.cert_paths();
        assert_ne!(cert, key);
        for bad in [
            "",
            "localhost",
            "192.0.2.33",
            "*.example.org",
            "a_b.example.org",
            "x.org:80",
        ] {
            let e = AcmeSettings::new(
                &[bad.into()],
                None,
                LETS_ENCRYPT,
                None,
                dir,
                ChallengeType::Http01,
            );
            assert!(e.is_err(), "{bad:?}");
        }
        // Another directory, another folder (staging and production accounts differ).
        let staging = AcmeSettings::new(
            &["class.example.org".into()],
            None,
            "https://acme-staging-v02.api.letsencrypt.org/directory",
            None,
            dir,
            ChallengeType::Http01,
        )
        .unwrap();
        assert_ne!(staging.dir, s.dir);
    }
}
