"""cachecar's Python client: Get, BatchGet, Put, Delete, Invalidate, Stats and
Watch over gRPC, with a deadline per call and retries with backoff on
UNAVAILABLE that never repeat a write whose outcome is unknown unless the
caller asks (and then the answer says so).

    with cachecar.Client("127.0.0.1:50051") as cache:
        put = cache.put("users", "user:1", b"alice")
        got = cache.get("users", "user:1")
        if got.found: use(got.value, got.version)

A Client is safe to share between threads (one gRPC channel). A WatchStream
is read by one thread at a time; close() may be called from any.
"""
import enum
import random
import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import grpc

from cachecar._retry import RetryPolicy, classify
from cachecar.localread import Reader as LocalReader
from cachecar.localread import Result as LocalResult
from cachecar.localread import _RESULTS as _LOCAL_RESULTS
from cachecar.v1 import cache_pb2, cache_pb2_grpc


class Source(enum.Enum):
    """Where an answer came from (cache.proto's Source)."""
    UNSPECIFIED = "SOURCE_UNSPECIFIED"
    CACHE = "SOURCE_CACHE"  # the cache held the key (a value, or its absence)
    STORE = "SOURCE_STORE"  # the store was read for this call
    # Answered from the published cache in shared memory (local_read_path),
    # without a gRPC call; not a cache.proto value.
    LOCAL = "SOURCE_LOCAL"


class WatchOp(enum.Enum):
    """What happened to a key (cache.proto's WatchOp)."""
    UNSPECIFIED = "WATCH_OP_UNSPECIFIED"
    UPSERT = "WATCH_OP_UPSERT"
    DELETE = "WATCH_OP_DELETE"
    INVALIDATE = "WATCH_OP_INVALIDATE"
    FLUSH = "WATCH_OP_FLUSH"


class Error(Exception):
    """Every call of this package fails with this: the gRPC code and message,
    how many times the call was sent, and for writes whether the outcome is
    unknown (cachecar said "write outcome unknown", the connection broke with
    the call in flight, or its deadline passed after it was sent: re-read the
    key to learn what happened; never True for reads)."""

    def __init__(self, code: grpc.StatusCode, message: str, outcome_unknown: bool = False,
                 attempts: int = 1):
        self.code = code
        self.message = message
        self.outcome_unknown = outcome_unknown
        self.attempts = attempts
        super().__init__(str(self))

    @property
    def code_name(self) -> str:
        """The code as cache.proto spells it: "UNAVAILABLE"."""
        return self.code.name

    def __str__(self) -> str:
        notes = []
        if self.attempts > 1:
            notes.append(f"after {self.attempts} attempts")
        if self.outcome_unknown:
            notes.append("write outcome unknown")
        return f"{self.code.name}: {self.message}" + (f" ({'; '.join(notes)})" if notes else "")


@dataclass
class Value:
    found: bool
    value: bytes
    version: int  # of the value, or of the delete when not found
    source: Source
    attempts: int = 1  # gRPC attempts; 0 when answered locally
    # With local_read_path: HIT or ABSENT (source LOCAL), else why the Get
    # went to gRPC (MISS, EXPIRED, STALE, NOT_SERVING, STRONG, ...).
    local: LocalResult = LocalResult.NOT_TRIED


@dataclass
class BatchEntry:
    key: str
    found: bool
    value: bytes
    version: int
    source: Source


@dataclass
class BatchValues:
    entries: List[BatchEntry]  # one per requested key, in order
    attempts: int = 1


@dataclass
class PutResult:
    version: int
    attempts: int = 1
    # An earlier attempt's outcome was unknown and the write was sent again
    # (only with retry_outcome_unknown=True): it may have been applied twice.
    retried_outcome_unknown: bool = False


@dataclass
class DeleteResult:
    found: bool
    version: int
    attempts: int = 1
    retried_outcome_unknown: bool = False


@dataclass
class InvalidateResult:
    dropped: int
    attempts: int = 1


@dataclass
class WatchEvent:
    key: str  # empty for WatchOp.FLUSH
    version: int
    op: WatchOp
    local: bool


_L_HIT, _L_ABSENT = LocalResult.HIT, LocalResult.ABSENT
_BAD_KEY, _UNKNOWN_NAMESPACE = int(LocalResult.BAD_KEY), int(LocalResult.UNKNOWN_NAMESPACE)
_SOURCES = {cache_pb2.SOURCE_CACHE: Source.CACHE, cache_pb2.SOURCE_STORE: Source.STORE}
_OPS = {cache_pb2.WATCH_OP_UPSERT: WatchOp.UPSERT, cache_pb2.WATCH_OP_DELETE: WatchOp.DELETE,
        cache_pb2.WATCH_OP_INVALIDATE: WatchOp.INVALIDATE, cache_pb2.WATCH_OP_FLUSH: WatchOp.FLUSH}


def _consistency(strong: bool):
    return cache_pb2.CONSISTENCY_STRONG if strong else cache_pb2.CONSISTENCY_CACHED


class WatchStream:
    """An open Watch. Iterate it, or call next_event(); when the stream ends
    it raises Error: RESOURCE_EXHAUSTED (fell behind), UNAVAILABLE (the sidecar
    shut down), CANCELLED (after close())."""

    def __init__(self, call):
        self._call = call

    def next_event(self) -> WatchEvent:
        try:
            e = next(self._call)
        except grpc.RpcError as err:
            raise Error(err.code(), err.details() or "") from None
        except StopIteration:
            raise Error(grpc.StatusCode.OK, "the stream ended") from None
        return WatchEvent(e.key, e.version, _OPS.get(e.op, WatchOp.UNSPECIFIED), e.local)

    def __iter__(self):
        return self

    def __next__(self) -> WatchEvent:
        return self.next_event()

    def close(self) -> None:
        """Ends the stream; a blocked next_event() raises CANCELLED."""
        self._call.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client:
    """Calls one cachecar sidecar. `target` is host:port or unix:///abs/path;
    `channel`, if given, is used instead (and not closed by close()).

    `local_read_path`: the sidecar's published cache (its local_read_path,
    mounted read-only here; in deploy/k8s $CACHECAR_LOCAL_READ_PATH). get()
    and batch_get() then answer hits from shared memory through cachecar's
    C++ reader (cachecar.localread: the package's native extension; with
    `localread_library`, the ctypes binding of that libcachecar_localread.so)
    and fall back to gRPC for the rest."""

    def __init__(self, target: str = "127.0.0.1:50051", *, channel: Optional[grpc.Channel] = None,
                 default_timeout: float = 5.0, retry: RetryPolicy = RetryPolicy(),
                 max_receive_message_bytes: int = 64 << 20,
                 local_read_path: Optional[str] = None, localread_library: Optional[str] = None,
                 local_report_hits: bool = True):
        self._local = (LocalReader(local_read_path, library=localread_library,
                                   report_hits=local_report_hits) if local_read_path else None)
        self._local_get = self._local.get_code if self._local is not None else None
        self._own_channel = channel is None
        if channel is None:
            channel = grpc.insecure_channel(target, options=[
                ("grpc.max_receive_message_length", max_receive_message_bytes),
                # A sidecar on localhost: reconnect quickly after it restarts,
                # not after gRPC's default 1 s (then up to 120 s).
                ("grpc.initial_reconnect_backoff_ms", 50),
                ("grpc.min_reconnect_backoff_ms", 50),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ])
        self._channel = channel
        self._stub = cache_pb2_grpc.CacheStub(channel)
        self._timeout = default_timeout
        self._retry = retry
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self._own_channel:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ready(self) -> bool:
        """Whether the channel is connected (True when it cannot be asked).
        grpcio has no public synchronous accessor; this is its Cython
        channel's, with connectivity 2 = READY."""
        try:
            return self._channel._channel.check_connectivity_state(False) == 2
        except AttributeError:
            return True

    def _uniform(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _run(self, write: bool, method, request, timeout: Optional[float],
             retry_outcome_unknown: bool = False):
        """Sends request until it succeeds, fails for good, or the deadline
        passes. Returns (response, attempts, retried_after_unknown)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self._timeout)
        unknown_before = False
        previous = None  # the failure that made us retry
        n = 0
        while True:
            n += 1
            left = deadline - time.monotonic()
            ready_before = self._ready()
            try:
                return method(request, timeout=max(left, 0.0)), n, unknown_before
            except grpc.RpcError as err:
                code, message = err.code(), err.details() or ""
            # A call can only have been sent over a connection that was up at
            # some point: not before it and not after it means never sent (the
            # deadline passed while the channel was still connecting).
            sent = left > 0 and (ready_before or self._ready())
            if not sent and code == grpc.StatusCode.DEADLINE_EXCEEDED and previous is not None:
                previous.attempts = n
                raise previous  # the budget ran out retrying: say why it was retried
            retry, unknown = classify(write, code, message, sent, retry_outcome_unknown)
            unknown_before = unknown_before or unknown
            failed = Error(code, message, write and unknown_before, n)
            previous = failed
            if not retry or n >= self._retry.max_attempts:
                raise failed
            wait = self._retry.backoff(n + 1, self._uniform())
            if time.monotonic() + wait >= deadline:
                raise failed
            time.sleep(wait)

    def get(self, namespace: str, key: str, *, strong: bool = False,
            timeout: Optional[float] = None) -> Value:
        """Reads one key. An empty namespace means "default"."""
        local = LocalResult.NOT_TRIED
        if self._local_get is not None:
            rc, value, version = self._local_get(namespace, key, strong)
            if rc == 0:
                return Value(True, value, version, Source.LOCAL, 0, _L_HIT)
            if rc == 1:
                return Value(False, b"", version, Source.LOCAL, 0, _L_ABSENT)
            local = _LOCAL_RESULTS[rc]
        req = cache_pb2.GetRequest(namespace=namespace, key=key, consistency=_consistency(strong))
        r, n, _ = self._run(False, self._stub.Get, req, timeout)
        return Value(r.found, r.value, r.version, _SOURCES.get(r.source, Source.UNSPECIFIED), n,
                     local)

    def batch_get(self, namespace: str, keys: Sequence[str], *, strong: bool = False,
                  timeout: Optional[float] = None) -> BatchValues:
        """Reads many keys of one namespace. With local_read_path, the keys
        the published cache answers come from it (source LOCAL) and the rest
        go in one gRPC BatchGet; the entries are in request order either way
        (attempts 0 when no gRPC call was needed)."""
        keys = list(keys)
        if self._local_get is not None and keys and not strong:
            entries: List[Optional[BatchEntry]] = [None] * len(keys)
            rest, where = [], []
            get = self._local_get
            for i, k in enumerate(keys):
                rc, value, version = get(namespace, k, False)
                if rc == 0:
                    entries[i] = BatchEntry(k, True, value, version, Source.LOCAL)
                elif rc == 1:
                    entries[i] = BatchEntry(k, False, b"", version, Source.LOCAL)
                elif rc == _BAD_KEY or rc == _UNKNOWN_NAMESPACE:
                    # An error: gRPC's answer names the key as in the whole batch.
                    return self._batch_get_grpc(namespace, keys, strong, timeout)
                else:
                    rest.append(k)
                    where.append(i)
            if not rest:
                return BatchValues(entries, 0)
            if len(rest) < len(keys):
                got = self._batch_get_grpc(namespace, rest, strong, timeout)
                for i, e in zip(where, got.entries):
                    entries[i] = e
                return BatchValues(entries, got.attempts)
        return self._batch_get_grpc(namespace, keys, strong, timeout)

    def _batch_get_grpc(self, namespace: str, keys: List[str], strong: bool,
                        timeout: Optional[float]) -> BatchValues:
        req = cache_pb2.BatchGetRequest(namespace=namespace, keys=keys,
                                        consistency=_consistency(strong))
        r, n, _ = self._run(False, self._stub.BatchGet, req, timeout)
        return BatchValues([BatchEntry(e.key, e.found, e.value, e.version,
                                       _SOURCES.get(e.source, Source.UNSPECIFIED))
                            for e in r.entries], n)

    def put(self, namespace: str, key: str, value: bytes, *, if_version: Optional[int] = None,
            if_absent: bool = False, ttl_ms: int = 0, retry_outcome_unknown: bool = False,
            timeout: Optional[float] = None) -> PutResult:
        """Writes a value through to the store. retry_outcome_unknown=True
        declares the write idempotent: it is retried even when its outcome is
        unknown, and the result's retried_outcome_unknown says so."""
        req = cache_pb2.PutRequest(namespace=namespace, key=key, value=value, ttl_ms=ttl_ms)
        if if_version is not None:
            req.if_version = if_version
        elif if_absent:
            req.if_absent = True
        r, n, retried = self._run(True, self._stub.Put, req, timeout, retry_outcome_unknown)
        return PutResult(r.version, n, retried)

    def delete(self, namespace: str, key: str, *, if_version: Optional[int] = None,
               retry_outcome_unknown: bool = False, timeout: Optional[float] = None) -> DeleteResult:
        """Deletes a key in the store."""
        req = cache_pb2.DeleteRequest(namespace=namespace, key=key)
        if if_version is not None:
            req.if_version = if_version
        r, n, retried = self._run(True, self._stub.Delete, req, timeout, retry_outcome_unknown)
        return DeleteResult(r.found, r.version, n, retried)

    def invalidate(self, namespace: str, keys: Sequence[str], *, broadcast: bool = False,
                   timeout: Optional[float] = None) -> InvalidateResult:
        """Drops keys from this replica's cache (with broadcast=True, from
        every replica's); the store is not changed. Idempotent, so retried
        like a read."""
        req = cache_pb2.InvalidateRequest(namespace=namespace, keys=list(keys), broadcast=broadcast)
        r, n, _ = self._run(False, self._stub.Invalidate, req, timeout)
        return InvalidateResult(r.dropped, n)

    def invalidate_all(self, namespace: str, *, broadcast: bool = False,
                       timeout: Optional[float] = None) -> InvalidateResult:
        """Drops a whole namespace from the cache."""
        req = cache_pb2.InvalidateRequest(namespace=namespace, all=True, broadcast=broadcast)
        r, n, _ = self._run(False, self._stub.Invalidate, req, timeout)
        return InvalidateResult(r.dropped, n)

    def stats(self, namespace: str = "", *, timeout: Optional[float] = None):
        """Per-namespace counters (cache.proto's NamespaceStats messages)."""
        r, _, _ = self._run(False, self._stub.Stats, cache_pb2.StatsRequest(namespace=namespace),
                            timeout)
        return list(r.namespaces)

    def watch(self, namespace: str, key_prefix: str = "", *,
              timeout: Optional[float] = None) -> WatchStream:
        """Opens a Watch of `namespace` (keys starting with key_prefix) and
        returns once it is open: every change from then on reaches it.
        Opening is retried on UNAVAILABLE like a read, within `timeout`; the
        stream then runs until close(). It is not resumed: after it ends,
        call watch() again and re-read the keys you care about."""
        deadline = time.monotonic() + (timeout if timeout is not None else self._timeout)
        req = cache_pb2.WatchRequest(namespace=namespace, key_prefix=key_prefix)
        n = 0
        while True:
            n += 1
            call = self._stub.Watch(req)
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), call.cancel)
            timer.start()
            # cachecar sends the headers once the watcher is registered; a
            # stream that ends first (an error) comes with its trailers, done.
            call.initial_metadata()
            timer.cancel()
            if not call.done():
                return WatchStream(call)
            code, message = call.code(), call.details() or ""
            if code == grpc.StatusCode.CANCELLED and time.monotonic() >= deadline:
                code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before Watch opened"
            failed = Error(code, message, False, n)
            if code != grpc.StatusCode.UNAVAILABLE or n >= self._retry.max_attempts:
                raise failed
            wait = self._retry.backoff(n + 1, self._uniform())
            if time.monotonic() + wait >= deadline:
                raise failed
            time.sleep(wait)

    def wait_serving(self, wait: float = 10.0) -> None:
        """Polls the standard gRPC health service until cachecar answers
        SERVING (its readiness), for at most `wait` seconds; raises Error with
        the last answer otherwise. A sidecar still starting is not an error."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # grpcio-health-checking
        health = health_pb2_grpc.HealthStub(self._channel)
        deadline = time.monotonic() + wait
        last = Error(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Error(last.code, f"not SERVING after {wait:g}s: {last.message}")
            try:
                resp = health.Check(health_pb2.HealthCheckRequest(), timeout=left, wait_for_ready=True)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = Error(grpc.StatusCode.UNAVAILABLE, "health status " +
                             health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
            except grpc.RpcError as e:
                if last.message == "no answer" or e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    last = Error(e.code(), e.details() or "")
            time.sleep(max(0.0, min(0.1, deadline - time.monotonic())))
