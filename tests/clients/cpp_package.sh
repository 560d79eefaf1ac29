#!/usr/bin/env bash
# The C++ client as a CMake package, the way an app outside the repo uses it:
# configure clients/cpp on its own, build, install into WORK/prefix, then
# build tests/clients/consumer with find_package(cachecar_client) against
# that prefix and run it against a live cachecar.
#
# Usage: tests/clients/cpp_package.sh CACHECAR_BIN WORK_DIR
set -uo pipefail
export EXAMPLE_NAME=clients_cpp_package  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../examples/lib.sh
. "$here/../examples/lib.sh"
take_args "$@"  # sets cachecar and work
jobs="${JOBS:-2}"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
rm -rf "$work/lib" "$work/prefix" "$work/consumer"
run_bounded 120 "configure clients/cpp" cmake -S "$root/clients/cpp" -B "$work/lib" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCACHECAR_CLIENT_CONFORMANCE=OFF "${launcher[@]}" >"$work/lib.log"
run_bounded 900 "build clients/cpp" cmake --build "$work/lib" -j"$jobs" >>"$work/lib.log"
run_bounded 60 "install clients/cpp" cmake --install "$work/lib" --prefix "$work/prefix" >>"$work/lib.log"
for f in include/cachecar/client/client.h lib/cmake/cachecar_client/cachecar_clientConfig.cmake; do
  if [ -f "$work/prefix/$f" ]; then ok "installed $f"; else not_ok "installed $f" "$(ls -R "$work/prefix")"; fi
done
if grep -rq "cache.pb.h\|cache.grpc.pb.h" "$work/prefix/include"; then
  not_ok "public headers name no generated code" "$(grep -rl 'cache.pb.h' "$work/prefix/include")"
else ok "public headers name no generated code"; fi
run_bounded 120 "configure the consumer" cmake -S "$here/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" "${launcher[@]}" >"$work/consumer.log"
run_bounded 600 "build the consumer" cmake --build "$work/consumer" >>"$work/consumer.log"
ok "consumer builds with find_package(cachecar_client)"

run_dir="$(mktemp -d "$work/run.XXXXXX")" || die "cannot make a run directory"
trap 'stop_cachecar; rm -rf "$run_dir"' EXIT
# With the published cache: the package's Get reads it (the local reader is
# compiled into the installed library).
mkdir -p "$run_dir/local"
CACHECAR_EXTRA_ARGS=(--local-read-path "$run_dir/local/cache")
start_cachecar "$cachecar" "$run_dir/cachecar.log"
if out="$(timeout 60 "$work/consumer/consumer" "$CACHECAR_ADDR" "$run_dir/local/cache" 2>&1)"; then ok "consumer runs against cachecar"
else not_ok "consumer runs against cachecar" "$out"; fi
echo "$out" | sed 's/^/  /'
stop_cachecar
finish
