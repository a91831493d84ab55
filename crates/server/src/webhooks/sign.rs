//! The signature of a delivery: header `VTP-Signature: t=<unix seconds>,v1=<hex>`
//! where the hex is HMAC-SHA256, keyed with the endpoint's secret, of
//! `<t>.<body>`. The timestamp is signed with the body, so a receiver that
//! refuses old timestamps (five minutes) and remembers the `id`s it has seen
//! for that long cannot be replayed to; docs/operations.md has a receiver.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "vtp-signature";
/// How far a receiver should let the timestamp be from its clock.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &str, timestamp: i64, body: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!(
        "t={timestamp},v1={}",
        data_encoding::HEXLOWER.encode(&digest)
    )
}

/// What a receiver does: `true` if `header` signs `body` with `secret` and
/// its timestamp is within [`TOLERANCE_SECS`] of `now`. In constant time.
pub fn verify(secret: &str, header: &str, body: &str, now: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return false;
    }
    signatures.into_iter().any(|hex| {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .is_ok_and(|given| mac(secret, timestamp, body).verify_slice(&given).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_tampering_does_not() {
        let header = signature("whsec_k", 1_700_000_000, r#"{"id":1}"#);
        assert!(verify("whsec_k", &header, r#"{"id":1}"#, 1_700_000_010));
        assert!(!verify("whsec_k", &header, r#"{"id":2}"#, 1_700_000_010));
        assert!(!verify("other", &header, r#"{"id":1}"#, 1_700_000_010));
        // Replayed later than the tolerance.
        assert!(!verify(
            "whsec_k",
            &header,
            r#"{"id":1}"#,
            1_700_000_000 + TOLERANCE_SECS + 1
        ));
        assert!(!verify("whsec_k", "v1=00", r#"{"id":1}"#, 1_700_000_000));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("secret", "1.{}"), computed independently with openssl:
        // printf '1.{}' | openssl dgst -sha256 -hmac secret
        let header = signature("secret", 1, "{}");
        assert_eq!(
            header,
            "t=1,v1=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
    }
}
