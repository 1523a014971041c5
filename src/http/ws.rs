//! The agents' websocket: `GET /ws` with the agent's bearer token (header, or
//! `?access_token=` from browsers). Frames are JSON objects with a `type`: `offer`,
//! `offer_closed`, `message`, `message_status`, `interaction` (see `docs/api.md`).

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, rt, web};
use actix_ws::Message;
use futures_util::StreamExt;

use super::{ApiError, AppState, Auth};

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
    });
    Ok(response)
}
