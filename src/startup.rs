//! Building and running the application: connect and migrate the database, start the actor
//! registries, the projectors and workers, and the HTTP server. Tests build it the same way
//! on `127.0.0.1:0`.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use futures_util::FutureExt;
use switchboard_projections::Projector;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{DbArgs, Settings};
use crate::core::Core;
use crate::crypto::Sealer;
use crate::http::{self, AppState, metrics::Metrics};
use crate::workers::{self, feed::Hub};

/// A running application.
pub struct Application {
    port: u16,
    server: Server,
    handle: ServerHandle,
    core: Core,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Connects, migrates, starts workers and binds the server (not yet serving).
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database_url, settings.db_connections).await?;
        let sealer = Sealer::from_keyring(&settings.master_key).context("SWITCHBOARD_MASTER_KEY")?;
        let listener =
            TcpListener::bind(&settings.bind).with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            let host = settings.bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
            format!("http://{host}:{port}")
        });
        let mut core = Core::new(db, clock, sealer, settings.actor_threads, settings.actor_idle);
        core.public_url = public_url.clone();
        core.blobs = std::sync::Arc::new(crate::blobs::LocalBlobStore::new(&settings.media_dir));
        core.max_media_bytes = settings.max_media_bytes;
        core.ws_grace = settings.ws_grace;
        // Media deletions an erasure could not finish before a crash (ADR 0020).
        let retry = core.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::pii::erase::retry_blob_deletions(&retry).await {
                tracing::warn!(error = %e, "retrying blob deletions failed");
            }
        });
        // The environment, like the CLI's `--audit-key` (config.rs): Settings stays unchanged.
        let audit_key = std::env::var("SWITCHBOARD_AUDIT_KEY").ok();
        core.audit_signer = Some(std::sync::Arc::new(
            crate::audit::checkpoint::Signer::new(&settings.master_key, audit_key.as_deref())
                .context("SWITCHBOARD_AUDIT_KEY")?,
        ));
        let hub = Hub::default();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let projector =
            Projector::new(core.db.any.clone(), core.db.backend, switchboard_projections::combined(), 500)
                .with_opener(core.pii.clone());
        tasks.push(tokio::spawn(projector.run(
            core.commit_signal(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::router::run(
            core.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::timers::run(
            core.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::outbox::run(
            core.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::media::run(
            core.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::feed::run(
            core.clone(),
            hub.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::feed::publish_realtime(
            core.clone(),
            hub.clone(),
            shutdown_rx.clone(),
            settings.poll_interval,
        )));
        tasks.push(tokio::spawn(workers::planner::run(core.clone(), shutdown_rx.clone())));

        let metrics = Metrics::new().context("metrics")?;
        let state = web::Data::new(AppState { core: core.clone(), hub, metrics, public_url });
        let server = HttpServer::new(move || {
            let metrics = state.metrics.clone();
            App::new()
                .app_data(state.clone())
                .wrap_fn(move |req, srv| {
                    let method = req.method().to_string();
                    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                    let started = Instant::now();
                    let metrics = metrics.clone();
                    srv.call(req).map(move |res| {
                        let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(500);
                        metrics.requests.with_label_values(&[&method, &route, &status.to_string()]).inc();
                        metrics
                            .latency
                            .with_label_values(&[&method, &route])
                            .observe(started.elapsed().as_secs_f64());
                        res
                    })
                })
                .wrap(tracing_actix_web::TracingLogger::<crate::telemetry::RequestSpan>::new())
                .configure(http::routes)
        })
        .workers(settings.http_workers)
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .listen(listener)?
        .run();
        let handle = server.handle();
        Ok(Self { port, server, handle, core, shutdown, tasks })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The core (tests inspect it).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves until stopped, then stops the workers.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.core.stop();
        result
    }
}

/// The master keyring: the current key (see [`master_key`]) followed by the previous keys
/// of `SWITCHBOARD_MASTER_KEY_PREVIOUS`, comma-separated.
pub fn master_keyring(db: &DbArgs) -> anyhow::Result<String> {
    let current = master_key(db)?;
    Ok(match db.master_key_previous.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(previous) => format!("{current},{previous}"),
        None => current,
    })
}

/// Reads the master key from the environment or the key file in the data directory,
/// creating the file (mode 0600) on first start.
pub fn master_key(db: &DbArgs) -> anyhow::Result<String> {
    if let Some(key) = &db.master_key {
        return Ok(key.clone());
    }
    let path = db.data_dir.join("master.key");
    if path.exists() {
        return Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned());
    }
    std::fs::create_dir_all(&db.data_dir).with_context(|| format!("creating {}", db.data_dir.display()))?;
    let key = Sealer::generate_key();
    write_private(&path, &key)?;
    tracing::warn!(path = %path.display(), "generated a new master key; back it up: provider credentials cannot be read without it");
    Ok(key)
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

/// Creates the data directory for an SQLite URL under it.
pub fn prepare_data_dir(db: &DbArgs) -> anyhow::Result<()> {
    if db.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&db.data_dir)
            .with_context(|| format!("creating {}", db.data_dir.display()))?;
    }
    Ok(())
}
