#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format-14 makes of it
# with the repo's .clang-format (Google style, 100 columns). `--fix` rewrites
# the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt="${CLANG_FORMAT:-clang-format-14}"
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cpp' '*.hpp')
if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i "${files[@]}"
  exit 0
fi
if ! "$fmt" --dry-run -Werror "${files[@]}" 2> /tmp/cachecar-format.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/cachecar-format.$$ | cut -d: -f1 | sort -u |
    sed 's/^/format: needs clang-format: /' >&2
  rm -f /tmp/cachecar-format.$$
  echo "format: run scripts/check_format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/cachecar-format.$$
echo "format: ${#files[@]} files clean"
