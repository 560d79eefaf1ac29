#!/usr/bin/env bash
# The Go client library (clients/go): gofmt, go vet, its unit tests, the
# committed stubs against the proto, and the conformance runner's build
# (WORK/bin/conformance, for the conformance_go_* tests: this is their
# ctest fixture). Go's caches live under WORK; nothing is written into the repo.
#
# Usage: tests/clients/go.sh WORK_DIR
set -uo pipefail
export EXAMPLE_NAME=clients_go  # used by lib.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../examples/lib.sh
. "$here/../examples/lib.sh"
# shellcheck source-path=SCRIPTDIR source=toolchains.sh
. "$here/toolchains.sh"
[ $# -eq 1 ] || die "usage: $0 WORK_DIR"
mkdir -p "$1" && work="$(cd "$1" && pwd)" || die "cannot create $1"
use_go "$work"
src="$root/clients/go"
cd "$src" || die "no $src"

unformatted="$(gofmt -l .)"
if [ -z "$unformatted" ]; then ok "gofmt"; else not_ok "gofmt" "would change: $unformatted (gofmt -w clients/go)"; fi
run_bounded 480 "downloading the Go modules (module proxy)" go mod download
if out="$(timeout 900 go vet ./... 2>&1)"; then ok "go vet"; else not_ok "go vet" "$out"; fi
if out="$(timeout 900 go test -count=1 ./... 2>&1)"; then ok "go test (unit)"; else not_ok "go test (unit)" "$out"; fi

# The committed stubs match the proto: regenerate with the pinned plugins and
# compare, ignoring the line naming protoc's version.
if command -v protoc >/dev/null 2>&1 || [ -n "${PROTOC:-}" ]; then
  rm -rf "$work/regen"
  GOFLAGS="-modcacherw" run_bounded 480 "clients/go/generate.sh" bash "$src/generate.sh" "$work/regen" "$work/tools" >/dev/null
  strip() { grep -vE '^// ([[:space:]]|- )*protoc +v' "$1"; }
  stale=""
  for f in cache.pb.go cache_grpc.pb.go; do
    diff -u <(strip "$src/gen/cachecar/v1/$f") <(strip "$work/regen/gen/cachecar/v1/$f") >"$work/regen/$f.diff" ||
      stale+="$(head -40 "$work/regen/$f.diff")"
  done
  if [ -z "$stale" ]; then ok "committed stubs match proto/cachecar/v1/cache.proto"
  else not_ok "committed stubs match the proto (run clients/go/generate.sh and commit)" "$stale"; fi
else
  say "skip: no protoc on PATH, so the stubs were not compared with the proto (scripts/deps.sh installs it)"
fi

if out="$(timeout 600 go build -o "$work/bin/conformance" ./cmd/conformance 2>&1)"; then ok "conformance runner builds"
else not_ok "conformance runner builds" "$out"; fi
finish
