//! Password hashing with argon2id. Hashing is deliberately slow (tens of
//! milliseconds), so it runs on the blocking pool, never on a runtime worker.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};

use super::AuthError;

/// Shortest and longest accepted passwords (in characters; the upper bound
/// keeps hashing cost bounded).
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The lowest zxcvbn score accepted (0–4): 3 is "safely unguessable"
/// (about 10^10 guesses), the estimator's own advice for a password that
/// must stand up to an offline attack on a leaked hash.
pub const MIN_PASSWORD_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Length bounds, then strength: zxcvbn estimates how many guesses the
/// password takes (dictionaries, keyboard walks, dates, repeats, and the
/// account's own e-mail and name given in `user_inputs`). A refusal says
/// why and what would help, in the estimator's words.
pub fn validate_new_password(password: &str, user_inputs: &[&str]) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooLong);
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if estimate.score() >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    let mut why = String::from("too easy to guess");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            why.push_str(&format!(": {warning}"));
        }
        for suggestion in feedback.suggestions() {
            why.push_str(&format!(" {suggestion}"));
        }
    }
    if !why.ends_with('.') {
        why.push('.');
    }
    why.push_str(" A few unrelated words together make a strong password.");
    Err(AuthError::PasswordWeak(why))
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    /// A real hash of a random password: verifying against it when the account
    /// does not exist makes "no such user" take as long as "wrong password".
    dummy_hash: String,
}

impl Passwords {
    pub async fn new() -> Result<Passwords, AuthError> {
        let random: String = (0..24)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        Ok(Passwords {
            dummy_hash: hash_password(random).await?,
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        hash_password(password.to_string()).await
    }

    /// Whether `password` matches `stored`; `None` (unknown account) costs the
    /// same time and always answers false.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(h) => (h.to_string(), true),
            None => (self.dummy_hash.clone(), false),
        };
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return false;
        }
        let password = password.to_string();
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        matched && real
    }
}

/// An argon2id PHC string for `password`, computed on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| AuthError::Hashing(format!("the hashing task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let p = Passwords::new().await.unwrap();
        let h1 = p.hash("correct horse").await.unwrap();
        let h2 = p.hash("correct horse").await.unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2, "salted");
        assert!(p.verify("correct horse", Some(&h1)).await);
        assert!(!p.verify("wrong horse", Some(&h1)).await);
        assert!(!p.verify("correct horse", None).await);
        assert!(!p.verify("x", Some("not a hash")).await);
    }

    #[test]
    fn password_rules() {
        assert!(matches!(
            validate_new_password("short", &[]),
            Err(AuthError::PasswordTooShort)
        ));
        assert!(validate_new_password("correct horse battery", &[]).is_ok());
        assert!(matches!(
            validate_new_password(&"x".repeat(257), &[]),
            Err(AuthError::PasswordTooLong)
        ));
        for weak in ["12345678", "password1", "qwertyuiop", "aaaaaaaaaaaa"] {
            let Err(AuthError::PasswordWeak(why)) = validate_new_password(weak, &[]) else {
                panic!("{weak} accepted");
            };
            assert!(why.starts_with("too easy to guess"), "{why}");
        }
        assert!(
            validate_new_password(
                "annabel.lee@example.org",
                &["annabel.lee@example.org", "Annabel Lee"]
            )
            .is_err(),
            "the account's own name and e-mail count against it"
        );
    }
}
