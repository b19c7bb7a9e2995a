#!/usr/bin/env bash
# The REST API's two targets, in one run on a throwaway PostgreSQL:
#  1. session lookup by username over ROWS session rows (default 10 million): api-load at
#     500 requests/s of `GET /api/v1/sessions?username=…&limit=50`, median and p99;
#  2. the data plane's cost: RADIUS PAP throughput alone, then again while api-load keeps
#     the API at 500 requests/s (the same lookups), and the ratio;
#  3. three controls, to tell the API's work from what this machine charges for any process
#     that wakes that often on the same cores: RADIUS while `api-load --dry` keeps the same
#     schedule on the same threads and sends nothing; while the server answers 500
#     `/health/live` a second (an HTTP exchange, no database, no token); and while it
#     answers 500 lookups a second of subscribers who have no sessions (the whole request
#     with its database round trip, without the rows);
#  4. the same lookups with `fields=` asking for seven of the 34 fields (who was online, from
#     where, with which address, when, and how much), as a report or a support screen would:
#     a line of its own, not the target's.
#
#   benches/api_bench.sh [ROWS=10000000] [SECONDS=8] [ROUNDS=3]
#
# Rows: 100,000 subscribers with ROWS/100,000 closed sessions each, start times spread over
# a year, as `generate_series` writes them (indexes built after the load, as a restore does).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}; SECONDS_EACH=${2:-8}; ROUNDS=${3:-3}
USERS=100000; SECRET=testing123
PGPORT=55436; EDGE_PORT=24812; EDGE_ACCT_PORT=24813; EDGE_HTTP=28084
. benches/common.sh
# A production PostgreSQL gives its buffer cache a good share of memory (the usual advice is a
# quarter); the default 128 MB would make every lookup of 50 rows read 50 pages through the
# kernel. 4 GB holds the 3.2 GB table, which is read in once below (pg_prewarm), as a
# long-running server's cache would hold it. With a buffer cache this large, PostgreSQL's
# documentation advises huge pages: finding a buffer and reading its page were a third of
# PostgreSQL's time per lookup, mostly TLB and cache misses, and huge pages cut its CPU per
# lookup by about 30% (benches/common.sh reserves them for the run when it may).
PG_SETTINGS="-c shared_buffers=4GB"; PG_HUGE_PAGES=1
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
work_and_postgres edge-api $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge"
export EDGE_DATABASE_URL=$PG/edge
edge_nas_and_users $USERS

loaded=$(date +%s)
# The migrations' indexes, dropped for the load and built again after it from their own
# definitions (so the benchmark always measures the indexes the migrations make).
indexes=$(psql "$PG/edge" -Atc "SELECT string_agg(pg_get_indexdef(indexrelid), '; ') || ';'
  FROM pg_index WHERE indrelid = 'sessions'::regclass AND NOT indisprimary")
drop=$(psql "$PG/edge" -Atc "SELECT 'DROP INDEX ' || string_agg(indexrelid::regclass::text, ', ')
  || ';' FROM pg_index WHERE indrelid = 'sessions'::regclass AND NOT indisprimary")
psql "$PG/edge" -q <<SQL
SET maintenance_work_mem = '1GB';
$drop
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
INSERT INTO sessions (acct_session_id, acct_unique_id, username, nas_ip_address,
    acct_start_time, acct_update_time, acct_stop_time, acct_session_time, acct_input_octets,
    acct_output_octets, framed_ip_address, calling_station_id, acct_terminate_cause, last_seen,
    start_reported)
SELECT to_hex(g), md5(g::text), 'user' || lpad((g % $USERS)::text, 6, '0'), '127.0.0.1',
    1700000000 + g * (31536000 / $ROWS), 1700000000 + g * (31536000 / $ROWS) + 600,
    1700000000 + g * (31536000 / $ROWS) + 3600, 3600, g * 7 % 1000000000, g * 13 % 1000000000,
    '100.64.' || (g % 250) || '.' || (g / 250 % 250), 'aa-bb-cc-' || to_hex(g % 4096),
    'User-Request', 1700000000 + g * (31536000 / $ROWS) + 3600, 1
FROM generate_series(1, $ROWS) AS g;
ALTER TABLE sessions ADD PRIMARY KEY (acct_unique_id);
$indexes
VACUUM ANALYZE sessions;
SQL
# The load left gigabytes of dirty buffers; a long-running server's checkpointer would have
# written them long ago, so write them now rather than during the measured rounds.
psql "$PG/edge" -qAtc "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
  -c "SELECT pg_prewarm('sessions'), pg_prewarm('sessions_username_start_id')" \
  -c "CHECKPOINT" >/dev/null
rows=$(psql "$PG/edge" -Atc "SELECT COUNT(*) FROM sessions")
echo "loaded $rows sessions in $(( $(date +%s) - loaded )) s"

TOKEN=$($B/dotmac-edge tokens create --name bench --scope read | tail -1)
EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:$EDGE_PORT EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:$EDGE_ACCT_PORT \
  EDGE_HTTP_LISTEN=127.0.0.1:$EDGE_HTTP EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_LOG_LEVEL=warn \
  $B/dotmac-edge serve >"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
edge_ready $EDGE_HTTP

LOOKUP='/api/v1/sessions?username=user{n}&limit=50'
FIELDS='username,calling_station_id,framed_ip_address,acct_start_time,acct_stop_time,acct_input_octets,acct_output_octets'
api() { # seconds [path | --dry]
  local what=(--path "${2:-$LOOKUP}")
  [ "${2:-}" = --dry ] && what=(--dry)
  $B/api-load --server 127.0.0.1:$EDGE_HTTP --token "$TOKEN" --rate 500 --seconds "$1" \
    --users $USERS --connections 8 "${what[@]}"
}
auth() { # label
  $B/radius-load load --server 127.0.0.1:$EDGE_PORT --secret $SECRET --users $USERS --method pap \
    --seconds "$SECONDS_EACH" --label "$1" | tee -a "$work/raw.txt" | sed -n 's/.* rps=\([0-9]*\).*/\1/p'
}

api 3 >/dev/null   # warm the cache as a running service's would be
lookup=$(api "$SECONDS_EACH"); echo "$lookup" >> "$work/raw.txt"
# What a lookup costs in CPU with the API alone: the server's and all of PostgreSQL's
# processes, from /proc, over SECONDS_EACH at 500 a second (api-load's own CPU is not in it).
cpu_per_lookup() { # path: milliseconds of CPU per answer
  local s0 p0 out n; s0=$(server_ticks $edge); p0=$(postgres_ticks)
  out=$(api "$SECONDS_EACH" "$1")
  local d=$(( $(server_ticks $edge) - s0 + $(postgres_ticks) - p0 ))
  echo "cpu: $1 $out" >> "$work/raw.txt"
  n=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$out")
  awk -v d=$d -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.3f", (n > 0 ? d * 1000 / hz / n : 0) }'
}
cpu_full=$(cpu_per_lookup "$LOOKUP")
cpu_fields=$(cpu_per_lookup "$LOOKUP&fields=$FIELDS")
cpu_empty=$(cpu_per_lookup "${LOOKUP/username=user/username=nobody}")
cpu_health=$(cpu_per_lookup /health/live)
# Rounds alternate: RADIUS alone, then with one kind of API load, alone, with the next, and so
# on, so that a drift of the machine over the run (page cache, PostgreSQL's background
# writers, the host) weighs on both sides of each ratio alike.
with_load() { # label file api-arguments...
  local label=$1 out=$2; shift 2
  auth auth-alone >> "$work/alone-before-$label.txt"
  api $((SECONDS_EACH + 1)) "$@" >> "$out" & apid=$!
  auth "auth-with-$label" >> "$work/$label.txt"
  wait $apid
}
for _ in $(seq 1 "$ROUNDS"); do
  with_load api "$work/api-during.txt"
  with_load dry "$work/controls.txt" --dry
  with_load health "$work/controls.txt" /health/live
  with_load empty "$work/controls.txt" "${LOOKUP/username=user/username=nobody}"
  with_load fields "$work/fields-during.txt" "$LOOKUP&fields=$FIELDS"
done
# Each kind of load against the alone round just before it: the ratios round by round, and
# their median.
ratios() { paste -d' ' "$work/$1.txt" "$work/alone-before-$1.txt" | while read -r w a; do
  printf '%s ' "$(ratio "$w" "$a" 3)"; done; }
kept() { ratios "$1" | tr ' ' '\n' | grep . | median; }
alone=$(median < "$work/alone-before-api.txt")
loaded_rps=$(median < "$work/api.txt")
p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$lookup")
p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$lookup")
api_5xx=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^server_errors=/) { split($i, a, "="); s += a[2] }} END { print s + 0 }' "$work/api-during.txt" "$work/controls.txt" "$work/fields-during.txt")
fields_p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' "$work/fields-during.txt" | median)

echo
echo "REST API on PostgreSQL, $rows session rows, $(nproc) cores, huge pages $huge_pages"
printf "| %-52s | %12s |\n" "measure" "value"
printf "|%s|%s|\n" "------------------------------------------------------" "--------------"
printf "| %-52s | %9s ms |\n" "session lookup by username, 500 req/s, median" "$p50"
printf "| %-52s | %9s ms |\n" "session lookup by username, 500 req/s, p99" "$p99"
printf "| %-52s | %8s r/s |\n" "RADIUS PAP alone (median of $ROUNDS)" "$alone"
printf "| %-52s | %8s r/s |\n" "RADIUS PAP while the API serves 500 req/s" "$loaded_rps"
printf "| %-52s | %12s |\n" "data plane kept (median of the rounds' ratios)" "$(kept api)"
printf "| %-52s | %12s |\n" "control, kept: api-load --dry only wakes 500 times/s" "$(kept dry)"
printf "| %-52s | %12s |\n" "control, kept: the server answers 500 /health/live/s" "$(kept health)"
printf "| %-52s | %12s |\n" "control, kept: 500 lookups/s that find no sessions" "$(kept empty)"
printf "| %-52s | %9s ms |\n" "CPU a lookup, server + PostgreSQL, API alone" "$cpu_full"
printf "| %-52s | %12s |\n" "kept, the lookups with fields= (7 of 34 fields)" "$(kept fields)"
printf "| %-52s | %9s ms |\n" "lookup with fields=, median during RADIUS load" "$fields_p50"
printf "| %-52s | %9s ms |\n" "CPU a lookup with fields=, API alone" "$cpu_fields"
printf "| %-52s | %9s ms |\n" "CPU a lookup that finds nothing, API alone" "$cpu_empty"
printf "| %-52s | %9s ms |\n" "CPU a /health/live answer, API alone" "$cpu_health"
echo "API 5xx answers during the runs: $api_5xx"
for l in api dry health empty fields; do echo "kept, round by round, $l: $(ratios $l)"; done
echo "raw runs:"; cat "$work/raw.txt" "$work/api-during.txt" "$work/controls.txt" "$work/fields-during.txt"
