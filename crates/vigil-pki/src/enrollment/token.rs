//! The enrollment token, `VGL1.<id>.<secret>.<pin>`: the one format the hub issues
//! (`vigil-hub enroll-token`), the hub's endpoint redeems and a node presents
//! (`vigil-agent enroll`, `vigil-hub enroll`). Every part is base64url without padding:
//!
//! - `id` names the token in the issuing hub's store (8 random bytes, [`EnrollToken::generate`]);
//! - `secret` proves the bearer was given it: the hub keeps only its SHA-256
//!   ([`EnrollToken::lookup_key`]);
//! - `pin` is the SHA-256 of the hub CA certificate's DER: the node trusts the hub through
//!   it ([`crate::enrollment::pinning`]).
//!
//! A token is a credential: it never goes into a process's arguments (every user of the
//! machine can read those with `ps`, and the shell keeps them in its history). The commands
//! take `--token -` and read it from standard input ([`token_from_arg`], [`read_token`]); see
//! `docs/ARCHITECTURE.md#trust-model`.

use std::fmt;
use std::io::{BufRead, IsTerminal};
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The pin of a CA certificate (SHA-256 of its DER), base64url without padding: the last
/// part of a token.
pub fn pin_of(ca_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(ca_der))
}

/// The token's version prefix.
pub const TOKEN_PREFIX: &str = "VGL1";

/// The length of a token's id, in bytes.
pub const ID_LEN: usize = 8;

/// A parsed enrollment token. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollToken {
    id: String,
    secret: String,
    pin: [u8; 32],
}

/// Why a token's text is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Nothing was given.
    #[error("the enrollment token is empty: paste the whole token `vigil-hub enroll-token` printed (it starts with VGL1.)")]
    Empty,
    /// Not a Vigil token, or a newer version this build does not know.
    #[error("the enrollment token does not start with `VGL1.`: paste the whole token `vigil-hub enroll-token` printed")]
    Prefix,
    /// Not four dot-separated parts.
    #[error("the enrollment token has {0} parts where VGL1.<id>.<secret>.<pin> has 4: it was probably cut when copied; paste it again whole")]
    Parts(usize),
    /// A part that is not base64url.
    #[error("the enrollment token's {part} is not base64url text: it was probably mistyped or cut; paste it again whole")]
    Encoding {
        /// `id`, `secret` or `pin`.
        part: &'static str,
    },
    /// A pin that is not 32 bytes.
    #[error("the enrollment token's pin is {0} bytes where a SHA-256 is 32: it was probably cut when copied; paste it again whole")]
    PinLength(usize),
    /// `--token` was given the token itself rather than `-`.
    #[error("give `--token -` and the token on standard input, not the token itself: a command line is visible to every user of this machine (`ps`) and stays in the shell's history. This token was not sent and still works, but it is now in the shell's history: if anyone else can read that history or this machine's process list, ask the hub's operator for a new token. Run the command again with `--token -` and paste the token when asked, or in a script: `--token - <<<\"$TOKEN\"`")]
    OnCommandLine,
    /// Standard input could not be read.
    #[error("cannot read the enrollment token from standard input: {0}")]
    Stdin(String),
    /// The operating system gave no randomness for a new token.
    #[error("no randomness from the operating system for a new token: {0}")]
    Randomness(String),
}

/// The token a `--token` argument gives: for `-`, the one read from standard input (with a
/// prompt on standard error when it is a terminal); anything else is refused with
/// [`TokenError::OnCommandLine`] — before it is used, and without repeating it.
pub fn token_from_arg(arg: &str) -> Result<EnrollToken, TokenError> {
    if arg != "-" {
        return Err(TokenError::OnCommandLine);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("paste the enrollment token (VGL1.…) and press Enter: ");
    }
    read_token(stdin.lock())
}

/// Reads a token from `input` (standard input): the first line that is not blank.
pub fn read_token(mut input: impl BufRead) -> Result<EnrollToken, TokenError> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = input
            .read_line(&mut line)
            .map_err(|e| TokenError::Stdin(e.to_string()))?;
        if n == 0 || !line.trim().is_empty() {
            return line.parse();
        }
    }
}

impl EnrollToken {
    /// A token for `id` and `secret` (each base64url without padding) that pins the CA
    /// certificate `ca_der`.
    pub fn new(id: &str, secret: &str, ca_der: &[u8]) -> Result<EnrollToken, TokenError> {
        let pin: [u8; 32] = Sha256::digest(ca_der).into();
        let token = EnrollToken {
            id: id.to_owned(),
            secret: secret.to_owned(),
            pin,
        };
        // Round-trip through the text form so that a bad id or secret is refused here.
        token.to_string().parse()
    }

    /// A new token pinning the CA certificate `ca_der`: 8 random bytes of id and 32 of
    /// secret, from the operating system's generator.
    pub fn generate(ca_der: &[u8]) -> Result<EnrollToken, TokenError> {
        let mut id = [0u8; ID_LEN];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|e| TokenError::Randomness(e.to_string()))?;
        EnrollToken::new(
            &URL_SAFE_NO_PAD.encode(id),
            &URL_SAFE_NO_PAD.encode(secret),
            ca_der,
        )
    }

    /// What the issuing hub stores and looks the token up by: its id (8 bytes) and the
    /// SHA-256 of its secret's bytes. `None` when the id is not 8 bytes (not a token this
    /// format's hub issued).
    pub fn lookup_key(&self) -> Option<([u8; ID_LEN], [u8; 32])> {
        let id: [u8; ID_LEN] = URL_SAFE_NO_PAD.decode(&self.id).ok()?.try_into().ok()?;
        let secret = URL_SAFE_NO_PAD.decode(&self.secret).ok()?;
        Some((id, Sha256::digest(&secret).into()))
    }

    /// The token's id part (base64url).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token's secret part (base64url): what the hub checks against its stored hash.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The pinned SHA-256 of the hub's CA certificate (DER).
    pub fn pin(&self) -> &[u8; 32] {
        &self.pin
    }

    /// The pin as lowercase hex, the form [`fingerprint`](crate::fingerprint) prints.
    pub fn pin_hex(&self) -> String {
        crate::cert::hex(&self.pin)
    }

    /// Whether the certificate `der` is the one the token pins.
    pub fn pins(&self, der: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(der).into();
        digest == self.pin
    }
}

impl fmt::Debug for EnrollToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("pin", &self.pin_hex())
            .finish()
    }
}

impl fmt::Display for EnrollToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}.{}.{}.{}",
            self.id,
            self.secret,
            URL_SAFE_NO_PAD.encode(self.pin)
        )
    }
}

impl FromStr for EnrollToken {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<EnrollToken, TokenError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(TokenError::Empty);
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts[0] != TOKEN_PREFIX {
            return Err(TokenError::Prefix);
        }
        let [_, id, secret, pin] = parts[..] else {
            return Err(TokenError::Parts(parts.len()));
        };
        let decode = |text: &str, part: &'static str| {
            if text.is_empty() {
                return Err(TokenError::Encoding { part });
            }
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| TokenError::Encoding { part })
        };
        decode(id, "id")?;
        decode(secret, "secret")?;
        let pin = decode(pin, "pin")?;
        let pin: [u8; 32] = pin
            .as_slice()
            .try_into()
            .map_err(|_| TokenError::PinLength(pin.len()))?;
        Ok(EnrollToken {
            id: id.to_owned(),
            secret: secret.to_owned(),
            pin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn round_trips_and_pins() {
        let ca = b"not really a certificate";
        let token = EnrollToken::new(&b64(b"id-1"), &b64(&[7; 24]), ca).expect("token");
        let text = token.to_string();
        assert!(text.starts_with("VGL1."), "{text}");
        let parsed: EnrollToken = format!("  {text}\n").parse().expect("parses");
        assert_eq!(parsed, token);
        assert!(parsed.pins(ca));
        assert!(!parsed.pins(b"another CA"));
        assert_eq!(parsed.pin_hex(), crate::fingerprint(ca));
        assert!(!format!("{parsed:?}").contains(parsed.secret()));
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let pin = b64(&[1; 32]);
        let cases = [
            ("", TokenError::Empty),
            ("VGL2.a.b.c", TokenError::Prefix),
            ("hello", TokenError::Prefix),
            ("VGL1.aaaa.bbbb", TokenError::Parts(3)),
            (&*format!("VGL1.aaaa.bbbb.{pin}.x"), TokenError::Parts(5)),
            (
                &*format!("VGL1.a+a.bbbb.{pin}"),
                TokenError::Encoding { part: "id" },
            ),
            (
                &*format!("VGL1.aaaa..{pin}"),
                TokenError::Encoding { part: "secret" },
            ),
            ("VGL1.aaaa.bbbb.cccc", TokenError::PinLength(3)),
            (
                &*format!("VGL1.aaaa.bbbb.{}=", b64(&[1; 32])),
                TokenError::Encoding { part: "pin" },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<EnrollToken>(), Err(want.clone()), "{text:?}");
            assert!(want.to_string().contains("paste"), "{want}");
        }
    }

    #[test]
    fn a_generated_token_has_an_eight_byte_id_and_its_lookup_key_hashes_the_secret() {
        let token = EnrollToken::generate(b"ca").expect("token");
        let (id, hash) = token.lookup_key().expect("an 8-byte id");
        assert_eq!(b64(&id), token.id());
        let secret = URL_SAFE_NO_PAD.decode(token.secret()).expect("b64");
        assert_eq!(secret.len(), 32);
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&secret)));
        assert!(token.pins(b"ca"));
        assert_ne!(EnrollToken::generate(b"ca").expect("token"), token);
        let long_id = EnrollToken::new(&b64(b"nine byte"), &b64(b"s"), b"ca").expect("token");
        assert_eq!(long_id.lookup_key(), None);
    }

    #[test]
    fn only_a_dash_is_a_token_argument_and_standard_input_gives_the_token() {
        let token = EnrollToken::generate(b"ca").expect("token");
        let refused = token_from_arg(&token.to_string()).expect_err("a literal token");
        assert_eq!(refused, TokenError::OnCommandLine);
        let refused = refused.to_string();
        assert!(
            refused.contains("--token -") && refused.contains("ps"),
            "{refused}"
        );
        let read = read_token(format!("\n  \n{token}\nmore\n").as_bytes()).expect("read");
        assert_eq!(read, token);
        assert_eq!(read_token(&b""[..]), Err(TokenError::Empty));
    }
}
