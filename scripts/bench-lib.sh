# Shared by scripts/bench.sh and scripts/bench-routing.sh (sourced, not run): connection
# settings, clean-up, database helpers, the release build, the machine facts, PostgreSQL's
# insert ceiling (the figure every benchmark is compared with) and starting/stopping the
# server. The caller sets BENCH_NAME, ROOT and its own knobs first.

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB_CONNECTIONS=${DB_CONNECTIONS:-16}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-$DB_CONNECTIONS}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
BACKENDS=${BACKENDS:-postgres sqlite}
SERVER_RUST_LOG=${SERVER_RUST_LOG:-info,sqlx=warn}
PG_SSLMODE=${PG_SSLMODE-disable}
URL_PARAMS=""
if [[ -n $PG_SSLMODE ]]; then
    export PGSSLMODE=$PG_SSLMODE
    URL_PARAMS="?sslmode=$PG_SSLMODE"
fi
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/switchboard-$BENCH_NAME.XXXXXX")}
mkdir -p "$RESULTS_DIR"
RUN_ID=$(date +%s)_$$
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-$BENCH_NAME-data.XXXXXX")

PGBENCH=$(command -v pgbench || true)
if [[ -z $PGBENCH ]]; then
    PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -1 || true)
fi
tools="psql jq"
[[ -n ${SKIP_BUILD:-} ]] || tools+=" cargo"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool is required" >&2; exit 1; }
done
[[ -n ${SKIP_PGBENCH:-} || -n $PGBENCH ]] \
    || { echo "$BENCH_NAME: pgbench is required (postgresql-contrib / postgresql-NN)" >&2; exit 1; }

log() { printf '[%s %(%H:%M:%S)T] %s\n' "$BENCH_NAME" -1 "$*" >&2; }

SERVER_PID=""
CREATED_DBS=()
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    for db in "${CREATED_DBS[@]}"; do
        psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

create_db() {
    pg -d postgres -c "CREATE DATABASE $1" >/dev/null
    CREATED_DBS+=("$1")
}

drop_db() {
    pg -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}

# Builds (unless SKIP_BUILD) and locates the release binaries: SWITCHBOARD, LOADGEN.
build_binaries() {
    if [[ -z ${SKIP_BUILD:-} ]]; then
        log "building release binaries into $TARGET_DIR"
        (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --bin switchboard --bin loadgen)
    fi
    SWITCHBOARD=$TARGET_DIR/release/switchboard
    LOADGEN=$TARGET_DIR/release/loadgen
    [[ -x $SWITCHBOARD && -x $LOADGEN ]] \
        || { echo "$BENCH_NAME: binaries missing in $TARGET_DIR/release" >&2; exit 1; }
}

# Writes the machine facts and the caller's load description ($1) to machine.txt.
describe_machine() {
    PG_VERSION=$(pg -d postgres -c "SHOW server_version")
    local settings mem cpu rev dirty
    settings=$(pg -d postgres -F' ' -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name)
        FROM pg_settings WHERE name IN ('synchronous_commit','fsync','wal_sync_method','shared_buffers',
        'max_connections','commit_delay')")
    mem=$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
    cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
    rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+dirty" || true)
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit: $rev$dirty"
        echo "machine: $(nproc) cores ($cpu), ${mem} GiB RAM, $(uname -sr)"
        echo "postgresql: $PG_VERSION ($settings)"
        echo "load: $1"
    } | tee "$RESULTS_DIR/machine.txt" >&2
}

# PostgreSQL's own insert ceiling on this machine: pgbench inserting one event-shaped row per
# transaction (scripts/pgbench_events.sql) into a copy of the `events` table. Sets CEILING_TPS,
# CEILING_LAT, CEILING_ROWS and PGBENCH_TLS (all empty with SKIP_PGBENCH).
measure_pg_ceiling() {
    CEILING_TPS="" CEILING_LAT="" CEILING_ROWS="" PGBENCH_TLS=""
    [[ -z ${SKIP_PGBENCH:-} ]] || return 0
    local db=sb_bench_pgbench_$RUN_ID pid
    create_db "$db"
    # The events table's DDL from the migration, renamed (the snapshot/checkpoint tables after
    # it are not needed).
    sed -e 's/CREATE TABLE events/CREATE TABLE bench_events/' \
        -e 's/ ON events / ON bench_events /' \
        -e 's/INDEX events_/INDEX bench_events_/' \
        "$ROOT/migrations/postgres/20260101000001_events.sql" \
        | awk '/CREATE TABLE snapshots/ {exit} {print}' > "$SCRATCH/bench_events.sql"
    pg -d "$db" -f "$SCRATCH/bench_events.sql" -c "CREATE SEQUENCE bench_seq" >/dev/null
    log "pgbench: $PGBENCH_CLIENTS clients, one event-shaped row per transaction, ${PGBENCH_SECONDS} s"
    "$PGBENCH" -n -M prepared -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_SECONDS" -P 5 \
        -f "$ROOT/scripts/pgbench_events.sql" "$db" > "$RESULTS_DIR/pgbench.txt" 2>&1 &
    pid=$!
    sleep 1
    PGBENCH_TLS=$(pg -d postgres -c "SELECT coalesce(string_agg(DISTINCT CASE WHEN s.ssl THEN s.version
        ELSE 'no TLS' END, ','), '?') FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = '$db'")
    wait "$pid" || { cat "$RESULTS_DIR/pgbench.txt" >&2; exit 1; }
    CEILING_TPS=$(awk '/^tps = / {printf "%.0f", $3}' "$RESULTS_DIR/pgbench.txt")
    CEILING_LAT=$(awk '/^latency average/ {print $4}' "$RESULTS_DIR/pgbench.txt")
    CEILING_ROWS=$(pg -d "$db" -c "SELECT count(*) FROM bench_events")
    log "pgbench ceiling: $CEILING_TPS inserts/s (avg latency $CEILING_LAT ms, $CEILING_ROWS rows, connections: $PGBENCH_TLS)"
    drop_db "$db"
}

# Starts `switchboard serve` on BENCH_PORT: $1 = database url, $2 = data dir, $3 = log file.
# Sets SERVER_PID and TOKEN (an admin token).
start_server() {
    mkdir -p "$2"
    TOKEN=$(SWITCHBOARD_DATABASE_URL=$1 SWITCHBOARD_DATA_DIR=$2 RUST_LOG=warn \
        "$SWITCHBOARD" create-token --role admin --label bench | tail -1)
    SWITCHBOARD_DATABASE_URL=$1 SWITCHBOARD_DATA_DIR=$2 SWITCHBOARD_DB_CONNECTIONS=$DB_CONNECTIONS \
        RUST_LOG=$SERVER_RUST_LOG "$SWITCHBOARD" serve --bind "127.0.0.1:$BENCH_PORT" > "$3" 2>&1 &
    SERVER_PID=$!
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
