# Shared by the end-to-end scripts (sourced): a work dir and process list
# cleaned up on exit, TAP-like results, a free loopback port, and a /metrics
# scrape.

# e2e_setup NAME: makes $work (/tmp/NAME.XXXXXX) and $pids; on exit every pid
# in $pids is killed and $work removed. Every cachecar started afterwards
# picks a free metrics port unless told otherwise.
e2e_setup() {
  work="$(mktemp -d "/tmp/$1.XXXXXX")"
  pids=()
  export CACHECAR_METRICS_LISTEN=127.0.0.1:0
  trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /'; }
# check NAME HAYSTACK NEEDLE: passes if NEEDLE (fixed string) is in HAYSTACK.
check() {
  if grep -qF -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1" "wanted: $3
got: $2"; fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# scrape_metrics PORT: the Prometheus text cachecar serves on 127.0.0.1:PORT.
scrape_metrics() {
  python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
    "http://127.0.0.1:$1/metrics" 2>&1
}
