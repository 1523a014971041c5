//! The per-aggregate hash chain: its formula, and the verifier that recomputes every chain.
//!
//! Each stored event carries `prev_hash` (its predecessor's `hash`; [`GENESIS`] for the
//! first event of an aggregate) and `hash` = lowercase hex SHA-256 of
//! `prev_hash \n aggregate_type \n aggregate_id \n sequence \n event_type \n event_version \n
//! payload \n metadata`, payload and metadata being the stored JSON text byte for byte. The
//! formula is fixed: PostgreSQL computes it in a trigger (migration `..09_chain.sql`), SQLite
//! through [`link_hash`] in `crate::db`, and this verifier recomputes it, so all three must
//! agree (a unit test pins a known value).
//!
//! The verifier streams the log in (aggregate_type, aggregate_id, sequence) order, keeping
//! one aggregate's cursor in memory, and reports the FIRST broken link of each aggregate:
//! later links of a broken chain prove nothing more. Checks, in order, per event:
//! `missing_hash`, `sequence_gap` (sequences must run 1, 2, 3...), `broken_link` (prev_hash
//! is not the stored hash of the event before: one was deleted, reordered or re-hashed) and
//! `hash_mismatch` (the content no longer hashes to the stored hash: edited in place).
//! A chain cannot show that its LAST events were removed; signed checkpoints do
//! (`super::checkpoint`).

use std::time::Instant;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use switchboard_projections::Backend;
use utoipa::ToSchema;

use crate::db::Database;

/// `prev_hash` of an aggregate's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of one event given its predecessor's hash (see the module header).
#[allow(clippy::too_many_arguments)]
pub fn link_hash(
    prev_hash: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &str,
) -> String {
    let mut h = Sha256::new();
    for (i, part) in [
        prev_hash,
        aggregate_type,
        aggregate_id,
        &sequence.to_string(),
        event_type,
        event_version,
        payload,
        metadata,
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// What is wrong with a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The event has no hash (written around the append path, or the hash was erased).
    MissingHash,
    /// The sequence is not the one after its predecessor (events deleted, or the first is not 1).
    SequenceGap,
    /// `prev_hash` differs from the predecessor's stored hash (deleted, reordered or re-hashed).
    BrokenLink,
    /// The content no longer hashes to the stored hash (edited in place).
    HashMismatch,
}

/// The first broken link of one aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Break {
    /// Aggregate type (`Interaction`, `Agent`...).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The sequence of the first event that does not verify.
    pub sequence: i64,
    /// What is wrong.
    pub kind: BreakKind,
    /// What was expected (a hash, or the sequence for `sequence_gap`).
    pub expected: Option<String>,
    /// What is stored.
    pub found: Option<String>,
}

/// The verifier's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    /// No aggregate has a broken link.
    pub ok: bool,
    /// Aggregates checked.
    pub aggregates: u64,
    /// Events checked.
    pub events: u64,
    /// The first broken link of each broken aggregate, in log order.
    pub breaks: Vec<Break>,
    /// Seconds the check took.
    pub seconds: f64,
}

/// One stored event as the verifier sees it.
#[derive(Debug, Clone)]
pub struct Link {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence.
    pub sequence: i64,
    /// Event type.
    pub event_type: String,
    /// Event version.
    pub event_version: String,
    /// Stored payload text.
    pub payload: String,
    /// Stored metadata text.
    pub metadata: String,
    /// Stored prev_hash.
    pub prev_hash: Option<String>,
    /// Stored hash.
    pub hash: Option<String>,
}

/// Checks links fed in (aggregate, sequence) order; pure, so it is unit-tested without a
/// database.
#[derive(Debug, Default)]
pub struct Verifier {
    current: Option<(String, String)>,
    /// The stored hash and sequence of the previous event of the current aggregate; `None`
    /// once the aggregate is broken (the rest of it is skipped).
    last: Option<(i64, String)>,
    broken: bool,
    aggregates: u64,
    events: u64,
    breaks: Vec<Break>,
}

impl Verifier {
    /// Feeds the next event.
    pub fn push(&mut self, link: &Link) {
        self.events += 1;
        let same =
            self.current.as_ref().is_some_and(|(t, i)| *t == link.aggregate_type && *i == link.aggregate_id);
        if !same {
            self.current = Some((link.aggregate_type.clone(), link.aggregate_id.clone()));
            self.aggregates += 1;
            self.last = None;
            self.broken = false;
        }
        if self.broken {
            return;
        }
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.as_str()),
            None => (1, GENESIS),
        };
        let fail = |kind: BreakKind, expected: Option<String>, found: Option<String>| Break {
            aggregate_type: link.aggregate_type.clone(),
            aggregate_id: link.aggregate_id.clone(),
            sequence: link.sequence,
            kind,
            expected,
            found,
        };
        let (Some(hash), Some(prev)) = (&link.hash, &link.prev_hash) else {
            self.breaks.push(fail(BreakKind::MissingHash, None, None));
            self.broken = true;
            return;
        };
        let problem = if link.sequence != expected_seq {
            Some(fail(
                BreakKind::SequenceGap,
                Some(expected_seq.to_string()),
                Some(link.sequence.to_string()),
            ))
        } else if prev != expected_prev {
            Some(fail(BreakKind::BrokenLink, Some(expected_prev.to_owned()), Some(prev.clone())))
        } else {
            let computed = link_hash(
                prev,
                &link.aggregate_type,
                &link.aggregate_id,
                link.sequence,
                &link.event_type,
                &link.event_version,
                &link.payload,
                &link.metadata,
            );
            (computed != *hash).then(|| fail(BreakKind::HashMismatch, Some(computed), Some(hash.clone())))
        };
        match problem {
            Some(b) => {
                self.breaks.push(b);
                self.broken = true;
            }
            None => self.last = Some((link.sequence, hash.clone())),
        }
    }

    /// The report (`seconds` from `started`).
    pub fn finish(self, started: Instant) -> VerifyReport {
        VerifyReport {
            ok: self.breaks.is_empty(),
            aggregates: self.aggregates,
            events: self.events,
            breaks: self.breaks,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// Recomputes every chain, streaming the log (constant memory).
pub async fn verify(db: &Database) -> Result<VerifyReport, sqlx::Error> {
    verify_seeing(db, |_| {}).await
}

/// [`verify`], showing every stored event to `see` on the way: a caller that needs to look
/// at the log too (checkpoint verification) does it in the same single scan.
pub async fn verify_seeing(db: &Database, mut see: impl FnMut(&Link)) -> Result<VerifyReport, sqlx::Error> {
    let started = Instant::now();
    let sql = match db.backend {
        Backend::Postgres => {
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload::text AS payload, metadata::text AS metadata, prev_hash, hash
               FROM events ORDER BY aggregate_type, aggregate_id, sequence"
        }
        Backend::Sqlite => {
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, prev_hash, hash
               FROM events ORDER BY aggregate_type, aggregate_id, sequence"
        }
    };
    let mut verifier = Verifier::default();
    let mut rows = sqlx::query(sql).fetch(&db.any);
    while let Some(row) = rows.try_next().await? {
        let link = Link {
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        };
        see(&link);
        verifier.push(&link);
    }
    Ok(verifier.finish(started))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Link> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let payload = format!("{{\"n\":{seq}}}");
                let hash = link_hash(&prev, "T", "a", seq, "E", "1.0", &payload, "{}");
                let link = Link {
                    aggregate_type: "T".into(),
                    aggregate_id: "a".into(),
                    sequence: seq,
                    event_type: "E".into(),
                    event_version: "1.0".into(),
                    payload,
                    metadata: "{}".into(),
                    prev_hash: Some(prev.clone()),
                    hash: Some(hash.clone()),
                };
                prev = hash;
                link
            })
            .collect()
    }

    fn run(links: &[Link]) -> VerifyReport {
        let mut v = Verifier::default();
        links.iter().for_each(|l| v.push(l));
        v.finish(Instant::now())
    }

    #[test]
    fn the_formula_is_pinned() {
        // sha256("0…0\nT\na\n1\nE\n1.0\n{}\n{}"): PostgreSQL's trigger must give the same.
        let mut h = Sha256::new();
        h.update(format!("{GENESIS}\nT\na\n1\nE\n1.0\n{{}}\n{{}}").as_bytes());
        assert_eq!(link_hash(GENESIS, "T", "a", 1, "E", "1.0", "{}", "{}"), hex::encode(h.finalize()));
    }

    #[test]
    fn a_clean_chain_verifies() {
        let report = run(&chain(4));
        assert!(report.ok);
        assert_eq!((report.aggregates, report.events), (1, 4));
    }

    #[test]
    fn each_kind_of_tampering_is_reported_at_its_first_link() {
        let mut edited = chain(4);
        edited[2].payload = "{\"n\":99}".into();
        let r = run(&edited);
        assert_eq!((r.breaks.len(), r.breaks[0].sequence, r.breaks[0].kind), (1, 3, BreakKind::HashMismatch));

        let mut deleted = chain(4);
        deleted.remove(1);
        let r = run(&deleted);
        assert_eq!((r.breaks[0].sequence, r.breaks[0].kind), (3, BreakKind::SequenceGap));

        let mut reordered = chain(4);
        reordered.swap(1, 2);
        reordered[1].sequence = 2;
        reordered[2].sequence = 3;
        let r = run(&reordered);
        assert_eq!((r.breaks[0].sequence, r.breaks[0].kind), (2, BreakKind::BrokenLink));

        let mut missing = chain(4);
        missing[0].hash = None;
        let r = run(&missing);
        assert_eq!((r.breaks[0].sequence, r.breaks[0].kind), (1, BreakKind::MissingHash));
        assert_eq!(r.breaks.len(), 1, "one break per aggregate");
    }
}
