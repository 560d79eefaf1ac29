#!/usr/bin/env bash
# Local reads end to end, through the real binaries: cachecar publishing its
# cache (--local-read-path), grpcurl writing, and cachecar-localread reading
# the mapping. The file's life across a crash, a clean stop and an upgrade:
# a reader never serves a stopped or replaced process's cache, and falls back
# (NOT_SERVING, INCOMPATIBLE) until the new file serves.
# Usage: local_read_e2e.sh CACHECAR GRPCURL CACHECAR_LOCALREAD
set -uo pipefail
CACHECAR="$1"
GRPCURL="$2"
LOCALREAD="$3"
for b in "$CACHECAR" "$GRPCURL" "$LOCALREAD"; do [ -x "$b" ] || { echo "no binary at $b"; exit 1; }; done

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
e2e_setup cachecar-local-e2e

dir="$work/local"
mkdir -p "$dir"
path="$dir/cache"
gc() { "$GRPCURL" -plaintext "$@" 2>&1; }
lr() { "$LOCALREAD" "$path" "$@" 2>&1; }
wait_serving() {
  for _ in $(seq 1 100); do
    if gc -max-time 1 "$1" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then return 0; fi
    sleep 0.1
  done
  return 1
}
# start NAME: a cachecar (memory store) publishing at $path; sets $addr, $pid.
start() {
  addr="127.0.0.1:$(free_port)"
  mport="$(free_port)"
  "$CACHECAR" --listen "$addr" --local-read-path "$path" --log-level info \
    --metrics-listen "127.0.0.1:$mport" >"$work/$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_serving "$addr"; then ok "$1 starts"; else not_ok "$1 starts" "$(cat "$work/$1.log")"; fi
}
put() { gc -d "{\"key\":\"$1\",\"value\":\"$(printf %s "$2" | base64)\"}" "$addr" cachecar.v1.Cache/Put; }

check "no file yet: the reader falls back" "$(lr k)" "NOT_SERVING"

start first
put k one-first >/dev/null
check "a Put is read from the mapping" "$(lr k)" "HIT 1 one-first"
check "a key the cache lacks falls back" "$(lr other)" "MISS"
check "STRONG falls back" "$(lr --strong k)" "STRONG"
check "an unknown namespace falls back" "$(lr --namespace=nope k)" "UNKNOWN_NAMESPACE"
check "the file is world-readable, not writable" "$(stat -c %a "$path")" "644"
check "the hit-report socket is there" "$(stat -c %F "$path.hits")" "socket"
check "startup log names the file" "$(cat "$work/first.log")" "local reads: the cache is published at $path"

metrics="$(scrape_metrics "$mport")"
check "metrics: the file serves" "$metrics" "cachecar_local_read_serving 1"
check "metrics: readers may answer" "$metrics" "cachecar_local_read_trusted 1"
check "metrics: the storage's bytes" "$metrics" 'cachecar_cache_storage_bytes{namespace="default"}' 

# A second cachecar on the same path is refused while the first lives.
other_addr="127.0.0.1:$(free_port)"
out="$("$CACHECAR" --listen "$other_addr" --local-read-path "$path" 2>&1)"
rc=$?
if [ "$rc" -ne 0 ]; then ok "a second cachecar on the same path exits non-zero"; else not_ok "a second cachecar on the same path exits non-zero" "$out"; fi
check "and says why" "$out" "another cachecar publishes $path"
check "the first one's file still serves" "$(lr k)" "HIT 1 one-first"

# A crash: the file stays, serving, until a successor starts; the successor
# retires it before it answers anything, so its cache is never served again.
kill -9 "$pid"
wait "$pid" 2>/dev/null
start second
check "after a crash and restart the old cache is never served" "$(lr k)" "MISS"
put k two-second >/dev/null
check "the new process's writes are read locally" "$(lr k)" "HIT 1 two-second"

# A clean stop retires the file and removes it.
kill -TERM "$pid"
wait "$pid" 2>/dev/null
check "after a clean stop readers fall back" "$(lr k)" "NOT_SERVING"
if [ ! -e "$path" ] && [ ! -e "$path.hits" ]; then ok "the file and socket are removed"; else not_ok "the file and socket are removed" "$(ls -la "$dir")"; fi

# An upgrade: a file of another layout version (as a newer or older cachecar
# would leave) makes readers fall back; a cachecar starting retires it.
python3 - "$path" <<'PY'
import struct, sys
header = bytearray(8192)
struct.pack_into("<QII Q Q Q", header, 0, 0x7261636568636163, 9, 4096, 8192, 1234, 2)
open(sys.argv[1], "wb").write(header)
PY
check "a file of another layout version is incompatible" "$(lr k)" "INCOMPATIBLE"
start third
check "the new file replaced it" "$(lr k)" "MISS"
put k three >/dev/null
check "and serves" "$(lr k)" "HIT 1 three"

# A directory that does not exist: a clear error, exit 1.
out="$("$CACHECAR" --listen "127.0.0.1:$(free_port)" --local-read-path /nonexistent-dir/cache 2>&1)"
check "a missing directory is named, with what to do" "$out" "directory /nonexistent-dir does not exist (in a pod, mount an emptyDir with medium: Memory there)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
