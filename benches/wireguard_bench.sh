#!/usr/bin/env bash
# Issue 8's targets, on a throwaway PostgreSQL reached over its Unix socket from a network
# namespace the script makes (the edge and its boringtun interface live there):
#  1. a peer added or removed through the REST API, and through the CLI (another process:
#     the change reaches the server by PostgreSQL NOTIFY), is live on the interface: the time
#     from the request until `wg show` lists it (or no longer does), ROUNDS times each;
#  2. PEERS NAS peers (default 1000) reconciled at start: the server's own figure for a
#     fresh interface, read from its log.
#
#   benches/wireguard_bench.sh [PEERS=1000] [ROUNDS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${1:-1000}; ROUNDS=${2:-20}
PGPORT=55438; HTTP=28086; NS=edge-wgbench-$$; IFACE=wgb$(($$ % 100000))
. benches/common.sh
command -v boringtun-cli >/dev/null || cargo install boringtun-cli --version 0.7.1 --locked --quiet
command -v wg >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wireguard-tools >/dev/null; }
cargo build --release --bins -q
B=$(realpath "${CARGO_TARGET_DIR:-target}")/release
work_and_postgres edge-wg $PGPORT
psql "$PG/postgres" -qc "CREATE DATABASE edge"
ip netns add "$NS"; ip -n "$NS" link set lo up
trap 'cleanup_bench; ip netns pids "$NS" 2>/dev/null | xargs -r kill -9; ip netns del "$NS" 2>/dev/null; rm -f /var/run/wireguard/$IFACE.sock' EXIT
in_ns() { ip netns exec "$NS" "$@"; }

export EDGE_DATABASE_URL="postgres://postgres@localhost/edge?host=$work&port=$PGPORT"
export EDGE_WIREGUARD_ENABLED=true EDGE_WIREGUARD_INTERFACE=$IFACE \
  EDGE_WIREGUARD_PRIVATE_KEY_FILE=$work/edge.key EDGE_WIREGUARD_MANAGEMENT_PREFIX=10.80.0.0/16 \
  EDGE_WIREGUARD_ENDPOINT=198.18.0.1:51820 \
  EDGE_WIREGUARD_USERSPACE_COMMAND="boringtun-cli --foreground --disable-drop-privileges"
$B/dotmac-edge migrate >/dev/null
TOKEN=$($B/dotmac-edge tokens create --name bench --scope write | tail -1)

start_edge() {
  EDGE_RADIUS_AUTH_LISTEN=127.0.0.1:0 EDGE_RADIUS_ACCT_LISTEN=127.0.0.1:0 \
    EDGE_HTTP_LISTEN=127.0.0.1:$HTTP EDGE_ACS_LISTEN=127.0.0.1:0 EDGE_LOG_LEVEL=info \
    ip netns exec "$NS" $B/dotmac-edge serve >"$work/edge.log" 2>&1 & edge=$!; pids+=($edge)
  until_ok 120 "the server to be ready" in_ns curl -sf 127.0.0.1:$HTTP/health/ready -o /dev/null
}
api() { in_ns curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# waits until `wg show` lists KEY (want=1) or no longer does (want=0); prints the ms taken
# since START. Bounded: gives up after 10 s.
until_peer() {
  local key=$1 want=$2 start=$3 t
  for _ in $(seq 1 5000); do
    if in_ns wg show "$IFACE" peers | grep -qxF "$key"; then has=1; else has=0; fi
    t=$(now_ms)
    if [ "$has" = "$want" ]; then echo $((t - start)); return; fi
    [ $((t - start)) -gt 10000 ] && { echo 10000; return; }
    sleep 0.002
  done
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "p50 %d ms, max %d ms (n=%d)", a[int((NR+1)/2)], a[NR], NR}'; }

start_edge
echo "== a peer added or removed is live on the interface ($ROUNDS rounds each)"
: > "$work/api_add"; : > "$work/api_del"; : > "$work/cli_add"; : > "$work/cli_del"
for i in $(seq 1 "$ROUNDS"); do
  t0=$(now_ms)
  key=$(api -X POST 127.0.0.1:$HTTP/api/v1/nas -d "{\"name\":\"live$i\",\"secret\":\"s\",\"wireguard\":{}}" \
    | grep -o '"public_key":"[^"]*"' | head -1 | cut -d'"' -f4)
  until_peer "$key" 1 "$t0" >> "$work/api_add"
  t0=$(now_ms); api -X DELETE 127.0.0.1:$HTTP/api/v1/nas/live$i
  until_peer "$key" 0 "$t0" >> "$work/api_del"
  key=$(head -c 32 /dev/urandom | base64)
  t0=$(now_ms); $B/dotmac-edge nas add --name cli$i --secret s --wireguard --public-key "$key" >/dev/null
  until_peer "$key" 1 "$t0" >> "$work/cli_add"
  t0=$(now_ms); $B/dotmac-edge nas remove cli$i >/dev/null
  until_peer "$key" 0 "$t0" >> "$work/cli_del"
done
echo "API add -> live:     $(stats < "$work/api_add")"
echo "API remove -> gone:  $(stats < "$work/api_del")"
echo "CLI add -> live:     $(stats < "$work/cli_add")   (another process; includes the CLI's own start)"
echo "CLI remove -> gone:  $(stats < "$work/cli_del")"

echo "== $PEERS peers reconciled at start"
# Registered straight through the API (each takes the next address of the pool).
for i in $(seq 1 "$PEERS"); do
  api -X POST 127.0.0.1:$HTTP/api/v1/nas -d "{\"name\":\"nas$i\",\"secret\":\"s\",\"wireguard\":{}}" >/dev/null
done
until [ "$(in_ns wg show "$IFACE" peers | wc -l)" -ge "$PEERS" ]; do sleep 0.1; done
kill -TERM "$edge"; wait "$edge" || true
# The server stopped its boringtun: the next start reconciles a fresh interface.
start_edge
line=$(grep -m1 "peers reconciled" "$work/edge.log")
echo "on the interface: $(in_ns wg show "$IFACE" peers | wc -l) peers"
echo "server: $(echo "$line" | grep -o 'peers=[0-9]*') $(echo "$line" | grep -o 'seconds=[0-9.]*')"
