//! The audit subcommands (`verify`, `checkpoint`, `checkpoint-verify`, `rebuild-projections`),
//! kept here so `main.rs` only dispatches. Each returns whether everything held; `main` exits
//! 1 otherwise, so scripts and cron jobs can alert on it.

use anyhow::Context;

use super::{chain, checkpoint, rebuild};
use crate::config::{AuditArgs, CheckpointArgs, CheckpointVerifyArgs, RebuildArgs};

fn signer(args: &AuditArgs) -> anyhow::Result<checkpoint::Signer> {
    let keyring = match &args.audit_key {
        // An explicit audit key needs no master key (an auditor's machine may not have it).
        Some(_) => String::new(),
        None => crate::startup::master_keyring(&args.db)?,
    };
    checkpoint::Signer::new(&keyring, args.audit_key.as_deref()).context("the checkpoint signing key")
}

fn print_verify(report: &chain::VerifyReport) {
    for b in &report.breaks {
        println!(
            "{} {}/{} at sequence {}: expected {}, found {}",
            serde_json::to_value(b.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            b.aggregate_type,
            b.aggregate_id,
            b.sequence,
            b.expected.as_deref().unwrap_or("-"),
            b.found.as_deref().unwrap_or("-"),
        );
    }
    println!(
        "{}: {} aggregates, {} events, {} broken, {:.3} s",
        if report.ok { "ok" } else { "BROKEN" },
        report.aggregates,
        report.events,
        report.breaks.len(),
        report.seconds
    );
}

/// `switchboard verify`.
pub async fn verify(args: &AuditArgs) -> anyhow::Result<bool> {
    let db = crate::db::connect(&args.db.database_url, 2).await?;
    let report = chain::verify(&db).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_verify(&report);
    }
    Ok(report.ok)
}

/// `switchboard checkpoint --out FILE`.
pub async fn checkpoint(args: &CheckpointArgs) -> anyhow::Result<bool> {
    let signer = signer(&args.audit)?;
    let db = crate::db::connect(&args.audit.db.database_url, 2).await?;
    let checkpoint = checkpoint::create(&db, &signer, chrono::Utc::now()).await?;
    let json = serde_json::to_string_pretty(&checkpoint)?;
    if args.out.as_os_str() == "-" {
        println!("{json}");
    } else {
        std::fs::write(&args.out, json + "\n").with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!(
            "checkpoint of {} aggregates, {} events (position {}) written to {}; public key {}",
            checkpoint.aggregates,
            checkpoint.events,
            checkpoint.last_position,
            args.out.display(),
            checkpoint.public_key
        );
    }
    Ok(true)
}

/// `switchboard checkpoint-verify FILE [--public-key B64]`.
pub async fn checkpoint_verify(args: &CheckpointVerifyArgs) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let checkpoint: checkpoint::Checkpoint = serde_json::from_str(&text).context("not a checkpoint")?;
    let trusted = match &args.public_key {
        Some(key) => checkpoint::parse_public_key(key)?,
        None => signer(&args.audit)?.verifying_key(),
    };
    let db = crate::db::connect(&args.audit.db.database_url, 2).await?;
    let report = checkpoint::verify(&db, &checkpoint, &trusted).await?;
    if args.audit.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(report.ok);
    }
    if !report.signature_valid {
        println!("bad_signature: the checkpoint is not signed by the trusted key (or was edited)");
        return Ok(false);
    }
    for p in &report.problems {
        println!(
            "{} {}/{} at sequence {}: recorded {}, found {}",
            serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            p.aggregate_type,
            p.aggregate_id,
            p.sequence,
            p.expected,
            p.found.as_deref().unwrap_or("nothing")
        );
    }
    if let Some(chain) = &report.chain {
        print_verify(chain);
    }
    println!(
        "{}: {} heads checked, {} problems",
        if report.ok { "ok" } else { "FAILED" },
        report.heads_checked,
        report.problems.len()
    );
    Ok(report.ok)
}

/// `switchboard rebuild-projections [--check]`.
pub async fn rebuild_projections(args: &RebuildArgs) -> anyhow::Result<bool> {
    let keyring = crate::startup::master_keyring(&args.db)?;
    let sealer = crate::crypto::Sealer::from_keyring(&keyring).context("SWITCHBOARD_MASTER_KEY")?;
    let db = crate::db::connect(&args.db.database_url, 4).await?;
    let pii =
        std::sync::Arc::new(crate::pii::Pii::new(db.any.clone(), sealer, crate::clock::Clock::system()));
    rebuild::run_cli(&db, pii, args.check).await
}
