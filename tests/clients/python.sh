#!/usr/bin/env bash
# The Python client library (clients/python): a virtualenv with the pinned
# requirements-dev.txt and the package pip-installed from the tree, its unit
# tests, and the committed stubs against the proto. The virtualenv
# (WORK/venv) is the conformance_python_* and examples_python tests' (this is
# their ctest fixture). Nothing is written into the repo.
#
# Usage: tests/clients/python.sh WORK_DIR
set -uo pipefail
export EXAMPLE_NAME=clients_python  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../examples/lib.sh
. "$here/../examples/lib.sh"
# shellcheck source-path=SCRIPTDIR source=toolchains.sh
. "$here/toolchains.sh"
[ $# -eq 1 ] || die "usage: $0 WORK_DIR"
mkdir -p "$1" && work="$(cd "$1" && pwd)" || die "cannot create $1"
python_venv "$work/venv"  # sets vpy
src="$root/clients/python"

if out="$(cd "$work" && "$vpy" -c 'import cachecar, cachecar.v1.cache_pb2_grpc; print(cachecar.__file__)' 2>&1)" &&
   [[ "$out" == "$work/venv/"* ]]; then ok "pip-installed package imports (from the virtualenv)"
else not_ok "pip-installed package imports" "$out"; fi
if out="$(cd "$src/tests" && PYTHONDONTWRITEBYTECODE=1 timeout 120 "$vpy" -m unittest -q test_retry test_localread 2>&1)"; then
  ok "unit tests (test_retry, test_localread)"
else not_ok "unit tests (test_retry, test_localread)" "$out"; fi

# A fresh virtualenv, as on a machine that never built cachecar: `pip
# install clients/python` (with build isolation, no library provided) must
# give working local reads: the package compiles its own reader. Only the
# runtime dependencies come from pip (wheels, the pinned versions).
fresh="$work/fresh-venv"
rm -rf "$fresh" "$work/fresh-pkg"
mkdir -p "$work/fresh-pkg"
cp -rL "$src/pyproject.toml" "$src/setup.py" "$src/MANIFEST.in" "$src/README.md" "$src/src" \
  "$src/native" "$work/fresh-pkg/"
if out="$( { python3 -m venv "$fresh" &&
             PIP_CACHE_DIR="$work/pip-cache" timeout 600 "$fresh/bin/python" -m pip install \
               --disable-pip-version-check --no-input --quiet --timeout 30 --retries 3 \
               --only-binary=grpcio,grpcio-health-checking,protobuf \
               -c "$src/requirements-dev.txt" "$work/fresh-pkg"; } 2>&1)"; then
  ok "pip install clients/python into a fresh virtualenv"
  if out="$(cd "$src/tests" && env -u LIBCACHECAR_LOCALREAD CACHECAR_REQUIRE_NATIVE=1 \
              PYTHONDONTWRITEBYTECODE=1 timeout 120 "$fresh/bin/python" -c '
import cachecar, cachecar.localread as l
assert l.native_available(), "no cachecar._localread"
r = cachecar.Client("127.0.0.1:1", local_read_path="/nonexistent/cache")._local
assert r.backend == "native", r.backend
assert r.get("default", "k")[0] is l.Result.NOT_SERVING
print(cachecar._localread.__file__)' 2>&1 &&
            cd "$src/tests" && env -u LIBCACHECAR_LOCALREAD CACHECAR_REQUIRE_NATIVE=1 \
              PYTHONDONTWRITEBYTECODE=1 timeout 120 "$fresh/bin/python" -m unittest -q test_localread 2>&1)" &&
     [[ "$out" == *"$fresh/"*"_localread"* ]]; then
    ok "the fresh install reads locally with its own native reader (no LIBCACHECAR_LOCALREAD)"
  else not_ok "the fresh install's native reader" "$out"; fi
else
  not_ok "pip install clients/python into a fresh virtualenv" "$out"
fi
rm -rf "$fresh" "$work/fresh-pkg"

rm -rf "$work/regen"
if out="$(bash "$src/generate.sh" "$work/regen" "$vpy" 2>&1)"; then
  stale=""
  for f in cache_pb2.py cache_pb2.pyi cache_pb2_grpc.py; do
    d="$(diff -u "$src/src/cachecar/v1/$f" "$work/regen/cachecar/v1/$f")" || stale+="$(head -40 <<<"$d")"
  done
  if [ -z "$stale" ]; then ok "committed stubs match proto/cachecar/v1/cache.proto"
  else not_ok "committed stubs match the proto (run clients/python/generate.sh and commit)" "$stale"; fi
else
  not_ok "clients/python/generate.sh runs" "$out"
fi
finish
