#!/usr/bin/env bash
# The ACS's targets, in one run on a throwaway PostgreSQL:
#  1. complete Inform sessions per second (Inform, InformResponse, empty POST, 204; a new TCP
#     connection each, as CPEs do) over DEVICES distinct devices, each device's state written
#     to PostgreSQL; p50/p99 of a session, and the server's resident memory;
#  2. HOLD sessions open at once (Inform answered, the empty POST held back) and the server's
#     resident memory while they are open.
#
#   benches/acs_bench.sh [DEVICES=10000] [SECONDS=10] [ROUNDS=3] [HOLD=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${1:-10000}; SECONDS_EACH=${2:-10}; ROUNDS=${3:-3}; HOLD=${4:-10000}
PGPORT=55437; ACS=27547; EDGE_HTTP=28085
. benches/common.sh
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
work_and_postgres edge-acs $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge"
export EDGE_DATABASE_URL=$PG/edge
$B/dotmac-edge migrate >/dev/null
ulimit -n "$(ulimit -Hn)"   # HOLD sessions need that many descriptors on each side
EDGE_ACS_LISTEN=127.0.0.1:$ACS EDGE_HTTP_LISTEN=127.0.0.1:$EDGE_HTTP EDGE_LOG_LEVEL=warn \
  $B/dotmac-edge serve --roles acs >"$work/edge.log" 2>&1 & pids+=($!); edge=$!
edge_ready $EDGE_HTTP

load() { # seconds label
  $B/cwmp-load sessions --server 127.0.0.1:$ACS --devices "$DEVICES" --connections 64 \
    --seconds "$1" --pid $edge --label "$2"
}
load 3 warm-up >/dev/null   # every device registered once (new devices are inserted)
for _ in $(seq 1 "$ROUNDS"); do load "$SECONDS_EACH" sessions; done | tee "$work/rounds.txt"
rps=$(sed -n 's/.* sessions_per_s=\([0-9]*\).*/\1/p' "$work/rounds.txt" | median)
p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' "$work/rounds.txt" | median)
sleep 1
devices=$(psql "$PG/edge" -Atc "SELECT COUNT(*) FROM cwmp_devices")
fresh=$(psql "$PG/edge" -Atc "SELECT COUNT(*) FROM cwmp_devices WHERE last_inform_us > (extract(epoch from now()) * 1000000)::bigint - 10000000")
hold=$($B/cwmp-load hold --server 127.0.0.1:$ACS --sessions "$HOLD" --pid $edge --seconds 3)
echo "$hold"
echo
echo "| Measure | Figure |"
echo "|---|---|"
echo "| Complete Inform sessions/s over $DEVICES devices (median of $ROUNDS x ${SECONDS_EACH}s, 64 connections) | $rps |"
echo "| Session p99 (ms) | $p99 |"
echo "| Devices in cwmp_devices / informed in the last 10 s | $devices / $fresh |"
echo "| $HOLD sessions open at once: server RSS (MiB) | $(sed -n 's/.*server_rss_mib_open=\([0-9.]*\).*/\1/p' <<<"$hold") |"
