#!/usr/bin/env bash
# The engine part of the benchmark suite (issue #6): runs the engine
# microbenchmarks, the hit-ratio replay (S3-FIFO vs LRU vs Belady) and the
# memory-per-entry comparison (engine vs Redis vs memcached), pinned with
# taskset, and writes one markdown fragment with a table per part, each
# preceded by the command lines that produced it. Builds nothing: expects
# cachecar_cache_bench, cachecar_hit_ratio and cachecar_memory_bench built in
# the build directory. --smoke runs everything small (seconds, for CI).
#
# Usage: bench/engine.sh [--smoke] --build-dir DIR --out FILE
set -euo pipefail

smoke=0
build_dir=
out=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--smoke] --build-dir DIR --out FILE" >&2; exit 2 ;;
  esac
done
if [[ -z "$build_dir" || -z "$out" ]]; then
  echo "usage: $0 [--smoke] --build-dir DIR --out FILE" >&2
  exit 2
fi

readonly bench_dir=$(dirname "$0")
readonly cache_bench="$build_dir/src/cache/cachecar_cache_bench"
readonly hit_ratio="$build_dir/bench/engine/cachecar_hit_ratio"
readonly memory_bench="$build_dir/bench/engine/cachecar_memory_bench"
for bin in "$cache_bench" "$hit_ratio" "$memory_bench"; do
  if [[ ! -x "$bin" ]]; then
    echo "missing $bin; build it with: cmake --build $build_dir --target" \
      "cachecar_cache_bench cachecar_hit_ratio cachecar_memory_bench" >&2
    exit 1
  fi
done

if (( smoke )); then
  micro_flags=(--benchmark_min_time=0.01 '--benchmark_filter=GetHit/.*/1000/|Insert/8/')
  hit_ratio_flags=(--smoke)
  entries=20000
else
  micro_flags=()
  hit_ratio_flags=()
  entries=1000000
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints a command in a code block, quoting the arguments that need it.
show_command() {
  local arg line='$'
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./=:,+-]+$ ]]; then
      line+=" $arg"
    else
      line+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '```\n%s\n```\n\n' "$line"
}

micro_cmd=(taskset -c 0,1 "$cache_bench" --benchmark_format=json "${micro_flags[@]}")
hit_ratio_cmd=(taskset -c 1 "$hit_ratio" "${hit_ratio_flags[@]}")
memory_cmd=(taskset -c 1 "$memory_bench" --entries "$entries")
memory_full_cmd=(taskset -c 1 "$memory_bench" --entries "$entries" --full)
peers_cmd=(taskset -c 1 "$bench_dir/memory_peers.sh" --entries "$entries")

echo "engine microbenchmarks..." >&2
"${micro_cmd[@]}" >"$tmp/micro.json"
echo "hit ratio..." >&2
"${hit_ratio_cmd[@]}" >"$tmp/hit_ratio.md"
echo "memory: engine..." >&2
"${memory_cmd[@]}" >"$tmp/memory.txt"
"${memory_full_cmd[@]}" >>"$tmp/memory.txt"
echo "memory: Redis, memcached..." >&2
"${peers_cmd[@]}" >>"$tmp/memory.txt"

{
  echo "## Engine benchmarks$( (( smoke )) && echo ' (smoke: tiny sizes, numbers not meaningful)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))."
  echo
  echo "### Engine microbenchmarks"
  echo
  show_command "${micro_cmd[@]}"
  python3 - "$tmp/micro.json" <<'EOF'
import json, re, sys
to_ns = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
print("| benchmark | threads | items/s (M/s) | ns/op |")
print("|---|---|---|---|")
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration":
        continue
    name = re.sub(r"(/real_time)?(/threads:\d+)?$", "", b["name"])
    ns = b["real_time"] * to_ns[b["time_unit"]]
    print(f"| {name} | {b['threads']} | {b['items_per_second'] / 1e6:.2f} | {ns:.1f} |")
EOF
  echo
  echo "items/s is over all threads; ns/op is wall time per operation over all"
  echo "threads (1 / items/s)."
  echo
  echo "### Hit ratio: S3-FIFO vs LRU vs Bélády"
  echo
  show_command "${hit_ratio_cmd[@]}"
  cat "$tmp/hit_ratio.md"
  echo
  echo "### Memory per entry beyond key+value"
  echo
  show_command "${memory_cmd[@]}"
  show_command "${memory_full_cmd[@]}"
  show_command "${peers_cmd[@]}"
  echo "| system | bytes/entry beyond key+value (RSS delta) | (own accounting) |"
  echo "|---|---|---|"
  grep '^|' "$tmp/memory.txt"
  echo
  echo '```'
  grep -v '^|' "$tmp/memory.txt"
  echo '```'
} >"$out"
echo "wrote $out" >&2
