//! Bot secrets at rest: XChaCha20-Poly1305 under a key derived from the server's secret key.
//! The bot id and the secret's name are the associated data, so a ciphertext copied to another
//! bot or another name does not decrypt.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::{BotId, is_env_name};
use crate::secret::SecretKey;
use crate::{Error, FieldError};

const NONCE_BYTES: usize = 24;
const MAX_SECRETS: usize = 64;
const MAX_VALUE_BYTES: usize = 32 * 1024;

pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(key: &SecretKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.derive("bot-secrets").into()),
        }
    }

    fn aad(bot: BotId, name: &str) -> Vec<u8> {
        let mut aad = bot.0.as_bytes().to_vec();
        aad.extend_from_slice(name.as_bytes());
        aad
    }

    /// A random nonce followed by the ciphertext.
    pub fn seal(&self, bot: BotId, name: &str, value: &str) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(bot, name);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Internal("cannot encrypt a secret".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, bot: BotId, name: &str, sealed: &[u8]) -> Result<String, Error> {
        let undecryptable = || Error::Internal(format!("secret {name} of bot {bot} does not decrypt"));
        if sealed.len() < NONCE_BYTES {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| undecryptable())?;
        let aad = Self::aad(bot, name);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain).map_err(|_| undecryptable())
    }
}

/// Checks a set of secrets given by a client: environment-variable names, bounded values.
pub fn validate(secrets: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if secrets.len() > MAX_SECRETS {
        return Err(FieldError::new("secrets", "must have at most 64 entries"));
    }
    for (name, value) in secrets {
        if !is_env_name(name) {
            return Err(FieldError::new(
                name.clone(),
                "is not a valid name: use A-Z, a-z, 0-9 and _, not starting with a digit",
            ));
        }
        if value.len() > MAX_VALUE_BYTES || value.contains('\0') {
            return Err(FieldError::new(
                name.clone(),
                "must be at most 32 KiB, without NUL",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_bot_and_name() {
        let secrets = SecretBox::new(&SecretKey::generate());
        let (bot, other) = (BotId::new(), BotId::new());
        let sealed = secrets.seal(bot, "TOKEN", "hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(secrets.open(bot, "TOKEN", &sealed).unwrap(), "hunter2");
        assert!(secrets.open(other, "TOKEN", &sealed).is_err());
        assert!(secrets.open(bot, "OTHER", &sealed).is_err());
        assert!(
            SecretBox::new(&SecretKey::generate())
                .open(bot, "TOKEN", &sealed)
                .is_err()
        );
    }
}
