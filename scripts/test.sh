#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need when it is missing
# (freeradius-utils for radclient, PostgreSQL server binaries, sqlite3, curl, systemd-analyze,
# wireguard-tools and iproute2, boringtun-cli from crates.io (userspace WireGuard for the
# tunnel tests), promtool from Debian's prometheus package, kubernetes-validate from PyPI,
# cargo-fuzz), then runs unit,
# black-box and fuzz smoke tests. The black-box tests start their own throwaway PostgreSQL
# cluster (as the postgres user) unless EDGE_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v radclient >/dev/null || need_apt+=(freeradius-utils)
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v curl >/dev/null || need_apt+=(curl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# WireGuard tools without their recommends (a kernel image and module the tests do not use:
# they run boringtun in network namespaces).
need_min=()
command -v wg >/dev/null || need_min+=(wireguard-tools)
command -v ip >/dev/null || need_min+=(iproute2)
if [ ${#need_min[@]} -gt 0 ]; then
  echo "installing: ${need_min[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_min[@]}" >/dev/null
fi
command -v boringtun-cli >/dev/null || cargo install boringtun-cli --version 0.7.1 --locked --quiet

# promtool only: unpacked from Debian's prometheus package (installing it would start a
# Prometheus server).
tools="$PWD/target/tools"
if command -v promtool >/dev/null; then
  export PROMTOOL=promtool
else
  if [ ! -x "$tools/usr/bin/promtool" ]; then
    mkdir -p "$tools/deb"
    (cd "$tools/deb" && apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; })
    dpkg-deb -x "$tools"/deb/prometheus_*.deb "$tools"
  fi
  export PROMTOOL="$tools/usr/bin/promtool"
fi
# The Kubernetes schemas, for the rendered Helm chart.
command -v kubernetes-validate >/dev/null || python3 -m pip install --quiet kubernetes-validate

cargo build --workspace --all-targets
cargo test --workspace -- --test-threads 4

# Fuzz smoke: every target builds and runs briefly on its seed corpus.
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --quiet
fi
for target in $(cd fuzz && cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  (cd fuzz && cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- -max_total_time=20 -max_len=4096)
done
echo "fuzz smoke: all targets ran clean"
