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

pub fn validate_new_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooShort);
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooLong);
    }
    Ok(())
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
            validate_new_password("short"),
            Err(AuthError::PasswordTooShort)
        ));
        assert!(validate_new_password("long enough").is_ok());
        assert!(matches!(
            validate_new_password(&"x".repeat(257)),
            Err(AuthError::PasswordTooLong)
        ));
    }
}
