//! The agents' websocket: `GET /ws` with the agent's bearer token (header, or
//! `?access_token=` from browsers). Frames are JSON objects with a `type`: `offer` (with its
//! rendered `notification: {text, sound, shake}`), `offer_closed`, `message`,
//! `message_status`, `media`, `interaction`, `presence`, `account_added` and
//! `account_removed` (see `docs/api.md`). Frames about an interaction reach an agent only
//! while they are a member of its account: removal cuts them off at once (`workers::feed`).
//!
//! The socket is also how routing knows the agent is there: opening it records
//! `Connect{connection_id}` (a fresh id per socket); when it ends, however it ends,
//! `Disconnect{connection_id, reconnect_by: now + grace}`. Offers keep coming during the grace
//! (a page reload must not cost the agent their turn); after it, the grace timer makes them
//! unreachable until they reconnect.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, rt, web};
use actix_ws::Message;
use futures_util::StreamExt;
use switchboard_domain::AgentId;
use switchboard_domain::agent::AgentCommand;

use super::{ApiError, AppState, Auth};
use crate::core::{Cause, Core};

/// How often the server pings.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// A client silent for this long is disconnected.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect));
}

/// Opens an agent's live feed.
#[utoipa::path(get, path = "/ws", responses((status = 101, description = "switching to the websocket protocol"),
    (status = 401, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "agent")]
pub async fn connect(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let agent_id = auth.agent()?;
    let (response, mut session, mut stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    // Recorded only once the upgrade is certain, so every Connect gets its Disconnect.
    let core = state.core.clone();
    let connection_id = uuid::Uuid::now_v7().to_string();
    let connect = AgentCommand::Connect { connection_id: connection_id.clone(), at: core.clock.now() };
    core.agents.execute(&agent_id.to_string(), connect, core.metadata(&auth.cause(), &connection_id)).await?;
    let connection = Connection { core, agent_id, connection_id, cause: auth.cause(), open: true };
    let mut frames = state.hub.connect(agent_id);
    rt::spawn(async move {
        let mut last_heard = Instant::now();
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let reason = loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(text) => if session.text(text).await.is_err() { break None },
                    None => break None,
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Ping(bytes))) => {
                        last_heard = Instant::now();
                        if session.pong(&bytes).await.is_err() { break None }
                    }
                    Some(Ok(Message::Pong(_) | Message::Text(_) | Message::Binary(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Close(reason))) => break reason,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break None,
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > CLIENT_TIMEOUT { break None }
                    if session.ping(b"").await.is_err() { break None }
                }
            }
        };
        let _ = session.close(reason).await;
        connection.close().await;
    });
    Ok(response)
}

/// An open socket as routing knows it. Dropped without [`Connection::close`] (the task was
/// cancelled, e.g. at shutdown), it still records the disconnect, in the background.
struct Connection {
    core: Core,
    agent_id: AgentId,
    connection_id: String,
    cause: Cause,
    open: bool,
}

impl Connection {
    async fn close(mut self) {
        self.open = false;
        self.disconnect().await;
    }

    fn disconnect(&self) -> impl Future<Output = ()> + Send + 'static {
        let core = self.core.clone();
        let (agent_id, connection_id, cause) =
            (self.agent_id, self.connection_id.clone(), self.cause.clone());
        async move {
            let at = core.clock.now();
            let reconnect_by = chrono::Duration::from_std(core.ws_grace)
                .ok()
                .and_then(|grace| at.checked_add_signed(grace))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let command = AgentCommand::Disconnect { connection_id: connection_id.clone(), reconnect_by, at };
            let meta = core.metadata(&cause, &connection_id);
            if let Err(e) = core.agents.execute(&agent_id.to_string(), command, meta).await {
                // The grace timer is never set: the agent stays reachable until their next
                // socket or a missed offer pauses them.
                tracing::warn!(%agent_id, connection_id, error = %e, "websocket disconnect not recorded");
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.open
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(self.disconnect());
        }
    }
}
