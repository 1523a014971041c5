//! Encryption at rest for provider credentials (AES-256-GCM).
//!
//! Secrets are sealed before they enter a command, so events, replays and projections only
//! ever hold ciphertext. Format: `v2:{key_id}:` + base64(nonce ‖ ciphertext‖tag), a fresh
//! random 96-bit nonce per secret, where `key_id` is the first 8 hex digits of the key's
//! SHA-256: it says which key opens the secret, so keys can be rotated. The older `v1:` form
//! (no key id) still opens with whichever configured key fits.
//!
//! The key comes from `SWITCHBOARD_MASTER_KEY` (base64 of 32 bytes) or, for the embedded
//! default, a key file created next to the database on first start. A keyring is the current
//! key optionally followed by previous keys, comma-separated (`SWITCHBOARD_MASTER_KEY_PREVIOUS`
//! is appended by the binary): previous keys only open, the current key seals. After
//! `switchboard rotate-credentials` re-sealed everything, previous keys can be dropped.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest;

use switchboard_domain::account::SealedSecret;

const V1: &str = "v1:";
const V2: &str = "v2:";

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

/// One key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| CryptoError::BadKey)?;
        Ok(Self { id: key_id(bytes), cipher })
    }

    fn open(&self, b64: &str) -> Result<String, CryptoError> {
        open_b64(&self.cipher, b64).ok_or(CryptoError::CannotOpen)
    }
}

/// AES-256-GCM with a fresh random nonce: base64 of `nonce (12 bytes) ‖ ciphertext`. The
/// one encoding of everything Switchboard encrypts (credentials, personal data).
pub(crate) fn seal_b64(cipher: &Aes256Gcm, plaintext: &str) -> String {
    let nonce: [u8; 12] = rand::random();
    // Encryption with a valid key into an in-memory buffer cannot fail.
    let ct = cipher.encrypt(&Nonce::from(nonce), plaintext.as_bytes()).unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    B64.encode(out)
}

/// Opens what [`seal_b64`] made; `None` if it is malformed or not sealed with this key.
pub(crate) fn open_b64(cipher: &Aes256Gcm, b64: &str) -> Option<String> {
    let bytes = B64.decode(b64).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, ct) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    String::from_utf8(cipher.decrypt(&Nonce::from(nonce), ct).ok()?).ok()
}

/// The id a key is known by in sealed secrets: the first 8 hex digits of its SHA-256 (it
/// identifies the key without revealing it).
pub fn key_id(key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(key);
    hex::encode(&digest[..4])
}

/// Seals and opens provider secrets.
#[derive(Clone)]
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
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
        Ok(Self {
            current: Key::new(key)?,
            previous: Vec::new(),
            links: crate::blobs::LinkSigner::derive(key),
        })
    }

    /// From a keyring: the current base64 key, then any previous keys, comma-separated.
    pub fn from_keyring(keyring: &str) -> Result<Self, CryptoError> {
        let mut keys = keyring.split(',').map(str::trim).filter(|k| !k.is_empty());
        let mut sealer = Self::from_base64(keys.next().ok_or(CryptoError::BadKey)?)?;
        for key in keys {
            let bytes = B64.decode(key).map_err(|_| CryptoError::BadKey)?;
            sealer.previous.push(Key::new(&bytes)?);
        }
        Ok(sealer)
    }

    /// The current key's id (new secrets carry it).
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Whether a secret is sealed with another key than the current one (or in the old
    /// format without a key id), so rotation should re-seal it.
    pub fn needs_reseal(&self, sealed: &SealedSecret) -> bool {
        sealed.0.strip_prefix(V2).and_then(|rest| rest.split_once(':')).map(|(id, _)| id)
            != Some(self.current.id.as_str())
    }

    /// Opens a secret with whichever key sealed it and seals it again with the current key.
    pub fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, CryptoError> {
        Ok(self.seal(&self.open(sealed)?))
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
        SealedSecret(format!("{V2}{}:{}", self.current.id, seal_b64(&self.current.cipher, plaintext)))
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Decrypts a secret sealed with the current or a previous key.
    pub fn open(&self, sealed: &SealedSecret) -> Result<String, CryptoError> {
        if let Some(rest) = sealed.0.strip_prefix(V2) {
            let (id, b64) = rest.split_once(':').ok_or(CryptoError::CannotOpen)?;
            let key = self.keys().find(|k| k.id == id).ok_or(CryptoError::CannotOpen)?;
            return key.open(b64);
        }
        // The old format names no key: the one that authenticates it is the right one.
        let b64 = sealed.0.strip_prefix(V1).ok_or(CryptoError::CannotOpen)?;
        self.keys().find_map(|k| k.open(b64).ok()).ok_or(CryptoError::CannotOpen)
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
        for bad in ["", "v1:", "v1:!!!", "v2:AAAA", "v1:AAAA", "v2:00000000:AAAA", "v3:x"] {
            assert_eq!(sealer.open(&SealedSecret(bad.into())), Err(CryptoError::CannotOpen), "{bad}");
        }
        assert_eq!(Sealer::from_keyring("").err(), Some(CryptoError::BadKey));
        assert_eq!(
            Sealer::from_keyring(&format!("{},short", Sealer::generate_key())).err(),
            Some(CryptoError::BadKey)
        );
    }

    #[test]
    fn sealed_secrets_name_their_key_and_open_after_rotation() {
        let (old_key, new_key) = (Sealer::generate_key(), Sealer::generate_key());
        let old = Sealer::from_base64(&old_key).expect("key");
        let sealed = old.seal("EAAG-token");
        assert!(sealed.0.starts_with(&format!("v2:{}:", old.current_key_id())), "{}", sealed.0);
        assert_eq!(old.current_key_id().len(), 8);
        assert!(!old.needs_reseal(&sealed));

        // The new key alone cannot open it; with the old one as previous it can, and re-seals.
        assert_eq!(Sealer::from_base64(&new_key).expect("key").open(&sealed), Err(CryptoError::CannotOpen));
        let ring = Sealer::from_keyring(&format!("{new_key}, {old_key}")).expect("keyring");
        assert_eq!(ring.open(&sealed).as_deref(), Ok("EAAG-token"));
        assert!(ring.needs_reseal(&sealed));
        let resealed = ring.reseal(&sealed).expect("reseals");
        assert!(!ring.needs_reseal(&resealed));
        assert_eq!(Sealer::from_base64(&new_key).expect("key").open(&resealed).as_deref(), Ok("EAAG-token"));
    }

    #[test]
    fn the_old_format_without_key_id_still_opens() {
        let key = Sealer::generate_key();
        let sealer = Sealer::from_base64(&key).expect("key");
        // A v1 secret: nonce ‖ ciphertext under the same key, no key id.
        let v2 = sealer.seal("legacy");
        let b64 = v2.0.rsplit(':').next().expect("payload");
        let v1 = SealedSecret(format!("v1:{b64}"));
        assert_eq!(sealer.open(&v1).as_deref(), Ok("legacy"));
        assert!(sealer.needs_reseal(&v1));
        let ring = Sealer::from_keyring(&format!("{},{key}", Sealer::generate_key())).expect("keyring");
        assert_eq!(ring.open(&v1).as_deref(), Ok("legacy"));
    }
}
