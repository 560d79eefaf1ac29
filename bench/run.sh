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
# end. Extra arguments go to bench/run.py (e.g. --sections hit,stampede);
# --no-client-readers leaves out the Go and Python local-read rows (they
# need Go and a Python virtualenv with grpcio, made as the client tests do).
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
  cachecar_hit_ratio cachecar_memory_bench cachecar_local_bench cachecar_localread_shared
extra=()
# The local section's Go and Python rows: the client libraries' Gets with
# their local readers (clients/go/cmd/localbench, clients/python/tests/
# localbench.py), with the toolchains and caches the client tests use.
if [[ " $* " != *" --no-client-readers "* ]]; then
  export EXAMPLE_NAME=bench
  # shellcheck source=../tests/examples/lib.sh
  . "$root/tests/examples/lib.sh"
  # shellcheck source=../tests/clients/toolchains.sh
  . "$root/tests/clients/toolchains.sh"
  (use_go "$build/tests/clients-go" && cd "$root/clients/go" &&
    run_bounded 480 "downloading the Go modules" go mod download &&
    go build -o "$build/bench-clients/localbench-go" ./cmd/localbench) ||
    die "cannot build clients/go/cmd/localbench (--no-client-readers skips the Go and Python rows)"
  python_venv "$build/tests/clients-python/venv"
  extra+=(--local-reader "Go=$build/bench-clients/localbench-go")
  # Python: the package's native extension, and beside it the ctypes
  # binding of the C ABI it replaced (the same reader, another call path).
  extra+=(--local-reader "Python=$vpy $root/clients/python/tests/localbench.py")
  extra+=(--local-reader "Python ctypes=env CACHECAR_LOCALREAD_BACKEND=ctypes LIBCACHECAR_LOCALREAD=$build/src/localread/libcachecar_localread.so $vpy $root/clients/python/tests/localbench.py")
fi
args=()
for a in "$@"; do [ "$a" = "--no-client-readers" ] || args+=("$a"); done
[ "$smoke" -eq 0 ] && extra+=(--ghz)
export PATH="$root/.tools/bin:$PATH"
exec python3 "$root/bench/run.py" --build-dir "$build" "${extra[@]}" "${args[@]}"
