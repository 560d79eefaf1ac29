#!/usr/bin/env bash
# Generates the Python stubs for proto/cachecar/v1/cache.proto with
# grpc_tools.protoc (from the pinned grpcio-tools in requirements.txt) into
# OUT_DIR/cachecar/v1/ (cache_pb2.py, cache_pb2.pyi, cache_pb2_grpc.py).
# Put OUT_DIR on PYTHONPATH (client.py also looks in ./gen beside itself).
#
# Usage: examples/python/generate.sh [OUT_DIR [PYTHON]]
#   OUT_DIR  default: examples/python/gen (git-ignored)
#   PYTHON   a python with requirements.txt installed; default: python3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="${1:-$here/gen}"
python="${2:-python3}"

"$python" -c 'import grpc_tools.protoc' 2>/dev/null || {
  echo "generate.sh: $python has no grpc_tools (pip install -r $here/requirements.txt)" >&2; exit 1; }
# Start clean so that stubs of a removed message or file do not linger.
rm -rf "$out_dir/cachecar"
mkdir -p "$out_dir"
"$python" -m grpc_tools.protoc -I "$root/proto" \
  --python_out="$out_dir" --pyi_out="$out_dir" --grpc_python_out="$out_dir" \
  "$root/proto/cachecar/v1/cache.proto"
echo "generate.sh: wrote $out_dir/cachecar/v1/cache_pb2.py, cache_pb2.pyi, cache_pb2_grpc.py"
