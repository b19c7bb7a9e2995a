# Sourced by the benchmark scripts: a scratch directory and a throwaway PostgreSQL cluster
# (run as the postgres user), both removed on exit, with the bench processes in `pids`.
#
#   work_and_postgres PREFIX PGPORT   -> $work, $PG (postgres://…:PGPORT, no database name)
# PG_SETTINGS (optional): more server settings, as "-c name=value ..." for postgres.
# PG_HUGE_PAGES=1 (optional): PostgreSQL's shared memory in huge pages, as its documentation
# advises for a large shared_buffers ("Linux Huge Pages"). The pages it needs are reserved for
# the run when none are free and the script may (root), and given back on exit;
# $huge_pages says what the server got.
work_and_postgres() {
  work=$(mktemp -d "/tmp/$1.XXXX"); chmod 755 "$work"
  pids=()
  trap 'cleanup_bench' EXIT
  mkdir -p "$work/pg" && chown postgres "$work/pg" "$work"
  runuser -u postgres -- /usr/lib/postgresql/*/bin/initdb -A trust -U postgres -D "$work/pg" >/dev/null
  local settings="${PG_SETTINGS:-}"
  huge_pages=off
  if [ -n "${PG_HUGE_PAGES:-}" ]; then
    reserve_huge_pages "$(runuser -u postgres -- /usr/lib/postgresql/*/bin/postgres -D "$work/pg" \
      $settings -C shared_memory_size_in_huge_pages)"
    settings="$settings -c huge_pages=try"
  fi
  local spare; spare=$(huge_pages_spare)
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" \
    -o "-p $2 -k $work -c listen_addresses=127.0.0.1 $settings" -l "$work/pg.log" -w start >/dev/null
  if [ -n "${PG_HUGE_PAGES:-}" ] && [ "$(huge_pages_spare)" -lt "$spare" ]; then huge_pages=on; fi
  PG=postgres://postgres@127.0.0.1:$2
}

# Huge pages neither in use nor promised to a process.
huge_pages_spare() {
  awk '/HugePages_Free/ {f = $2} /HugePages_Rsvd/ {r = $2} END {print f - r}' /proc/meminfo
}

# reserve_huge_pages N: makes N huge pages spare, if this may; the old reservation is restored
# on exit.
reserve_huge_pages() {
  local f=/proc/sys/vm/nr_hugepages spare
  spare=$(huge_pages_spare)
  if [ -n "$1" ] && [ "$spare" -lt "$1" ] && [ -w $f ]; then
    hugepages_before=$(cat $f)
    echo $(($(cat $f) + $1 - spare)) > $f 2>/dev/null || true
  fi
}

# edge_nas_and_users USERS: migrates $EDGE_DATABASE_URL, registers the NAS 127.0.0.1 with
# $SECRET, and imports USERS subscribers as `radius-load csv` names them ($B: the binaries).
edge_nas_and_users() {
  $B/dotmac-edge migrate >/dev/null
  $B/dotmac-edge nas add --name bench --address 127.0.0.1 --secret "$SECRET" >/dev/null
  $B/radius-load csv --users "$1" > "$work/users.csv"
  $B/dotmac-edge subscribers import "$work/users.csv" >/dev/null
}

cleanup_bench() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
  if [ -n "${hugepages_before:-}" ]; then echo "$hugepages_before" > /proc/sys/vm/nr_hugepages || true; fi
}

# Installs FreeRADIUS 3.2 and its PostgreSQL driver from Debian when missing (and keeps the
# packaged service from running).
ensure_freeradius() {
  if ! command -v freeradius >/dev/null || [ ! -e /usr/lib/freeradius/rlm_sql_postgresql.so ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq freeradius freeradius-postgresql >/dev/null
    systemctl stop freeradius 2>/dev/null || service freeradius stop 2>/dev/null || true
  fi
}

# freeradius_copy DIR PORT PGPORT SECRET: a private copy of Debian's FreeRADIUS configuration
# in DIR with one client (127.0.0.1), auth on PORT and accounting on PORT+1, and rlm_sql set up
# (not enabled) for the PostgreSQL on PGPORT.
freeradius_copy() {
  local fr=$1 port=$2 pgport=$3 secret=$4
  cp -a /etc/freeradius/3.0 "$fr"
  printf 'client bench {\n  ipaddr = 127.0.0.1\n  secret = %s\n}\n' "$secret" > "$fr/clients.conf"
  # The default site listens for auth then acct (IPv4, then IPv6), each on `port = 0`.
  awk -v a="$port" -v c=$((port + 1)) '/^[ \t]*port = 0/ { n++; sub(/port = 0/, "port = " (n % 2 ? a : c)) } { print }' \
    "$fr/sites-available/default" > "$fr/default.site" && mv "$fr/default.site" "$fr/sites-available/default"
  sed -i "s/port = 18120/port = $((port + 20000))/" "$fr/sites-available/inner-tunnel"
  sed -i -e 's/dialect = "sqlite"/dialect = "postgresql"/' -e 's/driver = "rlm_sql_null"/driver = "rlm_sql_${dialect}"/' \
    -e "s/^#\?\s*server = \"localhost\"/\tserver = \"127.0.0.1\"/" -e "s/^#\?\s*port = 3306/\tport = $pgport/" \
    -e 's/^#\?\s*login = "radius"/\tlogin = "postgres"/' -e 's/^#\?\s*password = "radpass"/\tpassword = ""/' "$fr/mods-available/sql"
}

# until_ok SECONDS WHAT COMMAND...: runs COMMAND until it succeeds; gives up (status 1, which
# ends a `set -e` script) after SECONDS, or at once when the server started as $edge has exited.
until_ok() {
  local limit=$1 what=$2 t0=$SECONDS; shift 2
  until "$@"; do
    if [ -n "${edge:-}" ] && ! kill -0 "$edge" 2>/dev/null; then
      echo "the server exited while waiting for $what; the end of its log:" >&2
      tail -5 "$work/edge.log" >&2; return 1
    fi
    if [ $((SECONDS - t0)) -ge "$limit" ]; then echo "gave up waiting for $what after $limit s" >&2; return 1; fi
    sleep 0.2
  done
}
# edge_ready HTTP_PORT: until the server started as $edge says it is ready (two minutes at most).
edge_ready() { until_ok 120 "the server to be ready" curl -sf "127.0.0.1:$1/health/ready" -o /dev/null; }

# CPU time (user + system, clock ticks) of the server PID, and of the throwaway cluster: the
# postmaster with the children it has reaped, and its live children.
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
postgres_ticks() {
  local m; m=$(head -1 "$work/pg/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$m/stat"
    for c in $(pgrep -P "$m"); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null; done
  } | awk '{s += $1} END {print s + 0}'
}
# load_round LABEL PID radius-load-arguments...: one round of `radius-load load`; prints its
# req/s and appends "LABEL server_us postgres_us load_us" (CPU per answered request of the
# server PID, of PostgreSQL and of the load generator) to $work/cpu.txt.
load_round() {
  local label=$1 pid=$2; shift 2
  local s0 p0 s1 p1 out tick; tick=$(getconf CLK_TCK)
  s0=$(server_ticks "$pid"); p0=$(postgres_ticks)
  out=$($B/radius-load load --label "$label" "$@" | tee -a "$work/raw.txt")
  s1=$(server_ticks "$pid"); p1=$(postgres_ticks)
  awk -v l="$label" -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v t="$tick" '
    /^RESULT/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      n = f["accepts"] + f["rejects"]; if (n > 0) printf "%s %.1f %.1f %.1f\n", l, s * 1e6 / t / n, p * 1e6 / t / n, f["cpu_s"] * 1e6 / n }' \
    <<<"$out" >> "$work/cpu.txt"
  sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$out"
}
# cpu_table LABEL...: the median CPU per request of each label's rounds, as a table.
cpu_table() {
  printf "| %-28s | %9s | %11s | %14s | %9s |\n" "CPU per request (median)" "server" "PostgreSQL" "load generator" "all"
  printf "|%s|%s|%s|%s|%s|\n" "------------------------------" "-----------" "-------------" "----------------" "-----------"
  local l s p g
  column() { awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$work/cpu.txt" | median; }
  for l in "$@"; do
    grep -q "^$l " "$work/cpu.txt" || continue
    s=$(column "$l" 2); p=$(column "$l" 3); g=$(column "$l" 4)
    awk -v l="$l" -v s="$s" -v p="$p" -v g="$g" \
      'BEGIN { printf "| %-28s | %6.1f µs | %8.1f µs | %11.1f µs | %6.1f µs |\n", l, s, p, g, s + p + g }'
  done
}

# Median of the numbers on stdin.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# ratio A B [DIGITS=2]: A / B, or "-" when B is not positive.
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" -v d="${3:-2}" 'BEGIN { if (b > 0) printf "%.*f", d, a / b; else print "-" }'; }

# Stops the FreeRADIUS started as $frpid. With a busy rlm_sql pool it can ignore SIGTERM;
# escalate.
stop_fr() {
  kill "$frpid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$frpid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$frpid" 2>/dev/null || true
  wait "$frpid" 2>/dev/null || true
}
