#!/usr/bin/env bash
# Tests the Python example app (examples/python, which uses the Python client
# library clients/python) against a live cachecar: starts cachecar on a free
# loopback port, runs client.py with VENV's python (where tests/clients/python.sh
# pip-installed the library) and checks what it printed. Nothing is written
# into the repo.
#
# Usage: tests/examples/run_python.sh CACHECAR_BIN WORK_DIR VENV
set -uo pipefail
export EXAMPLE_NAME=examples_python  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

[ $# -eq 3 ] || die "usage: $0 CACHECAR_BIN WORK_DIR VENV"
take_args "$1" "$2"  # sets cachecar and work (lib.sh)
vpy="$3/bin/python"
[ -x "$vpy" ] || die "no virtualenv at $3 (tests/clients/python.sh makes it)"
src="$root/examples/python"
start=$SECONDS

# --- run against a live cachecar -----------------------------------------------------
run_dir="$(mktemp -d "$work/run.XXXXXX")" || die "cannot make a run directory in $work"
cleanup() { stop_cachecar; rm -rf "$run_dir"; }
trap cleanup EXIT
start_cachecar "$cachecar" "$run_dir/cachecar.log"

PYTHONDONTWRITEBYTECODE=1 run_client "$run_dir" "$vpy" "$src/client.py" --addr "$CACHECAR_ADDR" --wait 20
say "took $((SECONDS - start))s"
finish
