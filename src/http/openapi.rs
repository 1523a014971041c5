//! The OpenAPI description, generated from the handlers' annotations, served at
//! `/openapi.json`, and the interactive docs at `/docs/` (Swagger UI compiled into the
//! binary: it works offline and calls no validator).

use actix_web::web;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    accounts, admin, agent, audit, catalog, directory, erasure, errors, export, media, notes, notify, ops,
    reads, realtime, search, webhooks, ws,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "Self-hosted WhatsApp contact-center channel"),
    paths(
        admin::create_account, admin::get_account, admin::add_account_agent, admin::set_routing,
        admin::set_recontact_template, admin::set_routing_plan, admin::get_routing_plan,
        admin::set_channel_rules, admin::get_channel_rules,
        admin::create_queue, admin::configure_queue, admin::add_queue_agent, admin::remove_queue_agent,
        admin::create_agent, admin::set_capacity, admin::create_token,
        agent::log_in, agent::ready, agent::pause, agent::log_out, agent::accept, agent::reject,
        agent::send_text, agent::transfer, agent::add_tags, agent::wrap_up, agent::close, agent::dispose, media::send_media, media::send_template, media::list_templates,
        reads::get_interaction, reads::interaction_events, reads::message_media,
        reads::agent_board, reads::queue_board,
        webhooks::receive, webhooks::handshake, ws::connect, ws::supervise, ops::healthz, ops::metrics,
    ),
    components(schemas(errors::ErrorBody, errors::ErrorDetail)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The whole description: the core paths above plus each area module's own `ApiDoc`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(accounts::ApiDoc::openapi());
    doc.merge(directory::ApiDoc::openapi());
    doc.merge(catalog::ApiDoc::openapi());
    doc.merge(erasure::ApiDoc::openapi());
    doc.merge(notify::ApiDoc::openapi());
    doc.merge(export::ApiDoc::openapi());
    doc.merge(search::ApiDoc::openapi());
    doc.merge(audit::ApiDoc::openapi());
    doc.merge(notes::ApiDoc::openapi());
    doc.merge(realtime::ApiDoc::openapi());
    doc
}

/// Routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        SwaggerUi::new("/docs/{_:.*}")
            .url("/openapi.json", document())
            .config(Config::from("/openapi.json").validator_url("none")),
    );
}
