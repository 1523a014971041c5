//! Command line and environment configuration.
//!
//! With no options at all, `serve` listens on 127.0.0.1:8080 and keeps everything in an
//! SQLite file under `./data`, so the server runs on a fresh machine with nothing else
//! installed. Every option has a `SWITCHBOARD_*` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::auth::Role;

/// Switchboard: a self-hosted WhatsApp contact-center channel.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create an API token (e.g. the first admin token) and print it.
    CreateToken(TokenArgs),
    /// Rebuild every projection from the beginning of the log, then exit (stop the server
    /// first). `--check` compares every read-model table before and after (exit 1 if any differs).
    RebuildProjections(RebuildArgs),
    /// Recompute every aggregate's hash chain; report the first broken link of each (exit 1
    /// on any).
    Verify(AuditArgs),
    /// Write a signed checkpoint of every chain head (keep it off this machine).
    Checkpoint(CheckpointArgs),
    /// Check a checkpoint: signature, every head still present and unchanged, chains valid
    /// (exit 1 otherwise).
    CheckpointVerify(CheckpointVerifyArgs),
    /// Re-seal every account's provider credentials with the current master key (after
    /// changing `SWITCHBOARD_MASTER_KEY`, with the old key in
    /// `SWITCHBOARD_MASTER_KEY_PREVIOUS`), then exit.
    RotateCredentials(DbArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://PATH` (default, embedded) or `postgres://...`.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", default_value = "sqlite://data/switchboard.db")]
    pub database_url: String,
    /// Directory for the SQLite file and the generated master key.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Base64 of the 32-byte key that encrypts provider credentials. Without it, a key file
    /// is created in the data directory on first start.
    #[arg(long, env = "SWITCHBOARD_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Previous master keys (base64, comma-separated): they still open credentials sealed
    /// before a rotation, and never seal new ones.
    #[arg(long, env = "SWITCHBOARD_MASTER_KEY_PREVIOUS", hide_env_values = true)]
    pub master_key_previous: Option<String>,
    /// Maximum database connections per pool.
    #[arg(long, env = "SWITCHBOARD_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
}

/// `rebuild-projections` options.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// Compare every projection table before and after the rebuild.
    #[arg(long)]
    pub check: bool,
    /// Database options.
    #[command(flatten)]
    pub db: DbArgs,
}

/// Options of the audit commands.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Base64 of a 32-byte Ed25519 seed signing checkpoints (default: derived from the master key).
    #[arg(long, env = "SWITCHBOARD_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Database options.
    #[command(flatten)]
    pub db: DbArgs,
}

/// `checkpoint` options.
#[derive(Debug, Clone, Args)]
pub struct CheckpointArgs {
    /// Where to write the checkpoint (JSON); `-` for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// Audit options.
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// `checkpoint-verify` options.
#[derive(Debug, Clone, Args)]
pub struct CheckpointVerifyArgs {
    /// The checkpoint file.
    pub file: PathBuf,
    /// Base64 public key to trust (default: the key derived from this installation's keys).
    #[arg(long)]
    pub public_key: Option<String>,
    /// Audit options.
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// The public base URL providers call, exactly as they call it: the receive URLs shown to
    /// admins, Twilio's signature check and the status callbacks of Twilio sends use it.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log as JSON lines.
    #[arg(long, env = "SWITCHBOARD_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SWITCHBOARD_HTTP_WORKERS")]
    pub http_workers: Option<usize>,
    /// Directory of the media blob store (default: `media` under the data directory).
    #[arg(long, env = "SWITCHBOARD_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,
    /// Largest media accepted from agents or downloaded from providers, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_MEDIA_BYTES", default_value_t = crate::core::DEFAULT_MAX_MEDIA_BYTES)]
    pub max_media_bytes: u64,
    /// Seconds an agent whose websocket dropped stays reachable (offers keep coming) before
    /// routing skips them; a reconnect within it goes unnoticed.
    #[arg(long, env = "SWITCHBOARD_WS_GRACE_SECS", default_value_t = crate::core::DEFAULT_WS_GRACE_SECS)]
    pub ws_grace_secs: u64,
    /// Database options.
    #[command(flatten)]
    pub db: DbArgs,
}

/// `create-token` options.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Role of the token.
    #[arg(long, value_parser = parse_role, default_value = "admin")]
    pub role: Role,
    /// A label to recognise it by.
    #[arg(long, default_value = "bootstrap")]
    pub label: String,
    /// Database options.
    #[command(flatten)]
    pub db: DbArgs,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "admin" => Ok(Role::Admin),
        "supervisor" => Ok(Role::Supervisor),
        _ => Err("role must be admin or supervisor (agent tokens come with POST /api/agents)".into()),
    }
}

/// Settings for building the application (also built directly by tests).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub bind: String,
    /// Public base URL for receive URLs; defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Database URL.
    pub database_url: String,
    /// Master keyring: the current key (base64), optionally followed by previous keys,
    /// comma-separated (see `crypto::Sealer::from_keyring`).
    pub master_key: String,
    /// Max connections per pool.
    pub db_connections: u32,
    /// HTTP worker threads.
    pub http_workers: usize,
    /// Threads hosting aggregate actors.
    pub actor_threads: usize,
    /// Idle time after which an aggregate actor stops.
    pub actor_idle: std::time::Duration,
    /// Poll interval of projectors and workers when nothing wakes them.
    pub poll_interval: std::time::Duration,
    /// How long a graceful stop waits for open connections (websockets) to finish.
    pub shutdown_timeout_secs: u64,
    /// Directory of the local media blob store.
    pub media_dir: PathBuf,
    /// Largest media accepted from agents or downloaded from providers, in bytes.
    pub max_media_bytes: u64,
    /// How long an agent whose websocket dropped stays reachable before routing skips them.
    pub ws_grace: std::time::Duration,
}
