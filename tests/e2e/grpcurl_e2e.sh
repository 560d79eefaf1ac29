#!/usr/bin/env bash
# End to end, as an operator would: start the real cachecar binary on a free
# loopback port and a unix socket, then drive it with the real grpcurl
# through server reflection; and send it bytes that are no valid message
# (tests/e2e/raw_call.cc). Usage: grpcurl_e2e.sh CACHECAR GRPCURL RAW_CALL
set -uo pipefail
CACHECAR="$1"
GRPCURL="$2"
RAW_CALL="$3"
[ -x "$CACHECAR" ] || { echo "no cachecar binary at $CACHECAR"; exit 1; }
[ -x "$GRPCURL" ] || { echo "no grpcurl at $GRPCURL (run scripts/install_grpcurl.sh)"; exit 1; }
[ -x "$RAW_CALL" ] || { echo "no raw_call at $RAW_CALL (build the raw_call target)"; exit 1; }

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_setup cachecar-e2e

port="$(free_port)"
addr="127.0.0.1:$port"
sock="$work/cachecar.sock"
gc() { "$GRPCURL" -plaintext "$@" 2>&1; }          # over TCP
gu() { "$GRPCURL" -plaintext -unix "$@" 2>&1; }    # over the unix socket

# Waits (bounded) until the server at ADDRESS answers a health check.
wait_serving() {
  for _ in $(seq 1 100); do
    if gc -max-time 1 "$1" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then return 0; fi
    sleep 0.1
  done
  return 1
}

metrics_port="$(free_port)"
probe_addr="127.0.0.1:$(free_port)"
"$CACHECAR" --listen "$addr" --listen "unix://$sock" --log-format json \
  --metrics-listen "127.0.0.1:$metrics_port" --probe-listen "$probe_addr" \
  --namespace users:60s >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
if wait_serving "$addr"; then ok "server starts and answers health"; else
  not_ok "server starts" "$(cat "$work/server.log")"; echo "0 passed, 1 failed"; exit 1; fi

# --- reflection: list and describe -------------------------------------------
out="$(gc "$addr" list)"
check "list shows the Cache service" "$out" "cachecar.v1.Cache"
check "list shows the Health service" "$out" "grpc.health.v1.Health"
check "list shows reflection" "$out" "grpc.reflection.v1alpha.ServerReflection"
out="$(gc "$addr" describe cachecar.v1.Cache)"
check "describe shows the RPCs" "$out" "rpc BatchGet ( .cachecar.v1.BatchGetRequest )"
check "describe shows Watch as a server stream" "$out" "rpc Watch ( .cachecar.v1.WatchRequest ) returns ( stream .cachecar.v1.WatchEvent )"
out="$(gc "$addr" describe cachecar.v1.PutRequest)"
check "describe shows field docs" "$out" "compare-and-set"
out="$(gc "$addr" describe grpc.health.v1.Health)"
check "describe shows Health" "$out" "rpc Check"

# --- health ----------------------------------------------------------------------
out="$(gc -d '{"service":"cachecar.v1.Cache"}' "$addr" grpc.health.v1.Health/Check)"
check "health of cachecar.v1.Cache is SERVING" "$out" '"status": "SERVING"'

# --- Put / Get / BatchGet / Delete over TCP ----------------------------------
# Values are bytes: base64 in grpcurl's JSON ("YWxpY2U=" is "alice").
out="$(gc -d '{"key":"user:1","value":"YWxpY2U="}' "$addr" cachecar.v1.Cache/Put)"
check "Put returns a version" "$out" '"version"'
v1="$(sed -n 's/.*"version": "\([0-9]*\)".*/\1/p' <<<"$out")"
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Get)"
check "Get returns the value" "$out" '"value": "YWxpY2U="'
check "Get returns the Put's version" "$out" "\"version\": \"$v1\""
check "Get is served from the cache" "$out" '"source": "SOURCE_CACHE"'
out="$(gc -d '{"key":"user:1","consistency":"CONSISTENCY_STRONG"}' "$addr" cachecar.v1.Cache/Get)"
check "STRONG Get reads the store" "$out" '"source": "SOURCE_STORE"'
out="$(gc -d '{"keys":["user:1","user:404"]}' "$addr" cachecar.v1.Cache/BatchGet)"
check "BatchGet answers every key" "$out" '"key": "user:404"'
out="$(gc -d "{\"key\":\"user:1\",\"value\":\"Ym9i\",\"if_version\":\"$v1\"}" "$addr" cachecar.v1.Cache/Put)"
check "Put with the right if_version succeeds" "$out" '"version"'
out="$(gc -d '{"key":"user:1","if_absent":true,"value":"eA=="}' "$addr" cachecar.v1.Cache/Put)"
check "if_absent on a live key is Aborted" "$out" "Code: Aborted"
out="$(gc -d "{\"key\":\"user:1\",\"value\":\"eA==\",\"if_version\":\"$v1\"}" "$addr" cachecar.v1.Cache/Put)"
check "stale if_version is Aborted" "$out" "Code: Aborted"
check "Aborted names the expected version" "$out" "expected version $v1"
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Delete)"
check "Delete finds the key" "$out" '"found": true'
out="$(gc -d '{"key":"user:1"}' "$addr" cachecar.v1.Cache/Get)"
if grep -q '"found": true' <<<"$out"; then not_ok "deleted key reads absent" "$out"; else ok "deleted key reads absent"; fi

# --- namespaces, Invalidate, Stats ---------------------------------------------
out="$(gc -d '{"namespace":"users","key":"k","value":"dg=="}' "$addr" cachecar.v1.Cache/Put)"
check "Put into a declared namespace" "$out" '"version"'
out="$(gc -d '{"namespace":"users","keys":["k"]}' "$addr" cachecar.v1.Cache/Invalidate)"
check "Invalidate drops the key" "$out" '"dropped": "1"'
out="$(gc -d '{"namespace":"users","key":"k"}' "$addr" cachecar.v1.Cache/Get)"
check "after Invalidate the Get reloads" "$out" '"source": "SOURCE_STORE"'
out="$(gc -d '{}' "$addr" cachecar.v1.Cache/Stats)"
check "Stats lists namespaces" "$out" '"namespace": "users"'
check "Stats counts loads" "$out" '"loads"'

# --- bad input: codes and messages, and the server keeps serving --------------
out="$(gc -d '{"key":""}' "$addr" cachecar.v1.Cache/Get)"
check "empty key is InvalidArgument" "$out" "Code: InvalidArgument"
check "empty key message says what to fix" "$out" "key is empty"
python3 -c 'import base64,json; print(json.dumps({"key":"big","value":base64.b64encode(b"x"*(2<<20)).decode()}))' >"$work/big.json"
out="$("$GRPCURL" -plaintext -max-msg-sz 16000000 -d @ "$addr" cachecar.v1.Cache/Put <"$work/big.json" 2>&1)"
check "2 MiB value is InvalidArgument" "$out" "Code: InvalidArgument"
check "2 MiB value message names the limit" "$out" "max_value_bytes"
python3 -c 'import base64,json; print(json.dumps({"key":"huge","value":base64.b64encode(b"x"*(5<<20)).decode()}))' >"$work/huge.json"
out="$("$GRPCURL" -plaintext -max-msg-sz 16000000 -d @ "$addr" cachecar.v1.Cache/Put <"$work/huge.json" 2>&1)"
check "5 MiB message is ResourceExhausted" "$out" "Code: ResourceExhausted"
out="$(gc -d '{"namespace":"nope","key":"k"}' "$addr" cachecar.v1.Cache/Get)"
check "unknown namespace is InvalidArgument" "$out" "unknown namespace 'nope'"
out="$(gc -max-time 10 -d '{"namespace":"nope"}' "$addr" cachecar.v1.Cache/Watch)"
check "Watch of an unknown namespace is InvalidArgument" "$out" "unknown namespace 'nope'"
out="$(gc -d '{"key":"user:2","value":"eA=="}' "$addr" cachecar.v1.Cache/Put)"
check "server still serves after bad input" "$out" '"version"'

# --- the same over the unix socket ---------------------------------------------
out="$(gu "$sock" list)"
check "list over the unix socket" "$out" "cachecar.v1.Cache"
out="$(gu -d '{"key":"user:2"}' "$sock" cachecar.v1.Cache/Get)"
check "Get over the unix socket sees the TCP Put" "$out" '"value": "eA=="'
out="$(gu "$sock" grpc.health.v1.Health/Check)"
check "health over the unix socket" "$out" '"status": "SERVING"'

# --- probes: a port with only grpc.health.v1 ----------------------------------
hc() { "$GRPCURL" -plaintext -import-path "$proto_dir" -proto grpc/health/v1/health.proto "$@" 2>&1; }
proto_dir="$(cd "$(dirname "$0")/../../proto" && pwd)"
out="$(hc -d '{"service":"liveness"}' "$probe_addr" grpc.health.v1.Health/Check)"
check "probe port: liveness SERVING" "$out" '"status": "SERVING"'
out="$(hc -d '{"service":"readiness"}' "$probe_addr" grpc.health.v1.Health/Check)"
check "probe port: readiness SERVING (memory store is always reachable)" "$out" '"status": "SERVING"'
out="$(gc -d '{"key":"k"}' "$probe_addr" cachecar.v1.Cache/Get)"
check "probe port does not serve the cache API" "$out" "server does not support the reflection API"

# --- metrics: scrape /metrics as Prometheus would --------------------------------
before="$(scrape_metrics "$metrics_port")"
check "metrics: requests by method and code" "$before" 'cachecar_requests_total{code="OK",method="Put"}'
check "metrics: errors by code" "$before" 'cachecar_requests_total{code="INVALID_ARGUMENT",method="Get"}'
check "metrics: latency histogram" "$before" 'cachecar_request_duration_seconds_bucket{method="Get",le="0.001"}'
check "metrics: store operations" "$before" 'cachecar_store_operations_total{code="OK",op="put",store="memory"}'
check "metrics: per-namespace entries" "$before" 'cachecar_cache_entries{namespace="users"}'
check "metrics: ready" "$before" 'cachecar_ready 1'
hits_of() { sed -n 's/^cachecar_cache_hits_total{namespace="default"} \([0-9.e+]*\)$/\1/p' <<<"$1"; }
for _ in 1 2 3; do gc -d '{"key":"user:2"}' "$addr" cachecar.v1.Cache/Get >/dev/null; done
after="$(scrape_metrics "$metrics_port")"
h0="$(hits_of "$before")"; h1="$(hits_of "$after")"
if python3 -c "import sys; sys.exit(0 if float('$h1') >= float('$h0') + 3 else 1)" 2>/dev/null; then
  ok "metrics: hits move ($h0 -> $h1)"; else not_ok "metrics: hits move" "before=$h0 after=$h1"; fi

# --- a second instance fails loudly -------------------------------------------
out="$(timeout 20 "$CACHECAR" --listen "$addr" 2>&1)"; rc=$?
if [ "$rc" -ne 0 ]; then ok "second instance on the same port exits non-zero"; else not_ok "second instance on the same port exits non-zero" "$out"; fi
check "second instance says the address is in use" "$out" "already in use"
other="$(free_port)"
out="$(timeout 20 "$CACHECAR" --listen "127.0.0.1:$other" --listen "unix://$sock" 2>&1)"; rc=$?
if [ "$rc" -ne 0 ]; then ok "second instance on the same socket exits non-zero"; else not_ok "second instance on the same socket exits non-zero" "$out"; fi
check "second instance names the socket problem" "$out" "another cachecar"
out="$(gu "$sock" grpc.health.v1.Health/Check)"
check "the first instance still owns its socket" "$out" '"status": "SERVING"'

# --- bad configuration ---------------------------------------------------------
printf 'max_bytes: lots\n' >"$work/bad.yaml"
out="$(timeout 20 "$CACHECAR" --config "$work/bad.yaml" 2>&1)"; rc=$?
if [ "$rc" -eq 2 ]; then ok "garbage config exits 2"; else not_ok "garbage config exits 2 (got $rc)" "$out"; fi
check "garbage config names the field" "$out" "max_bytes"
out="$(timeout 20 "$CACHECAR" --no-such-flag 2>&1)"; rc=$?
check "unknown flag is named" "$out" "no-such-flag"
out="$("$CACHECAR" --help 2>&1)"
check "--help documents the listen option" "$out" "--listen"
check "--help documents env vars" "$out" "CACHECAR_MAX_BYTES"
out="$("$CACHECAR" check-config --kafka-property=linger.ms=soon 2>&1)"; rc=$?
if [ "$rc" -eq 2 ]; then ok "check-config refuses a bad kafka property"; else not_ok "check-config refuses a bad kafka property (got $rc)" "$out"; fi
check "check-config names the kafka property" "$out" "linger.ms=soon"
out="$(timeout 20 "$CACHECAR" --kafka-brokers=127.0.0.1:9092 2>&1)"; rc=$?
check "a sync topic without the postgres store is refused" "$out" "a sync topic needs store: postgres"

# watch_shows_put NAME CMD ADDRESS...: runs the README's Watch line CMD
# (prefix "user:") in the background and Puts user:watched at ADDRESS (grpcurl
# arguments) until the stream shows it (the first Put may land before the
# Watch has subscribed), then stops the watch.
watch_shows_put() {
  local name="$1" cmd="$2" out="$work/watch.out" watcher
  shift 2
  eval "exec \"\$GRPCURL\" $cmd" >"$out" 2>&1 &
  watcher=$!
  pids+=("$watcher")
  for _ in $(seq 1 50); do
    gc -d '{"key":"user:watched","value":"dw=="}' "$@" cachecar.v1.Cache/Put >/dev/null
    if grep -q '"key": "user:watched"' "$out"; then break; fi
    sleep 0.2
  done
  kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
  if grep -q '"key": "user:watched"' "$out" && grep -q '"op": "WATCH_OP_UPSERT"' "$out" &&
     grep -q '"local": true' "$out"; then
    ok "$name: a Put made while it runs shows up in the stream"
  else
    not_ok "$name: a Put made while it runs shows up in the stream" "$(cat "$out")"
  fi
}

# --- every grpcurl line of the README, over TCP and again over the unix socket,
# each time against a fresh server (the lines build on each other's state) ---
readme="$(dirname "$0")/../../README.md"
readme_sock=/tmp/cachecar.sock  # the README's example path, replaced by ours
# run_readme_lines tcp|unix
run_readme_lines() {
  local mode="$1" port2 sock2 readme_server n=0 line cmd out
  port2="$(free_port)"
  sock2="$work/readme-$mode.sock"
  "$CACHECAR" --listen "127.0.0.1:$port2" --listen "unix://$sock2" >"$work/readme-$mode.log" 2>&1 &
  readme_server=$!
  pids+=("$readme_server")
  if wait_serving "127.0.0.1:$port2"; then ok "README server ($mode) starts"; else
    not_ok "README server ($mode) starts" "$(cat "$work/readme-$mode.log")"; fi
  while IFS= read -r line; do
    n=$((n + 1))
    cmd="${line#\$G }"
    if [ "$mode" = unix ]; then
      cmd="${cmd//127.0.0.1:50051/-unix $sock2}"
    else
      cmd="${cmd//127.0.0.1:50051/127.0.0.1:$port2}"
    fi
    cmd="${cmd//"$readme_sock"/$sock2}"
    if [[ "$cmd" == *cachecar.v1.Cache/Watch* ]]; then  # streams until stopped
      if [ "$mode" = unix ]; then
        watch_shows_put "README line $n ($mode)" "$cmd" -unix "$sock2"
      else
        watch_shows_put "README line $n ($mode)" "$cmd" "127.0.0.1:$port2"
      fi
      continue
    fi
    if out="$(eval "\"\$GRPCURL\" $cmd" 2>&1)"; then ok "README line $n ($mode): ${line:0:60}"; else
      not_ok "README line $n ($mode): $line" "$out"; fi
  done < <(grep -E '^\$G ' "$readme")
  if [ "$n" -ge 15 ]; then ok "README has $n grpcurl lines, all run over $mode"; else
    not_ok "README grpcurl lines found: $n (expected at least 15)"; fi
  kill -TERM "$readme_server"; wait "$readme_server"
}
run_readme_lines tcp
run_readme_lines unix

# --- bytes that are no valid message (issue #17 item 11) --------------------------
# 12 7f: field 2 (key), 127 bytes long, but only 5 follow.
for target in "$addr" "unix://$sock"; do
  out="$("$RAW_CALL" "$target" /cachecar.v1.Cache/Get 127f73686f7274)"
  check "truncated Get over $target is INVALID_ARGUMENT" "$out" "code=3 "
  check "truncated Get over $target says it could not be parsed" "$out" \
    "could not be parsed as cachecar.v1.GetRequest"
done
# Field 2 (key) of 2 bytes that are not UTF-8 (proto3 strings must be).
out="$("$RAW_CALL" "$addr" /cachecar.v1.Cache/Put 1202c328)"
check "Put with a non-UTF-8 key is INVALID_ARGUMENT" "$out" "code=3 message=the request could not be parsed as cachecar.v1.PutRequest"
out="$("$RAW_CALL" "$addr" /grpc.health.v1.Health/Check 0a05)"
check "truncated health Check is INVALID_ARGUMENT" "$out" "code=3 message=the request could not be parsed as grpc.health.v1.HealthCheckRequest"
out="$("$RAW_CALL" "$addr" /cachecar.v1.Cache/NoSuchMethod 00)"
check "an unknown method is UNIMPLEMENTED, naming what is served" "$out" \
  "code=12 message=unknown method /cachecar.v1.Cache/NoSuchMethod: cachecar serves cachecar.v1.Cache"
out="$("$RAW_CALL" "$probe_addr" /cachecar.v1.Cache/Get 00)"
check "the probe port says it serves only health" "$out" "code=12 message=unknown method /cachecar.v1.Cache/Get: this is cachecar's probe port"
gc -d '{"key":"raw:1","value":"eA=="}' "$addr" cachecar.v1.Cache/Put >/dev/null
out="$(gc -d '{"key":"raw:1"}' "$addr" cachecar.v1.Cache/Get)"
check "and a good Get is still answered" "$out" '"found": true'

# --- SIGTERM: clean exit 0 -------------------------------------------------------
kill -TERM "$server"
wait "$server"; rc=$?
if [ "$rc" -eq 0 ]; then ok "SIGTERM exits 0"; else not_ok "SIGTERM exits 0 (got $rc)" "$(tail -5 "$work/server.log")"; fi
check "shutdown is logged" "$(cat "$work/server.log")" '"msg":"stopped"'
if [ -e "$sock" ]; then not_ok "socket file removed on exit"; else ok "socket file removed on exit"; fi

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
