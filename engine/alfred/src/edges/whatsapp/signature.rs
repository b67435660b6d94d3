//! Meta signs every webhook POST: `X-Hub-Signature-256: sha256=<hex>`, an HMAC-SHA256
//! of the raw body bytes with the app secret. It must be checked over the bytes as
//! received: Meta escapes non-ASCII (`\u00e9`) and `/` (`\/`), so re-serialised JSON
//! would not match.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header (answer 401).
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// Header present but malformed or not matching (answer 403).
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a signature header against the raw body, in constant time.
pub fn verify(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Mismatch)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(raw_body);
    // verify_slice compares in constant time; never compare hex strings with ==.
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// Computes the header value for a body (used by tests, load scripts and fakes).
pub fn sign(app_secret: &[u8], raw_body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_own_signature_and_rejects_tampering() {
        let body = br#"{"entry":[{"text":"caf\u00e9 \/ bar"}]}"#;
        let sig = sign(b"secret", body);
        assert_eq!(verify(b"secret", body, Some(&sig)), Ok(()));
        let mut tampered = body.to_vec();
        tampered[5] ^= 1;
        assert_eq!(verify(b"secret", &tampered, Some(&sig)), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"other", body, Some(&sig)), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"secret", body, None), Err(SignatureError::Missing));
        assert_eq!(verify(b"secret", body, Some("sha1=abc")), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(b"secret", body, Some("sha256=zz")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn matches_a_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
