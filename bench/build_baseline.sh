#!/usr/bin/env bash
# Builds cachecar at another git revision, for "before" rows measured in the
# same run as the current tree (bench/run.py --baseline-build-dir):
#
#   bench/build_baseline.sh REV [DIR]   default DIR: build-bench-REV
#
# The revision's tree is exported with `git archive` into DIR/src (the
# worktree is left alone) and built like bench/run.sh builds (RelWithDebInfo,
# ccache when present). Prints DIR/build, the directory to pass.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:?usage: bench/build_baseline.sh REV [DIR]}"
dir="${2:-$root/build-bench-$(git -C "$root" rev-parse --short "$rev")}"
mkdir -p "$dir/src"
git -C "$root" archive "$rev" | tar -x -C "$dir/src"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$dir/build" -j2 --target cachecar >&2
echo "$dir/build"
