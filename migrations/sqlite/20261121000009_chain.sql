-- The per-aggregate hash chain (issue 6, audit; ADR 0018). Same columns and formula as the
-- PostgreSQL migration (see there and src/audit/chain.rs). SQLite has no SHA-256 in SQL, so
-- appends compute `hash` in Rust (src/db.rs `sqlite_append`), and legacy rows are chained
-- once by Rust at the first start after this migration (`chain_backfill.done` = 0 until
-- then); afterwards a row without a hash is tampering and the verifier reports it.
ALTER TABLE events ADD COLUMN prev_hash text;
ALTER TABLE events ADD COLUMN hash text;

CREATE TABLE chain_backfill
(
    id   integer PRIMARY KEY CHECK (id = 1),
    done integer NOT NULL
) STRICT;
INSERT INTO chain_backfill (id, done) VALUES (1, 0);
