-- The per-aggregate hash chain (issue 6, audit; ADR 0018).
--
-- Every event stores `prev_hash` (its predecessor's `hash`, or 64 zeros for the first event
-- of an aggregate) and `hash`, the lowercase hex SHA-256 of
--   prev_hash \n aggregate_type \n aggregate_id \n sequence \n event_type \n event_version
--   \n payload \n metadata
-- where payload and metadata are the stored JSON text, byte for byte (the columns are `json`,
-- not `jsonb`, so PostgreSQL keeps the text exactly as inserted). `src/audit/chain.rs`
-- computes the same formula in Rust; SQLite (no SHA-256 in SQL) appends through Rust.
--
-- Only INSERT computes hashes: an UPDATE of a stored event leaves `hash` stale, which is
-- exactly what `switchboard verify` detects.
ALTER TABLE events ADD COLUMN prev_hash text;
ALTER TABLE events ADD COLUMN hash text;

CREATE FUNCTION events_chain_hash(prev text, e events) RETURNS text
    LANGUAGE sql IMMUTABLE AS
$$
SELECT encode(sha256(convert_to(
    prev || E'\n' || e.aggregate_type || E'\n' || e.aggregate_id || E'\n' || e.sequence::text || E'\n' ||
    e.event_type || E'\n' || e.event_version || E'\n' || e.payload::text || E'\n' || e.metadata::text,
    'UTF8')), 'hex')
$$;

-- Reads the predecessor by primary key. Rows inserted earlier by the same statement (a
-- multi-row append) are visible to a BEFORE ROW trigger, so a batch chains within itself.
-- A missing predecessor (only possible after tampering) chains to zeros rather than refusing
-- the append: the verifier reports the gap, the service keeps working.
CREATE FUNCTION events_chain() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    prev text;
BEGIN
    SELECT hash INTO prev FROM events
     WHERE aggregate_type = NEW.aggregate_type AND aggregate_id = NEW.aggregate_id
       AND sequence = NEW.sequence - 1;
    NEW.prev_hash := COALESCE(prev, repeat('0', 64));
    NEW.hash := events_chain_hash(NEW.prev_hash, NEW);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_chain();

-- Legacy rows: chained once, here, in aggregate and sequence order. After this migration a
-- row without a hash can only come from tampering, and the verifier reports it
-- (`missing_hash`). `chain_backfill` records that the one-off backfill ran (SQLite's runs in
-- Rust at the first start, see src/db.rs).
DO
$$
DECLARE
    r    events;
    prev text := NULL;
    last_type text := NULL;
    last_id   text := NULL;
    h    text;
BEGIN
    FOR r IN SELECT * FROM events ORDER BY aggregate_type, aggregate_id, sequence LOOP
        IF last_type IS DISTINCT FROM r.aggregate_type OR last_id IS DISTINCT FROM r.aggregate_id THEN
            prev := repeat('0', 64);
        END IF;
        h := events_chain_hash(prev, r);
        UPDATE events SET prev_hash = prev, hash = h
         WHERE aggregate_type = r.aggregate_type AND aggregate_id = r.aggregate_id AND sequence = r.sequence;
        prev := h;
        last_type := r.aggregate_type;
        last_id := r.aggregate_id;
    END LOOP;
END
$$;

CREATE TABLE chain_backfill
(
    id   integer PRIMARY KEY CHECK (id = 1),
    done bigint NOT NULL
);
INSERT INTO chain_backfill (id, done) VALUES (1, 1);
