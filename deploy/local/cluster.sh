#!/usr/bin/env bash
# A local cachecar cluster on loopback, for trying the sync with grpcurl:
# a throwaway PostgreSQL 15, a one-node Kafka (the test suite's own scripts),
# the sync topic, and three cachecar replicas (a, b, c) sharing both.
#
#   deploy/local/cluster.sh start [DIR]   build if needed, start everything,
#                                         wait until every replica is ready
#                                         and in sync
#   deploy/local/cluster.sh stop [DIR]    stop the replicas, Kafka, PostgreSQL
#   deploy/local/cluster.sh status [DIR]  each replica's readiness
#
# DIR (default /tmp/cachecar-cluster) holds the logs and env files. Replica i
# serves gRPC on 127.0.0.1:$((BASE_PORT+i)) and metrics on
# 127.0.0.1:$((BASE_PORT+10+i)) (BASE_PORT=50050 unless set, so a is 50051).
# CLUSTER_BIN overrides the binary (default build/cmd/cachecar/cachecar).
# Needs the packages of scripts/deps.sh (run it first on a fresh machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cmd="${1:-}"
dir="${2:-/tmp/cachecar-cluster}"
base="${BASE_PORT:-50050}"
replicas=(a b c)
bin="${CLUSTER_BIN:-$root/build/cmd/cachecar/cachecar}"
topic=cachecar-sync

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

grpcurl_bin() {
  if [ -x "$root/.tools/bin/grpcurl" ]; then echo "$root/.tools/bin/grpcurl"; else bash "$root/scripts/install_grpcurl.sh"; fi
}

# ready PORT → 0 when health readiness is SERVING and the replica is in sync
# (cachecar.v1.Cache/sync: positioned on the topic, within max_staleness),
# so a write made now reaches its cache.
ready() {
  local name
  for name in readiness cachecar.v1.Cache/sync; do
    "$grpcurl" -plaintext -max-time 2 -d "{\"service\":\"$name\"}" "127.0.0.1:$1" \
      grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' || return 1
  done
}

start() {
  mkdir -p "$dir"
  if [ ! -x "$bin" ]; then
    echo "cluster: building cachecar"
    (cd "$root" && cmake --preset default >/dev/null && cmake --build build --target cachecar -j2)
  fi
  grpcurl="$(grpcurl_bin)"
  bash "$root/tests/pg/pg.sh" start "$dir/pg"
  bash "$root/tests/kafka/kafka.sh" start "$dir/kafka"
  bash "$root/tests/kafka/kafka.sh" create-topic "$dir/kafka" "$topic" 3
  # shellcheck disable=SC1091
  . "$dir/pg/env"
  # shellcheck disable=SC1091
  . "$dir/kafka/env"
  "$bin" migrate --store=postgres --postgres-dsn="$PG_DSN"
  local i=0
  for r in "${replicas[@]}"; do
    i=$((i + 1))
    "$bin" serve --store=postgres --postgres-dsn="$PG_DSN" \
      --kafka-brokers="$KAFKA_BOOTSTRAP" --sync-topic="$topic" --replica-id="$r" \
      --listen="127.0.0.1:$((base + i))" --metrics-listen="127.0.0.1:$((base + 10 + i))" \
      >"$dir/replica-$r.log" 2>&1 &
    echo $! >"$dir/replica-$r.pid"
  done
  i=0
  for r in "${replicas[@]}"; do
    i=$((i + 1))
    local waited=0
    until ready $((base + i)); do
      if ! kill -0 "$(cat "$dir/replica-$r.pid")" 2>/dev/null || [ "$waited" -ge 60 ]; then
        echo "cluster: replica $r did not become ready; its log:" >&2
        tail -20 "$dir/replica-$r.log" >&2
        exit 1
      fi
      sleep 0.5
      waited=$((waited + 1))
    done
  done
  cat <<MSG
cluster: ready. Replicas a, b, c on 127.0.0.1:$((base + 1)), :$((base + 2)), :$((base + 3))
  (metrics :$((base + 11))-:$((base + 13)), logs in $dir). Try:
  $grpcurl -plaintext -d '{"key":"user:1","value":"YWxpY2U="}' 127.0.0.1:$((base + 1)) cachecar.v1.Cache/Put
  $grpcurl -plaintext -d '{"key":"user:1"}' 127.0.0.1:$((base + 2)) cachecar.v1.Cache/Get
  $grpcurl -plaintext -d '{"namespace":"default"}' -max-time 30 127.0.0.1:$((base + 3)) cachecar.v1.Cache/Watch
  ${PSQL} -c "UPDATE cachecar_entries SET value = 'bob' WHERE key = 'user:1'"
Stop it with: $0 stop $dir
MSG
}

stop() {
  for r in "${replicas[@]}"; do
    local pidfile="$dir/replica-$r.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid="$(cat "$pidfile")"
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  bash "$root/tests/kafka/kafka.sh" stop "$dir/kafka"
  bash "$root/tests/pg/pg.sh" stop "$dir/pg"
  echo "cluster: stopped"
}

status() {
  grpcurl="$(grpcurl_bin)"
  local i=0
  for r in "${replicas[@]}"; do
    i=$((i + 1))
    if ready $((base + i)); then echo "replica $r (:$((base + i))): SERVING"; else echo "replica $r (:$((base + i))): not ready"; fi
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
