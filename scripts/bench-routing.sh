#!/usr/bin/env bash
# Switchboard's routing benchmark (issue 4), in one command (see docs/performance.md,
# "Routing"):
#
#     scripts/bench-routing.sh
#
# 1. builds the release binaries (switchboard, loadgen);
# 2. measures PostgreSQL's own insert ceiling on this machine, exactly as scripts/bench.sh
#    does: pgbench inserting one event-shaped row per transaction (scripts/pgbench_events.sql)
#    into a copy of the `events` table, with as many clients as the server has connections;
# 3. for each backend (a fresh PostgreSQL database, then a fresh SQLite file) starts
#    `switchboard serve` and runs `loadgen route`: an account, a queue (round robin), 200
#    agents with capacity 5, each on its own websocket, ready; 10,000 webhooks from 10,000
#    distinct customers; every agent accepts and closes every offer it gets;
# 4. prints a table (also saved under $RESULTS_DIR) and removes the databases and files it
#    created.
#
# Needs: PostgreSQL reachable as postgres@127.0.0.1:5432 (PGHOST/PGPORT/PGUSER override),
# psql, pgbench, jq (and cargo unless SKIP_BUILD); sqlite3 is optional. Takes 2-4 minutes
# plus the build.
#
# Knobs (environment): INTERACTIONS=10000 AGENTS=200 CAPACITY=5 STRATEGY=round_robin
# OFFER_TIMEOUT=30 RATE=0 (webhooks/s for both backends, 0 = as fast as CONCURRENCY allows;
# PG_RATE / SQLITE_RATE override per backend) CONCURRENCY=64 DEADLINE=300
# PGBENCH_CLIENTS=16 PGBENCH_SECONDS=20 BACKENDS="postgres sqlite" BENCH_PORT=18481
# DB_CONNECTIONS=16 SERVER_RUST_LOG="info,sqlx=warn" SKIP_BUILD=1 SKIP_PGBENCH=1
# RESULTS_DIR=/some/dir CARGO_TARGET_DIR (honoured) PG_SSLMODE (default `disable`, as in
# scripts/bench.sh; applied to pgbench and the server alike).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=bench-routing.sh
INTERACTIONS=${INTERACTIONS:-10000}
AGENTS=${AGENTS:-200}
CAPACITY=${CAPACITY:-5}
STRATEGY=${STRATEGY:-round_robin}
OFFER_TIMEOUT=${OFFER_TIMEOUT:-30}
RATE=${RATE:-0}
PG_RATE=${PG_RATE:-$RATE}
SQLITE_RATE=${SQLITE_RATE:-$RATE}
CONCURRENCY=${CONCURRENCY:-64}
DEADLINE=${DEADLINE:-300}
BENCH_PORT=${BENCH_PORT:-18481}
source "$ROOT/scripts/bench-lib.sh"

# ---------------------------------------------------------------------------------------
# 1. build
build_binaries

# ---------------------------------------------------------------------------------------
# machine
describe_machine "$INTERACTIONS interactions, $AGENTS agents (capacity $CAPACITY, $STRATEGY, offer timeout ${OFFER_TIMEOUT} s), webhook rate pg=$PG_RATE sqlite=$SQLITE_RATE (0 = full speed), concurrency $CONCURRENCY; server db pool $DB_CONNECTIONS"

# ---------------------------------------------------------------------------------------
# 2. PostgreSQL's insert ceiling
measure_pg_ceiling

# ---------------------------------------------------------------------------------------
# 3. the server under routing load

run_backend() { # $1 = postgres | sqlite
    local backend=$1 url rate dbname="" datadir=$SCRATCH/$1
    case $backend in
        postgres)
            dbname=sb_bench_routing_$RUN_ID
            create_db "$dbname"
            url="postgres://$PGUSER@$PGHOST:$PGPORT/$dbname$URL_PARAMS"
            rate=$PG_RATE ;;
        sqlite)
            url="sqlite://$datadir/switchboard.db"
            rate=$SQLITE_RATE ;;
        *) echo "bench-routing.sh: unknown backend $backend" >&2; exit 1 ;;
    esac
    log "$backend: starting the server ($url)"
    start_server "$url" "$datadir" "$RESULTS_DIR/server-$backend.log"
    local commits0=0
    [[ $backend == postgres ]] && commits0=$(pg -d "$dbname" -c \
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    log "$backend: loadgen route, webhooks at $rate/s (0 = full speed)"
    "$LOADGEN" route --url "http://127.0.0.1:$BENCH_PORT" --token "$TOKEN" --label "$backend" \
        --interactions "$INTERACTIONS" --agents "$AGENTS" --capacity "$CAPACITY" --strategy "$STRATEGY" \
        --offer-timeout "$OFFER_TIMEOUT" --rate "$rate" --concurrency "$CONCURRENCY" --deadline "$DEADLINE" \
        --server-pid "$SERVER_PID" --json-out "$RESULTS_DIR/$backend.json" \
        | tee "$RESULTS_DIR/loadgen-$backend.txt" | grep -v '^{' >&2
    # What the load appended: the Interaction and Contact aggregates exist only because of it
    # (setup writes Account, Queue and Agent events). On PostgreSQL, distinct tx_id = commits.
    local events commits="" appends=""
    case $backend in
        postgres)
            local commits1
            commits1=$(pg -d "$dbname" -c \
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            commits=$((commits1 - commits0))
            events=$(pg -d "$dbname" -c "SELECT count(*) FROM events WHERE aggregate_type IN ('Interaction', 'Contact')")
            appends=$(pg -d "$dbname" -c "SELECT count(DISTINCT tx_id) FROM events WHERE aggregate_type IN ('Interaction', 'Contact')")
            ;;
        sqlite)
            if command -v sqlite3 >/dev/null; then
                events=$(sqlite3 "$datadir/switchboard.db" \
                    "SELECT count(*) FROM events WHERE aggregate_type IN ('Interaction', 'Contact')")
            else
                events=""
            fi
            ;;
    esac
    stop_server
    jq -c --arg events "$events" --arg appends "$appends" --arg commits "$commits" \
        '. + {load_events: $events, load_appends: $appends, pg_commits: $commits}' \
        "$RESULTS_DIR/$backend.json" > "$RESULTS_DIR/$backend.full.json"
    log "$backend: the load appended $events events (${appends:-?} commits; all PostgreSQL commits: ${commits:-n/a})"
    [[ -n $dbname ]] && drop_db "$dbname"
    rm -rf "$datadir"
}

for backend in $BACKENDS; do
    run_backend "$backend"
done

# ---------------------------------------------------------------------------------------
# 4. the table
{
    cat "$RESULTS_DIR/machine.txt"
    [[ -n $CEILING_TPS ]] && echo "pgbench ceiling: $CEILING_TPS single-row-commit inserts/s at $PGBENCH_CLIENTS clients (avg latency $CEILING_LAT ms)"
    echo
    printf '| %-8s | %6s | %8s | %8s | %6s | %8s | %8s | %8s | %8s | %8s | %7s | %7s | %8s | %8s |\n' \
        backend rate offered offers/s errors p50_ms p95_ms p99_ms max_ms ev/intx peak_MB server% machine% ratio
    printf '|%s|\n' "----------|--------|----------|----------|--------|----------|----------|----------|----------|----------|---------|---------|----------|----------"
    for backend in $BACKENDS; do
        f=$RESULTS_DIR/$backend.full.json
        [[ -f $f ]] || continue
        jq -r --argjson ceiling "${CEILING_TPS:-0}" '
            [ .label, .target_rate, .offered, .offers_per_s, .errors,
              .offer_p50_ms, .offer_p95_ms, .offer_p99_ms, .offer_max_ms,
              (if (.load_events | length) > 0 and .offered > 0
                 then ((.load_events | tonumber) / .offered * 10 | round / 10) else null end),
              .server_vm_hwm_mb, .server_cpu_pct, .machine_busy_pct,
              (if $ceiling > 0 then ((.offers_per_s / $ceiling * 10000 | round) / 10000) else null end) ]
            | @tsv' "$f" \
        | awk -F'\t' '{printf "| %-8s | %6s | %8s | %8s | %6s | %8s | %8s | %8s | %8s | %8s | %7s | %7s | %8s | %8s |\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14}'
    done
    echo
    echo "offers/s = interactions offered / seconds from the first webhook to the last first offer;"
    echo "p*_ms = webhook POST start -> first offer frame on an agent's websocket; ev/intx = events the load appended per offered interaction;"
    echo "ratio = offers/s / pgbench single-row-commit inserts/s (same machine, same run, $PGBENCH_CLIENTS clients)"
    echo "results, server logs and loadgen output: $RESULTS_DIR"
} | tee "$RESULTS_DIR/summary.txt"
