//! The router: turns events into the commands they call for on other aggregates.
//!
//! - an interaction opened with a queue is enqueued there; closed, it leaves the queue;
//! - an agent joining a queue becomes a member; ready/paused/offline changes their
//!   availability in each of their queues;
//! - an accepted offer assigns the interaction (the accept endpoint does it too; this makes
//!   it happen even if the server died in between);
//! - an offer that timed out pauses its agent ("missed offer"): they are probably away, and
//!   their presence should say so until they choose to be ready again.
//!
//! Every command is idempotent, so replaying a batch after a crash changes nothing.

use std::time::Duration;

use switchboard_domain::agent::{AgentCommand, AgentEvent, Presence};
use switchboard_domain::interaction::{InteractionCommand, InteractionEvent};
use switchboard_domain::queue::{QueueCommand, QueueEvent};
use switchboard_domain::{AgentId, QueueId};
use switchboard_projections::{Backend, DomainEventPayload, StoredEvent, log};
use tokio::sync::watch;

use super::checkpoint;
use crate::core::{Cause, Core};

const NAME: &str = "router";
const CAUSE: Cause = Cause::System("router");

/// Runs the router until shutdown.
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match run_batch(&core).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {
                tokio::select! {
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "router batch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// The advisory lock that makes one node's router the only one running at a time.
const ROUTER_LOCK: i64 = 0x5357_4252_4f55_5445; // "SWBROUTE"

/// Reacts to the next batch of events; returns how many were read.
///
/// On PostgreSQL the batch runs under a transaction-scoped advisory lock, so with several
/// nodes only one router works at a time and checkpoints never move backwards. The lock
/// assigns no transaction id, so it does not hold back the log's safe horizon. SQLite has a
/// single process and a single writer: no lock (holding a write transaction here would block
/// the very commits the router waits for).
pub async fn run_batch(core: &Core) -> anyhow::Result<usize> {
    let backend = core.db.backend;
    let mut guard = None;
    if backend == Backend::Postgres {
        let mut tx = core.db.any.begin().await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
            .bind(ROUTER_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0); // another node is routing
        }
        guard = Some(tx);
    }
    let from = checkpoint::load(&core.db.any, backend, NAME).await?;
    let events = {
        let mut conn = core.db.any.acquire().await?;
        log::read_after(&mut conn, backend, &from, 200).await?
    };
    for event in &events {
        react(core, event).await?;
    }
    if let Some(last) = events.last() {
        checkpoint::save(&core.db.any, backend, NAME, &last.checkpoint, core.clock.now_ms()).await?;
    }
    if let Some(tx) = guard {
        tx.rollback().await?; // releases the lock; it wrote nothing
    }
    Ok(events.len())
}

async fn set_availability(
    core: &Core,
    agent_id: AgentId,
    queues: &[QueueId],
    available: bool,
    correlation: &str,
) -> anyhow::Result<()> {
    for queue_id in queues {
        let cmd = QueueCommand::SetAgentAvailability { agent_id, available, at: core.clock.now() };
        ignore_rejection(
            core.queues.execute(&queue_id.to_string(), cmd, core.metadata(&CAUSE, correlation)).await,
        )?;
    }
    Ok(())
}

/// Business refusals are logged and skipped (the command is moot); infrastructure errors stop
/// the batch so it is retried.
fn ignore_rejection<T, E: std::error::Error>(
    result: Result<T, crate::runtime::CommandError<E>>,
) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(crate::runtime::CommandError::Rejected(e)) => {
            tracing::info!(reason = %e, "router command refused");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(e.to_string())),
    }
}

async fn react(core: &Core, event: &StoredEvent) -> anyhow::Result<()> {
    let Some(payload) = DomainEventPayload::decode(event)? else { return Ok(()) };
    let correlation = format!("{}#{}", event.aggregate_id, event.sequence);
    let meta = core.metadata(&CAUSE, &correlation);
    let now = core.clock.now();
    match payload {
        DomainEventPayload::Interaction(InteractionEvent::InteractionOpened {
            queue_id: Some(queue_id),
            ..
        }) => {
            let interaction_id = event.aggregate_id.parse()?;
            let cmd = QueueCommand::Enqueue { interaction_id, at: now };
            ignore_rejection(core.queues.execute(&queue_id.to_string(), cmd, meta).await)
        }
        DomainEventPayload::Interaction(InteractionEvent::InteractionClosed { .. }) => {
            let interaction = core.interactions.state(&event.aggregate_id).await;
            let queue_id = interaction.map_err(|e| anyhow::anyhow!(e.to_string()))?.state.queue_id;
            let Some(queue_id) = queue_id else { return Ok(()) };
            let cmd = QueueCommand::Dequeue { interaction_id: event.aggregate_id.parse()?, at: now };
            ignore_rejection(core.queues.execute(&queue_id.to_string(), cmd, meta).await)
        }
        DomainEventPayload::Agent(e) => {
            let agent_id: AgentId = event.aggregate_id.parse()?;
            let agent =
                core.agents.state(&event.aggregate_id).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let queues: Vec<QueueId> = agent.state.queues.iter().copied().collect();
            match e {
                AgentEvent::AgentJoinedQueue { queue_id, .. } => {
                    let available = agent.state.presence == Presence::Ready;
                    let cmd = QueueCommand::AddMember { agent_id, available, at: now };
                    ignore_rejection(core.queues.execute(&queue_id.to_string(), cmd, meta).await)
                }
                // The current presence, not the event's, decides: replaying an old
                // "became ready" must not make an agent who has since paused available.
                AgentEvent::AgentBecameReady { .. }
                | AgentEvent::AgentPaused { .. }
                | AgentEvent::AgentLoggedIn { .. }
                | AgentEvent::AgentLoggedOut { .. } => {
                    set_availability(
                        core,
                        agent_id,
                        &queues,
                        agent.state.presence == Presence::Ready,
                        &correlation,
                    )
                    .await
                }
                AgentEvent::AgentRegistered { .. } => Ok(()),
            }
        }
        DomainEventPayload::Queue(QueueEvent::OfferTimedOut { agent_id, at, .. }) => {
            let cmd = AgentCommand::MissOffer { timed_out_at: at, at: now };
            ignore_rejection(core.agents.execute(&agent_id.to_string(), cmd, meta).await)
        }
        DomainEventPayload::Queue(QueueEvent::OfferAccepted { interaction_id, agent_id, .. }) => {
            let cmd = InteractionCommand::AssignAgent { agent_id, at: now };
            ignore_rejection(core.interactions.execute(&interaction_id.to_string(), cmd, meta).await)
        }
        _ => Ok(()),
    }
}
