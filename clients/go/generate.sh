#!/usr/bin/env bash
# Regenerates the Go code for proto/cachecar/v1/cache.proto (gen/cachecar/v1/
# cache.pb.go and cache_grpc.pb.go, committed so that `go build` needs only
# the module proxy) with pinned protoc plugins.
#
# Usage: clients/go/generate.sh [OUT_DIR [TOOLS_DIR]]
#   OUT_DIR    where gen/ goes; default clients/go (rewrites the committed code)
#   TOOLS_DIR  where the plugins are installed; default .tools/bin in the repo
#              (git-ignored). A plugin of the pinned version there is reused.
# Needs Go (see tests/clients/go.sh for how it is found) and protoc
# (Debian's protobuf-compiler, which scripts/deps.sh installs; $PROTOC overrides).
#
# Pinned: protoc-gen-go v1.34.1 and protoc-gen-go-grpc v1.3.0, the newest whose
# output builds with Go 1.19 (Debian bookworm's golang-go) against the runtime
# in go.mod (google.golang.org/protobuf v1.34.1, google.golang.org/grpc v1.64.1).
# The committed code was made with protoc 3.21.12 (Debian bookworm).
set -euo pipefail
PROTOC_GEN_GO_VERSION=v1.34.1
PROTOC_GEN_GO_GRPC_VERSION=v1.3.0

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="${1:-$here}"
tools_dir="${2:-$root/.tools/bin}"
module=github.com/cachecar/cachecar/clients/go
proto=cachecar/v1/cache.proto
# The proto's go_package names a path outside this module: map it into gen/.
mapping="M$proto=$module/gen/cachecar/v1;cachecarv1"

protoc="${PROTOC:-$(command -v protoc || true)}"
if [ -z "$protoc" ] || [ ! -x "$protoc" ]; then
  echo "generate.sh: no protoc (install Debian's protobuf-compiler, e.g. scripts/deps.sh, or set PROTOC)" >&2; exit 1
fi
command -v go >/dev/null 2>&1 || { echo "generate.sh: no go on PATH" >&2; exit 1; }

# install_plugin NAME PACKAGE VERSION: go install into tools_dir unless the
# pinned version is already there (`go install` builds carry no version we can
# ask for, so it is written beside the binary).
install_plugin() {
  local name="$1" pkg="$2" version="$3"
  if [ -x "$tools_dir/$name" ] && [ "$(cat "$tools_dir/$name.version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  mkdir -p "$tools_dir"
  GOBIN="$tools_dir" GOFLAGS="${GOFLAGS:-} -mod=mod" go install "$pkg@$version"
  echo "$version" >"$tools_dir/$name.version"
}
install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

mkdir -p "$out_dir"
"$protoc" -I "$root/proto" \
  --plugin=protoc-gen-go="$tools_dir/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$tools_dir/protoc-gen-go-grpc" \
  --go_out="$out_dir" --go_opt=module="$module" --go_opt="$mapping" \
  --go-grpc_out="$out_dir" --go-grpc_opt=module="$module" --go-grpc_opt="$mapping" \
  "$root/proto/$proto"
echo "generate.sh: wrote $out_dir/gen/cachecar/v1/cache.pb.go and cache_grpc.pb.go"
