"""The chaos run's clients: writers through every replica (Put, some Delete,
some if_version compare-and-set) and straight into the table with SQL, and
readers on every replica (CACHED Gets mostly, some BatchGet, some STRONG).
Every operation goes into the history with its start and end time and its
outcome (ok, fail: definitely not committed, unknown: possibly committed).

Values are self-describing tokens "KEY|WRITER|SEQ", unique per write, so the
checker can tell which write a read returned.

Reads (Get, BatchGet) go through the Python client library (clients/python)
with the replica's published cache (local_read_path): a CACHED Get is
answered from shared memory when the mapping can answer it (source "local")
and over gRPC otherwise, so the checker's rules hold for the local read path
too. The library's retries are off (one attempt per operation, as before);
writes use the raw stubs, whose errors the history classifies itself.

Thread-safety: one thread per client loop; they share only the Recorder and
the per-replica known-version map (a dict written whole values at a time).
"""

import random
import threading
import time

import grpc

import cachecar
from cachecar.v1 import cache_pb2, cache_pb2_grpc
from cluster import now

# gRPC codes that prove a write did not commit; every other error leaves its
# outcome unknown (a deadline, a lost connection, UNAVAILABLE).
DEFINITE_FAILURES = ("ABORTED", "INVALID_ARGUMENT")
READ_TIMEOUT = 2.0
WRITE_TIMEOUT = 4.0


def channel_to(replica):
    # Reconnect fast after a restart (gRPC's default back-off grows to 2 min).
    return grpc.insecure_channel(
        "unix:" + replica.sock,
        options=[
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
            ("grpc.enable_retries", 0),
        ],
    )


def _source(s):
    return {cache_pb2.SOURCE_CACHE: "cache", cache_pb2.SOURCE_STORE: "store"}.get(s, "unspecified")


_LIB_SOURCES = {cachecar.Source.CACHE: "cache", cachecar.Source.STORE: "store", cachecar.Source.LOCAL: "local"}


def _value(b):
    return b.decode("utf-8", "replace")


class Client:
    """One replica's stub, and what its clients last saw of each key's version."""

    def __init__(self, replica, recorder):
        self.replica = replica
        self.rec = recorder
        self.channel = channel_to(replica)
        self.stub = cache_pb2_grpc.CacheStub(self.channel)
        # Reads: the client library, local reads first (one attempt each).
        self.lib = cachecar.Client("unix:" + replica.sock, channel=self.channel,
                                   retry=cachecar.RetryPolicy(max_attempts=1),
                                   local_read_path=replica.local_path)
        self.known = {}

    def _lib_call(self, rec, fn):
        """_call for the library: fn() returns its answer or raises cachecar.Error."""
        r = self.replica
        rec["replica"] = r.name
        rec["inc_start"] = r.incarnation
        rec["start"] = now()
        try:
            resp = fn()
            rec["end"] = now()
            rec["outcome"] = "ok"
            rec["code"] = "OK"
        except cachecar.Error as e:
            resp = None
            rec["end"] = now()
            rec["code"] = e.code.name
            rec["error"] = (e.message or "")[:200]
        rec["inc_end"] = r.incarnation
        return resp

    def _call(self, rec, fn, req, timeout):
        r = self.replica
        rec["replica"] = r.name
        rec["inc_start"] = r.incarnation
        rec["start"] = now()
        try:
            resp = fn(req, timeout=timeout)
            rec["end"] = now()
            rec["outcome"] = "ok"
            rec["code"] = "OK"
        except grpc.RpcError as e:
            resp = None
            rec["end"] = now()
            rec["code"] = e.code().name if e.code() is not None else "UNKNOWN"
            rec["error"] = (e.details() or "")[:200]
        rec["inc_end"] = r.incarnation
        return resp

    def get(self, key, strong=False, phase="run"):
        rec = {"op": "get", "key": key, "consistency": "strong" if strong else "cached", "phase": phase}
        resp = self._lib_call(rec, lambda: self.lib.get("", key, strong=strong, timeout=READ_TIMEOUT))
        if resp is not None:
            rec.update(found=resp.found, version=resp.version, value=_value(resp.value) if resp.found else None,
                       source=_LIB_SOURCES.get(resp.source, "unspecified"), local=resp.local.name)
            self.known[key] = resp.version
        else:
            rec["outcome"] = "error"
        self.rec.add(**rec)
        return rec

    def batch_get(self, keys):
        rec = {"op": "batch_get", "keys": keys, "consistency": "cached", "phase": "run"}
        resp = self._lib_call(rec, lambda: self.lib.batch_get("", keys, timeout=READ_TIMEOUT))
        if resp is not None:
            rec["entries"] = [
                {"key": e.key, "found": e.found, "version": e.version,
                 "value": _value(e.value) if e.found else None,
                 "source": _LIB_SOURCES.get(e.source, "unspecified")}
                for e in resp.entries
            ]
            for e in resp.entries:
                self.known[e.key] = e.version
        else:
            rec["outcome"] = "error"
        self.rec.add(**rec)

    def put(self, key, token, if_version=None):
        rec = {"op": "put", "key": key, "value": token, "if_version": if_version}
        req = cache_pb2.PutRequest(key=key, value=token.encode())
        if if_version is not None:
            req.if_version = if_version
        resp = self._call(rec, self.stub.Put, req, WRITE_TIMEOUT)
        if resp is not None:
            rec["version"] = resp.version
            self.known[key] = resp.version
        else:
            rec["outcome"] = "fail" if rec["code"] in DEFINITE_FAILURES else "unknown"
        self.rec.add(**rec)

    def delete(self, key):
        rec = {"op": "delete", "key": key}
        resp = self._call(rec, self.stub.Delete, cache_pb2.DeleteRequest(key=key), WRITE_TIMEOUT)
        if resp is not None:
            rec.update(found=resp.found, version=resp.version)
            self.known[key] = resp.version
        else:
            rec["outcome"] = "fail" if rec["code"] in DEFINITE_FAILURES else "unknown"
        self.rec.add(**rec)


class Loop(threading.Thread):
    """A client loop: step() until stopped, about `rate` steps a second."""

    def __init__(self, name, rate, seed, stop):
        super().__init__(name=name, daemon=True)
        self.rng = random.Random(seed)
        self.period = 1.0 / rate
        self.stop_event = stop
        self.failed = None

    def run(self):
        try:
            while not self.stop_event.is_set():
                t = time.monotonic()
                self.step()
                left = self.period - (time.monotonic() - t)
                if left > 0:
                    self.stop_event.wait(left)
        except Exception as e:  # a harness bug: reported, the run fails
            import traceback

            self.failed = traceback.format_exc()
            raise


class Reader(Loop):
    def __init__(self, client, keys, rate, seed, stop):
        super().__init__("reader-%s" % client.replica.name, rate, seed, stop)
        self.client, self.keys = client, keys

    def step(self):
        x = self.rng.random()
        if x < 0.8:
            self.client.get(self.rng.choice(self.keys))
        elif x < 0.9:
            self.client.batch_get(self.rng.sample(self.keys, 4))
        else:
            self.client.get(self.rng.choice(self.keys), strong=True)


class Writer(Loop):
    def __init__(self, client, keys, rate, seed, stop):
        super().__init__("writer-%s" % client.replica.name, rate, seed, stop)
        self.client, self.keys = client, keys
        self.who = "%sw" % client.replica.name
        self.seq = 0

    def step(self):
        key = self.rng.choice(self.keys)
        x = self.rng.random()
        self.seq += 1
        token = "%s|%s|%d" % (key, self.who, self.seq)
        if x < 0.7:
            self.client.put(key, token)
        elif x < 0.9:
            self.client.put(key, token, if_version=self.client.known.get(key, 0))
        else:
            self.client.delete(key)


class SqlWriter(Loop):
    """Writes straight into cachecar_entries (the trigger versions the row and
    writes the outbox); the commit acknowledgement is the end of execute()
    in autocommit mode."""

    UPSERT = (
        "INSERT INTO cachecar_entries (namespace, key, value) VALUES ('default', %s, %s) "
        "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value RETURNING version"
    )
    DELETE = (
        "DELETE FROM cachecar_entries WHERE namespace = 'default' AND key = %s "
        "RETURNING current_setting('cachecar.deleted_version')::bigint"
    )

    def __init__(self, pg, keys, rate, seed, stop, recorder):
        super().__init__("sql-writer", rate, seed, stop)
        self.pg, self.keys, self.rec = pg, keys, recorder
        self.conn = None
        self.seq = 0

    def step(self):
        import psycopg

        if self.conn is None:
            try:
                self.conn = self.pg.connect(timeout=2)
            except psycopg.Error:
                self.stop_event.wait(0.2)
                return
        key = self.rng.choice(self.keys)
        self.seq += 1
        delete = self.rng.random() < 0.2
        rec = {"op": "sql_delete" if delete else "sql_put", "key": key, "replica": "sql"}
        if not delete:
            rec["value"] = "%s|sql|%d" % (key, self.seq)
        rec["start"] = now()
        try:
            if delete:
                row = self.conn.execute(self.DELETE, (key,)).fetchone()
                rec.update(found=row is not None, version=row[0] if row else None)
            else:
                row = self.conn.execute(self.UPSERT, (key, rec["value"].encode())).fetchone()
                rec["version"] = row[0]
            rec["end"] = now()
            rec["outcome"] = "ok"
        except psycopg.Error as e:
            rec["end"] = now()
            state = getattr(e, "sqlstate", None) or ""
            rec["code"] = state or type(e).__name__
            rec["error"] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            # Rolled back for certain: a serialization failure, a constraint,
            # a trigger's refusal. Anything else (a lost connection, a
            # cancelled statement) may have committed.
            definite = state == "40001" or state.startswith("23") or state == "P0001"
            rec["outcome"] = "fail" if definite else "unknown"
            if isinstance(e, psycopg.OperationalError) or self.conn.broken:
                try:
                    self.conn.close()
                except Exception:
                    pass
                self.conn = None
        self.rec.add(**rec)

    def close(self):
        if self.conn is not None:
            self.conn.close()
