//! Passwords: the strength rule, and argon2id hashing kept off the async executor.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::{Error, FieldError};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Long enough for any passphrase, short enough to bound hashing and strength estimation.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// zxcvbn's 0–4 scale: 3 is "safely unguessable: moderate protection from offline attacks".
const MIN_STRENGTH: u8 = 3;

/// A password as typed at login: only its length is checked, so that a user whose password
/// predates a stricter rule can still sign in.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(FieldError::new(field, "is required"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A password good enough to be set: long enough and hard to guess, also given the user's own
/// email and name.
#[derive(Debug, Clone)]
pub struct NewPassword(Password);

impl NewPassword {
    pub fn parse(field: &str, raw: &str, user_inputs: &[&str]) -> Result<Self, FieldError> {
        let password = Password::parse(field, raw)?;
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        let estimate = zxcvbn::zxcvbn(raw, user_inputs);
        if u8::from(estimate.score()) < MIN_STRENGTH {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning().map(|w| w.to_string()))
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "add more words or characters that are hard to guess".into());
            return Err(FieldError::new(field, format!("is too easy to guess: {hint}")));
        }
        Ok(Self(password))
    }

    pub fn as_password(&self) -> &Password {
        &self.0
    }

    /// Checks strength again now that the account it is for is known: a password built from
    /// the user's own email or name is easy to guess for anyone who knows them.
    pub fn ensure_unlike(&self, field: &str, user_inputs: &[&str]) -> Result<(), FieldError> {
        Self::parse(field, self.0.expose(), user_inputs).map(|_| ())
    }
}

/// Cost parameters; the default is OWASP's recommendation for argon2id (19 MiB, 2 passes).
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl HashCost {
    pub fn validate(&self) -> Result<(), String> {
        Params::new(self.memory_kib, self.iterations, 1, None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
        }
    }
}

/// Hashes and verifies on the blocking pool, at most `parallelism` at once, with at most
/// `max_waiting` more queued; past that callers get `Error::Busy` at once instead of piling up
/// memory and latency behind a burst of logins.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(cost: HashCost, parallelism: usize, max_waiting: usize) -> Result<Self, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None).map_err(|e| e.to_string())?;
        let parallelism = parallelism.max(1);
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            running: Arc::new(Semaphore::new(parallelism)),
            admitted: Arc::new(Semaphore::new(parallelism + max_waiting)),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let password = password.clone();
        self.run(move |argon2| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
        })
        .await
    }

    /// False for a wrong password and for a hash that cannot be read.
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, Error> {
        let password = password.clone();
        let hash = hash.to_owned();
        self.run(move |argon2| {
            Ok(PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2
                        .verify_password(password.expose().as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false))
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2<'static>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Busy)?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("hasher closed".into()))?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || job(&argon2))
            .await
            .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_rule_rejects_guessable_passwords() {
        assert!(NewPassword::parse("password", "short", &[]).is_err());
        assert!(NewPassword::parse("password", "password123", &[]).is_err());
        assert!(
            NewPassword::parse(
                "password",
                "ada.lovelace@example.com",
                &["ada.lovelace@example.com"]
            )
            .is_err()
        );
        assert!(NewPassword::parse("password", "correct horse battery staple", &[]).is_ok());
        assert!(NewPassword::parse("password", &"x".repeat(129), &[]).is_err());
    }

    #[tokio::test]
    async fn hashes_verify_and_bound_the_queue() {
        let hasher = PasswordHasher::new(
            HashCost {
                memory_kib: 64,
                iterations: 1,
            },
            1,
            0,
        )
        .unwrap();
        let pw = Password::parse("p", "correct horse battery staple").unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(&pw, &hash).await.unwrap());
        assert!(
            !hasher
                .verify(&Password::parse("p", "wrong").unwrap(), &hash)
                .await
                .unwrap()
        );
        assert!(!hasher.verify(&pw, "not a hash").await.unwrap());
    }
}
