//! The `switchboard` binary: `serve`, `create-token`, `rebuild-projections`,
//! `rotate-credentials`, and the audit commands `verify`, `checkpoint`, `checkpoint-verify`
//! (exit 1 when a check fails).

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchboard::auth;
use switchboard::clock::Clock;
use switchboard::config::{Cli, Command, Settings};
use switchboard::startup::{self, Application};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            switchboard::telemetry::init(args.log_json);
            startup::prepare_data_dir(&args.db)?;
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
            let settings = Settings {
                bind: args.bind.clone(),
                public_url: args.public_url.clone(),
                database_url: args.db.database_url.clone(),
                master_key: startup::master_keyring(&args.db)?,
                db_connections: args.db.db_connections,
                http_workers: args.http_workers.unwrap_or(cores),
                actor_threads: cores,
                actor_idle: Duration::from_secs(300),
                poll_interval: Duration::from_millis(200),
                shutdown_timeout_secs: 30,
                media_dir: args.media_dir.clone().unwrap_or_else(|| args.db.data_dir.join("media")),
                max_media_bytes: args.max_media_bytes,
                ws_grace: Duration::from_secs(args.ws_grace_secs),
            };
            let app = Application::build(settings, Clock::system()).await?;
            tracing::info!(port = app.port(), "switchboard listening");
            app.run_until_stopped().await?;
        }
        Command::CreateToken(args) => {
            switchboard::telemetry::init(false);
            startup::prepare_data_dir(&args.db)?;
            let db = switchboard::db::connect(&args.db.database_url, 2).await?;
            let token =
                auth::issue(&db.any, args.role, None, &args.label, chrono::Utc::now().timestamp_millis())
                    .await
                    .context("storing the token")?;
            println!("{token}");
        }
        Command::RebuildProjections(args) => {
            switchboard::telemetry::init(false);
            exit_unless(switchboard::audit::cli::rebuild_projections(&args).await?);
        }
        Command::Verify(args) => {
            switchboard::telemetry::init(false);
            exit_unless(switchboard::audit::cli::verify(&args).await?);
        }
        Command::Checkpoint(args) => {
            switchboard::telemetry::init(false);
            exit_unless(switchboard::audit::cli::checkpoint(&args).await?);
        }
        Command::CheckpointVerify(args) => {
            switchboard::telemetry::init(false);
            exit_unless(switchboard::audit::cli::checkpoint_verify(&args).await?);
        }
        Command::RotateCredentials(args) => {
            switchboard::telemetry::init(false);
            startup::prepare_data_dir(&args)?;
            let keyring = startup::master_keyring(&args)?;
            let sealer =
                switchboard::crypto::Sealer::from_keyring(&keyring).context("SWITCHBOARD_MASTER_KEY")?;
            let db = switchboard::db::connect(&args.database_url, 2).await?;
            let core = switchboard::core::Core::new(db, Clock::system(), sealer, 1, Duration::from_secs(60));
            let report = switchboard::services::accounts::rotate_credentials(&core).await?;
            // The per-contact keys of personal data are sealed with the master key too.
            let pii_keys = core.pii.reseal_all().await.context("re-sealing personal-data keys")?;
            core.stop();
            println!("re-sealed {pii_keys} personal-data keys");
            println!(
                "re-sealed {} secrets of {} accounts with key {}",
                report.secrets, report.accounts, report.key_id
            );
        }
    }
    Ok(())
}

/// Exits 1 when a check failed (its report is already printed).
fn exit_unless(ok: bool) {
    if !ok {
        std::process::exit(1);
    }
}
