#!/usr/bin/env bash
# Tests the Go example client (examples/go) against a live cachecar: builds it
# (module cache, build cache and binary under WORK_DIR, nothing in the repo),
# checks that the committed generated code matches the proto, starts cachecar
# on a free loopback port, runs the client and checks what it printed.
#
# Usage: tests/examples/run_go.sh CACHECAR_BIN WORK_DIR
# Go: `go` on PATH, else /usr/local/go/bin/go, else Debian's golang-go (which
# this script installs). Needs Go 1.19 or newer; GOTOOLCHAIN=local, so no
# other toolchain is fetched. A second run reuses WORK_DIR's caches.
set -uo pipefail
export EXAMPLE_NAME=examples_go  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

take_args "$@"  # sets cachecar and work (lib.sh)
src="$root/examples/go"
start=$SECONDS

# --- Go --------------------------------------------------------------------------
find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  say "no Go found; installing Debian's golang-go" >&2
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq golang-go >&2 ||
    { DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive timeout 300 $sudo apt-get install -y -qq golang-go >&2; } ||
    return 1
  command -v go
}
go_bin="$(find_go)" || die "Go is needed and could not be installed (apt-get install golang-go failed)"
go_dir="$(dirname "$go_bin")"
export PATH="$go_dir:$PATH"
go_version="$(go env GOVERSION 2>/dev/null)" || die "$go_bin does not run"
minor="$(sed -nE 's/^go1\.([0-9]+).*/\1/p' <<<"$go_version")"
if [ -z "$minor" ] || [ "$minor" -lt 19 ]; then die "$go_bin is $go_version; the example needs Go 1.19 or newer"; fi
say "using $go_bin ($go_version)"

# Everything Go writes goes under WORK_DIR. -modcacherw keeps the module cache
# removable with rm -rf; -mod=readonly fails if go.mod/go.sum would change.
export GOPATH="$work/gopath" GOMODCACHE="$work/gomodcache" GOCACHE="$work/gocache"
export GOFLAGS="-modcacherw -mod=readonly" GOTOOLCHAIN=local CGO_ENABLED=0
unset GOBIN GOWORK
example="$work/bin/cachecar-example-go"

# --- build -------------------------------------------------------------------------
cd "$src" || die "no $src"
unformatted="$(gofmt -l main.go)"
[ -z "$unformatted" ] || die "gofmt would change: $unformatted (run gofmt -w examples/go/main.go)"
run_bounded 480 "downloading the Go modules (module proxy)" go mod download
run_bounded 300 "go vet ./..." go vet ./...
run_bounded 300 "go build" go build -o "$example" .
say "built $example ($((SECONDS - start))s so far)"

# --- generated code matches the proto -----------------------------------------------
# Regenerates with the pinned plugins into WORK_DIR and compares, ignoring
# the line that names the protoc version (Debian's protoc is the reference).
if command -v protoc >/dev/null 2>&1 || [ -n "${PROTOC:-}" ]; then
  rm -rf "$work/regen"
  GOFLAGS="-modcacherw" run_bounded 480 "examples/go/generate.sh" \
    bash "$src/generate.sh" "$work/regen" "$work/tools" >/dev/null
  strip() { grep -vE '^// ([[:space:]]|- )*protoc +v' "$1"; }
  for f in cache.pb.go cache_grpc.pb.go; do
    if ! diff -u <(strip "$src/gen/cachecar/v1/$f") <(strip "$work/regen/gen/cachecar/v1/$f") >"$work/regen/$f.diff"; then
      head -40 "$work/regen/$f.diff" >&2
      die "examples/go/gen/cachecar/v1/$f is stale (diff above): run examples/go/generate.sh and commit the result"
    fi
  done
  say "generated code matches proto/cachecar/v1/cache.proto"
else
  say "skip: no protoc on PATH, so the generated code was not compared with the proto (scripts/deps.sh installs it)"
fi

# --- run against a live cachecar -----------------------------------------------------
run_dir="$(mktemp -d "$work/run.XXXXXX")" || die "cannot make a run directory in $work"
cleanup() { stop_cachecar; rm -rf "$run_dir"; }
trap cleanup EXIT
start_cachecar "$cachecar" "$run_dir/cachecar.log"

run_client "$run_dir" "$example" -addr "$CACHECAR_ADDR" -wait 20s
say "took $((SECONDS - start))s"
finish
