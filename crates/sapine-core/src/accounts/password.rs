//! Passwords: the strength rule, and argon2id hashing kept off the async executor.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
///
/// Each running hash works in a buffer kept for the next one: argon2 needs 19 MiB per hash, and
/// allocating it afresh makes the allocator hold on to one such block per thread it ever ran
/// on, and costs page faults on every login.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// The length of the hashes this server writes, argon2's default.
const OUTPUT_LEN: usize = 32;

impl PasswordHasher {
    pub fn new(cost: HashCost, parallelism: usize, max_waiting: usize) -> Result<Self, String> {
        let params =
            Params::new(cost.memory_kib, cost.iterations, 1, Some(OUTPUT_LEN)).map_err(|e| e.to_string())?;
        let parallelism = parallelism.max(1);
        Ok(Self {
            params,
            running: Arc::new(Semaphore::new(parallelism)),
            admitted: Arc::new(Semaphore::new(parallelism + max_waiting)),
            buffers: Arc::new(Mutex::new(Vec::with_capacity(parallelism))),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let password = password.clone();
        let params = self.params.clone();
        self.run(move |memory| {
            let failed = |e: &dyn std::fmt::Display| Error::Internal(format!("hashing failed: {e}"));
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            let mut salt_bytes = [0u8; 64];
            let salt_bytes = salt
                .as_salt()
                .decode_b64(&mut salt_bytes)
                .map_err(|e| failed(&e))?;
            let mut out = [0u8; OUTPUT_LEN];
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            argon2
                .hash_password_into_with_memory(password.expose().as_bytes(), salt_bytes, &mut out, memory)
                .map_err(|e| failed(&e))?;
            let phc = PasswordHash {
                algorithm: argon2::ARGON2ID_IDENT,
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// False for a wrong password and for a hash that cannot be read.
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, Error> {
        let password = password.clone();
        let hash = hash.to_owned();
        self.run(move |memory| Ok(verify_with(&password, &hash, memory).unwrap_or(false)))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> Result<T, Error> + Send + 'static,
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
        let buffers = self.buffers.clone();
        let blocks = self.params.block_count();
        tokio::task::spawn_blocking(move || {
            let mut memory = buffers.lock().ok().and_then(|mut b| b.pop()).unwrap_or_default();
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            let result = job(&mut memory);
            if let Ok(mut free) = buffers.lock() {
                free.push(memory);
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
    }
}

/// Verifies against a stored PHC string with the cost it was made with, which may differ from
/// today's; `None` when the string is not an argon2 hash this code can read.
fn verify_with(password: &Password, hash: &str, memory: &mut Vec<Block>) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .ok()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.expose().as_bytes(), salt, &mut out, memory)
        .ok()?;
    // Output's equality is constant-time.
    Some(Output::new(&out).ok()? == expected)
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
        // Hashes written by the argon2 crate's own API, at another cost, verify too.
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let foreign = other
            .hash_password(pw.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(hasher.verify(&pw, &foreign).await.unwrap());
        assert!(
            !hasher
                .verify(&Password::parse("p", "wrong").unwrap(), &foreign)
                .await
                .unwrap()
        );
    }
}
