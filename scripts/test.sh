#!/usr/bin/env bash
# Runs cachecar's whole test suite from a fresh clone: installs the Debian
# packages, grpcurl and Helm, checks the format, builds, lints the build's
# sources with clang-tidy (scripts/check_tidy.sh), and runs every test with ctest (the
# integration tests start a throwaway PostgreSQL 15 and PgBouncer with
# tests/pg/pg.sh and a one-node Kafka with tests/kafka/kafka.sh, and stop
# them at the end). Then, unless
# --quick is given, a smoke run of the benchmark harness (bench/run.sh
# --smoke) and the checker builds: clang -Wthread-safety -Werror (build
# only), ASan+UBSan (all unit tests), the fuzz targets for 30 s each
# (tests/fuzz/run.sh) and TSan (the tests where threads meet).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs="${JOBS:-2}"

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "dependencies"
bash scripts/deps.sh
grpcurl="$(bash scripts/install_grpcurl.sh)"
bash scripts/install_helm.sh >/dev/null  # for the chart test (tests/helm)

step "format (clang-format-14)"
bash scripts/check_format.sh

step "build (gcc)"
cmake --preset default -DGRPCURL="$grpcurl" >/dev/null
cmake --build build -j"$jobs"

step "lint (clang-tidy-14 over src/ and cmd/)"
JOBS="$jobs" bash scripts/check_tidy.sh build

step "tests (gcc): unit and end-to-end"
ctest --test-dir build --output-on-failure -j"$jobs"

[ "$quick" -eq 1 ] && exit 0

# Seconds-long: proves the benchmark harness (peers, load generator, every
# section) still works; the numbers mean nothing at this size.
step "benchmark harness: smoke run"
BUILD_DIR="$root/build" bash bench/run.sh --smoke --out "$root/build/bench-smoke/results.md"

step "clang -Wthread-safety -Werror (build)"
cmake --preset clang-tsa >/dev/null
cmake --build build-clang-tsa -j"$jobs"

step "ASan + UBSan: unit, PostgreSQL and Kafka tests"
cmake --preset asan >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$root/tests/lsan.supp" \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -L 'unit|postgres' -j"$jobs"

# What other people's bytes reach (issue #17), fuzzed from the checked-in
# corpus for a bounded time (FUZZ_SECONDS per target, 5 targets).
step "fuzz: libFuzzer targets, ${FUZZ_SECONDS:-30}s each"
cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_decode_event fuzz_config_yaml fuzz_inject_yaml \
  fuzz_http_request fuzz_admission_review
bash tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-30}"

# Only the tests whose threads meet in our own code: Debian's gRPC and
# abseil are not built with TSan, so hand-offs inside them are invisible to
# it (our own hand-offs use pthread-based locks, see src/common/mutex.h).
step "TSan: tests where threads meet"
cmake --preset tsan >/dev/null
# Build exactly the executables of the tests the labels select, so that a new
# `threads` test cannot be left out of the build (ctest would report it as
# "Not Run"). Before the build ctest knows no command for them, and each such
# test is named after its target; the fixtures are scripts and need no build.
mapfile -t tsan_targets < <(ctest --test-dir build-tsan -N -L 'stress|threads' --show-only=json-v1 |
  python3 -c 'import json, sys
for t in json.load(sys.stdin)["tests"]:
    if not t.get("command"):
        print(t["name"])' | sort -u)
cmake --build build-tsan -j"$jobs" --target "${tsan_targets[@]}"
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure -L 'stress|threads' -j"$jobs"
