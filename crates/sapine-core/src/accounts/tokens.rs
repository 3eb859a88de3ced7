//! Access tokens (short-lived JWTs naming a session) and opaque tokens (refresh, email
//! verification, password reset), which are stored only as hashes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{SessionId, UserId};
use crate::secret::SecretKey;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// Who an access token speaks for. Whether its session still lives is checked separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(secret: &SecretKey, ttl: Duration) -> Self {
        let key = secret.derive("access-token");
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the core's clock below, so tests can move time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user_id: UserId, session_id: SessionId, now: DateTime<Utc>) -> String {
        let claims = Claims {
            sub: user_id.0,
            sid: session_id.0,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<AccessClaims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp > now.timestamp()).then_some(AccessClaims {
            user_id: UserId(data.claims.sub),
            session_id: SessionId(data.claims.sid),
        })
    }
}

/// A random bearer secret handed to a client once; only its hash is stored.
pub struct OpaqueToken(String);

impl OpaqueToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// SHA-256 of an opaque token: enough to find it, useless to anyone who reads the database.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}..)", &self.0[..8.min(self.0.len())])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }
}

/// A single-use token sent by mail, as stored.
#[derive(Debug, Clone)]
pub struct MailedToken {
    pub hash: TokenHash,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_verify_until_expiry_and_only_with_their_key() {
        let tokens = AccessTokens::new(&SecretKey::generate(), Duration::minutes(15));
        let now = Utc::now();
        let (user, session) = (UserId::new(), SessionId::new());
        let token = tokens.issue(user, session, now);
        let claims = tokens.verify(&token, now).unwrap();
        assert_eq!((claims.user_id, claims.session_id), (user, session));
        assert!(tokens.verify(&token, now + Duration::minutes(16)).is_none());
        let other = AccessTokens::new(&SecretKey::generate(), Duration::minutes(15));
        assert!(other.verify(&token, now).is_none());
        assert!(tokens.verify("garbage", now).is_none());
    }
}
