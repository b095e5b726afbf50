//! The secrets sign-in hands out — session cookies, CSRF tokens, API tokens — and how they
//! are kept: 256 random bits from the operating system, written as unpadded base64url, and
//! stored only as their SHA-256 (the lookup key). A plain hash suffices here (unlike a
//! password) because the secret has full entropy: nothing can be guessed from the hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What an API token starts with: lets secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "vigil_";

/// The operating system's random source failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the system's random number source failed: {0}")]
pub struct RandomError(String);

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(bytes)
}

/// A new secret: 256 random bits as base64url (43 characters).
pub fn new_secret() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A new API token: [`TOKEN_PREFIX`] and a secret.
pub fn new_token() -> Result<String, RandomError> {
    Ok(format!("{TOKEN_PREFIX}{}", new_secret()?))
}

/// SHA-256 of a presented secret: what the store keeps and looks up.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two byte strings in time that depends on their lengths only, not on where
/// they first differ (for the CSRF token, which is compared as presented).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_url_safe() {
        let a = new_secret().expect("random");
        let b = new_secret().expect("random");
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let t = new_token().expect("random");
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == TOKEN_PREFIX.len() + 43);
        assert_eq!(digest("x"), digest("x"));
        assert_ne!(digest("x"), digest("y"));
    }

    #[test]
    fn comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
