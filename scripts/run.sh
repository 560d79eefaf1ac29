#!/usr/bin/env bash
# Builds cachecar and runs it in the foreground on its embedded default: the
# memory store, no Kafka, serving gRPC on 127.0.0.1:50051. Extra arguments
# go to cachecar (see `scripts/run.sh --help`). Stop it with Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/deps.sh
cmake --preset default >/dev/null
cmake --build build --target cachecar -j2
exec build/cmd/cachecar/cachecar "$@"
