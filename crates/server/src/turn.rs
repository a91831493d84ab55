//! TURN relays for clients whose network lets no UDP (or nothing but
//! TCP 443) through: the servers each `create-transport` answer names, with
//! short-lived credentials in the "TURN REST API" scheme that coturn
//! implements (`use-auth-secret` + `static-auth-secret`).
//!
//! The scheme: the username is `<expiry as Unix seconds>:<peer id>` and the
//! password is base64(HMAC-SHA1(shared secret, username)). The TURN server
//! recomputes the password from the username with the same secret and
//! refuses a username whose expiry has passed, so VTP and coturn share
//! nothing but the secret and no per-user state is stored anywhere. A
//! leaked credential is good for one peer name until its expiry only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

use crate::config::Secret;

/// Longest TURN URL accepted in the configuration.
const MAX_URL_LEN: usize = 512;

/// The TURN servers a client may relay through, and the secret they share
/// with VTP.
#[derive(Clone, Debug)]
pub struct TurnConfig {
    urls: Vec<String>,
    secret: Secret,
    ttl: Duration,
}

/// One entry of an `RTCConfiguration.iceServers` list, as
/// `mediasoup-client`'s `createSendTransport({ iceServers })` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// A TURN configuration that cannot work, said in words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnConfigError {
    #[error(
        "--turn-url {0:?} is not a TURN URL: expected turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT][?transport=tcp]"
    )]
    BadUrl(String),
    #[error("--turn-url needs --turn-secret (the coturn static-auth-secret)")]
    MissingSecret,
    #[error("--turn-secret without any --turn-url")]
    MissingUrl,
    #[error("--turn-secret is empty")]
    EmptySecret,
    #[error("--turn-credential-ttl must be between 1 minute and 7 days")]
    BadTtl,
}

impl TurnConfig {
    /// `None` when no TURN server is configured; an error when the settings
    /// contradict each other or a URL is malformed.
    pub fn from_settings(
        urls: &[String],
        secret: Option<&Secret>,
        ttl: Duration,
    ) -> Result<Option<TurnConfig>, TurnConfigError> {
        match (urls.is_empty(), secret) {
            (true, None) => return Ok(None),
            (true, Some(_)) => return Err(TurnConfigError::MissingUrl),
            (false, None) => return Err(TurnConfigError::MissingSecret),
            (false, Some(s)) if s.expose().is_empty() => return Err(TurnConfigError::EmptySecret),
            (false, Some(_)) => {}
        }
        if !(Duration::from_secs(60)..=Duration::from_secs(7 * 86_400)).contains(&ttl) {
            return Err(TurnConfigError::BadTtl);
        }
        for url in urls {
            check_url(url)?;
        }
        Ok(Some(TurnConfig {
            urls: urls.to_vec(),
            secret: secret.cloned().ok_or(TurnConfigError::MissingSecret)?,
            ttl,
        }))
    }

    /// The configured URLs, for the start-up line and `vtp doctor`.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The `iceServers` entry for `peer_id`, valid until `now + ttl`.
    pub fn ice_server(&self, peer_id: &str, now: SystemTime) -> IceServer {
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let username = format!("{expiry}:{peer_id}");
        IceServer {
            urls: self.urls.clone(),
            credential: rest_api_password(self.secret.expose(), &username),
            username,
        }
    }
}

/// base64(HMAC-SHA1(secret, username)): what coturn derives for a username
/// under `use-auth-secret`.
pub fn rest_api_password(secret: &str, username: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// RFC 7065's shape, loosely: a scheme, a host (name, IPv4 or bracketed
/// IPv6), an optional port and an optional `transport` of udp or tcp
/// (`turns:` only over tcp). Enough to catch typos at start rather than in
/// every student's browser.
fn check_url(url: &str) -> Result<(), TurnConfigError> {
    let bad = || TurnConfigError::BadUrl(url.to_owned());
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (secure, rest) = if let Some(rest) = url.strip_prefix("turns:") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("turn:") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    match query {
        None => {}
        Some("transport=tcp") => {}
        Some("transport=udp") if !secure => {}
        Some(_) => return Err(bad()),
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(urls: &[&str]) -> Result<Option<TurnConfig>, TurnConfigError> {
        let urls: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
        TurnConfig::from_settings(
            &urls,
            Some(&Secret::new("north")),
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn credentials_follow_the_rest_api_scheme() {
        let turn = config(&["turn:turn.example.org:3478?transport=udp"])
            .unwrap()
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let server = turn.ice_server("peer-1", now);
        assert_eq!(server.username, "1700003600:peer-1");
        // Computed independently: printf '1700003600:peer-1' |
        //   openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(server.credential, "NvjBQ02+UKUcIZyEMLqm6ysgGjw=");
        assert_eq!(server.urls, ["turn:turn.example.org:3478?transport=udp"]);
    }

    #[test]
    fn secrets_do_not_print() {
        let turn = config(&["turn:127.0.0.1"]).unwrap().unwrap();
        assert!(!format!("{turn:?}").contains("north"));
    }

    #[test]
    fn settings_are_checked() {
        assert!(matches!(
            TurnConfig::from_settings(&[], None, Duration::from_secs(60)),
            Ok(None)
        ));
        assert_eq!(
            TurnConfig::from_settings(&["turn:a".into()], None, Duration::from_secs(60))
                .unwrap_err(),
            TurnConfigError::MissingSecret
        );
        assert_eq!(
            TurnConfig::from_settings(&[], Some(&Secret::new("x")), Duration::from_secs(60))
                .unwrap_err(),
            TurnConfigError::MissingUrl
        );
        assert_eq!(
            TurnConfig::from_settings(
                &["turn:a".into()],
                Some(&Secret::new("x")),
                Duration::from_secs(5)
            )
            .unwrap_err(),
            TurnConfigError::BadTtl
        );
        for good in [
            "turn:turn.example.org",
            "turn:192.0.2.7:3478?transport=tcp",
            "turns:turn.example.org:443?transport=tcp",
            "turn:[2001:db8::1]:3478",
        ] {
            assert!(config(&[good]).is_ok(), "{good}");
        }
        for bad in [
            "stun:turn.example.org",
            "turn:",
            "turns:host?transport=udp",
            "turn:host:0",
            "turn:host:99999",
            "turn:host?transport=sctp",
            "turn:bad host",
            "turn:[::1",
            "http://host",
        ] {
            assert!(
                matches!(config(&[bad]), Err(TurnConfigError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
