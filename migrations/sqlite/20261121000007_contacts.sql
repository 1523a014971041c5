-- Contact manager (issue 5): lists and contact cards (projection "contacts").
--
-- Derived from the ContactList and ContactCard events and emptied by the projection's
-- rebuild. Times are epoch milliseconds.

CREATE TABLE contact_lists
(
    list_id     text PRIMARY KEY,
    name        text   NOT NULL,
    description text,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);

-- One row per live card. `search` is the lower-cased name, phone and email, for the
-- "contains" search; tags and custom fields are JSON for display.
CREATE TABLE contact_cards
(
    card_id    text PRIMARY KEY,
    list_id    text   NOT NULL,
    phone      text   NOT NULL,
    name       text,
    email      text,
    tags       text   NOT NULL DEFAULT '[]',
    fields     text   NOT NULL DEFAULT '{}',
    created_by text   NOT NULL,
    search     text   NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);
-- Which lists hold a number: the one indexed lookup ingest makes when a message opens a
-- new interaction.
CREATE UNIQUE INDEX contact_cards_by_phone ON contact_cards (phone, list_id);
-- A list's contacts in a stable order (paging).
CREATE INDEX contact_cards_by_list ON contact_cards (list_id, created_at, card_id);

-- Tags, one row each, for the tag filter.
CREATE TABLE contact_card_tags
(
    card_id text NOT NULL,
    tag     text NOT NULL,
    PRIMARY KEY (card_id, tag)
);
CREATE INDEX contact_card_tags_by_tag ON contact_card_tags (tag, card_id);
