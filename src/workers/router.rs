//! The router: holds the routing board, turns its decisions into offers, and turns events
//! into the commands they call for on other aggregates.
//!
//! The board (`switchboard_domain::routing::Board`) is a fold of the whole log, so every node
//! folds from position zero on start and keeps folding. Only the node holding the router lock
//! acts: it reacts to the events after the router's checkpoint and, once caught up with the
//! log, executes the board's decisions (offers, withdrawals, sticky returns) as Interaction
//! commands. Reactions:
//!
//! - an offer that timed out pauses its agent ("missed offer"): they are probably away, and
//!   their presence should say so until they choose to be ready again;
//! - an agent opening the disposition dialog (`WrapUpStarted`) pauses them with the wrap-up
//!   reason; disposing, a system close or any close ends that wrap-up.
//!
//! Every command is idempotent and the Interaction refuses stale decisions, so replaying a
//! batch after a crash, or a board lagging the log, changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::interaction::{Closer, InteractionCommand, InteractionEvent};
use switchboard_domain::routing::{Board, Decision};
use switchboard_domain::{AgentId, InteractionId};
use switchboard_projections::{Backend, Checkpoint, DomainEventPayload, StoredEvent, log};
use tokio::sync::watch;

use super::checkpoint;
use crate::core::{Cause, Core};
use crate::runtime::CommandError;

const NAME: &str = "router";
const CAUSE: Cause = Cause::System("router");

/// Events read per batch. A batch shorter than this means the router reached the log's head.
const BATCH: i64 = 500;

/// Interactions whose decisions are executed at once: about the database pool's size, so
/// commits overlap without queueing for connections.
const CONCURRENT_INTERACTIONS: usize = 16;

/// Runs the router until shutdown.
pub async fn run(core: Core, mut shutdown: watch::Receiver<bool>, poll: Duration) {
    let mut commits = core.commit_signal();
    let mut router = Router::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match router.step(&core).await {
            Ok(step) if step.read > 0 => continue,
            // Idle: wait for a commit or the poll, then fold what came and decide again (time
            // may have made someone eligible; deciding on a caught-up board is cheap).
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

/// The advisory lock that makes one node's router the only one acting at a time.
const ROUTER_LOCK: i64 = 0x5357_4252_4f55_5445; // "SWBROUTE"

/// One batch on a fresh router (which folds from the start of the log); returns how many
/// events it read while holding the router lock (0 when another node holds it). For tests and
/// tools: the running server keeps one [`Router`] and its board.
pub async fn run_batch(core: &Core) -> anyhow::Result<usize> {
    let step = Router::new().step(core).await?;
    Ok(if step.leading { step.read } else { 0 })
}

/// What one [`Router::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Events read from the log.
    pub read: usize,
    /// Whether this node held the router lock (reacted and decided).
    pub leading: bool,
}

/// A router: the board and how far into the log it has folded.
#[derive(Debug)]
pub struct Router {
    board: Board,
    folded: Checkpoint,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router that has folded nothing yet.
    pub fn new() -> Self {
        Self { board: Board::new(), folded: Checkpoint::zero() }
    }

    /// Reads the next batch: folds new events into the board and, holding the router lock,
    /// reacts to the events after the checkpoint and, once caught up, executes the board's
    /// decisions.
    ///
    /// On PostgreSQL the lock is a transaction-scoped advisory lock, so with several nodes only
    /// one router acts at a time and checkpoints never move backwards. The lock assigns no
    /// transaction id, so it does not hold back the log's safe horizon. SQLite has a single
    /// process and a single writer: no lock (holding a write transaction here would block the
    /// very commits the router waits for).
    ///
    /// Folding and reacting follow separate positions: a node that was folding while another
    /// led may be ahead of the checkpoint (it reacts to those events without folding them
    /// twice); on start it is behind (it folds without reacting up to the checkpoint). A batch
    /// that fails after folding some events keeps them folded and reacts to them on the retry.
    pub async fn step(&mut self, core: &Core) -> anyhow::Result<Step> {
        let backend = core.db.backend;
        let mut guard = None;
        let mut leading = true;
        if backend == Backend::Postgres {
            let mut tx = core.db.any.begin().await?;
            let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
                .bind(ROUTER_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if locked {
                guard = Some(tx);
            } else {
                leading = false; // another node is routing; keep the board current anyway
            }
        }
        let reacted_to =
            if leading { Some(checkpoint::load(&core.db.any, backend, NAME).await?) } else { None };
        let from = read_from(&self.folded, reacted_to.as_ref()).clone();
        let events = {
            let mut conn = core.db.any.acquire().await?;
            let mut events = log::read_after(&mut conn, backend, &from, BATCH).await?;
            // Personal fields are sealed in the log (ADR 0020).
            core.pii.open_stored(&mut conn, &mut events).await?;
            events
        };
        for event in &events {
            let fold = self.folded.precedes(&event.checkpoint);
            let react = reacted_to.as_ref().is_some_and(|c| c.precedes(&event.checkpoint));
            if !fold && !react {
                continue;
            }
            // An undecodable event stops the batch: it may come from a newer node, and skipping
            // it would lose its effects for good.
            let payload = DomainEventPayload::decode(event)?;
            if fold {
                if let Some(payload) = &payload {
                    fold_into(&mut self.board, event, payload);
                }
                self.folded = event.checkpoint.clone();
            }
            if react && let Some(payload) = &payload {
                react_to(core, event, payload).await?;
            }
        }
        if let Some(checkpoint) = &reacted_to {
            // Decisions first, then the checkpoint: until the board's decisions are issued the
            // router is not done with these events, and whoever waits for the router to reach
            // the head of the log (an operator, a test's `settle`) must not see it there yet.
            // If the decisions fail, the reactions are repeated on the retry (idempotent).
            if events.len() < BATCH as usize {
                self.execute_decisions(core).await?;
            }
            if let Some(last) = events.last()
                && checkpoint.precedes(&last.checkpoint)
            {
                checkpoint::save(&core.db.any, backend, NAME, &last.checkpoint, core.clock.now_ms()).await?;
            }
        }
        if let Some(tx) = guard {
            tx.rollback().await?; // releases the lock; it wrote nothing
        }
        Ok(Step { read: events.len(), leading })
    }

    /// Asks the board what to do now and does it. A decision whose command recorded events is
    /// pending until the board reads them back; a refused one (stale: the target moved on, the
    /// offer number is taken, the agent's offer is gone) is dropped.
    async fn execute_decisions(&mut self, core: &Core) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        let now = core.clock.now();
        // Decisions on different interactions are independent aggregates: issue them
        // concurrently (one commit does not wait for another's), each interaction's own
        // decisions in order (a ring-all round's attempts 1, 2, 3…).
        type Group = Vec<(Decision, InteractionCommand)>;
        let mut by_interaction: Vec<(InteractionId, Group)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for decision in self.board.decide(now) {
            let (interaction_id, command) = command_for(&decision, now);
            let slot = *index.entry(interaction_id).or_insert_with(|| {
                by_interaction.push((interaction_id, Vec::new()));
                by_interaction.len() - 1
            });
            by_interaction[slot].1.push((decision, command));
        }
        let results: Vec<Vec<(Decision, anyhow::Result<Outcome>)>> =
            futures_util::stream::iter(by_interaction)
                .map(|(interaction_id, group)| async move {
                    let mut done = Vec::with_capacity(group.len());
                    for (decision, command) in group {
                        let meta = core.metadata(&CAUSE, &correlation(&decision));
                        let result =
                            core.interactions.execute(&interaction_id.to_string(), command, meta).await;
                        done.push((decision, outcome(result)));
                    }
                    done
                })
                .buffer_unordered(CONCURRENT_INTERACTIONS)
                .collect()
                .await;
        let mut failure = None;
        for (decision, result) in results.into_iter().flatten() {
            match result {
                Ok(Outcome::Recorded) => self.board.note_pending(&decision),
                Ok(Outcome::Refused) => self.board.forget_pending(&decision),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Where a batch starts: after the older of the fold position and, when leading, the
/// checkpoint of reactions.
fn read_from<'a>(folded: &'a Checkpoint, reacted_to: Option<&'a Checkpoint>) -> &'a Checkpoint {
    match reacted_to {
        Some(checkpoint) if checkpoint.precedes(folded) => checkpoint,
        _ => folded,
    }
}

/// Folds one event into the board. An id that does not parse cannot be a real aggregate of
/// that type; it is skipped.
fn fold_into(board: &mut Board, event: &StoredEvent, payload: &DomainEventPayload) {
    let id = event.aggregate_id.as_str();
    let parsed = match payload {
        DomainEventPayload::Account(e) => id.parse().map(|id| board.apply_account(id, e)).is_ok(),
        DomainEventPayload::Agent(e) => id.parse().map(|id| board.apply_agent(id, e)).is_ok(),
        DomainEventPayload::Queue(e) => id.parse().map(|id| board.apply_queue(id, e)).is_ok(),
        DomainEventPayload::Interaction(e) => id.parse().map(|id| board.apply_interaction(id, e)).is_ok(),
        // Configuration and the contact manager do not change who is offered what.
        _ => true,
    };
    if !parsed {
        tracing::warn!(aggregate = %event.aggregate_type, id, "router skips an event with a malformed id");
    }
}

/// The Interaction command that carries out a decision.
fn command_for(decision: &Decision, at: DateTime<Utc>) -> (InteractionId, InteractionCommand) {
    match decision {
        Decision::Offer {
            interaction_id,
            agent_id,
            target_seq,
            attempt,
            expires_at,
            exclusive,
            explanation,
        } => (
            *interaction_id,
            InteractionCommand::Offer {
                agent_id: *agent_id,
                target_seq: *target_seq,
                attempt: *attempt,
                expires_at: *expires_at,
                exclusive: *exclusive,
                explanation: explanation.clone(),
                at,
            },
        ),
        Decision::Withdraw { interaction_id, agent_id, attempt, reason } => (
            *interaction_id,
            InteractionCommand::WithdrawOffer { agent_id: *agent_id, attempt: *attempt, reason: *reason, at },
        ),
        Decision::StickyReturn { interaction_id, agent_id } => {
            (*interaction_id, InteractionCommand::StartStickyReturn { agent_id: *agent_id, at })
        }
    }
}

/// Names a decision in its events' metadata (the same decision repeated gets the same name).
fn correlation(decision: &Decision) -> String {
    match decision {
        Decision::Offer { interaction_id, agent_id, attempt, .. } => {
            format!("offer:{interaction_id}:{agent_id}:{attempt}")
        }
        Decision::Withdraw { interaction_id, agent_id, attempt, .. } => {
            format!("withdraw:{interaction_id}:{agent_id}:{attempt}")
        }
        Decision::StickyReturn { interaction_id, agent_id } => format!("sticky:{interaction_id}:{agent_id}"),
    }
}

/// What became of a decision's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It recorded events: the decision is pending until the board reads them.
    Recorded,
    /// Refused or a no-op: it had no effect.
    Refused,
}

/// Business refusals and no-ops are outcomes; infrastructure errors stop the batch so the
/// round is retried.
fn outcome<T, E: std::error::Error>(result: Result<Vec<T>, CommandError<E>>) -> anyhow::Result<Outcome> {
    match result {
        Ok(events) if events.is_empty() => Ok(Outcome::Refused),
        Ok(_) => Ok(Outcome::Recorded),
        Err(CommandError::Rejected(e)) => {
            tracing::debug!(reason = %e, "routing decision refused");
            Ok(Outcome::Refused)
        }
        Err(e) => Err(anyhow::anyhow!(e.to_string())),
    }
}

/// A command an event calls for.
#[derive(Debug, Clone, PartialEq)]
enum Reaction {
    /// A command on a named agent.
    Agent(AgentId, AgentCommand),
    /// End the wrap-up of whoever owns the interaction (the event does not name them).
    EndOwnersWrapUp,
}

/// The reaction an interaction event calls for, if any.
fn reaction(interaction_id: InteractionId, event: &InteractionEvent, now: DateTime<Utc>) -> Option<Reaction> {
    let end_wrap_up =
        |agent_id| Reaction::Agent(agent_id, AgentCommand::EndWrapUp { interaction_id, at: now });
    match event {
        InteractionEvent::OfferTimedOut { agent_id, at, .. } => {
            Some(Reaction::Agent(*agent_id, AgentCommand::MissOffer { timed_out_at: *at, at: now }))
        }
        InteractionEvent::WrapUpStarted { agent_id, pause_reason, .. } => Some(Reaction::Agent(
            *agent_id,
            AgentCommand::StartWrapUp { interaction_id, reason: pause_reason.clone(), at: now },
        )),
        InteractionEvent::InteractionDisposed { agent_id, .. } => Some(end_wrap_up(*agent_id)),
        // Only the owner can have started a wrap-up; an agent closing is the owner. EndWrapUp is
        // a no-op for an agent with no wrap-up pending on this interaction.
        InteractionEvent::InteractionClosed { by: Closer::Agent(agent_id), .. } => {
            Some(end_wrap_up(*agent_id))
        }
        InteractionEvent::InteractionClosed { .. } | InteractionEvent::InteractionClosedBySystem { .. } => {
            Some(Reaction::EndOwnersWrapUp)
        }
        _ => None,
    }
}

async fn react_to(core: &Core, event: &StoredEvent, payload: &DomainEventPayload) -> anyhow::Result<()> {
    let DomainEventPayload::Interaction(e) = payload else { return Ok(()) };
    let Ok(interaction_id) = event.aggregate_id.parse::<InteractionId>() else { return Ok(()) };
    let now = core.clock.now();
    let Some(reaction) = reaction(interaction_id, e, now) else { return Ok(()) };
    let (agent_id, command) = match reaction {
        Reaction::Agent(agent_id, command) => (agent_id, command),
        Reaction::EndOwnersWrapUp => {
            let state = core.interactions.state(&event.aggregate_id).await;
            let owner = state.map_err(|e| anyhow::anyhow!(e.to_string()))?.state.agent_id;
            let Some(owner) = owner else { return Ok(()) };
            (owner, AgentCommand::EndWrapUp { interaction_id, at: now })
        }
    };
    let correlation = format!("{}#{}", event.aggregate_id, event.sequence);
    let meta = core.metadata(&CAUSE, &correlation);
    ignore_rejection(core.agents.execute(&agent_id.to_string(), command, meta).await)
}

/// Business refusals are logged and skipped (the command is moot); infrastructure errors stop
/// the batch so it is retried.
fn ignore_rejection<T, E: std::error::Error>(result: Result<T, CommandError<E>>) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(e)) => {
            tracing::info!(reason = %e, "router command refused");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_domain::agent::AgentError;
    use switchboard_domain::interaction::SystemClose;
    use switchboard_domain::routing::{OfferExplanation, Strategy, Target, WithdrawReason};
    use switchboard_domain::{DispositionCode, PauseReason, QueueId};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("time")
    }

    fn cp(tx_id: &str, position: i64) -> Checkpoint {
        Checkpoint { tx_id: tx_id.to_owned(), position }
    }

    #[test]
    fn a_batch_starts_at_the_older_of_fold_and_reactions() {
        // Starting up: folds from zero, reacting only past the checkpoint.
        assert_eq!(read_from(&Checkpoint::zero(), Some(&cp("0", 40))), &Checkpoint::zero());
        // Taking over from another node: reacts to what it folded while following.
        assert_eq!(read_from(&cp("0", 90), Some(&cp("0", 40))), &cp("0", 40));
        // Following: only folds.
        assert_eq!(read_from(&cp("0", 90), None), &cp("0", 90));
    }

    #[test]
    fn an_offer_decision_becomes_the_offer_command() {
        let (interaction_id, agent_id) = (InteractionId::new(), AgentId::new());
        let explanation = OfferExplanation::new(
            Target::Queue(QueueId::new()),
            Some(Strategy::RoundRobin),
            vec![],
            "next in turn".into(),
        );
        let decision = Decision::Offer {
            interaction_id,
            agent_id,
            target_seq: 2,
            attempt: 3,
            expires_at: at(10),
            exclusive: true,
            explanation: explanation.clone(),
        };
        assert_eq!(
            command_for(&decision, at(0)),
            (
                interaction_id,
                InteractionCommand::Offer {
                    agent_id,
                    target_seq: 2,
                    attempt: 3,
                    expires_at: at(10),
                    exclusive: true,
                    explanation,
                    at: at(0),
                }
            )
        );
        assert_eq!(correlation(&decision), format!("offer:{interaction_id}:{agent_id}:3"));
    }

    #[test]
    fn withdraw_and_sticky_decisions_become_their_commands() {
        let (interaction_id, agent_id) = (InteractionId::new(), AgentId::new());
        let withdraw = Decision::Withdraw {
            interaction_id,
            agent_id,
            attempt: 4,
            reason: WithdrawReason::AgentUnavailable,
        };
        assert_eq!(
            command_for(&withdraw, at(5)),
            (
                interaction_id,
                InteractionCommand::WithdrawOffer {
                    agent_id,
                    attempt: 4,
                    reason: WithdrawReason::AgentUnavailable,
                    at: at(5)
                }
            )
        );
        let sticky = Decision::StickyReturn { interaction_id, agent_id };
        assert_eq!(
            command_for(&sticky, at(6)),
            (interaction_id, InteractionCommand::StartStickyReturn { agent_id, at: at(6) })
        );
        assert_ne!(correlation(&withdraw), correlation(&sticky));
    }

    #[test]
    fn a_command_with_events_is_pending_and_a_refused_or_empty_one_is_forgotten() {
        let recorded: Result<Vec<u8>, CommandError<AgentError>> = Ok(vec![1]);
        assert_eq!(outcome(recorded).expect("outcome"), Outcome::Recorded);
        let empty: Result<Vec<u8>, CommandError<AgentError>> = Ok(vec![]);
        assert_eq!(outcome(empty).expect("outcome"), Outcome::Refused);
        let refused: Result<Vec<u8>, _> = Err(CommandError::Rejected(AgentError::NotFound));
        assert_eq!(outcome(refused).expect("outcome"), Outcome::Refused);
    }

    #[test]
    fn infrastructure_errors_stop_the_round() {
        let failed: Result<Vec<u8>, CommandError<AgentError>> = Err(CommandError::Store("down".into()));
        assert!(outcome(failed).is_err());
        let unavailable: Result<Vec<u8>, CommandError<AgentError>> = Err(CommandError::Unavailable);
        assert!(outcome(unavailable).is_err());
    }

    #[test]
    fn a_timed_out_offer_pauses_its_agent_as_of_the_timeout() {
        let (interaction_id, agent_id) = (InteractionId::new(), AgentId::new());
        let event = InteractionEvent::OfferTimedOut { agent_id, attempt: 1, at: at(10) };
        assert_eq!(
            reaction(interaction_id, &event, at(12)),
            Some(Reaction::Agent(agent_id, AgentCommand::MissOffer { timed_out_at: at(10), at: at(12) }))
        );
    }

    #[test]
    fn a_wrap_up_pauses_the_agent_with_its_reason() {
        let (interaction_id, agent_id) = (InteractionId::new(), AgentId::new());
        let reason = PauseReason::parse("wrap-up").ok();
        let event = InteractionEvent::WrapUpStarted { agent_id, pause_reason: reason.clone(), at: at(1) };
        assert_eq!(
            reaction(interaction_id, &event, at(2)),
            Some(Reaction::Agent(agent_id, AgentCommand::StartWrapUp { interaction_id, reason, at: at(2) }))
        );
    }

    #[test]
    fn disposing_or_closing_ends_the_wrap_up() {
        let (interaction_id, agent_id) = (InteractionId::new(), AgentId::new());
        let end = Some(Reaction::Agent(agent_id, AgentCommand::EndWrapUp { interaction_id, at: at(3) }));
        let disposition = DispositionCode::parse("Sold").expect("code");
        let disposed =
            InteractionEvent::InteractionDisposed { agent_id, disposition: disposition.clone(), at: at(1) };
        assert_eq!(reaction(interaction_id, &disposed, at(3)), end);
        let closed = InteractionEvent::InteractionClosed { by: Closer::Agent(agent_id), at: at(1) };
        assert_eq!(reaction(interaction_id, &closed, at(3)), end);
        let by_supervisor = InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: at(1) };
        assert_eq!(reaction(interaction_id, &by_supervisor, at(3)), Some(Reaction::EndOwnersWrapUp));
        let by_system = InteractionEvent::InteractionClosedBySystem {
            reason: SystemClose::PlanStep { step: 2 },
            disposition,
            at: at(1),
        };
        assert_eq!(reaction(interaction_id, &by_system, at(3)), Some(Reaction::EndOwnersWrapUp));
    }

    #[test]
    fn other_events_call_for_nothing() {
        let event = InteractionEvent::AgentAssigned { agent_id: AgentId::new(), at: at(0) };
        assert_eq!(reaction(InteractionId::new(), &event, at(0)), None);
    }
}
