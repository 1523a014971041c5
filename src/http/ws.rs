//! The websockets. Agents: `GET /ws` with the agent's bearer token (header, or
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
//!
//! Supervisors and admins: `GET /ws/supervisor` (a separate path, so an agent's socket and
//! its presence rules stay as they are; agents get 403). On connect a `realtime` frame (the
//! `GET /api/realtime` snapshot), then one each time the figures change. Client messages:
//! `{"type":"spy","interaction_id"}` answers `spy_started` with the thread so far (messages
//! and notes, from the read models once they caught up with the log) and then copies every
//! frame about that interaction (message, message_status, media, interaction, note, offer,
//! offer_closed) while it lasts; `{"type":"unspy","interaction_id"}` answers `spy_stopped`;
//! `{"type":"realtime"}` asks for a fresh snapshot. Spying records nothing and sends the
//! agent nothing: it only reads. A frame may be in both the thread and the first live frames
//! (clients keep one per `message_id`/`note_id`). A bad message answers an `error` frame
//! with a `code` (`invalid_request`, `interaction_not_found`, `not_spying`) and the socket
//! stays open.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, rt, web};
use actix_ws::Message;
use futures_util::StreamExt;
use switchboard_domain::AgentId;
use switchboard_domain::agent::AgentCommand;
use tokio::sync::mpsc;

use serde::Deserialize;
use serde_json::json;
use switchboard_domain::InteractionId;
use switchboard_projections::log;

use super::{ApiError, AppState, Auth};
use crate::auth::Role;
use crate::core::{Cause, Core};
use crate::services::realtime;
use crate::workers::feed::{Hub, SupervisorSession, realtime_frame};

/// How often the server pings.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// A client silent for this long is disconnected.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect)).route("/ws/supervisor", web::get().to(supervise));
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
        // Agents' clients only listen: their text messages are ignored.
        let reason = pump(&mut session, &mut stream, &mut frames, |_| async { None }).await;
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

/// Opens a supervisor's live feed: realtime figures, and spying on interactions.
#[utoipa::path(get, path = "/ws/supervisor", responses((status = 101, description = "switching to the websocket protocol"),
    (status = 401, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)),
    security(("bearer" = [])), tag = "supervisor")]
pub async fn supervise(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require(&[Role::Admin, Role::Supervisor])?;
    let (response, mut session, mut stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let (core, hub) = (state.core.clone(), state.hub.clone());
    let (me, mut frames) = hub.connect_supervisor();
    rt::spawn(async move {
        let reason = if session.text(realtime_now(&core).await).await.is_err() {
            None
        } else {
            pump(&mut session, &mut stream, &mut frames, |text| {
                let (core, hub) = (core.clone(), hub.clone());
                async move { Some(answer(&core, &hub, me, &text).await) }
            })
            .await
        };
        hub.disconnect_supervisor(me);
        let _ = session.close(reason).await;
    });
    Ok(response)
}

/// What a supervisor's socket may ask.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum SupervisorRequest {
    Spy { interaction_id: String },
    Unspy { interaction_id: String },
    Realtime,
}

/// Runs an open socket until it ends and returns the close reason the client gave: forwards
/// `frames`, answers pings, pings every [`HEARTBEAT_INTERVAL`] and gives up on a client silent
/// for [`CLIENT_TIMEOUT`]. A client's text goes to `on_text`; its reply is sent before any
/// frame queued meanwhile (a spy's `spy_started` precedes the live frames it announces).
async fn pump<F, Fut>(
    session: &mut actix_ws::Session,
    stream: &mut actix_ws::MessageStream,
    frames: &mut mpsc::UnboundedReceiver<String>,
    mut on_text: F,
) -> Option<actix_ws::CloseReason>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(text) => if session.text(text).await.is_err() { return None },
                None => return None,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    if let Some(reply) = on_text(text.to_string()).await
                        && session.text(reply).await.is_err()
                    {
                        return None;
                    }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() { return None }
                }
                Some(Ok(Message::Pong(_) | Message::Binary(_))) => last_heard = Instant::now(),
                Some(Ok(Message::Close(reason))) => return reason,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > CLIENT_TIMEOUT { return None }
                if session.ping(b"").await.is_err() { return None }
            }
        }
    }
}

fn error_frame(code: &str, message: impl Into<String>) -> String {
    json!({"type": "error", "code": code, "message": message.into()}).to_string()
}

async fn realtime_now(core: &Core) -> String {
    match realtime::snapshot(core, None).await {
        Ok(snapshot) => realtime_frame(&snapshot),
        Err(e) => {
            tracing::error!(error = %e, "realtime figures not computed");
            error_frame("internal", "realtime figures unavailable")
        }
    }
}

/// Answers one client message with one frame.
async fn answer(core: &Core, hub: &Hub, me: SupervisorSession, text: &str) -> String {
    let request = match serde_json::from_str::<SupervisorRequest>(text) {
        Ok(request) => request,
        Err(e) => return error_frame("invalid_request", e.to_string()),
    };
    let not_found = |raw: &str| error_frame("interaction_not_found", format!("no interaction `{raw}`"));
    match request {
        SupervisorRequest::Realtime => realtime_now(core).await,
        SupervisorRequest::Unspy { interaction_id: raw } => match raw.parse::<InteractionId>() {
            Ok(id) if hub.unspy(me, id) => json!({"type": "spy_stopped", "interaction_id": id}).to_string(),
            Ok(_) => error_frame("not_spying", format!("not spying on `{raw}`")),
            Err(_) => not_found(&raw),
        },
        SupervisorRequest::Spy { interaction_id: raw } => {
            let Ok(id) = raw.parse::<InteractionId>() else { return not_found(&raw) };
            // Following first, then reading: every event is either in the thread or in a
            // later frame (or both), never in neither.
            hub.spy(me, id);
            caught_up(core).await;
            match crate::http::notes::thread(&core.db.any, id).await {
                Ok(Some((account_id, messages, notes))) => {
                    json!({"type": "spy_started", "interaction_id": id,
                    "account_id": account_id, "messages": messages, "notes": notes})
                    .to_string()
                }
                Ok(None) => {
                    hub.unspy(me, id);
                    not_found(&raw)
                }
                Err(e) => {
                    hub.unspy(me, id);
                    tracing::error!(error = %e, "spy thread not read");
                    error_frame("internal", "the thread could not be read")
                }
            }
        }
    }
}

/// Waits (up to 2 s) until the read models have applied the log as it is now, so a thread
/// read from them holds every event the feed already passed.
async fn caught_up(core: &Core) {
    let head = match core.db.any.acquire().await {
        Ok(mut conn) => match log::head(&mut conn, core.db.backend).await {
            Ok(head) => head,
            Err(_) => return,
        },
        Err(_) => return,
    };
    for _ in 0..80 {
        match crate::workers::checkpoint::load(
            &core.db.any,
            core.db.backend,
            switchboard_projections::READ_MODELS,
        )
        .await
        {
            Ok(at) if !at.precedes(&head) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(_) => return,
        }
    }
}
