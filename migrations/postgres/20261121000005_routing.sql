-- Routing engine (issue 4): the read side of queues, agents, targets and offers.
--
-- Every table below is derived from the log by the projection named in its comment and is
-- emptied by that projection's rebuild. Side tables hold what a projection must remember
-- between events (live offers, presence) so it never reads another projection's tables.

-- Queue settings (projection "queue_status").
ALTER TABLE queue_status ADD COLUMN strategy text NOT NULL DEFAULT 'round_robin';
ALTER TABLE queue_status ADD COLUMN weight bigint NOT NULL DEFAULT 5;

-- Members in join order (the round-robin order).
ALTER TABLE queue_members ADD COLUMN joined_at bigint NOT NULL DEFAULT 0;

-- The target an interaction waits on: its sequence number, deadline (NULL: none) and why
-- (`plan`, `plan_end`, `sticky_queue`, `transfer`).
ALTER TABLE queue_waiting ADD COLUMN target_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE queue_waiting ADD COLUMN until_at bigint;
ALTER TABLE queue_waiting ADD COLUMN reason text;
CREATE INDEX queue_waiting_by_interaction ON queue_waiting (interaction_id);

-- Each agent's presence as the queue board needs it: a member is available when ready
-- and reachable (projection "queue_status").
CREATE TABLE queue_agents
(
    agent_id  text PRIMARY KEY,
    ready     bigint NOT NULL DEFAULT 0,
    reachable bigint NOT NULL DEFAULT 1
);

-- Live offers made for a queue target, so an answer is counted in that queue's totals
-- (projection "queue_status").
CREATE TABLE queue_offers
(
    interaction_id text   NOT NULL,
    agent_id       text   NOT NULL,
    attempt        bigint NOT NULL,
    queue_id       text   NOT NULL,
    PRIMARY KEY (interaction_id, agent_id, attempt)
);

-- Agent board (projection "agent_status"): capacity, websocket reachability (and the end
-- of a running reconnect grace period).
ALTER TABLE agent_status ADD COLUMN capacity bigint NOT NULL DEFAULT 5;
ALTER TABLE agent_status ADD COLUMN reachable bigint NOT NULL DEFAULT 1;
ALTER TABLE agent_status ADD COLUMN reconnect_by bigint;

-- Wrap-ups (mandatory disposition) an agent has started and not ended.
CREATE TABLE agent_wrap_ups
(
    agent_id       text   NOT NULL,
    interaction_id text   NOT NULL,
    started_at     bigint NOT NULL,
    PRIMARY KEY (agent_id, interaction_id)
);

-- Who owns each interaction and whether it is still open: an agent's load is the count of
-- their open rows (projection "agent_status").
CREATE TABLE agent_load
(
    interaction_id text PRIMARY KEY,
    agent_id       text,
    open           bigint NOT NULL DEFAULT 1
);
CREATE INDEX agent_load_by_agent ON agent_load (agent_id, open);

-- Interaction list (projection "interaction_list"): the "returned to you" unread flag, the
-- tags (a JSON array for display; interaction_tags for filtering) and why the system
-- closed it (`inactivity`, `plan_step`).
ALTER TABLE interaction_list ADD COLUMN unread bigint NOT NULL DEFAULT 0;
ALTER TABLE interaction_list ADD COLUMN tags text NOT NULL DEFAULT '[]';
ALTER TABLE interaction_list ADD COLUMN close_reason text;

CREATE TABLE interaction_tags
(
    interaction_id text NOT NULL,
    tag            text NOT NULL,
    PRIMARY KEY (interaction_id, tag)
);
CREATE INDEX interaction_tags_by_tag ON interaction_tags (tag, interaction_id);

-- Live offers of each interaction, any target (projection "interaction_list").
CREATE TABLE interaction_offers
(
    interaction_id text   NOT NULL,
    agent_id       text   NOT NULL,
    attempt        bigint NOT NULL,
    expires_at     bigint NOT NULL,
    PRIMARY KEY (interaction_id, agent_id, attempt)
);
CREATE INDEX interaction_offers_by_agent ON interaction_offers (agent_id);

-- The inactivity minutes each routed interaction copied from its channel rules (projection
-- "timers"), and a way to find an aggregate's timers of one kind.
CREATE TABLE interaction_timing
(
    interaction_id     text PRIMARY KEY,
    inactivity_minutes bigint
);
CREATE INDEX timers_by_aggregate ON timers (aggregate_id, kind, status);
