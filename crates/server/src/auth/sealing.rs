//! Secrets the server must read back, sealed before they reach the store:
//! today the TOTP secrets (a code can only be checked with the secret
//! itself, so they cannot be hashed like passwords). A copy of the
//! database — a PostgreSQL dump, a `vtp backup` file sent to an off-site
//! store — then gives no one the second factors of its accounts.
//!
//! ChaCha20-Poly1305 from `ring` (already in the tree for TLS), a random
//! 96-bit nonce per value (few values are ever sealed, so random nonces are
//! safe), and the account id as associated data: a sealed value moved onto
//! another account's row does not open. The key is `VTP_SECRETS_KEY`, or one
//! made on first use and kept in `<data-dir>/secrets-key`; it is separate
//! from the token key so that rotating `VTP_JWT_SECRET` (which signs
//! everyone out) does not also lose every enrolment.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use uuid::Uuid;

use super::tokens::{KeySource, write_private};
use crate::config::Secret;

/// The file in the data directory that keeps a generated key.
pub const SECRETS_KEY_FILE: &str = "secrets-key";
/// What every sealed value starts with (the format's version).
pub const SEALED_PREFIX: &str = "v1.";
/// Shortest key material accepted (as for the token key).
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("VTP_SECRETS_KEY must be at least {MIN_KEY_BYTES} bytes long")]
    TooShort,
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} does not hold a base64 key of at least {MIN_KEY_BYTES} bytes")]
    Malformed { path: String },
    /// Not sealed, sealed with another key, for another account, or altered.
    #[error("a sealed secret does not open with this server's secrets key")]
    DoesNotOpen,
}

/// The key that seals and opens stored secrets.
pub struct Sealer {
    key: LessSafeKey,
    pub source: KeySource,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key", &"***")
            .field("source", &self.source)
            .finish()
    }
}

/// The HKDF salt: fixes the purpose of whatever key material is given.
const SALT: &[u8] = b"vtp sealed secrets v1";

impl Sealer {
    /// A sealer on `material` (any length from 32 bytes).
    pub fn new(material: &[u8], source: KeySource) -> Result<Sealer, SealError> {
        if material.len() < MIN_KEY_BYTES {
            return Err(SealError::TooShort);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(material);
        let okm = prk
            .expand(&[b"chacha20-poly1305"], &CHACHA20_POLY1305)
            .map_err(|_| SealError::TooShort)?;
        let key = UnboundKey::from(okm);
        Ok(Sealer {
            key: LessSafeKey::new(key),
            source,
        })
    }

    /// The configured key, or the one kept in the data directory (made on
    /// first use).
    pub fn load(configured: Option<&Secret>, data_dir: &Path) -> Result<Sealer, SealError> {
        if let Some(secret) = configured {
            return Sealer::new(secret.expose().as_bytes(), KeySource::Configured);
        }
        let path = data_dir.join(SECRETS_KEY_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let material = STANDARD
                    .decode(text.trim())
                    .ok()
                    .filter(|k| k.len() >= MIN_KEY_BYTES)
                    .ok_or(SealError::Malformed { path: shown })?;
                Sealer::new(&material, KeySource::LoadedFromDataDir)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let material: [u8; 32] = rand::random();
                write_private(&path, STANDARD.encode(material).as_bytes()).map_err(|source| {
                    SealError::Io {
                        path: shown,
                        source,
                    }
                })?;
                Sealer::new(&material, KeySource::Generated)
            }
            Err(source) => Err(SealError::Io {
                path: shown,
                source,
            }),
        }
    }

    /// `plain` sealed for `account`: `v1.` and base64url of nonce,
    /// ciphertext and tag.
    pub fn seal(&self, account: Uuid, plain: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buffer = plain.as_bytes().to_vec();
        // Sealing fails only for inputs of about 256 GiB.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(account.as_bytes()),
                &mut buffer,
            )
            .is_err()
        {
            buffer.clear();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The secret `sealed` holds, if it was sealed for `account` with this key.
    pub fn open(&self, account: Uuid, sealed: &str) -> Result<Secret, SealError> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SealError::DoesNotOpen)?;
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(account.as_bytes()), &mut buffer)
            .map_err(|_| SealError::DoesNotOpen)?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError::DoesNotOpen)?;
        Ok(Secret::new(text.to_string()))
    }
}

/// Seals every TOTP secret still stored in the clear (written before
/// sealing existed); run at start, before the server answers. Returns how
/// many were sealed.
pub async fn seal_stored_totp_secrets(
    store: &vtp_store::Store,
    sealer: &Sealer,
) -> Result<usize, vtp_store::StoreError> {
    let mut sealed = 0;
    for (account, plain) in store.totp_secrets_without_prefix(SEALED_PREFIX).await? {
        let new = sealer.seal(account, &plain);
        if store.replace_totp_secret(account, &plain, &new).await? {
            sealed += 1;
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(material: &[u8]) -> Sealer {
        Sealer::new(material, KeySource::Configured).expect("a long enough key")
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account_only() {
        let s = sealer(&[7; 32]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = s.seal(a, "JBSWY3DPEHPK3PXP");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(s.open(a, &sealed).unwrap().expose(), "JBSWY3DPEHPK3PXP");
        assert!(matches!(s.open(b, &sealed), Err(SealError::DoesNotOpen)));
        // A fresh nonce each time: the same secret never seals the same twice.
        assert_ne!(sealed, s.seal(a, "JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn another_key_altered_bytes_and_plain_text_do_not_open() {
        let account = Uuid::new_v4();
        let sealed = sealer(&[7; 32]).seal(account, "JBSWY3DPEHPK3PXP");
        assert!(sealer(&[8; 32]).open(account, &sealed).is_err());
        let s = sealer(&[7; 32]);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            s.open(account, std::str::from_utf8(&altered).unwrap())
                .is_err()
        );
        for junk in ["JBSWY3DPEHPK3PXP", "v1.", "v1.!!!", "v1.AAAA", ""] {
            assert!(s.open(account, junk).is_err(), "{junk:?} opened");
        }
    }

    #[test]
    fn short_keys_are_refused_and_the_key_stays_out_of_debug() {
        assert!(matches!(
            Sealer::new(&[1; 31], KeySource::Configured),
            Err(SealError::TooShort)
        ));
        let shown = format!("{:?}", sealer(&[9; 40]));
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn a_generated_key_is_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(first.source, KeySource::Generated);
        let account = Uuid::new_v4();
        let sealed = first.seal(account, "secret");
        let again = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(again.source, KeySource::LoadedFromDataDir);
        assert_eq!(again.open(account, &sealed).unwrap().expose(), "secret");
        std::fs::write(dir.path().join(SECRETS_KEY_FILE), "c2hvcnQ=").unwrap();
        assert!(matches!(
            Sealer::load(None, dir.path()),
            Err(SealError::Malformed { .. })
        ));
    }
}
