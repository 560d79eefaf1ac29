#!/usr/bin/env bash
# Proves the Kafka fixture (tests/kafka/kafka.sh) works: a topic, a message
# produced and consumed back with kcat, more partitions, and the message still
# there after the broker stops and starts again (cleanly, then by a crash).
#
#   kafka_smoke.sh KAFKA_SH DIR     DIR is the fixture's (kafka.sh start DIR)
set -euo pipefail

kafka_sh="${1:?usage: kafka_smoke.sh KAFKA_SH DIR}"
dir="${2:?usage: kafka_smoke.sh KAFKA_SH DIR}"
# shellcheck disable=SC1091
. "$dir/env"

fail() { echo "kafka_smoke: FAIL: $*" >&2; exit 1; }
step() { echo "kafka_smoke: $*"; }

topic="smoke_$$_$RANDOM"

# Every message on the topic, one line each: key and payload length, sorted.
consume() {
  timeout 30 kcat -C -b "$KAFKA_BOOTSTRAP" -t "$topic" -o beginning -e -q \
    -f '%k %S\n' | sort
}

expect_messages() {
  local got want
  got="$(consume)" || fail "kcat could not consume $topic ($1)"
  want="$(printf 'k1 5\nk2 16\n')"
  [ "$got" = "$want" ] || fail "$1: expected
$want
got
$got"
}

step "create-topic $topic (2 partitions)"
bash "$kafka_sh" create-topic "$dir" "$topic" 2

step "produce two messages, one of them with newlines"
printf 'hello' | bash "$kafka_sh" produce "$dir" "$topic" k1
printf 'line 1\nline 2\n\x00\xff' | bash "$kafka_sh" produce "$dir" "$topic" k2 1
expect_messages "after produce"

step "add-partitions to 3"
bash "$kafka_sh" add-partitions "$dir" "$topic" 3
kcat -L -b "$KAFKA_BOOTSTRAP" -t "$topic" | grep -q "topic \"$topic\" with 3 partitions:" \
  || fail "kcat -L does not show 3 partitions"

step "broker-stop: metadata must fail"
bash "$kafka_sh" broker-stop "$dir"
if timeout 15 kcat -L -b "$KAFKA_BOOTSTRAP" -m 2 >/dev/null 2>&1; then
  fail "the broker still answers after broker-stop"
fi
step "broker-start"
bash "$kafka_sh" broker-start "$dir"
expect_messages "after a clean restart"

step "broker-stop --kill (a crash), broker-start"
bash "$kafka_sh" broker-stop "$dir" --kill
bash "$kafka_sh" broker-start "$dir"
expect_messages "after a crash and restart"

step "ok"
