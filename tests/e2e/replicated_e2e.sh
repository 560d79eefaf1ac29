#!/usr/bin/env bash
# Replicated namespaces across real replicas (issue #15 item 3): two
# `cachecar serve` processes on one PostgreSQL and one Kafka topic, with a
# namespace declared `replicated: true`.
#   - readiness waits for the whole table's load; then every row is a hit;
#   - an absent key is answered from the cache (found false, SOURCE_CACHE);
#   - a row deleted before the replicas started is answered from the cache
#     at its delete's version (its tombstone was loaded), not version 0;
#   - a row inserted by direct SQL reaches both replicas, and Get answers it
#     from the cache; an UPDATE and a DELETE by psql too;
#   - none of those Gets reads the store: cachecar_store_loads_total of the
#     namespace does not move (the store-read count, via metrics);
#   - a non-replicated namespace still misses to the store.
# Usage: replicated_e2e.sh CACHECAR GRPCURL PG_ENV_FILE KAFKA_SH KAFKA_DIR
set -uo pipefail
CACHECAR="$1"
GRPCURL="$2"
# shellcheck disable=SC1090
. "$3"
KAFKA_SH="$4"
KAFKA_DIR="$5"
# shellcheck disable=SC1090
. "$KAFKA_DIR/env"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_setup cachecar-replicated-e2e

db="repl_$$"
$PSQL -c "CREATE DATABASE $db" >/dev/null
dsn="${PG_DSN/dbname=cachecar_test/dbname=$db}"
PSQL="${PSQL/-d cachecar_test/-d $db}"
psql_q() { $PSQL -tA -c "$1" 2>&1; }
topic="repl-e2e-$$"
bash "$KAFKA_SH" create-topic "$KAFKA_DIR" "$topic" 3 >/dev/null
cat >"$work/cachecar.yaml" <<YAML
namespaces:
  - name: ref
    replicated: true
  - name: default
YAML
"$CACHECAR" migrate --config "$work/cachecar.yaml" --store=postgres --postgres-dsn "$dsn" >/dev/null
gc() { "$GRPCURL" -plaintext "$@" 2>&1; }
psql_q "INSERT INTO cachecar_entries (namespace, key, value) SELECT 'ref', 'r:' || i, convert_to('row-' || i, 'UTF8') FROM generate_series(1, 300) i" >/dev/null
psql_q "DELETE FROM cachecar_entries WHERE namespace = 'ref' AND key = 'r:300'" >/dev/null
tomb_version="$(psql_q "SELECT version FROM cachecar_tombstones WHERE namespace = 'ref' AND key = 'r:300'")"

declare -A addr metrics
for r in a b; do
  addr[$r]="127.0.0.1:$(free_port)"
  metrics[$r]="$(free_port)"
  "$CACHECAR" serve --config "$work/cachecar.yaml" --store=postgres --postgres-dsn "$dsn" \
    --listen "${addr[$r]}" --metrics-listen "127.0.0.1:${metrics[$r]}" \
    --kafka-brokers "$KAFKA_BOOTSTRAP" --sync-topic "$topic" --replica-id "repl-$r" \
    >"$work/$r.log" 2>&1 &
  pids+=("$!")
done
metric() { scrape_metrics "${metrics[$1]}" | awk -v n="$2" '$1 == n {print $2}'; }
loads() { metric "$1" 'cachecar_store_loads_total{namespace="ref"}'; }
for r in a b; do
  ready=""
  for _ in $(seq 1 300); do
    if gc -max-time 1 -d '{"service":"readiness"}' "${addr[$r]}" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"' &&
      [ "$(metric "$r" cachecar_sync_bypass)" = "0" ]; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ -n "$ready" ]; then ok "replica $r: ready and within max_staleness"; else
    not_ok "replica $r: ready and within max_staleness" "$(tail -5 "$work/$r.log")"; fi
  check "replica $r: the whole table was loaded" "$(cat "$work/$r.log")" "namespace ref (replicated): 300 rows loaded"
  check "replica $r: complete" "$(scrape_metrics "${metrics[$r]}")" 'cachecar_replicated_complete{namespace="ref"} 1'
done
for r in a b; do
  loaded_at="$(grep -n 'rows loaded' "$work/$r.log" | head -1 | cut -d: -f1)"
  ready_at="$(grep -n 'ready: health readiness SERVING' "$work/$r.log" | head -1 | cut -d: -f1)"
  if [ -n "$loaded_at" ] && [ -n "$ready_at" ] && [ "$loaded_at" -lt "$ready_at" ]; then
    ok "replica $r: readiness came after the whole load (log lines $loaded_at < $ready_at)"
  else
    not_ok "replica $r: readiness came after the whole load" "loaded at line $loaded_at, ready at $ready_at"
  fi
done

declare -A base
for r in a b; do base[$r]="$(loads "$r")"; done
for r in a b; do
  out="$(gc -d '{"namespace":"ref","key":"r:17"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
  check "replica $r: a row loaded at start is a hit" "$out" '"source": "SOURCE_CACHE"'
  out="$(gc -emit-defaults -d '{"namespace":"ref","key":"no-such-row"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
  check "replica $r: an absent key is answered from the cache" "$out" '"source": "SOURCE_CACHE"'
  check "replica $r: as not found" "$out" '"found": false'
  out="$(gc -emit-defaults -d '{"namespace":"ref","key":"r:300"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
  check "replica $r: a key deleted before the start is answered from the cache" "$out" '"source": "SOURCE_CACHE"'
  check "replica $r: at its delete's version $tomb_version" "$out" "\"version\": \"$tomb_version\""
done

psql_q "INSERT INTO cachecar_entries (namespace, key, value) VALUES ('ref', 'sql:new', convert_to('inserted', 'UTF8'))" >/dev/null
psql_q "UPDATE cachecar_entries SET value = convert_to('updated', 'UTF8') WHERE namespace = 'ref' AND key = 'r:2'" >/dev/null
psql_q "DELETE FROM cachecar_entries WHERE namespace = 'ref' AND key = 'r:3'" >/dev/null
for r in a b; do
  out=""
  for _ in $(seq 1 100); do
    out="$(gc -d '{"namespace":"ref","key":"sql:new"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
    grep -q '"found": true' <<<"$out" && break
    sleep 0.1
  done
  check "replica $r: a row inserted by direct SQL arrives" "$out" '"value": "aW5zZXJ0ZWQ="'
  check "replica $r: and is answered from the cache" "$out" '"source": "SOURCE_CACHE"'
  for _ in $(seq 1 100); do
    out="$(gc -d '{"namespace":"ref","key":"r:2"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
    grep -q '"value": "dXBkYXRlZA=="' <<<"$out" && break
    sleep 0.1
  done
  check "replica $r: a psql UPDATE arrives, from the cache" "$out" '"source": "SOURCE_CACHE"'
  for _ in $(seq 1 100); do
    out="$(gc -emit-defaults -d '{"namespace":"ref","key":"r:3"}' "${addr[$r]}" cachecar.v1.Cache/Get)"
    grep -q '"found": false' <<<"$out" && break
    sleep 0.1
  done
  check "replica $r: a psql DELETE arrives" "$out" '"found": false'
  check "replica $r: answered from the cache" "$out" '"source": "SOURCE_CACHE"'
  now="$(loads "$r")"
  if [ "$now" = "${base[$r]}" ]; then ok "replica $r: none of these Gets read the store (loads ${base[$r]})"; else
    not_ok "replica $r: none of these Gets read the store" "cachecar_store_loads_total{namespace=\"ref\"} ${base[$r]} -> $now"; fi
  check "replica $r: absent answers counted" "$(scrape_metrics "${metrics[$r]}")" 'cachecar_replicated_absent_answers_total{namespace="ref"}'
done
out="$(gc -d '{"key":"plain"}' "${addr[a]}" cachecar.v1.Cache/Get)"
check "a non-replicated namespace still reads the store on a miss" "$out" '"source": "SOURCE_STORE"'

for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait
$PSQL -c "DROP DATABASE $db" >/dev/null 2>&1 || true
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
