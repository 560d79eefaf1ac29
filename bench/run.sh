#!/usr/bin/env bash
# The benchmark entry point (not part of the test suite):
#
#   bench/run.sh            full run, ~10 min: writes bench/out/results.md
#                           (+ results.jsonl, every raw measurement)
#   bench/run.sh --smoke    seconds-long run that proves the harness works (CI)
#
# Installs the peers (bench/deps.sh), builds the release binaries into
# build-bench (or BUILD_DIR), then runs bench/run.py, which starts its own
# PostgreSQL, Kafka, Redis and memcached on loopback and stops them at the
# end. Extra arguments go to bench/run.py (e.g. --sections hit,stampede).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
smoke=0
for a in "$@"; do [ "$a" = "--smoke" ] && smoke=1; done
if [ "$smoke" -eq 1 ]; then
  bash "$root/bench/deps.sh" --no-ghz
else
  bash "$root/bench/deps.sh"
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target cachecar cachecar_load cachecar_floor cachecar_cache_bench \
  cachecar_hit_ratio cachecar_memory_bench cachecar_local_bench
extra=()
[ "$smoke" -eq 0 ] && extra+=(--ghz)
export PATH="$root/.tools/bin:$PATH"
exec python3 "$root/bench/run.py" --build-dir "$build" "${extra[@]}" "$@"
