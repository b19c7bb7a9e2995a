#!/usr/bin/env bash
# One table from one run: the null responder, dotmac-edge on PostgreSQL, FreeRADIUS 3.2 with
# the same subscribers in its `files` module, and FreeRADIUS 3.2 with rlm_sql PostgreSQL
# (radcheck). Everything on loopback; every load is time-bounded.
#
#   benches/compare_freeradius.sh [USERS=100000] [SECONDS=8] [ROUNDS=3]
#
# Accounting: a Start / Interim-Update / Stop cycle per session (radius-load acct-cycle,
# 8 threads x 256 in flight, as a busy BNG fleet keeps them), answered by the null responder,
# by dotmac-edge (durable in PostgreSQL before each answer) and by FreeRADIUS with rlm_sql
# PostgreSQL accounting into radacct on the same PostgreSQL server. Then edge-burst: 2 s of
# Starts for new sessions (a reconnect storm), answered once the journal row commits while
# the fold into sessions drains behind.
#
# Ends with the CPU each request cost the server, PostgreSQL and the load generator (median
# round), from /proc.
#
# Installs freeradius and freeradius-postgresql from Debian when missing. PAP with
# Message-Authenticator for all; CHAP and MS-CHAPv2 for the null responder and dotmac-edge.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-100000}; SECONDS_EACH=${2:-8}; ROUNDS=${3:-3}
SECRET=testing123
PGPORT=55433; EDGE_PORT=21812; EDGE_ACCT_PORT=21813; EDGE_HTTP=28081; NULL_PORT=28120; FR_PORT=31812
. benches/common.sh
ensure_freeradius
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
work_and_postgres edge-bench $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge" -c "CREATE DATABASE radius"

# dotmac-edge with the subscribers imported.
export EDGE_DATABASE_URL=$PG/edge
$B/dotmac-edge nas add --name bench --address 127.0.0.1 --secret $SECRET >/dev/null
$B/dotmac-edge plans add --name basic --reply 'Mikrotik-Rate-Limit = "20M/20M"' >/dev/null
$B/radius-load csv --users "$USERS" --plan basic > "$work/users.csv"
$B/dotmac-edge subscribers import "$work/users.csv"
EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:$EDGE_PORT EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:$EDGE_ACCT_PORT \
  EDGE_HTTP_LISTEN=127.0.0.1:$EDGE_HTTP EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_LOG_LEVEL=warn \
  $B/dotmac-edge serve >"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
$B/radius-load null --listen 127.0.0.1:$NULL_PORT --secret $SECRET --seconds 3600 >/dev/null & null=$!; pids+=($null)

# FreeRADIUS: a private copy of the Debian configuration.
fr="$work/freeradius"; freeradius_copy "$fr" $FR_PORT $PGPORT $SECRET
psql "$PG/radius" -q -f "$fr/mods-config/sql/main/postgresql/schema.sql"
awk -F, 'NR>1 {printf "%s\tCleartext-Password\t:=\t%s\n", $1, $2}' "$work/users.csv" > "$work/radcheck.tsv"
psql "$PG/radius" -qc "\\copy radcheck(username, attribute, op, value) FROM '$work/radcheck.tsv'"
psql "$PG/radius" -qc "INSERT INTO radreply(username, attribute, op, value) SELECT username, 'Mikrotik-Rate-Limit', '=', '20M/20M' FROM radcheck"
awk -F, 'NR>1 {printf "%s Cleartext-Password := \"%s\"\n\tMikrotik-Rate-Limit = \"20M/20M\"\n\n", $1, $2}' "$work/users.csv" > "$work/users.files"
chmod -R a+rX "$fr" "$work"

start_fr() { # $1 = files|sql
  rm -f "$fr/mods-enabled/sql"
  if [ "$1" = sql ]; then
    ln -s ../mods-available/sql "$fr/mods-enabled/sql"; : > "$fr/mods-config/files/authorize"
  else
    cp "$work/users.files" "$fr/mods-config/files/authorize"
  fi
  freeradius -f -d "$fr" >"$work/fr-$1.log" 2>&1 & frpid=$!; pids+=($frpid)
  for _ in $(seq 1 120); do
    radclient -r 1 -t 1 127.0.0.1:$FR_PORT status $SECRET <<<"Message-Authenticator = 0x00" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "FreeRADIUS ($1) did not start:"; tail -20 "$work/fr-$1.log"; return 1
}


# The process answering a label's load: the null responder, FreeRADIUS or dotmac-edge.
server_of() { case $1 in null*) echo "$null";; freeradius*|fr-*) echo "$frpid";; *) echo "$edge";; esac; }
measure() { # label port method [load options] -> median rps over ROUNDS
  local label=$1 port=$2 method=$3; shift 3
  for _ in $(seq 1 "$ROUNDS"); do
    load_round "$label" "$(server_of "$label")" --server 127.0.0.1:$port --secret $SECRET --users "$USERS" \
      --method "$method" --seconds "$SECONDS_EACH" "$@"
  done | median
}
p99() { grep "label=$1 " "$work/raw.txt" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' | median; }
ACCT_LOAD=(--threads 8 --window 256)

sleep 2
declare -A R
for m in pap chap mschapv2; do
  R[null-$m]=$(measure null-$m $NULL_PORT $m)
  R[edge-$m]=$(measure dotmac-edge-$m $EDGE_PORT $m)
done
R[null-acct]=$(measure null-acct $NULL_PORT acct-cycle "${ACCT_LOAD[@]}")
R[edge-acct]=$(measure edge-acct $EDGE_ACCT_PORT acct-cycle "${ACCT_LOAD[@]}")
edge_metric() { curl -s "127.0.0.1:$EDGE_HTTP/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
batches=$(edge_metric edge_accounting_batch_size_count); records=$(edge_metric edge_accounting_batch_size_sum)
commit_s=$(edge_metric edge_accounting_commit_seconds_sum)
folds=$(edge_metric edge_accounting_fold_size_count); folded=$(edge_metric edge_accounting_fold_size_sum)
folded() { [ "$(edge_metric edge_accounting_unfolded_records)" = 0 ]; }
wait_folded() { # seconds until every answered record is in sessions
  local t0=$SECONDS
  until_ok 600 "the fold to catch up" folded
  echo $((SECONDS - t0))
}
settle_s=$(wait_folded)
# A reconnect storm: 2 s of Starts for new sessions once the fold has caught up. The answers
# wait for the journal only; the fold drains the backlog afterwards.
R[edge-burst]=$(ROUNDS=1 SECONDS_EACH=2 measure edge-burst $EDGE_ACCT_PORT acct-start "${ACCT_LOAD[@]}")
burst_fold_s=$(wait_folded)
start_fr files && { R[fr-files]=$(measure freeradius-files $FR_PORT pap); stop_fr; }
start_fr sql && {
  R[fr-sql]=$(measure freeradius-sql $FR_PORT pap)
  R[fr-acct]=$(measure fr-acct $((FR_PORT + 1)) acct-cycle "${ACCT_LOAD[@]}")
  stop_fr
}
edge_rows=$(psql "$PG/edge" -Atc "SELECT COUNT(*) FROM sessions")
edge_dup=$(psql "$PG/edge" -Atc "SELECT COUNT(*) - COUNT(DISTINCT acct_unique_id) FROM sessions")
fr_rows=$(psql "$PG/radius" -Atc "SELECT COUNT(*) FROM radacct")

echo
echo "RADIUS auth, $USERS subscribers, $(nproc) cores, median of $ROUNDS x ${SECONDS_EACH}s, window 64 x 2 threads"
printf "| %-34s | %10s | %12s |\n" "server (PAP unless named)" "req/s" "vs null"
printf "|%s|%s|%s|\n" "------------------------------------" "------------" "--------------"
for k in null-pap edge-pap fr-files fr-sql null-chap edge-chap null-mschapv2 edge-mschapv2; do
  base=null-pap; case $k in *chap) base=null-chap;; esac; case $k in *mschapv2) base=null-mschapv2;; esac
  printf "| %-34s | %10s | %12s |\n" "$k" "${R[$k]:-failed}" "$(ratio "${R[$k]:-0}" "${R[$base]}")"
done
echo
echo "dotmac-edge PAP vs FreeRADIUS files: $(ratio "${R[edge-pap]}" "${R[fr-files]:-0}")x; vs FreeRADIUS rlm_sql PostgreSQL: $(ratio "${R[edge-pap]}" "${R[fr-sql]:-0}")x"
echo
echo "RADIUS accounting (Start / Interim-Update / Stop per session), ${ACCT_LOAD[*]}, median of $ROUNDS x ${SECONDS_EACH}s"
printf "| %-34s | %10s | %12s | %8s |\n" "server" "req/s" "vs null" "p99 ms"
printf "|%s|%s|%s|%s|\n" "------------------------------------" "------------" "--------------" "----------"
for k in null-acct edge-acct fr-acct edge-burst; do
  printf "| %-34s | %10s | %12s | %8s |\n" "$k" "${R[$k]:-failed}" "$(ratio "${R[$k]:-0}" "${R[null-acct]}")" "$(p99 $k)"
done
echo
echo "dotmac-edge accounting vs FreeRADIUS rlm_sql PostgreSQL: $(ratio "${R[edge-acct]}" "${R[fr-acct]:-0}")x"
echo "dotmac-edge batches: $batches commits, $(awk -v r="$records" -v b="$batches" 'BEGIN { if (b > 0) printf "%.0f", r / b }') records per commit on average, $(awk -v s="$commit_s" -v b="$batches" 'BEGIN { if (b > 0) printf "%.1f", 1000 * s / b }') ms per commit"
echo "dotmac-edge folds: $folds, $(awk -v r="$folded" -v b="$folds" 'BEGIN { if (b > 0) printf "%.0f", r / b }') records per fold; sessions caught up ${settle_s}s after the cycle load, ${burst_fold_s}s after the 2 s burst"
echo "rows: dotmac-edge sessions $edge_rows (duplicate unique ids: $edge_dup), FreeRADIUS radacct $fr_rows"
echo
cpu_table null-pap dotmac-edge-pap freeradius-files freeradius-sql null-acct edge-acct fr-acct edge-burst
echo "raw runs:"; cat "$work/raw.txt"
