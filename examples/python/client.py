#!/usr/bin/env python3
"""A small Python app using cachecar's client library (clients/python).

Waits for the server to be healthy, then does a Put, a Get, a compare-and-set
Put (once with the current version, once with a stale one, which fails with
ABORTED), a BatchGet and a Delete, printing one line per call:

    pip install ../../clients/python && python3 client.py --addr 127.0.0.1:50051

Output lines are "STEP key=value ...", the same lines the Go example prints,
so that tests/examples/run_python.sh can check them.
"""
import argparse
import os
import stat
import sys

import cachecar


def quote(value: bytes) -> str:
    """Bytes as a double-quoted string, non-printable bytes as \\xNN (like Go's %q for ASCII)."""
    out = []
    for b in value:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def code_name(err: cachecar.Error) -> str:
    """ABORTED -> Aborted: the status code spelled as grpc-go and grpcurl print it."""
    return "".join(w.capitalize() for w in err.code.name.split("_"))


# Where cachecar's sidecar puts its unix socket (deploy/k8s/example-app.yaml):
# the faster transport, used when present.
POD_SOCKET = "/run/cachecar/cachecar.sock"


def default_addr() -> str:
    if os.environ.get("CACHECAR_ADDR"):
        return os.environ["CACHECAR_ADDR"]
    try:
        if stat.S_ISSOCK(os.stat(POD_SOCKET).st_mode):
            return "unix://" + POD_SOCKET
    except OSError:
        pass
    return "127.0.0.1:50051"


def run(addr: str, ns: str, prefix: str, wait: float, timeout: float) -> None:
    # The client library: a deadline per call (default_timeout), retries with
    # backoff on UNAVAILABLE, writes never repeated when their outcome is
    # unknown.
    with cachecar.Client(addr, default_timeout=timeout) as cache:
        try:
            cache.wait_serving(wait)
        except cachecar.Error as e:
            raise RuntimeError(f"cachecar at {addr}: {e.message}") from None
        print(f"health addr={addr} status=SERVING")

        key, other, missing = prefix + "greeting", prefix + "other", prefix + "missing"

        # Put: an unconditional write; the store assigns the version.
        put = cache.put(ns, key, b"hello, cachecar")
        v1 = put.version
        print(f"put key={key} value={quote(b'hello, cachecar')} version={v1}")

        # Get: served from the cache, which the Put filled.
        got = cache.get(ns, key)
        print(f"get key={key} found={str(got.found).lower()} value={quote(got.value)} "
              f"version={got.version} source={got.source.value}")

        # Compare-and-set: write only if the key is still at the version we read.
        cas = cache.put(ns, key, b"hello again", if_version=got.version)
        print(f"cas-put key={key} value={quote(b'hello again')} if_version={got.version} version={cas.version}")

        # The same precondition again is now stale: ABORTED, and nothing written.
        # A real caller would re-read the key and retry.
        try:
            cache.put(ns, key, b"lost update", if_version=v1)
        except cachecar.Error as e:
            if e.code_name != "ABORTED":
                raise
            print(f"cas-put-stale key={key} value={quote(b'lost update')} if_version={v1} "
                  f"code={code_name(e)} message={quote(e.message.encode())}")
        else:
            raise RuntimeError(f"compare-and-set Put {key} with stale version {v1} succeeded; want ABORTED")

        put = cache.put(ns, other, b"world")
        print(f"put key={other} value={quote(b'world')} version={put.version}")

        # BatchGet: one entry per key, in request order; absent keys have found=False.
        for e in cache.batch_get(ns, [key, other, missing]).entries:
            print(f"batchget key={e.key} found={str(e.found).lower()} value={quote(e.value)} "
                  f"version={e.version} source={e.source.value}")

        # Delete: the delete gets a version too; afterwards Get reports found=False.
        deleted = cache.delete(ns, key)
        print(f"delete key={key} found={str(deleted.found).lower()} version={deleted.version}")

        got = cache.get(ns, key)
        print(f"get-after-delete key={key} found={str(got.found).lower()} version={got.version} "
              f"source={got.source.value}")
        print("done")


def main() -> int:
    p = argparse.ArgumentParser(description="Example cachecar client: Put, Get, compare-and-set, BatchGet, Delete.")
    p.add_argument("--addr", default=default_addr(),
                   help="cachecar's gRPC address (host:port or unix:///path); default: $CACHECAR_ADDR, "
                        "else the pod's socket " + POD_SOCKET + " if it exists, else 127.0.0.1:50051")
    p.add_argument("--namespace", default="", help='namespace to use ("" is cachecar\'s default namespace)')
    p.add_argument("--prefix", default="example:", help="prefix of the keys this example writes")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for cachecar to report SERVING")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, in seconds")
    args = p.parse_args()
    try:
        run(args.addr, args.namespace, args.prefix, args.wait, args.timeout)
    except cachecar.Error as e:
        print(f"client.py: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"client.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
