#!/usr/bin/env bash
# End to end with PostgreSQL, as an operator would: `cachecar migrate`, then
# the real binary with --store=postgres (DSN from a file, as a mounted
# Secret), driven by grpcurl, with psql writing the table behind its back.
# Usage: postgres_e2e.sh CACHECAR GRPCURL PG_ENV_FILE
set -uo pipefail
CACHECAR="$1"
GRPCURL="$2"
# shellcheck disable=SC1090
. "$3"   # PG_DSN, PSQL (tests/pg/pg.sh start)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_setup cachecar-pg-e2e
psql_q() { $PSQL -tA -c "$1" 2>&1; }

db="e2e_$$"
$PSQL -c "CREATE DATABASE $db" >/dev/null
dsn="${PG_DSN/dbname=cachecar_test/dbname=$db}"
password="pg-test-secret"
printf '%s\n' "$dsn" >"$work/dsn"
PSQL="${PSQL/-d cachecar_test/-d $db}"

addr="127.0.0.1:$(free_port)"
gc() { "$GRPCURL" -plaintext "$@" 2>&1; }

# --- serve before migrate: it keeps running, says so, picks the schema up --
early_addr="127.0.0.1:$(free_port)"
"$CACHECAR" serve --store=postgres --postgres-dsn-file "$work/dsn" --listen "$early_addr" \
  --metrics-listen "" >"$work/early.log" 2>&1 &
early_pid=$!
pids+=("$early_pid")
for _ in $(seq 1 100); do
  gc -max-time 1 -d '{"service":"liveness"}' "$early_addr" grpc.health.v1.Health/Check 2>/dev/null \
    | grep -q SERVING && break
  sleep 0.1
done
out="$(gc -d '{"key":"early","value":"eA=="}' "$early_addr" cachecar.v1.Cache/Put)"
check "serve without a schema: a Put says to run migrate" "$out" "run \`cachecar migrate\`"
check "serve without a schema: FAILED_PRECONDITION" "$out" "Code: FailedPrecondition"
out="$(gc -d '{"service":"readiness"}' "$early_addr" grpc.health.v1.Health/Check)"
check "serve without a schema: still ready (it answers, and says what to fix)" "$out" '"status": "SERVING"'
out="$(gc -d '{"service":"cachecar.v1.Cache/store"}' "$early_addr" grpc.health.v1.Health/Check)"
check "serve without a schema: store health NOT_SERVING" "$out" '"status": "NOT_SERVING"'
check "serve without a schema: the log says to run migrate" "$(cat "$work/early.log")" "cachecar migrate"
if kill -0 "$early_pid" 2>/dev/null; then ok "serve without a schema keeps running"; else
  not_ok "serve without a schema keeps running" "$(tail -5 "$work/early.log")"; fi
out="$("$CACHECAR" migrate --store=postgres --postgres-dsn-file "$work/dsn" 2>&1)"
check "migrate creates the schema" "$out" "cachecar_outbox, cachecar_version_seq: ready"
early_put=""
for _ in $(seq 1 150); do
  early_put="$(gc -d '{"key":"early","value":"eA=="}' "$early_addr" cachecar.v1.Cache/Put)"
  grep -q '"version"' <<<"$early_put" && break
  sleep 0.1
done
check "once migrated, the same process writes (no restart)" "$early_put" '"version"'
kill -TERM "$early_pid"; wait "$early_pid"
out="$("$CACHECAR" migrate --store=postgres --postgres-dsn-file "$work/dsn" 2>&1)"
check "migrate again changes nothing and succeeds" "$out" ": ready"
out="$("$CACHECAR" migrate 2>&1)"
check "migrate without postgres explains" "$out" "migrate needs store: postgres"
out="$(CACHECAR_POSTGRES_DSN="host=127.0.0.1 port=1 password=$password" "$CACHECAR" migrate --store=postgres 2>&1)"
check "unreachable database: a clear error" "$out" "cannot connect to PostgreSQL (host=127.0.0.1 port=1 password=***)"
if grep -qF "$password" <<<"$out"; then not_ok "the password is not printed" "$out"; else ok "the password is not printed"; fi

# --- serve -----------------------------------------------------------------
probe_addr="127.0.0.1:$(free_port)"
metrics_port="$(free_port)"
"$CACHECAR" serve --store=postgres --postgres-dsn-file "$work/dsn" --listen "$addr" \
  --probe-listen "$probe_addr" --metrics-listen "127.0.0.1:$metrics_port" \
  --log-format json >"$work/server.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do
  gc -max-time 1 "$addr" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING && break
  sleep 0.1
done
out="$(gc -d '{"key":"user:1","value":"YWxpY2U="}' "$addr" cachecar.v1.Cache/Put)"
check "Put writes through" "$out" '"version"'
v1="$(sed -n 's/.*"version": "\([0-9]*\)".*/\1/p' <<<"$out")"
check "the row is in PostgreSQL with the Put's version" \
  "$(psql_q "SELECT convert_from(value,'UTF8') || '@' || version FROM cachecar_entries WHERE key = 'user:1'")" "alice@$v1"
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Get)"
check "Get after Put is a cache hit" "$out" '"source": "SOURCE_CACHE"'
psql_q "UPDATE cachecar_entries SET value = 'bob' WHERE key = 'user:1'" >/dev/null
out="$(gc -d '{"key":"user:1","consistency":"CONSISTENCY_STRONG"}' "$addr" cachecar.v1.Cache/Get)"
check "STRONG Get sees a psql UPDATE" "$out" '"value": "Ym9i"'
check "STRONG Get reads PostgreSQL" "$out" '"source": "SOURCE_STORE"'
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Get)"
check "and refreshes the cached entry" "$out" '"value": "Ym9i"'
out="$(gc -d '{"key":"user:2"}' "$addr" cachecar.v1.Cache/Get)"
check "a miss reads through (absent)" "$out" '"source": "SOURCE_STORE"'
out="$(gc -d "{\"key\":\"user:1\",\"value\":\"eA==\",\"if_version\":\"$v1\"}" "$addr" cachecar.v1.Cache/Put)"
check "a stale if_version is ABORTED" "$out" "Code: Aborted"
check "naming the version found" "$out" "expected version $v1"
out="$(gc -d "{\"key\":\"'); DROP TABLE cachecar_entries; --\",\"value\":\"eA==\"}" "$addr" cachecar.v1.Cache/Put)"
check "an injection-looking key is stored as data" "$out" '"version"'
# (three rows: early, user:1 and that one)
check "the table is still there" "$(psql_q "SELECT count(*) FROM cachecar_entries")" "3"
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Delete)"
check "Delete removes the row" "$(psql_q "SELECT count(*) FROM cachecar_entries WHERE key = 'user:1'")" "0"
check "and writes an outbox DELETE" "$(psql_q "SELECT op FROM cachecar_outbox WHERE key = 'user:1' ORDER BY id DESC LIMIT 1")" "DELETE"
metrics="$(scrape_metrics "$metrics_port")"
check "metrics: outbox depth" "$metrics" "cachecar_outbox_rows "
check "metrics: outbox oldest age" "$metrics" "cachecar_outbox_oldest_age_seconds "
check "metrics: postgres store calls" "$metrics" 'cachecar_store_operations_total{code="OK",op="put",store="postgres"}'
check "metrics: postgres reachable" "$metrics" 'cachecar_store_reachable{store="postgres"} 1'
if grep -qF "$password" "$work/server.log"; then not_ok "the log never shows the password" "$(grep -F "$password" "$work/server.log")"
else ok "the log never shows the password"; fi
check "the log shows the DSN redacted" "$(cat "$work/server.log")" "password=***"

# --- PostgreSQL down: store health flips, readiness and liveness do not,
# hits still served ---
pg_sh="$(cd "$(dirname "$0")/.." && pwd)/pg/pg.sh"
pg_dir="$(dirname "$3")"
proto_dir="$(cd "$(dirname "$0")/../../proto" && pwd)"
health() { "$GRPCURL" -plaintext -import-path "$proto_dir" -proto grpc/health/v1/health.proto \
  -d "{\"service\":\"$1\"}" "$probe_addr" grpc.health.v1.Health/Check 2>&1; }
# wait_status NAME STATUS: polls (bounded, 15 s) until the probe reports STATUS.
wait_status() {
  for _ in $(seq 1 150); do
    health "$1" | grep -q "\"status\": \"$2\"" && return 0
    sleep 0.1
  done
  return 1
}
gc -d '{"key":"warm","value":"dw=="}' "$addr" cachecar.v1.Cache/Put >/dev/null
if wait_status readiness SERVING; then ok "ready while PostgreSQL is up"; else not_ok "ready while PostgreSQL is up" "$(health readiness)"; fi
bash "$pg_sh" pg-stop "$pg_dir"
if wait_status cachecar.v1.Cache/store NOT_SERVING; then ok "PostgreSQL down: store health NOT_SERVING"; else not_ok "PostgreSQL down: store health NOT_SERVING" "$(health cachecar.v1.Cache/store)"; fi
check "PostgreSQL down: readiness still SERVING" "$(health readiness)" '"status": "SERVING"'
check "PostgreSQL down: liveness still SERVING" "$(health liveness)" '"status": "SERVING"'
check "PostgreSQL down: metrics say the store is unreachable" "$(scrape_metrics "$metrics_port")" 'cachecar_store_reachable{store="postgres"} 0'
out="$(gc -d '{"key":"warm"}' "$addr" cachecar.v1.Cache/Get)"
check "PostgreSQL down: a cache hit is still served" "$out" '"value": "dw=="'
out="$(gc -d '{"key":"cold"}' "$addr" cachecar.v1.Cache/Get)"
check "PostgreSQL down: a miss is UNAVAILABLE" "$out" "Code: Unavailable"
check "PostgreSQL down: saying PostgreSQL cannot be reached" "$out" "PostgreSQL"
bash "$pg_sh" pg-start "$pg_dir"
if wait_status cachecar.v1.Cache/store SERVING; then ok "PostgreSQL back: store health SERVING again"; else not_ok "PostgreSQL back: store health SERVING again" "$(health cachecar.v1.Cache/store)"; fi
out="$(gc -d '{"key":"cold","consistency":"CONSISTENCY_STRONG"}' "$addr" cachecar.v1.Cache/Get)"
check "PostgreSQL back: misses read through again" "$out" '"source": "SOURCE_STORE"'

kill -TERM "${pids[0]}"
wait "${pids[0]}"
rc=$?
if [ "$rc" -eq 0 ]; then ok "SIGTERM: exit 0"; else not_ok "SIGTERM: exit 0" "exit $rc"; fi
$PSQL -c "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1 || true

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
