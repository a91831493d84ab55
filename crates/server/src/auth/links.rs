//! Short-lived signed links to files (a recording's track, an export's
//! MP4), so that a `<video src>` or a shared link can fetch them without
//! an `Authorization` header.
//!
//! A link names its resource, the user it was issued to, and its expiry in
//! the query (`u`, `exp`); `sig` is HMAC-SHA256 over those and over the
//! user's token epoch, under a key derived from the server's signing key
//! (so one secret to keep, but a link is never an access token and an
//! access token never a link). Signing out everywhere bumps the epoch and
//! voids the user's links; serving a link checks the user again (exists,
//! not disabled, may still see the recording), so a link never outlives
//! its holder's access.
//!
//! The signature is a credential: it must never be logged (the HTTP trace
//! layer logs paths without their query for this reason).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::tokens::TokenClock;

/// How long a link stays good: long enough to watch a long class (the
/// player asks for a new link when one runs out), short enough that a
/// copied link soon stops working.
pub const LINK_TTL_SECS: i64 = 60 * 60;

/// What sets this key apart from the access tokens' key.
const KEY_LABEL: &[u8] = b"vtp file links v1";

/// Signs and checks file links.
#[derive(Clone)]
pub struct FileLinks {
    /// HMAC keyed with the link key, cloned for each signature.
    keyed: Hmac<Sha256>,
    clock: TokenClock,
}

impl std::fmt::Debug for FileLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLinks").field("key", &"***").finish()
    }
}

/// What a link's query carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkParams {
    pub user: Uuid,
    pub expires: i64,
    pub signature: String,
}

/// Why a link is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Altered, made for another file or user, or voided by signing out.
    Invalid,
    Expired,
}

impl FileLinks {
    /// `secret`: the server's signing key; the link key is derived from
    /// it as HKDF-Extract does (HMAC keyed by the label, over the secret).
    pub fn new(secret: &[u8], clock: TokenClock) -> Self {
        let mut extract = block_keyed(KEY_LABEL);
        extract.update(secret);
        let keyed = block_keyed(&extract.finalize().into_bytes());
        FileLinks { keyed, clock }
    }

    fn mac(&self, resource: &str, user: Uuid, epoch: i64, expires: i64) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        // Newline-separated: none of the parts can hold one.
        mac.update(format!("{resource}\n{user}\n{epoch}\n{expires}").as_bytes());
        mac
    }

    /// A link's query for `resource` (a stable name of the file, e.g.
    /// `recording/<id>/file/<name>`) issued now to `user` at `epoch`.
    pub fn sign(&self, resource: &str, user: Uuid, epoch: i64) -> (String, DateTime<Utc>) {
        let expires = self.clock.now().timestamp() + LINK_TTL_SECS;
        let sig = self.signature(resource, user, epoch, expires);
        let at = DateTime::from_timestamp(expires, 0).unwrap_or_else(Utc::now);
        (format!("u={user}&exp={expires}&sig={sig}"), at)
    }

    /// The `sig` of a link for `resource`, `user` at `epoch`, good until
    /// `expires` (Unix seconds): for links that live longer than
    /// [`LINK_TTL_SECS`] and are revoked by their own row (calendar feeds).
    pub fn signature(&self, resource: &str, user: Uuid, epoch: i64, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(
            self.mac(resource, user, epoch, expires)
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `link` is good for `resource` and a user now at `epoch`
    /// (compared in constant time). The expiry is checked after the
    /// signature, so an altered expiry reads as altered.
    pub fn check(&self, resource: &str, link: &LinkParams, epoch: i64) -> Result<(), LinkError> {
        let sig = URL_SAFE_NO_PAD
            .decode(link.signature.as_bytes())
            .map_err(|_| LinkError::Invalid)?;
        self.mac(resource, link.user, epoch, link.expires)
            .verify_slice(&sig)
            .map_err(|_| LinkError::Invalid)?;
        if link.expires < self.clock.now().timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// HMAC keyed by `key` (at most one SHA-256 block, 64 bytes, which is
/// all this module uses), zero-padded to the block as HMAC itself pads a
/// short key: the same MAC as `new_from_slice`, without its error case.
fn block_keyed(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    let n = key.len().min(block.len());
    block[..n].copy_from_slice(&key[..n]);
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> LinkParams {
        let mut u = None;
        let mut exp = None;
        let mut sig = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "u" => u = Some(v.parse().unwrap()),
                "exp" => exp = Some(v.parse().unwrap()),
                "sig" => sig = Some(v.to_string()),
                _ => panic!("{k}"),
            }
        }
        LinkParams {
            user: u.unwrap(),
            expires: exp.unwrap(),
            signature: sig.unwrap(),
        }
    }

    #[test]
    fn block_keyed_is_hmac() {
        for key in [&b"k"[..], &[9; 32], &[1; 64]] {
            let mut a = block_keyed(key);
            let mut b = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            a.update(b"message");
            b.update(b"message");
            assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
        }
    }

    #[test]
    fn links_are_bound_to_file_user_epoch_and_time() {
        let clock = TokenClock::default();
        let links = FileLinks::new(&[5; 32], clock.clone());
        let user = Uuid::new_v4();
        let (query, _) = links.sign("recording/1/file/a.webm", user, 2);
        let p = params(&query);
        assert_eq!(links.check("recording/1/file/a.webm", &p, 2), Ok(()));
        let invalid = Err(LinkError::Invalid);
        assert_eq!(links.check("recording/1/file/b.webm", &p, 2), invalid);
        assert_eq!(links.check("recording/1/file/a.webm", &p, 3), invalid);
        let other_user = LinkParams {
            user: Uuid::new_v4(),
            ..p.clone()
        };
        assert_eq!(
            links.check("recording/1/file/a.webm", &other_user, 2),
            invalid
        );
        let later = LinkParams {
            expires: p.expires + 1000,
            ..p.clone()
        };
        assert_eq!(links.check("recording/1/file/a.webm", &later, 2), invalid);
        let garbled = LinkParams {
            signature: "!!".into(),
            ..p.clone()
        };
        assert_eq!(links.check("recording/1/file/a.webm", &garbled, 2), invalid);
        let other_key = FileLinks::new(&[6; 32], clock.clone());
        assert_eq!(other_key.check("recording/1/file/a.webm", &p, 2), invalid);
        clock.advance(std::time::Duration::from_secs(LINK_TTL_SECS as u64 + 1));
        assert_eq!(
            links.check("recording/1/file/a.webm", &p, 2),
            Err(LinkError::Expired)
        );
    }
}
