//! Answering offers. The Interaction decides whether the offer stands (it is theirs, still
//! pending, not lapsed) and assigns itself in the same commit, so there is nothing to repair
//! after a crash.

use switchboard_domain::interaction::{InteractionCommand, InteractionError};
use switchboard_domain::{AgentId, InteractionId};

use crate::core::{Cause, Core};
use crate::runtime::CommandError;

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The interaction does not exist.
    #[error("no such interaction")]
    UnknownInteraction,
    /// The agent was not added to the interaction's account, so may not work it.
    #[error("the agent is not a member of the interaction's account")]
    NotAccountMember,
    /// The interaction refused.
    #[error(transparent)]
    Interaction(#[from] CommandError<InteractionError>),
}

/// Checks the agent may work the interaction's account: queue membership and account
/// membership are configured separately, and an agent who may not see the account's
/// interactions may not take one either.
async fn require_member(
    core: &Core,
    agent_id: AgentId,
    interaction_id: InteractionId,
) -> Result<(), OfferError> {
    let snapshot = core.interactions.state(&interaction_id.to_string()).await?;
    let account_id = snapshot.state.account_id.ok_or(OfferError::UnknownInteraction)?;
    let account = core
        .accounts
        .state(&account_id.to_string())
        .await
        .map_err(|e| OfferError::Interaction(CommandError::Store(e.to_string())))?;
    if !account.state.agents.contains(&agent_id) {
        return Err(OfferError::NotAccountMember);
    }
    Ok(())
}

/// The agent accepts the interaction offered to them.
pub async fn accept(
    core: &Core,
    agent_id: AgentId,
    interaction_id: InteractionId,
    cause: &Cause,
    correlation: &str,
) -> Result<(), OfferError> {
    require_member(core, agent_id, interaction_id).await?;
    let cmd = InteractionCommand::AcceptOffer { agent_id, at: core.clock.now() };
    core.interactions.execute(&interaction_id.to_string(), cmd, core.metadata(cause, correlation)).await?;
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
    require_member(core, agent_id, interaction_id).await?;
    let cmd = InteractionCommand::RejectOffer { agent_id, at: core.clock.now() };
    core.interactions.execute(&interaction_id.to_string(), cmd, core.metadata(cause, correlation)).await?;
    Ok(())
}
