-- Delivery statuses that arrived before the provider's acceptance of the send was stored
-- (the provider's webhook can overtake its own HTTP answer). They are parked here and
-- replayed onto the interaction as soon as the acceptance is recorded; rows nobody claims
-- (statuses of messages sent outside Switchboard) are dropped after a day.
CREATE TABLE pending_statuses
(
    account_id          text   NOT NULL,
    provider_message_id text   NOT NULL,
    status              text   NOT NULL,
    failure_code        text,
    failure_reason      text,
    at                  bigint NOT NULL,
    received_at         bigint NOT NULL,
    PRIMARY KEY (account_id, provider_message_id, status)
);
CREATE INDEX pending_statuses_age ON pending_statuses (received_at);
