//! Passwords: argon2id with the argon2 crate's defaults (OWASP's minimum: 19 MiB, 2 passes,
//! 1 lane), stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so a later
//! change of parameters keeps verifying the old hashes.
//!
//! **Same time for everyone.** A sign-in with an unknown name is verified against a dummy
//! hash made with the same parameters ([`verify_or_dummy`]), so the answer's timing does
//! not tell which names exist. Hashing is slow by design (tens of milliseconds): callers
//! run it on a blocking thread.
//!
//! There is no default user and no default password anywhere: users are added with
//! `vigil-hub user add`, with a password given on standard input, typed twice, or generated
//! ([`generate`]).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::secret::{random_bytes, RandomError};

/// The fewest characters of a password.
pub const MIN_LEN: usize = 12;

/// The most bytes of a password (hashing is costly; a megabyte "password" is an attack).
pub const MAX_BYTES: usize = 1024;

/// The characters of generated passwords: no look-alikes (0/O, 1/l/I).
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Why a password was not hashed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("the password is too short: use at least {MIN_LEN} characters (or --generate)")]
    TooShort,
    /// Too long.
    #[error("the password is too long: at most {MAX_BYTES} bytes")]
    TooLong,
    /// No randomness for the salt.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The hasher failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks `password` against the rules ([`MIN_LEN`], [`MAX_BYTES`]).
pub fn check(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check(password)?;
    hash_unchecked(password)
}

fn hash_unchecked(password: &str) -> Result<String, PasswordError> {
    hash_with_salt(password, &random_bytes::<16>()?)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`; a malformed `phc` matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password is known to match, with the same parameters as real ones.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // Without system randomness, a fixed input makes a hash that is just as slow to
        // check; no one signs in with it either way (it belongs to no user).
        let made = match super::secret::new_secret() {
            Ok(secret) => hash_unchecked(&secret),
            Err(_) => hash_with_salt("vigil dummy password", b"vigil-dummy-salt"),
        };
        made.unwrap_or_default()
    })
}

/// Verifies `password` against `phc`, or against a dummy hash when there is none (an
/// unknown user): the same work either way; `false` without a real hash.
pub fn verify_or_dummy(password: &str, phc: Option<&str>) -> bool {
    match phc {
        Some(phc) => verify(password, phc),
        None => {
            let _ = verify(password, dummy());
            false
        }
    }
}

/// Makes the dummy hash now (at start-up), so the first unknown-user sign-in does not pay
/// for it twice.
pub fn warm_up() {
    let _ = dummy();
}

/// A new password: 20 characters from a 32-letter alphabet without look-alikes (100 bits),
/// in groups of five (`abcde-fghij-kmnpq-rstuv`).
pub fn generate() -> Result<String, RandomError> {
    let bytes = random_bytes::<20>()?;
    let mut out = String::with_capacity(23);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(phc, hash("correct horse battery").expect("hash"), "salted");
        assert!(!verify_or_dummy("anything at all", None));
        assert!(verify_or_dummy("correct horse battery", Some(&phc)));
    }

    #[test]
    fn rules() {
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
        assert!(matches!(
            check(&"x".repeat(MAX_BYTES + 1)),
            Err(PasswordError::TooLong)
        ));
        assert!(check("twelve chars").is_ok());
    }

    #[test]
    fn generated_passwords() {
        let p = generate().expect("random");
        assert_eq!(p.len(), 23);
        assert_eq!(p.matches('-').count(), 3);
        assert!(check(&p).is_ok());
        assert_ne!(p, generate().expect("random"));
    }
}
