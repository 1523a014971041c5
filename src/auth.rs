//! Bearer tokens and roles.
//!
//! Tokens are 32 random bytes shown once; only their SHA-256 is stored, so a database leak
//! does not leak credentials. Roles: `admin` (configuration and everything else),
//! `supervisor` (reads everything, closes any interaction), `agent` (works the interactions
//! of the accounts they were added to, acting only as themselves).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use switchboard_domain::AgentId;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Configures everything.
    Admin,
    /// Watches and intervenes.
    Supervisor,
    /// Handles interactions.
    Agent,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Their role.
    pub role: Role,
    /// Their agent id, for agents.
    pub agent_id: Option<AgentId>,
    /// The token's label.
    pub label: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token and returns it (the only time it is visible).
pub async fn issue(
    pool: &AnyPool,
    role: Role,
    agent_id: Option<AgentId>,
    label: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let bytes: [u8; 32] = rand::random();
    let token = format!("sb_{}", URL_SAFE_NO_PAD.encode(bytes));
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, role, agent_id, label, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&token))
    .bind(role.as_str())
    .bind(agent_id.map(|a| a.to_string()))
    .bind(label)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(token)
}

/// Looks a token up; `None` if unknown or revoked.
pub async fn authenticate(pool: &AnyPool, token: &str) -> Result<Option<Principal>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT role, agent_id, label FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    let agent_id: Option<String> = row.try_get("agent_id")?;
    Ok(Role::parse(&role).map(|role| Principal {
        role,
        agent_id: agent_id.and_then(|a| a.parse().ok()),
        label: row.try_get("label").unwrap_or_default(),
    }))
}
