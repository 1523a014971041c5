#!/usr/bin/env bash
# Switchboard's throughput benchmark, in one command (see docs/performance.md):
#
#     scripts/bench.sh
#
# 1. builds the release binaries (switchboard, loadgen);
# 2. measures PostgreSQL's own insert ceiling on this machine: pgbench inserting one
#    event-shaped row per transaction (scripts/pgbench_events.sql) into a copy of the
#    `events` table, with as many clients as the server has event-store connections;
# 3. runs the server on a fresh PostgreSQL database and drives it with loadgen
#    (signed Meta webhooks, 1,000 conversations, target 5,000 msg/s for 60 s + 5 s warm-up);
# 4. the same on a fresh SQLite file (target 2,000 msg/s);
# 5. prints a table (also saved under $RESULTS_DIR) and removes the databases and files it
#    created.
#
# Needs: PostgreSQL reachable as postgres@127.0.0.1:5432 (PGHOST/PGPORT/PGUSER
# override), psql, pgbench, jq (and cargo unless SKIP_BUILD); sqlite3 is optional. Takes about
# 4 minutes plus the build (the PostgreSQL run overruns its 65 s while the server falls behind).
#
# Knobs (environment): PG_RATE=5000 SQLITE_RATE=2000 DURATION=60 WARMUP=5 CONVERSATIONS=1000
# CONCURRENCY=256 PGBENCH_CLIENTS=16 PGBENCH_SECONDS=20 BACKENDS="postgres sqlite"
# BENCH_PORT=18480 DB_CONNECTIONS=16 SERVER_RUST_LOG="info,sqlx=warn" SKIP_BUILD=1
# RESULTS_DIR=/some/dir CARGO_TARGET_DIR (honoured; default: the workspace's target/)
# PG_SSLMODE (default `disable`: the database is on the same host, where TLS only costs CPU;
# set PG_SSLMODE= (empty) for libpq's and sqlx's default `prefer`). It applies to pgbench and
# the server alike, keeping the ratio fair.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=bench.sh
PG_RATE=${PG_RATE:-5000}
SQLITE_RATE=${SQLITE_RATE:-2000}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
CONVERSATIONS=${CONVERSATIONS:-1000}
CONCURRENCY=${CONCURRENCY:-256}
BENCH_PORT=${BENCH_PORT:-18480}
source "$ROOT/scripts/bench-lib.sh"

# ---------------------------------------------------------------------------------------
# 1. build
build_binaries

# ---------------------------------------------------------------------------------------
# machine
describe_machine "$CONVERSATIONS conversations, concurrency $CONCURRENCY, ${WARMUP} s warm-up + ${DURATION} s measured; server db pool $DB_CONNECTIONS"

# ---------------------------------------------------------------------------------------
# 2. PostgreSQL's insert ceiling
measure_pg_ceiling

# ---------------------------------------------------------------------------------------
# 3./4. the server under load

run_backend() { # $1 = postgres | sqlite
    local backend=$1 url rate dbname="" datadir=$SCRATCH/$1
    case $backend in
        postgres)
            dbname=sb_bench_server_$RUN_ID
            create_db "$dbname"
            url="postgres://$PGUSER@$PGHOST:$PGPORT/$dbname$URL_PARAMS"
            rate=$PG_RATE ;;
        sqlite)
            url="sqlite://$datadir/switchboard.db"
            rate=$SQLITE_RATE ;;
        *) echo "bench.sh: unknown backend $backend" >&2; exit 1 ;;
    esac
    log "$backend: starting the server ($url)"
    start_server "$url" "$datadir" "$RESULTS_DIR/server-$backend.log"
    local commits0=0
    [[ $backend == postgres ]] && commits0=$(pg -d "$dbname" -c \
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    log "$backend: loadgen at $rate msg/s"
    if [[ $backend == postgres ]]; then
        ( sleep $((WARMUP + 5)); pg -d postgres -c "SELECT coalesce(string_agg(DISTINCT CASE WHEN s.ssl THEN s.version
              ELSE 'no TLS' END, ','), '?') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = '$dbname'" > "$RESULTS_DIR/server-tls.txt" 2>/dev/null || true ) &
    fi
    "$LOADGEN" --url "http://127.0.0.1:$BENCH_PORT" --token "$TOKEN" --label "$backend" \
        --conversations "$CONVERSATIONS" --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" \
        --concurrency "$CONCURRENCY" --server-pid "$SERVER_PID" \
        --json-out "$RESULTS_DIR/$backend.json" | tee "$RESULTS_DIR/loadgen-$backend.txt" | grep -v '^{' >&2
    # What the run left in the store, and how far behind the interaction list projection was
    # when the load stopped.
    local events received backlog commits=""
    case $backend in
        postgres)
            local commits1
            commits1=$(pg -d "$dbname" -c \
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            commits=$((commits1 - commits0))
            events=$(pg -d "$dbname" -c "SELECT count(*) FROM events")
            received=$(pg -d "$dbname" -c "SELECT count(*) FROM events WHERE event_type = 'CustomerMessageReceived'")
            backlog=$(pg -d "$dbname" -c "SELECT count(*) FROM events e, projection_checkpoints c
                WHERE c.projection = 'interaction_list' AND (e.tx_id, e.global_position) > (c.last_tx_id, c.last_pos)")
            ;;
        sqlite)
            if command -v sqlite3 >/dev/null; then
                local f=$datadir/switchboard.db
                events=$(sqlite3 "$f" "SELECT count(*) FROM events")
                received=$(sqlite3 "$f" "SELECT count(*) FROM events WHERE event_type = 'CustomerMessageReceived'")
                backlog=$(sqlite3 "$f" "SELECT count(*) FROM event_log WHERE global_position >
                    (SELECT last_pos FROM projection_checkpoints WHERE projection = 'interaction_list')")
            else
                events=""; received=""; backlog=""
            fi
            ;;
    esac
    stop_server
    jq -c --arg events "$events" --arg received "$received" --arg backlog "$backlog" --arg commits "$commits" \
        '. + {events_in_log: $events, messages_in_log: $received, projection_backlog: $backlog, pg_commits: $commits}' \
        "$RESULTS_DIR/$backend.json" > "$RESULTS_DIR/$backend.full.json"
    log "$backend: $events events in the log ($received messages), interaction_list backlog at stop: $backlog"
    [[ -n $dbname ]] && drop_db "$dbname"
    rm -rf "$datadir"
}

for backend in $BACKENDS; do
    run_backend "$backend"
done

# ---------------------------------------------------------------------------------------
# 5. the table
{
    cat "$RESULTS_DIR/machine.txt"
    echo "pgbench ceiling: $CEILING_TPS single-row-commit inserts/s at $PGBENCH_CLIENTS clients (avg latency $CEILING_LAT ms; $PGBENCH_TLS)"
    [[ -f $RESULTS_DIR/server-tls.txt ]] && echo "server's PostgreSQL connections: $(cat "$RESULTS_DIR/server-tls.txt")"
    echo
    printf '| %-8s | %6s | %8s | %6s | %6s | %8s | %8s | %8s | %7s | %7s | %8s | %8s |\n' \
        backend target achieved errors unsent p50_ms p99_ms max_ms peak_MB server% machine% ratio
    printf '|%s|\n' "----------|--------|----------|--------|--------|----------|----------|----------|---------|---------|----------|----------"
    for backend in $BACKENDS; do
        f=$RESULTS_DIR/$backend.full.json
        [[ -f $f ]] || continue
        jq -r --argjson ceiling "${CEILING_TPS:-0}" '
            [ .label, .target_rate, .achieved_rate, ([.errors[]] | add // 0), .unsent,
              .p50_ms, .p99_ms, .max_ms, .server_vm_hwm_mb, .server_cpu_pct, .machine_busy_pct,
              (if $ceiling > 0 then ((.achieved_rate / $ceiling * 1000 | round) / 1000) else null end) ]
            | @tsv' "$f" \
        | awk -F'\t' '{printf "| %-8s | %6s | %8s | %6s | %6s | %8s | %8s | %8s | %7s | %7s | %8s | %8s |\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12}'
    done
    echo
    echo "ratio = achieved msg/s / pgbench single-row-commit inserts/s (same machine, same run, $PGBENCH_CLIENTS clients);"
    echo "peak_MB = the server's VmHWM; server% = its CPU (100 = one core); machine% = all cores busy"
    echo "results, server logs and loadgen output: $RESULTS_DIR"
} | tee "$RESULTS_DIR/summary.txt"
