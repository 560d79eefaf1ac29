#!/usr/bin/env bash
# Apply throughput end to end (issue #15 item 4): real `cachecar serve`
# replicas on PostgreSQL + Kafka (tests/pg/pg.sh, tests/kafka/kafka.sh,
# throwaway) and a sync topic with PARTITIONS partitions. Each replica
# caches KEYS keys (as absent, by BatchGets, so every event replaces a cached
# entry, as on a warm replica; WARM=0 skips it: update mode then applies
# nothing a replica never read, and each event is a version check). The
# replicas are stopped (SIGSTOP), the topic is filled with EVENTS UPSERTs of
# 100-byte values over those keys (cachecar_fill_topic), and they are let go
# together (SIGCONT): how fast each one's cachecar_sync_events_total grows
# until it has applied them all is the figure, with its CPU time per event
# and its busiest threads (/proc/PID/task). Replicas run side by side in the
# same run, so their ratio holds on a loaded machine: one with the default
# consumer settings, and one per APPLY_FLAGS_<N> (N = 1, 2, ...) given, e.g.
#   APPLY_FLAGS_1="--kafka-property=max.partition.fetch.bytes=16777216"
#
# Usage: [WARM=0] [APPLY_FLAGS_1=...] bench/apply.sh [--build-dir DIR] [EVENTS] [KEYS] [PARTITIONS]
#        (defaults: build, 1000000, 100000, 6)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [[ "${1:-}" == "--build-dir" ]]; then
  build="$2"
  shift 2
fi
events=${1:-1000000}
keys=${2:-100000}
partitions=${3:-6}
warm=${WARM:-1}
bin="$build/cmd/cachecar/cachecar"
fill="$build/bench/apply/cachecar_fill_topic"
grpcurl=${GRPCURL:-$(bash scripts/install_grpcurl.sh)}
for f in "$bin" "$fill"; do
  [[ -x "$f" ]] || { echo "apply.sh: $f not built" >&2; exit 2; }
done
flags=("")
for n in 1 2 3 4; do
  v="APPLY_FLAGS_$n"
  [[ -n "${!v:-}" ]] && flags+=("${!v}")
done

work=$(mktemp -d /tmp/cachecar-apply.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null && kill "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  bash tests/kafka/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
  bash tests/pg/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/pg/pg.sh start "$work/pg" >/dev/null
bash tests/kafka/kafka.sh start "$work/kafka" >/dev/null
. "$work/pg/env"
. "$work/kafka/env"
topic=apply-bench
bash tests/kafka/kafka.sh create-topic "$work/kafka" "$topic" "$partitions" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin" migrate --store=postgres --postgres-dsn="$PG_DSN" >/dev/null

ports=() metrics_ports=()
for i in "${!flags[@]}"; do
  ports+=("$(free_port)")
  metrics_ports+=("$(free_port)")
  # shellcheck disable=SC2086 # the flags are words
  "$bin" serve --store=postgres --postgres-dsn="$PG_DSN" --kafka-brokers="$KAFKA_BOOTSTRAP" \
    --sync-topic="$topic" --replica-id="r$i" --listen="127.0.0.1:${ports[$i]}" \
    --metrics-listen="127.0.0.1:${metrics_ports[$i]}" --max-bytes=1GiB --audit-rate=0 \
    --log-level=warning ${flags[$i]} >"$work/cachecar$i.log" 2>&1 &
  pids+=($!)
done

metric() {  # replica $1: sum of the series starting with $2
  curl -s "http://127.0.0.1:${metrics_ports[$1]}/metrics" |
    awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { printf "%.0f\n", s }'
}
for i in "${!flags[@]}"; do
  for _ in $(seq 300); do
    [[ "$(metric "$i" cachecar_sync_positioned)" == 1 ]] && break
    sleep 0.1
  done
  [[ "$(metric "$i" cachecar_sync_positioned)" == 1 ]] ||
    { echo "apply.sh: replica $i not positioned" >&2; tail "$work/cachecar$i.log" >&2; exit 1; }
done

if [[ "$warm" == 1 ]]; then
  # The keys, cached as absent (none is in the store), 1000 per BatchGet.
  python3 - "$keys" "$work/batches" <<'EOF'
import json, os, sys
keys, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out)
for b in range(0, keys, 1000):
    with open(f"{out}/{b}.json", "w") as f:
        json.dump({"keys": [f"user:{k}" for k in range(b, min(keys, b + 1000))]}, f)
EOF
  for i in "${!flags[@]}"; do
    for f in "$work"/batches/*.json; do
      "$grpcurl" -plaintext -import-path proto -proto cachecar/v1/cache.proto -d @ \
        "127.0.0.1:${ports[$i]}" cachecar.v1.Cache/BatchGet <"$f" >/dev/null
    done
    echo "replica $i: cached entries $(metric "$i" cachecar_cache_entries)"
  done
fi

threads() {  # per thread of replica pid $1: tid comm cpu-ticks runqueue-wait-ns
  for t in /proc/"$1"/task/*; do
    echo "${t##*/} $(tr ' ' '_' <"$t/comm") $(awk '{ print $14 + $15 }' "$t/stat") $(cut -d' ' -f2 "$t/schedstat")"
  done
}
before=()
for i in "${!flags[@]}"; do
  before+=("$(metric "$i" cachecar_sync_events_total)")
  kill -STOP "${pids[$i]}"
done
"$fill" "$KAFKA_BOOTSTRAP" "$topic" "$events" "$keys" 1000000000
for i in "${!flags[@]}"; do threads "${pids[$i]}" >"$work/threads0.$i"; done
broker_pid=$(cat "$KAFKA_ROOT/kafka.pid")
broker_cpu() { awk '{ print $14 + $15 }' "/proc/$broker_pid/stat"; }
broker0=$(broker_cpu)
start=$(date +%s.%N)
for p in "${pids[@]}"; do kill -CONT "$p"; done
ends=()
for i in "${!flags[@]}"; do ends+=(""); done
left=${#flags[@]}
while ((left > 0)); do
  for i in "${!flags[@]}"; do
    [[ -n "${ends[$i]}" ]] && continue
    if (($(metric "$i" cachecar_sync_events_total) >= before[i] + events)); then
      ends[$i]=$(date +%s.%N)
      threads "${pids[$i]}" >"$work/threads1.$i"
      left=$((left - 1))
    fi
  done
  sleep 0.05
done
hz=$(getconf CLK_TCK)
broker1=$(broker_cpu)
echo "$events events, $partitions partitions, $keys keys ($([[ $warm == 1 ]] && echo cached || echo 'not cached')), replicas side by side:"
for i in "${!flags[@]}"; do
  cpu=$(join "$work/threads0.$i" "$work/threads1.$i" | awk -v hz="$hz" '{ s += $6 - $3 } END { print s / hz }')
  # join: tid comm0 cpu0 wait0 comm1 cpu1 wait1
  busiest=$(join "$work/threads0.$i" "$work/threads1.$i" |
    awk -v hz="$hz" '{ printf "%s %.2f (waited for a CPU %.2f)\n", $2, ($6 - $3) / hz, ($7 - $4) / 1e9 }' |
    sort -k2 -rn | head -2 | paste -sd, -)
  python3 - "$events" "$start" "${ends[$i]}" "$cpu" "${flags[$i]:-defaults}" "$busiest" <<'EOF'
import sys
n, t0, t1, cpu, what, busiest = sys.argv[1:]
n, secs, cpu = int(n), float(t1) - float(t0), float(cpu)
print(f"  [{what}] {secs:.2f} s = {n / secs:,.0f} events/s; CPU {cpu:.2f} s = "
      f"{cpu / n * 1e6:.2f} us/event; busiest threads (CPU s): {busiest}")
EOF
done
echo "  the broker (one JVM) used $(awk -v a="$broker0" -v b="$broker1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') CPU s meanwhile; load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs"
