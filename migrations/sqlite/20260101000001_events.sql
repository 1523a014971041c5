-- The event log (sqlite-es's table, created here because sqlite-es ships no runtime schema)
-- plus the global order. SQLite has one writer at a time, so the order rows enter
-- `event_log` is the commit order; its INTEGER PRIMARY KEY is explicit so VACUUM can never
-- renumber it (an implicit rowid may be).
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    -- "{account}:{provider message id}" of inbound customer messages: unique, so a
    -- redelivery can never be appended twice.
    provider_key   text GENERATED ALWAYS AS (
        CASE WHEN event_type = 'CustomerMessageReceived'
             THEN json_extract(payload, '$.CustomerMessageReceived.account_id') || ':' ||
                  json_extract(payload, '$.CustomerMessageReceived.provider_message_id')
        END) VIRTUAL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_provider_key ON events (provider_key) WHERE provider_key IS NOT NULL;

CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

CREATE TABLE event_log
(
    global_position integer PRIMARY KEY AUTOINCREMENT,
    aggregate_type  text    NOT NULL,
    aggregate_id    text    NOT NULL,
    sequence        integer NOT NULL,
    recorded_at     integer NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TRIGGER events_to_log AFTER INSERT ON events
BEGIN
    INSERT INTO event_log (aggregate_type, aggregate_id, sequence, recorded_at)
    VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TABLE projection_checkpoints
(
    projection  text PRIMARY KEY,
    last_tx_id  text    NOT NULL DEFAULT '0',
    last_pos    integer NOT NULL DEFAULT 0,
    updated_at  integer NOT NULL DEFAULT 0
) STRICT;
