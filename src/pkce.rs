//! PKCE (RFC 7636) with S256 only.
//!
//! `plain` is never accepted: a challenge without `code_challenge_method` would mean `plain`
//! (RFC 7636 4.3), so it is refused rather than silently downgraded (RFC 9700 2.1.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why an authorization request's PKCE parameters were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    /// A method other than `S256`, or a challenge with no method (which means `plain`).
    Method,
    /// Not 43 base64url characters, the encoding of a SHA-256 hash.
    Shape,
}

/// Checks `code_challenge` and `code_challenge_method` from an authorization request.
/// `Ok(None)` when neither was sent.
pub fn challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, ChallengeError> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ChallengeError::Shape),
        (Some(_), m) if m != Some("S256") => Err(ChallengeError::Method),
        (Some(c), _) => {
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Some(c.to_string()))
            } else {
                Err(ChallengeError::Shape)
            }
        }
    }
}

/// Whether `verifier` is well formed (RFC 7636 4.1: 43 to 128 unreserved characters) and
/// hashes to `challenge`. Compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    let shape = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !shape {
        return false;
    }
    let digest = Sha256::digest(verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest);
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// The S256 challenge of `verifier`, for clients and tests.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(verify(verifier, challenge));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
    }

    #[test]
    fn verifier_shape() {
        let short = "a".repeat(42);
        assert!(!verify(&short, &s256(&short)));
        let long = "a".repeat(129);
        assert!(!verify(&long, &s256(&long)));
        let bad = format!("{}+", "a".repeat(42));
        assert!(!verify(&bad, &s256(&bad)));
        let ok = "a".repeat(128);
        assert!(verify(&ok, &s256(&ok)));
    }

    #[test]
    fn no_downgrade_to_plain() {
        let c = s256(&"a".repeat(43));
        assert_eq!(challenge(Some(&c), None), Err(ChallengeError::Method));
        assert_eq!(
            challenge(Some(&c), Some("plain")),
            Err(ChallengeError::Method)
        );
        assert_eq!(
            challenge(Some(&c), Some("s256")),
            Err(ChallengeError::Method)
        );
        assert_eq!(challenge(None, Some("S256")), Err(ChallengeError::Shape));
        assert_eq!(
            challenge(Some("short"), Some("S256")),
            Err(ChallengeError::Shape)
        );
        assert_eq!(challenge(Some(&c), Some("S256")), Ok(Some(c)));
        assert_eq!(challenge(None, None), Ok(None));
    }
}
