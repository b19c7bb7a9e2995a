# Sourced by the benchmark scripts: a scratch directory and a throwaway PostgreSQL cluster
# (run as the postgres user), both removed on exit, with the bench processes in `pids`.
#
#   work_and_postgres PREFIX PGPORT   -> $work, $PG (postgres://…:PGPORT, no database name)
# PG_SETTINGS (optional): more server settings, as "-c name=value ..." for postgres.
work_and_postgres() {
  work=$(mktemp -d "/tmp/$1.XXXX"); chmod 755 "$work"
  pids=()
  trap 'cleanup_bench' EXIT
  mkdir -p "$work/pg" && chown postgres "$work/pg" "$work"
  runuser -u postgres -- /usr/lib/postgresql/*/bin/initdb -A trust -U postgres -D "$work/pg" >/dev/null
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" \
    -o "-p $2 -k $work -c listen_addresses=127.0.0.1 ${PG_SETTINGS:-}" -l "$work/pg.log" -w start >/dev/null
  PG=postgres://postgres@127.0.0.1:$2
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

# Median of the numbers on stdin; a / b to two places ("-" when b is 0).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Stops the FreeRADIUS started as $frpid. With a busy rlm_sql pool it can ignore SIGTERM;
# escalate.
stop_fr() {
  kill "$frpid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$frpid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$frpid" 2>/dev/null || true
  wait "$frpid" 2>/dev/null || true
}
