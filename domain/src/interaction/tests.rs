//! Given/when/then tests for every Interaction rule and rejection.

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::routing::{
    Condition, DateSlot, Day, Interval, MandatoryDisposition, OfferExplanation, PlanStep, TimeZoneName,
    WeeklySlot,
};
use crate::{DispositionCode, MessageText, NoteId, PauseReason};

type Given = TestFramework<Interaction>;

fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).single().expect("valid date") + Duration::hours(hours)
}

struct Fixture {
    account_id: AccountId,
    queue_id: QueueId,
    /// A second queue.
    queue_b: QueueId,
    agent: AgentId,
    /// A second agent.
    other: AgentId,
    customer: PhoneNumber,
    /// The seed automatic reply ids derive from.
    seed: Uuid,
    /// A contact list the customer is in.
    vip_list: ContactListId,
    /// The id of the message that opens a routed interaction.
    first_message: MessageId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            account_id: AccountId::new(),
            queue_id: QueueId::new(),
            queue_b: QueueId::new(),
            agent: AgentId::new(),
            other: AgentId::new(),
            customer: PhoneNumber::parse("+15551234567").expect("valid"),
            seed: Uuid::new_v4(),
            vip_list: ContactListId::new(),
            first_message: MessageId::new(),
        }
    }

    fn receive(&self, wamid: &str, message_id: MessageId, at: DateTime<Utc>) -> InteractionCommand {
        InteractionCommand::ReceiveCustomerMessage {
            account_id: self.account_id,
            customer: self.customer.clone(),
            customer_name: Some("Jane".into()),
            routing: None,
            screening: Screening::Admitted,
            seed: self.seed,
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
            queue_id: None,
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
        .when(InteractionCommand::Close { by: Closer::Agent(AgentId::new()), disposition: None, at: t(1) })
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::Close { by: Closer::Supervisor, disposition: None, at: t(1) })
        .then_expect_events(vec![InteractionEvent::InteractionClosed { by: Closer::Supervisor, at: t(1) }]);
}

#[test]
fn closing_twice_is_refused() {
    let f = Fixture::new();
    let mut events = f.assigned();
    events.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    Given::with(())
        .given(events)
        .when(InteractionCommand::Close { by: Closer::Agent(f.agent), disposition: None, at: t(1) })
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

// -- routing: the plan ----------------------------------------------------------------------

type E = InteractionEvent;
type C = InteractionCommand;

/// `n` seconds after t(0) (Monday 2026-01-05 10:00 UTC).
fn s(n: i64) -> DateTime<Utc> {
    t(0) + Duration::seconds(n)
}

fn step(action: StepAction) -> PlanStep {
    PlanStep { when: None, action }
}

fn gated(when: Interval, action: StepAction) -> PlanStep {
    PlanStep { when: Some(when), action }
}

fn plan(steps: Vec<PlanStep>) -> RoutingPlan {
    RoutingPlan { time_zone: TimeZoneName::default(), steps }
}

fn queue(queue_id: QueueId, timeout_secs: Option<u32>) -> StepAction {
    StepAction::Queue { queue_id, timeout_secs }
}

fn reply(text: &str) -> StepAction {
    StepAction::AutoReply { text: MessageText::parse(text).expect("valid") }
}

fn tags(names: &[&str]) -> BTreeSet<Tag> {
    names.iter().map(|n| Tag::parse(n).expect("valid")).collect()
}

fn code(s: &str) -> DispositionCode {
    DispositionCode::parse(s).expect("valid")
}

fn explanation(target: Target) -> OfferExplanation {
    OfferExplanation::new(target, None, vec![], "test".into())
}

fn set(target: Target, reason: TargetReason, seq: u32, until: Option<DateTime<Utc>>, at: DateTime<Utc>) -> E {
    E::RoutingTargetSet { target, reason, seq, until, at }
}

fn offer_made(agent_id: AgentId, attempt: u32, target_seq: u32, target: Target) -> E {
    E::OfferMade {
        agent_id,
        attempt,
        target_seq,
        expires_at: s(30),
        explanation: explanation(target),
        at: s(1),
    }
}

/// An offer made at `at` that lapses at `expires_at`.
fn offer_at(
    agent_id: AgentId,
    attempt: u32,
    target_seq: u32,
    target: Target,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> E {
    E::OfferMade { agent_id, attempt, target_seq, expires_at, explanation: explanation(target), at }
}

fn offer(agent_id: AgentId, attempt: u32, target_seq: u32, exclusive: bool, target: Target) -> C {
    C::Offer {
        agent_id,
        target_seq,
        attempt,
        expires_at: s(30),
        exclusive,
        explanation: explanation(target),
        at: s(1),
    }
}

fn withdrawn(agent_id: AgentId, attempt: u32, reason: WithdrawReason, at: DateTime<Utc>) -> E {
    E::OfferWithdrawn { agent_id, attempt, reason, at }
}

fn expire(seq: u32, at: DateTime<Utc>) -> C {
    C::ExpireTarget { seq, seed: Uuid::nil(), at }
}

impl Fixture {
    fn setup(&self, plan: RoutingPlan, rules: ChannelRules) -> RoutingSetup {
        RoutingSetup { plan, rules, contact_lists: [self.vip_list].into() }
    }

    /// The first message (saying `body`) of an interaction routed by `plan`.
    fn open_routed(&self, plan: RoutingPlan, body: &str, at: DateTime<Utc>) -> InteractionCommand {
        C::ReceiveCustomerMessage {
            account_id: self.account_id,
            customer: self.customer.clone(),
            customer_name: Some("Jane".into()),
            routing: Some(self.setup(plan, ChannelRules::default())),
            screening: Screening::Admitted,
            seed: self.seed,
            message_id: self.first_message,
            provider_message_id: "wamid.1".into(),
            content: InboundContent::Text { body: body.into() },
            sent_at: at,
            at,
        }
    }

    /// What opening with `open_routed` records before the plan's steps.
    fn routed_prefix(&self, plan: RoutingPlan, body: &str, at: DateTime<Utc>) -> Vec<E> {
        self.routed_prefix_with(plan, ChannelRules::default(), body, at)
    }

    fn routed_prefix_with(
        &self,
        plan: RoutingPlan,
        rules: ChannelRules,
        body: &str,
        at: DateTime<Utc>,
    ) -> Vec<E> {
        vec![
            E::InteractionOpened {
                account_id: self.account_id,
                customer: self.customer.clone(),
                customer_name: Some("Jane".into()),
                queue_id: None,
                at,
            },
            E::CustomerMessageReceived {
                account_id: self.account_id,
                message_id: self.first_message,
                provider_message_id: "wamid.1".into(),
                content: InboundContent::Text { body: body.into() },
                sent_at: at,
                at,
            },
            E::RoutingStarted { plan, rules, contact_lists: [self.vip_list].into(), at },
        ]
    }

    /// Opening with `plan` records the prefix and then `steps`.
    fn expect_run(&self, plan: RoutingPlan, body: &str, steps: Vec<E>) {
        let mut expected = self.routed_prefix(plan.clone(), body, t(0));
        expected.extend(steps);
        Given::with(())
            .given_no_previous_events()
            .when(self.open_routed(plan, body, t(0)))
            .then_expect_events(expected);
    }

    fn queue_a(&self) -> Target {
        Target::Queue(self.queue_id)
    }

    fn queue_b(&self) -> Target {
        Target::Queue(self.queue_b)
    }

    /// The two-queue plan: queue A for 60 s, then queue B without deadline.
    fn two_queues(&self) -> RoutingPlan {
        plan(vec![step(queue(self.queue_id, Some(60))), step(queue(self.queue_b, None))])
    }

    /// Routed with `rules` by the two-queue plan, waiting in queue A (target 1, until s(60)).
    fn waiting_with(&self, rules: ChannelRules) -> Vec<E> {
        let mut events = self.routed_prefix_with(self.two_queues(), rules, "hello", t(0));
        events.push(set(self.queue_a(), TargetReason::Plan { step: 0 }, 1, Some(s(60)), t(0)));
        events
    }

    fn waiting(&self) -> Vec<E> {
        self.waiting_with(ChannelRules::default())
    }

    /// Waiting in queue A with a live offer to the agent (attempt 1).
    fn offered(&self) -> Vec<E> {
        let mut events = self.waiting();
        events.push(offer_made(self.agent, 1, 1, self.queue_a()));
        events
    }

    /// Routed with `rules`, taken from queue A by the agent at s(2).
    fn routed_assigned(&self, rules: ChannelRules) -> Vec<E> {
        let mut events = self.waiting_with(rules);
        events.extend([
            offer_made(self.agent, 1, 1, self.queue_a()),
            E::OfferAccepted { agent_id: self.agent, attempt: 1, at: s(2) },
            E::AgentAssigned { agent_id: self.agent, at: s(2) },
        ]);
        events
    }
}

#[test]
fn a_queue_step_with_a_timeout_waits_there_until_its_deadline() {
    let f = Fixture::new();
    f.expect_run(
        plan(vec![step(queue(f.queue_id, Some(60)))]),
        "hello",
        vec![set(f.queue_a(), TargetReason::Plan { step: 0 }, 1, Some(s(60)), t(0))],
    );
}

#[test]
fn a_queue_step_without_timeout_waits_there_for_ever() {
    let f = Fixture::new();
    f.expect_run(
        plan(vec![step(queue(f.queue_id, None)), step(reply("never sent"))]),
        "hello",
        vec![set(f.queue_a(), TargetReason::Plan { step: 0 }, 1, None, t(0))],
    );
}

#[test]
fn an_agent_step_waits_for_that_agent_until_its_timeout() {
    let f = Fixture::new();
    f.expect_run(
        plan(vec![step(StepAction::Agent { agent_id: f.agent, timeout_secs: 30 })]),
        "hello",
        vec![set(Target::Agent(f.agent), TargetReason::Plan { step: 0 }, 1, Some(s(30)), t(0))],
    );
}

#[test]
fn automatic_replies_get_ids_derived_from_the_seed_and_go_on() {
    let f = Fixture::new();
    let sent = |n: u32, text: &str, step: usize| E::AutoReplySent {
        account_id: f.account_id,
        message_id: MessageId::derived(f.seed, n),
        to: f.customer.clone(),
        text: MessageText::parse(text).expect("valid"),
        step,
        at: t(0),
    };
    f.expect_run(
        plan(vec![
            step(reply("Welcome")),
            step(reply("An agent will answer")),
            step(queue(f.queue_id, None)),
        ]),
        "hello",
        vec![
            sent(0, "Welcome", 0),
            sent(1, "An agent will answer", 1),
            set(f.queue_a(), TargetReason::Plan { step: 2 }, 1, None, t(0)),
        ],
    );
}

#[test]
fn an_automatic_reply_is_an_outbound_message_the_outbox_reports_on() {
    let f = Fixture::new();
    let mut events = f.routed_prefix(plan(vec![step(reply("Welcome"))]), "hello", t(0));
    let m = MessageId::derived(f.seed, 0);
    events.push(E::AutoReplySent {
        account_id: f.account_id,
        message_id: m,
        to: f.customer.clone(),
        text: MessageText::parse("Welcome").expect("valid"),
        step: 0,
        at: t(0),
    });
    Given::with(())
        .given(events)
        .when(C::RecordOutboundAccepted { message_id: m, provider_message_id: "wamid.AUTO".into(), at: s(1) })
        .then_expect_events(vec![E::OutboundMessageAccepted {
            message_id: m,
            provider_message_id: "wamid.AUTO".into(),
            at: s(1),
        }]);
}

#[test]
fn a_tags_step_records_only_tags_new_to_the_interaction() {
    let f = Fixture::new();
    f.expect_run(
        plan(vec![
            step(StepAction::SetTags { tags: tags(&["vip", "sales"]) }),
            step(StepAction::SetTags { tags: tags(&["vip", "urgent"]) }),
            step(StepAction::SetTags { tags: tags(&["sales"]) }),
            step(queue(f.queue_id, None)),
        ]),
        "hello",
        vec![
            E::TagsAdded { tags: tags(&["vip", "sales"]), by: None, at: t(0) },
            E::TagsAdded { tags: tags(&["urgent"]), by: None, at: t(0) },
            set(f.queue_a(), TargetReason::Plan { step: 3 }, 1, None, t(0)),
        ],
    );
}

#[test]
fn a_close_step_closes_and_disposes_and_stops_the_plan() {
    let f = Fixture::new();
    let p = plan(vec![
        step(StepAction::Close { disposition: code("after hours") }),
        step(queue(f.queue_id, None)),
    ]);
    f.expect_run(
        p.clone(),
        "hello",
        vec![E::InteractionClosedBySystem {
            reason: SystemClose::PlanStep { step: 0 },
            disposition: code("after hours"),
            at: t(0),
        }],
    );
    // Closed and disposed: nobody disposes it again and it takes no offers.
    let mut events = f.routed_prefix(p, "hello", t(0));
    events.push(E::InteractionClosedBySystem {
        reason: SystemClose::PlanStep { step: 0 },
        disposition: code("after hours"),
        at: t(0),
    });
    Given::with(()).given(events).when(dispose(f.agent)).then_expect_error(InteractionError::AlreadyDisposed);
}

/// Runs `[GoTo(condition) → step 2, queue A, queue B]` and checks where it went.
fn check_jump(f: &Fixture, condition: Condition, body: &str, taken: bool) {
    let p = plan(vec![
        step(StepAction::GoTo { condition, step: 2 }),
        step(queue(f.queue_id, None)),
        step(queue(f.queue_b, None)),
    ]);
    let (next, target) = if taken { (2, f.queue_b()) } else { (1, f.queue_a()) };
    f.expect_run(
        p,
        body,
        vec![
            E::RoutingJumpEvaluated { step: 0, taken, next, at: t(0) },
            set(target, TargetReason::Plan { step: next }, 1, None, t(0)),
        ],
    );
}

#[test]
fn a_contact_list_jump_is_taken_only_for_members() {
    let f = Fixture::new();
    check_jump(&f, Condition::InContactList { list_id: f.vip_list }, "hello", true);
    check_jump(&f, Condition::InContactList { list_id: ContactListId::new() }, "hello", false);
}

#[test]
fn a_text_jump_looks_for_the_text_ignoring_case() {
    let f = Fixture::new();
    check_jump(&f, Condition::TextContains { text: "invoice".into() }, "About my INVOICE, please", true);
    check_jump(&f, Condition::TextContains { text: "invoice".into() }, "hello", false);
}

fn office_hours() -> Interval {
    Interval {
        weekly: vec![WeeklySlot {
            days: [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri].into(),
            from: chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("valid"),
            to: chrono::NaiveTime::from_hms_opt(18, 0, 0).expect("valid"),
        }],
        ..Interval::default()
    }
}

#[test]
fn a_time_jump_is_taken_inside_its_interval() {
    let f = Fixture::new();
    // t(0) is Monday 10:00 UTC.
    check_jump(&f, Condition::Within { interval: office_hours() }, "hello", true);
    let mut holiday = office_hours();
    holiday.except = vec![t(0).date_naive()];
    check_jump(&f, Condition::Within { interval: holiday }, "hello", false);
}

/// Opens at `at` with `[gate → queue A, queue B]` in `zone`; `true` if the gated step ran.
fn gate_runs(gate: Interval, zone: &str, at: DateTime<Utc>) -> bool {
    let f = Fixture::new();
    let p = RoutingPlan {
        time_zone: TimeZoneName::parse(zone).expect("known zone"),
        steps: vec![gated(gate, queue(f.queue_id, None)), step(queue(f.queue_b, None))],
    };
    let events = Interaction::default().decide(f.open_routed(p.clone(), "hello", at)).expect("opens");
    let mut ran = f.routed_prefix(p.clone(), "hello", at);
    ran.push(set(f.queue_a(), TargetReason::Plan { step: 0 }, 1, None, at));
    let mut skipped = f.routed_prefix(p, "hello", at);
    skipped.push(E::RoutingStepSkipped { step: 0, at });
    skipped.push(set(f.queue_b(), TargetReason::Plan { step: 1 }, 1, None, at));
    if events == ran {
        true
    } else {
        assert_eq!(events, skipped, "the gated step either runs or is skipped");
        false
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("valid instant")
}

#[test]
fn a_gated_step_runs_inside_its_weekly_slot_and_is_skipped_outside() {
    assert!(gate_runs(office_hours(), "UTC", t(0)));
    assert!(!gate_runs(office_hours(), "UTC", t(8)), "18:00 is past the end");
    assert!(!gate_runs(office_hours(), "UTC", utc(2026, 1, 10, 10, 0)), "Saturday");
}

#[test]
fn a_gated_step_runs_on_a_dated_slot() {
    let new_years_eve = Interval {
        dates: vec![DateSlot {
            from: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("valid"),
            to: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("valid"),
            from_time: Some(chrono::NaiveTime::from_hms_opt(10, 0, 0).expect("valid")),
            to_time: Some(chrono::NaiveTime::from_hms_opt(14, 0, 0).expect("valid")),
        }],
        ..Interval::default()
    };
    assert!(gate_runs(new_years_eve.clone(), "UTC", utc(2026, 12, 31, 11, 0)));
    assert!(!gate_runs(new_years_eve.clone(), "UTC", utc(2026, 12, 31, 15, 0)));
    assert!(!gate_runs(new_years_eve, "UTC", utc(2026, 12, 30, 11, 0)));
}

#[test]
fn a_gated_step_is_skipped_on_an_exception_date() {
    let mut office = office_hours();
    office.except = vec![chrono::NaiveDate::from_ymd_opt(2026, 1, 6).expect("valid")];
    assert!(!gate_runs(office.clone(), "UTC", utc(2026, 1, 6, 10, 0)));
    assert!(gate_runs(office, "UTC", utc(2026, 1, 7, 10, 0)));
}

#[test]
fn a_gate_is_read_in_the_plans_time_zone_across_daylight_saving() {
    // 16:30 UTC is 17:30 in Rome in winter (open) but 18:30 in summer (closed).
    assert!(gate_runs(office_hours(), "Europe/Rome", utc(2026, 1, 5, 16, 30)));
    assert!(!gate_runs(office_hours(), "Europe/Rome", utc(2026, 6, 1, 16, 30)));
    // São Paulo is UTC-3: 11:30 UTC is 08:30 there.
    assert!(!gate_runs(office_hours(), "America/Sao_Paulo", utc(2026, 1, 5, 11, 30)));
    assert!(gate_runs(office_hours(), "America/Sao_Paulo", utc(2026, 1, 5, 12, 30)));
}

#[test]
fn a_gate_ending_at_midnight_runs_until_the_end_of_the_day() {
    let evening = Interval {
        weekly: vec![WeeklySlot {
            days: [Day::Mon].into(),
            from: chrono::NaiveTime::from_hms_opt(18, 0, 0).expect("valid"),
            to: chrono::NaiveTime::MIN,
        }],
        ..Interval::default()
    };
    assert!(gate_runs(evening.clone(), "UTC", utc(2026, 1, 5, 23, 59)));
    assert!(!gate_runs(evening, "UTC", utc(2026, 1, 6, 0, 0)));
}

#[test]
fn a_waiting_step_times_out_to_the_next_step_taking_back_its_offers() {
    let f = Fixture::new();
    Given::with(()).given(f.offered()).when(expire(1, s(60))).then_expect_events(vec![
        E::RoutingTargetExpired { seq: 1, at: s(60) },
        withdrawn(f.agent, 1, WithdrawReason::TargetChanged, s(60)),
        set(f.queue_b(), TargetReason::Plan { step: 1 }, 2, None, s(60)),
    ]);
}

#[test]
fn a_target_timer_that_is_early_stale_or_for_a_deadline_free_wait_does_nothing() {
    let f = Fixture::new();
    Given::with(()).given(f.waiting()).when(expire(1, s(59))).then_expect_events(vec![]);
    Given::with(()).given(f.waiting()).when(expire(2, s(60))).then_expect_events(vec![]);
    let mut moved_on = f.waiting();
    moved_on.push(E::RoutingTargetExpired { seq: 1, at: s(60) });
    moved_on.push(set(f.queue_b(), TargetReason::Plan { step: 1 }, 2, None, s(60)));
    Given::with(()).given(moved_on.clone()).when(expire(1, s(61))).then_expect_events(vec![]);
    Given::with(()).given(moved_on).when(expire(2, s(5000))).then_expect_events(vec![]);
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(expire(1, s(60)))
        .then_expect_events(vec![]);
    Given::with(())
        .given_no_previous_events()
        .when(expire(1, s(60)))
        .then_expect_error(InteractionError::NotFound);
}

#[test]
fn when_the_plan_ends_it_waits_in_the_last_queue_without_deadline() {
    let f = Fixture::new();
    let p = plan(vec![step(queue(f.queue_id, Some(60))), step(reply("Still looking for an agent"))]);
    let mut events = f.routed_prefix(p, "hello", t(0));
    events.push(set(f.queue_a(), TargetReason::Plan { step: 0 }, 1, Some(s(60)), t(0)));
    Given::with(())
        .given(events)
        .when(C::ExpireTarget { seq: 1, seed: f.seed, at: s(60) })
        .then_expect_events(vec![
            E::RoutingTargetExpired { seq: 1, at: s(60) },
            E::AutoReplySent {
                account_id: f.account_id,
                message_id: MessageId::derived(f.seed, 0),
                to: f.customer.clone(),
                text: MessageText::parse("Still looking for an agent").expect("valid"),
                step: 1,
                at: s(60),
            },
            E::RoutingPlanEnded { at: s(60) },
            set(f.queue_a(), TargetReason::PlanEnd, 2, None, s(60)),
        ]);
}

#[test]
fn a_plan_that_ends_without_visiting_a_queue_leaves_it_unrouted() {
    let f = Fixture::new();
    // Outside the hours: the queue is skipped, the tag set, and nothing waits.
    let p = plan(vec![
        gated(office_hours(), queue(f.queue_id, None)),
        step(StepAction::SetTags { tags: tags(&["missed"]) }),
    ]);
    let mut expected = f.routed_prefix(p.clone(), "hello", t(8));
    expected.extend([
        E::RoutingStepSkipped { step: 0, at: t(8) },
        E::TagsAdded { tags: tags(&["missed"]), by: None, at: t(8) },
        E::RoutingPlanEnded { at: t(8) },
    ]);
    Given::with(())
        .given_no_previous_events()
        .when(f.open_routed(p, "hello", t(8)))
        .then_expect_events(expected);
}

#[test]
fn a_jump_loop_stops_after_twice_the_steps_plus_two_and_ends_the_plan() {
    let f = Fixture::new();
    let p = plan(vec![
        step(StepAction::SetTags { tags: tags(&["looping"]) }),
        step(StepAction::GoTo { condition: Condition::TextContains { text: "hello".into() }, step: 0 }),
    ]);
    let jump = E::RoutingJumpEvaluated { step: 1, taken: true, next: 0, at: t(0) };
    // 6 steps: tags, jump, tags (nothing new), jump, tags, jump.
    f.expect_run(
        p,
        "hello",
        vec![
            E::TagsAdded { tags: tags(&["looping"]), by: None, at: t(0) },
            jump.clone(),
            jump.clone(),
            jump,
            E::RoutingPlanEnded { at: t(0) },
        ],
    );
}

#[test]
fn an_unrouted_interaction_opens_without_routing_events() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(())
        .given_no_previous_events()
        .when(f.receive("wamid.1", m, t(0)))
        .then_expect_events(vec![f.opened(t(0)), f.received("wamid.1", m, t(0))]);
}

// -- routing: offers --------------------------------------------------------------------------

#[test]
fn an_offer_for_the_current_target_is_made() {
    let f = Fixture::new();
    Given::with(())
        .given(f.waiting())
        .when(offer(f.agent, 1, 1, true, f.queue_a()))
        .then_expect_events(vec![offer_made(f.agent, 1, 1, f.queue_a())]);
}

#[test]
fn a_repeated_or_out_of_order_offer_decision_records_nothing() {
    let f = Fixture::new();
    // The same decision again: attempt 1 is taken.
    Given::with(())
        .given(f.offered())
        .when(offer(f.agent, 1, 1, true, f.queue_a()))
        .then_expect_events(vec![]);
    Given::with(())
        .given(f.offered())
        .when(offer(f.other, 1, 1, false, f.queue_a()))
        .then_expect_events(vec![]);
    // An attempt number that skips one.
    Given::with(())
        .given(f.waiting())
        .when(offer(f.agent, 2, 1, true, f.queue_a()))
        .then_expect_events(vec![]);
    // The agent already holds a live offer.
    Given::with(())
        .given(f.offered())
        .when(offer(f.agent, 2, 1, false, f.queue_a()))
        .then_expect_events(vec![]);
}

#[test]
fn an_exclusive_offer_is_refused_while_another_is_live_but_ring_all_offers_add_up() {
    let f = Fixture::new();
    Given::with(())
        .given(f.offered())
        .when(offer(f.other, 2, 1, true, f.queue_a()))
        .then_expect_events(vec![]);
    Given::with(())
        .given(f.offered())
        .when(offer(f.other, 2, 1, false, f.queue_a()))
        .then_expect_events(vec![offer_made(f.other, 2, 1, f.queue_a())]);
}

#[test]
fn an_offer_for_another_target_or_a_closed_or_taken_interaction_records_nothing() {
    let f = Fixture::new();
    Given::with(())
        .given(f.waiting())
        .when(offer(f.agent, 1, 2, true, f.queue_a()))
        .then_expect_events(vec![]);
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(offer(f.other, 2, 1, true, f.queue_a()))
        .then_expect_events(vec![]);
    let mut closed = f.waiting();
    closed.push(E::InteractionClosed { by: Closer::Supervisor, at: s(1) });
    Given::with(()).given(closed).when(offer(f.agent, 1, 1, true, f.queue_a())).then_expect_events(vec![]);
    Given::with(())
        .given_no_previous_events()
        .when(offer(f.agent, 1, 1, true, f.queue_a()))
        .then_expect_error(InteractionError::NotFound);
}

#[test]
fn an_agent_who_declined_the_target_is_not_offered_it_again() {
    let f = Fixture::new();
    let mut declined = f.offered();
    declined.push(E::OfferRejected { agent_id: f.agent, attempt: 1, at: s(2) });
    Given::with(())
        .given(declined.clone())
        .when(offer(f.agent, 2, 1, true, f.queue_a()))
        .then_expect_events(vec![]);
    // A new target forgets who declined.
    declined.push(E::RoutingTargetExpired { seq: 1, at: s(60) });
    declined.push(set(f.queue_b(), TargetReason::Plan { step: 1 }, 2, None, s(60)));
    Given::with(())
        .given(declined)
        .when(offer(f.agent, 2, 2, true, f.queue_b()))
        .then_expect_events(vec![offer_made(f.agent, 2, 2, f.queue_b())]);
}

fn accept(agent_id: AgentId, at: DateTime<Utc>) -> C {
    C::AcceptOffer { agent_id, at }
}

#[test]
fn accepting_assigns_and_takes_back_the_other_ring_all_offers() {
    let f = Fixture::new();
    let third = AgentId::new();
    let mut ring_all = f.offered();
    ring_all.push(offer_made(f.other, 2, 1, f.queue_a()));
    ring_all.push(offer_made(third, 3, 1, f.queue_a()));
    Given::with(()).given(ring_all).when(accept(f.other, s(5))).then_expect_events(vec![
        E::OfferAccepted { agent_id: f.other, attempt: 2, at: s(5) },
        withdrawn(f.agent, 1, WithdrawReason::TakenByAnother, s(5)),
        withdrawn(third, 3, WithdrawReason::TakenByAnother, s(5)),
        E::AgentAssigned { agent_id: f.other, at: s(5) },
    ]);
}

#[test]
fn an_accepted_interaction_belongs_to_the_agent_and_a_repeated_accept_records_nothing() {
    let f = Fixture::new();
    let assigned = f.routed_assigned(ChannelRules::default());
    Given::with(()).given(assigned.clone()).when(accept(f.agent, s(3))).then_expect_events(vec![]);
    let m = MessageId::new();
    Given::with(()).given(assigned.clone()).when(send(f.agent, m, s(3))).then_expect_events(vec![
        E::AgentMessageSent {
            account_id: f.account_id,
            message_id: m,
            agent_id: f.agent,
            to: f.customer.clone(),
            text: MessageText::parse("hi").expect("valid"),
            at: s(3),
        },
    ]);
    Given::with(())
        .given(assigned)
        .when(accept(f.other, s(3)))
        .then_expect_error(InteractionError::NotOffered);
}

#[test]
fn accepting_without_an_offer_is_refused() {
    let f = Fixture::new();
    Given::with(())
        .given(f.offered())
        .when(accept(f.other, s(5)))
        .then_expect_error(InteractionError::NotOffered);
    Given::with(())
        .given(f.waiting())
        .when(accept(f.agent, s(5)))
        .then_expect_error(InteractionError::NotOffered);
}

#[test]
fn accepting_a_lapsed_offer_is_refused() {
    let f = Fixture::new();
    let mut timed_out = f.offered();
    timed_out.push(E::OfferTimedOut { agent_id: f.agent, attempt: 1, at: s(30) });
    Given::with(())
        .given(timed_out)
        .when(accept(f.agent, s(31)))
        .then_expect_error(InteractionError::OfferExpired);
    // Its timer has not fired yet, but its deadline has passed.
    Given::with(())
        .given(f.offered())
        .when(accept(f.agent, s(30)))
        .then_expect_error(InteractionError::OfferExpired);
    Given::with(()).given(f.offered()).when(accept(f.agent, s(29))).then_expect_events(vec![
        E::OfferAccepted { agent_id: f.agent, attempt: 1, at: s(29) },
        E::AgentAssigned { agent_id: f.agent, at: s(29) },
    ]);
}

#[test]
fn accepting_a_withdrawn_offer_is_refused() {
    let f = Fixture::new();
    let mut events = f.offered();
    events.push(withdrawn(f.agent, 1, WithdrawReason::AgentUnavailable, s(3)));
    Given::with(())
        .given(events)
        .when(accept(f.agent, s(4)))
        .then_expect_error(InteractionError::OfferWithdrawn);
}

#[test]
fn accepting_on_a_closed_interaction_is_refused() {
    let f = Fixture::new();
    let mut events = f.offered();
    events.push(withdrawn(f.agent, 1, WithdrawReason::InteractionClosed, s(3)));
    events.push(E::InteractionClosed { by: Closer::Supervisor, at: s(3) });
    Given::with(()).given(events).when(accept(f.agent, s(4))).then_expect_error(InteractionError::Closed);
}

#[test]
fn rejecting_declines_the_live_offer_once() {
    let f = Fixture::new();
    let reject = |at| C::RejectOffer { agent_id: f.agent, at };
    Given::with(()).given(f.offered()).when(reject(s(5))).then_expect_events(vec![E::OfferRejected {
        agent_id: f.agent,
        attempt: 1,
        at: s(5),
    }]);
    let mut rejected = f.offered();
    rejected.push(E::OfferRejected { agent_id: f.agent, attempt: 1, at: s(5) });
    Given::with(())
        .given(rejected.clone())
        .when(reject(s(6)))
        .then_expect_error(InteractionError::NotOffered);
    Given::with(())
        .given(rejected)
        .when(accept(f.agent, s(6)))
        .then_expect_error(InteractionError::NotOffered);
    Given::with(()).given(f.offered()).when(reject(s(30))).then_expect_error(InteractionError::OfferExpired);
    Given::with(()).given(f.waiting()).when(reject(s(5))).then_expect_error(InteractionError::NotOffered);
}

#[test]
fn an_offer_times_out_once_when_due() {
    let f = Fixture::new();
    let expire_offer = |attempt, at| C::ExpireOffer { agent_id: f.agent, attempt, at };
    let timed_out = E::OfferTimedOut { agent_id: f.agent, attempt: 1, at: s(30) };
    Given::with(())
        .given(f.offered())
        .when(expire_offer(1, s(30)))
        .then_expect_events(vec![timed_out.clone()]);
    Given::with(()).given(f.offered()).when(expire_offer(1, s(29))).then_expect_events(vec![]);
    Given::with(()).given(f.offered()).when(expire_offer(2, s(30))).then_expect_events(vec![]);
    let mut done = f.offered();
    done.push(timed_out);
    Given::with(()).given(done).when(expire_offer(1, s(31))).then_expect_events(vec![]);
    let mut accepted = f.offered();
    accepted.push(E::OfferAccepted { agent_id: f.agent, attempt: 1, at: s(5) });
    accepted.push(E::AgentAssigned { agent_id: f.agent, at: s(5) });
    Given::with(()).given(accepted).when(expire_offer(1, s(30))).then_expect_events(vec![]);
}

#[test]
fn a_live_offer_is_withdrawn_once() {
    let f = Fixture::new();
    let withdraw = |attempt| C::WithdrawOffer {
        agent_id: f.agent,
        attempt,
        reason: WithdrawReason::AgentUnavailable,
        at: s(3),
    };
    let out = withdrawn(f.agent, 1, WithdrawReason::AgentUnavailable, s(3));
    Given::with(()).given(f.offered()).when(withdraw(1)).then_expect_events(vec![out.clone()]);
    Given::with(()).given(f.offered()).when(withdraw(2)).then_expect_events(vec![]);
    let mut done = f.offered();
    done.push(out);
    Given::with(()).given(done).when(withdraw(1)).then_expect_events(vec![]);
}

#[test]
fn closing_takes_back_every_live_offer() {
    let f = Fixture::new();
    let mut ring_all = f.offered();
    ring_all.push(offer_made(f.other, 2, 1, f.queue_a()));
    Given::with(())
        .given(ring_all)
        .when(C::Close { by: Closer::Supervisor, disposition: None, at: s(5) })
        .then_expect_events(vec![
            withdrawn(f.agent, 1, WithdrawReason::InteractionClosed, s(5)),
            withdrawn(f.other, 2, WithdrawReason::InteractionClosed, s(5)),
            E::InteractionClosed { by: Closer::Supervisor, at: s(5) },
        ]);
}

// -- routing: sticky return -----------------------------------------------------------------

fn sticky(agent_id: AgentId, at: DateTime<Utc>) -> C {
    C::StartStickyReturn { agent_id, at }
}

impl Fixture {
    /// Assigned to the agent; a customer message at s(100) waits for them until s(110).
    fn sticky_waiting(&self) -> Vec<E> {
        let mut events = self.routed_assigned(ChannelRules::default());
        events.push(self.received("wamid.2", MessageId::new(), s(100)));
        events.push(set(Target::Agent(self.agent), TargetReason::StickyAgent, 2, Some(s(110)), s(100)));
        events
    }
}

#[test]
fn a_message_for_an_unavailable_owner_waits_for_them_then_their_queue_then_the_plan() {
    let f = Fixture::new();
    let mut events = f.routed_assigned(ChannelRules::default());
    events.push(f.received("wamid.2", MessageId::new(), s(100)));
    // Default rules: 10 s for the agent, then 10 s in the queue.
    Given::with(()).given(events).when(sticky(f.agent, s(100))).then_expect_events(vec![set(
        Target::Agent(f.agent),
        TargetReason::StickyAgent,
        2,
        Some(s(110)),
        s(100),
    )]);
    let mut waiting = f.sticky_waiting();
    waiting.push(offer_at(f.agent, 2, 2, Target::Agent(f.agent), s(101), s(110)));
    Given::with(()).given(waiting.clone()).when(expire(2, s(110))).then_expect_events(vec![
        E::RoutingTargetExpired { seq: 2, at: s(110) },
        withdrawn(f.agent, 2, WithdrawReason::TargetChanged, s(110)),
        set(f.queue_a(), TargetReason::StickyQueue, 3, Some(s(120)), s(110)),
    ]);
    waiting.extend([
        E::RoutingTargetExpired { seq: 2, at: s(110) },
        withdrawn(f.agent, 2, WithdrawReason::TargetChanged, s(110)),
        set(f.queue_a(), TargetReason::StickyQueue, 3, Some(s(120)), s(110)),
    ]);
    Given::with(()).given(waiting).when(expire(3, s(120))).then_expect_events(vec![
        E::RoutingTargetExpired { seq: 3, at: s(120) },
        set(f.queue_a(), TargetReason::Plan { step: 0 }, 4, Some(s(180)), s(120)),
    ]);
}

#[test]
fn a_sticky_wait_without_a_queue_restarts_the_plan() {
    let f = Fixture::new();
    let p = plan(vec![step(StepAction::Agent { agent_id: f.agent, timeout_secs: 30 })]);
    let mut events = f.routed_prefix(p, "hello", t(0));
    events.extend([
        set(Target::Agent(f.agent), TargetReason::Plan { step: 0 }, 1, Some(s(30)), t(0)),
        offer_made(f.agent, 1, 1, Target::Agent(f.agent)),
        E::OfferAccepted { agent_id: f.agent, attempt: 1, at: s(2) },
        E::AgentAssigned { agent_id: f.agent, at: s(2) },
        set(Target::Agent(f.agent), TargetReason::StickyAgent, 2, Some(s(110)), s(100)),
    ]);
    Given::with(()).given(events).when(expire(2, s(110))).then_expect_events(vec![
        E::RoutingTargetExpired { seq: 2, at: s(110) },
        set(Target::Agent(f.agent), TargetReason::Plan { step: 0 }, 3, Some(s(140)), s(110)),
    ]);
}

#[test]
fn the_owner_takes_a_sticky_return_back_and_its_timer_then_does_nothing() {
    let f = Fixture::new();
    let mut waiting = f.sticky_waiting();
    waiting.push(offer_at(f.agent, 2, 2, Target::Agent(f.agent), s(101), s(110)));
    Given::with(()).given(waiting.clone()).when(accept(f.agent, s(105))).then_expect_events(vec![
        E::OfferAccepted { agent_id: f.agent, attempt: 2, at: s(105) },
        E::AgentAssigned { agent_id: f.agent, at: s(105) },
    ]);
    waiting.push(E::OfferAccepted { agent_id: f.agent, attempt: 2, at: s(105) });
    waiting.push(E::AgentAssigned { agent_id: f.agent, at: s(105) });
    Given::with(()).given(waiting).when(expire(2, s(110))).then_expect_events(vec![]);
}

#[test]
fn a_sticky_return_is_only_started_for_the_idle_owner() {
    let f = Fixture::new();
    let assigned = f.routed_assigned(ChannelRules::default());
    Given::with(()).given(assigned).when(sticky(f.other, s(100))).then_expect_events(vec![]);
    Given::with(()).given(f.sticky_waiting()).when(sticky(f.agent, s(101))).then_expect_events(vec![]);
    Given::with(()).given(f.waiting()).when(sticky(f.agent, s(100))).then_expect_events(vec![]);
    let mut closed = f.routed_assigned(ChannelRules::default());
    closed.push(E::InteractionClosed { by: Closer::Agent(f.agent), at: s(50) });
    Given::with(()).given(closed).when(sticky(f.agent, s(100))).then_expect_events(vec![]);
}

#[test]
fn another_agent_taking_a_sticky_return_from_the_queue_becomes_the_owner() {
    let f = Fixture::new();
    let mut events = f.sticky_waiting();
    events.extend([
        E::RoutingTargetExpired { seq: 2, at: s(110) },
        set(f.queue_a(), TargetReason::StickyQueue, 3, Some(s(120)), s(110)),
        offer_at(f.other, 2, 3, f.queue_a(), s(111), s(141)),
        E::OfferAccepted { agent_id: f.other, attempt: 2, at: s(112) },
        E::AgentAssigned { agent_id: f.other, at: s(112) },
    ]);
    Given::with(())
        .given(events.clone())
        .when(send(f.agent, MessageId::new(), s(113)))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(events)
        .when(C::Close { by: Closer::Agent(f.other), disposition: None, at: s(113) })
        .then_expect_events(vec![E::InteractionClosed { by: Closer::Agent(f.other), at: s(113) }]);
}

// -- routing: transfer ----------------------------------------------------------------------

fn transfer_rules() -> ChannelRules {
    ChannelRules { transfer_timeout_secs: Some(120), ..ChannelRules::default() }
}

fn transfer(agent_id: AgentId, to: Target) -> C {
    C::Transfer { agent_id, to, at: s(10) }
}

impl Fixture {
    /// Assigned to the agent, who asked at s(10) to transfer to the other agent (target 2).
    fn transferring(&self) -> Vec<E> {
        let mut events = self.routed_assigned(transfer_rules());
        events.push(E::TransferRequested {
            from: self.agent,
            to: Target::Agent(self.other),
            seq: 2,
            until: s(130),
            at: s(10),
        });
        events
    }
}

#[test]
fn the_owner_transfers_to_an_agent_or_a_queue() {
    let f = Fixture::new();
    Given::with(())
        .given(f.routed_assigned(transfer_rules()))
        .when(transfer(f.agent, Target::Agent(f.other)))
        .then_expect_events(f.transferring().split_off(f.transferring().len() - 1));
    Given::with(())
        .given(f.routed_assigned(transfer_rules()))
        .when(transfer(f.agent, f.queue_b()))
        .then_expect_events(vec![E::TransferRequested {
            from: f.agent,
            to: f.queue_b(),
            seq: 2,
            until: s(130),
            at: s(10),
        }]);
}

#[test]
fn transfers_are_refused_when_disabled_not_owned_to_oneself_or_already_pending() {
    let f = Fixture::new();
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(transfer(f.agent, Target::Agent(f.other)))
        .then_expect_error(InteractionError::TransferDisabled);
    Given::with(())
        .given(f.routed_assigned(transfer_rules()))
        .when(transfer(f.other, Target::Agent(f.agent)))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(f.routed_assigned(transfer_rules()))
        .when(transfer(f.agent, Target::Agent(f.agent)))
        .then_expect_error(InteractionError::TransferToSelf);
    Given::with(())
        .given(f.transferring())
        .when(transfer(f.agent, f.queue_b()))
        .then_expect_error(InteractionError::TransferPending);
}

#[test]
fn the_transferring_agent_keeps_the_interaction_until_the_target_accepts() {
    let f = Fixture::new();
    let m = MessageId::new();
    Given::with(()).given(f.transferring()).when(send(f.agent, m, s(11))).then_expect_events(vec![
        E::AgentMessageSent {
            account_id: f.account_id,
            message_id: m,
            agent_id: f.agent,
            to: f.customer.clone(),
            text: MessageText::parse("hi").expect("valid"),
            at: s(11),
        },
    ]);
    let mut offered = f.transferring();
    offered.push(offer_at(f.other, 2, 2, Target::Agent(f.other), s(11), s(130)));
    Given::with(()).given(offered.clone()).when(accept(f.other, s(20))).then_expect_events(vec![
        E::OfferAccepted { agent_id: f.other, attempt: 2, at: s(20) },
        E::AgentAssigned { agent_id: f.other, at: s(20) },
    ]);
    offered.push(E::OfferAccepted { agent_id: f.other, attempt: 2, at: s(20) });
    offered.push(E::AgentAssigned { agent_id: f.other, at: s(20) });
    Given::with(())
        .given(offered.clone())
        .when(send(f.agent, MessageId::new(), s(21)))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    // Its timer is stale now.
    Given::with(()).given(offered).when(expire(2, s(130))).then_expect_events(vec![]);
}

#[test]
fn an_unanswered_transfer_returns_to_the_transferring_agent() {
    let f = Fixture::new();
    let mut offered = f.transferring();
    offered.push(offer_at(f.other, 2, 2, Target::Agent(f.other), s(11), s(130)));
    Given::with(()).given(offered.clone()).when(expire(2, s(130))).then_expect_events(vec![
        E::RoutingTargetExpired { seq: 2, at: s(130) },
        withdrawn(f.other, 2, WithdrawReason::TargetChanged, s(130)),
        E::TransferReturned { seq: 2, agent_id: f.agent, at: s(130) },
    ]);
    offered.extend([
        E::RoutingTargetExpired { seq: 2, at: s(130) },
        withdrawn(f.other, 2, WithdrawReason::TargetChanged, s(130)),
        E::TransferReturned { seq: 2, agent_id: f.agent, at: s(130) },
    ]);
    // Still the owner's, and free to be transferred again.
    Given::with(())
        .given(offered)
        .when(C::Transfer { agent_id: f.agent, to: f.queue_b(), at: s(140) })
        .then_expect_events(vec![E::TransferRequested {
            from: f.agent,
            to: f.queue_b(),
            seq: 3,
            until: s(260),
            at: s(140),
        }]);
}

// -- routing: inactivity ----------------------------------------------------------------------

fn inactivity_rules() -> ChannelRules {
    ChannelRules { inactivity_minutes: Some(30), ..ChannelRules::default() }
}

impl Fixture {
    fn agent_wrote(&self, at: DateTime<Utc>) -> E {
        E::AgentMessageSent {
            account_id: self.account_id,
            message_id: MessageId::new(),
            agent_id: self.agent,
            to: self.customer.clone(),
            text: MessageText::parse("anything else?").expect("valid"),
            at,
        }
    }
}

fn idle(since: DateTime<Utc>, at: DateTime<Utc>) -> C {
    C::CloseForInactivity { since, at }
}

#[test]
fn an_unanswered_agent_message_closes_the_interaction_after_the_inactivity_minutes() {
    let f = Fixture::new();
    let mut events = f.routed_assigned(inactivity_rules());
    events.push(f.agent_wrote(s(100)));
    Given::with(()).given(events.clone()).when(idle(s(100), s(1900))).then_expect_events(vec![
        E::InteractionClosedBySystem {
            reason: SystemClose::Inactivity { idle_since: s(100) },
            disposition: code(CLOSED_FOR_INACTIVITY),
            at: s(1900),
        },
    ]);
    Given::with(()).given(events.clone()).when(idle(s(100), s(1899))).then_expect_events(vec![]);
    events.push(E::InteractionClosedBySystem {
        reason: SystemClose::Inactivity { idle_since: s(100) },
        disposition: code(CLOSED_FOR_INACTIVITY),
        at: s(1900),
    });
    Given::with(()).given(events).when(idle(s(100), s(1901))).then_expect_events(vec![]);
}

#[test]
fn a_newer_message_makes_the_inactivity_timer_a_no_op() {
    let f = Fixture::new();
    let mut answered = f.routed_assigned(inactivity_rules());
    answered.push(f.agent_wrote(s(100)));
    answered.push(f.received("wamid.2", MessageId::new(), s(200)));
    Given::with(()).given(answered).when(idle(s(100), s(1900))).then_expect_events(vec![]);
    let mut again = f.routed_assigned(inactivity_rules());
    again.push(f.agent_wrote(s(100)));
    again.push(f.agent_wrote(s(200)));
    Given::with(()).given(again.clone()).when(idle(s(100), s(1900))).then_expect_events(vec![]);
    Given::with(()).given(again).when(idle(s(200), s(2000))).then_expect_events(vec![
        E::InteractionClosedBySystem {
            reason: SystemClose::Inactivity { idle_since: s(200) },
            disposition: code(CLOSED_FOR_INACTIVITY),
            at: s(2000),
        },
    ]);
}

#[test]
fn without_inactivity_rules_the_timer_does_nothing() {
    let f = Fixture::new();
    let mut events = f.routed_assigned(ChannelRules::default());
    events.push(f.agent_wrote(s(100)));
    Given::with(()).given(events).when(idle(s(100), s(100_000))).then_expect_events(vec![]);
}

#[test]
fn an_inactivity_close_takes_back_live_offers() {
    let f = Fixture::new();
    let mut events = f.routed_assigned(inactivity_rules());
    events.push(f.agent_wrote(s(100)));
    // The owner is being offered it back (a sticky wait) while their message is the last.
    events.push(set(Target::Agent(f.agent), TargetReason::StickyAgent, 2, Some(s(5000)), s(150)));
    events.push(offer_at(f.agent, 2, 2, Target::Agent(f.agent), s(150), s(5000)));
    Given::with(()).given(events).when(idle(s(100), s(1900))).then_expect_events(vec![
        withdrawn(f.agent, 2, WithdrawReason::InteractionClosed, s(1900)),
        E::InteractionClosedBySystem {
            reason: SystemClose::Inactivity { idle_since: s(100) },
            disposition: code(CLOSED_FOR_INACTIVITY),
            at: s(1900),
        },
    ]);
}

// -- routing: mandatory disposition and tags -----------------------------------------------

fn mandatory_rules() -> ChannelRules {
    ChannelRules {
        mandatory_disposition: Some(MandatoryDisposition {
            pause_reason: Some(PauseReason::parse("Wrap-up").expect("valid")),
        }),
        ..ChannelRules::default()
    }
}

fn close_by(by: Closer, disposition: Option<&str>) -> C {
    C::Close { by, disposition: disposition.map(code), at: s(50) }
}

#[test]
fn under_mandatory_disposition_an_agent_closes_only_with_one() {
    let f = Fixture::new();
    Given::with(())
        .given(f.routed_assigned(mandatory_rules()))
        .when(close_by(Closer::Agent(f.agent), None))
        .then_expect_error(InteractionError::DispositionRequired);
    Given::with(())
        .given(f.routed_assigned(mandatory_rules()))
        .when(close_by(Closer::Agent(f.agent), Some("resolved")))
        .then_expect_events(vec![
            E::InteractionClosed { by: Closer::Agent(f.agent), at: s(50) },
            E::InteractionDisposed { agent_id: f.agent, disposition: code("resolved"), at: s(50) },
        ]);
    // A supervisor never needs one.
    Given::with(())
        .given(f.routed_assigned(mandatory_rules()))
        .when(close_by(Closer::Supervisor, None))
        .then_expect_events(vec![E::InteractionClosed { by: Closer::Supervisor, at: s(50) }]);
}

#[test]
fn the_wrap_up_starts_once_with_the_accounts_pause_reason() {
    let f = Fixture::new();
    let wrap_up = |agent_id| C::StartWrapUp { agent_id, at: s(40) };
    let started = E::WrapUpStarted {
        agent_id: f.agent,
        pause_reason: Some(PauseReason::parse("Wrap-up").expect("valid")),
        at: s(40),
    };
    Given::with(())
        .given(f.routed_assigned(mandatory_rules()))
        .when(wrap_up(f.agent))
        .then_expect_events(vec![started.clone()]);
    let mut events = f.routed_assigned(mandatory_rules());
    events.push(started);
    Given::with(()).given(events).when(wrap_up(f.agent)).then_expect_events(vec![]);
    Given::with(())
        .given(f.routed_assigned(mandatory_rules()))
        .when(wrap_up(f.other))
        .then_expect_error(InteractionError::NotAssignedToAgent);
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(wrap_up(f.agent))
        .then_expect_events(vec![]);
}

#[test]
fn without_mandatory_disposition_a_close_may_carry_one() {
    let f = Fixture::new();
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(close_by(Closer::Agent(f.agent), Some("resolved")))
        .then_expect_events(vec![
            E::InteractionClosed { by: Closer::Agent(f.agent), at: s(50) },
            E::InteractionDisposed { agent_id: f.agent, disposition: code("resolved"), at: s(50) },
        ]);
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(close_by(Closer::Agent(f.agent), None))
        .then_expect_events(vec![E::InteractionClosed { by: Closer::Agent(f.agent), at: s(50) }]);
    // A supervisor's disposition is recorded for the owner; with no owner it waits.
    Given::with(())
        .given(f.routed_assigned(ChannelRules::default()))
        .when(close_by(Closer::Supervisor, Some("spam")))
        .then_expect_events(vec![
            E::InteractionClosed { by: Closer::Supervisor, at: s(50) },
            E::InteractionDisposed { agent_id: f.agent, disposition: code("spam"), at: s(50) },
        ]);
    Given::with(())
        .given(f.waiting())
        .when(close_by(Closer::Supervisor, Some("spam")))
        .then_expect_events(vec![E::InteractionClosed { by: Closer::Supervisor, at: s(50) }]);
}

#[test]
fn the_owner_adds_only_new_tags() {
    let f = Fixture::new();
    let add = |agent_id, names: &[&str]| C::AddTags { agent_id, tags: tags(names), at: s(20) };
    let mut events = f.routed_assigned(ChannelRules::default());
    events.push(E::TagsAdded { tags: tags(&["vip"]), by: None, at: t(0) });
    Given::with(())
        .given(events.clone())
        .when(add(f.agent, &["vip", "billing"]))
        .then_expect_events(vec![E::TagsAdded { tags: tags(&["billing"]), by: Some(f.agent), at: s(20) }]);
    Given::with(()).given(events.clone()).when(add(f.agent, &["vip"])).then_expect_events(vec![]);
    Given::with(()).given(events.clone()).when(add(f.agent, &[])).then_expect_error(InteractionError::NoTags);
    Given::with(())
        .given(events)
        .when(add(f.other, &["billing"]))
        .then_expect_error(InteractionError::NotAssignedToAgent);
}

#[test]
fn an_interaction_opened_in_a_queue_before_routing_plans_waits_there() {
    let f = Fixture::new();
    let legacy = vec![
        E::InteractionOpened {
            account_id: f.account_id,
            customer: f.customer.clone(),
            customer_name: None,
            queue_id: Some(f.queue_id),
            at: t(0),
        },
        f.received("wamid.1", MessageId::new(), t(0)),
    ];
    Given::with(())
        .given(legacy)
        .when(offer(f.agent, 1, 0, true, f.queue_a()))
        .then_expect_events(vec![offer_made(f.agent, 1, 0, f.queue_a())]);
}

// ---------------------------------------------------------------------------------------
// Whitelist
// ---------------------------------------------------------------------------------------

impl Fixture {
    /// The first message of an interaction whose number the whitelist turned away.
    fn open_not_whitelisted(&self, routing: Option<RoutingSetup>, reply: Option<MessageText>) -> C {
        C::ReceiveCustomerMessage {
            account_id: self.account_id,
            customer: self.customer.clone(),
            customer_name: Some("Jane".into()),
            routing,
            screening: Screening::NotWhitelisted { reply },
            seed: self.seed,
            message_id: self.first_message,
            provider_message_id: "wamid.1".into(),
            content: InboundContent::Text { body: "hello".into() },
            sent_at: t(0),
            at: t(0),
        }
    }

    fn not_whitelisted_prefix(&self) -> Vec<E> {
        vec![
            E::InteractionOpened {
                account_id: self.account_id,
                customer: self.customer.clone(),
                customer_name: Some("Jane".into()),
                queue_id: None,
                at: t(0),
            },
            E::CustomerMessageReceived {
                account_id: self.account_id,
                message_id: self.first_message,
                provider_message_id: "wamid.1".into(),
                content: InboundContent::Text { body: "hello".into() },
                sent_at: t(0),
                at: t(0),
            },
        ]
    }

    fn closed_not_whitelisted(&self) -> E {
        E::InteractionClosedBySystem {
            reason: SystemClose::NotWhitelisted,
            disposition: DispositionCode::parse(NOT_WHITELISTED).expect("valid"),
            at: t(0),
        }
    }
}

#[test]
fn a_number_outside_the_whitelist_gets_the_reply_and_is_closed_without_routing() {
    let f = Fixture::new();
    let reply = MessageText::parse("This number only serves registered customers").expect("text");
    let plan = RoutingPlan::single_queue(f.queue_id);
    let mut expected = f.not_whitelisted_prefix();
    expected.push(E::AutoReplySent {
        account_id: f.account_id,
        message_id: MessageId::derived(f.seed, 0),
        to: f.customer.clone(),
        text: reply.clone(),
        step: 0,
        at: t(0),
    });
    expected.push(f.closed_not_whitelisted());
    Given::with(())
        .given_no_previous_events()
        .when(f.open_not_whitelisted(Some(f.setup(plan, ChannelRules::default())), Some(reply)))
        .then_expect_events(expected);
}

#[test]
fn without_a_reply_or_a_plan_a_number_outside_the_whitelist_is_just_closed() {
    let f = Fixture::new();
    let mut expected = f.not_whitelisted_prefix();
    expected.push(f.closed_not_whitelisted());
    Given::with(())
        .given_no_previous_events()
        .when(f.open_not_whitelisted(None, None))
        .then_expect_events(expected);
}

#[test]
fn an_interaction_closed_by_the_whitelist_takes_no_offer_and_no_further_message() {
    let f = Fixture::new();
    let mut history = f.not_whitelisted_prefix();
    history.push(f.closed_not_whitelisted());
    let mut state = Interaction::default();
    for e in history.clone() {
        state.fold(e);
    }
    assert_eq!(state.stage, Stage::Disposed);
    assert!(state.routing.is_none() && state.target.is_none());
    Given::with(())
        .given(history.clone())
        .when(offer(f.agent, 1, 0, false, f.queue_a()))
        .then_expect_events(vec![]);
    Given::with(())
        .given(history)
        .when(f.receive("wamid.2", MessageId::new(), t(1)))
        .then_expect_error(InteractionError::NotJoinable);
}

#[test]
fn the_screening_of_a_message_that_joins_an_open_interaction_is_ignored() {
    let f = Fixture::new();
    let joining = match f.receive("wamid.2", MessageId::new(), t(1)) {
        C::ReceiveCustomerMessage {
            account_id,
            customer,
            customer_name,
            routing,
            seed,
            message_id,
            provider_message_id,
            content,
            sent_at,
            at,
            ..
        } => C::ReceiveCustomerMessage {
            account_id,
            customer,
            customer_name,
            routing,
            seed,
            message_id,
            provider_message_id,
            content,
            sent_at,
            at,
            screening: Screening::NotWhitelisted { reply: None },
        },
        other => other,
    };
    let events = Given::with(())
        .given(vec![f.opened(t(0)), f.received("wamid.1", MessageId::new(), t(0))])
        .when(joining)
        .inspect_result();
    let events = events.expect("joins");
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], E::CustomerMessageReceived { .. }));
}

fn note(author: NoteAuthor, note_id: NoteId) -> (InteractionCommand, InteractionEvent) {
    let text = MessageText::parse("customer is a reseller").expect("valid");
    (
        InteractionCommand::AddNote { note_id, author: author.clone(), text: text.clone(), at: t(1) },
        InteractionEvent::NoteAdded { note_id, author, text, at: t(1) },
    )
}

#[test]
fn the_owner_and_supervisors_write_notes_on_open_and_closed_interactions() {
    let f = Fixture::new();
    let id = NoteId::new();
    let (cmd, ev) = note(NoteAuthor::Agent { agent_id: f.agent }, id);
    Given::with(()).given(f.assigned()).when(cmd).then_expect_events(vec![ev]);
    let supervisor = NoteAuthor::Supervisor { label: "floor lead".into() };
    let (cmd, ev) = note(supervisor.clone(), id);
    Given::with(()).given(f.assigned()).when(cmd).then_expect_events(vec![ev]);
    let mut closed = f.assigned();
    closed.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    let (cmd, ev) = note(supervisor, id);
    Given::with(()).given(closed).when(cmd).then_expect_events(vec![ev]);
}

#[test]
fn another_agent_cannot_write_a_note_and_nobody_writes_on_nothing() {
    let f = Fixture::new();
    let (cmd, _) = note(NoteAuthor::Agent { agent_id: f.other }, NoteId::new());
    Given::with(()).given(f.assigned()).when(cmd).then_expect_error(InteractionError::NotAssignedToAgent);
    let (cmd, _) = note(NoteAuthor::Supervisor { label: "x".into() }, NoteId::new());
    Given::with(()).given_no_previous_events().when(cmd).then_expect_error(InteractionError::NotFound);
}

#[test]
fn only_a_closed_interaction_is_deleted_and_then_it_is_gone() {
    let f = Fixture::new();
    Given::with(())
        .given(f.assigned())
        .when(InteractionCommand::Delete { at: t(2) })
        .then_expect_error(InteractionError::StillOpen);
    let mut closed = f.assigned();
    closed.push(InteractionEvent::InteractionClosed { by: Closer::Agent(f.agent), at: t(1) });
    Given::with(())
        .given(closed.clone())
        .when(InteractionCommand::Delete { at: t(2) })
        .then_expect_events(vec![InteractionEvent::InteractionDeleted { at: t(2) }]);
    closed.push(InteractionEvent::InteractionDeleted { at: t(2) });
    Given::with(())
        .given(closed.clone())
        .when(InteractionCommand::Delete { at: t(3) })
        .then_expect_error(InteractionError::NotFound);
    let (cmd, _) = note(NoteAuthor::Supervisor { label: "x".into() }, NoteId::new());
    Given::with(()).given(closed.clone()).when(cmd).then_expect_error(InteractionError::NotFound);
    // The customer's next message opens a new interaction (the deleted one takes none).
    Given::with(())
        .given(closed)
        .when(f.receive("wamid.after", MessageId::new(), t(3)))
        .then_expect_error(InteractionError::NotJoinable);
}

#[test]
fn a_retried_note_with_the_same_id_is_recorded_once() {
    let f = Fixture::new();
    let id = NoteId::new();
    let (cmd, ev) = note(NoteAuthor::Supervisor { label: "lead".into() }, id);
    let mut events = f.assigned();
    events.push(ev);
    Given::with(()).given(events.clone()).when(cmd).then_expect_events(vec![]);
    let (other, other_ev) = note(NoteAuthor::Supervisor { label: "lead".into() }, NoteId::new());
    Given::with(()).given(events).when(other).then_expect_events(vec![other_ev]);
}
