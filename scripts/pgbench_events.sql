-- pgbench transaction for PostgreSQL's insert ceiling: one row shaped like a Switchboard
-- event (a CustomerMessageReceived: ~320-byte JSON payload plus ~130-byte metadata) inserted
-- into a copy of the `events` table, one row per transaction, committed synchronously, as
-- postgres-es appends a one-event command. scripts/bench.sh runs it against a scratch
-- database holding `bench_events` (same columns, defaults, generated provider_key and
-- indexes as migrations/postgres/20260101000001_events.sql) and the sequence `bench_seq`.
-- 1,000 aggregates ("conversations"); `bench_seq` keeps both the primary key and the
-- provider-key index unique.
-- (pgbench -M prepared turns every ":word" into a parameter, so the ':' inside the JSON
-- text is spelled chr(58) where a letter follows it.)
\set conv random(1, 1000)
INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Interaction', c.id, c.n, 'CustomerMessageReceived', '1.0',
       format('{"CustomerMessageReceived":{"account_id":"0199c2a4-6c3e-7d10-9f6e-4a1b2c3d4e5f","message_id":"%s","provider_message_id":"wamid.PGBENCH.%s","content":{"Text":{"body":"Hi, I need help with order %s"}},"sent_at":%s,"at":%s}}',
              gen_random_uuid(), c.n, c.n, to_json(now()), to_json(clock_timestamp()))::json,
       format('{"occurred_at":%s,"caused_by":"provider%smeta","correlation_id":"wamid.PGBENCH.%s"}',
              to_json(now()), chr(58), c.n)::json
  FROM (SELECT '0199c2a4-6c3e-7d10-' || lpad(CAST(:conv AS text), 17, '0') AS id,
               nextval('bench_seq') AS n) AS c;
