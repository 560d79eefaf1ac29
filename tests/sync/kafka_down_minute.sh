#!/usr/bin/env bash
# A manual check of issue #12's "Kafka down for a minute" rule (not in ctest:
# it takes ~90 s and the cluster tests assert the same with a shorter
# outage): two replicas on a real PostgreSQL and Kafka, the broker SIGKILLed
# for DOWN seconds (default 60) while a write through r0 is read on r1 every
# second. Prints how many readiness checks were not SERVING (want 0), how
# many reads were wrong (want 0), the sync/store health names and the sync
# metrics during the outage, and how long after the broker is back both
# replicas are in sync again (no restart).
#
#   tests/sync/kafka_down_minute.sh [BUILD_DIR]   (default build)
# Ports: PORT_BASE (default 56100) .. +1 for gRPC, +100 .. +101 for metrics.
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
B="${1:-build}/cmd/cachecar/cachecar"
G=$(bash scripts/install_grpcurl.sh)
D=$(mktemp -d /tmp/cachecar-kafka-down.XXXXXX)
DOWN="${DOWN:-60}"
PB="${PORT_BASE:-56100}"
bash tests/pg/pg.sh start $D/pg >/dev/null; . $D/pg/env
bash tests/kafka/kafka.sh start $D/kf >/dev/null; . $D/kf/env
bash tests/kafka/kafka.sh create-topic $D/kf kdown 4 >/dev/null

pids=()
for i in 0 1; do
  $B --listen 127.0.0.1:$((PB+i)) --metrics-listen 127.0.0.1:$((PB+100+i)) --store=postgres --postgres-dsn "$PG_DSN" \
     --kafka-brokers "$KAFKA_BOOTSTRAP" --sync-topic kdown --replica-id r$i --migrate=true --log-level warning > $D/r$i.log 2>&1 &
  pids+=($!)
done
sleep 8
hc() { $G -plaintext -d "{\"service\":\"$2\"}" 127.0.0.1:$1 grpc.health.v1.Health/Check 2>&1 | grep -o '"status": "[A-Z_]*"' | cut -d'"' -f4; }
echo "before: r0 readiness=$(hc $PB readiness) sync=$(hc $PB cachecar.v1.Cache/sync) store=$(hc $PB cachecar.v1.Cache/store)"
$G -plaintext -d '{"namespace":"default","key":"k","value":"djE="}' 127.0.0.1:$PB cachecar.v1.Cache/Put >/dev/null 2>&1
bash tests/kafka/kafka.sh broker-stop $D/kf --kill >/dev/null
t0=$(date +%s); notready=0; checks=0; badread=0
n=0
while [ $(( $(date +%s) - t0 )) -lt "$DOWN" ]; do
  for p in $PB $((PB+1)); do
    r=$(hc $p readiness); checks=$((checks+1)); [ "$r" = SERVING ] || notready=$((notready+1))
  done
  n=$((n+1))
  # a write through r0 while Kafka is down, read on r1 (must see it: bypass to PG)
  $G -plaintext -d "{\"namespace\":\"default\",\"key\":\"k\",\"value\":\"$(printf v$n | base64)\"}" 127.0.0.1:$PB cachecar.v1.Cache/Put >/dev/null 2>&1
  got=$($G -plaintext -d '{"namespace":"default","key":"k"}' 127.0.0.1:$((PB+1)) cachecar.v1.Cache/Get 2>&1 | grep -o '"value": "[^"]*"' | cut -d'"' -f4 | base64 -d 2>/dev/null)
  [ "$got" = "v$n" ] || { badread=$((badread+1)); echo "read on r1: '$got' want v$n"; }
  sleep 1
done
echo "during ${DOWN} s down: readiness checks $checks, not SERVING $notready; r1 reads of r0's writes wrong $badread of $n"
echo "during: r0 sync=$(hc $PB cachecar.v1.Cache/sync) store=$(hc $PB cachecar.v1.Cache/store)"
curl -s 127.0.0.1:$((PB+100))/metrics | grep -E '^cachecar_(sync|kafka|dependency|bypass)[a-z_]*' | grep -v '_bucket' | head -12
bash tests/kafka/kafka.sh broker-start $D/kf >/dev/null
for i in $(seq 1 30); do [ "$(hc $PB cachecar.v1.Cache/sync)" = SERVING ] && [ "$(hc $((PB+1)) cachecar.v1.Cache/sync)" = SERVING ] && break; sleep 1; done
echo "after broker back ${i}s: r0 sync=$(hc $PB cachecar.v1.Cache/sync) r1 sync=$(hc $((PB+1)) cachecar.v1.Cache/sync) readiness=$(hc $PB readiness)/$(hc $((PB+1)) readiness); pids alive: $(for p in ${pids[@]}; do kill -0 $p 2>/dev/null && echo -n "y "; done)"
kill ${pids[@]}; wait ${pids[@]} 2>/dev/null
bash tests/kafka/kafka.sh stop $D/kf >/dev/null; bash tests/pg/pg.sh stop $D/pg >/dev/null
rm -rf "$D"
