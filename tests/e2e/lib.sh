# Shared by the end-to-end scripts (sourced): TAP-like results, a free
# loopback port, and a /metrics scrape.
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
