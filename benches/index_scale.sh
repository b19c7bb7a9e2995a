#!/usr/bin/env bash
# How the subscriber index scales: USERS subscribers in PostgreSQL, then dotmac-edge starts and
# the script prints how long the index took to load and the resident memory at ready, after
# a PAP load over all the subscribers, and at its peak. Loopback only, time-bounded.
#
#   benches/index_scale.sh [USERS=1000000] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-1000000}; SECONDS_EACH=${2:-10}
SECRET=testing123; PGPORT=55434; EDGE_PORT=21822; HTTP_PORT=28082
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
. benches/common.sh
work_and_postgres edge-scale $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge"
export EDGE_DATABASE_URL=$PG/edge
$B/dotmac-edge nas add --name bench --address 127.0.0.1 --secret $SECRET >/dev/null
$B/dotmac-edge plans add --name basic --reply 'Mikrotik-Rate-Limit = "20M/20M"' >/dev/null
$B/radius-load csv --users "$USERS" --plan basic > "$work/users.csv"
import=$( { /usr/bin/time -f "%e" $B/dotmac-edge subscribers import "$work/users.csv" >/dev/null; } 2>&1 | tail -1)

EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:$EDGE_PORT EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:0 \
  EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_HTTP_LISTEN=127.0.0.1:$HTTP_PORT EDGE_LOG_LEVEL=info \
  $B/dotmac-edge serve >"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
edge_ready $HTTP_PORT
rss() { awk -v k="$1:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$edge/status"; }
load_s=$(curl -s "127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "edge_index_load_seconds" { printf "%.2f", $2 }')
rss_ready=$(rss VmRSS)
result=$($B/radius-load load --server 127.0.0.1:$EDGE_PORT --secret $SECRET --users "$USERS" --method pap --seconds "$SECONDS_EACH" --label dotmac-edge)
rss_after=$(rss VmRSS); rss_peak=$(rss VmHWM)

echo
echo "Subscriber index, $USERS subscribers in PostgreSQL, $(nproc) cores"
echo "| import (CLI, s) | index load (s) | RSS at ready (MB) | RSS after ${SECONDS_EACH}s PAP load (MB) | peak RSS (MB) |"
echo "|---|---|---|---|---|"
echo "| $import | $load_s | $rss_ready | $rss_after | $rss_peak |"
echo "$result"
