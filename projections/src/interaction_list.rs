//! The supervisor's interaction list and each interaction's messages.
//!
//! Owns `interaction_list` (one row per interaction: status, account, queue, agent, last
//! message, unread count, tags, timestamps), `interaction_messages` (both directions, with
//! delivery status; automatic replies are outbound messages without an agent),
//! `interaction_tags` (one row per tag, for filters) and `interaction_offers` (the live
//! offers, any target). Statuses: `unrouted` (no target), `queued` (waiting on a target),
//! `offered` (waiting, with a live offer), `assigned`, `closed`, `disposed` (a system close
//! is disposed at once). `unread_count` counts customer messages since the agent last wrote;
//! `unread` flags an interaction a transfer returned to its agent, until they accept or
//! write. `queue_id` is the last queue the interaction was routed to.

use sqlx::AnyConnection;
use switchboard_domain::interaction::{InboundContent, InteractionEvent, OutboundMedia, SystemClose};
use switchboard_domain::routing::Target;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The interaction list projection.
pub struct InteractionList;

const PREVIEW_CHARS: usize = 120;

fn preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// The message's kind and the text an agent reads for it: a media item shows its caption,
/// its file name or `[kind]`.
fn content_parts(content: &InboundContent) -> (&str, String) {
    match content {
        InboundContent::Text { body } => ("text", body.clone()),
        InboundContent::Media { kind, caption, filename, .. } => {
            let text = caption
                .clone()
                .or_else(|| filename.as_ref().map(|f| format!("[{kind}] {f}")))
                .unwrap_or_else(|| format!("[{kind}]"));
            (kind.as_str(), text)
        }
        InboundContent::Other { kind, summary } => (kind.as_str(), summary.clone()),
    }
}

#[async_trait::async_trait]
impl Projection for InteractionList {
    fn name(&self) -> &'static str {
        "interaction_list"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["interaction_list", "interaction_messages", "interaction_tags", "interaction_offers"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Interaction(e) => apply_interaction(conn, id, event.sequence, e).await,
            _ => Ok(()),
        }
    }
}

async fn apply_interaction(
    conn: &mut AnyConnection,
    id: &str,
    seq: i64,
    event: &InteractionEvent,
) -> Result<(), sqlx::Error> {
    use InteractionEvent as E;
    match event {
        // Notes have their own read model; deletion is applied by the erasure part, which
        // removes the interaction from every table at once.
        E::NoteAdded { .. } | E::InteractionDeleted { .. } => {}
        E::InteractionOpened { account_id, customer, customer_name, queue_id, at } => {
            sqlx::query(
                "INSERT INTO interaction_list
                   (interaction_id, account_id, queue_id, customer, customer_name, status, opened_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(account_id.to_string())
            .bind(queue_id.map(|q| q.to_string()))
            .bind(customer.to_string())
            .bind(customer_name.clone())
            .bind(if queue_id.is_some() { "queued" } else { "unrouted" })
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::CustomerMessageReceived { message_id, provider_message_id, content, at, .. } => {
            let (kind, body) = content_parts(content);
            let (media_kind, content_type, filename) = match content {
                InboundContent::Media { kind, content_type, filename, .. } => {
                    (Some(kind.as_str()), content_type.as_deref(), filename.as_deref())
                }
                _ => (None, None, None),
            };
            sqlx::query(
                "INSERT INTO interaction_messages
                   (message_id, interaction_id, direction, kind, body, provider_message_id, status, at, seq,
                    media_kind, media_state, media_content_type, media_filename)
                 VALUES ($1, $2, 'in', $3, $4, $5, 'received', $6, $7, $8, $9, $10, $11)",
            )
            .bind(message_id.to_string())
            .bind(id)
            .bind(kind)
            .bind(body.as_str())
            .bind(provider_message_id.as_str())
            .bind(ms(*at))
            .bind(seq)
            .bind(media_kind)
            .bind(media_kind.map(|_| "pending"))
            .bind(content_type)
            .bind(filename)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE interaction_list SET last_message_at = $2, last_message_preview = $3,
                        last_message_direction = 'in', unread_count = unread_count + 1,
                        message_count = message_count + 1, updated_at = $2
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .bind(preview(&body))
            .execute(&mut *conn)
            .await?;
        }
        E::AgentAssigned { agent_id, at } => {
            sqlx::query(
                "UPDATE interaction_list SET agent_id = $2, assigned_at = $3, offered_to = NULL,
                        status = CASE WHEN status IN ('closed', 'disposed') THEN status ELSE 'assigned' END,
                        updated_at = $3
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(agent_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::AgentMessageSent { message_id, agent_id, text, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: Some(*agent_id), at: *at, seq };
            insert_outgoing(conn, id, &out, "text", text.as_ref(), None).await?;
        }
        E::AgentMediaSent { message_id, agent_id, media, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: Some(*agent_id), at: *at, seq };
            let body = media.caption.clone().unwrap_or_else(|| match &media.filename {
                Some(f) => format!("[{}] {f}", media.kind),
                None => format!("[{}]", media.kind),
            });
            insert_outgoing(conn, id, &out, &media.kind, &body, Some(media)).await?;
        }
        E::AgentTemplateSent { message_id, agent_id, template, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: Some(*agent_id), at: *at, seq };
            let body = if template.parameters.is_empty() {
                format!("[template] {}", template.name)
            } else {
                format!("[template] {}: {}", template.name, template.parameters.join(", "))
            };
            insert_outgoing(conn, id, &out, "template", &body, None).await?;
        }
        E::InboundMediaStored { message_id, blob, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET media_state = 'stored', media_sha256 = $2,
                        media_content_type = $3, media_size = $4
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(blob.sha256.as_str())
            .bind(blob.content_type.as_str())
            .bind(blob.size as i64)
            .execute(&mut *conn)
            .await?;
        }
        E::InboundMediaUnavailable { message_id, code, reason, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET media_state = 'unavailable', error_code = $2, media_error = $3
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(code.as_str())
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundMessageAccepted { message_id, provider_message_id, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET provider_message_id = $2,
                        status = CASE WHEN status = 'pending' THEN 'accepted' ELSE status END
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(provider_message_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundMessageFailed { message_id, failure, .. } => {
            sqlx::query(
                "UPDATE interaction_messages SET status = 'failed', error_code = $2, error_reason = $3
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(failure.code.as_str())
            .bind(failure.reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        E::OutboundStatusChanged { message_id, status, failure, .. } => {
            let status = serde_json::to_value(status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            sqlx::query(
                "UPDATE interaction_messages SET status = $2,
                        error_code = COALESCE($3, error_code), error_reason = COALESCE($4, error_reason)
                  WHERE message_id = $1",
            )
            .bind(message_id.to_string())
            .bind(status)
            .bind(failure.as_ref().map(|f| f.code.clone()))
            .bind(failure.as_ref().map(|f| f.reason.clone()))
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionClosed { at, .. } => {
            drop_offers(conn, id).await?;
            sqlx::query(
                "UPDATE interaction_list SET status = 'closed', closed_at = $2, offered_to = NULL, updated_at = $2
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionClosedBySystem { reason, disposition, at } => {
            drop_offers(conn, id).await?;
            let reason = match reason {
                SystemClose::Inactivity { .. } => "inactivity",
                SystemClose::PlanStep { .. } => "plan_step",
                SystemClose::NotWhitelisted => "not_whitelisted",
            };
            sqlx::query(
                "UPDATE interaction_list SET status = 'disposed', closed_at = $2, disposed_at = $2, disposition = $3,
                        close_reason = $4, offered_to = NULL, updated_at = $2
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .bind(disposition.as_ref())
            .bind(reason)
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionDisposed { disposition, at, .. } => {
            sqlx::query(
                "UPDATE interaction_list SET status = 'disposed', disposition = $2, disposed_at = $3, updated_at = $3
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(disposition.as_ref())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::RoutingTargetSet { target, at, .. } => {
            // Waiting again (a sticky return puts an assigned interaction back in line).
            let queue = match target {
                Target::Queue(q) => Some(q.to_string()),
                Target::Agent(_) => None,
            };
            sqlx::query(
                "UPDATE interaction_list SET queue_id = COALESCE($2, queue_id),
                        status = CASE WHEN status IN ('closed', 'disposed') THEN status ELSE 'queued' END,
                        updated_at = $3
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(queue)
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
            refresh_offered(conn, id).await?;
        }
        E::RoutingTargetExpired { at, .. } => {
            // No target any more: back to its owner if it has one, else unrouted (the next
            // event of the same commit usually sets a new target).
            sqlx::query(
                "UPDATE interaction_list SET updated_at = $2,
                        status = CASE WHEN status NOT IN ('queued', 'offered') THEN status
                                      WHEN agent_id IS NULL THEN 'unrouted' ELSE 'assigned' END
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::TransferReturned { agent_id, at, .. } => {
            sqlx::query(
                "UPDATE interaction_list SET agent_id = $2, unread = 1, updated_at = $3,
                        status = CASE WHEN status IN ('closed', 'disposed') THEN status ELSE 'assigned' END
                  WHERE interaction_id = $1",
            )
            .bind(id)
            .bind(agent_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
        }
        E::OfferMade { agent_id, attempt, expires_at, .. } => {
            sqlx::query(
                "INSERT INTO interaction_offers (interaction_id, agent_id, attempt, expires_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (interaction_id, agent_id, attempt) DO NOTHING",
            )
            .bind(id)
            .bind(agent_id.to_string())
            .bind(i64::from(*attempt))
            .bind(ms(*expires_at))
            .execute(&mut *conn)
            .await?;
            refresh_offered(conn, id).await?;
        }
        E::OfferAccepted { agent_id, attempt, .. } => {
            end_offer(conn, id, &agent_id.to_string(), *attempt).await?;
            sqlx::query("UPDATE interaction_list SET unread = 0 WHERE interaction_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        E::OfferRejected { agent_id, attempt, .. }
        | E::OfferTimedOut { agent_id, attempt, .. }
        | E::OfferWithdrawn { agent_id, attempt, .. } => {
            end_offer(conn, id, &agent_id.to_string(), *attempt).await?;
        }
        E::TagsAdded { tags, at, .. } => {
            for tag in tags {
                sqlx::query(
                    "INSERT INTO interaction_tags (interaction_id, tag) VALUES ($1, $2)
                     ON CONFLICT (interaction_id, tag) DO NOTHING",
                )
                .bind(id)
                .bind(tag.as_ref())
                .execute(&mut *conn)
                .await?;
            }
            let all: Vec<(String,)> =
                sqlx::query_as("SELECT tag FROM interaction_tags WHERE interaction_id = $1 ORDER BY tag")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?;
            let all: Vec<String> = all.into_iter().map(|t| t.0).collect();
            sqlx::query("UPDATE interaction_list SET tags = $2, updated_at = $3 WHERE interaction_id = $1")
                .bind(id)
                .bind(serde_json::to_string(&all).unwrap_or_else(|_| "[]".into()))
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
        }
        E::AutoReplySent { message_id, text, at, .. } => {
            let out = Outgoing { message_id: *message_id, agent_id: None, at: *at, seq };
            insert_outgoing(conn, id, &out, "text", text.as_ref(), None).await?;
        }
        E::RoutingStarted { .. }
        | E::RoutingStepSkipped { .. }
        | E::RoutingJumpEvaluated { .. }
        | E::RoutingPlanEnded { .. }
        | E::TransferRequested { .. }
        | E::WrapUpStarted { .. } => {}
    }
    Ok(())
}

/// An offer ended (answered, lapsed or withdrawn).
async fn end_offer(conn: &mut AnyConnection, id: &str, agent: &str, attempt: u32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM interaction_offers WHERE interaction_id = $1 AND agent_id = $2 AND attempt = $3",
    )
    .bind(id)
    .bind(agent)
    .bind(i64::from(attempt))
    .execute(&mut *conn)
    .await?;
    refresh_offered(conn, id).await
}

/// A closed interaction holds no offers (their withdrawals may follow the close).
async fn drop_offers(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM interaction_offers WHERE interaction_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `offered_to` is the agent of the latest live offer; a waiting interaction is `offered`
/// while it has one, `queued` otherwise.
async fn refresh_offered(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE interaction_list SET offered_to =
            (SELECT o.agent_id FROM interaction_offers o WHERE o.interaction_id = $1 ORDER BY o.attempt DESC LIMIT 1)
          WHERE interaction_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE interaction_list
            SET status = CASE WHEN offered_to IS NULL THEN 'queued' ELSE 'offered' END
          WHERE interaction_id = $1 AND status IN ('queued', 'offered')",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An outbound message, whatever it carries: an agent's, or an automatic reply (no agent).
struct Outgoing {
    message_id: switchboard_domain::MessageId,
    agent_id: Option<switchboard_domain::AgentId>,
    at: chrono::DateTime<chrono::Utc>,
    seq: i64,
}

async fn insert_outgoing(
    conn: &mut AnyConnection,
    id: &str,
    out: &Outgoing,
    kind: &str,
    body: &str,
    media: Option<&OutboundMedia>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO interaction_messages
           (message_id, interaction_id, direction, kind, body, agent_id, status, at, seq,
            media_kind, media_state, media_sha256, media_content_type, media_size, media_filename)
         VALUES ($1, $2, 'out', $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(out.message_id.to_string())
    .bind(id)
    .bind(kind)
    .bind(body)
    .bind(out.agent_id.map(|a| a.to_string()))
    .bind(ms(out.at))
    .bind(out.seq)
    .bind(media.map(|m| m.kind.clone()))
    .bind(media.map(|_| "stored"))
    .bind(media.map(|m| m.blob.sha256.clone()))
    .bind(media.map(|m| m.blob.content_type.clone()))
    .bind(media.map(|m| m.blob.size as i64))
    .bind(media.and_then(|m| m.filename.clone()))
    .execute(&mut *conn)
    .await?;
    // An agent writing has read the conversation; an automatic reply has not.
    let read = out.agent_id.is_some();
    sqlx::query(
        "UPDATE interaction_list SET last_message_at = $2, last_message_preview = $3,
                last_message_direction = 'out',
                unread_count = CASE WHEN $4 = 1 THEN 0 ELSE unread_count END,
                unread = CASE WHEN $4 = 1 THEN 0 ELSE unread END,
                message_count = message_count + 1, updated_at = $2
          WHERE interaction_id = $1",
    )
    .bind(id)
    .bind(ms(out.at))
    .bind(preview(body))
    .bind(i64::from(read))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use switchboard_domain::interaction::{Closer, InteractionEvent as E, SystemClose};
    use switchboard_domain::routing::{Target, TargetReason, WithdrawReason};
    use switchboard_domain::{
        AccountId, AgentId, DispositionCode, InteractionId, MessageId, MessageText, QueueId, Tag,
    };

    use super::InteractionList;
    use crate::testing::{Db, agent_text, customer, customer_text, offer, t, target_set};

    async fn opened(db: &mut Db) -> String {
        let i = InteractionId::new().to_string();
        db.interaction(
            &i,
            E::InteractionOpened {
                account_id: AccountId::new(),
                customer: customer(),
                customer_name: None,
                queue_id: None,
                at: t(0),
            },
        )
        .await;
        i
    }

    /// `status|queue|agent|offered_to|unread|unread_count`.
    async fn row(db: &mut Db, i: &str) -> String {
        db.rows(&format!(
            "SELECT status || '|' || COALESCE(queue_id, '-') || '|' || COALESCE(agent_id, '-') || '|'
                    || COALESCE(offered_to, '-') || '|' || CAST(unread AS TEXT) || '|' || CAST(unread_count AS TEXT)
               FROM interaction_list WHERE interaction_id = '{i}'"
        ))
        .await
        .concat()
    }

    #[tokio::test]
    async fn status_follows_targets_and_offers() {
        let mut db = Db::new(vec![Arc::new(InteractionList)]).await;
        let i = opened(&mut db).await;
        let (q, a, b) = (QueueId::new(), AgentId::new(), AgentId::new());
        assert_eq!(row(&mut db, &i).await, "unrouted|-|-|-|0|0");
        db.interaction(&i, target_set(Target::Queue(q), 1, Some(t(60)), t(1))).await;
        assert_eq!(row(&mut db, &i).await, format!("queued|{q}|-|-|0|0"));
        db.interaction(&i, offer(a, 1, Target::Queue(q), t(20))).await;
        db.interaction(&i, offer(b, 2, Target::Queue(q), t(20))).await;
        assert_eq!(row(&mut db, &i).await, format!("offered|{q}|-|{b}|0|0"), "the latest live offer");
        db.interaction(&i, E::OfferRejected { agent_id: b, attempt: 2, at: t(3) }).await;
        assert_eq!(row(&mut db, &i).await, format!("offered|{q}|-|{a}|0|0"), "another still holds one");
        db.interaction(&i, E::OfferTimedOut { agent_id: a, attempt: 1, at: t(20) }).await;
        assert_eq!(row(&mut db, &i).await, format!("queued|{q}|-|-|0|0"));

        // The step lapses, the next targets one agent; then nothing is left.
        db.interaction(&i, E::RoutingTargetExpired { seq: 1, at: t(60) }).await;
        assert_eq!(row(&mut db, &i).await, format!("unrouted|{q}|-|-|0|0"));
        db.interaction(&i, target_set(Target::Agent(a), 2, Some(t(90)), t(60))).await;
        db.interaction(&i, offer(a, 3, Target::Agent(a), t(90))).await;
        assert_eq!(row(&mut db, &i).await, format!("offered|{q}|-|{a}|0|0"), "queue_id keeps the last queue");
        db.interaction(&i, E::OfferAccepted { agent_id: a, attempt: 3, at: t(61) }).await;
        db.interaction(&i, E::AgentAssigned { agent_id: a, at: t(61) }).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|{q}|{a}|-|0|0"));

        // A sticky return puts it back in line, still owned; accepting again assigns it.
        db.interaction(&i, customer_text("again", t(70))).await;
        db.interaction(
            &i,
            E::RoutingTargetSet {
                target: Target::Agent(a),
                reason: TargetReason::StickyAgent,
                seq: 3,
                until: Some(t(80)),
                at: t(70),
            },
        )
        .await;
        assert_eq!(row(&mut db, &i).await, format!("queued|{q}|{a}|-|0|1"));
        db.interaction(&i, E::RoutingTargetExpired { seq: 3, at: t(80) }).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|{q}|{a}|-|0|1"));
    }

    #[tokio::test]
    async fn a_returned_transfer_is_unread_until_the_owner_writes_or_accepts() {
        let mut db = Db::new(vec![Arc::new(InteractionList)]).await;
        let i = opened(&mut db).await;
        let (a, b) = (AgentId::new(), AgentId::new());
        db.interaction(&i, E::AgentAssigned { agent_id: a, at: t(1) }).await;
        db.interaction(
            &i,
            E::TransferRequested { from: a, to: Target::Agent(b), seq: 1, until: t(30), at: t(2) },
        )
        .await;
        db.interaction(&i, offer(b, 1, Target::Agent(b), t(30))).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|-|{a}|{b}|0|0"), "the owner keeps it meanwhile");
        db.interaction(&i, E::RoutingTargetExpired { seq: 1, at: t(30) }).await;
        db.interaction(
            &i,
            E::OfferWithdrawn { agent_id: b, attempt: 1, reason: WithdrawReason::TargetChanged, at: t(30) },
        )
        .await;
        db.interaction(&i, E::TransferReturned { seq: 1, agent_id: a, at: t(30) }).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|-|{a}|-|1|0"));
        db.interaction(&i, agent_text(a, t(40))).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|-|{a}|-|0|0"));

        db.interaction(&i, E::TransferReturned { seq: 2, agent_id: a, at: t(50) }).await;
        db.interaction(&i, offer(a, 2, Target::Agent(a), t(70))).await;
        db.interaction(&i, E::OfferAccepted { agent_id: a, attempt: 2, at: t(60) }).await;
        assert_eq!(row(&mut db, &i).await, format!("assigned|-|{a}|-|0|0"));
    }

    #[tokio::test]
    async fn tags_accumulate_and_auto_replies_are_outbound_messages() {
        let mut db = Db::new(vec![Arc::new(InteractionList)]).await;
        let i = opened(&mut db).await;
        let tags =
            |names: &[&str]| names.iter().map(|n| Tag::parse(n).expect("tag")).collect::<BTreeSet<_>>();
        db.interaction(&i, E::TagsAdded { tags: tags(&["vip", "billing"]), by: None, at: t(1) }).await;
        db.interaction(&i, E::TagsAdded { tags: tags(&["after-hours"]), by: Some(AgentId::new()), at: t(2) })
            .await;
        assert_eq!(
            db.rows("SELECT tags FROM interaction_list").await,
            vec![r#"["after-hours","billing","vip"]"#.to_owned()]
        );
        assert_eq!(db.rows("SELECT tag FROM interaction_tags WHERE tag = 'vip'").await.len(), 1);

        db.interaction(&i, customer_text("hello?", t(3))).await;
        let reply = MessageId::new();
        db.interaction(
            &i,
            E::AutoReplySent {
                account_id: AccountId::new(),
                message_id: reply,
                to: customer(),
                text: MessageText::parse("We are closed").expect("text"),
                step: 0,
                at: t(4),
            },
        )
        .await;
        assert_eq!(
            db.rows(&format!(
                "SELECT direction || '|' || kind || '|' || body || '|' || COALESCE(agent_id, '-') || '|' || status
                   FROM interaction_messages WHERE message_id = '{reply}'"
            ))
            .await,
            vec!["out|text|We are closed|-|pending".to_owned()]
        );
        let summary = "SELECT last_message_direction || '|' || last_message_preview || '|' || CAST(unread_count AS TEXT)
                         || '|' || CAST(message_count AS TEXT) FROM interaction_list";
        assert_eq!(
            db.rows(summary).await,
            vec!["out|We are closed|1|2".to_owned()],
            "the customer is still unread"
        );
    }

    #[tokio::test]
    async fn a_system_close_disposes_and_drops_offers() {
        let mut db = Db::new(vec![Arc::new(InteractionList)]).await;
        let i = opened(&mut db).await;
        let (q, a) = (QueueId::new(), AgentId::new());
        db.interaction(&i, target_set(Target::Queue(q), 1, None, t(1))).await;
        db.interaction(&i, offer(a, 1, Target::Queue(q), t(20))).await;
        db.interaction(
            &i,
            E::InteractionClosedBySystem {
                reason: SystemClose::PlanStep { step: 3 },
                disposition: DispositionCode::parse("Spam").expect("code"),
                at: t(5),
            },
        )
        .await;
        db.interaction(
            &i,
            E::OfferWithdrawn {
                agent_id: a,
                attempt: 1,
                reason: WithdrawReason::InteractionClosed,
                at: t(5),
            },
        )
        .await;
        let ms = t(5).timestamp_millis();
        assert_eq!(
            db.rows(
                "SELECT status || '|' || disposition || '|' || close_reason || '|' || CAST(closed_at AS TEXT) || '|'
                        || CAST(disposed_at AS TEXT) || '|' || COALESCE(offered_to, '-') FROM interaction_list"
            )
            .await,
            vec![format!("disposed|Spam|plan_step|{ms}|{ms}|-")]
        );
        assert!(db.rows("SELECT agent_id FROM interaction_offers").await.is_empty());

        let other = opened(&mut db).await;
        db.interaction(&other, E::InteractionClosed { by: Closer::Supervisor, at: t(6) }).await;
        assert_eq!(row(&mut db, &other).await, "closed|-|-|-|0|0");
    }
}
