#!/usr/bin/env python3
"""A small Python client for cachecar.

Waits for the server to be healthy, then does a Put, a Get, a compare-and-set
Put (once with the current version, once with a stale one, which fails with
ABORTED), a BatchGet and a Delete, printing one line per call:

    ./generate.sh gen && python3 client.py --addr 127.0.0.1:50051

Output lines are "STEP key=value ...", the same lines the Go example prints,
so that tests/examples/run_python.sh can check them. Stubs come from
generate.sh: from PYTHONPATH, else from ./gen beside this file.
"""
import argparse
import os
import stat
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_GEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen")
if os.path.isdir(_GEN):
    sys.path.append(_GEN)
try:
    from cachecar.v1 import cache_pb2, cache_pb2_grpc
except ImportError as e:
    sys.exit(f"client.py: no cachecar stubs ({e}); run ./generate.sh gen first, "
             "or put generate.sh's OUT_DIR on PYTHONPATH")


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


def code_name(code: grpc.StatusCode) -> str:
    """ABORTED -> Aborted: the status code spelled as grpc-go and grpcurl print it."""
    return "".join(w.capitalize() for w in code.name.split("_"))


def wait_serving(channel: grpc.Channel, wait: float) -> None:
    """Polls the standard health service until cachecar answers SERVING, for at
    most `wait` seconds. Each check waits for the connection to come up
    (wait_for_ready), so a server that is still starting is not an error."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + wait
    last = "no answer"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"not SERVING after {wait:g}s: {last}")
        try:
            resp = health.Check(health_pb2.HealthCheckRequest(), timeout=left, wait_for_ready=True)
            if resp.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = "health status " + health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        except grpc.RpcError as e:
            # Keep the last error from before the deadline: it says more.
            if last == "no answer" or e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                last = f"{code_name(e.code())}: {e.details()}"
        # NOT_SERVING (starting or draining): ask again shortly.
        time.sleep(max(0.0, min(0.1, deadline - time.monotonic())))


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
    # cachecar is a sidecar on localhost: no TLS, and retry a refused
    # connection quickly rather than after gRPC's default 1 s backoff.
    options = [
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.min_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    with grpc.insecure_channel(addr, options=options) as channel:
        try:
            wait_serving(channel, wait)
        except RuntimeError as e:
            raise RuntimeError(f"cachecar at {addr}: {e}") from None
        print(f"health addr={addr} status=SERVING")

        cache = cache_pb2_grpc.CacheStub(channel)
        source = cache_pb2.Source.Name
        key, other, missing = prefix + "greeting", prefix + "other", prefix + "missing"

        # Put: an unconditional write; the store assigns the version.
        put = cache.Put(cache_pb2.PutRequest(namespace=ns, key=key, value=b"hello, cachecar"), timeout=timeout)
        v1 = put.version
        print(f"put key={key} value={quote(b'hello, cachecar')} version={v1}")

        # Get: served from the cache, which the Put filled.
        got = cache.Get(cache_pb2.GetRequest(namespace=ns, key=key), timeout=timeout)
        print(f"get key={key} found={str(got.found).lower()} value={quote(got.value)} "
              f"version={got.version} source={source(got.source)}")

        # Compare-and-set: write only if the key is still at the version we read.
        cas = cache.Put(cache_pb2.PutRequest(namespace=ns, key=key, value=b"hello again", if_version=got.version),
                        timeout=timeout)
        print(f"cas-put key={key} value={quote(b'hello again')} if_version={got.version} version={cas.version}")

        # The same precondition again is now stale: ABORTED, and nothing written.
        # A real caller would re-read the key and retry.
        try:
            cache.Put(cache_pb2.PutRequest(namespace=ns, key=key, value=b"lost update", if_version=v1),
                      timeout=timeout)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ABORTED:
                raise
            print(f"cas-put-stale key={key} value={quote(b'lost update')} if_version={v1} "
                  f"code={code_name(e.code())} message={quote(e.details().encode())}")
        else:
            raise RuntimeError(f"compare-and-set Put {key} with stale version {v1} succeeded; want ABORTED")

        put = cache.Put(cache_pb2.PutRequest(namespace=ns, key=other, value=b"world"), timeout=timeout)
        print(f"put key={other} value={quote(b'world')} version={put.version}")

        # BatchGet: one entry per key, in request order; absent keys have found=false.
        batch = cache.BatchGet(cache_pb2.BatchGetRequest(namespace=ns, keys=[key, other, missing]), timeout=timeout)
        for e in batch.entries:
            print(f"batchget key={e.key} found={str(e.found).lower()} value={quote(e.value)} "
                  f"version={e.version} source={source(e.source)}")

        # Delete: the delete gets a version too; afterwards Get reports found=false.
        deleted = cache.Delete(cache_pb2.DeleteRequest(namespace=ns, key=key), timeout=timeout)
        print(f"delete key={key} found={str(deleted.found).lower()} version={deleted.version}")

        got = cache.Get(cache_pb2.GetRequest(namespace=ns, key=key), timeout=timeout)
        print(f"get-after-delete key={key} found={str(got.found).lower()} version={got.version} "
              f"source={source(got.source)}")
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
    except grpc.RpcError as e:
        print(f"client.py: {code_name(e.code())}: {e.details()}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"client.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
