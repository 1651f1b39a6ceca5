//! Secrets: generating API keys and session tokens, their digests, passwords' argon2id hashes and
//! the operator's token.
//!
//! A tenant credential's text is `<kind>.<tenant>.<43 characters>`: `ck` for an API key, `cs` for a
//! login session. The tenant in the clear lets a node find the right access stream without a
//! global index; the 32 random bytes (base64url) make the digest irreversible, so only the
//! SHA-256 of the text is ever stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crest_proto::TenantId;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Which kind of credential a token's text says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A tenant's API key (`ck.`).
    ApiKey,
    /// An agent's or supervisor's login session (`cs.`).
    Session,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "ck",
            Self::Session => "cs",
        }
    }
}

/// The SHA-256 of a token's text: what the access stream keeps.
pub type Digest = [u8; 32];

/// SHA-256 of `text`.
#[must_use]
pub fn digest(text: &str) -> Digest {
    let computed = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0_u8; 32];
    out.copy_from_slice(computed.as_ref());
    out
}

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The system's random source failed.
    #[error("random source unavailable")]
    Random,
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// `count` bytes from the system's secure random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0_u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Random)?;
    Ok(bytes)
}

/// A fresh token of `kind` for `tenant`, with 256 bits of randomness.
pub fn new_token(kind: TokenKind, tenant: &TenantId) -> Result<String, SecretError> {
    let secret = random_bytes::<32>()?;
    Ok(format!(
        "{}.{tenant}.{}",
        kind.prefix(),
        URL_SAFE_NO_PAD.encode(secret)
    ))
}

/// The kind and tenant a token's text names, if it has the shape of one of ours.
#[must_use]
pub fn parse_token(text: &str) -> Option<(TokenKind, TenantId)> {
    let mut parts = text.splitn(3, '.');
    let kind = match parts.next()? {
        "ck" => TokenKind::ApiKey,
        "cs" => TokenKind::Session,
        _ => return None,
    };
    let tenant = TenantId::new(parts.next()?).ok()?;
    let secret = parts.next()?;
    if secret.len() != 43 {
        return None;
    }
    Some((kind, tenant))
}

/// The argon2id hash (PHC string) of `password`, with a fresh salt. CPU-heavy (tens of
/// milliseconds): call it off the async workers.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt_bytes = random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| SecretError::Hash(error.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| SecretError::Hash(error.to_string()))
}

/// Whether `password` matches the PHC `hash` (constant time in the password). CPU-heavy.
#[must_use]
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash no password matches, verified against when the seat is unknown so that a login takes
/// as long whether or not the seat exists.
pub const DECOY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3lzYWx0ZGVjb3k$2sEPEhZIy8gZ9RMPxBrMhqoXgWFLyjS0x3PZ1uX8b7c";

/// The operator's credential (from `CREST_OPERATOR_TOKEN` or `--operator-token-file`), kept as
/// its digest; compared in constant time.
#[derive(Clone)]
pub struct OperatorToken(Digest);

/// Shortest operator token accepted.
pub const MIN_OPERATOR_TOKEN_LEN: usize = 16;

impl OperatorToken {
    /// Keeps the digest of `text` (trimmed); refuses tokens shorter than
    /// [`MIN_OPERATOR_TOKEN_LEN`].
    pub fn new(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.len() < MIN_OPERATOR_TOKEN_LEN {
            return Err(format!(
                "the operator token must have at least {MIN_OPERATOR_TOKEN_LEN} characters"
            ));
        }
        Ok(Self(digest(trimmed)))
    }

    /// Whether `presented` is the operator's token (constant time).
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(digest(presented).ct_eq(&self.0))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("OperatorToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_kind_and_tenant_and_differ_every_time() {
        let tenant = TenantId::new("shop-1").expect("valid");
        let first = new_token(TokenKind::ApiKey, &tenant).expect("random");
        let second = new_token(TokenKind::ApiKey, &tenant).expect("random");
        assert_ne!(first, second);
        assert_eq!(
            parse_token(&first),
            Some((TokenKind::ApiKey, tenant.clone()))
        );
        let session = new_token(TokenKind::Session, &tenant).expect("random");
        assert_eq!(parse_token(&session), Some((TokenKind::Session, tenant)));
        assert_eq!(parse_token("ck.shop-1.short"), None);
        assert_eq!(parse_token("Bearer nonsense"), None);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", DECOY_PASSWORD_HASH));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn the_operator_token_is_compared_by_digest_and_never_printed() {
        let token = OperatorToken::new("  a-long-operator-token  ").expect("long enough");
        assert!(token.matches("a-long-operator-token"));
        assert!(!token.matches("a-long-operator-tokeN"));
        assert!(OperatorToken::new("short").is_err());
        assert!(!format!("{token:?}").contains("operator-token"));
    }
}
