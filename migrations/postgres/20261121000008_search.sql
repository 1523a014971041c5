-- Interaction search (issue 6): full-text over message bodies and keyset-friendly indexes.
--
-- Full text: a generated tsvector over interaction_messages.body with the `simple`
-- configuration (lower-cased words, no stemming and no stop words: the bodies are in any
-- language, and a supervisor looking for "refunds" expects that word, not "refund"). Being a
-- generated column it follows every insert, update (erasure redacts bodies) and delete
-- (rebuild, interaction deletion) with no projection code.
ALTER TABLE interaction_messages
    ADD COLUMN body_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX interaction_messages_body_tsv ON interaction_messages USING GIN (body_tsv);

-- Keyset pagination: the list is ordered by (sort key, interaction_id). Nullable sort keys are
-- compared through COALESCE(key, -1) (never a real epoch-ms time) so the cursor is one pair.
CREATE INDEX interaction_list_opened ON interaction_list (opened_at, interaction_id);
CREATE INDEX interaction_list_last_message ON interaction_list ((COALESCE(last_message_at, -1)), interaction_id);
CREATE INDEX interaction_list_closed ON interaction_list ((COALESCE(closed_at, -1)), interaction_id);
CREATE INDEX interaction_list_queue ON interaction_list (queue_id, opened_at);
