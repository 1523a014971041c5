//! Durability: offers time out through durable timers (time moved by the clock, not by
//! sleeping), and a restart loses no committed event and no pending timer.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn offer_timeout(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    let (second_id, second_token) = app.create_agent("Ana").await;
    app.enrol(&s.account_id, &s.queue_id, &second_id).await;
    app.agent_ready(&s.agent_token).await;
    app.agent_ready(&second_token).await;
    let mut ws1 = app.connect_ws(&s.agent_token).await;
    let mut ws2 = app.connect_ws(&second_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    let offer = ws1.next_of("offer").await;
    let interaction_id = offer["interaction_id"].as_str().expect("id").to_owned();

    // Nine seconds in, nothing happens.
    app.core.clock.advance(Duration::from_secs(9));
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferTimedOut")).await, 0);

    // Past the deadline the timer fires: the offer lapses and goes to the next agent.
    app.core.clock.advance(Duration::from_secs(2));
    let closed = ws1.next_of("offer_closed").await;
    assert_eq!(closed["reason"], "timed_out");
    let paused = ws1.next_of("presence").await;
    assert_eq!(
        (paused["presence"].as_str(), paused["reason"].as_str()),
        (Some("paused"), Some("missed offer"))
    );
    let offer2 = ws2.next_of("offer").await;
    assert_eq!(offer2["interaction_id"], interaction_id.as_str());
    assert_eq!(offer2["attempt"], 2);
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferTimedOut")).await, 1);
    // The agent who let it lapse is paused ("missed offer") and offered nothing more ...
    let queues = app.get_json(&app.admin_token, "/api/queues/status").await;
    assert_eq!(queues[0]["available_agents"], 1);
    assert_eq!(queues[0]["timed_out_total"], 1);
    let agents = app.get_json(&app.admin_token, "/api/agents/status").await;
    let sam = agents.as_array().expect("array").iter().find(|a| a["name"] == "Sam").expect("Sam").clone();
    assert_eq!((sam["presence"].as_str(), sam["reason"].as_str()), (Some("paused"), Some("missed offer")));
    // ... until they say they are ready again.
    assert_eq!(app.post(&s.agent_token, "/api/me/ready", serde_json::json!({})).await.status(), 204);
    app.eventually("/api/queues/status", |v| v[0]["available_agents"] == 2).await;
    app.stop().await;
}

#[actix_web::test]
async fn an_unanswered_offer_times_out_and_goes_to_the_next_agent_sqlite() {
    offer_timeout(Backend::Sqlite).await;
}

#[actix_web::test]
async fn an_unanswered_offer_times_out_and_goes_to_the_next_agent_postgres() {
    offer_timeout(Backend::Postgres).await;
}

async fn restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.setup(10).await;
    app.agent_ready(&s.agent_token).await;
    assert_eq!(app.webhook(&s.account_id, &fixture("meta_inbound_text.json")).await.status(), 200);
    app.settle().await;
    let committed = app.count_events(None).await;
    let pending: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM timers WHERE status = 'scheduled'")
        .fetch_one(&app.core.db.any)
        .await
        .expect("timers");
    assert_eq!(pending.0, 1, "the offer's timer is scheduled");
    let admin_token = app.admin_token.clone();
    let (place, graph) = app.stop().await;

    // A new server on the same data: every event is there, and the pending timer fires.
    let app = spawn_on(place, graph, settings_tweak_none).await;
    assert!(app.count_events(None).await >= committed);
    let list = app.get_json(&admin_token, "/api/interactions").await;
    assert_eq!(list[0]["status"], "offered");
    app.core.clock.advance(Duration::from_secs(11));
    app.eventually("/api/queues/status", |v| v[0]["timed_out_total"] == 1).await;
    app.settle().await;
    assert_eq!(app.count_events(Some("OfferTimedOut")).await, 1, "fired exactly once");
    // The worker marks the row fired after the command's event is committed, so the
    // projection may have marked it done first: wait for the worker's word.
    let mut fired = (0_i64,);
    for _ in 0..200 {
        fired = sqlx::query_as("SELECT COUNT(*) FROM timers WHERE status = 'fired'")
            .fetch_one(&app.core.db.any)
            .await
            .expect("timers");
        if fired.0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(fired.0, 1);
    // The restarted server keeps serving the conversation.
    assert_eq!(app.post(&s.agent_token, "/api/me/ready", json!({})).await.status(), 204);
    app.stop().await;
}

#[actix_web::test]
async fn a_restart_loses_no_committed_event_and_no_pending_timer_sqlite() {
    restart(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_restart_loses_no_committed_event_and_no_pending_timer_postgres() {
    restart(Backend::Postgres).await;
}
