#!/usr/bin/env bash
# Switchboard's supervision benchmark (issue 6), in one command (see docs/performance.md,
# "Supervision"):
#
#     scripts/bench-supervision.sh
#
# 1. builds the release binaries (switchboard, loadgen);
# 2. measures the machine's ceilings in the same run: PostgreSQL's single-row-commit insert
#    rate (pgbench, as scripts/bench.sh) and, after seeding, PostgreSQL's own rate of reading
#    the interaction rows out (`COPY (SELECT ...) TO STDOUT`), which is what an export can at
#    best approach;
# 3. for each backend: starts `switchboard serve` on a fresh database, `loadgen seed` puts
#    INTERACTIONS (default 1,000,000) interactions with two messages each into the read model
#    (accounts and an agent are real, made through the API), then `loadgen query` times the
#    list (filters, 20 keyset pages, as an agent), full-text, the advanced search and the whole
#    CSV export while sampling the server's memory;
# 4. rebuild speed: a fresh database per backend takes REBUILD_SECONDS of the ingestion load
#    (real signed webhooks), the server stops, and `switchboard rebuild-projections` replays
#    the whole log: events/s;
# 5. prints a table (also saved under $RESULTS_DIR) and removes what it created.
#
# Needs: PostgreSQL as postgres@127.0.0.1:5432 (PGHOST/PGPORT/PGUSER), psql, pgbench, jq,
# sqlite3 (and cargo unless SKIP_BUILD). Knobs: INTERACTIONS=1000000 ITERATIONS=50
# REBUILD_SECONDS=20 BACKENDS="postgres sqlite" BENCH_PORT=18482 SKIP_BUILD=1 SKIP_PGBENCH=1
# SKIP_REBUILD=1 RESULTS_DIR=... DB_CONNECTIONS=16.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=bench-supervision.sh
INTERACTIONS=${INTERACTIONS:-1000000}
ITERATIONS=${ITERATIONS:-50}
REBUILD_SECONDS=${REBUILD_SECONDS:-20}
BENCH_PORT=${BENCH_PORT:-18482}
source "$ROOT/scripts/bench-lib.sh"
command -v sqlite3 >/dev/null || { echo "$BENCH_NAME: sqlite3 is required" >&2; exit 1; }

build_binaries
describe_machine "$INTERACTIONS seeded interactions (2 messages each), $ITERATIONS requests per query kind; rebuild after ${REBUILD_SECONDS} s of ingestion"
measure_pg_ceiling

db_url() { # $1 backend, $2 name -> url (creates the PG database)
    case $1 in
        postgres) create_db "$2"; echo "postgres://$PGUSER@$PGHOST:$PGPORT/$2$URL_PARAMS" ;;
        sqlite) echo "sqlite://$SCRATCH/$2/switchboard.db" ;;
    esac
}

run_queries() { # $1 backend
    local backend=$1 name=sb_bench_sup_$RUN_ID url
    url=$(db_url "$backend" "$name")
    log "$backend: starting the server ($url)"
    start_server "$url" "$SCRATCH/$name" "$RESULTS_DIR/server-$backend.log"
    log "$backend: seeding $INTERACTIONS interactions"
    "$LOADGEN" seed --url "http://127.0.0.1:$BENCH_PORT" --token "$TOKEN" --database-url "$url" \
        --interactions "$INTERACTIONS" --json-out "$RESULTS_DIR/seed-$backend.json" >&2
    # A fresh server after the bulk load: its pooled connections read the planner statistics
    # the seed gathered (SQLite loads them when a connection reads the schema; in service the
    # hourly ANALYZE and connection recycling converge to the same state).
    stop_server
    start_server "$url" "$SCRATCH/$name" "$RESULTS_DIR/server-$backend-queries.log"
    if [[ $backend == postgres ]]; then
        # The machine's own read-out rate for the same rows and columns the export writes.
        local t0 t1 rows
        t0=$(date +%s.%N)
        rows=$(pg -d "$name" -c "COPY (SELECT interaction_id, account_id, status, customer, customer_name, queue_id,
            agent_id, opened_at, assigned_at, closed_at, disposed_at, disposition, tags, message_count, unread_count,
            last_message_at, last_message_preview FROM interaction_list ORDER BY opened_at DESC, interaction_id DESC)
            TO STDOUT WITH CSV HEADER" | wc -l)
        t1=$(date +%s.%N)
        COPY_RATE=$(echo "($rows - 1) / ($t1 - $t0)" | bc -l | xargs printf '%.0f')
        log "postgres: COPY ceiling $COPY_RATE rows/s"
    fi
    "$LOADGEN" query --url "http://127.0.0.1:$BENCH_PORT" --token "$TOKEN" --seed "$RESULTS_DIR/seed-$backend.json" \
        --iterations "$ITERATIONS" --server-pid "$SERVER_PID" --label "$backend" \
        --json-out "$RESULTS_DIR/query-$backend.json" >&2
    local hwm
    hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "")
    echo "$hwm" > "$RESULTS_DIR/hwm-$backend.txt"
    stop_server
    [[ $backend == postgres ]] && drop_db "$name"
    rm -rf "${SCRATCH:?}/$name"
}

run_rebuild() { # $1 backend
    local backend=$1 name=sb_bench_rb_$RUN_ID url events t0 t1
    url=$(db_url "$backend" "$name")
    start_server "$url" "$SCRATCH/$name" "$RESULTS_DIR/server-rebuild-$backend.log"
    log "$backend: ${REBUILD_SECONDS} s of ingestion to build a log"
    "$LOADGEN" --url "http://127.0.0.1:$BENCH_PORT" --token "$TOKEN" --rate 5000 --duration "$REBUILD_SECONDS" \
        --warmup 1 --conversations 20000 --label "$backend" > "$RESULTS_DIR/ingest-$backend.txt" 2>&1
    stop_server
    case $backend in
        postgres) events=$(pg -d "$name" -c "SELECT count(*) FROM events") ;;
        sqlite) events=$(sqlite3 "$SCRATCH/$name/switchboard.db" "SELECT count(*) FROM events") ;;
    esac
    log "$backend: rebuilding every projection from $events events"
    t0=$(date +%s.%N)
    SWITCHBOARD_DATABASE_URL=$url SWITCHBOARD_DATA_DIR=$SCRATCH/$name RUST_LOG=warn \
        "$SWITCHBOARD" rebuild-projections > "$RESULTS_DIR/rebuild-$backend.txt" 2>&1
    t1=$(date +%s.%N)
    echo "{\"events\": $events, \"seconds\": $(echo "$t1 - $t0" | bc -l)}" > "$RESULTS_DIR/rebuild-$backend.json"
    [[ $backend == postgres ]] && drop_db "$name"
    rm -rf "${SCRATCH:?}/$name"
}

COPY_RATE=""
for backend in $BACKENDS; do
    run_queries "$backend"
    [[ -n ${SKIP_REBUILD:-} ]] || run_rebuild "$backend"
done

{
    cat "$RESULTS_DIR/machine.txt"
    [[ -n $CEILING_TPS ]] && echo "pgbench ceiling: $CEILING_TPS single-row-commit inserts/s at $PGBENCH_CLIENTS clients"
    [[ -n $COPY_RATE ]] && echo "PostgreSQL COPY ceiling (same rows and columns as the export): $COPY_RATE rows/s"
    echo
    printf '| %-8s | %-26s | %9s | %9s | %9s | %6s |\n' backend query p50_ms p99_ms max_ms rows
    printf '|%s|\n' "----------|----------------------------|-----------|-----------|-----------|--------"
    for backend in $BACKENDS; do
        f=$RESULTS_DIR/query-$backend.json
        [[ -f $f ]] || continue
        jq -r --arg b "$backend" '.queries | to_entries[] | select(.key != "export")
            | [$b, .key, .value.p50_ms, .value.p99_ms, .value.max_ms, .value.rows] | @tsv' "$f" \
            | awk -F'\t' '{printf "| %-8s | %-26s | %9s | %9s | %9s | %6s |\n", $1,$2,$3,$4,$5,$6}'
    done
    echo
    printf '| %-8s | %9s | %9s | %10s | %8s | %12s | %12s | %12s | %10s |\n' backend rows seconds rows/s vs_COPY rss_before_MB rss_peak_MB server_hwm_MB rebuild_ev/s
    printf '|%s|\n' "----------|-----------|-----------|------------|----------|--------------|--------------|--------------|------------"
    for backend in $BACKENDS; do
        f=$RESULTS_DIR/query-$backend.json
        [[ -f $f ]] || continue
        rb=""
        [[ -f $RESULTS_DIR/rebuild-$backend.json ]] && rb=$(jq -r '(.events / .seconds) | floor' "$RESULTS_DIR/rebuild-$backend.json")
        jq -r --arg b "$backend" --arg copy "${COPY_RATE:-0}" --arg hwm "$(cat "$RESULTS_DIR/hwm-$backend.txt")" --arg rb "$rb" '.queries.export
            | [$b, .rows, .seconds, .rows_per_s,
               (if ($copy | tonumber) > 0 then ((.rows_per_s / ($copy | tonumber) * 1000 | round) / 1000) else null end),
               .server_rss_before_mb, .server_rss_peak_mb, $hwm, $rb] | @tsv' "$f" \
            | awk -F'\t' '{printf "| %-8s | %9s | %9s | %10s | %8s | %12s | %12s | %12s | %10s |\n", $1,$2,$3,$4,$5,$6,$7,$8,$9}'
    done
    for backend in $BACKENDS; do
        f=$RESULTS_DIR/rebuild-$backend.json
        [[ -f $f ]] || continue
        jq -r --arg b "$backend" --arg ceiling "${CEILING_TPS:-0}" '"rebuild \($b): \(.events) events in \(.seconds * 100 | round / 100) s = \((.events / .seconds) | floor) events/s"
            + (if ($ceiling | tonumber) > 0 then " (ratio to the pgbench insert ceiling: \(((.events / .seconds) / ($ceiling | tonumber) * 100 | round) / 100))" else "" end)' "$f"
    done
    echo "results, server logs and loadgen output: $RESULTS_DIR"
} | tee "$RESULTS_DIR/summary.txt"
