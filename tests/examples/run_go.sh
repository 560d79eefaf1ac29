#!/usr/bin/env bash
# Tests the Go example app (examples/go, which uses the Go client library
# clients/go) against a live cachecar: builds it (module cache, build cache
# and binary under WORK_DIR, nothing in the repo), starts cachecar on a free
# loopback port, runs the app and checks what it printed. (The library's own
# checks, its stubs against the proto included, are tests/clients/go.sh.)
#
# Usage: tests/examples/run_go.sh CACHECAR_BIN WORK_DIR [GO_WORK]
# Go: see use_go in tests/clients/toolchains.sh; its caches live in GO_WORK
# (default WORK_DIR). A second run reuses them.
set -uo pipefail
export EXAMPLE_NAME=examples_go  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

[ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 CACHECAR_BIN WORK_DIR [GO_WORK]"
go_work="${3:-}"
take_args "$1" "$2"  # sets cachecar and work (lib.sh)
src="$root/examples/go"
start=$SECONDS

# shellcheck source-path=SCRIPTDIR source=../clients/toolchains.sh
. "$here/../clients/toolchains.sh"
# With GO_WORK (the clients_go fixture's work dir), its warm module and
# build caches are shared: the library and gRPC are compiled once.
use_go "${go_work:-$work}"
example="$work/bin/cachecar-example-go"

# --- build (the library comes from clients/go through go.mod's replace) -------------
cd "$src" || die "no $src"
unformatted="$(gofmt -l main.go)"
[ -z "$unformatted" ] || die "gofmt would change: $unformatted (run gofmt -w examples/go/main.go)"
run_bounded 480 "downloading the Go modules (module proxy)" go mod download
run_bounded 600 "go vet ./..." go vet ./...
run_bounded 600 "go build" go build -o "$example" .
say "built $example ($((SECONDS - start))s so far)"

# --- run against a live cachecar -----------------------------------------------------
run_dir="$(mktemp -d "$work/run.XXXXXX")" || die "cannot make a run directory in $work"
cleanup() { stop_cachecar; rm -rf "$run_dir"; }
trap cleanup EXIT
start_cachecar "$cachecar" "$run_dir/cachecar.log"

run_client "$run_dir" "$example" -addr "$CACHECAR_ADDR" -wait 20s
say "took $((SECONDS - start))s"
finish
