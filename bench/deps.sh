#!/usr/bin/env bash
# Installs what bench/run.sh needs beyond the build and test packages: the
# peers (redis-server, memcached), redis-benchmark (redis-tools; pgbench
# comes with postgresql-15), taskset (util-linux) and, unless --no-ghz, ghz
# pinned to v0.120.0 in .tools/bin. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/deps.sh" redis-server redis-tools memcached util-linux
if [ "${1:-}" != "--no-ghz" ] && [ ! -x "$root/.tools/bin/ghz" ]; then
  command -v go >/dev/null || { echo "bench deps: go is needed to install ghz (or pass --no-ghz)" >&2; exit 1; }
  echo "bench deps: installing ghz v0.120.0 into .tools/bin"
  GOBIN="$root/.tools/bin" GOFLAGS=-mod=mod go install github.com/bojand/ghz/cmd/ghz@v0.120.0
fi
