//! Crypto-shredding of personal data in the event log (ADR 0020).
//!
//! Events are immutable, so "forget this person" cannot mean deleting their events: the
//! history (and its hash chain) must still replay. Instead every personal field of an event
//! is stored encrypted with a key that belongs to the person (the *subject*: a contact of an
//! account, or a directory card), and erasure destroys that key. The events stay, the
//! aggregates still replay, but the personal fields open to placeholders that still parse
//! (a phone placeholder is a valid `PhoneNumber`, texts become `[erased]`).
//!
//! - Keys: random 256-bit, one per subject, stored sealed with the master key in `pii_keys`;
//!   erasure sets `sealed_key` to NULL. A subject seen again after erasure gets a fresh key.
//! - Sealed strings: `pii:v1:{kid}:{base64(nonce ‖ AES-256-GCM ciphertext)}`, one per string
//!   leaf of a personal field (see [`fields`]).
//! - Which key: the aggregate's first event names the owner (an interaction's customer, a
//!   card); `pii_aggregates` remembers the key id for every later event of the aggregate.
//! - Pseudonyms: the Contact aggregate's id is `{account}:{keyed hash of the phone}`
//!   ([`Pii::contact_subject`]); the hash key (pepper) is random, stored sealed.
//! - Readers: the event repository ([`repo::PiiRepository`]) opens what it loads; projectors,
//!   the router and any raw-log reader call [`Pii::open_stored`] / [`Pii::open_payload`].
//!
//! Keys are cached in memory: a live key for [`KEY_TTL`] (so an erasure made on another node
//! takes effect here within that time), a destroyed key for ever.

pub mod erase;
pub mod fields;
pub mod repo;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::{AnyConnection, AnyPool, Row};
use switchboard_domain::account::SealedSecret;
use switchboard_projections::StoredEvent;
use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::crypto::Sealer;

/// Prefix of a sealed personal string.
pub const PREFIX: &str = "pii:v1:";
/// What an erased phone number opens to: a valid `PhoneNumber` (country code 999 is not
/// assigned, so it reaches nobody).
pub const PHONE_PLACEHOLDER: &str = "+99900000000";
/// What an erased e-mail address opens to (a valid `Email`, in a reserved domain).
pub const EMAIL_PLACEHOLDER: &str = "erased@erased.invalid";
/// What any other erased text opens to.
pub const TEXT_PLACEHOLDER: &str = "[erased]";
/// How long a live key is trusted from the cache.
pub const KEY_TTL: Duration = Duration::from_secs(30);

const PEPPER: &str = "contact_pseudonym_pepper";

/// Why personal data could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored key or pepper does not open with the master key.
    #[error("a personal-data key cannot be opened with the master key")]
    BadKey,
}

/// Readers that speak `sqlx::Error` (projectors, the audit reader): a key that does not open
/// is a protocol-level failure for them.
impl From<PiiError> for sqlx::Error {
    fn from(e: PiiError) -> Self {
        match e {
            PiiError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        }
    }
}

/// The placeholder a destroyed string opens to, by the field it sits under.
pub fn placeholder(key: &str) -> &'static str {
    match key {
        "customer" | "to" | "phone" => PHONE_PLACEHOLDER,
        "email" => EMAIL_PLACEHOLDER,
        _ => TEXT_PLACEHOLDER,
    }
}

/// Seals and opens personal data; destroys keys.
pub struct Pii {
    pool: AnyPool,
    sealer: Sealer,
    clock: Clock,
    pepper: OnceCell<Vec<u8>>,
    /// kid → (key, or None once destroyed; when fetched).
    keys: Mutex<HashMap<String, (Option<Aes256Gcm>, Instant)>>,
    /// (aggregate type, id) → kid.
    owners: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for Pii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pii(..)")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pii {
    /// Over the read-model pool of the database holding the log.
    pub fn new(pool: AnyPool, sealer: Sealer, clock: Clock) -> Self {
        Self {
            pool,
            sealer,
            clock,
            pepper: OnceCell::new(),
            keys: Mutex::default(),
            owners: Mutex::default(),
        }
    }

    async fn pepper(&self) -> Result<&[u8], PiiError> {
        let pepper = self
            .pepper
            .get_or_try_init(|| async {
                let fresh = self.sealer.seal(&B64.encode(rand::random::<[u8; 32]>()));
                // First start: racing nodes insert one each, the first wins, all read it.
                sqlx::query(
                    "INSERT INTO pii_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(PEPPER)
                .bind(fresh.0)
                .execute(&self.pool)
                .await?;
                let sealed: String = sqlx::query("SELECT sealed FROM pii_secrets WHERE name = $1")
                    .bind(PEPPER)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("sealed")?;
                let b64 = self.sealer.open(&SealedSecret(sealed)).map_err(|_| PiiError::BadKey)?;
                B64.decode(b64).map_err(|_| PiiError::BadKey)
            })
            .await?;
        Ok(pepper)
    }

    /// The subject of a contact, which is also its Contact aggregate id:
    /// `{account}:{first 128 bits of HMAC-SHA256(pepper, phone) in hex}`. No phone number
    /// appears in it, and without the pepper it cannot be recomputed from a guessed number.
    pub async fn contact_subject(&self, account_id: &str, phone: &str) -> Result<String, PiiError> {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.pepper().await?)
            .map_err(|_| PiiError::BadKey)?;
        mac.update(phone.as_bytes());
        let digest = mac.finalize().into_bytes();
        Ok(format!("{account_id}:{}", hex::encode(&digest[..16])))
    }

    /// The subject of a directory card.
    pub fn card_subject(card_id: &str) -> String {
        switchboard_projections::erasure::card_subject(card_id)
    }

    /// The subject's live key, created if it has none.
    async fn live_key(&self, subject: &str) -> Result<(String, Aes256Gcm), PiiError> {
        let row = sqlx::query(
            "SELECT kid, sealed_key FROM pii_keys WHERE subject = $1 AND sealed_key IS NOT NULL
              ORDER BY created_at DESC, kid LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            let kid: String = row.try_get("kid")?;
            let cipher = self.unseal_key(&row.try_get::<String, _>("sealed_key")?)?;
            lock(&self.keys).insert(kid.clone(), (Some(cipher.clone()), Instant::now()));
            return Ok((kid, cipher));
        }
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let raw: [u8; 32] = rand::random();
        sqlx::query("INSERT INTO pii_keys (kid, subject, sealed_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&kid)
            .bind(subject)
            .bind(self.sealer.seal(&B64.encode(raw)).0)
            .bind(self.clock.now_ms())
            .execute(&self.pool)
            .await?;
        let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| PiiError::BadKey)?;
        lock(&self.keys).insert(kid.clone(), (Some(cipher.clone()), Instant::now()));
        Ok((kid, cipher))
    }

    fn unseal_key(&self, sealed: &str) -> Result<Aes256Gcm, PiiError> {
        let b64 = self.sealer.open(&SealedSecret(sealed.to_owned())).map_err(|_| PiiError::BadKey)?;
        let raw = B64.decode(b64).map_err(|_| PiiError::BadKey)?;
        Aes256Gcm::new_from_slice(&raw).map_err(|_| PiiError::BadKey)
    }

    /// A key from the cache: `Some(None)` once destroyed; `None` when it must be fetched.
    fn cached(&self, kid: &str) -> Option<Option<Aes256Gcm>> {
        match lock(&self.keys).get(kid) {
            Some((key, at)) if key.is_none() || at.elapsed() < KEY_TTL => Some(key.clone()),
            _ => None,
        }
    }

    /// A key by id from the database: `None` once destroyed (or unknown). Reads through
    /// `conn` so a projector sees its own transaction.
    async fn fetch_key(&self, conn: &mut AnyConnection, kid: &str) -> Result<Option<Aes256Gcm>, PiiError> {
        let sealed: Option<String> = sqlx::query("SELECT sealed_key FROM pii_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| row.try_get("sealed_key"))
            .transpose()?
            .flatten();
        let key = sealed.as_deref().map(|s| self.unseal_key(s)).transpose()?;
        lock(&self.keys).insert(kid.to_owned(), (key.clone(), Instant::now()));
        Ok(key)
    }

    /// The key id an aggregate's personal fields are sealed with, if it has one.
    async fn owner_kid(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<String>, PiiError> {
        let cache_key = (aggregate_type.to_owned(), aggregate_id.to_owned());
        if let Some(kid) = lock(&self.owners).get(&cache_key) {
            return Ok(Some(kid.clone()));
        }
        let kid: Option<String> =
            sqlx::query("SELECT kid FROM pii_aggregates WHERE aggregate_type = $1 AND aggregate_id = $2")
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.try_get("kid"))
                .transpose()?;
        if let Some(kid) = &kid {
            let mut owners = lock(&self.owners);
            if owners.len() > 100_000 {
                owners.clear();
            }
            owners.insert(cache_key, kid.clone());
        }
        Ok(kid)
    }

    /// Records which key an aggregate's events use from now on. An aggregate starts once
    /// (an interaction) or again after deletion (a card re-created after an erasure): the
    /// event that starts it decides, replacing an older, destroyed key.
    async fn set_owner(&self, aggregate_type: &str, aggregate_id: &str, kid: &str) -> Result<(), PiiError> {
        sqlx::query(
            "INSERT INTO pii_aggregates (aggregate_type, aggregate_id, kid) VALUES ($1, $2, $3)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET kid = excluded.kid",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        lock(&self.owners).insert((aggregate_type.to_owned(), aggregate_id.to_owned()), kid.to_owned());
        Ok(())
    }

    /// Replaces the personal fields of one event's payload with sealed strings (or, if the
    /// aggregate's key is already destroyed, with placeholders: plaintext never reaches the
    /// log). Events of aggregates without a key (older than this layer) are left as they are.
    pub async fn seal_payload(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &mut Value,
    ) -> Result<(), PiiError> {
        let paths = fields::personal(aggregate_type, event_type);
        if paths.is_empty() {
            return Ok(());
        }
        let Some(body) = fields::body_mut(payload, event_type) else { return Ok(()) };
        // The first event names the owner (its key is at hand); later ones find the owner's key.
        let (kid, key) = match fields::owner(aggregate_type, aggregate_id, event_type, body) {
            Some(owner) => {
                let subject = match owner {
                    fields::Owner::Contact { account_id, phone } => {
                        self.contact_subject(&account_id, &phone).await?
                    }
                    fields::Owner::Card { card_id } => Self::card_subject(&card_id),
                };
                let (kid, cipher) = self.live_key(&subject).await?;
                self.set_owner(aggregate_type, aggregate_id, &kid).await?;
                (kid, Some(cipher))
            }
            None => match self.owner_kid(aggregate_type, aggregate_id).await? {
                Some(kid) => {
                    let key = match self.cached(&kid) {
                        Some(key) => key,
                        None => self.fetch_key(&mut *self.pool.acquire().await?, &kid).await?,
                    };
                    (kid, key)
                }
                None => return Ok(()),
            },
        };
        for path in paths {
            fields::for_each_string(body, path, &mut |field, s| {
                *s = match &key {
                    Some(cipher) => seal_string(cipher, &kid, s),
                    None => placeholder(field).to_owned(),
                }
            });
        }
        Ok(())
    }

    /// Opens every sealed string of a payload (any event, any aggregate), reading missing
    /// keys through `conn`: destroyed keys give placeholders.
    pub async fn open_value(&self, conn: &mut AnyConnection, payload: &mut Value) -> Result<(), PiiError> {
        let (mut keys, missing) = self.keys_of(payload);
        for kid in missing {
            let key = self.fetch_key(conn, &kid).await?;
            keys.insert(kid, key);
        }
        replace_sealed(payload, &keys);
        Ok(())
    }

    /// [`Pii::open_value`] taking a connection from the pool only if a key is not cached.
    pub async fn open_payload(&self, payload: &mut Value) -> Result<(), PiiError> {
        let (mut keys, missing) = self.keys_of(payload);
        if !missing.is_empty() {
            let mut conn = self.pool.acquire().await?;
            for kid in missing {
                let key = self.fetch_key(&mut conn, &kid).await?;
                keys.insert(kid, key);
            }
        }
        replace_sealed(payload, &keys);
        Ok(())
    }

    /// The cached keys of a payload's sealed strings, and the ids still to fetch.
    #[allow(clippy::type_complexity)]
    fn keys_of(&self, payload: &mut Value) -> (HashMap<String, Option<Aes256Gcm>>, Vec<String>) {
        let mut keys = HashMap::new();
        let mut missing = Vec::new();
        fields::for_every_string(payload, &mut |_, s| {
            if let Some((kid, _)) = s.strip_prefix(PREFIX).and_then(|rest| rest.split_once(':'))
                && !keys.contains_key(kid)
                && !missing.iter().any(|k| k == kid)
            {
                match self.cached(kid) {
                    Some(key) => {
                        keys.insert(kid.to_owned(), key);
                    }
                    None => missing.push(kid.to_owned()),
                }
            }
        });
        (keys, missing)
    }

    /// Opens raw log rows in place (the projector's, router's and feed's reads).
    pub async fn open_stored(
        &self,
        conn: &mut AnyConnection,
        events: &mut [StoredEvent],
    ) -> Result<(), PiiError> {
        for event in events {
            open_stored_event(self, conn, event).await?;
        }
        Ok(())
    }

    /// Re-seals every live key and the pepper with the current master key (after a master
    /// key rotation, with the old key still configured as previous). Returns how many.
    pub async fn reseal_all(&self) -> Result<usize, PiiError> {
        let mut n = 0;
        let keys = sqlx::query("SELECT kid, sealed_key FROM pii_keys WHERE sealed_key IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        for row in keys {
            let sealed = SealedSecret(row.try_get("sealed_key")?);
            if self.sealer.needs_reseal(&sealed) {
                let fresh = self.sealer.reseal(&sealed).map_err(|_| PiiError::BadKey)?;
                // Only if not destroyed meanwhile.
                sqlx::query("UPDATE pii_keys SET sealed_key = $2 WHERE kid = $1 AND sealed_key IS NOT NULL")
                    .bind(row.try_get::<String, _>("kid")?)
                    .bind(fresh.0)
                    .execute(&self.pool)
                    .await?;
                n += 1;
            }
        }
        for row in sqlx::query("SELECT name, sealed FROM pii_secrets").fetch_all(&self.pool).await? {
            let sealed = SealedSecret(row.try_get("sealed")?);
            if self.sealer.needs_reseal(&sealed) {
                let fresh = self.sealer.reseal(&sealed).map_err(|_| PiiError::BadKey)?;
                sqlx::query("UPDATE pii_secrets SET sealed = $2 WHERE name = $1")
                    .bind(row.try_get::<String, _>("name")?)
                    .bind(fresh.0)
                    .execute(&self.pool)
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Destroys the keys of `subjects` created at or before `upto_ms` (a key made for a
    /// message that arrived after the erasure is not the erased data's), and forgets them
    /// here. Returns how many keys were destroyed.
    pub async fn destroy(&self, subjects: &[String], upto_ms: i64) -> Result<u64, PiiError> {
        let mut conn = self.pool.acquire().await?;
        switchboard_projections::erasure::destroy_keys(&mut conn, subjects, upto_ms).await?;
        // Every key this erasure destroyed, whoever got there first: the erasure projection
        // destroys the same keys when it applies the event (both stamp the erasure's time).
        // All of them leave this node's cache at once.
        let mut destroyed = Vec::new();
        for subject in subjects {
            let rows = sqlx::query(
                "SELECT kid FROM pii_keys WHERE subject = $1 AND sealed_key IS NULL AND erased_at = $2",
            )
            .bind(subject)
            .bind(upto_ms)
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                destroyed.push(row.try_get::<String, _>("kid")?);
            }
        }
        let mut keys = lock(&self.keys);
        for kid in &destroyed {
            keys.insert(kid.clone(), (None, Instant::now()));
        }
        Ok(destroyed.len() as u64)
    }
}

async fn open_stored_event(
    pii: &Pii,
    conn: &mut AnyConnection,
    event: &mut StoredEvent,
) -> Result<(), PiiError> {
    if !event.payload.contains(PREFIX) {
        return Ok(());
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&event.payload) else { return Ok(()) };
    pii.open_value(conn, &mut value).await?;
    event.payload = value.to_string();
    Ok(())
}

#[async_trait::async_trait]
impl switchboard_projections::runtime::Opener for Pii {
    async fn open(&self, conn: &mut AnyConnection, event: &mut StoredEvent) -> Result<(), sqlx::Error> {
        Ok(open_stored_event(self, conn, event).await?)
    }
}

/// Replaces every sealed string by its plaintext, or by a placeholder if its key is gone.
fn replace_sealed(payload: &mut Value, keys: &HashMap<String, Option<Aes256Gcm>>) {
    fields::for_every_string(payload, &mut |field, s| {
        let Some((kid, b64)) = s.strip_prefix(PREFIX).and_then(|rest| rest.split_once(':')) else { return };
        let opened = keys.get(kid).and_then(Option::as_ref).and_then(|cipher| open_string(cipher, b64));
        *s = opened.unwrap_or_else(|| placeholder(field).to_owned());
    });
}

fn seal_string(cipher: &Aes256Gcm, kid: &str, plaintext: &str) -> String {
    format!("{PREFIX}{kid}:{}", crate::crypto::seal_b64(cipher, plaintext))
}

fn open_string(cipher: &Aes256Gcm, b64: &str) -> Option<String> {
    crate::crypto::open_b64(cipher, b64)
}

#[cfg(test)]
mod tests {
    use switchboard_domain::PhoneNumber;
    use switchboard_domain::directory::Email;

    use super::*;

    #[test]
    fn a_sealed_string_opens_with_its_key_only() {
        let key = Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
        let other = Aes256Gcm::new_from_slice(&[8u8; 32]).expect("key");
        let sealed = seal_string(&key, "k1", "Jane Doe");
        assert!(sealed.starts_with("pii:v1:k1:") && !sealed.contains("Jane"));
        let b64 = sealed.strip_prefix("pii:v1:k1:").expect("prefix");
        assert_eq!(open_string(&key, b64).as_deref(), Some("Jane Doe"));
        assert_eq!(open_string(&other, b64), None);
        assert_eq!(open_string(&key, "bm9wZQ=="), None);
    }

    #[test]
    fn placeholders_still_parse_as_their_types() {
        PhoneNumber::parse(PHONE_PLACEHOLDER).expect("phone placeholder parses");
        Email::parse(EMAIL_PLACEHOLDER).expect("email placeholder parses");
        switchboard_domain::MessageText::parse(TEXT_PLACEHOLDER).expect("text placeholder parses");
        switchboard_domain::DisplayName::parse(TEXT_PLACEHOLDER).expect("name placeholder parses");
        assert_eq!(placeholder("to"), PHONE_PLACEHOLDER);
        assert_eq!(placeholder("body"), TEXT_PLACEHOLDER);
    }
}
