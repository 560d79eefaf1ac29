#!/usr/bin/env bash
# Side by side on this machine: cachecar's Put, Get (cache hit) and Get
# STRONG (read the store) with the memory store and with PostgreSQL 15
# (throwaway cluster from tests/pg/pg.sh), measured with ghz. Prints a
# markdown table: p50/p99 and throughput, and the postgres/memory ratio.
# Not part of the test suite. Usage: bench/store_paths.sh [requests] [concurrency...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-3000}"
shift || true
concurrencies=("${@:-1 8}")
# shellcheck disable=SC2206
concurrencies=(${concurrencies[*]})
cachecar="$root/build/cmd/cachecar/cachecar"
ghz="${GHZ:-$(command -v ghz || echo /tmp/ghzbin/ghz)}"
[ -x "$cachecar" ] || { echo "build first: cmake --preset default && cmake --build build -j2" >&2; exit 1; }
[ -x "$ghz" ] || { echo "ghz not found: GOBIN=/tmp/ghzbin go install github.com/bojand/ghz/cmd/ghz@v0.120.0" >&2; exit 1; }

work="$(mktemp -d /tmp/cachecar-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash "$root/tests/pg/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash "$root/tests/pg/pg.sh" start "$work/pg" >/dev/null
# shellcheck disable=SC1091
. "$work/pg/env"
"$cachecar" migrate --store=postgres --postgres-dsn "$PG_DSN" >/dev/null

start() {  # start NAME PORT ARGS...
  local port="$2"
  shift 2
  "$cachecar" --listen "127.0.0.1:$port" --log-level warning "$@" >"$work/$port.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do
    "$root/.tools/bin/grpcurl" -plaintext "127.0.0.1:$port" grpc.health.v1.Health/Check >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "cachecar on $port did not start" >&2
  exit 1
}
start memory 50611
start postgres 50612 --store=postgres --postgres-dsn "$PG_DSN"

# run PORT CALL DATA CONCURRENCY → "p50_ms p99_ms rps"
run() {
  "$ghz" --insecure --format=json -n "$n" -c "$4" --call "$2" -d "$3" \
    "127.0.0.1:$1" 2>/dev/null |
    python3 -c 'import json,sys
r=json.load(sys.stdin); p={x["percentage"]:x["latency"] for x in r["latencyDistribution"]}
print("%.3f %.3f %.0f" % (p[50]/1e6, p[99]/1e6, r["rps"]))'
}

echo "| call | in flight | memory p50 / p99 ms | memory req/s | postgres p50 / p99 ms | postgres req/s | p50 ratio (pg/mem) |"
echo "|---|---|---|---|---|---|---|"
for c in "${concurrencies[@]}"; do
  for spec in \
    "Put|cachecar.v1.Cache/Put|{\"key\":\"k{{.RequestNumber}}\",\"value\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" \
    "Get (hit)|cachecar.v1.Cache/Get|{\"key\":\"k1\"}" \
    "Get STRONG|cachecar.v1.Cache/Get|{\"key\":\"k{{.RequestNumber}}\",\"consistency\":\"CONSISTENCY_STRONG\"}"; do
    IFS='|' read -r name call data <<<"$spec"
    read -r mp50 mp99 mrps <<<"$(run 50611 "$call" "$data" "$c")"
    read -r pp50 pp99 prps <<<"$(run 50612 "$call" "$data" "$c")"
    ratio="$(python3 -c "print('%.1fx' % ($pp50/$mp50))")"
    echo "| $name | $c | $mp50 / $mp99 | $mrps | $pp50 / $pp99 | $prps | $ratio |"
  done
done
