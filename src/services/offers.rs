//! Answering offers: the queue decides whether the offer stands, then the interaction is
//! assigned. The router repeats the assignment from the log, so a crash between the two
//! steps still ends with the interaction assigned.

use switchboard_domain::interaction::{Interaction, InteractionCommand, InteractionError};
use switchboard_domain::queue::{QueueCommand, QueueError};
use switchboard_domain::{AgentId, InteractionId, QueueId};

use crate::core::{Cause, Core};
use crate::runtime::CommandError;

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The interaction does not exist or is not routed to a queue.
    #[error("no such interaction")]
    UnknownInteraction,
    /// The agent was not added to the interaction's account, so may not work it.
    #[error("the agent is not a member of the interaction's account")]
    NotAccountMember,
    /// The queue refused (no pending offer to this agent).
    #[error(transparent)]
    Queue(#[from] CommandError<QueueError>),
    /// The interaction refused the assignment.
    #[error(transparent)]
    Interaction(#[from] CommandError<InteractionError>),
}

async fn queue_of(core: &Core, interaction_id: InteractionId) -> Result<(QueueId, Interaction), OfferError> {
    let snapshot = core.interactions.state(&interaction_id.to_string()).await?;
    let queue_id = snapshot.state.queue_id.ok_or(OfferError::UnknownInteraction)?;
    Ok((queue_id, snapshot.state))
}

/// The agent accepts the interaction offered to them.
pub async fn accept(
    core: &Core,
    agent_id: AgentId,
    interaction_id: InteractionId,
    cause: &Cause,
    correlation: &str,
) -> Result<(), OfferError> {
    let (queue_id, interaction) = queue_of(core, interaction_id).await?;
    // Queue membership and account membership are configured separately; an agent who may
    // not see the account's interactions may not take one either.
    let account_id = interaction.account_id.ok_or(OfferError::UnknownInteraction)?;
    let account = core
        .accounts
        .state(&account_id.to_string())
        .await
        .map_err(|e| OfferError::Interaction(CommandError::Store(e.to_string())))?;
    if !account.state.agents.contains(&agent_id) {
        return Err(OfferError::NotAccountMember);
    }
    let at = core.clock.now();
    core.queues
        .execute(
            &queue_id.to_string(),
            QueueCommand::AcceptOffer { interaction_id, agent_id, at },
            core.metadata(cause, correlation),
        )
        .await?;
    core.interactions
        .execute(
            &interaction_id.to_string(),
            InteractionCommand::AssignAgent { agent_id, at },
            core.metadata(cause, correlation),
        )
        .await?;
    Ok(())
}

/// The agent declines the interaction offered to them.
pub async fn reject(
    core: &Core,
    agent_id: AgentId,
    interaction_id: InteractionId,
    cause: &Cause,
    correlation: &str,
) -> Result<(), OfferError> {
    let (queue_id, _) = queue_of(core, interaction_id).await?;
    core.queues
        .execute(
            &queue_id.to_string(),
            QueueCommand::RejectOffer { interaction_id, agent_id, at: core.clock.now() },
            core.metadata(cause, correlation),
        )
        .await?;
    Ok(())
}
