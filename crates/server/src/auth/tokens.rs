//! Access tokens (JWT, HS256) and refresh tokens (opaque random strings,
//! stored only as SHA-256 hashes).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vtp_store::{Role, User};

use super::links::FileLinks;
use crate::config::Secret;

/// Name of the file in the data directory that keeps a generated signing key.
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// Shortest accepted configured signing key (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// What an access token says. Short names keep tokens small.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Platform role at issue time (informative; the stored role decides).
    pub role: Role,
    /// The user's token epoch at issue time; a bumped epoch voids the token.
    pub ep: i64,
    pub iat: i64,
    pub exp: i64,
    /// What a token that is not a full access token may do; absent on
    /// access tokens (and on every token issued before scopes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<Scope>,
}

/// The narrower uses of a signed token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// The password was right; only the second factor may follow.
    #[serde(rename = "2fa")]
    SecondFactor,
    /// Signed in, but the role requires two-factor sign-in and the account
    /// has none yet: only enrolment (and reading oneself, signing out).
    #[serde(rename = "enrol")]
    Enrol,
    /// Signed in with a temporary password an admin set: only changing it
    /// (and reading oneself, signing out).
    #[serde(rename = "pwchange")]
    PasswordChange,
}

/// Where the signing key came from, for the start-up summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    Generated,
    LoadedFromDataDir,
}

/// The time access tokens are checked against: the system's, unless a
/// test has moved it forward with [`TokenClock::advance`] to see tokens
/// expire without waiting for them. Clones share the one clock, so the
/// clock of a running server's issuer moves with the test's copy.
#[derive(Clone, Debug, Default)]
pub struct TokenClock {
    ahead_secs: Arc<AtomicI64>,
}

impl TokenClock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.ahead_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward by `by`, rounded up to
    /// whole seconds (the granularity of a token's expiry).
    pub fn advance(&self, by: Duration) {
        let secs = by.as_secs() + u64::from(by.subsec_nanos() > 0);
        self.ahead_secs.fetch_add(
            i64::try_from(secs).unwrap_or(i64::MAX / 2),
            Ordering::Relaxed,
        );
    }
}

/// Issues and checks tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// What expiry is checked against (jsonwebtoken would read the system's).
    clock: TokenClock,
    /// Signed links to files, under a key derived from the same secret
    /// and checked against the same clock.
    pub links: FileLinks,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub key_source: KeySource,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &"***")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("key_source", &self.key_source)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("VTP_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")]
    TooShort,
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} does not hold a base64 key of at least {MIN_SECRET_BYTES} bytes")]
    Malformed { path: String },
}

impl TokenIssuer {
    pub fn new(
        secret: &[u8],
        access_ttl: Duration,
        refresh_ttl: Duration,
        key_source: KeySource,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // Expiry is checked in `verify_access`, against `clock`.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        let clock = TokenClock::default();
        TokenIssuer {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            links: FileLinks::new(secret, clock.clone()),
            clock,
            access_ttl,
            refresh_ttl,
            key_source,
        }
    }

    /// The configured key, or the one kept in the data directory (made on first use).
    pub fn load_key(
        configured: Option<&Secret>,
        data_dir: &Path,
    ) -> Result<(Vec<u8>, KeySource), KeyError> {
        if let Some(secret) = configured {
            let bytes = secret.expose().as_bytes().to_vec();
            if bytes.len() < MIN_SECRET_BYTES {
                return Err(KeyError::TooShort);
            }
            return Ok((bytes, KeySource::Configured));
        }
        let path = data_dir.join(JWT_SECRET_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = STANDARD
                    .decode(text.trim())
                    .ok()
                    .filter(|k| k.len() >= MIN_SECRET_BYTES)
                    .ok_or(KeyError::Malformed { path: shown })?;
                Ok((key, KeySource::LoadedFromDataDir))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 64] = rand::random();
                write_private(&path, STANDARD.encode(key).as_bytes()).map_err(|source| {
                    KeyError::Io {
                        path: shown,
                        source,
                    }
                })?;
                Ok((key.to_vec(), KeySource::Generated))
            }
            Err(source) => Err(KeyError::Io {
                path: shown,
                source,
            }),
        }
    }

    /// A signed access token for `user`, valid for `access_ttl` from `now`.
    pub fn issue_access(
        &self,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.issue_scoped(user, now, None, self.access_ttl)
    }

    /// A signed token for `user` limited to `scope` (`None`: a full access
    /// token), valid for `ttl` from `now`.
    pub fn issue_scoped(
        &self,
        user: &User,
        now: DateTime<Utc>,
        scope: Option<Scope>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user.id,
            role: user.role,
            ep: user.token_epoch,
            iat: now.timestamp(),
            exp: now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            scp: scope,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a token whose signature, algorithm and expiry are
    /// valid. Like jsonwebtoken without leeway, a token is good up to and
    /// including its `exp` second.
    pub fn verify_access(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
            .filter(|claims| claims.exp >= self.clock.now().timestamp())
    }

    /// The clock expiry is checked against (shared with every clone).
    pub fn clock(&self) -> &TokenClock {
        &self.clock
    }

    pub fn refresh_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.refresh_ttl).unwrap_or(chrono::Duration::days(30))
    }
}

/// A new opaque refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The bearer token of a request's headers, if it has one (the API's
/// tokens, and the secrets of `/metrics` and the SFU control API).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        let now = Utc::now();
        User {
            id: Uuid::new_v4(),
            email: "a@b.c".into(),
            display_name: "A".into(),
            role: Role::Student,
            disabled: false,
            token_epoch: 3,
            two_factor: false,
            password_must_change: false,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let issuer = TokenIssuer::new(
            &[7; 32],
            Duration::from_secs(60),
            Duration::from_secs(600),
            KeySource::Configured,
        );
        let u = user();
        let token = issuer.issue_access(&u, Utc::now()).unwrap();
        let claims = issuer.verify_access(&token).unwrap();
        assert_eq!((claims.sub, claims.ep), (u.id, 3));
        let old = issuer
            .issue_access(&u, Utc::now() - chrono::Duration::seconds(61))
            .unwrap();
        assert!(issuer.verify_access(&old).is_none(), "expired");
        // The same through the clock, which clones share: still good a
        // second before its end (a second boundary may pass meanwhile),
        // expired a second after.
        let clone = issuer.clone();
        clone.clock().advance(Duration::from_secs(59));
        assert!(issuer.verify_access(&token).is_some(), "still good");
        clone.clock().advance(Duration::from_millis(1500));
        assert!(
            issuer.verify_access(&token).is_none(),
            "expired by the clock"
        );
        let other = TokenIssuer::new(
            &[8; 32],
            Duration::from_secs(60),
            Duration::from_secs(600),
            KeySource::Configured,
        );
        assert!(other.verify_access(&token).is_none(), "wrong key");
    }

    #[test]
    fn generated_key_is_kept() {
        let dir = std::env::temp_dir().join(format!("vtp-key-{}", Uuid::new_v4()));
        let (k1, s1) = TokenIssuer::load_key(None, &dir).unwrap();
        let (k2, s2) = TokenIssuer::load_key(None, &dir).unwrap();
        assert_eq!(
            (k1.len(), s1, s2),
            (64, KeySource::Generated, KeySource::LoadedFromDataDir)
        );
        assert_eq!(k1, k2);
        assert!(matches!(
            TokenIssuer::load_key(Some(&Secret::new("short")), &dir),
            Err(KeyError::TooShort)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
    }
}
