#!/usr/bin/env bash
# Issue 7's fault targets, measured on a throwaway PostgreSQL:
#  1. PostgreSQL stopped for OUTAGE seconds (default 30) in the middle of an authentication
#     load (PAP, known subscribers) and an accounting load (Starts): the authentication
#     success rate, and the acknowledged accounting records lost or stored twice once the
#     spool has been replayed;
#  2. SIGTERM in the middle of an accounting load: records lost, exit code, drain time.
#
#   benches/outage_bench.sh [OUTAGE=30]
set -euo pipefail
cd "$(dirname "$0")/.."
OUTAGE=${1:-30}; USERS=10000; SECRET=testing123
PGPORT=55437; AUTH=25812; ACCT=25813; HTTP=28085
. benches/common.sh
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
work_and_postgres edge-outage $PGPORT
pgctl() { runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" "$@" >/dev/null; }
psql "$PG/postgres" -qc "CREATE DATABASE edge"
export EDGE_DATABASE_URL=$PG/edge
edge_nas_and_users $USERS

start_edge() {
  EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:$AUTH EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:$ACCT \
    EDGE_HTTP_LISTEN=127.0.0.1:$HTTP EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_LOG_LEVEL=error \
    EDGE_ACCOUNTING_SPOOL_DIR="$work/spool" EDGE_ACCOUNTING_SPOOL_AFTER_MS=500 \
    $B/dotmac-edge serve >>"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
  edge_ready $HTTP
}
# acked_check FILE: acknowledged Starts missing from sessions, and rows stored twice.
acked_check() {
  psql "$PG/edge" -Atc "SELECT acct_session_id FROM sessions" | sort -u > "$work/stored"
  sort -u "$1" > "$work/acked.sorted"
  missing=$(comm -23 "$work/acked.sorted" "$work/stored" | wc -l)
  twice=$(psql "$PG/edge" -Atc "SELECT COUNT(*) - COUNT(DISTINCT acct_session_id) FROM sessions")
  echo "acknowledged=$(wc -l < "$1") missing=$missing stored_twice=$twice"
}

echo "== PostgreSQL stopped for $OUTAGE s under load"
start_edge
run=$((OUTAGE + 20))
$B/radius-load load --method pap --server 127.0.0.1:$AUTH --secret $SECRET --users $USERS \
  --threads 1 --window 32 --seconds $run > "$work/auth.out" & lp=$!
$B/radius-load load --method acct-start --server 127.0.0.1:$ACCT --secret $SECRET \
  --users $USERS --threads 1 --window 32 --seconds $run --acked "$work/acked" > "$work/acct.out" & la=$!
sleep 5; pgctl -m immediate -w stop; echo "postgres stopped"
sleep 2; curl -s 127.0.0.1:$HTTP/health/ready; echo
sleep $((OUTAGE - 2)); pgctl -o "-p $PGPORT -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start
echo "postgres started"
wait $lp $la
spool_empty() { curl -s 127.0.0.1:$HTTP/health/ready | grep -q '"batches":0'; }
folded() { curl -s 127.0.0.1:$HTTP/metrics | grep -q '^edge_accounting_unfolded_records 0'; }
until_ok 600 "the spool to empty" spool_empty
until_ok 600 "the fold to catch up" folded
echo "auth:       $(grep RESULT "$work/auth.out")"
echo "accounting: $(grep RESULT "$work/acct.out")"
echo "spooled=$(curl -s 127.0.0.1:$HTTP/metrics | awk '/^edge_accounting_spooled_total/ {print $2}') replayed=$(curl -s 127.0.0.1:$HTTP/metrics | awk '/^edge_accounting_replayed_total/ {print $2}')"
acked_check "$work/acked"
accepts=$(grep -o 'accepts=[0-9]*' "$work/auth.out" | cut -d= -f2)
rejects=$(grep -o 'rejects=[0-9]*' "$work/auth.out" | cut -d= -f2)
echo "RESULT outage_s=$OUTAGE auth_success=$(awk -v a="$accepts" -v r="$rejects" 'BEGIN { printf "%.4f", a / (a + r) }') $(acked_check "$work/acked")"

echo "== SIGTERM under accounting load"
$B/radius-load load --method acct-start --server 127.0.0.1:$ACCT --secret $SECRET \
  --users $USERS --threads 1 --window 32 --seconds 6 --acked "$work/acked2" > /dev/null & la=$!
sleep 3
t0=$(date +%s.%N); kill -TERM $edge; set +e; wait $edge; code=$?; set -e
t1=$(date +%s.%N)
wait $la
start_edge   # folds whatever the journal still held
echo "RESULT sigterm exit=$code drain_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(acked_check "$work/acked2")"
