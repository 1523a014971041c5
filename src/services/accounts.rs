//! Account administration services: creation with a unique key, updates, deletion and the
//! re-sealing of credentials after a key rotation.
//!
//! Keys are unique through `AccountKeyClaim` aggregates: a key is claimed before the account
//! records it and released once it no longer does (create: claim, create; key change: claim
//! the new key, change, release the old; delete: delete, release). Every check that can
//! refuse (key taken, unknown list, provider type) runs before the first command that records
//! anything, so a refused request stores nothing. A crash between two steps leaves at worst a
//! claimed key no account uses, which only that account id can release; it is never a key two
//! accounts share.

use switchboard_domain::account::key_claim::{AccountKeyClaimCommand, AccountKeyClaimError, claim_id};
use switchboard_domain::account::{
    Account, AccountCommand, AccountDetails, AccountError, DetailsPatch, ProviderSettings, ProxyToken,
};
use switchboard_domain::{AccountId, AccountKey, ContactListId, DisplayName};

use crate::core::{Cause, Core};
use crate::crypto::CryptoError;
use crate::runtime::{CommandError, Metadata};

/// Why an account operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountServiceError {
    /// Another account uses the key.
    #[error("the key `{0}` is already used by another account")]
    KeyTaken(String),
    /// The default list does not exist.
    #[error("`default_list` names no existing contact list")]
    UnknownList,
    /// The account has interactions that are not closed.
    #[error("the account has {0} open interactions; close them before deleting it")]
    HasOpenInteractions(i64),
    /// The account refused the command.
    #[error(transparent)]
    Account(#[from] CommandError<AccountError>),
    /// A key claim could not be recorded.
    #[error(transparent)]
    Claim(CommandError<AccountKeyClaimError>),
    /// Another aggregate could not be read.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// The read model could not be queried.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A secret could not be opened with any configured key (rotation only).
    #[error("account {account_id}: {source}")]
    Crypto {
        /// Which account.
        account_id: String,
        /// Why.
        source: CryptoError,
    },
}

impl From<CommandError<AccountKeyClaimError>> for AccountServiceError {
    fn from(e: CommandError<AccountKeyClaimError>) -> Self {
        Self::Claim(e)
    }
}

/// A new account, parsed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Name.
    pub name: DisplayName,
    /// Key.
    pub key: AccountKey,
    /// Provider, secrets sealed.
    pub provider: ProviderSettings,
    /// Description, phone, default list, public domain.
    pub details: AccountDetails,
}

/// A partial update, parsed. `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    /// New name.
    pub name: Option<DisplayName>,
    /// New key.
    pub key: Option<AccountKey>,
    /// New details.
    pub details: DetailsPatch,
    /// New credentials (same provider type), secrets sealed.
    pub provider: Option<ProviderSettings>,
}

/// A fresh proxy token: 128 random bits, hex.
fn proxy_token() -> ProxyToken {
    let bytes: [u8; 16] = rand::random();
    ProxyToken(hex::encode(bytes))
}

/// Whether a contact list exists. Any recorded list counts (the directory decides what a
/// deleted list means for accounts referring to it).
async fn list_exists(core: &Core, list: ContactListId) -> Result<bool, AccountServiceError> {
    let snapshot = core
        .contact_lists
        .state(&list.to_string())
        .await
        .map_err(|e| AccountServiceError::Unavailable(e.to_string()))?;
    // A deleted list is as good as none: it cannot become a default list.
    Ok(snapshot.state.exists())
}

async fn check_list(core: &Core, list: Option<ContactListId>) -> Result<(), AccountServiceError> {
    match list {
        Some(list) if !list_exists(core, list).await? => Err(AccountServiceError::UnknownList),
        _ => Ok(()),
    }
}

async fn claim(
    core: &Core,
    key: &AccountKey,
    account_id: AccountId,
    metadata: &Metadata,
) -> Result<(), AccountServiceError> {
    let cmd = AccountKeyClaimCommand::Claim { account_id, at: core.clock.now() };
    match core.account_keys.execute(&claim_id(key), cmd, metadata.clone()).await {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(AccountKeyClaimError::KeyTaken)) => {
            Err(AccountServiceError::KeyTaken(key.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn release(core: &Core, key: &AccountKey, account_id: AccountId, metadata: &Metadata) {
    let cmd = AccountKeyClaimCommand::Release { account_id, at: core.clock.now() };
    if let Err(e) = core.account_keys.execute(&claim_id(key), cmd, metadata.clone()).await {
        // The key stays reserved for this account id only; logged for the operator.
        tracing::warn!(key = %key, %account_id, error = %e, "could not release an account key");
    }
}

/// Creates an account with a unique key; returns its id.
pub async fn create(
    core: &Core,
    new: NewAccount,
    metadata: Metadata,
) -> Result<AccountId, AccountServiceError> {
    check_list(core, new.details.default_list).await?;
    let account_id = AccountId::new();
    claim(core, &new.key, account_id, &metadata).await?;
    let cmd = AccountCommand::Create {
        name: new.name,
        key: new.key.clone(),
        provider: new.provider,
        details: new.details,
        proxy_token: proxy_token(),
        at: core.clock.now(),
    };
    if let Err(e) = core.accounts.execute(&account_id.to_string(), cmd, metadata.clone()).await {
        release(core, &new.key, account_id, &metadata).await;
        return Err(e.into());
    }
    Ok(account_id)
}

/// The account if it exists (not deleted).
pub async fn existing(core: &Core, account_id: AccountId) -> Result<Account, AccountServiceError> {
    let account = core.accounts.state(&account_id.to_string()).await?.state;
    if !account.exists() {
        return Err(CommandError::Rejected(AccountError::NotFound).into());
    }
    Ok(account)
}

/// Applies a partial update: one event per kind of change.
pub async fn update(
    core: &Core,
    account_id: AccountId,
    update: AccountUpdate,
    metadata: Metadata,
) -> Result<(), AccountServiceError> {
    let account = existing(core, account_id).await?;
    // Every refusal first, so a refused update records nothing.
    if let Some(Some(list)) = update.details.default_list {
        check_list(core, Some(list)).await?;
    }
    if let (Some(new), Some(current)) = (&update.provider, &account.provider)
        && new.kind() != current.kind()
    {
        return Err(CommandError::Rejected(AccountError::ProviderTypeChange {
            from: current.kind(),
            to: new.kind(),
        })
        .into());
    }
    let id = account_id.to_string();
    if let Some(key) = update.key.filter(|k| account.key.as_ref() != Some(k)) {
        claim(core, &key, account_id, &metadata).await?;
        let cmd = AccountCommand::ChangeKey { key: key.clone(), at: core.clock.now() };
        if let Err(e) = core.accounts.execute(&id, cmd, metadata.clone()).await {
            release(core, &key, account_id, &metadata).await;
            return Err(e.into());
        }
        // Keys differing only in case share a claim: releasing the old one would free the new.
        if let Some(old) = account.key.as_ref().filter(|old| claim_id(old) != claim_id(&key)) {
            release(core, old, account_id, &metadata).await;
        }
    }
    if let Some(name) = update.name {
        core.accounts
            .execute(&id, AccountCommand::Rename { name, at: core.clock.now() }, metadata.clone())
            .await?;
    }
    if !update.details.is_empty() {
        let cmd = AccountCommand::ChangeDetails { patch: update.details, at: core.clock.now() };
        core.accounts.execute(&id, cmd, metadata.clone()).await?;
    }
    if let Some(provider) = update.provider {
        let cmd = AccountCommand::ReplaceProvider { provider, at: core.clock.now() };
        core.accounts.execute(&id, cmd, metadata.clone()).await?;
    }
    Ok(())
}

/// How many of the account's interactions are not closed (from the interaction list).
pub async fn open_interactions(core: &Core, account_id: AccountId) -> Result<i64, sqlx::Error> {
    let row: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM interaction_list WHERE account_id = $1 AND status NOT IN ('closed', 'disposed')",
    )
    .bind(account_id.to_string())
    .fetch_one(&core.db.any)
    .await?;
    Ok(row.0)
}

/// Deletes an account without open interactions and frees its key.
pub async fn delete(
    core: &Core,
    account_id: AccountId,
    metadata: Metadata,
) -> Result<(), AccountServiceError> {
    let account = existing(core, account_id).await?;
    let open = open_interactions(core, account_id).await?;
    if open > 0 {
        return Err(AccountServiceError::HasOpenInteractions(open));
    }
    core.accounts
        .execute(&account_id.to_string(), AccountCommand::Delete { at: core.clock.now() }, metadata.clone())
        .await?;
    if let Some(key) = &account.key {
        release(core, key, account_id, &metadata).await;
    }
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Accounts whose credentials were re-sealed.
    pub accounts: usize,
    /// Secrets re-sealed.
    pub secrets: usize,
    /// The key they are now sealed with.
    pub key_id: String,
}

/// Re-seals every live account's secrets that are not sealed with the current key (a
/// `ProviderCredentialsResealed` event each). Idempotent: a second run finds nothing to do.
/// Stops at the first secret no configured key opens, naming the account.
pub async fn rotate_credentials(core: &Core) -> Result<RotationReport, AccountServiceError> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Account'")
            .fetch_all(&core.db.any)
            .await?;
    let metadata = core.metadata(&Cause::System("rotate-credentials"), &uuid::Uuid::now_v7().to_string());
    let mut report = RotationReport { key_id: core.sealer.current_key_id().to_owned(), ..Default::default() };
    for (id,) in ids {
        let account = core.accounts.state(&id).await?.state;
        let live = account.exists();
        let Some(provider) = account.provider.filter(|_| live) else { continue };
        let stale = provider.secrets().iter().filter(|s| core.sealer.needs_reseal(s)).count();
        if stale == 0 {
            continue;
        }
        let resealed = provider
            .try_map_secrets(|s| core.sealer.reseal(s))
            .map_err(|source| AccountServiceError::Crypto { account_id: id.clone(), source })?;
        let cmd = AccountCommand::ResealProvider { provider: resealed, at: core.clock.now() };
        core.accounts.execute(&id, cmd, metadata.clone()).await?;
        report.accounts += 1;
        report.secrets += stale;
    }
    Ok(report)
}
