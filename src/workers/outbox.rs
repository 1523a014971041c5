//! The outbox sender: claims pending outbound messages (text, media, templates), paces them
//! per business number and recipient, calls the provider, records the outcome as an event.
//!
//! Policy (agent messages are at-least-once): a row is leased while in flight; if the node
//! dies after the provider accepted but before the outcome was recorded, the lease lapses and
//! the message is sent again, so the customer may see it twice but never misses it. Timeouts,
//! 5xx and 429 are retried with exponential back-off and jitter (honouring `Retry-After`);
//! a permanent 4xx is never retried and is recorded as a failure with the provider's code.

use std::time::Duration;

use sqlx::Row;
use switchboard_domain::MessageId;
use switchboard_domain::account::ProviderSettings;
use switchboard_domain::interaction::{InteractionCommand, OutboundMedia, ProviderFailure, TemplateMessage};
use switchboard_projections::Backend;
use tokio::sync::watch;

use crate::core::{Cause, Core};
use crate::providers::kaleyra::KaleyraClient;
use crate::providers::meta::MetaClient;
use crate::providers::twilio::TwilioClient;
use crate::providers::{
    MediaKind, OutboundContent, OutboundMedia as ProviderMedia, OutboundTemplate, SendOutcome,
};

/// How long a claimed message stays leased to the sender that claimed it. A batch is sent
/// concurrently and each call times out after 15 s, so a lease always outlives its batch.
const LEASE_MS: i64 = 60_000;
/// Messages claimed (and sent concurrently) per round.
const BATCH: i64 = 16;
/// After this many failed attempts a retryable failure becomes permanent.
pub const MAX_ATTEMPTS: i64 = 8;

/// A claimed row: either a message to send (`pending`) or a provider outcome that is not
/// yet recorded on its interaction (`sent` / `failed` with `recorded = 0`).
#[derive(Debug, Clone)]
struct Claimed {
    message_id: String,
    interaction_id: String,
    account_id: String,
    to_phone: String,
    body: String,
    /// `text`, `media` or `template`.
    kind: String,
    /// The media or template, as JSON.
    payload: Option<String>,
    attempts: i64,
    status: String,
    provider_message_id: Option<String>,
    error_code: Option<String>,
    error_reason: Option<String>,
}

async fn claim(core: &Core, now_ms: i64, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match core.db.backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE outbox
            SET locked_until = $1 + {LEASE_MS},
                attempts = CASE WHEN status = 'pending' THEN attempts + 1 ELSE attempts END
          WHERE message_id IN (SELECT message_id FROM outbox
                                WHERE ((status = 'pending' AND next_attempt_at <= $1)
                                       OR (status IN ('sent', 'failed') AND recorded = 0))
                                  AND (locked_until IS NULL OR locked_until < $1)
                                ORDER BY next_attempt_at LIMIT $2 {lock})
        RETURNING message_id, interaction_id, account_id, to_phone, body, kind, payload, attempts, status,
                  provider_message_id, error_code, error_reason"
    );
    let rows = sqlx::query(&sql).bind(now_ms).bind(limit).fetch_all(&core.db.any).await?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                message_id: row.try_get("message_id")?,
                interaction_id: row.try_get("interaction_id")?,
                account_id: row.try_get("account_id")?,
                to_phone: row.try_get("to_phone")?,
                body: row.try_get("body")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                status: row.try_get("status")?,
                provider_message_id: row.try_get("provider_message_id")?,
                error_code: row.try_get("error_code")?,
                error_reason: row.try_get("error_reason")?,
            })
        })
        .collect()
}

/// Exponential back-off with jitter (±20 %): `2^attempts` seconds, capped at 5 min, and
/// never sooner than the provider's `Retry-After`. `attempts` counts the attempt that just
/// failed, so the waits are about 2 s, 4 s, 8 s ... 128 s over `MAX_ATTEMPTS`.
pub fn backoff(attempts: i64, retry_after: Option<Duration>) -> Duration {
    let exp = 1u64 << attempts.clamp(0, 9);
    let base = Duration::from_secs(exp.min(300));
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    base.mul_f64(jitter).max(retry_after.unwrap_or_default())
}

/// Credentials that cannot be decrypted (the master key changed): a permanent failure.
fn unreadable_credentials(e: crate::crypto::CryptoError) -> SendOutcome {
    SendOutcome::Rejected {
        http_status: 0,
        error: crate::providers::ProviderError {
            code: "credentials_unreadable".into(),
            title: e.to_string(),
            detail: None,
        },
    }
}

/// What the row asks to send, in provider-neutral form. Media goes out as a signed link to
/// our blob store, made fresh for every attempt.
fn content(core: &Core, msg: &Claimed) -> Result<OutboundContent, SendOutcome> {
    let unreadable = |what: &str| SendOutcome::Rejected {
        http_status: 0,
        error: crate::providers::ProviderError {
            code: "invalid_outbox_row".into(),
            title: format!("the outbox row's {what} cannot be read"),
            detail: None,
        },
    };
    match msg.kind.as_str() {
        "text" => Ok(OutboundContent::Text(msg.body.clone())),
        "media" => {
            let media: OutboundMedia = msg
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .ok_or_else(|| unreadable("media"))?;
            Ok(OutboundContent::Media(ProviderMedia {
                kind: MediaKind::parse(&media.kind).ok_or_else(|| unreadable("media kind"))?,
                url: core.media_link(&media.blob, media.filename.as_deref()),
                content_type: media.blob.content_type.clone(),
                caption: media.caption,
                filename: media.filename,
            }))
        }
        "template" => {
            let template: TemplateMessage = msg
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .ok_or_else(|| unreadable("template"))?;
            Ok(OutboundContent::Template(OutboundTemplate {
                name: template.name,
                language: template.language,
                body_parameters: template.parameters,
            }))
        }
        _ => Err(unreadable("kind")),
    }
}

async fn send(core: &Core, msg: &Claimed) -> SendOutcome {
    let account = match core.accounts.state(&msg.account_id).await {
        Ok(snapshot) => snapshot.state,
        Err(e) => return SendOutcome::Retryable { reason: e.to_string(), retry_after: None },
    };
    let content = match content(core, msg) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    match &account.provider {
        Some(ProviderSettings::Meta(meta)) => {
            let token = match core.sealer.open(&meta.access_token) {
                Ok(t) => t,
                Err(e) => return unreadable_credentials(e),
            };
            MetaClient::new(core.http.clone())
                .send(
                    &meta.api_base_url,
                    &meta.api_version,
                    &meta.phone_number_id,
                    &token,
                    &msg.to_phone,
                    &content,
                )
                .await
        }
        Some(ProviderSettings::Twilio(twilio)) => {
            let token = match core.sealer.open(&twilio.auth_token) {
                Ok(t) => t,
                Err(e) => return unreadable_credentials(e),
            };
            let public_domain = account.details.public_domain.as_ref().map(AsRef::as_ref);
            let callback = core.receive_url(&msg.account_id, public_domain);
            TwilioClient::new(core.http.clone())
                .send(
                    &twilio.api_base_url,
                    &twilio.account_sid,
                    &token,
                    twilio.business_number.as_ref(),
                    &msg.to_phone,
                    &content,
                    callback.as_deref(),
                )
                .await
        }
        Some(ProviderSettings::Sinch(sinch)) => {
            let key_secret = match core.sealer.open(&sinch.key_secret) {
                Ok(t) => t,
                Err(e) => return unreadable_credentials(e),
            };
            core.sinch
                .send(
                    &sinch.auth_base_url,
                    &sinch.api_base_url,
                    &sinch.project_id,
                    &sinch.app_id,
                    &sinch.key_id,
                    &key_secret,
                    &msg.to_phone,
                    &content,
                )
                .await
        }
        Some(ProviderSettings::Kaleyra(kaleyra)) => {
            let api_key = match core.sealer.open(&kaleyra.api_key) {
                Ok(t) => t,
                Err(e) => return unreadable_credentials(e),
            };
            KaleyraClient::new(core.http.clone())
                .send(
                    &kaleyra.api_base_url,
                    &kaleyra.account_sid,
                    &api_key,
                    kaleyra.business_number.as_ref(),
                    &msg.to_phone,
                    &content,
                    Some(&msg.message_id),
                )
                .await
        }
        None => SendOutcome::Rejected {
            http_status: 0,
            error: crate::providers::ProviderError {
                code: "account_missing".into(),
                title: "the account has no provider".into(),
                detail: None,
            },
        },
    }
}

async fn record(core: &Core, msg: &Claimed, outcome: SendOutcome) -> anyhow::Result<()> {
    match outcome {
        SendOutcome::Accepted { provider_message_id } => {
            // Mark the row first: a status webhook can now find the interaction, and the
            // message is never sent again whatever happens to the command below (until it is
            // recorded, the row is claimed again to retry recording, not sending).
            sqlx::query(
                "UPDATE outbox SET status = 'sent', provider_message_id = $2, recorded = 0 WHERE message_id = $1",
            )
            .bind(msg.message_id.as_str())
            .bind(provider_message_id.as_str())
            .execute(&core.db.any)
            .await?;
            record_accepted(core, msg, provider_message_id).await
        }
        SendOutcome::Rejected { error, .. } => fail(core, msg, error.normalized_code(), error.reason()).await,
        SendOutcome::Retryable { reason, retry_after } => {
            if msg.attempts >= MAX_ATTEMPTS {
                let reason = format!("gave up after {} attempts: {reason}", msg.attempts);
                fail(core, msg, "retries_exhausted".into(), reason).await
            } else {
                let next = core.clock.now_ms() + backoff(msg.attempts, retry_after).as_millis() as i64;
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE message_id = $1",
                )
                .bind(msg.message_id.as_str())
                .bind(next)
                .bind(reason)
                .execute(&core.db.any)
                .await?;
                Ok(())
            }
        }
    }
}

/// Paced: try again when the rate allows, without counting this as an attempt.
async fn defer(core: &Core, msg: &Claimed, wait_ms: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE outbox SET next_attempt_at = $2, locked_until = NULL, attempts = attempts - 1 WHERE message_id = $1",
    )
    .bind(msg.message_id.as_str())
    .bind(core.clock.now_ms() + wait_ms.max(1))
    .execute(&core.db.any)
    .await?;
    Ok(())
}

async fn mark_recorded(core: &Core, msg: &Claimed) -> anyhow::Result<()> {
    sqlx::query("UPDATE outbox SET recorded = 1, locked_until = NULL WHERE message_id = $1")
        .bind(msg.message_id.as_str())
        .execute(&core.db.any)
        .await?;
    Ok(())
}

async fn record_accepted(core: &Core, msg: &Claimed, provider_message_id: String) -> anyhow::Result<()> {
    let message_id: MessageId = msg.message_id.parse()?;
    let meta = core.metadata(&Cause::System("outbox"), &msg.message_id);
    let cmd = InteractionCommand::RecordOutboundAccepted {
        message_id,
        provider_message_id: provider_message_id.clone(),
        at: core.clock.now(),
    };
    core.interactions.execute(&msg.interaction_id, cmd, meta).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Statuses that overtook the provider's answer were parked: they can land now. A failure
    // leaves the row unrecorded, so this is retried.
    crate::services::ingest::replay_parked(core, &msg.account_id, &provider_message_id, &msg.interaction_id)
        .await?;
    mark_recorded(core, msg).await
}

async fn fail(core: &Core, msg: &Claimed, code: String, reason: String) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'failed', error_code = $2, error_reason = $3, recorded = 0 WHERE message_id = $1",
    )
    .bind(msg.message_id.as_str())
    .bind(code.as_str())
    .bind(reason.as_str())
    .execute(&core.db.any)
    .await?;
    record_failed(core, msg, code, reason).await
}

async fn record_failed(core: &Core, msg: &Claimed, code: String, reason: String) -> anyhow::Result<()> {
    let message_id: MessageId = msg.message_id.parse()?;
    let meta = core.metadata(&Cause::System("outbox"), &msg.message_id);
    let cmd = InteractionCommand::RecordOutboundFailed {
        message_id,
        failure: ProviderFailure { code, reason },
        at: core.clock.now(),
    };
    core.interactions.execute(&msg.interaction_id, cmd, meta).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    mark_recorded(core, msg).await
}

async fn process(core: &Core, msg: Claimed) {
    let result = match msg.status.as_str() {
        "pending" => match core.rate.try_acquire(&msg.account_id, &msg.to_phone, core.clock.now_ms()) {
            Ok(()) => {
                let outcome = send(core, &msg).await;
                record(core, &msg, outcome).await
            }
            Err(wait_ms) => defer(core, &msg, wait_ms).await,
        },
        // The provider answered earlier but the outcome did not reach the interaction.
        "sent" => match msg.provider_message_id.clone() {
            Some(id) => record_accepted(core, &msg, id).await,
            None => Ok(()),
        },
        _ => {
            let (code, reason) = (msg.error_code.clone(), msg.error_reason.clone());
            record_failed(core, &msg, code.unwrap_or_default(), reason.unwrap_or_default()).await
        }
    };
    if let Err(e) = result {
        // The lease lapses and the row is claimed again.
        tracing::error!(message_id = %msg.message_id, error = %e, "recording a send outcome failed");
    }
}

/// Sends (or finishes recording) everything due now, concurrently; returns how many rows
/// were claimed.
pub async fn run_once(core: &Core) -> anyhow::Result<usize> {
    // A read first: most wake-ups find nothing to do, and a read takes no row locks, writes
    // no WAL and, on SQLite, does not compete for the single write lock.
    let now_ms = core.clock.now_ms();
    let due: Option<(String,)> = sqlx::query_as(
        "SELECT message_id FROM outbox
          WHERE ((status = 'pending' AND next_attempt_at <= $1) OR (status IN ('sent', 'failed') AND recorded = 0))
            AND (locked_until IS NULL OR locked_until < $1)
          LIMIT 1",
    )
    .bind(now_ms)
    .fetch_optional(&core.db.any)
    .await?;
    if due.is_none() {
        return Ok(0);
    }
    let claimed = claim(core, now_ms, BATCH).await?;
    let n = claimed.len();
    futures_util::future::join_all(claimed.into_iter().map(|msg| process(core, msg))).await;
    Ok(n)
}

/// Runs the sender until shutdown. New outbox rows appear after the outbox projection runs,
/// so the commit signal wakes it; polling covers retries that come due.
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_once(&core).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox poll failed"),
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}
