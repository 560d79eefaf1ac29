"""The Python row of bench/run.py's local section (--local-reader
Python=...): reads --keys preloaded keys (key:%012d, shuffled) through
cachecar.Client.get with local_read_path on this one thread, times each
call, then counts untimed calls per second, and prints the same `hits` JSON
as bench/local's cachecar_local_bench. Every answer must be a local HIT of
--value-bytes bytes, else it exits 1 naming the result.

    python3 localbench.py hits --path=FILE --keys=N --seconds=S --value-bytes=B [--target=ADDR]

--reader times cachecar.localread.Reader.get alone (without Client.get).
--backend=native (default: the package's own extension) or ctypes (the C
ABI of $LIBCACHECAR_LOCALREAD, the binding before the extension), to put the
two side by side in one run; $CACHECAR_LOCALREAD_BACKEND sets the default.
"""
import argparse
import json
import os
import random
import resource
import sys
import time

import cachecar
from cachecar.localread import Reader, Result


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_THREAD)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] != "hits":
        print(__doc__, file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog="localbench.py hits")
    p.add_argument("--path", required=True)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--value-bytes", type=int, default=100)
    p.add_argument("--target", default="127.0.0.1:1", help="cachecar's address (fallbacks only)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--reader", action="store_true")
    p.add_argument("--backend", choices=("native", "ctypes"),
                   default=os.environ.get("CACHECAR_LOCALREAD_BACKEND", "native"))
    a = p.parse_args(sys.argv[2:])

    client = cachecar.Client(a.target, local_read_path=a.path)
    reader = Reader(a.path, backend=a.backend)
    # The client's reader, of the backend asked for.
    client._local.close()
    client._local = reader
    client._local_get = reader.get_code
    ns = a.namespace
    if a.reader:
        def get(k):
            r, v, _ = reader.get(ns, k.encode())
            return r, len(v)
    else:
        def get(k):
            v = client.get(ns, k)
            return v.local, len(v.value)

    names = [f"key:{i:012d}" for i in range(a.keys)]
    random.Random(7).shuffle(names)
    for k in names:  # warm up, and check every key hits
        r, n = get(k)
        if r is not Result.HIT or n != a.value_bytes:
            print(f"{k}: {r.name} (value {n} bytes); preload the keys first", file=sys.stderr)
            return 1
    samples = max(100000, int(a.seconds * 100000))
    lat = [0] * samples
    fallbacks = 0
    clock = time.perf_counter_ns
    nk = len(names)
    for i in range(samples):
        k = names[i % nk]
        t0 = clock()
        r, _ = get(k)
        lat[i] = clock() - t0
        if r is not Result.HIT:
            fallbacks += 1
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q / 100 * len(lat)))] / 1000

    timer = []
    for _ in range(10000):
        t0 = clock()
        timer.append(clock() - t0)
    timer.sort()

    cpu0 = cpu_seconds()
    start = time.monotonic()
    end = start + a.seconds
    calls = i = 0
    now = start
    while now < end:
        for _ in range(1024):
            r, _ = get(names[i])
            if r is not Result.HIT:
                fallbacks += 1
            i += 1
            if i == nk:
                i = 0
        calls += 1024
        now = time.monotonic()
    wall = now - start
    cpu = cpu_seconds() - cpu0
    print(json.dumps({"mode": "hits", "keys": a.keys, "value_bytes": a.value_bytes, "calls": calls,
                      "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "p999_us": pct(99.9),
                      "timer_us": timer[len(timer) // 2] / 1000, "hits_per_second": calls / wall,
                      "cpu_us_per_hit": cpu * 1e6 / calls, "fallbacks": fallbacks,
                      "backend": reader.backend}))
    client.close()
    reader.close()
    return 1 if fallbacks else 0


if __name__ == "__main__":
    sys.exit(main())
