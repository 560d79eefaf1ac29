# shellcheck shell=bash
# Shared by run_go.sh and run_python.sh (sourced, not run): start and stop a
# throwaway cachecar on a free loopback port, and check an example client's
# output. Each function reports in plain words what went wrong.

# The sourcing script sets EXAMPLE_NAME (its test's name) for messages.
# say MESSAGE: a progress line, prefixed with the script's name.
say() { echo "$EXAMPLE_NAME: $*"; }
# die MESSAGE: the setup failed before any check ran.
die() { echo "$EXAMPLE_NAME: FAIL: $*" >&2; exit 1; }

# run_bounded SECONDS WHAT COMMAND...: runs COMMAND, killed after SECONDS.
run_bounded() {
  local seconds="$1" what="$2"; shift 2
  local rc=0
  timeout --kill-after=10 "$seconds" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "$what took over ${seconds}s"; fi
  [ "$rc" -eq 0 ] || die "$what failed (exit $rc)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# owns_listening_port PID PORT: true if process PID has a TCP socket listening
# on PORT (read from /proc, so another process on that port does not count).
owns_listening_port() {
  local hex inode fds
  hex="$(printf '%04X' "$2")"
  fds="$(ls -l "/proc/$1/fd" 2>/dev/null)"
  # shellcheck disable=SC2013  # inodes are numbers: word splitting is fine
  for inode in $(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
                   /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    grep -qF "socket:[$inode]" <<<"$fds" && return 0
  done
  return 1
}

CACHECAR_PID=""
CACHECAR_ADDR=""

# start_cachecar BIN LOG: starts BIN on a free loopback port and polls (for at
# most 15 s) until it listens on the port. Retries on another port if
# the chosen one was taken meanwhile. Sets CACHECAR_PID and CACHECAR_ADDR.
# Health (SERVING) is then awaited by the client itself (its wait flag).
start_cachecar() {
  local bin="$1" log="$2" port attempt extra=()
  # A cachecar with a metrics endpoint serves it on a fixed port by default:
  # turn it off, so that runs side by side (ctest -j) do not collide.
  local help; help="$(timeout 10 "$bin" --help 2>&1)"
  if grep -q -- '--metrics-listen' <<<"$help"; then extra+=(--metrics-listen=); fi
  # More flags from the caller (e.g. --local-read-path), if it set the array.
  if declare -p CACHECAR_EXTRA_ARGS >/dev/null 2>&1; then extra+=("${CACHECAR_EXTRA_ARGS[@]}"); fi
  for attempt in 1 2 3; do
    port="$(free_port)" || die "no free loopback port (python3 needed)"
    CACHECAR_ADDR="127.0.0.1:$port"
    "$bin" --listen "$CACHECAR_ADDR" --shutdown-grace 2s "${extra[@]}" >"$log" 2>&1 &
    CACHECAR_PID=$!
    for _ in $(seq 1 150); do
      if ! kill -0 "$CACHECAR_PID" 2>/dev/null; then
        wait "$CACHECAR_PID" 2>/dev/null
        CACHECAR_PID=""
        break
      fi
      if owns_listening_port "$CACHECAR_PID" "$port"; then
        say "cachecar (pid $CACHECAR_PID) listening on $CACHECAR_ADDR"
        return 0
      fi
      sleep 0.1
    done
    if [ -n "$CACHECAR_PID" ]; then
      cat "$log" >&2
      die "cachecar did not listen on $CACHECAR_ADDR within 15s (log above)"
    fi
    if grep -qiE 'address already in use|failed to bind|could not bind|cannot bind' "$log" && grep -qF ":$port" "$log"; then
      say "port $port was taken before cachecar bound it; trying another (attempt $attempt)"
      continue
    fi
    cat "$log" >&2
    die "cachecar exited during start-up (log above)"
  done
  die "cachecar could not bind a free port in 3 attempts"
}

# stop_cachecar: SIGTERM, then at most 15 s for it to exit, then SIGKILL.
stop_cachecar() {
  [ -n "$CACHECAR_PID" ] || return 0
  local pid="$CACHECAR_PID" rc=0
  CACHECAR_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "warning: cachecar (pid $pid) still running 15s after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || say "warning: cachecar exited with status $rc after SIGTERM"
}

# --- checking a client's output ------------------------------------------------
# The clients print lines "STEP key=K name=value ...", values of bytes quoted.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
# shellcheck disable=SC2001  # sed indents every line of a multi-line detail
not_ok() { failed=$((failed + 1)); echo "FAIL - $1"; if [ -n "${2:-}" ]; then sed 's/^/       /' <<<"$2"; fi; }

# line_of FILE STEP KEY: the first output line of STEP for KEY.
line_of() { grep -m1 -E "^$2 key=$3( |\$)" "$1" || true; }
# field LINE NAME: NAME's value in LINE ("quoted" values keep their quotes).
field() { sed -nE "s/^.* $2=(\"([^\"\\\\]|\\\\.)*\"|[^ ]*).*\$/\\1/p" <<<"$1"; }
# expect NAME LINE FIELD WANT: passes if FIELD of LINE is exactly WANT.
expect() {
  local got; got="$(field "$2" "$3")"
  if [ -n "$2" ] && [ "$got" = "$4" ]; then ok "$1"; else not_ok "$1" "wanted $3=$4 in: ${2:-<no such line>}"; fi
}
# expect_greater NAME LINE FIELD THAN: passes if FIELD of LINE is a number > THAN.
expect_greater() {
  local got; got="$(field "$2" "$3")"
  if [[ "$got" =~ ^[0-9]+$ ]] && [[ "$4" =~ ^[0-9]+$ ]] && [ "$got" -gt "$4" ]; then ok "$1"
  else not_ok "$1" "wanted $3 > $4 in: ${2:-<no such line>}"; fi
}

# check_client_output FILE: the assertions both examples must pass.
check_client_output() {
  local out="$1" k="example:greeting" line v1 v2 v3
  line="$(grep -m1 '^health ' "$out" || true)"
  expect "client waited for health SERVING" "$line" status SERVING

  line="$(line_of "$out" put "$k")"
  v1="$(field "$line" version)"
  expect_greater "Put returns a version" "$line" version 0
  line="$(line_of "$out" get "$k")"
  expect "Get finds the key" "$line" found true
  expect "Get round-trips the value" "$line" value '"hello, cachecar"'
  expect "Get returns the Put's version" "$line" version "${v1:-?}"

  line="$(line_of "$out" cas-put "$k")"
  v2="$(field "$line" version)"
  expect "compare-and-set Put uses the read version" "$line" if_version "${v1:-?}"
  expect_greater "compare-and-set Put moves the version forward" "$line" version "${v1:-?}"
  line="$(line_of "$out" cas-put-stale "$k")"
  expect "stale if_version is Aborted" "$line" code Aborted

  line="$(line_of "$out" batchget "$k")"
  expect "BatchGet finds the written key" "$line" found true
  expect "BatchGet returns the compare-and-set value" "$line" value '"hello again"'
  expect "BatchGet returns the compare-and-set version" "$line" version "${v2:-?}"
  line="$(line_of "$out" batchget example:other)"
  expect "BatchGet round-trips a second key" "$line" value '"world"'
  line="$(line_of "$out" batchget example:missing)"
  expect "BatchGet reports a missing key absent" "$line" found false
  if [ "$(grep -c '^batchget ' "$out")" -eq 3 ]; then ok "BatchGet answers each key once"
  else not_ok "BatchGet answers each key once" "$(grep '^batchget ' "$out")"; fi

  line="$(line_of "$out" delete "$k")"
  v3="$(field "$line" version)"
  expect "Delete finds the key" "$line" found true
  expect_greater "Delete moves the version forward" "$line" version "${v2:-?}"
  line="$(line_of "$out" get-after-delete "$k")"
  expect "deleted key is not found" "$line" found false
  expect "absent key reports the delete's version" "$line" version "${v3:-?}"

  if [ "$(tail -n1 "$out")" = "done" ]; then ok "client ran to the end"; else not_ok "client ran to the end" "$(tail -n3 "$out")"; fi
}

# finish: the closing line; exit status 1 if any check failed.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || { echo "$EXAMPLE_NAME: FAIL: $failed check(s) failed (see above)" >&2; exit 1; }
}

# take_args CACHECAR_BIN WORK_DIR: checks them; sets $cachecar and $work.
take_args() {
  [ $# -eq 2 ] || die "usage: $0 CACHECAR_BIN WORK_DIR"
  cachecar="$1"
  [ -x "$cachecar" ] || die "no cachecar binary at $cachecar (build it first)"
  mkdir -p "$2" || die "cannot create WORK_DIR $2"
  work="$(cd "$2" && pwd)"
}

# run_client RUN_DIR CMD...: runs the example client (60 s at most) against
# the cachecar start_cachecar started, shows its output, checks its exit
# status and output, then stops cachecar.
run_client() {
  local dir="$1" rc=0
  shift
  timeout --kill-after=5 60 "$@" >"$dir/out" 2>"$dir/err" || rc=$?
  echo "--- client output"
  cat "$dir/out" "$dir/err"
  echo "---"
  if [ "$rc" -ne 0 ]; then
    kill -0 "$CACHECAR_PID" 2>/dev/null || say "cachecar is no longer running"
    echo "--- cachecar log"; tail -n 30 "$dir/cachecar.log"; echo "---"
    not_ok "client exits 0" "exit status $rc (124: killed after 60s)"
  else
    ok "client exits 0"
  fi
  check_client_output "$dir/out"
  stop_cachecar
}
