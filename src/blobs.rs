//! The media blob store: bytes named by their SHA-256.
//!
//! Naming blobs by content makes every write idempotent (a retried download or upload
//! stores nothing new) and lets a reader check what it got. The store is a trait so an
//! S3-compatible store can replace the local directory without touching callers; the
//! local store writes to a temporary file and renames it into place, so a crash never
//! leaves a half-written blob under a valid name.
//!
//! Blobs are served to providers (outbound media) through expiring links signed with a key
//! derived from the master key ([`LinkSigner`]): no bearer token is needed, but a link is
//! only good for the blob, content type and time it was made for.

use std::path::PathBuf;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The name is not a lowercase hex SHA-256 (so it can never be a path trick).
    #[error("not a blob name")]
    BadName,
    /// The disk (or remote store) failed.
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Where media bytes live.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores the bytes (a no-op if they are there already); returns their SHA-256.
    async fn put(&self, bytes: &[u8]) -> Result<String, BlobError>;
    /// The bytes named `sha256`, if stored.
    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError>;
    /// Deletes the bytes named `sha256` (an erasure or a deletion); `false` if they were not
    /// there. Stores that cannot delete keep the default and report nothing deleted.
    async fn delete(&self, sha256: &str) -> Result<bool, BlobError> {
        let _ = sha256;
        Ok(false)
    }
}

/// Lowercase hex SHA-256 of the bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn valid_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Blobs as files under a directory: `{root}/{first two hex digits}/{sha256}`.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, bytes: &[u8]) -> Result<String, BlobError> {
        let sha = sha256_hex(bytes);
        let path = self.path(&sha);
        if tokio::fs::try_exists(&path).await? {
            return Ok(sha);
        }
        let dir = self.root.join(&sha[..2]);
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{sha}.{}.tmp", uuid::Uuid::new_v4()));
        let write = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(sha)
    }

    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError> {
        if !valid_name(sha256) {
            return Err(BlobError::BadName);
        }
        match tokio::fs::read(self.path(sha256)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, sha256: &str) -> Result<bool, BlobError> {
        if !valid_name(sha256) {
            return Err(BlobError::BadName);
        }
        match tokio::fs::remove_file(self.path(sha256)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks the expiring links providers fetch outbound media from.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

/// How long a media link stays valid: providers fetch at send time, and a retried send
/// gets a fresh link.
pub const LINK_TTL_SECS: i64 = 24 * 3600;

impl LinkSigner {
    /// A signer whose key is derived from the master key (never the master key itself, so
    /// a leaked link key cannot open credentials).
    pub fn derive(master_key: &[u8]) -> Self {
        let mut mac = mac(master_key);
        mac.update(b"switchboard media links v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn mac_for(&self, sha256: &str, content_type: &str, expires: i64) -> HmacSha256 {
        let mut mac = mac(&self.key);
        mac.update(format!("{sha256}\n{content_type}\n{expires}").as_bytes());
        mac
    }

    fn signature(&self, sha256: &str, content_type: &str, expires: i64) -> String {
        hex::encode(self.mac_for(sha256, content_type, expires).finalize().into_bytes())
    }

    /// The path and query of a link, e.g. `/media/{sha}/invoice.pdf?ct=application%2Fpdf&exp=…&sig=…`.
    ///
    /// The last path segment is a file name (the document's own, or `media.{ext}` from the
    /// content type): some providers take the file name, or even the media type, from the
    /// URL. It is not signed and not used to serve: the blob and its type are.
    pub fn path(&self, sha256: &str, content_type: &str, expires: i64, filename: Option<&str>) -> String {
        format!(
            "/media/{sha256}/{}?ct={}&exp={expires}&sig={}",
            link_name(content_type, filename),
            urlencode(content_type),
            self.signature(sha256, content_type, expires)
        )
    }

    /// Whether a presented link is genuine and not expired at `now` (Unix seconds).
    pub fn verify(&self, sha256: &str, content_type: &str, expires: i64, sig: &str, now: i64) -> bool {
        if now > expires {
            return false;
        }
        let Ok(presented) = hex::decode(sig) else { return false };
        // The MAC's own verifier compares in constant time.
        self.mac_for(sha256, content_type, expires).verify_slice(&presented).is_ok()
    }
}

/// A URL-safe file name for a link: the given name with anything but letters, digits, `.`,
/// `-` and `_` replaced, or `media` with the content type's usual extension.
fn link_name(content_type: &str, filename: Option<&str>) -> String {
    let clean: String = filename
        .unwrap_or("")
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    if !clean.trim_matches(['.', '_']).is_empty() {
        return clean;
    }
    let ext = match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mp4" => "m4a",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    };
    format!("media.{ext}")
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root() -> PathBuf {
        std::env::temp_dir().join(format!("sb-blobs-{}", uuid::Uuid::new_v4()))
    }

    #[tokio::test]
    async fn blobs_are_named_by_content_and_stored_once() {
        let root = temp_root();
        let store = LocalBlobStore::new(&root);
        let sha = store.put(b"hello").await.expect("put");
        assert_eq!(sha, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(store.put(b"hello").await.expect("again"), sha);
        assert_eq!(store.get(&sha).await.expect("get").as_deref(), Some(&b"hello"[..]));
        assert_eq!(store.get(&"0".repeat(64)).await.expect("missing"), None);
        let leftovers: Vec<_> = std::fs::read_dir(root.join(&sha[..2])).expect("dir").collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn deleting_a_blob_removes_it_once() {
        let store = LocalBlobStore::new(temp_root());
        let sha = store.put(b"erase me").await.expect("put");
        assert!(store.delete(&sha).await.expect("delete"));
        assert_eq!(store.get(&sha).await.expect("get"), None);
        assert!(!store.delete(&sha).await.expect("second delete"));
        assert!(matches!(store.delete("../x").await, Err(BlobError::BadName)));
    }

    #[tokio::test]
    async fn names_that_are_not_digests_are_refused() {
        let store = LocalBlobStore::new(temp_root());
        for bad in ["../../etc/passwd", "", &"G".repeat(64), &"a".repeat(63)] {
            assert!(matches!(store.get(bad).await, Err(BlobError::BadName)), "{bad}");
        }
    }

    #[test]
    fn links_verify_only_for_their_blob_type_and_time() {
        let signer = LinkSigner::derive(b"master key bytes");
        let sha = "a".repeat(64);
        let path = signer.path(&sha, "image/jpeg", 1_000, None);
        assert!(path.starts_with(&format!("/media/{sha}/media.jpg?ct=image%2Fjpeg&exp=1000&sig=")), "{path}");
        let named = signer.path(&sha, "application/pdf", 1_000, Some("../Invoice 4711.pdf"));
        assert!(named.starts_with(&format!("/media/{sha}/.._Invoice_4711.pdf?")), "{named}");
        assert!(signer.path(&sha, "x/y", 1_000, Some("..")).starts_with(&format!("/media/{sha}/media.bin?")));
        let sig = path.rsplit("sig=").next().expect("sig");
        assert!(signer.verify(&sha, "image/jpeg", 1_000, sig, 999));
        assert!(!signer.verify(&sha, "image/jpeg", 1_000, sig, 1_001), "expired");
        assert!(!signer.verify(&sha, "text/html", 1_000, sig, 999), "another content type");
        assert!(!signer.verify(&"b".repeat(64), "image/jpeg", 1_000, sig, 999), "another blob");
        assert!(!signer.verify(&sha, "image/jpeg", 2_000, sig, 999), "another expiry");
        assert!(!signer.verify(&sha, "image/jpeg", 1_000, "zz", 999));
        let other = LinkSigner::derive(b"another key");
        assert!(!other.verify(&sha, "image/jpeg", 1_000, sig, 999));
    }
}
