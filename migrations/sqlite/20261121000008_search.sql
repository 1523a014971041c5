-- Interaction search (issue 6): full-text over message bodies and keyset-friendly indexes.
--
-- Full text: an FTS5 external-content index over interaction_messages.body, kept in step by
-- triggers, so inserts, body updates (erasure redacts bodies) and deletes (rebuild,
-- interaction deletion) need no projection code. `unicode61 remove_diacritics 0` lower-cases
-- and splits on non-alphanumerics without folding accents: the same words PostgreSQL's
-- `simple` configuration yields, so both stores answer alike.
--
-- The FTS rowid is NOT interaction_messages' implicit rowid: VACUUM may renumber implicit
-- rowids (the table's key is text), which would silently point the index at other messages.
-- `fts_id` is a stored column, given once at insert (max + 1, indexed), that VACUUM keeps.
ALTER TABLE interaction_messages ADD COLUMN fts_id INTEGER;
UPDATE interaction_messages SET fts_id = rowid;
CREATE UNIQUE INDEX interaction_messages_fts_id ON interaction_messages (fts_id);

CREATE VIRTUAL TABLE interaction_messages_fts USING fts5(
    body,
    content = 'interaction_messages',
    content_rowid = 'fts_id',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO interaction_messages_fts (interaction_messages_fts) VALUES ('rebuild');

CREATE TRIGGER interaction_messages_fts_insert AFTER INSERT ON interaction_messages
BEGIN
    UPDATE interaction_messages
       SET fts_id = (SELECT COALESCE(MAX(fts_id), 0) + 1 FROM interaction_messages)
     WHERE rowid = new.rowid;
    INSERT INTO interaction_messages_fts (rowid, body)
    SELECT fts_id, body FROM interaction_messages WHERE rowid = new.rowid;
END;

CREATE TRIGGER interaction_messages_fts_delete AFTER DELETE ON interaction_messages
BEGIN
    INSERT INTO interaction_messages_fts (interaction_messages_fts, rowid, body)
    VALUES ('delete', old.fts_id, old.body);
END;

CREATE TRIGGER interaction_messages_fts_update AFTER UPDATE OF body ON interaction_messages
BEGIN
    INSERT INTO interaction_messages_fts (interaction_messages_fts, rowid, body)
    VALUES ('delete', old.fts_id, old.body);
    INSERT INTO interaction_messages_fts (rowid, body) VALUES (new.fts_id, new.body);
END;

-- Keyset pagination: the list is ordered by (sort key, interaction_id). Nullable sort keys are
-- compared through COALESCE(key, -1) (never a real epoch-ms time) so the cursor is one pair.
CREATE INDEX interaction_list_opened ON interaction_list (opened_at, interaction_id);
CREATE INDEX interaction_list_last_message ON interaction_list ((COALESCE(last_message_at, -1)), interaction_id);
CREATE INDEX interaction_list_closed ON interaction_list ((COALESCE(closed_at, -1)), interaction_id);
CREATE INDEX interaction_list_queue ON interaction_list (queue_id, opened_at);
