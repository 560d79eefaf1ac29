#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time from the checked-in corpus
# (tests/fuzz/corpus/<target>/). Usage:
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
# BUILD_DIR is a CACHECAR_FUZZ build (cmake --preset fuzz; cmake --build
# build-fuzz --target <targets>). New inputs go to BUILD_DIR/fuzz-corpus/
# (the checked-in corpus is only read); a crash is saved under
# BUILD_DIR/fuzz-artifacts/ and fails the run. Copy an input worth keeping
# into tests/fuzz/corpus/<target>/ with a regression test for the fix.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
seconds="$2"
shift 2
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(fuzz_decode_event fuzz_config_yaml fuzz_inject_yaml
                                       fuzz_http_request fuzz_admission_review)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
failed=0
for t in "${targets[@]}"; do
  bin="$(find "$build" -type f -name "$t" -perm -u+x | head -1)"
  if [ -z "$bin" ]; then
    echo "fuzz: $t is not built in $build" >&2
    failed=1
    continue
  fi
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  # Leaks are checked by the ASan unit tests; here they would stop the run
  # on the libraries' one-time allocations.
  if ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
       "$work" "$here/corpus/$t" >"$build/fuzz-$t.log" 2>&1; then
    echo "fuzz: $t ran ${seconds}s: $(grep -E 'stat::number_of_executed_units' "$build/fuzz-$t.log" |
      awk '{print $2}') runs, corpus $(ls "$work" | wc -l) new + $(ls "$here/corpus/$t" | wc -l) seeds, nothing found"
  else
    echo "fuzz: $t FOUND A PROBLEM; see $build/fuzz-$t.log and $artifacts/$t-*" >&2
    tail -40 "$build/fuzz-$t.log" >&2
    failed=1
  fi
done
exit "$failed"
