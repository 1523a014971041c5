//! The media fetcher: downloads customer media into the blob store, promptly, and records
//! the outcome on the interaction.
//!
//! Rows come from the `media_fetch` projection. Each is leased while in flight, so a node
//! dying mid-download only delays it; the blob store is content-addressed and the command is
//! idempotent, so a download that happens twice stores and records once. Meta's download
//! URLs expire after 5 minutes, which is why a retry resolves the media id again instead of
//! keeping the URL. Timeouts, 5xx and 429 are retried with back-off; a refusal, a vanished
//! file or a file over the size limit is recorded as unavailable, with a stable code, so the
//! agent sees why.

use std::time::Duration;

use sqlx::Row;
use switchboard_domain::MessageId;
use switchboard_domain::account::ProviderSettings;
use switchboard_domain::interaction::{InteractionCommand, MediaBlob, parse_content_type};
use switchboard_projections::Backend;
use tokio::sync::watch;

use crate::core::{Cause, Core};
use crate::providers::kaleyra::KaleyraClient;
use crate::providers::meta::MetaClient;
use crate::providers::twilio::TwilioClient;
use crate::providers::{FetchError, FetchedMedia, MediaSource};

/// A claimed download stays leased this long (a download times out after 15 s per request).
const LEASE_MS: i64 = 120_000;
/// Downloads per round, run concurrently.
const BATCH: i64 = 8;
/// After this many failed attempts a retryable failure becomes permanent (about 4 minutes
/// of back-off in all).
pub const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone)]
struct Claimed {
    message_id: String,
    interaction_id: String,
    account_id: String,
    source: String,
    content_type: Option<String>,
    attempts: i64,
}

const DUE: &str =
    "status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until < $1)";

async fn claim(core: &Core, now_ms: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match core.db.backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE media_fetch SET locked_until = $1 + {LEASE_MS}, attempts = attempts + 1
          WHERE message_id IN (SELECT message_id FROM media_fetch WHERE {DUE}
                                ORDER BY next_attempt_at LIMIT $2 {lock})
        RETURNING message_id, interaction_id, account_id, source, content_type, attempts"
    );
    let rows = sqlx::query(&sql).bind(now_ms).bind(BATCH).fetch_all(&core.db.any).await?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                message_id: row.try_get("message_id")?,
                interaction_id: row.try_get("interaction_id")?,
                account_id: row.try_get("account_id")?,
                source: row.try_get("source")?,
                content_type: row.try_get("content_type")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Downloads one item through the account's provider.
async fn fetch(core: &Core, row: &Claimed) -> Result<FetchedMedia, FetchError> {
    let account =
        core.accounts.state(&row.account_id).await.map_err(|e| FetchError::Retryable(e.to_string()))?.state;
    let unreadable = |e: crate::crypto::CryptoError| FetchError::Permanent(format!("credentials: {e}"));
    let max = core.max_media_bytes;
    match (&account.provider, MediaSource::from_reference(&row.source)) {
        (Some(ProviderSettings::Meta(meta)), MediaSource::MetaMediaId(id)) => {
            let token = core.sealer.open(&meta.access_token).map_err(unreadable)?;
            MetaClient::new(core.http.clone())
                .fetch_media(&meta.api_base_url, &meta.api_version, &token, &id, max)
                .await
        }
        (Some(ProviderSettings::Twilio(twilio)), MediaSource::Url(url)) => {
            let token = core.sealer.open(&twilio.auth_token).map_err(unreadable)?;
            TwilioClient::new(core.http.clone())
                .fetch_media(&twilio.api_base_url, &twilio.account_sid, &token, &url, max)
                .await
        }
        (Some(ProviderSettings::Sinch(_)), MediaSource::Url(url)) => core.sinch.fetch_media(&url, max).await,
        (Some(ProviderSettings::Kaleyra(_)), MediaSource::Url(url)) => {
            KaleyraClient::new(core.http.clone()).fetch_media(&url, max).await
        }
        (None, _) => Err(FetchError::Permanent("the account has no provider".into())),
        (Some(provider), source) => Err(FetchError::Permanent(format!(
            "a {} account cannot fetch {}",
            provider.kind(),
            match source {
                MediaSource::MetaMediaId(_) => "a Meta media id",
                MediaSource::Url(_) => "a URL",
            }
        ))),
    }
}

async fn record(
    core: &Core,
    row: &Claimed,
    outcome: Result<MediaBlob, (String, String)>,
) -> anyhow::Result<()> {
    let message_id: MessageId = row.message_id.parse()?;
    let meta = core.metadata(&Cause::System("media"), &row.message_id);
    let cmd = InteractionCommand::RecordInboundMedia { message_id, outcome, at: core.clock.now() };
    core.interactions.execute(&row.interaction_id, cmd, meta).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Marked here as well as by the projection, so the row is not claimed again while the
    // projection catches up.
    sqlx::query("UPDATE media_fetch SET status = 'done', locked_until = NULL WHERE message_id = $1")
        .bind(row.message_id.as_str())
        .execute(&core.db.any)
        .await?;
    Ok(())
}

async fn process(core: &Core, row: Claimed) -> anyhow::Result<()> {
    let outcome = match fetch(core, &row).await {
        Ok(media) => {
            let size = media.bytes.len() as u64;
            let sha = core.blobs.put(&media.bytes).await?;
            // The download's own type wins; then what the webhook said; then bytes.
            let content_type = [media.content_type.as_deref(), row.content_type.as_deref()]
                .into_iter()
                .flatten()
                .find_map(|ct| parse_content_type(ct).ok())
                .unwrap_or_else(|| "application/octet-stream".into());
            Ok(MediaBlob::new(&sha, size, &content_type)?)
        }
        Err(FetchError::TooLarge { limit }) => {
            Err(("too_large".to_owned(), format!("the media is larger than the {limit}-byte limit")))
        }
        Err(FetchError::Permanent(reason)) => Err(("download_failed".to_owned(), reason)),
        Err(FetchError::Retryable(reason)) if row.attempts < MAX_ATTEMPTS => {
            let next = core.clock.now_ms() + super::outbox::backoff(row.attempts, None).as_millis() as i64;
            sqlx::query(
                "UPDATE media_fetch SET next_attempt_at = $2, locked_until = NULL, last_error = $3
                  WHERE message_id = $1",
            )
            .bind(row.message_id.as_str())
            .bind(next)
            .bind(reason)
            .execute(&core.db.any)
            .await?;
            return Ok(());
        }
        Err(FetchError::Retryable(reason)) => Err((
            "retries_exhausted".to_owned(),
            format!("gave up after {} attempts: {reason}", row.attempts),
        )),
    };
    if let Err((code, reason)) = &outcome {
        tracing::warn!(message_id = %row.message_id, %code, %reason, "customer media unavailable");
    }
    record(core, &row, outcome).await
}

/// Downloads everything due now, concurrently; returns how many rows were claimed.
pub async fn run_once(core: &Core) -> anyhow::Result<usize> {
    let now_ms = core.clock.now_ms();
    // A read first: most wake-ups find nothing, and a read takes no locks.
    let due: Option<(String,)> =
        sqlx::query_as(&format!("SELECT message_id FROM media_fetch WHERE {DUE} LIMIT 1"))
            .bind(now_ms)
            .fetch_optional(&core.db.any)
            .await?;
    if due.is_none() {
        return Ok(0);
    }
    let claimed = claim(core, now_ms).await?;
    let n = claimed.len();
    let results = futures_util::future::join_all(claimed.into_iter().map(|row| {
        let id = row.message_id.clone();
        async move { (id, process(core, row).await) }
    }))
    .await;
    for (message_id, result) in results {
        if let Err(e) = result {
            // The lease lapses and the row is claimed again.
            tracing::error!(%message_id, error = %e, "fetching customer media failed");
        }
    }
    Ok(n)
}

/// Runs the fetcher until shutdown, woken by commits (new rows come from the projection)
/// and polling (retries that come due).
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(&core).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "media fetch poll failed"),
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}
