# Sourced by the benchmark scripts: a scratch directory and a throwaway PostgreSQL cluster
# (run as the postgres user), both removed on exit, with the bench processes in `pids`.
#
#   work_and_postgres PREFIX PGPORT   -> $work, $PG (postgres://…:PGPORT, no database name)
work_and_postgres() {
  work=$(mktemp -d "/tmp/$1.XXXX"); chmod 755 "$work"
  pids=()
  trap 'cleanup_bench' EXIT
  mkdir -p "$work/pg" && chown postgres "$work/pg" "$work"
  runuser -u postgres -- /usr/lib/postgresql/*/bin/initdb -A trust -U postgres -D "$work/pg" >/dev/null
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" \
    -o "-p $2 -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
  PG=postgres://postgres@127.0.0.1:$2
}

cleanup_bench() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
