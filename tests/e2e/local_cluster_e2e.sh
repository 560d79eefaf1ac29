#!/usr/bin/env bash
# deploy/local/cluster.sh as a newcomer uses it: start (PostgreSQL, Kafka,
# three replicas), a Put on replica a seen by b and c from their caches, a
# direct SQL update seen by all three, status, stop (nothing left running).
# Usage: local_cluster_e2e.sh CLUSTER_BIN GRPCURL
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$here/lib.sh"
bin="$1"
G="$2"
e2e_setup cachecar-local-cluster
cluster="$work/cluster"
# Three API ports and three metrics ports above a free one.
export BASE_PORT=$(($(free_port) % 20000 + 30000))
export CLUSTER_BIN="$bin"
trap 'bash "$root/deploy/local/cluster.sh" stop "$cluster" >/dev/null 2>&1; rm -rf "$work"' EXIT

if out="$(bash "$root/deploy/local/cluster.sh" start "$cluster" 2>&1)"; then
  ok "cluster.sh start: every replica ready"
else
  not_ok "cluster.sh start" "$(tail -30 <<<"$out")"
  echo "passed $passed, failed $failed"
  exit 1
fi
check "start prints how to try it" "$out" "cachecar.v1.Cache/Put"
. "$cluster/pg/env"
a=$((BASE_PORT + 1)) b=$((BASE_PORT + 2)) c=$((BASE_PORT + 3))

get() { "$G" -plaintext -d "{\"key\":\"$2\"}" "127.0.0.1:$1" cachecar.v1.Cache/Get 2>&1; }
# wait_for PORT KEY NEEDLE: polls a CACHED Get (at most 10 s) until NEEDLE shows.
wait_for() {
  local start=$SECONDS got
  while :; do
    got="$(get "$1" "$2")"
    if grep -qF -- "$3" <<<"$got"; then
      echo "$got"
      return 0
    fi
    [ $((SECONDS - start)) -ge 10 ] && { echo "$got"; return 1; }
    sleep 0.1
  done
}

get $b user:1 >/dev/null  # b and c cache "absent" first
get $c user:1 >/dev/null
put="$("$G" -plaintext -d '{"key":"user:1","value":"YWxpY2U="}' 127.0.0.1:$a cachecar.v1.Cache/Put 2>&1)"
check "Put on a" "$put" '"version"'
for port in $b $c; do
  if got="$(wait_for $port user:1 '"YWxpY2U="')"; then
    check "replica :$port serves a's Put from its cache" "$got" SOURCE_CACHE
  else
    not_ok "replica :$port never saw a's Put" "$got"
  fi
done
$PSQL -c "UPDATE cachecar_entries SET value = 'bob' WHERE key = 'user:1'" >/dev/null
for port in $a $b $c; do
  if got="$(wait_for $port user:1 '"Ym9i"')"; then
    ok "replica :$port serves the direct SQL update"
  else
    not_ok "replica :$port never saw the direct SQL update" "$got"
  fi
done
status="$(bash "$root/deploy/local/cluster.sh" status "$cluster" 2>&1)"
check "status: replica c SERVING" "$status" "replica c (:$c): SERVING"
bash "$root/deploy/local/cluster.sh" stop "$cluster" >/dev/null 2>&1
left="$(pgrep -f "$cluster" || true)"
if [ -z "$left" ]; then ok "stop leaves nothing running"; else not_ok "stop left processes" "$left"; fi

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
