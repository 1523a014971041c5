-- Read models and work tables derived from the event log. Each is owned by one projector,
-- written in the same transaction as that projector's checkpoint, and can be rebuilt from
-- position zero. Times are epoch milliseconds (BIGINT) so the same SQL serves PostgreSQL and
-- SQLite; the API renders them as RFC 3339.

-- Supervisor interaction list (projection "interaction_list").
CREATE TABLE interaction_list
(
    interaction_id         text PRIMARY KEY,
    account_id             text   NOT NULL,
    queue_id               text,
    agent_id               text,
    offered_to             text,
    customer               text   NOT NULL,
    customer_name          text,
    status                 text   NOT NULL,
    last_message_at        bigint,
    last_message_preview   text,
    last_message_direction text,
    unread_count           bigint NOT NULL DEFAULT 0,
    message_count          bigint NOT NULL DEFAULT 0,
    opened_at              bigint NOT NULL,
    assigned_at            bigint,
    closed_at              bigint,
    disposed_at            bigint,
    disposition            text,
    updated_at             bigint NOT NULL
);
CREATE INDEX interaction_list_account ON interaction_list (account_id, opened_at);
CREATE INDEX interaction_list_status ON interaction_list (status, opened_at);
CREATE INDEX interaction_list_agent ON interaction_list (agent_id, opened_at);

-- Messages of each interaction, both directions (projection "interaction_list").
CREATE TABLE interaction_messages
(
    message_id          text PRIMARY KEY,
    interaction_id      text   NOT NULL,
    direction           text   NOT NULL,
    kind                text   NOT NULL,
    body                text   NOT NULL,
    provider_message_id text,
    agent_id            text,
    status              text   NOT NULL,
    error_code          text,
    error_reason        text,
    at                  bigint NOT NULL,
    seq                 bigint NOT NULL
);
CREATE INDEX interaction_messages_by_interaction ON interaction_messages (interaction_id, seq);

-- Agent presence board (projection "agent_status").
CREATE TABLE agent_status
(
    agent_id   text PRIMARY KEY,
    name       text   NOT NULL,
    presence   text   NOT NULL,
    reason     text,
    updated_at bigint NOT NULL
);

-- Which agents may work which account (projection "agent_status"): agents see only these.
CREATE TABLE account_members
(
    account_id text NOT NULL,
    agent_id   text NOT NULL,
    PRIMARY KEY (account_id, agent_id)
);

-- Queue board (projection "queue_status"): counts are computed from the member and waiting
-- rows at query time, so the board can never drift from them.
CREATE TABLE queue_status
(
    queue_id        text PRIMARY KEY,
    name            text   NOT NULL,
    offer_timeout_s bigint NOT NULL,
    accepted_total  bigint NOT NULL DEFAULT 0,
    rejected_total  bigint NOT NULL DEFAULT 0,
    timed_out_total bigint NOT NULL DEFAULT 0,
    updated_at      bigint NOT NULL
);

CREATE TABLE queue_members
(
    queue_id  text   NOT NULL,
    agent_id  text   NOT NULL,
    available bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue_id, agent_id)
);

CREATE TABLE queue_waiting
(
    queue_id       text   NOT NULL,
    interaction_id text   NOT NULL,
    queued_at      bigint NOT NULL,
    offered_to     text,
    PRIMARY KEY (queue_id, interaction_id)
);

-- Durable timers (projection "timers" inserts and cancels; pollers claim due rows).
CREATE TABLE timers
(
    timer_id       text PRIMARY KEY,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    kind           text   NOT NULL,
    fire_at        bigint NOT NULL,
    payload        text   NOT NULL,
    status         text   NOT NULL DEFAULT 'scheduled',
    locked_until   bigint,
    attempts       bigint NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers (status, fire_at);

-- Outbound messages (projection "outbox" enqueues; senders claim, send and record).
CREATE TABLE outbox
(
    message_id          text PRIMARY KEY,
    interaction_id      text   NOT NULL,
    account_id          text   NOT NULL,
    to_phone            text   NOT NULL,
    body                text   NOT NULL,
    status              text   NOT NULL DEFAULT 'pending',
    attempts            bigint NOT NULL DEFAULT 0,
    next_attempt_at     bigint NOT NULL,
    locked_until        bigint,
    provider_message_id text,
    last_error          text,
    error_code          text,
    error_reason        text,
    -- 1 once the outcome (accepted or failed) is recorded on the interaction; until then the
    -- sender keeps trying to record it.
    recorded            bigint NOT NULL DEFAULT 0,
    created_at          bigint NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_provider_id ON outbox (provider_message_id);

-- Bearer tokens. Only a SHA-256 of each token is stored; the token itself is shown once.
CREATE TABLE api_tokens
(
    token_hash text PRIMARY KEY,
    role       text   NOT NULL,
    agent_id   text,
    label      text   NOT NULL,
    created_at bigint NOT NULL,
    revoked_at bigint
);
