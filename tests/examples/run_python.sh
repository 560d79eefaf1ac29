#!/usr/bin/env bash
# Tests the Python example client (examples/python) against a live cachecar:
# makes a virtualenv in WORK_DIR with the pinned requirements.txt (wheels
# only), generates the stubs into WORK_DIR, starts cachecar on a free loopback
# port, runs client.py and checks what it printed. Nothing is written into
# the repo.
#
# Usage: tests/examples/run_python.sh CACHECAR_BIN WORK_DIR
# Python: $PYTHON, else python3 (3.8 or newer, with the venv module; Debian's
# python3-venv is installed if it is missing). A second run reuses the
# virtualenv while requirements.txt and the Python version are unchanged.
set -uo pipefail
export EXAMPLE_NAME=examples_python  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

take_args "$@"  # sets cachecar and work (lib.sh)
src="$root/examples/python"
start=$SECONDS

# --- Python and the virtualenv ---------------------------------------------------------
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "no $python on PATH (set PYTHON to a Python 3.8+)"
py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || die "$python does not run"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 8))' || die "$python is $py_version; need 3.8 or newer"
say "using $(command -v "$python") ($py_version)"

venv="$work/venv"
stamp="$py_version $(sha256sum "$src/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.cachecar-stamp" 2>/dev/null)" = "$stamp" ]; then
  say "reusing $venv"
else
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >"$work/venv.log" 2>&1; then
    rm -rf "$venv"
    say "python -m venv failed; installing Debian's python3-venv"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv ||
      { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq python3-venv; }; } >>"$work/venv.log" 2>&1
    "$python" -m venv "$venv" >>"$work/venv.log" 2>&1 || { cat "$work/venv.log" >&2; die "cannot make a virtualenv with $python (log above)"; }
  fi
  # Wheels only: building grpcio from source would take far too long here.
  PIP_CACHE_DIR="$work/pip-cache" run_bounded 480 "pip install -r examples/python/requirements.txt" \
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    --timeout 30 --retries 3 --only-binary=:all: -r "$src/requirements.txt"
  echo "$stamp" >"$venv/.cachecar-stamp"
  say "made $venv ($((SECONDS - start))s so far)"
fi
vpy="$venv/bin/python"

# --- stubs ------------------------------------------------------------------------------
gen="$work/gen"
run_bounded 120 "examples/python/generate.sh" bash "$src/generate.sh" "$gen" "$vpy" >/dev/null
say "generated stubs in $gen"

# --- run against a live cachecar -----------------------------------------------------
run_dir="$(mktemp -d "$work/run.XXXXXX")" || die "cannot make a run directory in $work"
cleanup() { stop_cachecar; rm -rf "$run_dir"; }
trap cleanup EXIT
start_cachecar "$cachecar" "$run_dir/cachecar.log"

PYTHONPATH="$gen" PYTHONDONTWRITEBYTECODE=1 \
  run_client "$run_dir" "$vpy" "$src/client.py" --addr "$CACHECAR_ADDR" --wait 20
say "took $((SECONDS - start))s"
finish
