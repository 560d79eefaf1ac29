#!/usr/bin/env bash
# Installs grpcurl at a pinned version with `go install` into .tools/bin (or
# $GOBIN) and prints its path. Uses the machine's Go if there is one, else
# Debian's golang-go. Idempotent: an existing binary of the right version is
# reused.
set -euo pipefail
GRPCURL_VERSION="${GRPCURL_VERSION:-v1.9.4}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="${GOBIN:-$root/.tools/bin}"
mkdir -p "$bin_dir"
target="$bin_dir/grpcurl"

# `go install` builds report "dev build": remember the version beside it.
if [ -x "$target" ] && [ "$(cat "$target.version" 2>/dev/null)" = "$GRPCURL_VERSION" ]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go >&2
fi
GOBIN="$bin_dir" GOFLAGS=-mod=mod go install \
  "github.com/fullstorydev/grpcurl/cmd/grpcurl@${GRPCURL_VERSION}" >&2
echo "$GRPCURL_VERSION" > "$target.version"
echo "$target"
