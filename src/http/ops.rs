//! Operations endpoints: health and Prometheus metrics (unauthenticated, as scrapers and
//! load balancers expect; they expose no data).

use actix_web::{HttpResponse, web};

use super::AppState;

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/metrics", web::get().to(metrics));
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "healthy"),
    (status = 503, description = "the database is unreachable")), tag = "ops")]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match sqlx::query("SELECT 1").execute(&state.core.db.any).await {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "database unreachable"}))
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus metrics")), tag = "ops")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let core = &state.core;
    let live = (core.accounts.live()
        + core.agents.live()
        + core.queues.live()
        + core.interactions.live()
        + core.contacts.live()) as f64;
    let body = state.metrics.render(&[
        ("switchboard_live_actors", "Aggregate actors in memory", live),
        ("switchboard_websocket_sessions", "Open agent websocket sessions", state.hub.session_count() as f64),
    ]);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}
