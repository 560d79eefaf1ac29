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
