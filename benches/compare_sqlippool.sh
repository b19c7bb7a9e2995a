#!/usr/bin/env bash
# Authentication with an address on every Access-Accept, in one run: the null responder
# (no address, no storage: the ceiling), dotmac-edge on PostgreSQL with a plan naming a pool
# (each Access-Accept waits until its lease is stored), and FreeRADIUS 3.2 with rlm_sqlippool
# on the same PostgreSQL (subscribers in its `files` module, so the comparison is of the pool
# modules). Everything on loopback; every load is time-bounded.
#
#   benches/compare_sqlippool.sh [USERS=100000] [SECONDS=6] [ROUNDS=3]
#
# Every subscriber's first request allocates a new address; later requests of the same
# subscriber (radius-load cycles through USERS) get its address again, which both servers
# store again (dotmac-edge: a lease change in the journal; rlm_sqlippool: its
# allocate-existing UPDATE). Prints the ratio of each to the null responder and
# dotmac-edge / FreeRADIUS, then checks that no address was handed to two subscribers, and
# the CPU each request cost the server, PostgreSQL and the load generator (median round).
#
# Installs freeradius and freeradius-postgresql from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-100000}; SECONDS_EACH=${2:-6}; ROUNDS=${3:-3}
SECRET=testing123
PGPORT=55434; EDGE_PORT=22812; EDGE_ACCT_PORT=22813; EDGE_HTTP=28082; NULL_PORT=28121; FR_PORT=32812
. benches/common.sh
ensure_freeradius
cargo build --release --bins -q
B="${CARGO_TARGET_DIR:-target}/release"
work_and_postgres edge-ippool $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge" -c "CREATE DATABASE radius"

# dotmac-edge: a /14 (262,142 addresses) for USERS subscribers.
export EDGE_DATABASE_URL=$PG/edge
$B/dotmac-edge nas add --name bench --address 127.0.0.1 --secret $SECRET >/dev/null
$B/dotmac-edge pools add --name bench --cidr 100.64.0.0/14 >/dev/null
$B/dotmac-edge plans add --name pooled --pool bench >/dev/null
$B/radius-load csv --users "$USERS" --plan pooled > "$work/users.csv"
$B/dotmac-edge subscribers import "$work/users.csv" >/dev/null
EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:$EDGE_PORT EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:$EDGE_ACCT_PORT \
  EDGE_HTTP_LISTEN=127.0.0.1:$EDGE_HTTP EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_LOG_LEVEL=warn EDGE_IPAM_INSTANCE=bench \
  EDGE_IPAM_OFFER_SECONDS=3600 \
  $B/dotmac-edge serve >"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
$B/radius-load null --listen 127.0.0.1:$NULL_PORT --secret $SECRET --seconds 3600 >/dev/null & null=$!; pids+=($null)

# FreeRADIUS: a private copy of the Debian configuration; files for the subscribers (each
# with Pool-Name), rlm_sql only as rlm_sqlippool's connection, sqlippool in post-auth.
fr="$work/freeradius"; freeradius_copy "$fr" $FR_PORT $PGPORT $SECRET
sed -i -e 's/^\(\s*\)-sql$/\1# -sql (not used for authorization here)/' \
  -e 's/^post-auth {$/post-auth {\n\tsqlippool/' "$fr/sites-available/default"
awk -F, 'NR>1 {printf "%s Cleartext-Password := \"%s\", Pool-Name := \"bench\"\n\n", $1, $2}' "$work/users.csv" \
  > "$fr/mods-config/files/authorize"
sed -i -e 's/dialect = "mysql"/dialect = "postgresql"/' -e 's/pool_key = "%{NAS-Port}"/pool_key = "%{User-Name}"/' \
  "$fr/mods-available/sqlippool"
ln -sf ../mods-available/sql "$fr/mods-enabled/sql"
ln -sf ../mods-available/sqlippool "$fr/mods-enabled/sqlippool"
psql "$PG/radius" -q -f "$fr/mods-config/sql/main/postgresql/schema.sql"
psql "$PG/radius" -q -f "$fr/mods-config/sql/ippool/postgresql/schema.sql"
psql "$PG/radius" -qc "INSERT INTO radippool (pool_name, framedipaddress)
  SELECT 'bench', '100.64.0.0'::inet + g FROM generate_series(1, 262142) AS g"
chmod -R a+rX "$fr" "$work"
freeradius -f -d "$fr" >"$work/fr.log" 2>&1 & frpid=$!; pids+=($frpid)
fr_up=0
for _ in $(seq 1 240); do
  if radclient -r 1 -t 1 127.0.0.1:$FR_PORT status $SECRET <<<"Message-Authenticator = 0x00" >/dev/null 2>&1; then fr_up=1; break; fi
  sleep 0.5
done
[ $fr_up = 1 ] || { echo "FreeRADIUS did not start:"; tail -20 "$work/fr.log"; }

measure() { # label port server-pid -> median rps over ROUNDS
  local label=$1 port=$2 pid=$3
  for _ in $(seq 1 "$ROUNDS"); do
    load_round "$label" "$pid" --server 127.0.0.1:$port --secret $SECRET --users "$USERS" --method pap \
      --seconds "$SECONDS_EACH" "${LOAD[@]}"
  done | median
}
# A lease waits for a commit (milliseconds), so the rate is bounded by requests in flight:
# 8 threads x 256, as for accounting (a fleet of BNGs with their own windows).
LOAD=(--threads 8 --window 256)
sleep 2
declare -A R
R[null]=$(measure null $NULL_PORT $null)
R[edge]=$(measure dotmac-edge-pool $EDGE_PORT $edge)
[ $fr_up = 1 ] && R[fr]=$(measure freeradius-sqlippool $FR_PORT $frpid)
stop_fr
sleep 1
folded() { [ "$(curl -s 127.0.0.1:$EDGE_HTTP/metrics | awk '$1 == "edge_accounting_unfolded_records" { print $2 }')" = 0 ]; }
until_ok 600 "the fold to catch up" folded
edge_leases=$(psql "$PG/edge" -Atc "SELECT COUNT(*) FROM ip_leases")
edge_dup=$(psql "$PG/edge" -Atc "SELECT COUNT(*) - COUNT(DISTINCT username) FROM ip_leases WHERE state = 'offered'")
fr_leases=$(psql "$PG/radius" -Atc "SELECT COUNT(*) FROM radippool WHERE username <> ''")
fr_dup=$(psql "$PG/radius" -Atc "SELECT COUNT(*) - COUNT(DISTINCT username) FROM radippool WHERE username <> ''")
metrics=$(curl -s 127.0.0.1:$EDGE_HTTP/metrics)
sum_of() { awk -v m="$1" 'index($1, m) == 1 { n += $2 } END { print n + 0 }' <<<"$metrics"; }
allocated=$(sum_of edge_ipam_allocated_total)
held=$(sum_of edge_ipam_deferred_total)
refused=$(sum_of edge_ipam_exhausted_total)
rss=$(ps -o rss= -C dotmac-edge | head -1)

echo
echo "RADIUS PAP with an address on every Access-Accept, $USERS subscribers, $(nproc) cores, median of $ROUNDS x ${SECONDS_EACH}s, ${LOAD[*]}"
printf "| %-44s | %10s | %10s |\n" "server" "req/s" "vs null"
printf "|%s|%s|%s|\n" "----------------------------------------------" "------------" "------------"
printf "| %-44s | %10s | %10s |\n" "null responder (no address)" "${R[null]}" "1.00"
printf "| %-44s | %10s | %10s |\n" "dotmac-edge, pool, lease stored before answer" "${R[edge]:-failed}" "$(ratio "${R[edge]:-0}" "${R[null]}")"
printf "| %-44s | %10s | %10s |\n" "FreeRADIUS 3.2, rlm_sqlippool PostgreSQL" "${R[fr]:-failed}" "$(ratio "${R[fr]:-0}" "${R[null]}")"
echo
echo "dotmac-edge vs FreeRADIUS rlm_sqlippool: $(ratio "${R[edge]:-0}" "${R[fr]:-0}")x"
echo "dotmac-edge: $allocated addresses handed out, $edge_leases leases stored, subscribers holding two offered addresses: $edge_dup; requests held back while claiming: $held, refused for a full pool: $refused; RSS $((rss / 1024)) MB"
echo "FreeRADIUS: $fr_leases leases, subscribers holding two: $fr_dup"
echo
cpu_table null dotmac-edge-pool freeradius-sqlippool
echo "raw runs:"; cat "$work/raw.txt"
