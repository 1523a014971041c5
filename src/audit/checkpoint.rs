//! Signed checkpoints of the chain heads: what makes truncation detectable.
//!
//! A hash chain shows edits, deletions and reorderings inside the log, but not the removal
//! of an aggregate's LAST events (or of a whole aggregate): what remains is still a valid
//! chain. A checkpoint records every aggregate's head (last sequence and its hash), signed
//! with Ed25519, and is meant to be copied off the machine (to the auditor, a ticket, a WORM
//! bucket). Checking it later: the signature must hold under the trusted public key, every
//! head must still exist with the same hash (`truncated` / `rewritten` otherwise), and the
//! chains must verify (so events appended since are fine: they extend the recorded heads).
//!
//! The signature covers the canonical JSON of everything but `signature`: the fields in the
//! declared order of [`Unsigned`], serialised by serde_json without whitespace. A checkpoint
//! parsed from a file re-serialises to the same bytes (only strings and integers).
//!
//! The signing key is derived from the master key (SHA-256 over a domain-separation label
//! and the current master key bytes: a 32-byte Ed25519 seed), or given explicitly as
//! `SWITCHBOARD_AUDIT_KEY` (base64 of a 32-byte seed). A database administrator who can
//! rewrite the log and re-hash every chain still cannot forge a checkpoint without it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use switchboard_projections::Backend;
use utoipa::ToSchema;

use super::chain::{self, VerifyReport};
use crate::db::Database;

/// Checkpoint format version.
pub const VERSION: u32 = 1;
const DERIVATION_LABEL: &[u8] = b"switchboard/audit-checkpoint-signing-key/v1\n";

/// Why a signer or a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of 32 bytes.
    #[error("{0} must be base64 of 32 bytes")]
    Malformed(&'static str),
}

/// Signs checkpoints.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public_key())
    }
}

fn seed(b64: &str, what: &'static str) -> Result<[u8; 32], KeyError> {
    B64.decode(b64.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(KeyError::Malformed(what))
}

impl Signer {
    /// From the master keyring (current key first, as in `SWITCHBOARD_MASTER_KEY`), unless an
    /// explicit audit key (base64 32-byte seed) is given.
    pub fn new(master_keyring: &str, audit_key: Option<&str>) -> Result<Self, KeyError> {
        if let Some(key) = audit_key.filter(|k| !k.trim().is_empty()) {
            return Ok(Self { key: SigningKey::from_bytes(&seed(key, "SWITCHBOARD_AUDIT_KEY")?) });
        }
        let current = master_keyring.split(',').next().unwrap_or_default();
        let master = seed(current, "SWITCHBOARD_MASTER_KEY")?;
        let mut h = Sha256::new();
        h.update(DERIVATION_LABEL);
        h.update(master);
        let derived: [u8; 32] = h.finalize().into();
        Ok(Self { key: SigningKey::from_bytes(&derived) })
    }

    /// The public key, base64 (what auditors keep to check checkpoints).
    pub fn public_key(&self) -> String {
        B64.encode(self.key.verifying_key().to_bytes())
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

/// Parses a base64 public key (`--public-key`).
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = seed(b64, "the public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Malformed("the public key"))
}

/// One aggregate's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Its last sequence.
    pub sequence: i64,
    /// That event's chain hash (empty if it had none).
    pub hash: String,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Format version (1).
    pub version: u32,
    /// When it was made (RFC 3339 UTC).
    pub created_at: String,
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// The log's last global position then.
    pub last_position: i64,
    /// Events in the log then.
    pub events: i64,
    /// Aggregates (= heads).
    pub aggregates: i64,
    /// Hex SHA-256 over the heads, one `type\nid\nsequence\nhash\n` per head in order.
    pub heads_sha256: String,
    /// Every aggregate's head, ordered by (type, id).
    pub heads: Vec<Head>,
    /// The signer's Ed25519 public key, base64.
    pub public_key: String,
    /// Ed25519 signature of the canonical JSON of the other fields, base64.
    pub signature: String,
}

/// What is signed: every field but the signature, in this order.
#[derive(Serialize)]
pub struct Unsigned<'a> {
    version: u32,
    created_at: &'a str,
    backend: &'a str,
    last_position: i64,
    events: i64,
    aggregates: i64,
    heads_sha256: &'a str,
    heads: &'a [Head],
    public_key: &'a str,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&Unsigned {
            version: self.version,
            created_at: &self.created_at,
            backend: &self.backend,
            last_position: self.last_position,
            events: self.events,
            aggregates: self.aggregates,
            heads_sha256: &self.heads_sha256,
            heads: &self.heads,
            public_key: &self.public_key,
        })
        .unwrap_or_default()
    }
}

/// Hex SHA-256 over the heads.
pub fn heads_sha256(heads: &[Head]) -> String {
    let mut h = Sha256::new();
    for head in heads {
        h.update(format!(
            "{}\n{}\n{}\n{}\n",
            head.aggregate_type, head.aggregate_id, head.sequence, head.hash
        ));
    }
    hex::encode(h.finalize())
}

/// Makes and signs a checkpoint of the current heads, read in one snapshot.
pub async fn create(db: &Database, signer: &Signer, now: DateTime<Utc>) -> Result<Checkpoint, sqlx::Error> {
    let mut tx = db.any.begin().await?;
    let position_sql = match db.backend {
        Backend::Postgres => {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
            "SELECT COALESCE(MAX(global_position), 0) FROM events"
        }
        Backend::Sqlite => "SELECT COALESCE(MAX(global_position), 0) FROM event_log",
    };
    let rows = sqlx::query(
        "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.hash FROM events e
           JOIN (SELECT aggregate_type, aggregate_id, MAX(sequence) AS s FROM events
                  GROUP BY aggregate_type, aggregate_id) m
             ON m.aggregate_type = e.aggregate_type AND m.aggregate_id = e.aggregate_id AND m.s = e.sequence
          ORDER BY e.aggregate_type, e.aggregate_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let heads = rows
        .iter()
        .map(|r| {
            Ok(Head {
                aggregate_type: r.try_get("aggregate_type")?,
                aggregate_id: r.try_get("aggregate_id")?,
                sequence: r.try_get("sequence")?,
                hash: r.try_get::<Option<String>, _>("hash")?.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let (events,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&mut *tx).await?;
    let (last_position,): (i64,) = sqlx::query_as(position_sql).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    let mut checkpoint = Checkpoint {
        version: VERSION,
        created_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        backend: match db.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
        .to_owned(),
        last_position,
        events,
        aggregates: heads.len() as i64,
        heads_sha256: heads_sha256(&heads),
        heads,
        public_key: signer.public_key(),
        signature: String::new(),
    };
    checkpoint.signature = B64.encode(signer.key.sign(&checkpoint.canonical()).to_bytes());
    Ok(checkpoint)
}

/// What is wrong with a recorded head now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeadProblemKind {
    /// The head event (or the whole aggregate) is gone: the log was cut back.
    Truncated,
    /// The head event exists with another hash.
    Rewritten,
}

/// A recorded head that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeadProblem {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The recorded head sequence.
    pub sequence: i64,
    /// What is wrong.
    pub kind: HeadProblemKind,
    /// The recorded hash.
    pub expected: String,
    /// The stored hash now (`null`: no such event).
    pub found: Option<String>,
}

/// The result of checking a checkpoint against the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointReport {
    /// Signature valid, every head holds and every chain verifies.
    pub ok: bool,
    /// The signature holds under the trusted key (nothing else is checked when it does not).
    pub signature_valid: bool,
    /// Heads checked.
    pub heads_checked: u64,
    /// Heads that no longer hold.
    pub problems: Vec<HeadProblem>,
    /// The chain verification (absent when the signature failed).
    pub chain: Option<VerifyReport>,
}

/// Whether the checkpoint is signed by `trusted` and internally consistent.
pub fn signature_holds(checkpoint: &Checkpoint, trusted: &VerifyingKey) -> bool {
    let Ok(bytes) = B64.decode(&checkpoint.signature) else { return false };
    let Ok(signature) = Signature::from_slice(&bytes) else { return false };
    checkpoint.public_key == B64.encode(trusted.to_bytes())
        && checkpoint.heads_sha256 == heads_sha256(&checkpoint.heads)
        && checkpoint.aggregates == checkpoint.heads.len() as i64
        && trusted.verify_strict(&checkpoint.canonical(), &signature).is_ok()
}

/// Checks a checkpoint against the log (see the module header).
pub async fn verify(
    db: &Database,
    checkpoint: &Checkpoint,
    trusted: &VerifyingKey,
) -> Result<CheckpointReport, sqlx::Error> {
    if !signature_holds(checkpoint, trusted) {
        return Ok(CheckpointReport {
            ok: false,
            signature_valid: false,
            heads_checked: 0,
            problems: vec![],
            chain: None,
        });
    }
    // One scan of the log serves both checks: every recorded head is looked for while the
    // chains are verified (a lookup per head was a round trip per aggregate).
    let index: HashMap<(&str, &str), usize> = checkpoint
        .heads
        .iter()
        .enumerate()
        .map(|(i, h)| ((h.aggregate_type.as_str(), h.aggregate_id.as_str()), i))
        .collect();
    let mut found: Vec<Option<Option<String>>> = vec![None; checkpoint.heads.len()];
    let chain = chain::verify_seeing(db, |link| {
        if let Some(&i) = index.get(&(link.aggregate_type.as_str(), link.aggregate_id.as_str()))
            && link.sequence == checkpoint.heads[i].sequence
        {
            found[i] = Some(link.hash.clone());
        }
    })
    .await?;
    let mut problems = Vec::new();
    for (head, found) in checkpoint.heads.iter().zip(found) {
        let kind = match &found {
            None => Some(HeadProblemKind::Truncated),
            Some(hash) if hash.as_deref().unwrap_or_default() != head.hash => {
                Some(HeadProblemKind::Rewritten)
            }
            Some(_) => None,
        };
        if let Some(kind) = kind {
            problems.push(HeadProblem {
                aggregate_type: head.aggregate_type.clone(),
                aggregate_id: head.aggregate_id.clone(),
                sequence: head.sequence,
                kind,
                expected: head.hash.clone(),
                found: found.flatten(),
            });
        }
    }
    Ok(CheckpointReport {
        ok: problems.is_empty() && chain.ok,
        signature_valid: true,
        heads_checked: checkpoint.heads.len() as u64,
        problems,
        chain: Some(chain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(signer: &Signer) -> Checkpoint {
        let heads = vec![Head {
            aggregate_type: "T".into(),
            aggregate_id: "a".into(),
            sequence: 3,
            hash: "ab".into(),
        }];
        let mut c = Checkpoint {
            version: VERSION,
            created_at: "2026-11-21T00:00:00.000Z".into(),
            backend: "sqlite".into(),
            last_position: 3,
            events: 3,
            aggregates: 1,
            heads_sha256: heads_sha256(&heads),
            heads,
            public_key: signer.public_key(),
            signature: String::new(),
        };
        c.signature = B64.encode(signer.key.sign(&c.canonical()).to_bytes());
        c
    }

    #[test]
    fn signatures_hold_only_for_the_unchanged_checkpoint_and_the_trusted_key() {
        let master = crate::crypto::Sealer::generate_key();
        let signer = Signer::new(&master, None).expect("signer");
        let c = sample(&signer);
        assert!(signature_holds(&c, &signer.verifying_key()));
        // Through a file: same canonical bytes.
        let reparsed: Checkpoint =
            serde_json::from_str(&serde_json::to_string_pretty(&c).expect("json")).expect("parse");
        assert!(signature_holds(&reparsed, &signer.verifying_key()));

        let mut edited = c.clone();
        edited.heads[0].sequence = 2;
        edited.heads_sha256 = heads_sha256(&edited.heads);
        assert!(!signature_holds(&edited, &signer.verifying_key()));

        // A forger's own key, embedded in the file, is not the trusted one.
        let forger = Signer::new(&crate::crypto::Sealer::generate_key(), None).expect("signer");
        let forged = sample(&forger);
        assert!(!signature_holds(&forged, &signer.verifying_key()));

        // The derivation is stable and an explicit audit key wins.
        assert_eq!(Signer::new(&master, None).expect("again").public_key(), signer.public_key());
        let explicit = Signer::new(&master, Some(&crate::crypto::Sealer::generate_key())).expect("explicit");
        assert_ne!(explicit.public_key(), signer.public_key());
        assert!(Signer::new(&master, Some("not base64")).is_err());
    }
}
