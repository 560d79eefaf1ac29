#!/usr/bin/env bash
# Runs one client library's conformance runner against a fresh cachecar:
# starts cachecar (memory store, or PostgreSQL + Kafka from the test suite's
# fixtures, in a database and topic of this run's own), gives the runner the
# environment clients/conformance/README.md describes, and stops everything
# it started afterwards, whatever happened.
#
# Usage: run.sh --client NAME --store memory|postgres --cachecar BIN
#               --grpcurl GRPCURL --work DIR
#               [--pg-env FILE --kafka-env FILE --kafka-sh KAFKA_SH]
#               -- RUNNER [ARGS...]
# Exit status: the runner's (1 if any case failed), or 1 if setup failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

client="" store="" cachecar="" grpcurl="" work="" pg_env="" kafka_env="" kafka_sh=""
while [ $# -gt 0 ]; do
  case "$1" in
    --client) client="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --cachecar) cachecar="$2"; shift 2 ;;
    --grpcurl) grpcurl="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --pg-env) pg_env="$2"; shift 2 ;;
    --kafka-env) kafka_env="$2"; shift 2 ;;
    --kafka-sh) kafka_sh="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
name="conformance_${client}_${store}"
die() { echo "$name: FAIL: $*" >&2; exit 1; }
say() { echo "$name: $*"; }
[ -n "$client" ] && [ -n "$work" ] && [ $# -gt 0 ] || die "usage: see the header of $0"
[ -x "$cachecar" ] || die "no cachecar binary at '$cachecar'"
[ -x "$grpcurl" ] || die "no grpcurl at '$grpcurl' (scripts/install_grpcurl.sh)"
case "$store" in
  memory) ;;
  postgres)
    [ -f "$pg_env" ] || die "no PostgreSQL env file '$pg_env' (tests/pg/pg.sh start DIR writes it)"
    [ -f "$kafka_env" ] || die "no Kafka env file '$kafka_env' (tests/kafka/kafka.sh start DIR writes it)"
    [ -f "$kafka_sh" ] || die "no kafka.sh at '$kafka_sh'" ;;
  *) die "--store must be memory or postgres" ;;
esac

mkdir -p "$work" || die "cannot create $work"
state="$(mktemp -d "$(cd "$work" && pwd)/state.XXXXXX")" || die "cannot make a state dir in $work"
control=(bash "$here/control.sh" "$state")

cleanup() {
  local pid
  # A delayed start still pending must not start a sidecar after we stopped it.
  pid="$(cat "$state/starter.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  "${control[@]}" pg-unlock >/dev/null 2>&1 || true
  [ -f "$state/kafka.env" ] && "${control[@]}" kafka-start >/dev/null 2>&1
  "${control[@]}" sidecar-stop >/dev/null 2>&1
  [ -n "${topic:-}" ] && say "topic $topic left in the fixture's broker (deleted with it)"
  if [ "${keep:-0}" -eq 0 ]; then rm -rf "$state"; else say "state kept in $state"; fi
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" ||
  die "no free port"
addr="127.0.0.1:$port"
echo "$addr" >"$state/addr"
echo "$grpcurl" >"$state/grpcurl"

args=("$cachecar" --listen "$addr" --metrics-listen= --shutdown-grace 2s --log-level warn
      --namespace default --namespace other --max-staleness 2s)
if [ "$store" = postgres ]; then
  # shellcheck disable=SC1090
  . "$pg_env"
  db="conf_${client}"
  PGOPTIONS="-c client_min_messages=warning" $PSQL -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null ||
    die "cannot create database $db"
  dsn="$(sed -E "s/dbname=[^ ]+/dbname=$db/" <<<"$PG_DSN")"
  printf 'PSQL=%q\nDB=%q\n' "$PSQL" "$db" >"$state/pg.env"
  "$cachecar" migrate --store=postgres --postgres-dsn "$dsn" >"$state/migrate.log" 2>&1 ||
    { cat "$state/migrate.log" >&2; die "cachecar migrate failed (log above)"; }
  # shellcheck disable=SC1090
  . "$kafka_env"
  topic="conformance-$client-$$-$RANDOM"
  bash "$kafka_sh" create-topic "$(dirname "$kafka_env")" "$topic" 3 >"$state/topic.log" 2>&1 ||
    { cat "$state/topic.log" >&2; die "cannot create topic $topic"; }
  printf 'KAFKA_SH=%q\nKAFKA_DIR=%q\n' "$kafka_sh" "$(dirname "$kafka_env")" >"$state/kafka.env"
  args+=(--store postgres --postgres-dsn "$dsn" --kafka-brokers "$KAFKA_BOOTSTRAP" --sync-topic "$topic"
         --replica-id "conformance-$client")
fi
# The published cache (local reads, #14), when this cachecar has it.
local_path=""
# (grep reads all of --help: with -q, pipefail would see cachecar's SIGPIPE.)
if timeout 10 "$cachecar" --help 2>&1 | grep -- '--local-read-path' >/dev/null; then
  mkdir -p "$state/local"
  local_path="$state/local/cache"
  echo "$local_path" >"$state/local.path"
  args+=(--local-read-path "$local_path")
fi
printf '%s\n' "${args[@]}" >"$state/cachecar.args"
"${control[@]}" sidecar-start || die "cachecar did not start"
say "cachecar ($store) serving on $addr"

rc=0
CONFORMANCE_ADDR="$addr" CONFORMANCE_CASES="$here/cases.json" CONFORMANCE_STORE="$store" \
  CONFORMANCE_CONTROL="$here/control.sh $state" CONFORMANCE_PREFIX="$client:$store:" \
  CONFORMANCE_LOCAL_PATH="$local_path" \
  timeout --kill-after=10 900 "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  keep=1
  echo "--- cachecar log (last 30 lines)"; tail -n 30 "$state/cachecar.log"
  echo "--- control log"; cat "$state/control.log" 2>/dev/null
  [ "$rc" -eq 124 ] && say "the runner was killed after 900s"
fi
exit "$rc"
