#!/usr/bin/env bash
# A throwaway one-node Apache Kafka (KRaft: broker and controller in one JVM)
# from the official jars on Maven Central, for tests and local runs.
#
#   kafka.sh start DIR                  fetch the jars (once per version, see
#                                       tests/kafka/pom.xml), format, start on
#                                       free loopback ports, write DIR/env
#                                       (KAFKA_BOOTSTRAP, KAFKA_PORT, ...)
#   kafka.sh stop DIR                   stop it and delete everything
#   kafka.sh broker-stop DIR [--kill]   stop the broker (SIGTERM, ~2 s; with
#                                       --kill SIGKILL, a crash); data and
#                                       port stay
#   kafka.sh broker-start DIR           start it again on the same port
#   kafka.sh broker-pause DIR           SIGSTOP the broker (connections stay
#                                       open, nothing answers)
#   kafka.sh broker-resume DIR          SIGCONT it
#   kafka.sh create-topic DIR NAME PARTITIONS
#   kafka.sh add-partitions DIR NAME TOTAL
#   kafka.sh produce DIR TOPIC KEY [PARTITION]
#                                       stdin, whole, as one message
#
# Its files live in a fresh /tmp/cachecar-kafka.* directory (KAFKA_ROOT in
# DIR/env: server.properties, data/, server.log, kafka.pid). The jars are
# cached in ${XDG_CACHE_HOME:-~/.cache}/cachecar/kafka-VERSION-POMHASH/libs
# (KAFKA_CACHE_DIR overrides the parent). Needs java (17), mvn and kcat:
# scripts/deps.sh installs them. Runs as root or not; nothing is shared.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|broker-start|broker-pause|broker-resume DIR | broker-stop DIR [--kill]" >&2
  echo "       $0 create-topic DIR NAME PARTITIONS | add-partitions DIR NAME TOTAL" >&2
  echo "       $0 produce DIR TOPIC KEY [PARTITION] <message" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
java="${JAVA:-java}"
ready_timeout="${KAFKA_READY_TIMEOUT:-90}"
broker_opts="${KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
tool_opts="-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: $*" >&2; exit 1; }

need() {
  local p
  for p in "$@"; do
    command -v "$p" >/dev/null 2>&1 || die "$p not found; run scripts/deps.sh (maven, openjdk-17-jre-headless, kcat)"
  done
}

# A port no socket on this machine uses (listening, connected or in
# TIME_WAIT, per /proc/net/tcp*), below the kernel's ephemeral range: an
# outgoing connection never takes one of those as its local port, so the
# port stays free while the broker is down (broker-start reuses it). The
# caller still handles losing a race with another listener.
free_port() {
  local low=32768 span port hex
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range || true
  span=$((low - 10000))
  [ "$span" -ge 1000 ] || die "the ephemeral port range starts at $low; no room below it"
  for _ in $(seq 1 200); do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    printf -v hex ':%04X' "$port"
    if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
        | awk -v p="$hex" 'substr($2, length($2) - 4) == p { used = 1 } END { exit !used }'; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

load_env() {
  [ -f "$dir/env" ] || die "$dir/env not found: run kafka.sh start $dir first"
  # shellcheck disable=SC1091
  . "$dir/env"
}

# The official jars, downloaded once into a directory named after the Kafka
# version and the pom's hash, so an edited pom gets a fresh set.
ensure_libs() {
  local version hash cache tmp
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
  [ -n "$version" ] || die "no <kafka.version> in $pom"
  hash="$(sha256sum "$pom" | cut -c1-12)"
  cache="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cachecar}/kafka-$version-$hash"
  KAFKA_VERSION="$version"
  KAFKA_LIBS="$cache/libs"
  [ -f "$KAFKA_LIBS/kafka_2.13-$version.jar" ] && return 0
  need mvn
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/libs.tmp.XXXXXX")"
  say "downloading Kafka $version jars from Maven Central into $KAFKA_LIBS (once)"
  if ! timeout 900 mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$cache/mvn.log" 2>&1; then
    cat "$cache/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (log: $cache/mvn.log)"
  fi
  [ -f "$tmp/kafka_2.13-$version.jar" ] || { rm -rf "$tmp"; die "mvn left no kafka_2.13-$version.jar"; }
  # Another run may have finished first; its copy is as good as ours.
  mv -T "$tmp" "$KAFKA_LIBS" 2>/dev/null || rm -rf "$tmp"
}

# A Kafka command-line tool (StorageTool, TopicCommand) in a small JVM.
tool() {
  # shellcheck disable=SC2086
  "$java" $tool_opts -Dlog4j.configuration="file:$KAFKA_ROOT/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@" </dev/null
}

write_config() {
  cat >"$KAFKA_ROOT/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_ROOT/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
EOF
}

# The broker logs to server.log, the tools to stderr.
write_logging() {
  cat >"$KAFKA_ROOT/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$KAFKA_ROOT/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
EOF
  cat >"$KAFKA_ROOT/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

write_env() {
  cat >"$dir/env" <<EOF
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
KAFKA_ROOT=$KAFKA_ROOT
KAFKA_LIBS='$KAFKA_LIBS'
KAFKA_VERSION=$KAFKA_VERSION
KAFKA_CLUSTER_ID=$KAFKA_CLUSTER_ID
KAFKA_LOG=$KAFKA_ROOT/server.log
EOF
}

# Whether PID runs. A killed broker was adopted by init when its launcher
# exited, and stays a zombie until init reaps it, which can take a while.
alive() {
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The broker's pid, if the process in KAFKA_ROOT/kafka.pid is still our JVM.
broker_pid() {
  local pid
  [ -f "$KAFKA_ROOT/kafka.pid" ] || return 1
  pid="$(cat "$KAFKA_ROOT/kafka.pid")"
  [ -n "$pid" ] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$KAFKA_ROOT/server.properties" || return 1
  echo "$pid"
}

launch() {
  # Its own session, stdio on files: ctest must not wait on the broker's
  # pipes, and a signal to the caller's process group must not reach it.
  # shellcheck disable=SC2086
  setsid "$java" $broker_opts -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KAFKA_ROOT/log4j.properties" -Dkafka.logs.dir="$KAFKA_ROOT" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_ROOT/server.properties" \
    </dev/null >>"$KAFKA_ROOT/kafka.out" 2>&1 &
  local pid=$!
  disown "$pid"
  echo "$pid" >"$KAFKA_ROOT/kafka.pid"
  # Until the forked shell has become the JVM, broker_pid would not know it.
  for _ in $(seq 1 100); do
    broker_pid >/dev/null && return 0
    alive "$pid" || return 0
    sleep 0.05
  done
}

# Metadata from the broker, or nothing if it does not answer within a few
# seconds.
metadata() {
  timeout 15 kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 5 "$@" 2>/dev/null || true
}

# The first errors (a failed start logs its cause, then a long shutdown),
# then the end of the logs.
show_log() {
  echo "--- first errors in $KAFKA_ROOT/server.log" >&2
  grep -m 8 -E '^\[[^]]*\] (ERROR|FATAL) |^[a-zA-Z.]+(Exception|Error): ' "$KAFKA_ROOT/server.log" >&2 2>/dev/null || true
  echo "--- tail of $KAFKA_ROOT/server.log" >&2
  tail -n 30 "$KAFKA_ROOT/server.log" >&2 2>/dev/null || true
  echo "--- tail of $KAFKA_ROOT/kafka.out" >&2
  tail -n 20 "$KAFKA_ROOT/kafka.out" >&2 2>/dev/null || true
}

# Until the broker answers metadata as broker 1 and every partition it knows
# has a leader. Returns 1 if the JVM exited, 2 on timeout.
wait_ready() {
  local deadline=$((SECONDS + ready_timeout)) md
  say "waiting up to ${ready_timeout}s for the broker on 127.0.0.1:$KAFKA_PORT to answer metadata"
  while [ "$SECONDS" -lt "$deadline" ]; do
    broker_pid >/dev/null || return 1
    md="$(metadata)"
    if grep -q "broker 1 at 127.0.0.1:$KAFKA_PORT" <<<"$md" && ! grep -q 'leader -1' <<<"$md"; then
      return 0
    fi
    sleep 0.5
  done
  return 2
}

kill_broker() {
  local signal="$1" bound="$2" pid
  pid="$(broker_pid)" || { rm -f "$KAFKA_ROOT/kafka.pid"; return 0; }
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((bound * 10))); do
    alive "$pid" || { rm -f "$KAFKA_ROOT/kafka.pid"; return 0; }
    sleep 0.1
  done
  return 1
}

start() {
  [ -f "$dir/env" ] && stop
  rm -rf "$dir"
  mkdir -p "$dir"
  need "$java" kcat setsid timeout
  ensure_libs
  KAFKA_ROOT="$(mktemp -d /tmp/cachecar-kafka.XXXXXX)"
  chmod 755 "$KAFKA_ROOT"
  echo "KAFKA_ROOT=$KAFKA_ROOT" >"$dir/env"
  write_logging
  KAFKA_CLUSTER_ID="$(tool kafka.tools.StorageTool random-uuid)"
  local attempt status
  for attempt in 1 2 3; do
    KAFKA_PORT="$(free_port)"
    KAFKA_CONTROLLER_PORT="$KAFKA_PORT"
    while [ "$KAFKA_CONTROLLER_PORT" = "$KAFKA_PORT" ]; do KAFKA_CONTROLLER_PORT="$(free_port)"; done
    write_env
    write_config
    rm -rf "$KAFKA_ROOT/data" "$KAFKA_ROOT/server.log" "$KAFKA_ROOT/kafka.out"
    tool kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" \
      -c "$KAFKA_ROOT/server.properties" >"$KAFKA_ROOT/format.log" 2>&1 \
      || { cat "$KAFKA_ROOT/format.log" >&2; die "StorageTool format failed"; }
    launch
    status=0
    wait_ready || status=$?
    if [ "$status" -eq 0 ]; then
      say "Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, $KAFKA_ROOT)"
      return 0
    fi
    kill_broker KILL 10 || true
    # Lost a race for a port: try again on others.
    if [ "$status" -eq 1 ] && grep -qi 'address already in use' "$KAFKA_ROOT/server.log" "$KAFKA_ROOT/kafka.out" 2>/dev/null; then
      say "port taken (attempt $attempt), trying others"
      continue
    fi
    break
  done
  show_log
  die "the broker did not come up (status $status; KAFKA_ROOT=$KAFKA_ROOT)"
}

stop() {
  [ -f "$dir/env" ] || { rm -rf "$dir"; return 0; }
  # shellcheck disable=SC1091
  . "$dir/env"
  if [ -n "${KAFKA_ROOT:-}" ] && broker_pid >/dev/null; then
    say "stopping the broker (SIGTERM, up to 20s, then SIGKILL)"
    kill_broker TERM 20 || kill_broker KILL 10 || die "broker $(cat "$KAFKA_ROOT/kafka.pid") did not die"
  fi
  case "${KAFKA_ROOT:-}" in /tmp/cachecar-kafka.*) rm -rf "$KAFKA_ROOT" ;; esac
  rm -rf "$dir"
}

# SIGTERM: a clean shutdown that deregisters the broker, so broker-start is
# back in ~5 s. --kill: a crash; the restarted broker then waits for its old
# registration to expire (broker.session.timeout.ms) first, ~8 s.
broker_stop() {
  local mode="${1:-}"
  load_env
  case "$mode" in
    --kill)
      kill_broker KILL 10 || die "broker $(cat "$KAFKA_ROOT/kafka.pid") did not die"
      say "broker killed (SIGKILL); data and port $KAFKA_PORT kept" ;;
    "")
      kill_broker TERM 10 || kill_broker KILL 10 || die "broker $(cat "$KAFKA_ROOT/kafka.pid") did not die"
      say "broker stopped; data and port $KAFKA_PORT kept" ;;
    *) die "usage: kafka.sh broker-stop DIR [--kill]" ;;
  esac
}

# A paused broker: its sockets stay open and nothing answers (a stalled JVM,
# a frozen VM), unlike a stopped one whose port refuses connections.
broker_signal() {
  local signal="$1" pid
  load_env
  pid="$(broker_pid)" || die "no broker running (KAFKA_ROOT=$KAFKA_ROOT)"
  kill -"$signal" "$pid"
  say "broker $pid: SIG$signal"
}

broker_start() {
  load_env
  need "$java" kcat setsid timeout
  if ! broker_pid >/dev/null; then
    launch
  fi
  local status=0
  wait_ready || status=$?
  if [ "$status" -ne 0 ]; then
    kill_broker KILL 10 || true
    show_log
    die "the broker did not come back on 127.0.0.1:$KAFKA_PORT (status $status)"
  fi
  say "broker back on 127.0.0.1:$KAFKA_PORT"
}

number() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] || die "$2 must be a positive number, got '${1:-}'"
}

# Until metadata shows TOPIC with exactly N partitions, each with a leader.
wait_topic() {
  local topic="$1" want="$2" deadline=$((SECONDS + 60)) md led
  say "waiting up to 60s for topic $topic to show $want partitions with leaders"
  while [ "$SECONDS" -lt "$deadline" ]; do
    md="$(metadata -t "$topic")"
    led="$(grep -cE '^ +partition [0-9]+, leader [0-9]+,' <<<"$md" || true)"
    if grep -q "topic \"$topic\" with $want partitions:" <<<"$md" && [ "$led" -eq "$want" ]; then
      return 0
    fi
    sleep 0.5
  done
  echo "$md" >&2
  die "topic $topic did not show $want partitions with leaders"
}

topic_command() {
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" "$@"
}

create_topic() {
  local topic="${1:-}" partitions="${2:-}"
  [ -n "$topic" ] || die "usage: kafka.sh create-topic DIR NAME PARTITIONS"
  number "$partitions" PARTITIONS
  load_env
  topic_command --create --topic "$topic" --partitions "$partitions" --replication-factor 1 >/dev/null
  wait_topic "$topic" "$partitions"
}

add_partitions() {
  local topic="${1:-}" total="${2:-}"
  [ -n "$topic" ] || die "usage: kafka.sh add-partitions DIR NAME TOTAL"
  number "$total" TOTAL
  load_env
  topic_command --alter --topic "$topic" --partitions "$total" >/dev/null
  wait_topic "$topic" "$total"
}

# kcat sends each file named on its command line as one message, so stdin
# (newlines, binary and all) goes through a file.
produce() {
  local topic="${1:-}" key="${2:-}" partition="${3:-}" file
  if [ -z "$topic" ] || [ "$#" -lt 2 ]; then
    die "usage: kafka.sh produce DIR TOPIC KEY [PARTITION] <message"
  fi
  load_env
  file="$(mktemp "$KAFKA_ROOT/produce.XXXXXX")"
  cat >"$file"
  local args=(-P -b "127.0.0.1:$KAFKA_PORT" -t "$topic" -k "$key" -X message.timeout.ms=15000)
  [ -z "$partition" ] || args+=(-p "$partition")
  local status=0
  timeout 30 kcat "${args[@]}" "$file" || status=$?
  rm -f "$file"
  [ "$status" -eq 0 ] || die "kcat could not produce to $topic (status $status)"
}

shift 2
case "$cmd" in
  start) start ;;
  stop) stop ;;
  broker-stop) broker_stop "$@" ;;
  broker-start) broker_start ;;
  broker-pause) broker_signal STOP ;;
  broker-resume) broker_signal CONT ;;
  create-topic) create_topic "$@" ;;
  add-partitions) add_partitions "$@" ;;
  produce) produce "$@" ;;
  *) echo "kafka.sh: unknown command $cmd" >&2; exit 2 ;;
esac
