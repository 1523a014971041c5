-- The event log (postgres-es's table, created here because the service owns its schema) plus
-- the columns postgres-es does not know about. postgres-es names its columns on INSERT, so
-- these additive columns with defaults need no change to it.
--   global_position, tx_id: the global order projectors read in. A projector only reads
--     rows with tx_id below the oldest running transaction (the "safe horizon"), so an
--     event committed late with a smaller position can never be skipped.
--   recorded_at: when the database stored the event (the event itself says when it happened).
--   provider_key: "{account}:{provider message id}" for inbound customer messages; its
--     unique index makes a provider's redelivery impossible to append twice, whichever
--     interaction it is routed to and however many nodes receive it.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    tx_id           xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    provider_key    text GENERATED ALWAYS AS (
        CASE WHEN event_type = 'CustomerMessageReceived'
             THEN (payload -> 'CustomerMessageReceived' ->> 'account_id') || ':' ||
                  (payload -> 'CustomerMessageReceived' ->> 'provider_message_id')
        END) STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_order ON events (tx_id, global_position);
CREATE UNIQUE INDEX events_provider_key ON events (provider_key) WHERE provider_key IS NOT NULL;

-- postgres-es reads this table only in snapshot modes, which Switchboard never uses
-- (cqrs-es 0.5.0 double-applies events when snapshotting); it exists so the repository's
-- queries are valid.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Where each projector got to, as (tx_id, position): a transaction with a larger xid can hold
-- a smaller position, so the position alone is not a safe checkpoint.
CREATE TABLE projection_checkpoints
(
    projection  text PRIMARY KEY,
    last_tx_id  xid8   NOT NULL DEFAULT '0',
    last_pos    bigint NOT NULL DEFAULT 0,
    updated_at  bigint NOT NULL DEFAULT 0
);
