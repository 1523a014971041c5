//! Ingesting a provider webhook: customer messages join (or open) interactions, delivery
//! statuses advance outbound messages.
//!
//! Which interaction a message joins is decided by the Interaction aggregate itself (it
//! refuses messages once closed or 24 h after the customer's last one); the Contact aggregate
//! points at the current interaction and moves the pointer with a compare-and-set, so two
//! nodes or two concurrent webhooks agree on one interaction. The provider message id is
//! unique in the log, so a redelivery appends nothing wherever it is routed.
//!
//! Only a message that opens a NEW interaction asks the contact manager anything (one
//! indexed query, and none at all when the account has no whitelist, default list or
//! list condition): which lists hold the number (routing's `in_contact_list`), the
//! whitelist's verdict, and whether to save the number to the account's default list.

use std::collections::BTreeSet;
use switchboard_domain::account::Account;
use switchboard_domain::contact::{ContactCommand, ContactError};

use switchboard_domain::interaction::{
    DeliveryStatus, InboundContent, InteractionCommand, InteractionError, ProviderFailure, RoutingSetup,
    Screening,
};
use switchboard_domain::{AccountId, ContactListId, InteractionId, MessageId, PhoneNumber};

use crate::core::{Cause, Core};
use crate::providers::{self, InboundBody, InboundMessage, StatusUpdate};
use crate::runtime::CommandError;
use crate::services::contacts;

/// How many times the contact pointer may move under us before giving up.
const MAX_ROUTING_ATTEMPTS: usize = 5;

/// Why ingestion failed. Nothing after the failing item was appended; items before it were
/// (each is idempotent, so the provider's retry of the whole webhook completes it).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A field the domain needs is not valid (e.g. a number that is not E.164).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The store or an actor failed; the provider should retry.
    #[error("temporarily unable to record: {0}")]
    Unavailable(String),
}

fn unavailable<E: std::error::Error>(e: CommandError<E>) -> IngestError {
    IngestError::Unavailable(e.to_string())
}

/// A customer message ready to be recorded (validated up front, so a webhook with one bad
/// message appends nothing).
pub struct ValidMessage {
    customer: PhoneNumber,
    message: InboundMessage,
}

/// Validates every message of a webhook before any is recorded.
pub fn validate(messages: Vec<InboundMessage>) -> Result<Vec<ValidMessage>, IngestError> {
    messages
        .into_iter()
        .map(|message| {
            let customer = PhoneNumber::parse(&message.from)
                .map_err(|e| IngestError::Invalid { field: "from", reason: e.to_string() })?;
            Ok(ValidMessage { customer, message })
        })
        .collect()
}

fn content(body: &InboundBody) -> InboundContent {
    match body {
        InboundBody::Text(text) => InboundContent::Text { body: text.clone() },
        InboundBody::Media(media) => InboundContent::Media {
            kind: media.kind.as_str().to_owned(),
            source: media.source.to_reference(),
            content_type: media.content_type.clone(),
            caption: media.caption.clone(),
            filename: media.filename.clone(),
        },
        InboundBody::Unsupported { kind, summary } => {
            InboundContent::Other { kind: kind.clone(), summary: summary.clone() }
        }
    }
}

/// Records one customer message; returns the interaction it joined, or `None` when it was a
/// redelivery of a message already in the log.
pub async fn record_message(
    core: &Core,
    account_id: AccountId,
    account: &Account,
    valid: &ValidMessage,
    provider: &'static str,
) -> Result<Option<InteractionId>, IngestError> {
    let msg = &valid.message;
    // The Contact aggregate id is pseudonymous (`{account}:{keyed hash}`): no phone number in
    // the log's ids (ADR 0020).
    let contact_id = core
        .pii
        .contact_subject(&account_id.to_string(), valid.customer.as_ref())
        .await
        .map_err(|e| IngestError::Unavailable(e.to_string()))?;
    let cause = Cause::Provider(provider);
    let metadata = core.metadata(&cause, &msg.provider_message_id);
    let receive = |at, contact_lists: BTreeSet<ContactListId>, screening: Screening| {
        InteractionCommand::ReceiveCustomerMessage {
            account_id,
            customer: valid.customer.clone(),
            customer_name: msg.profile_name.clone(),
            routing: account.routing_plan.clone().map(|plan| RoutingSetup {
                plan,
                rules: account.rules.clone(),
                contact_lists,
            }),
            screening,
            seed: uuid::Uuid::now_v7(),
            message_id: MessageId::new(),
            provider_message_id: msg.provider_message_id.clone(),
            content: content(&msg.body),
            sent_at: msg.timestamp,
            at,
        }
    };
    for _ in 0..MAX_ROUTING_ATTEMPTS {
        let now = core.clock.now();
        let current = core.contacts.state(&contact_id).await.map_err(unavailable)?.state.current;
        if let Some(interaction_id) = current {
            // Joining: what the contact manager says does not matter (ignored by the domain).
            let join = receive(now, BTreeSet::new(), Screening::Admitted);
            match core.interactions.execute(&interaction_id.to_string(), join, metadata.clone()).await {
                Ok(events) => return Ok((!events.is_empty()).then_some(interaction_id)),
                Err(CommandError::DuplicateProviderMessage) => return Ok(None),
                Err(CommandError::Rejected(InteractionError::NotJoinable)) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        let interaction_id = InteractionId::new();
        let start = ContactCommand::StartInteraction { interaction_id, previous: current, at: now };
        match core.contacts.execute(&contact_id, start, metadata.clone()).await {
            Ok(_) => {}
            Err(CommandError::Rejected(ContactError::CurrentInteractionChanged { .. })) => continue,
            Err(e) => return Err(unavailable(e)),
        }
        // Only a message that opens a new interaction gets here: the one lookup.
        let new_contact = contacts::on_new_interaction(core, account, &valid.customer)
            .await
            .map_err(|e| IngestError::Unavailable(e.to_string()))?;
        let open = receive(now, new_contact.lists.clone(), new_contact.screening.clone());
        let opened =
            match core.interactions.execute(&interaction_id.to_string(), open, metadata.clone()).await {
                Ok(events) => (!events.is_empty()).then_some(interaction_id),
                Err(CommandError::DuplicateProviderMessage) => None,
                Err(e) => return Err(unavailable(e)),
            };
        if let (Some(_), Some(list)) = (opened, new_contact.save_to) {
            // The message is recorded; failing to save the card must not make the provider
            // redeliver it (the redelivery would join, and never save either).
            if let Err(e) = contacts::save_unknown(
                core,
                list,
                &valid.customer,
                msg.profile_name.as_deref(),
                &msg.provider_message_id,
            )
            .await
            {
                tracing::warn!(error = %e, %account_id, "saving an unknown number to the default list failed");
            }
        }
        return Ok(opened);
    }
    Err(IngestError::Unavailable("the contact's interaction kept changing".into()))
}

/// What happened to a status update.
#[derive(Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    /// Recorded (or already known: statuses never go backwards).
    Recorded,
    /// No outbound message with that provider id on this account.
    UnknownMessage,
    /// No outbound message carries that provider id yet (the status overtook the provider's
    /// answer to our send): parked, and replayed once the acceptance is recorded.
    Parked,
}

/// How long a parked status waits for its message before it is dropped (statuses of
/// messages sent outside Switchboard, e.g. from the WhatsApp Business app, never match).
const PARKED_STATUS_TTL_MS: i64 = 24 * 3600 * 1000;

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Accepted => "accepted",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
    }
}

fn status_from_name(s: &str) -> Option<DeliveryStatus> {
    Some(match s {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    })
}

async fn park(core: &Core, account_id: AccountId, update: &StatusUpdate) -> Result<(), sqlx::Error> {
    let now = core.clock.now_ms();
    sqlx::query("DELETE FROM pending_statuses WHERE received_at < $1")
        .bind(now - PARKED_STATUS_TTL_MS)
        .execute(&core.db.any)
        .await?;
    sqlx::query(
        "INSERT INTO pending_statuses
           (account_id, provider_message_id, status, failure_code, failure_reason, at, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id, provider_message_id, status) DO NOTHING",
    )
    .bind(account_id.to_string())
    .bind(update.provider_message_id.as_str())
    .bind(status_name(delivery_status(update.status)))
    .bind(update.error.as_ref().map(|e| e.normalized_code()))
    .bind(update.error.as_ref().map(|e| e.reason()))
    .bind(update.timestamp.timestamp_millis())
    .bind(now)
    .execute(&core.db.any)
    .await?;
    Ok(())
}

/// Records the statuses parked for a message whose acceptance was just recorded, then
/// forgets them. Statuses fold forward-only, so their order does not matter.
pub async fn replay_parked(
    core: &Core,
    account_id: &str,
    provider_message_id: &str,
    interaction_id: &str,
) -> anyhow::Result<usize> {
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, failure_code, failure_reason, at FROM pending_statuses
          WHERE account_id = $1 AND provider_message_id = $2",
    )
    .bind(account_id)
    .bind(provider_message_id)
    .fetch_all(&core.db.any)
    .await?;
    for (status, code, reason, at) in &rows {
        let Some(status) = status_from_name(status) else { continue };
        let command = InteractionCommand::RecordDeliveryStatus {
            provider_message_id: provider_message_id.to_owned(),
            status,
            failure: code
                .clone()
                .map(|code| ProviderFailure { code, reason: reason.clone().unwrap_or_default() }),
            at: chrono::DateTime::from_timestamp_millis(*at).unwrap_or_default(),
        };
        let metadata = core.metadata(&Cause::System("outbox"), provider_message_id);
        match core.interactions.execute(interaction_id, command, metadata).await {
            Ok(_) | Err(CommandError::Rejected(_)) => {}
            Err(e) => anyhow::bail!("replaying a parked status: {e}"),
        }
    }
    if !rows.is_empty() {
        sqlx::query("DELETE FROM pending_statuses WHERE account_id = $1 AND provider_message_id = $2")
            .bind(account_id)
            .bind(provider_message_id)
            .execute(&core.db.any)
            .await?;
    }
    Ok(rows.len())
}

fn delivery_status(s: providers::DeliveryStatus) -> DeliveryStatus {
    match s {
        providers::DeliveryStatus::Sent => DeliveryStatus::Sent,
        providers::DeliveryStatus::Delivered => DeliveryStatus::Delivered,
        providers::DeliveryStatus::Read => DeliveryStatus::Read,
        providers::DeliveryStatus::Failed => DeliveryStatus::Failed,
    }
}

/// Records a delivery status on the interaction that sent the message.
pub async fn record_status(
    core: &Core,
    account_id: AccountId,
    update: &StatusUpdate,
    provider: &'static str,
) -> Result<StatusOutcome, IngestError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT interaction_id, message_id FROM outbox WHERE provider_message_id = $1 AND account_id = $2",
    )
    .bind(update.provider_message_id.as_str())
    .bind(account_id.to_string())
    .fetch_optional(&core.db.any)
    .await
    .map_err(|e| IngestError::Unavailable(e.to_string()))?;
    let Some((interaction_id, message_id)) = row else {
        park(core, account_id, update).await.map_err(|e| IngestError::Unavailable(e.to_string()))?;
        return Ok(StatusOutcome::Parked);
    };
    let command = InteractionCommand::RecordDeliveryStatus {
        provider_message_id: update.provider_message_id.clone(),
        status: delivery_status(update.status),
        failure: update
            .error
            .as_ref()
            .map(|e| ProviderFailure { code: e.normalized_code(), reason: e.reason() }),
        at: update.timestamp,
    };
    let metadata = core.metadata(&Cause::Provider(provider), &update.provider_message_id);
    match core.interactions.execute(&interaction_id, command.clone(), metadata.clone()).await {
        Ok(_) => return Ok(StatusOutcome::Recorded),
        Err(CommandError::Rejected(InteractionError::UnknownMessage)) => {}
        Err(e) => return Err(unavailable(e)),
    }
    // The status overtook the sender: the provider accepted the message (the outbox row has
    // its id) but the acceptance is not on the interaction yet. Record it, then the status.
    let message_id: MessageId = message_id
        .parse()
        .map_err(|_| IngestError::Invalid { field: "message_id", reason: "corrupt outbox row".into() })?;
    let accepted = InteractionCommand::RecordOutboundAccepted {
        message_id,
        provider_message_id: update.provider_message_id.clone(),
        at: update.timestamp,
    };
    match core.interactions.execute(&interaction_id, accepted, metadata.clone()).await {
        Ok(_) => {}
        Err(CommandError::Rejected(InteractionError::UnknownMessage)) => {
            return Ok(StatusOutcome::UnknownMessage);
        }
        Err(e) => return Err(unavailable(e)),
    }
    match core.interactions.execute(&interaction_id, command, metadata).await {
        Ok(_) => Ok(StatusOutcome::Recorded),
        Err(CommandError::Rejected(InteractionError::UnknownMessage)) => Ok(StatusOutcome::UnknownMessage),
        Err(e) => Err(unavailable(e)),
    }
}
