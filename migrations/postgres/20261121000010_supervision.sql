-- Supervision (issue 6): internal notes (projection "notes") and the facts the realtime and
-- historical figures are computed from (projection "performance").
--
-- Derived from the Interaction events and emptied by the projections' rebuild. Times are
-- epoch milliseconds. The facts hold ids and times only (no personal data): erasing a
-- contact leaves them, deleting an interaction keeps its workload counted (ADR 0019).

-- Internal notes: agents and supervisors read them, the customer never receives them.
CREATE TABLE interaction_notes
(
    note_id         text PRIMARY KEY,
    interaction_id  text   NOT NULL,
    -- `agent` or `supervisor`.
    author_kind     text   NOT NULL,
    author_agent_id text,
    author_label    text,
    text            text   NOT NULL,
    at              bigint NOT NULL
);
CREATE INDEX interaction_notes_by_interaction ON interaction_notes (interaction_id, at, note_id);

-- One row per assignment of an interaction to an agent (a transfer ends one and starts
-- another). `outcome`: NULL while the agent owns it, `closed` when it closed in their hands
-- (a handled interaction), `transferred` when another agent took it.
CREATE TABLE agent_interaction_facts
(
    interaction_id    text   NOT NULL,
    agent_id          text   NOT NULL,
    assigned_at       bigint NOT NULL,
    -- The agent's first message (text, media or template) after the assignment.
    first_response_at bigint,
    ended_at          bigint,
    outcome           text,
    PRIMARY KEY (interaction_id, assigned_at, agent_id)
);
CREATE INDEX agent_interaction_facts_open ON agent_interaction_facts (interaction_id, ended_at);
CREATE INDEX agent_interaction_facts_ended ON agent_interaction_facts (ended_at, agent_id);
CREATE INDEX agent_interaction_facts_responded ON agent_interaction_facts (first_response_at, agent_id);

-- One row per offer. `outcome`: NULL while pending, then `accepted`, `rejected`,
-- `timed_out` (a missed offer) or `withdrawn`.
CREATE TABLE offer_facts
(
    interaction_id text   NOT NULL,
    agent_id       text   NOT NULL,
    attempt        bigint NOT NULL,
    offered_at     bigint NOT NULL,
    decided_at     bigint,
    outcome        text,
    PRIMARY KEY (interaction_id, agent_id, attempt)
);
CREATE INDEX offer_facts_decided ON offer_facts (decided_at, agent_id);
