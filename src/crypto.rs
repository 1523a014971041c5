//! Encryption at rest for provider credentials (AES-256-GCM).
//!
//! Secrets are sealed before they enter a command, so events, replays and projections only
//! ever hold ciphertext. Format: `v1:` + base64(nonce ‖ ciphertext‖tag), a fresh random
//! 96-bit nonce per secret. The key comes from `SWITCHBOARD_MASTER_KEY` (base64 of 32 bytes)
//! or, for the embedded default, a key file created next to the database on first start.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use switchboard_domain::account::SealedSecret;

const PREFIX: &str = "v1:";

/// Why a secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CryptoError {
    /// The key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadKey,
    /// The sealed text is malformed or was sealed with another key.
    #[error("the secret cannot be decrypted with this key")]
    CannotOpen,
}

/// Seals and opens provider secrets.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    links: crate::blobs::LinkSigner,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// From a base64 key of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(key.trim()).map_err(|_| CryptoError::BadKey)?;
        Self::from_bytes(&bytes)
    }

    /// From 32 raw key bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::BadKey)?;
        Ok(Self { cipher, links: crate::blobs::LinkSigner::derive(key) })
    }

    /// Signs the media links providers fetch outbound media from (its key is derived from
    /// the master key, so rotating the master key also invalidates old links).
    pub fn links(&self) -> &crate::blobs::LinkSigner {
        &self.links
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        let key: [u8; 32] = rand::random();
        B64.encode(key)
    }

    /// Encrypts a secret.
    pub fn seal(&self, plaintext: &str) -> SealedSecret {
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        // Encryption with a valid key and an in-memory buffer cannot fail.
        let ct = self.cipher.encrypt(&nonce, plaintext.as_bytes()).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        SealedSecret(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// Decrypts a secret sealed with this key.
    pub fn open(&self, sealed: &SealedSecret) -> Result<String, CryptoError> {
        let b64 = sealed.0.strip_prefix(PREFIX).ok_or(CryptoError::CannotOpen)?;
        let bytes = B64.decode(b64).map_err(|_| CryptoError::CannotOpen)?;
        if bytes.len() < 12 {
            return Err(CryptoError::CannotOpen);
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::CannotOpen)?;
        let pt = self.cipher.decrypt(&Nonce::from(nonce), ct).map_err(|_| CryptoError::CannotOpen)?;
        String::from_utf8(pt).map_err(|_| CryptoError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        let sealed = sealer.seal("EAAG-token");
        assert!(!sealed.0.contains("EAAG"));
        assert_eq!(sealer.open(&sealed).as_deref(), Ok("EAAG-token"));
        let other = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        assert_eq!(other.open(&sealed), Err(CryptoError::CannotOpen));
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        assert_ne!(sealer.seal("x"), sealer.seal("x"));
    }

    #[test]
    fn malformed_keys_and_ciphertexts_are_refused() {
        assert_eq!(Sealer::from_base64("short").err(), Some(CryptoError::BadKey));
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        for bad in ["", "v1:", "v1:!!!", "v2:AAAA", "v1:AAAA"] {
            assert_eq!(sealer.open(&SealedSecret(bad.into())), Err(CryptoError::CannotOpen), "{bad}");
        }
    }
}
