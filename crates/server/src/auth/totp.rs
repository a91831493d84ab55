//! Time-based one-time passwords (RFC 6238: HOTP of RFC 4226 over 30 s
//! steps, HMAC-SHA1, 6 digits — what every authenticator app reads from an
//! `otpauth://totp/` URI), recovery codes, and the QR code of the URI.
//!
//! Written here on the HMAC-SHA1 and base32 crates already in the tree
//! (the TURN credentials use the same HMAC): RFC 6238 is one HMAC and a
//! truncation, checked against the RFC's own test vectors below, while
//! `totp-rs` 6 would bring second copies of `hmac`, `sha1`, `sha2` and
//! `digest` (it is on their next major versions) plus `base32` and
//! `constant_time_eq`. The QR code is Nayuki's `qrcodegen` (no
//! dependencies), drawn as SVG.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::Secret;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps either side of now that still count (clock drift, typing time).
const WINDOW: i64 = 1;
/// Recovery codes made at each enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A new secret: 160 random bits (RFC 4226's recommendation for SHA-1),
/// base32 without padding as apps take it.
pub fn new_secret() -> Secret {
    let bytes: [u8; 20] = rand::random();
    Secret::new(BASE32_NOPAD.encode(&bytes))
}

/// The HOTP value of `secret` (raw bytes) at `counter`.
fn hotp(key: &[u8], counter: u64) -> u32 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 10u32.pow(DIGITS as u32)
}

/// The code of `secret` (base32) for the time step `step`.
pub fn code_at(secret: &Secret, step: u64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.expose().as_bytes()).ok()?;
    Some(format!("{:0width$}", hotp(&key, step), width = DIGITS))
}

/// The time step of a Unix time.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The step (within the window around `now_step`) whose code `code` is,
/// if any. Every candidate is computed and compared without an early
/// exit on the first differing digit.
pub fn matching_step(secret: &Secret, code: &str, now_step: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = BASE32_NOPAD.decode(secret.expose().as_bytes()).ok()?;
    let mut found = None;
    for delta in -WINDOW..=WINDOW {
        let Some(step) = now_step.checked_add_signed(delta) else {
            continue;
        };
        let expected = format!("{:0width$}", hotp(&key, step), width = DIGITS);
        let same = expected
            .bytes()
            .zip(code.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/` URI an authenticator app reads (Google
/// Authenticator's key URI format).
pub fn otpauth_uri(secret: &Secret, issuer: &str, account: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let issuer_enc = utf8_percent_encode(issuer, NON_ALPHANUMERIC);
    let account_enc = utf8_percent_encode(account, NON_ALPHANUMERIC);
    format!(
        "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.expose()
    )
}

/// `text` as a QR code in SVG (black modules on white, with the quiet
/// zone), or `None` if it does not fit in a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

/// Ten new recovery codes, `xxxxx-xxxxx` in lower-case base32 (50 random
/// bits each), shown once.
pub fn new_recovery_codes() -> Vec<Secret> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 10] = rand::random();
            let text = BASE32_NOPAD.encode(&bytes).to_lowercase();
            Secret::new(format!("{}-{}", &text[..5], &text[5..10]))
        })
        .collect()
}

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn is_recovery_code(input: &str) -> bool {
    normalise_recovery_code(input).len() == 10
}

fn normalise_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What the store keeps of a recovery code: SHA-256 of its normalised
/// form (case, spaces and dashes do not matter), like refresh tokens.
pub fn hash_recovery_code(input: &str) -> String {
    super::tokens::hash_refresh_token(&normalise_recovery_code(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the secret is "12345678901234567890"),
    /// truncated to 6 digits as apps show them.
    #[test]
    fn rfc_6238_vectors() {
        let secret = Secret::new(BASE32_NOPAD.encode(b"12345678901234567890"));
        for (time, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(&secret, step_of(time)).unwrap(), code, "{time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = new_secret();
        let now = 1_000_000;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(now));
        assert_eq!(matching_step(&secret, &code, now + 1), Some(now));
        assert_eq!(matching_step(&secret, &code, now - 1), Some(now));
        assert_eq!(matching_step(&secret, &code, now + 2), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn recovery_codes_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let code = codes[0].expose();
        assert!(is_recovery_code(code));
        assert_eq!(
            hash_recovery_code(code),
            hash_recovery_code(&code.to_uppercase().replace('-', " "))
        );
        assert!(!is_recovery_code("123456"));
    }

    #[test]
    fn uri_and_qr() {
        let secret = Secret::new("JBSWY3DPEHPK3PXP");
        let uri = otpauth_uri(&secret, "VTP", "ann@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/VTP:ann%40example%2Eorg?secret=JBSWY3DPEHPK3PXP&issuer=VTP&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }
}
