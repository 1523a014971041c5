//! The agent presence board, and which agents may work which account.
//!
//! Owns `agent_status` (name, presence, pause reason, capacity, websocket reachability and
//! a running reconnect grace), `agent_wrap_ups` (wrap-ups started and not ended),
//! `agent_load` (each interaction's owner while it is open: an agent's load is the count of
//! their open rows) and `account_members` (the set the API uses so an agent sees only the
//! accounts they were added to). `updated_at` is when the presence last changed.

use sqlx::AnyConnection;
use switchboard_domain::account::AccountEvent;
use switchboard_domain::agent::{AgentEvent, DEFAULT_CAPACITY};
use switchboard_domain::interaction::InteractionEvent;

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
        &["agent_status", "agent_wrap_ups", "agent_load", "account_members"]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &StoredEvent,
        payload: &DomainEventPayload,
    ) -> Result<(), sqlx::Error> {
        let id = event.aggregate_id.as_str();
        match payload {
            DomainEventPayload::Agent(e) => apply_agent(conn, id, e).await?,
            DomainEventPayload::Interaction(e) => apply_interaction(conn, id, e).await?,
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

async fn apply_agent(conn: &mut AnyConnection, id: &str, event: &AgentEvent) -> Result<(), sqlx::Error> {
    use AgentEvent as E;
    let (presence, reason, at) = match event {
        E::AgentRegistered { name, at } => {
            sqlx::query(
                "INSERT INTO agent_status (agent_id, name, presence, capacity, reachable, updated_at)
                 VALUES ($1, $2, 'offline', $3, 1, $4)",
            )
            .bind(id)
            .bind(name.as_ref())
            .bind(i64::from(DEFAULT_CAPACITY))
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        // Logging in or marking ready makes the agent reachable again: a client without a
        // websocket (HTTP only) is reachable.
        E::AgentLoggedIn { at } => ("paused", None, at),
        E::AgentBecameReady { at } => ("ready", None, at),
        E::AgentPaused { reason, at } => ("paused", reason.as_ref().map(|r| r.to_string()), at),
        E::AgentLoggedOut { at } => ("offline", None, at),
        E::AgentCapacitySet { capacity, .. } => {
            return set(conn, id, "capacity = $2", Some(i64::from(*capacity))).await;
        }
        E::AgentConnected { .. } => return set(conn, id, "reachable = 1, reconnect_by = $2", None).await,
        E::AgentDisconnected { reconnect_by, .. } => {
            return set(conn, id, "reconnect_by = $2", Some(ms(*reconnect_by))).await;
        }
        E::AgentUnreachable { .. } => return set(conn, id, "reachable = 0, reconnect_by = $2", None).await,
        E::AgentWrapUpStarted { interaction_id, at, .. } => {
            sqlx::query(
                "INSERT INTO agent_wrap_ups (agent_id, interaction_id, started_at) VALUES ($1, $2, $3)
                 ON CONFLICT (agent_id, interaction_id) DO NOTHING",
            )
            .bind(id)
            .bind(interaction_id.to_string())
            .bind(ms(*at))
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        E::AgentWrapUpEnded { interaction_id, .. } => {
            sqlx::query("DELETE FROM agent_wrap_ups WHERE agent_id = $1 AND interaction_id = $2")
                .bind(id)
                .bind(interaction_id.to_string())
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        E::AgentJoinedQueue { .. } | E::AgentLeftQueue { .. } => return Ok(()),
    };
    let reachable = matches!(event, E::AgentLoggedIn { .. } | E::AgentBecameReady { .. });
    sqlx::query(
        "UPDATE agent_status SET presence = $2, reason = $3, updated_at = $4,
                reachable = CASE WHEN $5 = 1 THEN 1 ELSE reachable END
          WHERE agent_id = $1",
    )
    .bind(id)
    .bind(presence)
    .bind(reason)
    .bind(ms(*at))
    .bind(i64::from(reachable))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets columns of the agent's row; `assignments` is one of this module's literals and uses
/// `$2` for `value`.
async fn set(
    conn: &mut AnyConnection,
    id: &str,
    assignments: &str,
    value: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("UPDATE agent_status SET {assignments} WHERE agent_id = $1"))
        .bind(id)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ownership of open interactions: an assignment (or a takeover) names the owner, any close
/// ends the load. A closed interaction is never counted again.
async fn apply_interaction(
    conn: &mut AnyConnection,
    id: &str,
    event: &InteractionEvent,
) -> Result<(), sqlx::Error> {
    use InteractionEvent as E;
    match event {
        E::AgentAssigned { agent_id, .. } => {
            sqlx::query(
                "INSERT INTO agent_load (interaction_id, agent_id, open) VALUES ($1, $2, 1)
                 ON CONFLICT (interaction_id) DO UPDATE SET agent_id = excluded.agent_id
                  WHERE agent_load.open = 1",
            )
            .bind(id)
            .bind(agent_id.to_string())
            .execute(&mut *conn)
            .await?;
        }
        E::InteractionClosed { .. } | E::InteractionClosedBySystem { .. } => {
            sqlx::query(
                "INSERT INTO agent_load (interaction_id, agent_id, open) VALUES ($1, NULL, 0)
                 ON CONFLICT (interaction_id) DO UPDATE SET open = 0",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_domain::account::AccountEvent;
    use switchboard_domain::agent::AgentEvent as A;
    use switchboard_domain::interaction::{Closer, InteractionEvent as E, SystemClose};
    use switchboard_domain::{AgentId, DisplayName, DispositionCode, InteractionId, PauseReason};

    use super::AgentStatus;
    use crate::testing::{Db, t};

    async fn board(db: &mut Db, agent: &str) -> String {
        db.rows(&format!(
            "SELECT presence || '|' || COALESCE(reason, '-') || '|' || CAST(capacity AS TEXT) || '|'
                    || CAST(reachable AS TEXT) || '|' || COALESCE(CAST(reconnect_by AS TEXT), '-') || '|'
                    || CAST(updated_at AS TEXT)
               FROM agent_status WHERE agent_id = '{agent}'"
        ))
        .await
        .concat()
    }

    async fn load(db: &mut Db, agent: &AgentId) -> usize {
        db.rows(&format!("SELECT interaction_id FROM agent_load WHERE agent_id = '{agent}' AND open = 1"))
            .await
            .len()
    }

    #[tokio::test]
    async fn presence_capacity_and_reachability() {
        let mut db = Db::new(vec![Arc::new(AgentStatus)]).await;
        let a = AgentId::new().to_string();
        db.agent(&a, A::AgentRegistered { name: DisplayName::parse("Sam").expect("name"), at: t(0) }).await;
        let ms = |s| t(s).timestamp_millis();
        assert_eq!(board(&mut db, &a).await, format!("offline|-|5|1|-|{}", ms(0)), "the default capacity");
        db.agent(&a, A::AgentCapacitySet { capacity: 3, at: t(1) }).await;
        db.agent(&a, A::AgentLoggedIn { at: t(2) }).await;
        db.agent(&a, A::AgentBecameReady { at: t(3) }).await;
        assert_eq!(board(&mut db, &a).await, format!("ready|-|3|1|-|{}", ms(3)));
        db.agent(&a, A::AgentConnected { connection_id: "c".into(), at: t(4) }).await;
        db.agent(&a, A::AgentDisconnected { connection_id: "c".into(), reconnect_by: t(34), at: t(4) }).await;
        assert_eq!(board(&mut db, &a).await, format!("ready|-|3|1|{}|{}", ms(34), ms(3)), "in the grace");
        db.agent(&a, A::AgentUnreachable { connection_id: "c".into(), at: t(34) }).await;
        assert_eq!(board(&mut db, &a).await, format!("ready|-|3|0|-|{}", ms(3)));
        db.agent(&a, A::AgentPaused { reason: PauseReason::parse("Lunch").ok(), at: t(40) }).await;
        assert_eq!(board(&mut db, &a).await, format!("paused|Lunch|3|0|-|{}", ms(40)));
        db.agent(&a, A::AgentBecameReady { at: t(50) }).await;
        assert_eq!(board(&mut db, &a).await, format!("ready|-|3|1|-|{}", ms(50)), "ready: reachable again");
    }

    #[tokio::test]
    async fn wrap_ups_and_open_load() {
        let mut db = Db::new(vec![Arc::new(AgentStatus)]).await;
        let (a, b) = (AgentId::new(), AgentId::new());
        let (i1, i2, i3) = (InteractionId::new(), InteractionId::new(), InteractionId::new());
        db.agent(&a.to_string(), A::AgentWrapUpStarted { interaction_id: i1, was_ready: true, at: t(1) })
            .await;
        db.agent(&a.to_string(), A::AgentWrapUpStarted { interaction_id: i2, was_ready: false, at: t(2) })
            .await;
        db.agent(&a.to_string(), A::AgentWrapUpEnded { interaction_id: i1, at: t(3) }).await;
        assert_eq!(db.rows("SELECT interaction_id FROM agent_wrap_ups").await, vec![i2.to_string()]);

        for i in [i1, i2, i3] {
            db.interaction(&i.to_string(), E::AgentAssigned { agent_id: a, at: t(5) }).await;
        }
        assert_eq!((load(&mut db, &a).await, load(&mut db, &b).await), (3, 0));
        // A transfer accepted by `b` replaces the owner.
        db.interaction(&i3.to_string(), E::AgentAssigned { agent_id: b, at: t(6) }).await;
        assert_eq!((load(&mut db, &a).await, load(&mut db, &b).await), (2, 1));
        db.interaction(&i1.to_string(), E::InteractionClosed { by: Closer::Agent(a), at: t(7) }).await;
        db.interaction(
            &i3.to_string(),
            E::InteractionClosedBySystem {
                reason: SystemClose::Inactivity { idle_since: t(1) },
                disposition: DispositionCode::parse("Closed for inactivity").expect("code"),
                at: t(8),
            },
        )
        .await;
        assert_eq!((load(&mut db, &a).await, load(&mut db, &b).await), (1, 0));
        // A late assignment of a closed interaction is no load.
        db.interaction(&i1.to_string(), E::AgentAssigned { agent_id: b, at: t(9) }).await;
        assert_eq!((load(&mut db, &a).await, load(&mut db, &b).await), (1, 0));
    }

    #[tokio::test]
    async fn account_membership() {
        let mut db = Db::new(vec![Arc::new(AgentStatus)]).await;
        let (account, a) = (switchboard_domain::AccountId::new().to_string(), AgentId::new());
        db.account(&account, AccountEvent::AgentAddedToAccount { agent_id: a, at: t(0) }).await;
        assert_eq!(db.rows("SELECT agent_id FROM account_members").await, vec![a.to_string()]);
        db.account(&account, AccountEvent::AgentRemovedFromAccount { agent_id: a, at: t(1) }).await;
        assert!(db.rows("SELECT agent_id FROM account_members").await.is_empty());
    }
}
