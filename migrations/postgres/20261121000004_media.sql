-- Media and templates (issue 3).
--
-- interaction_messages shows media next to text: what kind, whether the download is done
-- (media_state: pending | stored | unavailable) and the stored blob's name, type and size.
ALTER TABLE interaction_messages ADD COLUMN media_kind text;
ALTER TABLE interaction_messages ADD COLUMN media_state text;
ALTER TABLE interaction_messages ADD COLUMN media_sha256 text;
ALTER TABLE interaction_messages ADD COLUMN media_content_type text;
ALTER TABLE interaction_messages ADD COLUMN media_size bigint;
ALTER TABLE interaction_messages ADD COLUMN media_filename text;
ALTER TABLE interaction_messages ADD COLUMN media_error text;

-- The outbox sends text, media and templates: `kind` says which, `payload` holds the
-- media or template as JSON (`body` keeps the text, the caption or the template name).
ALTER TABLE outbox ADD COLUMN kind text NOT NULL DEFAULT 'text';
ALTER TABLE outbox ADD COLUMN payload text;

-- Customer media to download (projection "media_fetch" enqueues; the fetcher claims rows
-- with a lease, downloads into the blob store and records the outcome on the interaction).
CREATE TABLE media_fetch
(
    message_id      text PRIMARY KEY,
    interaction_id  text   NOT NULL,
    account_id      text   NOT NULL,
    source          text   NOT NULL,
    content_type    text,
    status          text   NOT NULL DEFAULT 'pending',
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    locked_until    bigint,
    last_error      text,
    created_at      bigint NOT NULL
);
CREATE INDEX media_fetch_due ON media_fetch (status, next_attempt_at);
