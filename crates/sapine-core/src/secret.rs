//! The server's secret key, from which every purpose-specific key is derived.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_KEY_BYTES: usize = 32;

#[derive(Clone)]
pub struct SecretKey([u8; SECRET_KEY_BYTES]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn generate() -> Self {
        let mut key = [0u8; SECRET_KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Accepts the key as 64 hex digits or as standard base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| STANDARD.decode(text).ok())
            .ok_or("must be 64 hex digits or base64 of 32 bytes")?;
        let key: [u8; SECRET_KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| format!("must be exactly {SECRET_KEY_BYTES} bytes"))?;
        Ok(Self(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A key for one purpose only, so a leak of one derived key reveals nothing about another.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"sapine:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_base64_and_derives_distinct_keys() {
        let key = SecretKey::generate();
        let again = SecretKey::parse(&key.to_hex()).unwrap();
        assert_eq!(key.derive("jwt"), again.derive("jwt"));
        assert_ne!(key.derive("jwt"), key.derive("secrets"));
        assert!(SecretKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(SecretKey::parse("short").is_err());
    }
}
