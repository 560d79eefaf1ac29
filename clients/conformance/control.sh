#!/usr/bin/env bash
# The conformance cases' control actions (clients/conformance/README.md):
# stop, kill and restart the sidecar under test, stall PostgreSQL with a
# table lock, write a row straight into PostgreSQL, stop and start Kafka.
#
# Usage: control.sh STATE_DIR ACTION [ARGS...]
# STATE_DIR is run.sh's: cachecar.args (one flag a line), cachecar.pid,
# cachecar.log, addr, grpcurl, and for the postgres store pg.env (PSQL, DB)
# and kafka.env (KAFKA_SH, KAFKA_DIR). Only processes this script or run.sh
# started (their PIDs are in STATE_DIR) are ever signalled.
set -uo pipefail
state="${1:?usage: control.sh STATE_DIR ACTION [ARGS...]}"
action="${2:?usage: control.sh STATE_DIR ACTION [ARGS...]}"
shift 2

die() { echo "control.sh $action: $*" >&2; exit 1; }
log() { echo "control.sh $action: $*" >>"$state/control.log"; }

pid_of() { cat "$state/$1.pid" 2>/dev/null || true; }
# A zombie (exited, not yet reaped by whoever adopted it) is not alive.
alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}

# wait_exit PID SECONDS: true once PID is gone (it is our child's child, so
# poll rather than wait).
wait_exit() {
  local pid="$1" n=$(($2 * 20))
  while [ "$n" -gt 0 ]; do
    alive "$pid" || return 0
    sleep 0.05
    n=$((n - 1))
  done
  return 1
}

sidecar_stop() {
  local sig="$1" pid
  pid="$(pid_of cachecar)"
  alive "$pid" || { log "not running"; rm -f "$state/cachecar.pid"; return 0; }
  kill "-$sig" "$pid" 2>/dev/null
  wait_exit "$pid" 20 || { kill -KILL "$pid" 2>/dev/null; wait_exit "$pid" 5; }
  rm -f "$state/cachecar.pid"
  log "stopped pid $pid with SIG$sig"
}

# Ready means health SERVING for the process, the store and the sync
# (within max_staleness): readiness follows the process only (#12), so the
# cache of a sidecar that just started is trusted once its sync health says
# so. What a client sees once a restarted sidecar is fully back.
serving() {
  local svc
  for svc in "" cachecar.v1.Cache/store cachecar.v1.Cache/sync; do
    "$2" -plaintext -max-time 2 -d "{\"service\": \"$svc\"}" "$1" grpc.health.v1.Health/Check 2>/dev/null |
      grep -q '"SERVING"' || return 1
  done
}
wait_serving() {
  local addr g deadline=$((SECONDS + 60)) pid
  addr="$(cat "$state/addr")" g="$(cat "$state/grpcurl")"
  while [ "$SECONDS" -lt "$deadline" ]; do
    pid="$(pid_of cachecar)"
    alive "$pid" || { tail -20 "$state/cachecar.log" >&2; die "cachecar exited during start-up (log above)"; }
    if serving "$addr" "$g"; then
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$state/cachecar.log" >&2
  die "cachecar at $addr not SERVING within 60s (log above)"
}

sidecar_start() {
  alive "$(pid_of cachecar)" && die "cachecar is already running"
  local args=()
  mapfile -t args <"$state/cachecar.args"
  # setsid: its own session, so a ctest timeout's signal to our group does
  # not race run.sh's cleanup; stdin/out closed so no pipe is held open.
  # cachecar refuses CACHECAR_* variables it does not know: start it with
  # none of the caller's.
  local unset=() v
  for v in $(compgen -e); do [[ "$v" == CACHECAR_* ]] && unset+=(-u "$v"); done
  setsid env "${unset[@]}" "${args[@]}" </dev/null >>"$state/cachecar.log" 2>&1 &
  echo $! >"$state/cachecar.pid"
  log "started pid $!"
  wait_serving
}

pg() {
  # shellcheck disable=SC1091
  . "$state/pg.env"
  $PSQL -d "$DB" -v ON_ERROR_STOP=1 -At "$@"
}

pg_wait_blocked() {
  local deadline=$((SECONDS + 15)) n
  while [ "$SECONDS" -lt "$deadline" ]; do
    n="$(pg -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND application_name = 'cachecar' AND wait_event_type = 'Lock'")" || die "psql failed"
    [ "${n:-0}" -gt 0 ] && { log "$n cachecar session(s) waiting for the lock"; return 0; }
    sleep 0.05
  done
  die "no cachecar statement waited for the table lock within 15s"
}

# A delayed start still pending (sidecar-start-after) finishes first, so
# that it cannot start a sidecar behind a later action's back.
wait_starter() {
  local pid
  pid="$(pid_of starter)"
  if alive "$pid"; then wait_exit "$pid" 70 || die "the delayed start (pid $pid) did not finish within 70s"; fi
  rm -f "$state/starter.pid"
}

case "$action" in
  sidecar-stop) wait_starter; sidecar_stop TERM ;;
  sidecar-kill) wait_starter; sidecar_stop KILL ;;
  sidecar-start) sidecar_start ;;
  sidecar-pause | sidecar-resume)
    pid="$(pid_of cachecar)"
    alive "$pid" || die "cachecar is not running"
    if [ "$action" = sidecar-pause ]; then
      kill -STOP "$pid"
      # The stop is asynchronous: wait until every thread is stopped ("T"),
      # so the caller's next call cannot be answered.
      for _ in $(seq 1 200); do
        running="$(awk '{print $3}' /proc/"$pid"/task/*/stat 2>/dev/null | grep -vc '^[Tt]$')"
        [ "$running" = 0 ] && break
        sleep 0.01
      done
      [ "$running" = 0 ] || die "cachecar (pid $pid) did not stop within 2s"
    else
      kill -CONT "$pid"
    fi
    log "$action pid $pid"
    ;;
  sidecar-start-after)
    ms="${1:?sidecar-start-after MS}"
    wait_starter
    (
      sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
      bash "$0" "$state" sidecar-start
    ) </dev/null >>"$state/control.log" 2>&1 &
    echo $! >"$state/starter.pid"
    ;;
  pg-lock)
    [ -f "$state/pg.env" ] || die "no PostgreSQL in this run"
    alive "$(pid_of pglock)" && die "already locked"
    # shellcheck disable=SC1091
    . "$state/pg.env"
    # One transaction that holds the lock until pg-unlock terminates it (or
    # 120 s pass, so a forgotten lock cannot outlive the run).
    PGAPPNAME=conformance_lock $PSQL -d "$DB" -c \
      "BEGIN; LOCK TABLE cachecar_entries IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$state/pglock.pid"
    deadline=$((SECONDS + 15))
    until [ "$(pg -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                      WHERE a.application_name = 'conformance_lock' AND l.mode = 'AccessExclusiveLock'
                      AND l.granted")" -gt 0 ]; do
      [ "$SECONDS" -lt "$deadline" ] || die "the table lock was not granted within 15s"
      sleep 0.05
    done
    log "locked cachecar_entries"
    ;;
  pg-unlock)
    pid="$(pid_of pglock)"
    pg -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
           WHERE application_name = 'conformance_lock'" >/dev/null || die "psql failed"
    alive "$pid" && { wait_exit "$pid" 10 || kill -KILL "$pid" 2>/dev/null; }
    rm -f "$state/pglock.pid"
    log "unlocked"
    ;;
  pg-wait-blocked) pg_wait_blocked ;;
  pg-terminate-blocked)
    pg_wait_blocked
    n="$(pg -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = 'cachecar'
                AND wait_event_type = 'Lock'")" || die "psql failed"
    log "terminated $n blocked session(s)"
    ;;
  sql-put)
    [ $# -eq 2 ] || die "usage: sql-put KEY VALUE"
    pg -v k="$1" -v v="$2" >/dev/null <<'SQL' || die "psql failed"
INSERT INTO cachecar_entries (namespace, key, value) VALUES ('default', :'k', convert_to(:'v', 'UTF8'))
ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value;
SQL
    ;;
  kafka-stop | kafka-start)
    [ -f "$state/kafka.env" ] || die "no Kafka in this run"
    # shellcheck disable=SC1091
    . "$state/kafka.env"
    bash "$KAFKA_SH" "broker-${action#kafka-}" "$KAFKA_DIR" >>"$state/control.log" 2>&1 ||
      die "kafka.sh broker-${action#kafka-} failed (see $state/control.log)"
    ;;
  local-garbage)
    # 8 KiB of random bytes where the published cache lives (no magic).
    [ -f "$state/local.path" ] || die "no local_read_path in this run"
    path="$(cat "$state/local.path")"
    head -c 8192 /dev/urandom >"$path.garbage" && mv -f "$path.garbage" "$path" || die "cannot write $path"
    ;;
  reset)
    # After a failed case: no lock held, the broker and the sidecar running.
    pid="$(pid_of cachecar)"
    alive "$pid" && kill -CONT "$pid"
    bash "$0" "$state" pg-unlock >/dev/null 2>&1
    [ -f "$state/kafka.env" ] && bash "$0" "$state" kafka-start >/dev/null 2>&1
    wait_starter
    alive "$(pid_of cachecar)" || sidecar_start
    ;;
  *) die "unknown action (see clients/conformance/README.md)" ;;
esac
