#!/usr/bin/env bash
# Runs clang-tidy-14 with the repo's .clang-tidy over cachecar's own sources
# in src/ and cmd/ (not the tests, benchmarks and fuzz targets next to them,
# not generated code), with the compile_commands.json of a configured build
# (CMAKE_EXPORT_COMPILE_COMMANDS is on), JOBS files at a time (default 2).
# Headers under src/ and cmd/ are checked through the files that include
# them. Fails on any finding, listing each once and a count per check.
#
#   scripts/check_tidy.sh [build-dir] [file.cc ...]
#
# build-dir defaults to build/ (the gcc build scripts/test.sh makes); files,
# when given, limit the run to them (e.g. the ones a change touched).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
[ $# -gt 0 ] && shift
tidy="${CLANG_TIDY:-clang-tidy-14}"
jobs="${JOBS:-2}"

command -v "$tidy" >/dev/null || {
  echo "tidy: $tidy not found (scripts/deps.sh installs clang-tidy-14)" >&2
  exit 2
}
[ -f "$build/compile_commands.json" ] || {
  echo "tidy: no $build/compile_commands.json (configure first: cmake --preset default)" >&2
  exit 2
}

explicit=0
if [ $# -gt 0 ]; then
  explicit=1
  files=()
  for f in "$@"; do files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
else
  mapfile -t files < <(python3 - "$build/compile_commands.json" "$root" <<'EOF'
import json, re, sys
root = sys.argv[2]
own = re.compile(re.escape(root) + r"/(src|cmd)/")
skip = re.compile(r"_(test|bench)\.cc$")  # *_test, *_stress_test, *_fuzz_test, *_bench
seen = set()
for entry in json.load(open(sys.argv[1])):
    f = entry["file"]
    if own.match(f) and not skip.search(f) and f not in seen:
        seen.add(f)
        print(f)
EOF
  )
fi

# Files listed in scripts/tidy_pending.txt (one path from the repo root per
# line, # comments) still have findings from before the lint existed; a full
# run skips them and says so, so the check stays fatal for every other file
# while they are fixed. Naming files on the command line checks them anyway.
pending="$root/scripts/tidy_pending.txt"
if [ "${#files[@]}" -gt 0 ] && [ -f "$pending" ] && [ -z "${TIDY_ALL:-}" ] && [ "${explicit:-0}" -eq 0 ]; then
  mapfile -t skip_list < <(grep -vE '^\s*(#|$)' "$pending" | sed "s|^|$root/|")
  kept=()
  skipped=0
  for f in "${files[@]}"; do
    if [[ " ${skip_list[*]} " == *" $f "* ]]; then
      skipped=$((skipped + 1))
    else
      kept+=("$f")
    fi
  done
  files=("${kept[@]}")
  echo "tidy: skipping $skipped files listed in scripts/tidy_pending.txt (TIDY_ALL=1 checks them)"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
# One log per file, so parallel runs do not interleave; gcc's flags in the
# compile commands that clang does not know are ignored.
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} sh -c \
  '"$1" -p "$2" --quiet --header-filter="^$3/(src|cmd)/" --extra-arg=-Wno-unknown-warning-option \
     "$4" > "$5/$(echo "$4" | tr / _).log" 2>&1 || true' \
  _ "$tidy" "$build" "$root" {} "$out"
elapsed=$(( $(date +%s) - start ))

# Findings, each once (a header's finding comes through every includer).
cat "$out"/*.log | grep -E '^/.*:[0-9]+:[0-9]+: (warning|error): ' | sed "s|^$root/||" |
  sort -u > "$out/findings" || true
count=$(wc -l < "$out/findings")
if [ "$count" -gt 0 ]; then
  cat "$out/findings" >&2
  echo "tidy: $count findings in ${#files[@]} files (${elapsed}s); by check:" >&2
  sed -E 's/.*\[([^]]+)\]$/\1/' "$out/findings" | sort | uniq -c | sort -rn >&2
  exit 1
fi
echo "tidy: ${#files[@]} files clean (${elapsed}s, $jobs jobs)"
