-- Crypto-shredding of personal data (ADR 0020).
--
-- `pii_keys`: one random AES-256 key per data subject (a contact: `{account}:{keyed hash of
-- the phone}`, or a directory card: `card:{card_id}`), stored sealed with the master key.
-- Erasure sets `sealed_key` to NULL: the key is gone, the row stays as the record of when.
-- A subject that comes back after erasure gets a fresh key (a new row).
CREATE TABLE pii_keys
(
    kid        text PRIMARY KEY,
    subject    text   NOT NULL,
    sealed_key text,
    created_at bigint NOT NULL,
    erased_at  bigint
);
CREATE INDEX pii_keys_by_subject ON pii_keys (subject);

-- Which key seals an aggregate's personal fields: decided by its first event (an
-- interaction's customer, a card's phone), looked up for every later event.
CREATE TABLE pii_aggregates
(
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    kid            text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Small secrets of the PII layer, sealed with the master key: the pepper of the keyed hash
-- that makes Contact aggregate ids pseudonymous.
CREATE TABLE pii_secrets
(
    name   text PRIMARY KEY,
    sealed text NOT NULL
);

-- Blobs whose deletion was requested by an erasure or a deletion: the handler deletes the
-- files after the event and removes the row; what remains is retried at start-up.
CREATE TABLE blob_deletions
(
    sha256       text PRIMARY KEY,
    requested_at bigint NOT NULL
);
