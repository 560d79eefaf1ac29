#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's postgresql-15) and a PgBouncer in
# transaction pooling mode in front of it, for tests and local runs.
#
#   pg.sh start DIR     initdb, start both on free loopback ports, write
#                       DIR/env (PG_PORT, PG_DSN, PGBOUNCER_DSN, PSQL, ...)
#   pg.sh stop DIR      stop both and delete everything
#   pg.sh pg-stop DIR   stop only PostgreSQL (outage tests); data stays
#   pg.sh pg-start DIR  start it again on the same port
#
# When run as root, the servers run as the `postgres` user (initdb refuses
# root). Their files live in a fresh /tmp/cachecar-pg.* directory (PG_ROOT in
# DIR/env), reachable by that user wherever DIR is; nothing on the machine is
# reused.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|pg-stop|pg-start DIR" >&2
  exit 2
fi

pgbin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
pgbouncer="${PGBOUNCER:-/usr/sbin/pgbouncer}"
[ -x "$pgbin/initdb" ] || { echo "pg.sh: $pgbin/initdb not found; run scripts/deps.sh (postgresql-15)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A loopback port nothing answers on. The caller still handles losing a race.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "pg.sh: no free port found" >&2
  return 1
}

# Closes every descriptor above stderr that this shell inherited (bash's own
# 255 is close-on-exec). A server started from a test process (pg-start in
# an outage test) must not keep that process's pipes open: a TSan
# symbolizer's pipe held by the postmaster kept the symbolizer, and with it
# ctest's output pipe, open until ctest's timeout.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-"; fi
  done 2>/dev/null
}

pg_start() {
  # shellcheck disable=SC1091
  . "$dir/env"
  (
    close_inherited_fds
    as_owner "$pgbin/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/postgres.log" -w -t 60 \
      -o "-p $PG_PORT" start >/dev/null
  )
}

pg_stop() {
  # shellcheck disable=SC1091
  . "$dir/env"
  as_owner "$pgbin/pg_ctl" -D "$PG_ROOT/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

start() {
  [ -f "$dir/env" ] && stop
  rm -rf "$dir"
  mkdir -p "$dir"
  root="$(mktemp -d /tmp/cachecar-pg.XXXXXX)"
  chmod 755 "$root"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$root"
  echo "PG_ROOT=$root" >"$dir/env"
  as_owner "$pgbin/initdb" -D "$root/data" -U postgres -A trust --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
    || { cat "$root/initdb.log" >&2; exit 1; }
  cat >>"$root/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$root'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
log_min_messages = warning
shared_preload_libraries = 'pg_stat_statements'
EOF
  local started=0
  for _ in 1 2 3 4 5; do
    PG_PORT="$(free_port)"
    printf 'PG_ROOT=%s\nPG_PORT=%s\n' "$root" "$PG_PORT" >"$dir/env"
    if pg_start 2>/dev/null; then started=1; break; fi
  done
  [ "$started" -eq 1 ] || { cat "$root/postgres.log" >&2; exit 1; }
  as_owner "$pgbin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE DATABASE cachecar_test" >/dev/null

  # PgBouncer, transaction pooling: named prepared statements do not survive
  # it, which is what postgres.prepared_statements=false is for.
  echo '"postgres" ""' >"$root/userlist.txt"
  local bouncer_port started_bouncer=0
  for _ in 1 2 3 4 5; do
    bouncer_port="$(free_port)"
    cat >"$root/pgbouncer.ini" <<EOF
[databases]
cachecar_test = host=127.0.0.1 port=$PG_PORT dbname=cachecar_test
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $root/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,application_name
logfile = $root/pgbouncer.log
pidfile = $root/pgbouncer.pid
EOF
    [ "$(id -u)" -eq 0 ] && chown postgres: "$root/pgbouncer.ini" "$root/userlist.txt"
    if as_owner "$pgbouncer" -d -q "$root/pgbouncer.ini" 2>>"$root/pgbouncer.err"; then
      for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$bouncer_port") 2>/dev/null && { started_bouncer=1; break; }
        sleep 0.1
      done
      [ "$started_bouncer" -eq 1 ] && break
    fi
  done
  [ "$started_bouncer" -eq 1 ] || { cat "$root/pgbouncer.err" "$root/pgbouncer.log" >&2 2>/dev/null; exit 1; }

  # The password is ignored (trust), but present so tests can check that it
  # never shows up in logs or errors.
  cat >"$dir/env" <<EOF
PG_ROOT=$root
PG_PORT=$PG_PORT
PGBOUNCER_PORT=$bouncer_port
PG_DSN='host=127.0.0.1 port=$PG_PORT dbname=cachecar_test user=postgres password=pg-test-secret'
PGBOUNCER_DSN='host=127.0.0.1 port=$bouncer_port dbname=cachecar_test user=postgres password=pg-test-secret'
PSQL='$pgbin/psql -X -q -h 127.0.0.1 -p $PG_PORT -U postgres -d cachecar_test'
EOF
  echo "pg.sh: PostgreSQL on 127.0.0.1:$PG_PORT, PgBouncer on 127.0.0.1:$bouncer_port ($root)"
}

stop() {
  [ -f "$dir/env" ] || { rm -rf "$dir"; return 0; }
  # shellcheck disable=SC1091
  . "$dir/env"
  if [ -n "${PG_ROOT:-}" ] && [ -f "$PG_ROOT/pgbouncer.pid" ]; then
    kill "$(cat "$PG_ROOT/pgbouncer.pid")" 2>/dev/null || true
  fi
  [ -n "${PG_ROOT:-}" ] && [ -d "$PG_ROOT/data" ] && pg_stop
  case "${PG_ROOT:-}" in /tmp/cachecar-pg.*) rm -rf "$PG_ROOT" ;; esac
  rm -rf "$dir"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
