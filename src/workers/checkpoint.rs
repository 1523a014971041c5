//! Checkpoints for consumers whose effects are commands rather than table writes (the
//! router). They read the same global log as projectors; the checkpoint moves after the
//! batch's commands succeeded, so a crash repeats commands, which are all idempotent.

use sqlx::AnyPool;
use switchboard_projections::{Backend, Checkpoint, log};

/// Loads a consumer's checkpoint (zero if it never ran).
pub async fn load(pool: &AnyPool, backend: Backend, name: &str) -> Result<Checkpoint, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    log::load_checkpoint(&mut conn, backend, name).await
}

/// Saves a consumer's checkpoint.
pub async fn save(
    pool: &AnyPool,
    backend: Backend,
    name: &str,
    at: &Checkpoint,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => {
            "INSERT INTO projection_checkpoints (projection, last_tx_id, last_pos, updated_at)
             VALUES ($1, $2::text::xid8, $3, $4)
             ON CONFLICT (projection) DO UPDATE
               SET last_tx_id = EXCLUDED.last_tx_id, last_pos = EXCLUDED.last_pos, updated_at = EXCLUDED.updated_at"
        }
        Backend::Sqlite => {
            "INSERT INTO projection_checkpoints (projection, last_tx_id, last_pos, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (projection) DO UPDATE
               SET last_tx_id = excluded.last_tx_id, last_pos = excluded.last_pos, updated_at = excluded.updated_at"
        }
    };
    sqlx::query(sql).bind(name).bind(at.tx_id.clone()).bind(at.position).bind(now_ms).execute(pool).await?;
    Ok(())
}
