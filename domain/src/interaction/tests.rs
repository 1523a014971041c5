//! Given/when/then tests for every Interaction rule and rejection.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::{DispositionCode, MessageText};

type Given = TestFramework<Interaction>;

fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date") + Duration::hours(hours)
}

struct Fixture {
    account_id: AccountId,
    queue_id: QueueId,
    agent: AgentId,
    customer: PhoneNumber,
}

impl Fixture {
    fn new() -> Self {
        Self {
            account_id: AccountId::new(),
            queue_id: QueueId::new(),
            agent: AgentId::new(),
            customer: PhoneNumber::parse("+15551234567").expect("valid"),
        }
    }

    fn receive(&self, wamid: &str, message_id: MessageId, at: DateTime<Utc>) -> InteractionCommand {
        InteractionCommand::ReceiveCustomerMessage {
            account_id: self.account_id,
            customer: self.customer.clone(),
            customer_name: Some("Jane".into()),
            queue_id: Some(self.queue_id),
            message_id,
            provider_message_id: wamid.into(),
            content: InboundContent::Text { body: "hello".into() },
            sent_at: at,
            at,
        }
    }

    fn opened(&self, at: DateTime<Utc>) -> InteractionEvent {
        InteractionEvent::InteractionOpened {
            account_id: self.account_id,
            customer: self.customer.clone(),
            customer_name: Some("Jane".into()),
            queue_id: Some(self.queue_id),
            at,
        }
    }

    fn received(&self, wamid: &str, message_id: MessageId, at: DateTime<Utc>) -> InteractionEvent {
        InteractionEvent::CustomerMessageReceived {
            account_id: self.account_id,
            message_id,
            provider_message_id: wamid.into(),
            content: InboundContent::Text { body: "hello".into() },
            sent_at: at,
            at,
        }
    }

    /// Opened at t(0) with one message, assigned to the agent.
    fn assigned(&self) -> Vec<InteractionEvent> {
        vec![
            self.opened(t(0)),
            self.received("wamid.1", MessageId::new(), t(0)),
            InteractionEvent::AgentAssigned { agent_id: self.agent, at: t(0) },
        ]
    }

    fn with_sent(&self, message_id: MessageId) -> Vec<InteractionEvent> {
        let mut events = self.assigned();
        events.push(InteractionEvent::AgentMessageSent {
            account_id: self.account_id,
            message_id,
            agent_id: self.agent,
            to: self.customer.clone(),
            text: MessageText::parse("hi").expect("valid"),
            at: t(1),
        });
        events
    }

    fn with_accepted(&self, message_id: MessageId) -> Vec<InteractionEvent> {
        let mut events = self.with_sent(message_id);
        events.push(InteractionEvent::OutboundMessageAccepted {
            message_id,
            provider_message_id: "wamid.OUT".into(),
            at: t(1),
        });
        events
    }
}

#[test]
fn a_first_message_opens_the_interaction() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given_no_previous_events()
        .when(f.receive("wamid.1", m, t(0)))
        .then_expect_events(vec![f.opened(t(0)), f.received("wamid.1", m, t(0))]);
}

#[test]
fn a_message_within_24h_of_the_last_one_joins() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given(vec![f.opened(t(0)), f.received("wamid.1", MessageId::new(), t(0))])
        .when(f.receive("wamid.2", m, t(23)))
        .then_expect_events(vec![f.received("wamid.2", m, t(23))]);
}

#[test]
fn a_message_24h_or_more_after_the_last_one_does_not_join() {
    let f = Fixture::new();
    Given::with(())
        .given(vec![f.opened(t(0)), f.received("wamid.1", MessageId::new(), t(0))])
        .when(f.receive("wamid.2", MessageId::new(), t(24)))
        .then_expect_error(InteractionError::NotJoinable);
}

#[test]
fn the_window_counts_from_the_last_customer_message_not_the_first() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given(vec![
            f.opened(t(0)),
            f.received("wamid.1", MessageId::new(), t(0)),
            f.received("wamid.2", MessageId::new(), t(20)),
        ])
        .when(f.receive("wamid.3", m, t(30)))
        .then_expect_events(vec![f.received("wamid.3", m, t(30))]);
}

#[test]
fn a_closed_interaction_is_never_reopened() {
    let f = Fixture::new();
    let mut events = f.assigned();
    events.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    Given::with(())
        .given(events)
        .when(f.receive("wamid.2", MessageId::new(), t(1)))
        .then_expect_error(InteractionError::NotJoinable);
}

#[test]
fn a_redelivered_message_records_nothing_even_after_close() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(f.receive("wamid.1", MessageId::new(), t(1)))
        .then_expect_events(vec![]);
    let mut closed = f.assigned();
    closed.push(InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: t(1) });
    Given::with(())
        .given(closed)
        .when(f.receive("wamid.1", MessageId::new(), t(2)))
        .then_expect_events(vec![]);
}

#[test]
fn assigning_is_idempotent_for_the_same_agent_and_refused_for_another() {
    let f = Fixture::new();
    Given::with(())
        .given(vec![f.opened(t(0))])
        .when(InteractionCommand::AssignAgent { agent_id: f.agent, at: t(0) })
        .then_expect_events(vec![InteractionEvent::AgentAssigned { agent_id: f.agent, at: t(0) }]);
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::AssignAgent { agent_id: f.agent, at: t(0) })
        .then_expect_events(vec![]);
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::AssignAgent { agent_id: AgentId::new(), at: t(0) })
        .then_expect_error(InteractionError::AssignedToAnotherAgent);
}

#[test]
fn assigning_a_missing_or_closed_interaction_is_refused() {
    let f = Fixture::new();
    Given::with(())
        .given_no_previous_events()
        .when(InteractionCommand::AssignAgent { agent_id: f.agent, at: t(0) })
        .then_expect_error(InteractionError::NotFound);
    Given::with(())
        .given(vec![f.opened(t(0)), InteractionEvent::InteractionClosed { by: Closer::System, at: t(0) }])
        .when(InteractionCommand::AssignAgent { agent_id: f.agent, at: t(0) })
        .then_expect_error(InteractionError::Closed);
}

fn send(agent_id: AgentId, message_id: MessageId, at: DateTime<Utc>) -> InteractionCommand {
    InteractionCommand::SendText { message_id, agent_id, text: MessageText::parse("hi").expect("valid"), at }
}

#[test]
fn the_assigned_agent_sends_a_text() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given(f.assigned())
        .when(send(f.agent, m, t(1)))
        .then_expect_events(f.with_sent(m).split_off(3));
}

#[test]
fn another_agent_cannot_send_and_nobody_sends_on_an_unassigned_interaction() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(send(AgentId::new(), MessageId::new(), t(1)))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(vec![f.opened(t(0)), f.received("wamid.1", MessageId::new(), t(0))])
        .when(send(f.agent, MessageId::new(), t(1)))
        .then_expect_error(InteractionError::NotAssignedToAgent);
}

#[test]
fn a_text_outside_the_24h_window_is_refused() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(send(f.agent, MessageId::new(), t(24)))
        .then_expect_error(InteractionError::WindowClosed);
}

#[test]
fn a_retried_send_with_the_same_id_records_nothing() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(()).given(f.with_sent(m)).when(send(f.agent, m, t(1))).then_expect_events(vec![]);
}

#[test]
fn sending_on_a_closed_interaction_is_refused() {
    let f = Fixture::new();
    let mut events = f.assigned();
    events.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    Given::with(())
        .given(events)
        .when(send(f.agent, MessageId::new(), t(1)))
        .then_expect_error(InteractionError::Closed);
}

#[test]
fn provider_acceptance_is_recorded_once() {
    let f = Fixture::new();
    let m = MessageId::new();
    let accept = InteractionCommand::RecordOutboundAccepted {
        message_id: m,
        provider_message_id: "wamid.OUT".into(),
        at: t(1),
    };
    Given::with(())
        .given(f.with_sent(m))
        .when(accept.clone())
        .then_expect_events(f.with_accepted(m).split_off(4));
    Given::with(()).given(f.with_accepted(m)).when(accept).then_expect_events(vec![]);
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::RecordOutboundAccepted {
            message_id: MessageId::new(),
            provider_message_id: "x".into(),
            at: t(1),
        })
        .then_expect_error(InteractionError::UnknownMessage);
}

#[test]
fn a_permanent_send_failure_is_recorded() {
    let f = Fixture::new();
    let m = MessageId::new();
    let failure = ProviderFailure { code: "131047".into(), reason: "Re-engagement message".into() };
    Given::with(())
        .given(f.with_sent(m))
        .when(InteractionCommand::RecordOutboundFailed { message_id: m, failure: failure.clone(), at: t(1) })
        .then_expect_events(vec![InteractionEvent::OutboundMessageFailed {
            message_id: m,
            failure,
            at: t(1),
        }]);
}

fn status(s: DeliveryStatus) -> InteractionCommand {
    InteractionCommand::RecordDeliveryStatus {
        provider_message_id: "wamid.OUT".into(),
        status: s,
        failure: None,
        at: t(2),
    }
}

fn changed(m: MessageId, s: DeliveryStatus) -> InteractionEvent {
    InteractionEvent::OutboundStatusChanged { message_id: m, status: s, failure: None, at: t(2) }
}

#[test]
fn statuses_move_forward_only() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given(f.with_accepted(m))
        .when(status(DeliveryStatus::Delivered))
        .then_expect_events(vec![changed(m, DeliveryStatus::Delivered)]);
    let mut read = f.with_accepted(m);
    read.push(changed(m, DeliveryStatus::Read));
    Given::with(()).given(read.clone()).when(status(DeliveryStatus::Delivered)).then_expect_events(vec![]);
    Given::with(()).given(read.clone()).when(status(DeliveryStatus::Sent)).then_expect_events(vec![]);
    Given::with(()).given(read).when(status(DeliveryStatus::Read)).then_expect_events(vec![]);
}

#[test]
fn a_late_failure_is_still_recorded_once() {
    let f = Fixture::new();
    let m = MessageId::new();
    let mut delivered = f.with_accepted(m);
    delivered.push(changed(m, DeliveryStatus::Delivered));
    Given::with(())
        .given(delivered.clone())
        .when(status(DeliveryStatus::Failed))
        .then_expect_events(vec![changed(m, DeliveryStatus::Failed)]);
    delivered.push(changed(m, DeliveryStatus::Failed));
    Given::with(()).given(delivered.clone()).when(status(DeliveryStatus::Failed)).then_expect_events(vec![]);
    Given::with(()).given(delivered).when(status(DeliveryStatus::Read)).then_expect_events(vec![]);
}

#[test]
fn a_status_for_an_unknown_provider_id_is_refused() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(status(DeliveryStatus::Read))
        .then_expect_error(InteractionError::UnknownMessage);
}

#[test]
fn only_the_assigned_agent_closes_but_a_supervisor_may() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::Close { by: Closer::Agent(AgentId::new()), at: t(1) })
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::Close { by: Closer::Supervisor, at: t(1) })
        .then_expect_events(vec![InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: t(1) }]);
}

#[test]
fn closing_twice_is_refused() {
    let f = Fixture::new();
    let mut events = f.assigned();
    events.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    Given::with(())
        .given(events)
        .when(InteractionCommand::Close { by: Closer::Agent(f.agent), at: t(1) })
        .then_expect_error(InteractionError::Closed);
}

fn dispose(agent_id: AgentId) -> InteractionCommand {
    InteractionCommand::Dispose {
        agent_id,
        disposition: DispositionCode::parse("resolved").expect("valid"),
        at: t(2),
    }
}

#[test]
fn disposing_needs_a_closed_interaction_and_happens_once() {
    let f = Fixture::new();
    Given::with(()).given(f.assigned()).when(dispose(f.agent)).then_expect_error(InteractionError::NotClosed);
    Given::with(())
        .given_no_previous_events()
        .when(dispose(f.agent))
        .then_expect_error(InteractionError::NotFound);
    let mut closed = f.assigned();
    closed.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    let disposed = InteractionEvent::InteractionDisposed {
        agent_id: f.agent,
        disposition: DispositionCode::parse("resolved").expect("valid"),
        at: t(2),
    };
    Given::with(()).given(closed.clone()).when(dispose(f.agent)).then_expect_events(vec![disposed.clone()]);
    Given::with(())
        .given(closed.clone())
        .when(dispose(AgentId::new()))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    closed.push(disposed);
    Given::with(()).given(closed).when(dispose(f.agent)).then_expect_error(InteractionError::AlreadyDisposed);
}

// -- media and templates -------------------------------------------------------------------

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn photo() -> OutboundMedia {
    let blob = MediaBlob::new(SHA, 1234, "image/jpeg").expect("valid");
    OutboundMedia::new("image", blob, Some("your invoice".into()), None).expect("valid")
}

fn template() -> TemplateMessage {
    TemplateMessage::new("order_update", "en_US", vec!["Jane".into()]).expect("valid")
}

fn media_content() -> InboundContent {
    InboundContent::Media {
        kind: "image".into(),
        source: "meta:1234".into(),
        content_type: Some("image/jpeg".into()),
        caption: None,
        filename: None,
    }
}

impl Fixture {
    /// Assigned, with a customer image (message `m`) received at t(0).
    fn with_inbound_media(&self, m: MessageId) -> Vec<InteractionEvent> {
        let mut events = self.assigned();
        events.push(InteractionEvent::CustomerMessageReceived {
            account_id: self.account_id,
            message_id: m,
            provider_message_id: "wamid.IMG".into(),
            content: media_content(),
            sent_at: t(0),
            at: t(0),
        });
        events
    }
}

#[test]
fn the_assigned_agent_sends_media_inside_the_window_only() {
    let f = Fixture::new();
    let m = MessageId::new();
    let cmd = |at| InteractionCommand::SendMedia { message_id: m, agent_id: f.agent, media: photo(), at };
    Given::with(()).given(f.assigned()).when(cmd(t(1))).then_expect_events(vec![
        InteractionEvent::AgentMediaSent {
            account_id: f.account_id,
            message_id: m,
            agent_id: f.agent,
            to: f.customer.clone(),
            media: photo(),
            at: t(1),
        },
    ]);
    Given::with(()).given(f.assigned()).when(cmd(t(24))).then_expect_error(InteractionError::WindowClosed);
    let other =
        InteractionCommand::SendMedia { message_id: m, agent_id: AgentId::new(), media: photo(), at: t(1) };
    Given::with(()).given(f.assigned()).when(other).then_expect_error(InteractionError::NotAssignedToAgent);
}

#[test]
fn a_template_may_be_sent_outside_the_window_but_not_on_a_closed_interaction() {
    let f = Fixture::new();
    let m = MessageId::new();
    let cmd =
        |at| InteractionCommand::SendTemplate { message_id: m, agent_id: f.agent, template: template(), at };
    let sent = InteractionEvent::AgentTemplateSent {
        account_id: f.account_id,
        message_id: m,
        agent_id: f.agent,
        to: f.customer.clone(),
        template: template(),
        at: t(30),
    };
    Given::with(()).given(f.assigned()).when(cmd(t(30))).then_expect_events(vec![sent.clone()]);
    let mut with_sent = f.assigned();
    with_sent.push(sent);
    Given::with(()).given(with_sent).when(cmd(t(31))).then_expect_events(vec![]);
    let mut closed = f.assigned();
    closed.push(InteractionEvent::InteractionClosed { by: Closer::System, at: t(2) });
    Given::with(()).given(closed).when(cmd(t(3))).then_expect_error(InteractionError::Closed);
}

#[test]
fn a_downloaded_media_is_recorded_once() {
    let f = Fixture::new();
    let m = MessageId::new();
    let blob = MediaBlob::new(SHA, 10, "image/jpeg").expect("valid");
    let record = |outcome| InteractionCommand::RecordInboundMedia { message_id: m, outcome, at: t(0) };
    let stored = InteractionEvent::InboundMediaStored { message_id: m, blob: blob.clone(), at: t(0) };
    Given::with(())
        .given(f.with_inbound_media(m))
        .when(record(Ok(blob.clone())))
        .then_expect_events(vec![stored.clone()]);
    let mut done = f.with_inbound_media(m);
    done.push(stored);
    Given::with(()).given(done).when(record(Err(("x".into(), "y".into())))).then_expect_events(vec![]);
    Given::with(())
        .given(f.with_inbound_media(m))
        .when(record(Err(("too_large".into(), "over 16 MiB".into()))))
        .then_expect_events(vec![InteractionEvent::InboundMediaUnavailable {
            message_id: m,
            code: "too_large".into(),
            reason: "over 16 MiB".into(),
            at: t(0),
        }]);
}

#[test]
fn recording_media_for_a_text_or_a_missing_interaction_is_refused() {
    let f = Fixture::new();
    let blob = MediaBlob::new(SHA, 10, "image/jpeg").expect("valid");
    let record =
        |m| InteractionCommand::RecordInboundMedia { message_id: m, outcome: Ok(blob.clone()), at: t(0) };
    Given::with(())
        .given(f.assigned())
        .when(record(MessageId::new()))
        .then_expect_error(InteractionError::UnknownMedia);
    Given::with(())
        .given_no_previous_events()
        .when(record(MessageId::new()))
        .then_expect_error(InteractionError::NotFound);
}
