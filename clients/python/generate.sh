#!/usr/bin/env bash
# Regenerates the Python stubs of proto/cachecar/v1/cache.proto into
# src/cachecar/v1/ (cache_pb2.py, cache_pb2.pyi, cache_pb2_grpc.py), which
# are committed so that `pip install clients/python` needs no generator;
# tests/clients/python.sh checks that they match the proto.
#
# Usage: clients/python/generate.sh [OUT_DIR [PYTHON]]
#   OUT_DIR  where cachecar/v1/ goes; default clients/python/src
#   PYTHON   a python with grpcio-tools (requirements-dev.txt); default python3
# The committed stubs were made with grpcio-tools 1.85.1 (requirements-dev.txt):
# generated code requires grpcio and protobuf at least as new as its
# generator's, which pyproject.toml's dependencies say.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="${1:-$here/src}"
python="${2:-python3}"
"$python" -c 'import grpc_tools.protoc' 2>/dev/null || {
  echo "generate.sh: $python has no grpc_tools (pip install -r $here/requirements-dev.txt)" >&2; exit 1; }
mkdir -p "$out_dir/cachecar/v1"
rm -f "$out_dir/cachecar/v1/cache_pb2.py" "$out_dir/cachecar/v1/cache_pb2.pyi" "$out_dir/cachecar/v1/cache_pb2_grpc.py"
"$python" -m grpc_tools.protoc -I "$root/proto" \
  --python_out="$out_dir" --pyi_out="$out_dir" --grpc_python_out="$out_dir" \
  "$root/proto/cachecar/v1/cache.proto"
echo "generate.sh: wrote $out_dir/cachecar/v1/cache_pb2.py, cache_pb2.pyi, cache_pb2_grpc.py"
