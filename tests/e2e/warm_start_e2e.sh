#!/usr/bin/env bash
# Warm start end to end (issue #15 item 3), as an operator would run it: the
# real binary on PostgreSQL and a Kafka sync topic, with --warm-start-file.
#   - a replica that cached 200 keys (and one known-absent key) writes them
#     to the file on SIGTERM (atomically: no temp file left behind);
#   - while it is down, psql changes one key and deletes another;
#   - restarted with the file, it reloads the keys in the background
#     (metrics cachecar_warm_start_*), and then every key is a cache hit
#     without a store read, the changed key at its new value and version,
#     the deleted one absent (no stale reload);
#   - a corrupt, a truncated and a foreign file are logged and ignored: the
#     replica starts cold and serves.
# CACHECAR_FAULT_POINT=warm_start_early (common/fault_point.h) plants a bug
# (the reload runs before the consumer is positioned, whose flush then drops
# it): the "served as hits after the reload" checks must fail.
# Usage: warm_start_e2e.sh CACHECAR GRPCURL PG_ENV_FILE KAFKA_SH KAFKA_DIR
set -uo pipefail
CACHECAR="$1"
GRPCURL="$2"
# shellcheck disable=SC1090
. "$3"   # PG_DSN, PSQL
KAFKA_SH="$4"
KAFKA_DIR="$5"
# shellcheck disable=SC1090
. "$KAFKA_DIR/env"   # KAFKA_BOOTSTRAP

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_setup cachecar-warm-e2e

db="warm_$$"
$PSQL -c "CREATE DATABASE $db" >/dev/null
dsn="${PG_DSN/dbname=cachecar_test/dbname=$db}"
PSQL="${PSQL/-d cachecar_test/-d $db}"
psql_q() { $PSQL -tA -c "$1" 2>&1; }
topic="warm-e2e-$$"
bash "$KAFKA_SH" create-topic "$KAFKA_DIR" "$topic" 2 >/dev/null
"$CACHECAR" migrate --store=postgres --postgres-dsn "$dsn" >/dev/null
gc() { "$GRPCURL" -plaintext "$@" 2>&1; }
warm="$work/warm-keys"
keys=200

addr="" metrics_port="" pid=""
start() {  # start LOGNAME: a replica with the warm start file
  addr="127.0.0.1:$(free_port)"
  metrics_port="$(free_port)"
  "$CACHECAR" serve --store=postgres --postgres-dsn "$dsn" --listen "$addr" \
    --metrics-listen "127.0.0.1:$metrics_port" --kafka-brokers "$KAFKA_BOOTSTRAP" \
    --sync-topic "$topic" --replica-id warm --max-staleness 2s \
    --warm-start-file "$warm" >"$work/$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do
    gc -max-time 1 "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING && break
    sleep 0.1
  done
}
metric() { scrape_metrics "$metrics_port" | awk -v n="$1" '$1 == n {print $2}'; }
# Waits (30 s at most) until the replica vouches for its cache (no bypass)
# and, with "done", until the warm start has finished.
wait_fresh() {
  for _ in $(seq 1 300); do
    if [ "$(metric cachecar_sync_bypass)" = "0" ] &&
      { [ "${1:-}" != "done" ] || [ "$(metric cachecar_warm_start_done)" = "1" ]; }; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
rc=""
stop() {  # SIGTERM, then wait: the exit status lands in $rc (no subshell: wait needs the parent)
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
}
batch_all() {  # one BatchGet of every key (CACHED)
  local list
  list="$(seq -f 'w:%g' 1 $keys | sed 's/.*/"&"/' | paste -sd,)"
  gc -d "{\"keys\":[$list,\"absent:1\"]}" "$addr" cachecar.v1.Cache/BatchGet
}
count() { grep -c -- "$1" <<<"$2"; }

# --- a replica caches 200 keys and one absent key ---------------------------
psql_q "INSERT INTO cachecar_entries (namespace, key, value) SELECT 'default', 'w:' || i, convert_to('value-' || i, 'UTF8') FROM generate_series(1, $keys) i" >/dev/null
start first
if wait_fresh; then ok "first replica within max_staleness"; else not_ok "first replica within max_staleness" "$(tail -5 "$work/first.log")"; fi
out="$(batch_all)"
check "first start: no file yet, said plainly" "$(cat "$work/first.log")" "no file at $warm yet"
check "first read loads from the store" "$out" '"source": "SOURCE_STORE"'
out="$(batch_all)"
sources="$(count '"source": "SOURCE_CACHE"' "$out")"
if [ "$sources" = "$((keys + 1))" ]; then ok "then all $((keys + 1)) keys are cached"; else not_ok "then all $((keys + 1)) keys are cached" "$sources from the cache"; fi
v7_old="$(psql_q "SELECT version FROM cachecar_entries WHERE key = 'w:7'")"
stop
check "SIGTERM: exit 0" "$rc" "0"
check "SIGTERM: the keys are saved" "$(cat "$work/first.log")" "warm start: saved $((keys + 1)) keys to $warm"
if [ -s "$warm" ] && [ -z "$(ls "$work" | grep 'warm-keys.tmp')" ]; then ok "the file is there, no temp file left"; else
  not_ok "the file is there, no temp file left" "$(ls -la "$work")"; fi
if grep -q "value-1" "$warm"; then not_ok "the file holds keys, not values"; else ok "the file holds keys, not values"; fi

# --- while it is down, the table changes --------------------------------------
psql_q "UPDATE cachecar_entries SET value = convert_to('changed', 'UTF8') WHERE key = 'w:7'" >/dev/null
psql_q "DELETE FROM cachecar_entries WHERE key = 'w:8'" >/dev/null
v7_new="$(psql_q "SELECT version FROM cachecar_entries WHERE key = 'w:7'")"

# --- restart with the file -------------------------------------------------------
start second
if wait_fresh done; then ok "restart: warm start done, within max_staleness"; else
  not_ok "restart: warm start done, within max_staleness" "$(grep 'warm start' "$work/second.log")"; fi
check "restart: the log names the file" "$(cat "$work/second.log")" "warm start: $((keys + 1)) keys of 1 namespaces in $warm"
check "restart: cachecar_warm_start_keys" "$(scrape_metrics "$metrics_port")" "cachecar_warm_start_keys $((keys + 1))"
check "restart: every key loaded" "$(scrape_metrics "$metrics_port")" "cachecar_warm_start_keys_total{result=\"loaded\"} $((keys + 1))"
check "restart: progress 1" "$(scrape_metrics "$metrics_port")" "cachecar_warm_start_progress 1"
loads_before="$(metric 'cachecar_store_loads_total{namespace="default"}')"
out="$(batch_all)"
loads_after="$(metric 'cachecar_store_loads_total{namespace="default"}')"
sources="$(count '"source": "SOURCE_CACHE"' "$out")"
if [ "$sources" = "$((keys + 1))" ]; then ok "after the reload all $((keys + 1)) keys are cache hits"; else
  not_ok "after the reload all $((keys + 1)) keys are cache hits" "$sources from the cache"; fi
if [ "$loads_before" = "$loads_after" ]; then ok "and the BatchGet read nothing from the store"; else
  not_ok "and the BatchGet read nothing from the store" "loads $loads_before -> $loads_after"; fi
out7="$(gc -d '{"key":"w:7"}' "$addr" cachecar.v1.Cache/Get)"
check "the key changed while down is served at its new value (no stale reload)" "$out7" '"value": "Y2hhbmdlZA=="'
check "at its new version $v7_new (was $v7_old)" "$out7" "\"version\": \"$v7_new\""
check "from the cache" "$out7" '"source": "SOURCE_CACHE"'
out8="$(gc -d '{"key":"w:8"}' "$addr" cachecar.v1.Cache/Get)"
if grep -q '"found": true' <<<"$out8"; then not_ok "the key deleted while down is absent" "$out8"; else
  ok "the key deleted while down is absent"; fi
stop
check "second stop: exit 0" "$rc" "0"

# --- bad files are logged and ignored ---------------------------------------------
cp "$warm" "$work/good"
head -c "$(($(stat -c %s "$work/good") / 2))" "$work/good" >"$warm"
start truncated
check "a truncated file: logged" "$(cat "$work/truncated.log")" "not a usable warm start file"
check "and the replica serves (cold)" "$(gc -d '{"key":"w:1"}' "$addr" cachecar.v1.Cache/Get)" '"value"'
check "no keys loaded" "$(scrape_metrics "$metrics_port")" "cachecar_warm_start_keys 0"
stop
cp "$work/good" "$warm"
printf '\x01' | dd of="$warm" bs=1 seek=40 conv=notrunc 2>/dev/null
start corrupt
check "a corrupt file (one byte changed): the checksum says so" "$(cat "$work/corrupt.log")" "checksum does not match"
check "and the replica serves" "$(gc -d '{"key":"w:1"}' "$addr" cachecar.v1.Cache/Get)" '"value"'
stop
cp "$CACHECAR" "$warm"
start foreign
check "a foreign file (the binary): logged" "$(cat "$work/foreign.log")" "magic"
check "and the replica serves" "$(gc -d '{"key":"w:1"}' "$addr" cachecar.v1.Cache/Get)" '"value"'
stop
check "and stops cleanly, replacing the bad file" "$rc" "0"
check "--help documents --warm-start-file" "$("$CACHECAR" --help)" "--warm-start-file"

$PSQL -c "DROP DATABASE $db" >/dev/null 2>&1 || true
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
