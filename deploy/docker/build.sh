#!/usr/bin/env bash
# The container image's build stage, as a script so it runs the same way in
# the Dockerfile and in the test suite (tests/docker/check_image_steps.sh):
# Debian packages with CI's dependency script, a Release-ish build of the
# cachecar binary only, stripped, copied to OUT.
# Usage: deploy/docker/build.sh OUT [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: build.sh OUT [BUILD_DIR]}"
build_dir="${2:-build}"
cd "$root"
bash scripts/deps.sh --build >&2
[ -f "$build_dir/CMakeCache.txt" ] || cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" --target cachecar -j"$(nproc)" >&2
mkdir -p "$(dirname "$out")"
cp "$build_dir/cmd/cachecar/cachecar" "$out"
strip "$out"
echo "$out"
