#!/usr/bin/env bash
# cachecar's chaos run (issue #12): real replicas on a real PostgreSQL 15 and
# Kafka broker, concurrent writers and readers, a seeded nemesis, and the
# history checker (tests/chaos/README.md has the rules).
#
#   tests/chaos/run.sh [--duration 10m] [--seed S] [--faults all|KIND,...] [options]
#   tests/chaos/run.sh --help            every option (chaos.py's)
#   tests/chaos/run.sh --setup-only      make the virtualenv and the stubs, then exit
#   tests/chaos/run.sh --unit            the checker's rule tests (synthetic histories)
#
# Environment: CACHECAR_BIN (default build/cmd/cachecar/cachecar),
# LIBCACHECAR_LOCALREAD (default build/src/localread/libcachecar_localread.so:
# the readers' local reads),
# CHAOS_VENV_DIR (default build/chaos-venv: the virtualenv with
# requirements.txt and the stubs generated from proto/ at this run), PYTHON
# (default python3). Starts and stops its own PostgreSQL (tests/pg/pg.sh) and
# Kafka (tests/kafka/kafka.sh); needs what scripts/deps.sh installs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv_dir="${CHAOS_VENV_DIR:-$root/build/chaos-venv}"
python="${PYTHON:-python3}"

say() { echo "chaos/run.sh: $*"; }
die() { echo "chaos/run.sh: $*" >&2; exit 2; }

mode=run
case "${1:-}" in
  --setup-only) mode=setup; shift ;;
  --unit) mode=unit; shift ;;
esac

# --- the virtualenv (reused while requirements.txt and Python are unchanged)
command -v "$python" >/dev/null || die "no $python on PATH (set PYTHON)"
mkdir -p "$venv_dir"
venv="$venv_dir/venv"
stamp="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') $(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.chaos-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >"$venv_dir/venv.log" 2>&1; then
    say "python -m venv failed; installing Debian's python3-venv"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv ||
      { timeout 300 $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv; }; } >>"$venv_dir/venv.log" 2>&1
    rm -rf "$venv"
    "$python" -m venv "$venv" >>"$venv_dir/venv.log" 2>&1 || { cat "$venv_dir/venv.log" >&2; die "cannot make a virtualenv"; }
  fi
  # Wheels only: building grpcio from source would take far too long.
  PIP_CACHE_DIR="$venv_dir/pip-cache" timeout --kill-after=10 600 "$venv/bin/python" -m pip install \
    --disable-pip-version-check --no-input --quiet --timeout 30 --retries 3 --only-binary=:all: \
    -r "$here/requirements.txt" || die "pip install -r tests/chaos/requirements.txt failed"
  echo "$stamp" >"$venv/.chaos-stamp"
  say "made $venv"
fi
vpy="$venv/bin/python"

# --- stubs from proto/ (always fresh: the proto may have changed)
gen="$venv_dir/gen"
rm -rf "$gen"
mkdir -p "$gen"
"$vpy" -m grpc_tools.protoc -I "$root/proto" --python_out="$gen" --grpc_python_out="$gen" \
  "$root/proto/cachecar/v1/cache.proto" || die "protoc failed on proto/cachecar/v1/cache.proto"

# The readers use the Python client library (clients/python, from the tree:
# its committed stubs are the `cachecar` package's; the ones generated above
# are a namespace portion it shadows) with its local reader, which binds
# libcachecar_localread.so (LIBCACHECAR_LOCALREAD; default: build/'s).
export PYTHONPATH="$here:$root/clients/python/src:$gen" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export LIBCACHECAR_LOCALREAD="${LIBCACHECAR_LOCALREAD:-$root/build/src/localread/libcachecar_localread.so}"
case "$mode" in
  setup) say "virtualenv and stubs ready in $venv_dir"; exit 0 ;;
  unit) exec "$vpy" -m unittest -v test_checker ;;
esac

bin="${CACHECAR_BIN:-$root/build/cmd/cachecar/cachecar}"
for a in "$@"; do [ "$a" = "--help" ] || [ "$a" = "-h" ] && exec "$vpy" "$here/chaos.py" --cachecar "$bin" --help; done
[ -x "$bin" ] || die "no cachecar binary at $bin: build it (cmake --preset default && cmake --build build --target cachecar) or set CACHECAR_BIN"
exec "$vpy" "$here/chaos.py" --cachecar "$bin" "$@"
