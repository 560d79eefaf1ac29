#!/usr/bin/env bash
# Memory per entry of the engine's peers (issue #6), measured like
# bench/engine/memory.cc measures the engine: starts its own redis-server and
# memcached on free loopback ports, loads N entries ("key:%07d" keys, 11
# bytes; 100-byte values), and reports bytes per entry beyond key+value from
# the RSS delta (VmRSS before and after the load) and from the server's own
# accounting (Redis INFO used_memory delta; memcached stats "bytes").
# Prints detail lines, then one markdown row per server.
#
# Usage: bench/memory_peers.sh [--entries N]
set -euo pipefail

entries=1000000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entries) entries="$2"; shift 2 ;;
    *) echo "usage: $0 [--entries N]" >&2; exit 2 ;;
  esac
done
if ! [[ "$entries" =~ ^[0-9]+$ ]] || (( entries < 1 || entries > 9999999 )); then
  echo "--entries must be in 1..9999999 (7-digit keys)" >&2
  exit 2
fi

missing=()
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
command -v memcached >/dev/null || missing+=(memcached)
if (( ${#missing[@]} > 0 )); then
  echo "missing: ${missing[*]}; install with: apt-get install ${missing[*]}" >&2
  exit 1
fi

readonly key_bytes=11 value_bytes=100
server_pids=()
cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rss_bytes() {  # VmRSS of a process, in bytes
  awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

# Runs "$@" until it succeeds, for at most ~10 s.
wait_until() {
  local tries
  for (( tries = 0; tries < 100; ++tries )); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gave up waiting for: $*" >&2
  return 1
}

# Prints "system | RSS delta per entry beyond key+value | own accounting per
# entry beyond key+value" as a markdown row, with a detail line first.
report() {  # name rss_before rss_after own_bytes
  python3 - "$@" "$entries" "$key_bytes" "$value_bytes" <<'EOF'
import sys
name, rss_before, rss_after, own, n, key, value = sys.argv[1:]
n, payload = int(n), int(key) + int(value)
rss = (int(rss_after) - int(rss_before)) / n - payload
own = int(own) / n - payload
print(f"{name}: {n} entries, RSS {rss_before} -> {rss_after} bytes, "
      f"{rss:.1f} B/entry beyond key+value; own accounting {own:.1f}")
print(f"| {name} | {rss:.1f} | {own:.1f} |")
EOF
}

# --- Redis -----------------------------------------------------------------
redis_port=$(free_port)
redis-server --save '' --appendonly no --port "$redis_port" --bind 127.0.0.1 \
  --daemonize no --loglevel warning >/dev/null &
server_pids+=($!)
redis_pid=$!
wait_until redis-cli -p "$redis_port" ping
redis_used_memory() {
  redis-cli -p "$redis_port" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'
}
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9]*\.[0-9]*\).*/\1/p')
rss_before=$(rss_bytes "$redis_pid")
used_before=$(redis_used_memory)
python3 - "$entries" "$value_bytes" <<'EOF' | timeout 300 redis-cli -p "$redis_port" --pipe >/dev/null
import sys
n, value_bytes = int(sys.argv[1]), int(sys.argv[2])
value = b"v" * value_bytes
out = sys.stdout.buffer
for i in range(n):
    key = b"key:%07d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
EOF
loaded=$(redis-cli -p "$redis_port" dbsize)
if [[ "$loaded" != "$entries" ]]; then
  echo "redis holds $loaded keys, want $entries" >&2
  exit 1
fi
rss_after=$(rss_bytes "$redis_pid")
used_after=$(redis_used_memory)
report "Redis $redis_version" "$rss_before" "$rss_after" $(( used_after - used_before ))

# --- memcached ---------------------------------------------------------------
memcached_port=$(free_port)
memcached_user=()
if (( EUID == 0 )); then
  if id memcache >/dev/null 2>&1; then memcached_user=(-u memcache); else memcached_user=(-u nobody); fi
fi
memcached -l 127.0.0.1 -p "$memcached_port" -m 4096 -U 0 "${memcached_user[@]}" &
server_pids+=($!)
memcached_pid=$!
wait_until bash -c "exec 3<>/dev/tcp/127.0.0.1/$memcached_port"
memcached_version=$(memcached -V | awk '{ split($2, v, "."); print v[1] "." v[2] }')
rss_before=$(rss_bytes "$memcached_pid")
# Pipelined noreply sets, then "stats" (answered after every set is done);
# prints curr_items and bytes.
read -r items own_bytes < <(timeout 300 python3 - "$memcached_port" "$entries" "$value_bytes" <<'EOF'
import socket, sys
port, n, value_bytes = (int(a) for a in sys.argv[1:])
value = b"v" * value_bytes
sock = socket.create_connection(("127.0.0.1", port))
batch = []
for i in range(n):
    batch.append(b"set key:%07d 0 0 %d noreply\r\n%s\r\n" % (i, value_bytes, value))
    if len(batch) == 10000:
        sock.sendall(b"".join(batch))
        batch = []
sock.sendall(b"".join(batch) + b"stats\r\n")
reply = b""
while not reply.endswith(b"END\r\n"):
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("memcached closed the connection")
    reply += chunk
stats = dict(line.split(b" ")[1:3] for line in reply.split(b"\r\n") if line.startswith(b"STAT "))
print(int(stats[b"curr_items"]), int(stats[b"bytes"]))
EOF
)
if [[ "$items" != "$entries" ]]; then
  echo "memcached holds $items items, want $entries" >&2
  exit 1
fi
rss_after=$(rss_bytes "$memcached_pid")
report "memcached $memcached_version" "$rss_before" "$rss_after" "$own_bytes"
