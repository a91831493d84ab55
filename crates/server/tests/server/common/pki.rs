//! Certificates for the HTTPS suites: a test CA made with rcgen, leaf
//! certificates for `localhost` and 127.0.0.1, files replaced the way
//! certificate tools do, and clients that trust only the test CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use vtp_store::testing::TempDir;

/// A test CA that issues leaf certificates for `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key, as PEM and as the DER a client sees.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "VTP test CA");
        let ca = params.self_signed(&key).unwrap().der().clone();
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf(&self, serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("vtp test leaf {serial}"));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
            der: cert.der().clone(),
        }
    }

    /// An HTTPS client that trusts only this CA.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_der(&self.ca).unwrap())
            .build()
            .unwrap()
    }

    /// A TLS connection to `addr` that checks the server against this CA
    /// (name `localhost`), offering HTTP/1.1 as browsers do.
    pub async fn connect(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(vtp_server::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }

    /// The leaf certificate a new connection is served.
    pub async fn served(&self, addr: SocketAddr) -> CertificateDer<'static> {
        let tls = self.connect(addr).await.expect("TLS handshake");
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        conn.peer_certificates().expect("a certificate")[0]
            .clone()
            .into_owned()
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Replaces a file the way certificate tools do: write aside, rename over.
pub fn replace(path: &Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// The certificate files a server was started with.
pub struct CertFiles {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    pub fn new(leaf: &Leaf) -> CertFiles {
        let dir = TempDir::new("vtp-tls-certs").unwrap();
        let files = CertFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        files.install(leaf);
        files
    }

    pub fn install(&self, leaf: &Leaf) {
        replace(&self.key, &leaf.key_pem);
        replace(&self.cert, &leaf.cert_pem);
    }
}
