//! The agent presence board, and which agents may work which account.
//!
//! Owns `agent_status` (name, presence, pause reason) and `account_members` (the set the API
//! uses so an agent sees only the accounts they were added to).

use sqlx::AnyConnection;
use switchboard_domain::account::AccountEvent;
use switchboard_domain::agent::AgentEvent;

use crate::runtime::{Projection, ms};
use crate::{DomainEventPayload, StoredEvent};

/// The agent status projection.
pub struct AgentStatus;

#[async_trait::async_trait]
impl Projection for AgentStatus {
    fn name(&self) -> &'static str {
        "agent_status"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["agent_status", "account_members"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Agent(e) => {
                use AgentEvent as E;
                let (presence, reason, at) = match e {
                    E::AgentRegistered { name, at } => {
                        sqlx::query(
                            "INSERT INTO agent_status (agent_id, name, presence, updated_at)
                             VALUES ($1, $2, 'offline', $3)",
                        )
                        .bind(id)
                        .bind(name.as_ref())
                        .bind(ms(*at))
                        .execute(&mut *conn)
                        .await?;
                        return Ok(());
                    }
                    E::AgentJoinedQueue { .. } => return Ok(()),
                    E::AgentLoggedIn { at } => ("paused", None, at),
                    E::AgentBecameReady { at } => ("ready", None, at),
                    E::AgentPaused { reason, at } => ("paused", reason.clone(), at),
                    E::AgentLoggedOut { at } => ("offline", None, at),
                };
                sqlx::query(
                    "UPDATE agent_status SET presence = $2, reason = $3, updated_at = $4 WHERE agent_id = $1",
                )
                .bind(id)
                .bind(presence)
                .bind(reason)
                .bind(ms(*at))
                .execute(&mut *conn)
                .await?;
            }
            DomainEventPayload::Account(AccountEvent::AgentAddedToAccount { agent_id, .. }) => {
                sqlx::query(
                    "INSERT INTO account_members (account_id, agent_id) VALUES ($1, $2)
                     ON CONFLICT (account_id, agent_id) DO NOTHING",
                )
                .bind(id)
                .bind(agent_id.to_string())
                .execute(&mut *conn)
                .await?;
            }
            DomainEventPayload::Account(AccountEvent::AgentRemovedFromAccount { agent_id, .. }) => {
                sqlx::query("DELETE FROM account_members WHERE account_id = $1 AND agent_id = $2")
                    .bind(id)
                    .bind(agent_id.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
